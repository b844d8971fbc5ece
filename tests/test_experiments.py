import numpy as np
import pytest
from scipy import stats

from lantk import data, experiments


def test_paired_difference_matches_paired_t_interval():
    rng = np.random.default_rng(0)
    a = (rng.random(200) < 0.8).astype(int)
    b = (rng.random(200) < 0.7).astype(int)
    d = experiments.paired_difference(a, b)
    assert d["mean"] == pytest.approx((a - b).mean())
    # the same interval from scipy's one-sample t-test on the differences
    ci = stats.ttest_1samp(a - b, 0.0).confidence_interval(0.95)
    assert d["low"] == pytest.approx(ci.low) and d["high"] == pytest.approx(ci.high)
    with pytest.raises(ValueError, match="equal 1-d shapes"):
        experiments.paired_difference(a, b[:-1])


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
