import numpy as np
import pytest
from scipy import stats

from lantk import data, experiments


def test_paired_difference_matches_paired_t_interval():
    rng = np.random.default_rng(0)
    a = (rng.random(200) < 0.8).astype(int)
    b = (rng.random(200) < 0.7).astype(int)
    d = experiments.paired_difference(a, b)
    assert d["mean"] == pytest.approx((a - b).mean()) and d["n"] == 200 and d["repeats"] == 1
    # the same interval from scipy's one-sample t-test on the differences
    ci = stats.ttest_1samp(a - b, 0.0).confidence_interval(0.95)
    assert d["low"] == pytest.approx(ci.low) and d["high"] == pytest.approx(ci.high)


def test_paired_difference_shape_errors_are_clear():
    a = np.ones((3, 10)); b = np.zeros((3, 10))
    with pytest.raises(ValueError, match="equal shapes"):
        experiments.paired_difference(a, b[:, :-1])
    with pytest.raises(ValueError, match="equal shapes"):
        experiments.paired_difference(a, b[:2])            # repeats differ
    with pytest.raises(ValueError, match=r"\(repeats, test points\)"):
        experiments.paired_difference(a[None], b[None])     # 3-d
    with pytest.raises(ValueError, match="two paired test points"):
        experiments.paired_difference(a[:, :1], b[:, :1])


def test_identical_repeats_give_the_one_repeat_interval():
    rng = np.random.default_rng(1)
    a = (rng.random(150) < 0.8).astype(int)
    b = (rng.random(150) < 0.6).astype(int)
    one = experiments.paired_difference(a, b)
    three = experiments.paired_difference(np.tile(a, (3, 1)), np.tile(b, (3, 1)))
    for k in ("mean", "low", "high", "n"):
        assert three[k] == pytest.approx(one[k])
    assert three["repeats"] == 3
    # concatenating the repeats as if they were new test points would shrink the interval
    naive = experiments.paired_difference(np.tile(a, 3), np.tile(b, 3))
    assert naive["high"] - naive["low"] < 0.6 * (one["high"] - one["low"])


def test_repeats_are_averaged_per_test_point():
    rng = np.random.default_rng(2)
    a = (rng.random((4, 60)) < 0.7).astype(int)
    b = (rng.random((4, 60)) < 0.5).astype(int)
    d = experiments.paired_difference(a, b)
    ci = stats.ttest_1samp((a - b).mean(axis=0), 0.0).confidence_interval(0.95)
    assert d["mean"] == pytest.approx((a - b).mean())
    assert d["low"] == pytest.approx(ci.low) and d["high"] == pytest.approx(ci.high)
    assert d["n"] == 60 and d["repeats"] == 4


def _pair(rng, n, p_a, p_b, repeats=1):
    return ((rng.random((repeats, n)) < p_a).astype(int), (rng.random((repeats, n)) < p_b).astype(int))


def test_pooled_interval_carries_between_pair_variation():
    rng = np.random.default_rng(3)
    # five pairs whose true differences range from -0.3 to +0.4
    groups = [_pair(rng, 200, 0.5 + delta / 2, 0.5 - delta / 2)
              for delta in (-0.3, -0.1, 0.05, 0.2, 0.4)]
    pooled = experiments.pooled_paired_difference(groups)
    naive = experiments.paired_difference(np.concatenate([a[0] for a, _ in groups]),
                                          np.concatenate([b[0] for _, b in groups]))
    means = [(a - b).mean() for a, b in groups]
    assert pooled["mean"] == pytest.approx(np.mean(means)) and pooled["pairs"] == 5
    assert pooled["n"] == 1000
    ci = stats.ttest_1samp(means, 0.0).confidence_interval(0.95)
    assert pooled["low"] == pytest.approx(ci.low) and pooled["high"] == pytest.approx(ci.high)
    assert pooled["high"] - pooled["low"] > 2 * (naive["high"] - naive["low"])
    # the stratified interval (pairs fixed) holds the test-point noise only: close to naive
    assert pooled["within_high"] - pooled["within_low"] < pooled["high"] - pooled["low"]


def test_pooled_interval_equal_pairs_and_single_pair():
    rng = np.random.default_rng(4)
    a, b = _pair(rng, 120, 0.8, 0.6, repeats=2)
    one = experiments.paired_difference(a, b)
    single = experiments.pooled_paired_difference([(a, b)])
    assert single["pairs"] == 1
    assert (single["low"], single["high"]) == pytest.approx((one["low"], one["high"]))
    # two pairs with identical results: no between-pair spread, yet the test points of each
    # pair are still noisy -- the interval keeps their part (floor), t with one degree of freedom
    twin = experiments.pooled_paired_difference([(a, b), (a, b)])
    se = (one["high"] - one["low"]) / 2 / stats.t.ppf(0.975, one["n"] - 1)
    half = stats.t.ppf(0.975, 1) * se / np.sqrt(2)
    assert twin["mean"] == pytest.approx(one["mean"])
    assert (twin["low"], twin["high"]) == pytest.approx((one["mean"] - half, one["mean"] + half))
    with pytest.raises(ValueError, match="at least one"):
        experiments.pooled_paired_difference([])
    with pytest.raises(ValueError, match="equal shapes"):
        experiments.pooled_paired_difference([(a, b), (a, b[:, :-1])])


def test_same_test_points_across_seeds():
    t0 = data.binary_task("digits", classes=(3, 5), n_train=40, n_val=10, n_test=30, seed=0)
    t1 = data.binary_task("digits", classes=(3, 5), n_train=40, n_val=10, n_test=30, seed=1)
    assert not np.array_equal(t0.idx_test, t1.idx_test)          # a seed picks other test images
    s1 = experiments.same_test_points(t1, t0)
    assert np.array_equal(s1.idx_test, t0.idx_test) and np.array_equal(s1.y_test, t0.y_test)
    assert np.allclose(s1.X_test, t0.X_test)                      # no standardisation: same pixels
    assert np.array_equal(s1.idx_train, t1.idx_train) and np.allclose(s1.X_train, t1.X_train)
    with pytest.raises(ValueError, match="same classes"):
        experiments.same_test_points(t1, data.binary_task("digits", classes=(3, 6), n_train=10,
                                                          n_test=10))


def test_nth_correction_draws_are_independent_monte_carlo_estimates():
    task = experiments.unit_norm(data.binary_task("digits", classes=(3, 5), n_train=20, n_test=4, seed=0))
    draws = experiments.nth_correction_draws(task.X_train, task.y_train, task.X_test, width=50,
                                             samples=50, seeds=[0, 1, 2])
    assert draws.shape == (3, 24, 20)
    assert not np.allclose(draws[0], draws[1])                   # other seeds, other neurons
    again = experiments.nth_correction_draws(task.X_train, task.y_train, task.X_test, width=50,
                                             samples=50, seeds=[0, 1])
    assert np.allclose(again[0], draws[0])
    with pytest.raises(ValueError, match="two seeds"):
        experiments.nth_correction_draws(task.X_train, task.y_train, task.X_test, width=50,
                                         samples=50, seeds=[0])


def _rbf_blocks(task, gamma=0.02):
    def k(A, B):
        dim = int(np.prod(task.X_train.shape[1:]))
        A, B = A.reshape(len(A), dim), B.reshape(len(B), dim)
        d = (A**2).sum(1)[:, None] + (B**2).sum(1)[None] - 2 * A @ B.T
        return np.exp(-gamma * d)
    return experiments.KernelBlocks(k(task.X_train, task.X_train), k(task.X_val, task.X_train),
                                    k(task.X_test, task.X_train))


def test_evaluate_methods_on_digits():
    task = data.binary_task("digits", classes=(3, 5), n_train=80, n_val=40, n_test=60, seed=0, flatten=True)
    res = experiments.evaluate_methods(task, _rbf_blocks(task))
    assert set(res) == {"ntk", "kr-v1", "kr-v2", "fjlt-v1", "fjlt-v2", "oracle"}
    for r in res.values():
        assert r["correct"].shape == (60,)
        assert r["accuracy"] == pytest.approx(r["correct"].mean())
    assert res["oracle"]["accuracy"] == 1.0            # the upper bound uses the test labels
    assert res["kr-v1"]["c"] in (0.03, 0.1, 0.3, 1.0, 3.0)


def test_evaluate_methods_needs_validation():
    task = data.binary_task("digits", classes=(3, 5), n_train=40, n_test=20, seed=0, flatten=True)
    with pytest.raises(ValueError, match="validation split"):
        experiments.evaluate_methods(task, _rbf_blocks(task), methods=("kr-v1",))
    with pytest.raises(ValueError, match="unknown methods"):
        experiments.evaluate_methods(task, _rbf_blocks(task), methods=("svm",))


def test_evaluate_methods_multiclass_digits():
    task = data.multiclass_task("digits", n_train=100, n_val=50, n_test=60, seed=0, flatten=True)
    blocks = _rbf_blocks(task)
    res = experiments.evaluate_methods(task, blocks, methods=("ntk", "kr-v1", "kr-v2", "fjlt-v1", "oracle"))
    for r in res.values():
        assert r["correct"].shape == (60,)
        assert r["accuracy"] == pytest.approx(r["correct"].mean())
    # the CNTK row is argmax of kernel regression on centred one-hot targets
    Y = data.one_hot_centred(task.y_train, 10)
    f = blocks.H_test @ np.linalg.solve(blocks.H, Y)
    assert res["ntk"]["accuracy"] == pytest.approx(np.mean(np.argmax(f, 1) == task.y_test))
    assert 0.5 < res["ntk"]["accuracy"] < 1.0          # ten classes: far above chance, not perfect
    assert res["oracle"]["accuracy"] == 1.0            # Y_test Y_trainᵀ separates the classes
    assert res["kr-v2"]["c"] in (0.03, 0.1, 0.3, 1.0, 3.0)
    assert res["kr-v2"]["val_accuracy"] is not None


def test_closed_form_blocks_and_unit_norm():
    from lantk import archs

    task = experiments.unit_norm(data.binary_task("digits", classes=(4, 9), n_train=30, n_val=10,
                                                  n_test=12, seed=1))
    assert task.X_train.shape == (30, 64) and task.config["unit_norm"]
    assert np.allclose(np.linalg.norm(task.X_val, axis=1), 1.0)
    b = experiments.closed_form_blocks(archs.two_layer_relu_kernel, task)
    assert b.H.shape == (30, 30) and b.H_val.shape == (10, 30) and b.H_test.shape == (12, 30)
    assert np.allclose(np.diag(b.H), 1.0)              # K(x, x) = |x|^2 for the two-layer NTK
    assert np.allclose(b.H_test, archs.two_layer_relu_kernel(task.X_test, task.X_train))


def test_width_sweep_nth_tends_to_ntk():
    from lantk import archs, regression

    task = experiments.unit_norm(data.binary_task("digits", classes=(3, 5), n_train=60, n_test=40, seed=0))
    rows = experiments.width_sweep(task, [8, 16], samples=200, epochs=3, batch_size=30)
    assert [(r["method"], r["width"]) for r in rows] == [("nth", 8), ("network", 8),
                                                         ("nth", 16), ("network", 16)]
    rows += experiments.width_sweep(task, [10**9], samples=200, train_network=False)
    H = archs.two_layer_relu_kernel(task.X_train)
    f = regression.kernel_regression(H, archs.two_layer_relu_kernel(task.X_test, task.X_train), task.y_train)
    ntk_correct = (np.sign(f) == task.y_test).astype(np.int8)
    assert np.array_equal(rows[4]["correct"], ntk_correct)   # the 1/m correction vanishes
    for r in rows:
        assert r["correct"].shape == (40,) and r["accuracy"] == pytest.approx(r["correct"].mean())
    with pytest.raises(ValueError, match="binary task"):
        experiments.width_sweep(data.multiclass_task("digits", n_train=30, n_test=10), [8])


def test_evaluate_methods_reports_the_spectrum_and_offers_the_psd_repair():
    from lantk import archs, data, experiments

    task = experiments.unit_norm(data.binary_task("digits", (3, 5), n_train=40, n_val=20,
                                                  n_test=30, seed=0))
    blocks = experiments.closed_form_blocks(archs.two_layer_relu_kernel, task)
    grid = (0.1, 1.0, 10.0)
    plain = experiments.evaluate_methods(task, blocks, methods=("fjlt-v1",), c_grid=grid)
    fixed = experiments.evaluate_methods(task, blocks, methods=("fjlt-v1",), c_grid=grid, psd=True)
    assert len(plain["fjlt-v1"]["relative_min_eigenvalue"]) == 3
    assert min(fixed["fjlt-v1"]["relative_min_eigenvalue"]) >= -1e-10
    # FJLT's signed linear model makes K + λZ indefinite at a large enough c
    assert min(plain["fjlt-v1"]["relative_min_eigenvalue"]) < 0


def test_width_sweep_matches_nth_kernel_at_each_width_and_both_inits():
    """The sweep computes the 1/m correction once per initialisation and rescales it; each
    width's predictions must be those of nth_kernel at that width."""
    from lantk import nth, regression

    task = experiments.unit_norm(data.binary_task("digits", classes=(3, 5), n_train=40, n_test=30, seed=1))
    rows = experiments.width_sweep(task, [3, 50], samples=100, train_network=False, seed=2,
                                   inits=("standard", "antisymmetric"))
    assert [(r["method"], r["width"]) for r in rows] == [
        ("nth", 3), ("nth-antisym", 3), ("nth", 50), ("nth-antisym", 50)]
    for r in rows:
        init = "standard" if r["method"] == "nth" else "antisymmetric"
        K_tr, K_te = nth.nth_kernel(task.X_train, task.y_train, task.X_test, width=r["width"],
                                    samples=100, seed=2, init=init)
        f = regression.kernel_regression(K_tr, K_te, task.y_train)
        assert np.array_equal(r["correct"], (np.where(f >= 0, 1.0, -1.0) == task.y_test).astype(np.int8))
    with pytest.raises(ValueError, match="inits"):
        experiments.width_sweep(task, [8], inits=("gaussian",))


def test_cross_fit_tasks_test_every_image_once():
    task = data.binary_task("digits", classes=(3, 8), n_train=60, n_val=16, n_test=20, seed=4,
                            flatten=True)
    folds = experiments.cross_fit_tasks(task, 4)
    assert len(folds) == 4 and folds[0].config["fold"] == 0
    np.testing.assert_array_equal(folds[0].X_test, task.X_test)
    pool = np.concatenate([task.X_train, task.X_val, task.X_test])
    tested = np.concatenate([experiments.pool_positions(f)[2] for f in folds])
    assert sorted(tested.tolist()) == list(range(len(pool)))        # each image tested once
    for f in folds:
        tr, va, te = experiments.pool_positions(f)
        assert not (set(tr) & set(va) or set(tr) & set(te) or set(va) & set(te))
        assert len(tr) + len(va) + len(te) == len(pool)
        np.testing.assert_array_equal(f.X_train, pool[tr])
        np.testing.assert_array_equal(f.X_test, pool[te])
        assert np.sum(f.y_val == 1) == np.sum(task.y_val == 1)       # validation as in fold 0
        assert abs(np.sum(f.y_test == 1) - np.sum(f.y_test == -1)) <= 2   # chunks by class
    assert experiments.cross_fit_tasks(task, 1)[0].X_train is task.X_train
    with pytest.raises(ValueError, match="folds"):
        experiments.cross_fit_tasks(task, 0)
    with pytest.raises(ValueError, match="take fewer folds"):
        experiments.cross_fit_tasks(task, 80)
    with pytest.raises(ValueError, match=r"Take more folds.*folds=5"):
        experiments.cross_fit_tasks(task, 2)   # one chunk of 76 images: nothing left to train on


def test_cross_fit_folds_do_not_depend_on_the_seed_with_every_image():
    """With every training image, two seeds differ in their validation carve but the folds
    test the same images in the same order, so repeats can be paired point by point."""
    def fold_ids(seed):
        task = data.binary_task("digits", classes=(0, 1), n_train=None, n_val=20, n_test=30,
                                seed=seed, flatten=True)
        ids = np.concatenate([task.idx_train, task.idx_val])
        out = []
        for f in experiments.cross_fit_tasks(task, 3, seed=7)[1:]:
            out.append(ids[f.idx_test].tolist())
        return out, task.idx_val
    (a, va), (b, vb) = fold_ids(0), fold_ids(1)
    assert a == b and set(va.tolist()) != set(vb.tolist())


def test_require_psd_keeps_c_where_the_kernel_stays_positive_definite():
    from lantk import archs

    task = experiments.unit_norm(data.binary_task("digits", (3, 5), n_train=40, n_val=20,
                                                  n_test=30, seed=0))
    blocks = experiments.closed_form_blocks(archs.two_layer_relu_kernel, task)
    grid = (0.01, 0.1, 1.0, 10.0)
    r = experiments.evaluate_methods(task, blocks, methods=("fjlt-v1",), c_grid=grid,
                                     require_psd=True)["fjlt-v1"]
    eig = dict(zip(grid, r["relative_min_eigenvalue"]))
    assert min(eig.values()) < 0 < max(eig.values())       # the rule has something to exclude
    assert r["candidates"] == [c for c in grid if eig[c] > 0]
    assert eig[r["c"]] > 0
    free = experiments.evaluate_methods(task, blocks, methods=("fjlt-v1",), c_grid=grid)
    assert free["fjlt-v1"]["candidates"] == list(grid)
    # without the spectrum the grid is walked up to the first indefinite strength only: the
    # same candidates, the same choice, the same predictions
    walk = experiments.evaluate_methods(task, blocks, methods=("fjlt-v1",), c_grid=grid,
                                        require_psd=True, spectrum=False)["fjlt-v1"]
    assert walk["relative_min_eigenvalue"] is None
    assert walk["positive_definite"] == [eig[c] > 0 for c in grid]
    assert walk["candidates"] == r["candidates"] and walk["c"] == r["c"]
    np.testing.assert_array_equal(walk["correct"], r["correct"])


def test_cross_fitted_pair_run_scores_every_image_and_keeps_fold_zero():
    kw = dict(n_train=40, n_val=10, n_test=20, kernel_arch=("cnn", {"depth": 1, "width": 4}),
              methods=["ntk", "kr-v1", "fjlt-v1"], c_grid=[0.1, 1.0], kernel_dtype="float64")
    one = experiments.binary_pair_run("digits", (3, 5), 0, **kw)
    cv = experiments.binary_pair_run("digits", (3, 5), 0, folds=3, **kw)
    assert cv["folds"] == 3 and cv["n_test_cv"] == 70
    for m in ("ntk", "kr-v1", "fjlt-v1"):   # FJLT's distances come from the pool here
        r = cv["results"][m]
        np.testing.assert_array_equal(r["correct"], one["results"][m]["correct"])   # fold 0
        assert len(r["folds"]) == 3 and len(r["cv_correct"]) == 70
        assert r["cv_accuracy"] == pytest.approx(np.mean(r["cv_correct"]))
        np.testing.assert_array_equal(r["cv_correct"][:20], r["correct"])
    with pytest.raises(ValueError, match="n_train=None"):
        experiments.binary_pair_run("digits", (3, 5), 1, test_seed=0, folds=3, **kw)
    with pytest.raises(ValueError, match="one output"):
        experiments.binary_pair_run("digits", (3, 5), 0, folds=3, **{
            **kw, "kernel_arch": ("cnn", {"depth": [1, 2], "width": 4})})


def test_a_kernel_with_an_output_per_depth_gives_each_depth_its_results():
    kw = dict(n_train=40, n_val=0, n_test=30, methods=["ntk"], kernel_dtype="float64")
    both = experiments.multiclass_run("digits", 0, kernel_arch=("cnn", {"depth": [1, 2],
                                                                         "width": 4}), **kw)
    assert len(both["outputs"]) == 2 and both["results"]["ntk"] is both["outputs"][0]["ntk"]
    for d, out in zip((1, 2), both["outputs"]):
        alone = experiments.multiclass_run("digits", 0, kernel_arch=("cnn", {"depth": d,
                                                                              "width": 4}), **kw)
        assert "outputs" not in alone
        np.testing.assert_array_equal(out["ntk"]["correct"], alone["results"]["ntk"]["correct"])
