"""Hostile inputs to lantk.nth: bad seeds, widths, sample counts, shapes and options are
named before any Monte Carlo work (issue #13)."""

import numpy as np
import pytest

from lantk import nth

RNG = np.random.default_rng(0)
X = RNG.standard_normal((6, 3))
Y = np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
XT = RNG.standard_normal((2, 3))


def _nth(**change):
    kw = {"X_train": X, "y": Y, "X_test": XT, "width": 10, "samples": 4}
    kw.update(change)
    return nth.nth_kernel(kw.pop("X_train"), kw.pop("y"), kw.pop("X_test"), **kw)


@pytest.mark.parametrize("change, match", [
    ({"seed": -1}, "seed must be a non-negative integer"),   # was an 11-frame numpy traceback
    ({"seed": 1.5}, "seed must be a non-negative integer"),
    ({"seed": "0"}, "seed must be a non-negative integer"),
    ({"width": 0}, "width must be positive"),
    ({"width": -3.0}, "width must be positive"),
    ({"width": np.inf}, "width must be a finite number"),
    ({"width": "wide"}, "width must be a real number"),
    ({"samples": 0}, "samples must be a positive integer"),
    ({"samples": -2}, "samples must be a positive integer"),
    ({"samples": 2.5}, "samples must be a positive integer"),
    ({"samples": "4"}, "samples must be a positive integer"),
    ({"init": "xavier"}, "init must be 'standard'"),
    ({"init": 0}, "init must be 'standard'"),
    ({"t": -1.0}, "t must be >= 0"),
    ({"t": -np.inf}, "t must be a finite number"),
    ({"t": "end"}, "t must be a real number"),
    ({"chunk": 0}, "chunk must be a positive integer"),
    ({"chunk": -3}, "chunk must be a positive integer"),
    ({"chunk": 1.5}, "chunk must be a positive integer"),
    ({"y": Y[:4]}, "length mismatch: y has 4 rows but the training set has 6"),
    ({"y": Y * np.nan}, "y contains NaN"),
    ({"y": np.ones(6)}, "y has a single class"),
    ({"y": Y * 0.5}, "y must hold ±1"),
    ({"y": np.array(list("abcabc"))}, "y must be numeric labels"),
    ({"X_train": X[:0], "y": Y[:0]}, "X_train is empty"),
    ({"X_train": X[:, 0]}, "X_train must have shape \\(n, d\\)"),
    ({"X_train": X * np.nan}, "X_train contains NaN"),
    ({"X_train": [["a", "b", "c"]] * 6}, "X_train must be a numeric array"),
    ({"X_test": XT[0]}, "X_test must have shape \\(n, d\\)"),
    ({"X_test": XT[:, :2]}, "X_test has 2 features, X_train 3"),
    ({"X_test": XT * np.inf}, "X_test contains inf"),
    ({"X_test": np.ones((2, 0))}, "X_test has no features"),
])
def test_nth_kernel_bad_arguments(change, match):
    with pytest.raises(ValueError, match=match):
        _nth(**change)


def test_nth_kernel_accepts_integral_floats_generators_and_an_empty_test_set():
    K, Kt = _nth(samples=4.0, seed=np.random.default_rng(1))
    assert K.shape == (6, 6) and Kt.shape == (2, 6)
    K0, Kt0 = _nth(X_test=np.zeros((0, 3)))
    assert Kt0.shape == (0, 6) and np.all(np.isfinite(K0))


@pytest.mark.parametrize("args, kwargs, match", [
    ((-1, 3, 4), {}, "seed must be a non-negative integer"),
    ((0.5, 3, 4), {}, "seed must be a non-negative integer"),
    ((0, 0, 4), {}, "d must be a positive integer"),
    ((0, 3, -1), {}, "width must be a positive integer"),
    ((0, 3, 2.5), {}, "width must be a positive integer"),
    ((0, 3, 4), {"a_dist": "uniform"}, "a_dist must be 'rademacher' or 'normal'"),
])
def test_two_layer_init(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        nth.two_layer_init(*args, **kwargs)


P = nth.two_layer_init(0, 3, 4)


@pytest.mark.parametrize("fn, name", [(nth.two_layer_k4_contract, "N"),
                                      (nth.two_layer_k3f_contract, "M")])
def test_contractions_check_shapes(fn, name):
    N = np.eye(6)
    with pytest.raises(ValueError, match=f"{name} has shape \\(3, 3\\), expected \\(6, 6\\)"):
        fn(P, XT, X, np.eye(3))
    with pytest.raises(ValueError, match=f"{name} contains NaN"):
        fn(P, XT, X, N * np.nan)
    with pytest.raises(ValueError, match="X_pairs has 2 features but params\\['W'\\] is for d = 3"):
        fn(P, XT[:, :2], X, N)
    with pytest.raises(ValueError, match="X_train has 2 features"):
        fn(P, XT, X[:, :2], N)
    with pytest.raises(ValueError, match="X_train is empty"):
        fn(P, XT, X[:0], np.zeros((0, 0)))
    with pytest.raises(ValueError, match="params must be a dict"):
        fn({"W": P["W"]}, XT, X, N)
    with pytest.raises(ValueError, match="params must be a dict"):
        fn((P["W"], P["a"]), XT, X, N)
    with pytest.raises(ValueError, match="the same number m > 0 of neurons"):
        fn({"W": P["W"], "a": P["a"][:2]}, XT, X, N)
    with pytest.raises(ValueError, match="params\\['W'\\] contains NaN"):
        fn({"W": P["W"] * np.nan, "a": P["a"]}, XT, X, N)
    with pytest.raises(ValueError, match="chunk must be a positive integer"):
        fn(P, XT, X, N, chunk=0)


def test_N_t():
    H = nth.two_layer_ntk(X)
    with pytest.raises(ValueError, match="H must be symmetric"):
        nth.N_t(H + np.triu(np.ones((6, 6)), 1), Y)
    with pytest.raises(ValueError, match="H must be a square matrix"):
        nth.N_t(H[:3], Y)
    with pytest.raises(ValueError, match="H is empty"):
        nth.N_t(np.zeros((0, 0)), Y[:0])
    with pytest.raises(ValueError, match="H contains NaN"):
        nth.N_t(H * np.nan, Y)
    with pytest.raises(ValueError, match="length mismatch: y has 5 rows"):
        nth.N_t(H, Y[:5])
    with pytest.raises(ValueError, match="t must be a real number"):
        nth.N_t(H, Y, t=None)


def test_higher_order_kernels():
    x = X[:3]
    with pytest.raises(ValueError, match="indices must be four index arrays"):
        nth.higher_order_kernels(nth.two_layer_apply, P, x, indices=(0, 1))
    with pytest.raises(ValueError, match=r"indices\[2\] must lie in \[0, 3\)"):
        nth.higher_order_kernels(nth.two_layer_apply, P, x, indices=([0], [1], [3], [0]))
    with pytest.raises(ValueError, match=r"indices\[0\] must hold integer indices"):
        nth.higher_order_kernels(nth.two_layer_apply, P, x, indices=([0.5], [1], [2], [0]))
    with pytest.raises(ValueError, match="x contains NaN"):
        nth.higher_order_kernels(nth.two_layer_apply, P, x * np.nan)
    with pytest.raises(ValueError, match="x must be a non-empty batch"):
        nth.higher_order_kernels(nth.two_layer_apply, P, x[:0])
    with pytest.raises(ValueError, match="apply_fn must be a callable"):
        nth.higher_order_kernels(None, P, x)
    with pytest.raises(ValueError, match="params has no leaves"):
        nth.higher_order_kernels(nth.two_layer_apply, {}, x)


@pytest.mark.parametrize("change, match", [
    ({"width": 3, "init": "antisymmetric"}, "width must be a positive integer \\(even"),
    ({"width": 2.5}, "width must be a positive integer"),
    ({"width": "4"}, "width must be a positive integer"),
    ({"draws": 0}, "draws must be a positive integer"),
    ({"t": 0.0}, "t must be a finite training time > 0"),
    ({"t": np.inf}, "t must be a finite training time > 0"),
    ({"step": 0.0}, "step must be positive"),
    ({"step": np.nan}, "step must be a finite number"),
    ({"batch": 0}, "batch must be a positive integer"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"seed": (0, -1)}, "seed must be a non-negative integer"),
    ({"init": "zero"}, "init must be"),
    ({"y": np.arange(6) % 3}, "binary labels ±1 for trained_drift"),
])
def test_trained_drift_bad_arguments(change, match):
    kw = {"X": X, "y": Y, "width": 4, "draws": 2, "t": 1.0}
    kw.update(change)
    with pytest.raises(ValueError, match=match):
        nth.trained_drift(kw.pop("X"), kw.pop("y"), kw.pop("width"), **kw)


@pytest.mark.parametrize("change, match", [
    ({"widths": [0]}, "widths must hold positive integers"),
    ({"widths": [4.5]}, "widths must hold positive integers"),
    ({"widths": 4}, "widths must be a sequence"),
    ({"widths": []}, "widths must name at least one width"),
    ({"inits": []}, "inits must name at least one"),
    ({"inits": ["he"]}, "init must be"),
    ({"level": 1.0}, "level must be in \\(0, 1\\)"),
    ({"level": np.nan}, "level must be a finite number"),
    ({"draws": 0}, "draws must be a positive integer"),
    ({"samples": 0}, "samples must be a positive integer"),
    ({"seed": -2}, "seed must be a non-negative integer"),
])
def test_drift_experiment_bad_arguments(change, match):
    kw = {"widths": [4], "draws": 2, "t": 1.0, "samples": 10}
    kw.update(change)
    with pytest.raises(ValueError, match=match):
        nth.drift_experiment(X, Y, kw.pop("widths"), **kw)


def test_two_layer_apply():
    with pytest.raises(ValueError, match="params must be a dict"):
        nth.two_layer_apply([P["W"], P["a"]], X)
    with pytest.raises(ValueError, match="two_layer_apply needs params\\['W'\\] \\(m, d\\)"):
        nth.two_layer_apply(P, X[:, :2])
    with pytest.raises(ValueError, match="two_layer_apply needs"):
        nth.two_layer_apply({"W": P["W"], "a": P["a"][:3]}, X)
