"""lantk.stax affine layers beyond the NTK-parameterised Dense/Conv: the standard
parameterisation (with neural-tangents' width scalings ``s``) and ``ConvTranspose``.

Finite layers against explicit NumPy/JAX computations (initialisation, forward pass),
closed forms of the kernels, Monte Carlo agreement of the NNGP with wide random networks and
of the NTK with averaged empirical NTKs, and argument validation."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from lantk import empirical, stax

RNG = np.random.default_rng(3)
X = RNG.standard_normal((3, 6, 6, 2))
XS = RNG.standard_normal((3, 3, 3, 2))  # small images for the transposed convolutions
XV = RNG.standard_normal((4, 5))  # vectors
STD = {"parameterization": "standard"}


def _k(kernel_fn, x, x2=None, **kw):
    out = kernel_fn(x, x2, ("nngp", "ntk"), **kw)
    return np.asarray(out.nngp), np.asarray(out.ntk)


def _nngp_monte_carlo(net, x, draws, seed):
    """Mean and standard error of f f^T over random draws of a network with one output."""
    init_fn, apply_fn, _ = net

    def one(key):
        _, params = init_fn(key, x.shape)
        f = apply_fn(params, x)
        return f @ f.T

    samples = np.asarray(jax.vmap(one)(jax.random.split(jax.random.PRNGKey(seed), draws)))
    return samples.mean(0), samples.std(0) / math.sqrt(draws)


def _empirical_ntk_mean(net, x, draws, seed):
    init_fn, apply_fn, _ = net
    samples = []
    for key in jax.random.split(jax.random.PRNGKey(seed), draws):
        _, params = init_fn(key, x.shape)
        samples.append(np.asarray(empirical.empirical_ntk(apply_fn, params, x)))
    samples = np.stack(samples)
    return samples.mean(0), samples.std(0) / math.sqrt(draws)


# ------------------------------------------------------------------------------------------
# standard parameterisation: the finite layers
# ------------------------------------------------------------------------------------------
def test_standard_dense_init_is_scaled_normal_draws_and_apply_is_the_plain_product(x64):
    W_std, b_std, s = 1.7, 0.3, (2, 3)
    init_fn, apply_fn, _ = stax.Dense(4, W_std=W_std, b_std=b_std, parameterization="standard",
                                      s=s)
    key = jax.random.PRNGKey(11)
    shape, (W, b) = init_fn(key, XV.shape)
    assert shape == (4, 12) and W.shape == (5, 12) and b.shape == (1, 12)
    # neural-tangents' draws: N(0, 1) of the NTK layer, times W_std / sqrt(fan_in / s[0]),
    # and the bias times b_std
    k1, k2 = jax.random.split(key)
    W0 = np.asarray(jax.random.normal(k1, (5, 12)))
    b0 = np.asarray(jax.random.normal(k2, (1, 12)))
    np.testing.assert_allclose(np.asarray(W), W0 * W_std / math.sqrt(5 / s[0]), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(b), b0 * b_std, rtol=1e-14)
    out = np.asarray(apply_fn((W, b), XV))
    np.testing.assert_allclose(out, XV @ np.asarray(W) / math.sqrt(s[0]) + np.asarray(b),
                               rtol=1e-13)


def test_standard_dense_init_statistics():
    # W ~ N(0, W_std^2 s0 / fan_in): the sample variance of 200 000 entries is within 2%
    # (its relative standard error is sqrt(2 / n) = 0.3%), the mean within 5 standard errors
    fan_in, out, W_std, s0 = 400, 250, 1.3, 2
    init_fn, _, _ = stax.Dense(out, W_std=W_std, b_std=0.5, parameterization="standard",
                               s=(s0, 2))
    _, (W, b) = init_fn(jax.random.PRNGKey(0), (1, fan_in))
    W, b = np.asarray(W), np.asarray(b)
    var = W_std ** 2 * s0 / fan_in
    assert W.shape == (fan_in, 2 * out)
    assert abs(W.var() / var - 1) < 0.02
    assert abs(W.mean()) < 5 * math.sqrt(var / W.size)
    assert abs(b.var() / 0.25 - 1) < 0.15  # 500 entries: relative s.e. 6%


def test_standard_conv_init_and_apply_match_the_ntk_layer():
    W_std, b_std = 1.4, 0.2
    init_fn, apply_fn, _ = stax.Conv(3, (3, 2), strides=(2, 1), padding="SAME", W_std=W_std,
                                     b_std=b_std, **STD)
    shape, (W, b) = init_fn(jax.random.PRNGKey(2), X.shape)
    assert shape == (3, 3, 6, 3) and W.shape == (3, 2, 2, 3) and b.shape == (1, 1, 1, 3)
    ntk_init, ntk_apply, _ = stax.Conv(3, (3, 2), strides=(2, 1), padding="SAME", b_std=b_std)
    _, (W0, b0) = ntk_init(jax.random.PRNGKey(2), X.shape)
    fan_in = 2 * 3 * 2
    np.testing.assert_allclose(np.asarray(W), np.asarray(W0) * W_std / math.sqrt(fan_in),
                               rtol=1e-14)
    np.testing.assert_allclose(np.asarray(b), np.asarray(b0) * b_std, rtol=1e-14)
    # so the standard layer at (W, b) is the same function as the NTK layer at (W0, b0)
    _, ntk_apply_1, _ = stax.Conv(3, (3, 2), strides=(2, 1), padding="SAME", W_std=W_std,
                                  b_std=b_std)
    np.testing.assert_allclose(np.asarray(apply_fn((W, b), X)),
                               np.asarray(ntk_apply_1((W0, b0), X)), rtol=1e-12, atol=1e-13)


# ------------------------------------------------------------------------------------------
# standard parameterisation: kernels
# ------------------------------------------------------------------------------------------
def test_standard_nngp_equals_ntk_parameterisation_nngp():
    for std, ntk in [
        (stax.serial(stax.Dense(7, W_std=1.2, b_std=0.3, **STD), stax.Relu(),
                     stax.Dense(2, b_std=0.1, **STD)),
         stax.serial(stax.Dense(7, W_std=1.2, b_std=0.3), stax.Relu(),
                     stax.Dense(2, b_std=0.1))),
        (stax.serial(stax.Conv(4, (3, 3), padding="CIRCULAR", b_std=0.2, **STD), stax.Relu(),
                     stax.Flatten(), stax.Dense(1, **STD)),
         stax.serial(stax.Conv(4, (3, 3), padding="CIRCULAR", b_std=0.2), stax.Relu(),
                     stax.Flatten(), stax.Dense(1))),
    ]:
        x = XV if "Dense(7" in std[2].spec else X
        np.testing.assert_allclose(np.asarray(std[2](x, None, "nngp")),
                                   np.asarray(ntk[2](x, None, "nngp")), rtol=1e-13)


def test_standard_dense_ntk_closed_forms():
    W_std, b_std = 1.3, 0.4
    nngp, ntk = _k(stax.Dense(6, W_std=W_std, b_std=b_std, **STD)[2], XV)
    gram = XV @ XV.T
    np.testing.assert_allclose(nngp, W_std ** 2 * gram / 5 + b_std ** 2, rtol=1e-13)
    np.testing.assert_allclose(ntk, gram + 1, rtol=1e-13)  # weights: x.x'; bias: 1
    # s[0] divides the fan-in
    _, ntk_s = _k(stax.Dense(6, W_std=W_std, **STD, s=(5, 2))[2], XV)
    np.testing.assert_allclose(ntk_s, gram / 5, rtol=1e-13)

    # two layers: Θ(m) = m K_relu + W2^2 Θ_relu + 1 is affine in the hidden width m
    def net(m):
        return stax.serial(stax.Dense(m, W_std=1.1, b_std=0.2, **STD), stax.Relu(),
                           stax.Dense(1, W_std=0.8, b_std=0.0, **STD))

    k_relu = np.asarray(stax.serial(stax.Dense(3, W_std=1.1, b_std=0.2), stax.Relu())[2](
        XV, None, "nngp"))
    t8, t16 = (np.asarray(net(m)[2](XV, None, "ntk")) for m in (8, 16))
    np.testing.assert_allclose(t16 - t8, 8 * k_relu, rtol=1e-12)
    # the width of the previous layer is the finite one, including s[1]
    t8s = np.asarray(stax.serial(stax.Dense(8, W_std=1.1, b_std=0.2, **STD, s=(1, 2)),
                                 stax.Relu(), stax.Dense(1, W_std=0.8, b_std=0.0, **STD,
                                                         s=(2, 1)))[2](XV, None, "ntk"))
    np.testing.assert_allclose(t8s, t8, rtol=1e-12)  # 16 channels, divided by s[0] = 2


def test_standard_conv_ntk_closed_form():
    W_std, b_std = 1.3, 0.4
    nngp, ntk = _k(stax.serial(stax.Conv(5, (3, 2), padding="SAME", W_std=W_std, b_std=b_std,
                                         **STD), stax.Flatten())[2], X)
    fan_in = 2 * 3 * 2
    np.testing.assert_allclose(ntk, fan_in * (nngp - b_std ** 2) / W_std ** 2 + 1, rtol=1e-12)


def test_standard_dense_kernels_match_monte_carlo_and_empirical_ntk(x64):
    """NNGP: the empirical output covariance of 300 random width-256 networks, within 4
    standard errors plus a 3% finite-width allowance. NTK: the mean empirical NTK of 4
    networks of width 512, within 4 standard errors plus 4% (the NTK itself grows with the
    width in this parameterisation)."""
    def net(c):
        return stax.serial(stax.Dense(c, W_std=1.2, b_std=0.3, **STD), stax.Relu(),
                           stax.Dense(c, W_std=1.1, **STD), stax.Relu(),
                           stax.Dense(1, b_std=0.2, **STD))

    wide = net(256)
    nngp, ntk = _k(wide[2], XV)
    mean, se = _nngp_monte_carlo(wide, XV, 300, seed=0)
    assert np.all(np.abs(mean - nngp) <= 4 * se + 0.03 * np.abs(nngp).max()), (mean, nngp)
    wider = net(512)
    ntk = np.asarray(wider[2](XV, None, "ntk"))
    mean, se = _empirical_ntk_mean(wider, XV, 4, seed=1)
    assert np.all(np.abs(mean - ntk) <= 4 * se + 0.04 * np.abs(ntk).max()), (mean, ntk)


def test_standard_conv_kernels_match_monte_carlo_and_empirical_ntk(x64):
    def net(c):
        return stax.serial(stax.Conv(c, (3, 3), padding="SAME", b_std=0.1, **STD), stax.Relu(),
                           stax.Conv(c, (2, 2), W_std=1.3, **STD), stax.Relu(), stax.Flatten(),
                           stax.Dense(1, b_std=0.2, **STD))

    c = 48
    nngp, ntk = _k(net(c)[2], X)
    mean, se = _nngp_monte_carlo(net(c), X, 200, seed=2)
    assert np.all(np.abs(mean - nngp) <= 4 * se + 0.06 * np.abs(nngp).max()), (mean, nngp)
    mean, se = _empirical_ntk_mean(net(c), X, 4, seed=3)
    assert np.all(np.abs(mean - ntk) <= 4 * se + 0.05 * np.abs(ntk).max()), (mean, ntk)


def test_ntk_parameterisation_is_unchanged_and_s_is_ignored():
    assert stax.Dense(3)[2].spec == "Dense(3, W_std=1.0, b_std=None)"
    assert stax.Conv(3, (2, 2))[2].spec == ("Conv(3, (2, 2), strides=(1, 1), padding='VALID', "
                                            "W_std=1.0, b_std=None)")
    net = lambda **kw: stax.serial(stax.Dense(4, b_std=0.2, **kw), stax.Relu(), stax.Dense(1))
    a, b = net(), net(parameterization="NTK", s=(3, 2))
    assert a[2].spec == b[2].spec
    for u, v in zip(_k(a[2], XV), _k(b[2], XV)):
        np.testing.assert_array_equal(u, v)
    _, params = b[0](jax.random.PRNGKey(0), XV.shape)
    assert params[0][0].shape == (5, 4)  # s[1] does not widen an NTK-parameterised layer


def test_standard_specs_rebuild_the_layers():
    layers = [stax.Dense(3, W_std=2.0, **STD), stax.Dense(3, **STD, s=(2, 4)),
              stax.Conv(2, (3, 3), padding="SAME", parameterization="Standard", s=(1, 3)),
              stax.ConvTranspose(2, (2, 2), (2, 1), "SAME", b_std=0.1),
              stax.ConvTranspose(2, (3,), **STD)]
    for layer in layers:
        spec = layer[2].spec
        assert eval(spec, vars(stax))[2].spec == spec
    assert "parameterization='standard', s=(1, 3)" in layers[2][2].spec
    assert "s=" not in stax.Dense(3, **STD)[2].spec


# ------------------------------------------------------------------------------------------
# ConvTranspose
# ------------------------------------------------------------------------------------------
def _conv_transpose_numpy(x, W, strides, padding):
    """out[q] += W[i] x[p] for q = s p + lo - i (lax.conv_transpose, unflipped filter), 2-d."""
    n, h, w, _ = x.shape
    fh, fw, _, o = W.shape
    out_sizes, los = [], []
    for size, f, s in zip((h, w), (fh, fw), strides):
        if padding == "VALID":
            total, lo = f + s - 2 + max(f - s, 0), f - 1
        else:
            total = f + s - 2
            lo = f - 1 if s > f - 1 else math.ceil(total / 2)
        out_sizes.append((size - 1) * s + 1 + total - f + 1)
        los.append(lo)
    out = np.zeros((n, *out_sizes, o))
    for p in range(h):
        for r in range(w):
            for i in range(fh):
                for j in range(fw):
                    q, t = strides[0] * p + los[0] - i, strides[1] * r + los[1] - j
                    if 0 <= q < out_sizes[0] and 0 <= t < out_sizes[1]:
                        out[:, q, t] += x[:, p, r] @ W[i, j]
    return out


@pytest.mark.parametrize("filter_shape,strides,padding", [
    ((3, 3), (2, 2), "SAME"), ((2, 3), (1, 2), "VALID"), ((3, 2), (3, 1), "VALID"),
    ((1, 2), (2, 3), "SAME"), ((4, 4), (2, 2), "SAME")])
def test_conv_transpose_apply_matches_numpy(filter_shape, strides, padding):
    init_fn, apply_fn, kernel_fn = stax.ConvTranspose(4, filter_shape, strides, padding,
                                                      W_std=1.5, b_std=0.5)
    shape, (W, b) = init_fn(jax.random.PRNGKey(0), XS.shape)
    out = np.asarray(apply_fn((W, b), XS))
    ref = _conv_transpose_numpy(XS, np.asarray(W), strides, padding)
    ref = 1.5 / math.sqrt(2 * math.prod(filter_shape)) * ref + 0.5 * np.asarray(b)
    assert out.shape == shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    assert kernel_fn(XS, None, "nngp", diagonal_spatial=True).shape == (3, 3) + shape[1:3]


def test_conv_transpose_kernel_is_the_dilated_box_sum():
    # one layer on the inputs: K'[q] = W^2 mean_i D(K)[q + i] + b^2 with D the dilated, padded
    # same-pixel input covariance; compare with an explicit NumPy sum (diagonal mode)
    f, s, W_std, b_std = (3, 2), (2, 3), 1.2, 0.3
    _, _, kernel_fn = stax.ConvTranspose(4, f, s, "SAME", W_std=W_std, b_std=b_std)
    nngp = np.asarray(kernel_fn(XS, None, "nngp", diagonal_spatial=True))  # (N, N, H', W')
    kx = np.einsum("ahwc,bhwc->abhw", XS, XS) / 2
    # the same scatter as the finite layer, of K with unit filters (the window mean)
    ref = np.zeros(nngp.shape)
    sizes, los = [], []
    for size, ff, st in zip(XS.shape[1:3], f, s):
        total = ff + st - 2
        los.append(ff - 1 if st > ff - 1 else math.ceil(total / 2))
        sizes.append(size * st)
    for p in range(3):
        for r in range(3):
            for i in range(f[0]):
                for j in range(f[1]):
                    q, t = s[0] * p + los[0] - i, s[1] * r + los[1] - j
                    if 0 <= q < sizes[0] and 0 <= t < sizes[1]:
                        ref[:, :, q, t] += kx[:, :, p, r]
    np.testing.assert_allclose(nngp, W_std ** 2 * ref / math.prod(f) + b_std ** 2, rtol=1e-12)


def test_conv_transpose_full_and_diagonal_modes_agree():
    net = stax.serial(stax.Conv(3, (2, 2), padding="SAME"), stax.Relu(),
                      stax.ConvTranspose(4, (3, 3), (2, 2), "SAME", b_std=0.2), stax.Relu(),
                      stax.ConvTranspose(4, (2, 3), (1, 2), "VALID", **STD), stax.Relu(),
                      stax.Flatten(), stax.Dense(1))
    for a, b in zip(_k(net[2], XS, diagonal_spatial=True),
                    _k(net[2], XS, diagonal_spatial=False)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    # the full pixel-pair covariances on their diagonal are the diagonal-mode ones
    layer = stax.serial(stax.Conv(3, (2, 2), padding="SAME"), stax.Relu(),
                        stax.ConvTranspose(4, (3, 2), (2, 3), "VALID"))
    full = np.asarray(layer[2](XS, None, "nngp", diagonal_spatial=False))  # (N,N,H,H,W,W)
    diag = np.asarray(layer[2](XS, None, "nngp", diagonal_spatial=True))  # (N,N,H,W)
    np.testing.assert_allclose(np.einsum("abhhww->abhw", full), diag, rtol=1e-12)


def test_conv_transpose_kernels_match_monte_carlo_and_empirical_ntk(x64):
    def net(c):
        return stax.serial(stax.ConvTranspose(c, (3, 3), (2, 2), "SAME", b_std=0.1),
                           stax.Relu(), stax.ConvTranspose(c, (2, 3), (1, 2), W_std=1.3),
                           stax.Relu(), stax.GlobalAvgPool(), stax.Dense(1))

    c = 48
    nngp, ntk = _k(net(c)[2], XS)
    mean, se = _nngp_monte_carlo(net(c), XS, 200, seed=4)
    assert np.all(np.abs(mean - nngp) <= 4 * se + 0.06 * np.abs(nngp).max()), (mean, nngp)
    mean, se = _empirical_ntk_mean(net(c), XS, 4, seed=5)
    assert np.all(np.abs(mean - ntk) <= 4 * se + 0.05 * np.abs(ntk).max()), (mean, ntk)


# ------------------------------------------------------------------------------------------
# bad arguments
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("build,name", [
    (lambda: stax.Dense(3, parameterization="mup"), "parameterization"),
    (lambda: stax.Dense(3, parameterization=None), "parameterization"),
    (lambda: stax.Conv(3, (2, 2), parameterization="std"), "parameterization"),
    (lambda: stax.ConvTranspose(3, (2, 2), parameterization=1), "parameterization"),
    (lambda: stax.Dense(3, parameterization="standard", s=(0, 1)), "s must be a pair"),
    (lambda: stax.Dense(3, parameterization="standard", s=(1,)), "s must be a pair"),
    (lambda: stax.Dense(3, parameterization="standard", s="11"), "s must be a pair"),
    (lambda: stax.Conv(3, (2, 2), parameterization="standard", s=(1, 1.5)), "s must be a pair"),
    (lambda: stax.ConvTranspose(0, (2, 2)), "ConvTranspose: out_chan"),
    (lambda: stax.ConvTranspose(3, (2, 0)), "ConvTranspose: filter_shape"),
    (lambda: stax.ConvTranspose(3, (2, 2), strides=(1,)), "ConvTranspose: strides"),
    (lambda: stax.ConvTranspose(3, (2, 2), padding="FULL"), "ConvTranspose: padding"),
    (lambda: stax.ConvTranspose(3, (2, 2), W_std=-1.0), "ConvTranspose: W_std"),
])
def test_bad_arguments_raise_value_error_naming_them(build, name):
    with pytest.raises(ValueError, match=name):
        build()


def test_unsupported_options_raise_not_implemented():
    with pytest.raises(NotImplementedError, match="CIRCULAR"):
        stax.ConvTranspose(3, (2, 2), padding="CIRCULAR")
    with pytest.raises(NotImplementedError, match="layout"):
        stax.ConvTranspose(3, (2, 2), dimension_numbers=("NCHW", "OIHW", "NCHW"))
    with pytest.raises(NotImplementedError, match="channel_axis"):
        stax.Dense(3, channel_axis=1, parameterization="standard")
