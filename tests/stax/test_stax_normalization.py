"""lantk.stax.LayerNorm: the finite layer against NumPy, the kernel against its closed form
(from the kernel of the layers before it) and Monte Carlo of wide random networks, and
argument validation."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from lantk import empirical, stax

RNG = np.random.default_rng(7)
X = RNG.standard_normal((3, 5, 4, 2))
XV = RNG.standard_normal((4, 5))


def _k(kernel_fn, x, x2=None, **kw):
    out = kernel_fn(x, x2, ("nngp", "ntk"), **kw)
    return np.asarray(out.nngp), np.asarray(out.ntk)


@pytest.mark.parametrize("axis,eps", [(-1, 1e-12), ((1, 2, 3), 1e-12), ((1, 3), 0.5),
                                      ((-2, -1), 1e-3), ((3,), 2.0)])
def test_apply_matches_numpy(axis, eps):
    init_fn, apply_fn, _ = stax.LayerNorm(axis=axis, eps=eps)
    x = 3 * X + 1
    shape, params = init_fn(jax.random.PRNGKey(0), x.shape)
    assert shape == x.shape and params == ()
    ax = tuple(a % 4 for a in ((axis,) if isinstance(axis, int) else axis))
    mean = x.mean(axis=ax, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=ax, keepdims=True)
    np.testing.assert_allclose(np.asarray(apply_fn(params, x)), (x - mean) / np.sqrt(eps + var),
                               rtol=1e-12)


def test_kernel_on_vectors_is_the_normalised_dense_kernel():
    b_std, eps = 0.4, 0.3
    before = stax.Dense(8, W_std=1.3, b_std=b_std)
    k0 = before[2](XV, XV[:3], ("nngp", "ntk", "cov1", "cov2"))
    nngp, ntk = _k(stax.serial(before, stax.LayerNorm(eps=eps))[2], XV, XV[:3])
    q1, q2 = np.asarray(k0.cov1) + eps, np.asarray(k0.cov2) + eps
    scale = np.sqrt(np.outer(q1, q2))
    np.testing.assert_allclose(nngp, np.asarray(k0.nngp) / scale, rtol=1e-13)
    np.testing.assert_allclose(ntk, np.asarray(k0.ntk) / scale, rtol=1e-13)
    # eps -> 0: unit variances, the NNGP is the correlation
    nngp0 = np.asarray(stax.serial(before, stax.LayerNorm())[2](XV, None, "nngp"))
    np.testing.assert_allclose(np.diag(nngp0), 1, rtol=1e-10)


@pytest.mark.parametrize("axis", [-1, (1, 2, 3), (2, 3)])
def test_kernel_on_images_is_the_normalised_conv_kernel(axis):
    """Full pixel-pair covariances: K'(x, p; x', p') = K / sqrt(Q(x, p) Q(x', p')), Q the mean
    same-pixel variance over the normalised spatial axes, plus eps."""
    eps = 0.2
    before = stax.Conv(6, (3, 2), padding="SAME", b_std=0.3)
    k0 = before[2](X, X[:2], ("nngp", "ntk", "cov1", "cov2"), diagonal_spatial=False)
    after = stax.serial(before, stax.LayerNorm(axis=axis, eps=eps))
    nngp, ntk = _k(after[2], X, X[:2], diagonal_spatial=False)  # (N1, N2, H, H, W, W)

    def q(cov):  # (N, H, H, W, W) -> same-pixel variances (N, H, W), averaged over axis
        d = np.einsum("nhhww->nhw", np.asarray(cov)) + eps
        sp = {-1: (), (1, 2, 3): (1, 2), (2, 3): (2,)}[axis]
        return np.broadcast_to(d.mean(axis=sp, keepdims=True), d.shape) if sp else d

    q1, q2 = q(k0.cov1), q(k0.cov2)
    scale = np.sqrt(np.einsum("ahw,bgv->abhgwv", q1, q2))
    np.testing.assert_allclose(nngp, np.asarray(k0.nngp) / scale, rtol=1e-12)
    np.testing.assert_allclose(ntk, np.asarray(k0.ntk) / scale, rtol=1e-12)
    # the diagonal mode gives the same-pixel entries of the full one
    nngp_d = np.asarray(after[2](X, X[:2], "nngp", diagonal_spatial=True))
    np.testing.assert_allclose(nngp_d, np.einsum("abhhww->abhw", nngp), rtol=1e-12)
    cov1 = np.asarray(after[2](X, None, "cov1", diagonal_spatial=True))
    np.testing.assert_allclose(cov1, np.einsum("nhhww->nhw", np.asarray(k0.cov1)) / q1,
                               rtol=1e-12)


def test_layer_norm_keeps_the_output_gaussian():
    # a nonlinearity may follow it directly, and its kernel sees unit-ish variances
    _, _, kernel_fn = stax.serial(stax.Dense(4, b_std=0.2), stax.LayerNorm(), stax.Relu())
    _, _, ref = stax.serial(stax.Dense(4, b_std=0.2), stax.LayerNorm())
    k, r = np.asarray(kernel_fn(XV, None, "nngp")), np.asarray(ref(XV, None, "nngp"))
    np.testing.assert_allclose(np.diag(k), np.diag(r) / 2, rtol=1e-10)  # E relu(z)^2 = q / 2


def test_kernel_matches_monte_carlo_and_empirical_ntk(x64):
    """Conv -> LayerNorm over the image -> ReLU -> Conv -> LayerNorm over channels -> ReLU ->
    Flatten -> Dense(1): the NNGP against f f^T of 200 random width-48 networks (4 standard
    errors plus a 6% finite-width allowance; LayerNorm's statistics over 48 channels carry an
    O(1/c) bias), the NTK against the mean empirical NTK of 4 networks (plus 5%)."""
    def net(c):
        return stax.serial(stax.Conv(c, (3, 3), padding="SAME", b_std=0.3),
                           stax.LayerNorm(axis=(1, 2, 3), eps=0.1), stax.Relu(),
                           stax.Conv(c, (2, 2), W_std=1.4), stax.LayerNorm(), stax.Relu(),
                           stax.Flatten(), stax.Dense(1, b_std=0.1))

    c, draws = 48, 200
    init_fn, apply_fn, kernel_fn = net(c)
    nngp, ntk = _k(kernel_fn, X)

    def one(key):
        _, params = init_fn(key, X.shape)
        f = apply_fn(params, X)
        return f @ f.T

    samples = np.asarray(jax.vmap(one)(jax.random.split(jax.random.PRNGKey(0), draws)))
    mean, se = samples.mean(0), samples.std(0) / math.sqrt(draws)
    assert np.all(np.abs(mean - nngp) <= 4 * se + 0.06 * np.abs(nngp).max()), (mean, nngp)
    entk = []
    for key in jax.random.split(jax.random.PRNGKey(1), 4):
        _, params = init_fn(key, X.shape)
        entk.append(np.asarray(empirical.empirical_ntk(apply_fn, params, X)))
    entk = np.stack(entk)
    mean, se = entk.mean(0), entk.std(0) / 2
    assert np.all(np.abs(mean - ntk) <= 4 * se + 0.05 * np.abs(ntk).max()), (mean, ntk)


def test_spec_rebuilds_the_layer():
    for layer in (stax.LayerNorm(), stax.LayerNorm(axis=(1, 2, 3), eps=0.5),
                  stax.LayerNorm(axis=[1, -1])):
        spec = layer[2].spec
        assert eval(spec, vars(stax))[2].spec == spec
    assert stax.LayerNorm()[2].spec == "LayerNorm(axis=-1, eps=1e-12)"
    assert "LayerNorm" in stax.__all__ and stax.LayerNorm.__doc__


# ------------------------------------------------------------------------------------------
# bad arguments and unsupported uses
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    ({"axis": "channels"}, "axis must be an integer"),
    ({"axis": 1.0}, "axis must be an integer"),
    ({"axis": (1, True)}, "axis must be an integer"),
    ({"axis": ()}, "axis is empty"),
    ({"axis": (2, 2)}, "repeats"),
    ({"eps": -1e-3}, "eps must be non-negative"),
    ({"eps": float("nan")}, "eps must be a finite number"),
    ({"eps": "small"}, "eps must be a real number"),
])
def test_bad_arguments_raise_value_error_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stax.LayerNorm(**kwargs)


def test_axes_that_do_not_fit_the_input_are_reported():
    net = lambda axis: stax.serial(stax.Conv(3, (2, 2)), stax.LayerNorm(axis=axis))
    with pytest.raises(ValueError, match="channel axis"):
        net((1, 2))[2](X)
    with pytest.raises(ValueError, match="channel axis"):
        net((1, 2))[0](jax.random.PRNGKey(0), X.shape)
    with pytest.raises(ValueError, match="out of range"):
        net((4, -1))[2](X)
    with pytest.raises(ValueError, match="twice"):
        net((3, -1))[2](X)
    with pytest.raises(NotImplementedError, match="batch axis"):
        net((0, -1))[2](X)
    with pytest.raises(NotImplementedError, match="batch_axis"):
        stax.LayerNorm(batch_axis=1)


def test_non_gaussian_inputs_are_not_implemented():
    with pytest.raises(NotImplementedError, match="Gaussian"):
        stax.LayerNorm()[2](XV)  # the raw inputs
    with pytest.raises(NotImplementedError, match="Gaussian"):
        stax.serial(stax.Dense(3), stax.Relu(), stax.LayerNorm())[2](XV)
    with pytest.raises(ValueError, match="no parameters"):
        stax.LayerNorm()[1]((np.ones(2),), XV)
