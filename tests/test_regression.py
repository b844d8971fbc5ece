"""Kernel regression (spec §1) and the shared input checks."""
import warnings

import numpy as np
import pytest

from lantk import regression
from lantk.regression import (
    SingularKernelWarning,
    accuracy,
    kernel_regression,
    kernel_solve,
    predict_labels,
)


def _problem(n=30, b=7, d=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + b, d))
    K = np.exp(-0.05 * ((X[:, None] - X[None]) ** 2).sum(-1)) + 0.1 * X @ X.T / d
    y = np.where(X[:n, 0] + 0.5 * X[:n, 1] > 0, 1.0, -1.0)
    return K[:n, :n], K[n:, :n], y, rng


def test_binary_matches_direct_solve():
    H, Ht, y, _ = _problem()
    f = kernel_regression(H, Ht, y)
    assert f.shape == (Ht.shape[0],) and f.dtype == np.float64
    np.testing.assert_allclose(f, Ht @ np.linalg.solve(H, y), rtol=1e-9, atol=1e-12)


def test_ridge_matches_direct_solve():
    H, Ht, y, _ = _problem()
    f = kernel_regression(H, Ht, y, rho=0.3)
    np.testing.assert_allclose(f, Ht @ np.linalg.solve(H + 0.3 * np.eye(len(H)), y), rtol=1e-10)


def test_interpolates_training_labels():
    H, _, y, _ = _problem()
    np.testing.assert_allclose(kernel_regression(H, H, y), y, atol=1e-8)


def test_multiclass_shapes_and_centred_one_hot():
    H, Ht, _, rng = _problem()
    yc = rng.integers(0, 4, size=len(H))
    yc[:4] = np.arange(4)
    f = kernel_regression(H, Ht, yc)
    assert f.shape == (Ht.shape[0], 4)
    Y = np.eye(4)[yc] - 0.25
    np.testing.assert_allclose(f, Ht @ np.linalg.solve(H, Y), rtol=1e-9, atol=1e-12)
    # a one-hot matrix, plain or centred, gives the same predictions
    np.testing.assert_allclose(kernel_regression(H, Ht, np.eye(4)[yc]), f, rtol=1e-12)
    np.testing.assert_allclose(kernel_regression(H, Ht, Y), f, rtol=1e-12)
    assert predict_labels(f).shape == (Ht.shape[0],)
    assert kernel_solve(H, yc).shape == (len(H), 4)


def test_singular_H_warns_and_adds_jitter():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20, 3))
    H = X @ X.T  # rank 3
    y = np.where(X[:, 0] > 0, 1.0, -1.0)
    with pytest.warns(SingularKernelWarning, match=r"numerically singular.*jitter"):
        f = kernel_regression(H, H[:5], y)
    assert np.all(np.isfinite(f))
    # it is the regression with the jitter named in the warning (1e-10 × mean diag first)
    jitter = 1e-10 * np.mean(np.diag(H))
    ref = H[:5] @ np.linalg.solve(H + jitter * np.eye(20), y)
    # (H + jitter I has condition ~1e11: agreement to ~1e-5 is all float64 allows)
    np.testing.assert_allclose(f, ref, rtol=1e-3, atol=1e-4 * np.abs(ref).max())


def test_warning_class_is_caught_by_common_filters():
    assert issubclass(SingularKernelWarning, RuntimeWarning)
    assert issubclass(SingularKernelWarning, UserWarning)


def test_duplicate_inputs_warn():
    H, Ht, y, _ = _problem()
    H2 = H.copy()
    H2[1], H2[:, 1] = H2[0], H2[:, 0]  # input 1 is a copy of input 0
    y2 = y.copy()
    y2[1] = y2[0]
    with pytest.warns(SingularKernelWarning):
        kernel_regression(H2, Ht, y2)


def test_positive_definite_H_does_not_warn():
    H, Ht, y, _ = _problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kernel_regression(H, Ht, y)


def test_indefinite_nonsingular_H_falls_back_to_lu():
    rng = np.random.default_rng(2)
    A = rng.normal(size=(15, 15))
    A = A + A.T  # symmetric, indefinite, well conditioned
    y = np.where(rng.normal(size=15) > 0, 1.0, -1.0)
    y[:2] = [1.0, -1.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = kernel_regression(A, A[:3], y)
    np.testing.assert_allclose(f, A[:3] @ np.linalg.solve(A, y), rtol=1e-9, atol=1e-10)


def test_round_off_asymmetry_is_accepted():
    H, Ht, y, _ = _problem()
    Hn = H.copy()
    Hn[0, 1] += 1e-14
    np.testing.assert_allclose(kernel_regression(Hn, Ht, y), kernel_regression(H, Ht, y),
                               rtol=1e-8)


def test_predict_labels_and_accuracy():
    assert predict_labels(np.array([0.5, -0.1, 0.0])).tolist() == [1.0, -1.0, 1.0]
    assert accuracy(np.array([1, -1, -1]), np.array([2.0, -1.0, 3.0])) == pytest.approx(2 / 3)
    f = np.array([[0.9, 0.1, 0.0], [0.0, 0.2, 0.8]])
    assert accuracy(np.array([0, 1]), f) == 0.5
    assert accuracy(np.eye(3)[[0, 2]], f) == 1.0
    # a single test class is fine for accuracy
    assert accuracy(np.array([1.0, 1.0]), np.array([1.0, -1.0])) == 0.5


def test_dtypes_are_float64():
    H, Ht, y, _ = _problem()
    f = kernel_regression(H.astype(np.float32), Ht.astype(np.float32), y.astype(np.int64))
    assert f.dtype == np.float64


# ----------------------------------------------------------------------------- bad input
@pytest.fixture
def prob():
    return _problem(n=12, b=3)


def test_single_class_raises(prob):
    H, Ht, _y, _ = prob
    with pytest.raises(ValueError, match="single class"):
        kernel_regression(H, Ht, np.ones(len(H)))
    with pytest.raises(ValueError, match="single class"):
        kernel_regression(H, Ht, np.full(len(H), 2))


def test_binary_labels_not_two_classes_raise(prob):
    H, Ht, y, _ = prob
    bad = y.copy()
    bad[0] = 0.0  # {-1, 0, +1}
    with pytest.raises(ValueError, match="binary labels -1/\\+1"):
        kernel_regression(H, Ht, bad)
    with pytest.raises(ValueError, match="non-integer"):
        kernel_regression(H, Ht, y * 0.5)


def test_length_mismatch_raises(prob):
    H, Ht, y, _ = prob
    with pytest.raises(ValueError, match="length mismatch: H_train has 12 rows but y has 11"):
        kernel_regression(H, Ht, y[:-1])
    with pytest.raises(ValueError, match="length mismatch: H_test_train has 11 columns"):
        kernel_regression(H, Ht[:, :-1], y)


def test_non_square_or_asymmetric_H_raises(prob):
    H, Ht, y, _ = prob
    with pytest.raises(ValueError, match="H_train must be a square matrix"):
        kernel_regression(H[:, :-1], Ht, y)
    A = H.copy()
    A[0, 1] += 0.1
    with pytest.raises(ValueError, match="H_train must be symmetric"):
        kernel_regression(A, Ht, y)
    with pytest.raises(ValueError, match="H_train must be 2-d"):
        kernel_regression(H[0], Ht, y)


@pytest.mark.parametrize("where", ["H", "Ht", "y"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_inf_raise(prob, where, value):
    H, Ht, y, _ = prob
    H, Ht, y = H.copy(), Ht.copy(), y.copy()
    {"H": H, "Ht": Ht, "y": y}[where].flat[1] = value
    if where == "H":
        H[1, 0] = value  # keep it symmetric: the NaN/inf check must name the problem
    kind = "NaN" if np.isnan(value) else "inf"
    with pytest.raises(ValueError, match=f"contains {kind}"):
        kernel_regression(H, Ht, y)


def test_bad_rho_raises(prob):
    H, Ht, y, _ = prob
    with pytest.raises(ValueError, match="rho must be a finite number >= 0"):
        kernel_regression(H, Ht, y, rho=-1.0)
    with pytest.raises(ValueError, match="rho must be a finite number >= 0"):
        kernel_regression(H, Ht, y, rho=np.nan)


def test_accuracy_bad_input():
    with pytest.raises(ValueError, match="length mismatch"):
        accuracy(np.array([1, -1]), np.array([1.0]))
    with pytest.raises(ValueError, match="not ±1"):
        accuracy(np.array([0, 2]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="only 2 columns"):
        accuracy(np.array([0, 2]), np.eye(2))


def test_module_docstring_example_runs():
    import doctest

    res = doctest.testmod(regression)
    assert res.failed == 0 and res.attempted > 0


def test_a_zero_decision_is_the_positive_class_everywhere():
    """One rule for f = 0: regression, the experiment protocol, training and the classifier."""
    from lantk import classifier, experiments, train
    from lantk.regression import predict_labels

    f = np.array([0.0, -0.0, 1.0, -1.0])
    assert predict_labels(f).tolist() == [1.0, 1.0, 1.0, -1.0]
    assert experiments._correct(np.array([1.0, 1.0, 1.0, -1.0]), f).tolist() == [1, 1, 1, 1]
    assert train._accuracy(f[:, None], np.array([1.0, 1.0, 1.0, -1.0]), True) == 1.0
    clf = classifier.LANTKClassifier(variant="ntk")
    clf.classes_ = np.array(["neg", "pos"])
    clf.decision_function = lambda X: f
    assert clf.predict(None).tolist() == ["pos", "pos", "pos", "neg"]
