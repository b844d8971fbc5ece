"""Hostile inputs to lantk.archs: bad widths, depths and inputs name the argument (issue #13)."""

import numpy as np
import pytest

from lantk import archs


@pytest.mark.parametrize("bad", [-5, 0, 2.5, "wide", None, True, float("nan")])
def test_two_layer_relu_width(bad):
    with pytest.raises(ValueError, match="width must be a positive integer"):
        archs.two_layer_relu(bad)


@pytest.mark.parametrize("builder", [archs.fc, lambda depth, **kw: archs.cnn(depth, **kw)])
@pytest.mark.parametrize("depth", [0, -1, 1.5, "2", None])
def test_depth_must_be_a_positive_integer(builder, depth):
    with pytest.raises(ValueError, match="depth must be a positive integer"):
        builder(depth)


@pytest.mark.parametrize("builder", [archs.fc, archs.cnn])
@pytest.mark.parametrize("width", [0, -8, 3.5, "64"])
def test_width_must_be_a_positive_integer(builder, width):
    with pytest.raises(ValueError, match="width must be a positive integer"):
        builder(1, width=width)


@pytest.mark.parametrize("k", [0, -1, 1.5, "1", None])
def test_paper_cnn_k(k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        archs.paper_cnn(k)


@pytest.mark.parametrize("builder", [archs.paper_cnn, lambda **kw: archs.cnn(1, **kw)])
def test_cnn_options(builder):
    with pytest.raises(ValueError, match="outputs must be a positive integer"):
        builder(outputs=0)
    with pytest.raises(ValueError, match="filter_shape must be a tuple of positive integers"):
        builder(filter_shape=3)
    with pytest.raises(ValueError, match="filter_shape must be a tuple of positive integers"):
        builder(filter_shape=(3, 0))
    with pytest.raises(ValueError, match="W_std must be a finite number"):
        builder(W_std=float("inf"))
    with pytest.raises(ValueError, match="b_std must be non-negative"):
        builder(b_std=-1.0)


def test_cnn_readout():
    with pytest.raises(ValueError, match="readout must be 'flatten' or 'gap'"):
        archs.cnn(1, "max")
    with pytest.raises(ValueError, match="readout must be 'flatten' or 'gap'"):
        archs.cnn(1, ["gap"])


def test_fc_scales():
    with pytest.raises(ValueError, match="W_std must be a finite number"):
        archs.fc(1, W_std=float("nan"))
    with pytest.raises(ValueError, match="W_std must be non-negative"):
        archs.fc(1, readout_W_std=-2.0)


X = np.random.default_rng(0).standard_normal((3, 4))


@pytest.mark.parametrize("x1, match", [
    (X * np.nan, "x1 contains NaN"),
    (np.where(X > 0, np.inf, X), "x1 contains inf"),
    (np.ones(3), "x1 must have shape \\(N, d\\)"),
    (np.ones((2, 0)), "x1 has no features"),
    ([["a", "b"]], "x1 must be a numeric array"),
])
def test_two_layer_relu_kernel_bad_x1(x1, match):
    with pytest.raises(ValueError, match=match):
        archs.two_layer_relu_kernel(x1)


def test_two_layer_relu_kernel_bad_x2_and_get():
    with pytest.raises(ValueError, match="x2 contains NaN"):
        archs.two_layer_relu_kernel(X, X * np.nan)
    with pytest.raises(ValueError, match="different dimensions: 4 vs 2"):
        archs.two_layer_relu_kernel(X, X[:, :2])
    with pytest.raises(ValueError, match="get must be 'ntk' or 'nngp'"):
        archs.two_layer_relu_kernel(X, get="cov1")


def test_two_layer_relu_kernel_empty_and_zero_inputs_are_handled():
    assert archs.two_layer_relu_kernel(np.zeros((0, 4)), X).shape == (0, 3)
    assert archs.two_layer_relu_kernel(X, np.zeros((0, 4))).shape == (3, 0)
    K = archs.two_layer_relu_kernel(np.zeros((2, 4)), X)  # K(0, x) = 0, not NaN
    np.testing.assert_array_equal(K, 0.0)
