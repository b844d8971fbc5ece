"""Local elasticity (spec §6): normalised kernel, relative ratio, label-system comparison."""
import json

import numpy as np
import pytest

from lantk import elasticity
from lantk.elasticity import (
    LabelSystemComparison,
    class_pair_similarity,
    compare_label_systems,
    normalize_kernel,
    ratio_difference,
    relative_ratio,
    same_diff_means,
)
from lantk.label_aware import kr_estimate, lantk_kernel, oracle_Z


def _rbf(A, B):
    return np.exp(-0.1 * ((A[:, None] - B[None]) ** 2).sum(-1))


def _linear_plus(A, B):
    return A @ B.T + 4.0


def _clusters(seed=0, per=6):
    rng = np.random.default_rng(seed)
    centres = np.array([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0], [0.0, -3.0]])
    fine = np.repeat([3, 5, 1, 9], per)  # cat, dog, automobile, truck
    X = centres[np.repeat(np.arange(4), per)] + rng.normal(scale=0.7, size=(4 * per, 2))
    return X, fine


def test_normalize_kernel():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(5, 3))
    K = _linear_plus(A, A)
    Kn = normalize_kernel(K)
    np.testing.assert_allclose(np.diag(Kn), 1.0)
    d = np.diag(K)
    np.testing.assert_allclose(Kn, K / np.sqrt(np.outer(d, d)))
    B = rng.normal(size=(2, 3))
    Kt = _linear_plus(B, A)
    db = np.einsum("ij,ij->i", B, B) + 4.0
    np.testing.assert_allclose(normalize_kernel(Kt, db, d), Kt / np.sqrt(np.outer(db, d)))


def test_relative_ratio_train_and_test():
    X, fine = _clusters()
    K = _linear_plus(X, X)
    Kn = normalize_kernel(K)
    n = len(fine)
    same = fine[:, None] == fine[None, :]
    off = ~np.eye(n, dtype=bool)
    s, d = Kn[same & off].mean(), Kn[~same].mean()
    assert same_diff_means(K, fine) == pytest.approx((s, d))
    assert relative_ratio(K, fine) == pytest.approx(s / (s + d))
    # literal loop over pairs, diagonal excluded
    S = [Kn[i, j] for i in range(n) for j in range(n) if i != j and fine[i] == fine[j]]
    D = [Kn[i, j] for i in range(n) for j in range(n) if fine[i] != fine[j]]
    assert relative_ratio(K, fine) == pytest.approx(np.mean(S) / (np.mean(S) + np.mean(D)))
    # test–train with the given self-kernels
    Xt, ft = _clusters(seed=1, per=2)
    Kt = _linear_plus(Xt, X)
    dt = np.einsum("ij,ij->i", Xt, Xt) + 4.0
    Ktn = Kt / np.sqrt(np.outer(dt, np.diag(K)))
    st = Ktn[ft[:, None] == fine[None, :]].mean()
    dd = Ktn[ft[:, None] != fine[None, :]].mean()
    r = relative_ratio(Kt, ft, fine, diag_rows=dt, diag_cols=np.diag(K))
    assert r == pytest.approx(st / (st + dd))
    # train–train normalised by another kernel's diagonal (e.g. the NTK's)
    d2 = np.diag(K) * 2.0
    Kn2 = K / np.sqrt(np.outer(d2, d2))
    s2, dd2 = Kn2[same & off].mean(), Kn2[~same].mean()
    assert relative_ratio(K, fine, diag_rows=d2, diag_cols=d2) == pytest.approx(s2 / (s2 + dd2))
    # clustered data: a local kernel is locally elastic (same-class pairs more similar)
    assert relative_ratio(_rbf(X, X), fine) > 0.5


def test_label_aware_kernel_is_more_elastic():
    X, fine = _clusters()
    y = np.where(np.isin(fine, [3, 5]), 1.0, -1.0)
    H = _rbf(X, X)
    Z, _ = kr_estimate(H, None, y, variant="v2")
    K = lantk_kernel(H, oracle_Z(y, y), 1.0)
    assert relative_ratio(K, y) > relative_ratio(H, y)
    assert relative_ratio(lantk_kernel(H, Z, 0.5), y) != relative_ratio(H, y)


def test_class_pair_similarity_table():
    X, fine = _clusters(per=3)
    K = _rbf(X, X)
    cls, S = class_pair_similarity(K, fine)
    assert cls.tolist() == [1, 3, 5, 9]
    Kn = normalize_kernel(K)
    i3, i9 = np.flatnonzero(fine == 3), np.flatnonzero(fine == 9)
    assert S[1, 3] == pytest.approx(Kn[np.ix_(i3, i9)].mean())
    within = [Kn[i, j] for i in i3 for j in i3 if i != j]
    assert S[1, 1] == pytest.approx(np.mean(within))
    np.testing.assert_allclose(S, S.T)


def test_similarity_normalised_by_a_given_diagonal():
    """K + λZ can have a non-positive diagonal; it is then normalised by the NTK's."""
    X, fine = _clusters(per=3)
    H = _rbf(X, X)
    y = np.where(np.isin(fine, [3, 5]), 1.0, -1.0)
    Z = oracle_Z(y, y)
    np.fill_diagonal(Z, -10.0)          # an estimate whose Z(x, x) is very negative
    K = lantk_kernel(H, Z, 1.0)
    assert np.diag(K).min() < 0
    with pytest.raises(ValueError, match="must be positive"):
        class_pair_similarity(K, fine)
    d = np.diag(H)
    _cls, S = class_pair_similarity(K, fine, diag=d)
    i3, i9 = np.flatnonzero(fine == 3), np.flatnonzero(fine == 9)
    assert S[1, 3] == pytest.approx((K / np.sqrt(np.outer(d, d)))[np.ix_(i3, i9)].mean())
    A = {3: 1, 5: 1, 1: -1, 9: -1}
    B = {3: 1, 1: 1, 5: -1, 9: -1}

    def bad(X, yy):
        Zy = oracle_Z(yy, yy)
        np.fill_diagonal(Zy, -10.0)
        return lantk_kernel(H, Zy, 1.0)

    out = compare_label_systems({"ntk": lambda X, yy: H, "bad": bad}, X, fine, A, B,
                                diag={"bad": d})
    assert out["ntk"].max_change() == 0.0 and out["bad"].max_change() > 0.1


def test_compare_label_systems():
    X, fine = _clusters()
    A = {3: 1, 5: 1, 1: -1, 9: -1}          # {cat, dog} vs {automobile, truck}
    B = {3: 1, 1: 1, 5: -1, 9: -1}          # {cat, automobile} vs {dog, truck}

    def agnostic(X, y):
        return _rbf(X, X)

    def label_aware(X, y):
        H = _rbf(X, X)
        return lantk_kernel(H, kr_estimate(H, None, y, variant="v2")[0], 1.0)

    def oracle(X, y):
        return lantk_kernel(_rbf(X, X), oracle_Z(y, y), 1.0)

    out = compare_label_systems({"ntk": agnostic, "kr-v2": label_aware, "oracle": oracle},
                                X, fine, A, B)
    assert out["ntk"].max_change() == 0.0
    assert out["kr-v2"].max_change() > 1e-6  # small: KR-V2 sees the pair only through h
    o = out["oracle"]
    k = {c: i for i, c in enumerate(o.classes)}
    # cat-dog are alike under A and unlike under B; cat-automobile the other way round
    assert o.sim_a[k[3], k[5]] > o.sim_b[k[3], k[5]]
    assert o.sim_b[k[3], k[1]] > o.sim_a[k[3], k[1]]
    assert len(o.rows()) == 10 and "3 / 5" in str(o)
    assert o.labels_a == {1: -1, 3: 1, 5: 1, 9: -1}
    gap_a, gap_b = o.label_gap()
    assert gap_a > 0.1 and gap_b > 0.1   # the oracle pulls together what each system labels alike
    ga, _gb = out["ntk"].label_gap()      # the agnostic kernel: the same table, regrouped
    S = out["ntk"].sim_a
    assert ga == pytest.approx(np.mean([S[k[3], k[5]], S[k[1], k[9]]])
                               - np.mean([S[k[3], k[1]], S[k[3], k[9]], S[k[5], k[1]], S[k[5], k[9]]]))
    single = compare_label_systems(agnostic, X, fine, A, lambda c: 1 if c in (3, 1) else -1)
    np.testing.assert_allclose(single.sim_a, single.sim_b)


def test_relative_ratio_official_convention_includes_the_diagonal():
    """The official code keeps the pairs i = j (each K̃(x, x) = 1 with its own diagonal)."""
    X, fine = _clusters()
    K = _linear_plus(X, X)
    Kn = normalize_kernel(K)
    n = len(fine)
    S = [Kn[i, j] for i in range(n) for j in range(n) if fine[i] == fine[j]]   # i = j kept
    D = [Kn[i, j] for i in range(n) for j in range(n) if fine[i] != fine[j]]
    official = relative_ratio(K, fine, include_diagonal=True)
    assert official == pytest.approx(np.mean(S) / (np.mean(S) + np.mean(D)))
    # the diagonal adds ones to the same-class mean: the official R is the larger here
    assert official > relative_ratio(K, fine)
    with pytest.raises(ValueError, match="train–train kernel only"):
        relative_ratio(K[:3], fine[:3], fine, diag_rows=np.diag(K)[:3], diag_cols=np.diag(K),
                       include_diagonal=True)


def _test_train(seed=0, sep=3.0):
    X, fine = _clusters(seed=seed, per=8)
    Xt, ft = _clusters(seed=seed + 1, per=4)
    y = np.where(np.isin(fine, [3, 5]), 1.0, -1.0)
    yt = np.where(np.isin(ft, [3, 5]), 1.0, -1.0)
    return X, y, Xt, yt


def test_ratio_difference_point_estimate_and_interval():
    X, y, Xt, yt = _test_train()
    H, Ht = _rbf(X, X), _rbf(Xt, X)
    d = (np.ones(len(yt)), np.diag(H))
    Zt = oracle_Z(yt, y)
    K_or = Ht + 0.3 * Zt
    out = ratio_difference(K_or, Ht, yt, y, diag_a=d, diag_b=d, n_boot=500, seed=1)
    r_or = relative_ratio(K_or, yt, y, diag_rows=d[0], diag_cols=d[1])
    r_h = relative_ratio(Ht, yt, y, diag_rows=d[0], diag_cols=d[1])
    assert out["estimate"] == pytest.approx(r_or - r_h)
    assert out["r_a"] == pytest.approx(r_or) and out["r_b"] == pytest.approx(r_h)
    assert out["low"] <= out["estimate"] <= out["high"]
    assert out["low"] > 0          # the oracle term raises R on every resample
    assert out["high"] - out["low"] > 0   # the resampling varies the points
    # a kernel against itself: the difference is 0 on every resample
    same = ratio_difference(Ht, Ht, yt, y, diag_a=d, diag_b=d, n_boot=200)
    assert same["estimate"] == 0.0 and same["low"] == 0.0 and same["high"] == 0.0
    # swapping the kernels flips the sign (the same resamples for the same seed)
    rev = ratio_difference(Ht, K_or, yt, y, diag_a=d, diag_b=d, n_boot=500, seed=1)
    assert rev["estimate"] == pytest.approx(-out["estimate"])
    assert rev["low"] == pytest.approx(-out["high"]) and rev["high"] == pytest.approx(-out["low"])


def test_ratio_difference_interval_covers_the_population_value():
    """Coverage of the two-way bootstrap on a noisy kernel: most 90 % intervals computed on
    independent samples of points contain the value of a very large sample."""
    rng = np.random.default_rng(0)

    def sample(b, n):
        y = np.repeat([1.0, -1.0], n // 2)
        yt = np.repeat([1.0, -1.0], b // 2)
        u, ut = rng.normal(size=n), rng.normal(size=b)      # per-point effects
        K = 0.3 + 0.2 * np.outer(yt, y) + 0.1 * (ut[:, None] + u[None, :])
        K = K + 0.05 * rng.normal(size=K.shape)
        Kb = 0.3 + 0.1 * (ut[:, None] + u[None, :]) + 0.05 * rng.normal(size=K.shape)
        return K, Kb, yt, y

    K, Kb, yt, y = sample(2000, 2000)
    ones = (np.ones(len(yt)), np.ones(len(y)))
    truth = ratio_difference(K, Kb, yt, y, diag_a=ones, diag_b=ones, n_boot=1)["estimate"]
    hits = 0
    for _ in range(40):
        K, Kb, yt, y = sample(20, 20)
        ones = (np.ones(len(yt)), np.ones(len(y)))
        out = ratio_difference(K, Kb, yt, y, diag_a=ones, diag_b=ones, n_boot=400,
                               level=0.9, seed=int(rng.integers(1 << 30)))
        hits += out["low"] <= truth <= out["high"]
    assert hits >= 30


def test_follow_change_and_interval():
    X, fine = _clusters(per=6)
    A = {3: 1, 5: 1, 1: -1, 9: -1}
    B = {3: 1, 1: 1, 5: -1, 9: -1}
    out = compare_label_systems(
        {"ntk": lambda X, y: _rbf(X, X),
         "oracle": lambda X, y: lantk_kernel(_rbf(X, X), oracle_Z(y, y), 1.0)}, X, fine, A, B)
    # a label-agnostic kernel does not follow the labels, exactly, on every resample
    assert out["ntk"].follow_change() == 0.0
    iv = out["ntk"].follow_interval(n_boot=200)
    assert iv["low"] == 0.0 and iv["high"] == 0.0
    o = out["oracle"]
    k = {c: i for i, c in enumerate(o.classes)}
    by_hand = 0.5 * ((o._gap(o.sim_a, A) - o._gap(o.sim_b, A))
                     + (o._gap(o.sim_b, B) - o._gap(o.sim_a, B)))
    assert o.follow_change() == pytest.approx(by_hand)
    ga = np.mean([o.sim_a[k[3], k[5]], o.sim_a[k[1], k[9]]]) - np.mean(
        [o.sim_a[k[3], k[1]], o.sim_a[k[3], k[9]], o.sim_a[k[5], k[1]], o.sim_a[k[5], k[9]]])
    assert o.label_gap()[0] == pytest.approx(ga)
    iv = o.follow_interval(n_boot=300, seed=2)
    assert 0 < iv["low"] <= iv["estimate"] <= iv["high"]
    assert iv["estimate"] == pytest.approx(o.follow_change())
    # the bootstrap's weighted tables equal the plain tables for weights all one
    Kn = o.normalized_a
    i3, i5 = np.flatnonzero(fine == 3), np.flatnonzero(fine == 5)
    assert o.sim_a[k[3], k[5]] == pytest.approx(Kn[np.ix_(i3, i5)].mean())
    # a comparison built by hand has no kernels to resample
    bare = LabelSystemComparison(o.classes, o.sim_a, o.sim_b, A, B)
    assert bare.follow_change() == pytest.approx(o.follow_change())
    with pytest.raises(ValueError, match="needs the normalised kernels"):
        bare.follow_interval()


def test_weighted_class_tables_equal_the_tables_of_the_resampled_points():
    from lantk.elasticity import _weighted_class_tables

    X, fine = _clusters(per=4)
    Kn = normalize_kernel(_rbf(X, X))
    cls, S = class_pair_similarity(_rbf(X, X), fine)
    idx = np.searchsorted(cls, fine)
    np.testing.assert_allclose(_weighted_class_tables(Kn, idx, 4, np.ones((1, len(fine))))[0], S)
    rng = np.random.default_rng(3)
    draw = rng.integers(0, len(fine), size=len(fine))     # a resample, by hand
    W = np.bincount(draw, minlength=len(fine))[None, :]
    got = _weighted_class_tables(Kn, idx, 4, W)[0]
    for a in range(4):
        for b in range(4):
            vals = [Kn[i, j] for i in draw for j in draw
                    if idx[i] == a and idx[j] == b and i != j]   # copies of a point excluded
            if vals:
                assert got[a, b] == pytest.approx(np.mean(vals))
            else:                                   # a class drawn once has no pair within
                assert np.isnan(got[a, b]) and a == b


def test_ratio_difference_bootstrap_matches_a_resample_by_hand():
    """The weighted means of ratio_difference are those of the duplicated points."""
    X, y, Xt, yt = _test_train()
    Ht = _rbf(Xt, X)
    d = (np.ones(len(yt)), np.ones(len(y)))
    K2 = Ht + 0.2 * oracle_Z(yt, y)
    rng = np.random.default_rng(0)
    Wr = rng.multinomial(len(yt), np.full(len(yt), 1 / len(yt)), size=1)
    Wc = rng.multinomial(len(y), np.full(len(y), 1 / len(y)), size=1)
    rows, cols = np.repeat(np.arange(len(yt)), Wr[0]), np.repeat(np.arange(len(y)), Wc[0])
    by_hand = (relative_ratio(K2[np.ix_(rows, cols)], yt[rows], y[cols], diag_rows=d[0][rows],
                              diag_cols=d[1][cols])
               - relative_ratio(Ht[np.ix_(rows, cols)], yt[rows], y[cols], diag_rows=d[0][rows],
                                diag_cols=d[1][cols]))
    out = ratio_difference(K2, Ht, yt, y, diag_a=d, diag_b=d, n_boot=1, level=0.5, seed=0)
    # one replicate: the interval is [min(rep, est), max(rep, est)]
    assert by_hand == pytest.approx(out["low"]) or by_hand == pytest.approx(out["high"])


# ----------------------------------------------------------------------------- bad input
def test_bad_input():
    X, fine = _clusters(per=2)
    K = _rbf(X, X)
    with pytest.raises(ValueError, match="single class"):
        relative_ratio(K, np.zeros(len(fine)))
    with pytest.raises(ValueError, match="length mismatch: K has 8 rows but y has 7"):
        relative_ratio(K, fine[:-1])
    with pytest.raises(ValueError, match="K must be symmetric"):
        relative_ratio(K + np.triu(np.ones_like(K), 1), fine)
    with pytest.raises(ValueError, match="K must be a square matrix"):
        relative_ratio(K[:, :-1], fine)
    with pytest.raises(ValueError, match="needs diag_rows"):
        relative_ratio(K[:3], fine[:3], fine)
    Kb = K.copy()
    Kb[0, 0] = np.nan
    with pytest.raises(ValueError, match="K contains NaN"):
        relative_ratio(Kb, fine)
    with pytest.raises(ValueError, match="must be positive"):
        normalize_kernel(K - np.eye(len(K)))
    with pytest.raises(ValueError, match="no pair of the same class"):
        relative_ratio(K[:4, :4], np.arange(4))
    with pytest.raises(ValueError, match="gives no label for class"):
        compare_label_systems(lambda X, y: K, X, fine, {3: 1, 5: -1}, {3: 1, 5: -1})
    with pytest.raises(ValueError, match="both binary labels"):
        compare_label_systems(lambda X, y: K, X, fine, {3: 1, 5: 1, 1: 1, 9: 1},
                              {3: 1, 5: -1, 1: 1, 9: -1})
    with pytest.raises(ValueError, match="returned shape"):
        compare_label_systems(lambda X, y: K[:3, :3], X, fine, {3: 1, 5: -1, 1: 1, 9: -1},
                              {3: 1, 5: -1, 1: 1, 9: -1})


_A = {3: 1, 5: 1, 1: -1, 9: -1}
_B = {3: 1, 1: 1, 5: -1, 9: -1}


def _label_kernel(X, fine, system, strength):
    """An RBF kernel plus ``strength`` on the pairs that share a label under ``system``."""
    lab = elasticity.binary_labels(system, fine)
    return _rbf(X, X) + strength * (np.outer(lab, lab) > 0)


def test_binary_labels():
    fine = np.array([3, 5, 1, 9, 3])
    assert elasticity.binary_labels(_A, fine).tolist() == [1.0, 1.0, -1.0, -1.0, 1.0]
    assert elasticity.binary_labels(lambda c: 1 if c == 1 else -1, [1, 9]).tolist() == [1.0, -1.0]
    with pytest.raises(ValueError, match="gives no label"):
        elasticity.binary_labels({3: 1}, fine)


def test_comparison_from_kernels_is_compare_label_systems_on_built_kernels():
    X, fine = _clusters(per=5)
    ya, yb = elasticity.binary_labels(_A, fine), elasticity.binary_labels(_B, fine)

    def factory(X, y):
        return lantk_kernel(_rbf(X, X), oracle_Z(y, y), 0.3)

    want = compare_label_systems(factory, X, fine, _A, _B)
    got = elasticity.comparison_from_kernels(factory(X, ya), factory(X, yb), fine, _A, _B)
    np.testing.assert_array_equal(got.sim_a, want.sim_a)
    np.testing.assert_array_equal(got.sim_b, want.sim_b)
    np.testing.assert_array_equal(got.normalized_a, want.normalized_a)
    assert got.follow_interval(n_boot=100) == want.follow_interval(n_boot=100)
    d = np.diag(_rbf(X, X))
    got = elasticity.comparison_from_kernels(factory(X, ya), factory(X, yb), fine, _A, _B, diag=d)
    want = compare_label_systems(factory, X, fine, _A, _B, diag=d)
    np.testing.assert_array_equal(got.sim_b, want.sim_b)
    with pytest.raises(ValueError, match="K_b has shape"):
        elasticity.comparison_from_kernels(factory(X, ya), factory(X, yb)[:3, :3], fine, _A, _B)


def test_label_systems_over_training():
    X, fine = _clusters(per=5)
    # epoch 0: one kernel for both systems; then each kernel leans more towards its system
    Ka = {e: _label_kernel(X, fine, _A, 0.1 * e) for e in (0, 2, 4)}
    Kb = {e: _label_kernel(X, fine, _B, 0.1 * e) for e in (0, 2, 4)}
    Ka[0] = Kb[0] = _rbf(X, X)
    dyn = elasticity.label_systems_over_training(Ka, Kb, fine, _A, _B, n_boot=200, seed=1)
    assert dyn.epochs == [0, 2, 4]
    assert dyn.follow[0] == {**dyn.follow[0], "estimate": 0.0, "low": 0.0, "high": 0.0}
    est = [f["estimate"] for f in dyn.follow]
    assert 0 < est[1] < est[2]
    for e, c, f in zip(dyn.epochs, dyn.comparisons, dyn.follow):   # each epoch on its own
        alone = elasticity.comparison_from_kernels(Ka[e], Kb[e], fine, _A, _B)
        assert f == alone.follow_interval(n_boot=200, seed=1)
        np.testing.assert_array_equal(c.sim_a, alone.sim_a)
    assert dyn.first_following_epoch() == 2 and dyn.following_from() == 2
    # the pair tables over epochs, in the order of pairs(); which pairs share a label
    pairs = dyn.pairs()
    assert pairs == [(1, 3), (1, 5), (1, 9), (3, 5), (3, 9), (5, 9)]
    S = dyn.similarities("A")
    assert S.shape == (3, 6)
    k = {c: i for i, c in enumerate(dyn.comparisons[1].classes)}
    assert S[1, pairs.index((3, 5))] == dyn.comparisons[1].sim_a[k[3], k[5]]
    assert dyn.alike("A").tolist() == [False, False, True, True, False, False]
    assert dyn.alike("B").tolist() == [True, False, False, False, False, True]
    out = dyn.to_dict()
    json.dumps(out)                          # plain JSON, no NumPy scalars
    assert out["epochs"] == [0, 2, 4] and out["first_following_epoch"] == 2
    assert np.array(out["similarity_B"]).shape == (3, 6)
    with pytest.raises(ValueError, match="'A' or 'B'"):
        dyn.similarities("C")
    with pytest.raises(ValueError, match="same epochs"):
        elasticity.label_systems_over_training(Ka, {0: Kb[0]}, fine, _A, _B)


def test_first_following_epoch_and_following_from():
    def dyn(lows):
        return elasticity.LabelSystemDynamics(list(range(len(lows))), [None] * len(lows),
                                              [{"low": lo, "high": 1.0} for lo in lows])

    assert dyn([0.0, -0.1, 0.0]).first_following_epoch() is None
    assert dyn([0.0, -0.1, 0.0]).following_from() is None
    assert dyn([0.0, 0.1, -0.1, 0.2, 0.3]).first_following_epoch() == 1
    assert dyn([0.0, 0.1, -0.1, 0.2, 0.3]).following_from() == 3
    assert dyn([0.0, 0.1, 0.2, -0.1]).following_from() is None


def test_kernel_method_comparison():
    from lantk import regression
    from lantk.experiments import paired_difference

    X, y, Xt, yt = _test_train(seed=1, sep=1.0)
    H, Ht = _rbf(X, X), _rbf(Xt, X)
    L, Lt = _linear_plus(X, X) + 0.1 * np.eye(len(X)), _linear_plus(Xt, X)
    net_out = Xt[:, :1] + 0.1                       # a "network": the first coordinate, (b, 1)
    out = elasticity.kernel_method_comparison(
        {"rbf": (H, Ht), "linear": (L, Lt)}, y, yt, outputs={"net": net_out},
        differences=[("rbf", "linear"), ("net", "rbf")])
    for name, (K, Kt) in {"rbf": (H, Ht), "linear": (L, Lt)}.items():
        f = regression.kernel_regression(K, Kt, y)
        assert out["accuracy"][name] == regression.accuracy(yt, f)
        np.testing.assert_array_equal(out["correct"][name], regression.predict_labels(f) == yt)
        assert out["jitter"][name] == 0.0
    assert out["correct"]["net"].dtype == np.int8
    assert out["accuracy"]["net"] == np.mean(np.where(net_out[:, 0] >= 0, 1.0, -1.0) == yt)
    assert out["n_test"] == len(yt) and "net" not in out["jitter"]
    d = out["differences"][1]
    want = paired_difference(out["correct"]["net"], out["correct"]["rbf"])
    assert (d["a"], d["b"]) == ("net", "rbf") and d == {"a": "net", "b": "rbf", **want}
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        elasticity.kernel_method_comparison({"rbf": (H, Ht)}, y, yt, differences=[("rbf", "nope")])
    with pytest.raises(ValueError, match=r"\(b,\) or \(b, 1\)"):
        elasticity.kernel_method_comparison({"rbf": (H, Ht)}, y, yt,
                                            outputs={"net": np.zeros((len(yt), 2))})
    with pytest.raises(ValueError, match="length mismatch"):
        elasticity.kernel_method_comparison({"rbf": (H, Ht)}, y, yt[:-1])


def test_module_docstring_examples_run():
    import doctest

    res = doctest.testmod(elasticity)
    assert res.failed == 0 and res.attempted > 0
