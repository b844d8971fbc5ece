"""Local elasticity (spec §6): normalised kernel, relative ratio, label-system comparison."""
import numpy as np
import pytest

from lantk import elasticity
from lantk.elasticity import (
    class_pair_similarity,
    compare_label_systems,
    normalize_kernel,
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


def test_module_docstring_examples_run():
    import doctest

    res = doctest.testmod(elasticity)
    assert res.failed == 0 and res.attempted > 0
