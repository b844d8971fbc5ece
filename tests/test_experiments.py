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
