"""lantk.stax combinators (FanOut, parallel, FanInSum, FanInConcat, repeat), pooling (AvgPool,
SumPool, GlobalSumPool) and Dropout: exact identities, apply_fn against explicit numpy
computations, Monte Carlo agreement of the kernels with finite networks, neural-tangents'
README WideResnet, and argument validation."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from lantk import empirical, stax

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 6, 6, 2))
XV = RNG.standard_normal((4, 5))  # vectors


def _k(kernel_fn, x, x2=None, **kw):
    out = kernel_fn(x, x2, ("nngp", "ntk"), **kw)
    return np.asarray(out.nngp), np.asarray(out.ntk)


def _conv(c=4, **kw):
    return stax.Conv(c, (3, 3), padding="SAME", **kw)


# ------------------------------------------------------------------------------------------
# combinators
# ------------------------------------------------------------------------------------------
def test_fanout_identities_fanin_sum_is_four_times_the_input_kernel():
    _, apply_fn, kernel_fn = stax.serial(stax.FanOut(2),
                                         stax.parallel(stax.Identity(), stax.Identity()),
                                         stax.FanInSum())
    _, _, k_id = stax.Identity()
    for x in (XV, X):
        np.testing.assert_allclose(np.asarray(kernel_fn(x, None, "nngp")),
                                   4 * np.asarray(k_id(x, None, "nngp")), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(apply_fn([[], ((), ()), ()], x)), 2 * x)
    # the same after an affine layer (the branches are one same Gaussian activation)
    _, _, k2 = stax.serial(_conv(), stax.FanOut(3),
                           stax.parallel(stax.Identity(), stax.Identity(), stax.Identity()),
                           stax.FanInSum(), stax.Flatten())
    _, _, k1 = stax.serial(_conv(), stax.Flatten())
    for a, b in zip(_k(k2, X), _k(k1, X)):
        np.testing.assert_allclose(a, 9 * b, rtol=1e-12)


def test_fanin_sum_of_independent_branches_adds_kernels():
    base = [stax.Dense(6, W_std=1.3, b_std=0.2), stax.Relu()]
    br1 = stax.serial(stax.Dense(5, W_std=1.1), stax.Relu(), stax.Dense(4, b_std=0.3))
    br2 = stax.Dense(4, W_std=0.7)
    _, _, ks = stax.serial(*base, stax.FanOut(2), stax.parallel(br1, br2), stax.FanInSum())
    _, _, ka = stax.serial(*base, br1)
    _, _, kb = stax.serial(*base, br2)
    for s, a, b in zip(_k(ks, XV), _k(ka, XV), _k(kb, XV)):
        np.testing.assert_allclose(s, a + b, rtol=1e-12)
    # a fresh branch plus an Identity of a non-Gaussian (ReLU) activation: still exact
    br3 = stax.Dense(6, W_std=0.7)
    _, _, kr = stax.serial(*base, stax.FanOut(2), stax.parallel(br3, stax.Identity()),
                           stax.FanInSum())
    _, _, kc = stax.serial(*base, br3)
    _, _, kid = stax.serial(*base)
    for s, a, b in zip(_k(kr, XV), _k(kc, XV), _k(kid, XV)):
        np.testing.assert_allclose(s, a + b, rtol=1e-12)


def test_fanin_sum_of_correlated_different_branches_is_not_implemented():
    _, _, kernel_fn = stax.serial(stax.Dense(4), stax.FanOut(2),
                                  stax.parallel(stax.Identity(), stax.Relu()), stax.FanInSum())
    with pytest.raises(NotImplementedError, match="FanInSum"):
        kernel_fn(XV)


def test_parallel_dense_fanin_concat_is_the_channel_weighted_mean():
    da, db = stax.Dense(3, W_std=1.0), stax.Dense(5, W_std=2.0, b_std=0.5)
    init_fn, apply_fn, kernel_fn = stax.serial(stax.FanOut(2), stax.parallel(da, db),
                                               stax.FanInConcat())
    ka, kb = _k(da[2], XV), _k(db[2], XV)
    for c, a, b in zip(_k(kernel_fn, XV), ka, kb):
        np.testing.assert_allclose(c, (3 * a + 5 * b) / 8, rtol=1e-12)
    # equal widths: the plain mean
    _, _, k_eq = stax.serial(stax.FanOut(2), stax.parallel(stax.Dense(4), stax.Dense(4, 2.0)),
                             stax.FanInConcat(axis=1))
    a, b = _k(stax.Dense(4)[2], XV)[0], _k(stax.Dense(4, 2.0)[2], XV)[0]
    np.testing.assert_allclose(_k(k_eq, XV)[0], (a + b) / 2, rtol=1e-12)
    # apply_fn: the concatenation of the two Dense outputs
    shape, params = init_fn(jax.random.PRNGKey(1), XV.shape)
    assert shape == (4, 8)
    out = np.asarray(apply_fn(params, XV))
    (Wa, _), (Wb, bb) = params[1]
    np.testing.assert_allclose(out[:, :3], XV @ np.asarray(Wa) / math.sqrt(5), rtol=1e-12)
    np.testing.assert_allclose(out[:, 3:], 2 * XV @ np.asarray(Wb) / math.sqrt(5)
                               + 0.5 * np.asarray(bb), rtol=1e-12)


def test_parallel_init_returns_list_of_shapes_and_apply_list_of_outputs():
    init_fn, apply_fn, kernel_fn = stax.parallel(stax.Dense(3), _conv(2))
    shapes, params = init_fn(jax.random.PRNGKey(0), [XV.shape, X.shape])
    assert shapes == [(4, 3), (3, 6, 6, 2)]
    assert isinstance(params, tuple) and len(params) == 2
    outs = apply_fn(params, [XV, X])
    assert isinstance(outs, list) and [o.shape for o in outs] == shapes
    init_o, apply_o, kernel_o = stax.FanOut(3)
    assert init_o(None, X.shape) == ([X.shape] * 3, ())
    assert all(o is X for o in apply_o((), X))
    # a network ending in branches returns one kernel per branch
    _, _, kf = stax.serial(stax.Dense(3), stax.FanOut(2))
    out = kf(XV, None, "nngp")
    assert isinstance(out, list) and len(out) == 2
    np.testing.assert_allclose(out[0], out[1])


def test_repeat_equals_serial_of_copies():
    block = stax.serial(stax.Dense(5, W_std=1.2, b_std=0.1), stax.Relu())
    init_fn, apply_fn, kernel_fn = stax.repeat(block, 3)
    _, _, k_serial = stax.serial(block, block, block)
    head = stax.Dense(5)
    _, _, kr = stax.serial(head, stax.repeat(block, 3))
    _, _, ks = stax.serial(head, block, block, block)
    for a, b in zip(_k(kr, XV), _k(ks, XV)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert kernel_fn.spec.startswith("repeat(serial(Dense(5")
    x = RNG.standard_normal((4, 5))
    shape, params = init_fn(jax.random.PRNGKey(0), x.shape)
    assert shape == x.shape
    out = x
    for i in range(3):
        W, b = params[0][0][i], params[0][1][i]
        out = np.maximum(1.2 * out @ np.asarray(W) / math.sqrt(5) + 0.1 * np.asarray(b), 0)
    np.testing.assert_allclose(np.asarray(apply_fn(params, x)), out, rtol=1e-10)
    with pytest.raises(ValueError, match="shape"):
        stax.repeat(stax.Dense(3), 2)[0](jax.random.PRNGKey(0), (4, 5))


# ------------------------------------------------------------------------------------------
# pooling
# ------------------------------------------------------------------------------------------
def _np_pool(x, window, strides, padding, kind="avg", normalize_edges=False):
    """Explicit window sums/means over NHWC images (SAME: zero padding as lax)."""
    n, h, w, c = x.shape
    (fh, fw), (sh, sw) = window, strides
    if padding == "SAME":
        oh, ow = -(-h // sh), -(-w // sw)
        ph, pw = max((oh - 1) * sh + fh - h, 0), max((ow - 1) * sw + fw - w, 0)
        lo_h, lo_w = ph // 2, pw // 2
    else:
        oh, ow = (h - fh) // sh + 1, (w - fw) // sw + 1
        lo_h = lo_w = 0
    out = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * sh - lo_h, j * sw - lo_w
            rows = [r for r in range(r0, r0 + fh) if 0 <= r < h]
            cols = [q for q in range(c0, c0 + fw) if 0 <= q < w]
            s = x[:, rows][:, :, cols].sum(axis=(1, 2))
            if kind == "avg":
                s = s / (len(rows) * len(cols) if normalize_edges else fh * fw)
            out[:, i, j] = s
    return out


@pytest.mark.parametrize("window,strides,padding,normalize_edges", [
    ((2, 2), None, "VALID", False), ((3, 2), (2, 1), "VALID", False),
    ((3, 3), (2, 2), "SAME", False), ((3, 3), (2, 2), "SAME", True),
    ((2, 3), (1, 1), "SAME", True)])
def test_pool_apply_matches_numpy_and_kernel_is_the_pooled_input_kernel(
        window, strides, padding, normalize_edges):
    init_fn, apply_fn, kernel_fn = stax.AvgPool(window, strides, padding, normalize_edges)
    st = strides or (1, 1)
    ref = _np_pool(X, window, st, padding, "avg", normalize_edges)
    out = np.asarray(apply_fn((), X))
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-14)
    assert init_fn(None, X.shape)[0] == ref.shape
    _, s_apply, s_kernel = stax.SumPool(window, strides, padding)
    np.testing.assert_allclose(np.asarray(s_apply((), X)),
                               _np_pool(X, window, st, padding, "sum"), rtol=1e-12, atol=1e-14)
    # the kernel of the pooled inputs is the input kernel of apply_fn(x), all pixel pairs
    _, _, k_id = stax.Identity()
    expect = np.asarray(k_id(ref, None, "nngp", diagonal_spatial=False))
    np.testing.assert_allclose(np.asarray(kernel_fn(X, None, "nngp")), expect, rtol=1e-12,
                               atol=1e-14)


def test_circular_pool_wraps_around():
    _, apply_fn, kernel_fn = stax.AvgPool((3, 3), padding="CIRCULAR")
    xp = np.pad(X, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="wrap")
    ref = _np_pool(xp, (3, 3), (1, 1), "VALID")
    np.testing.assert_allclose(np.asarray(apply_fn((), X)), ref, rtol=1e-12)
    _, _, k_id = stax.Identity()
    np.testing.assert_allclose(np.asarray(kernel_fn(X, None, "nngp")),
                               np.asarray(k_id(ref, None, "nngp", diagonal_spatial=False)),
                               rtol=1e-12, atol=1e-14)


def _cnn(*tail, c=4):
    return stax.serial(_conv(c, b_std=0.1), stax.Relu(), _conv(c, W_std=1.5), *tail)


@pytest.mark.parametrize("window,strides,padding", [((2, 2), None, "VALID"),
                                                    ((3, 3), (2, 2), "SAME")])
def test_sum_pool_is_window_size_times_avg_pool(window, strides, padding):
    size = math.prod(window)
    _, _, k_avg = _cnn(stax.AvgPool(window, strides, padding), stax.Flatten(), stax.Dense(1))
    _, _, k_sum = _cnn(stax.SumPool(window, strides, padding), stax.Flatten(), stax.Dense(1))
    for a, s in zip(_k(k_avg, X), _k(k_sum, X)):  # outputs x window size: kernels x size^2
        np.testing.assert_allclose(s, size ** 2 * a, rtol=1e-10)


def test_sum_pool_vs_normalized_edges_avg_pool_at_the_edges():
    # SAME: AvgPool(normalize_edges=True) divides by the valid-pixel count n(p), so the
    # full pixel-pair kernels differ by n(p) n(q).
    window, strides = (3, 3), (2, 2)
    _, _, k_avg = _cnn(stax.AvgPool(window, strides, "SAME", normalize_edges=True))
    _, _, k_sum = _cnn(stax.SumPool(window, strides, "SAME"))
    counts = np.array([3.0, 3.0, 2.0])  # 6 pixels, window 3, stride 2: pads (0, 1)
    for a, s in zip(_k(k_avg, X), _k(k_sum, X)):
        assert a.shape == (3, 3, 3, 3, 3, 3)  # (N1, N2, H, H, W, W)
        f = (counts[:, None, None, None] * counts[None, :, None, None]
             * counts[None, None, :, None] * counts[None, None, None, :])
        np.testing.assert_allclose(s, f * a, rtol=1e-10)


def test_global_sum_pool_is_pixels_squared_times_global_avg_pool():
    p = 36
    _, apply_s, k_s = _cnn(stax.GlobalSumPool(), stax.Dense(1, b_std=0.0))
    _, apply_a, k_a = _cnn(stax.GlobalAvgPool(), stax.Dense(1, b_std=0.0))
    for s, a in zip(_k(k_s, X), _k(k_a, X)):
        np.testing.assert_allclose(s, p ** 2 * a, rtol=1e-10)
    # forced diagonal_spatial=True (off-diagonal pixel pairs taken as zero): the same factor
    _, _, k_s2 = stax.GlobalSumPool()
    _, _, k_a2 = stax.GlobalAvgPool()
    np.testing.assert_allclose(np.asarray(k_s2(X, None, "nngp", diagonal_spatial=True)),
                               p ** 2 * np.asarray(k_a2(X, None, "nngp",
                                                        diagonal_spatial=True)), rtol=1e-10)
    _, ap, _ = stax.GlobalSumPool()
    np.testing.assert_allclose(np.asarray(ap((), X)), X.sum(axis=(1, 2)), rtol=1e-12)


def test_avg_pool_window_one_is_the_identity():
    _, _, k_pool = _cnn(stax.AvgPool((1, 1)), stax.Flatten(), stax.Dense(2))
    _, _, k_plain = _cnn(stax.Flatten(), stax.Dense(2))
    assert not bool(k_pool.req) and bool(k_plain.req)  # full vs same-pixel representation
    for a, b in zip(_k(k_pool, X), _k(k_plain, X)):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    # a window-1 stride-2 pool is a subsampling, exact in either representation
    _, _, k_sub = stax.serial(stax.AvgPool((1, 1), (2, 2)), stax.Flatten())
    full = np.asarray(k_sub(X, None, "nngp"))
    diag = np.asarray(k_sub(X, None, "nngp", diagonal_spatial=True))
    np.testing.assert_allclose(full, diag, rtol=1e-10)


# ------------------------------------------------------------------------------------------
# Dropout
# ------------------------------------------------------------------------------------------
def test_dropout_apply_and_kernel():
    init_fn, apply_fn, kernel_fn = stax.Dropout(0.6)
    x = RNG.standard_normal((50, 400))
    out = np.asarray(apply_fn((), x, rng=jax.random.PRNGKey(3)))
    kept = out != 0
    assert abs(kept.mean() - 0.6) < 0.01
    np.testing.assert_allclose(out[kept], x[kept] / 0.6, rtol=1e-12)
    with pytest.raises(ValueError, match="rng"):
        apply_fn((), x)
    _, apply_t, kernel_t = stax.Dropout(0.6, mode="test")
    assert apply_t((), x) is x
    # kernel: the same-input entries x 1/rate (train), unchanged in test mode
    _, _, k_base = stax.serial(stax.Dense(4, b_std=0.1), stax.Relu(), stax.Dense(3))
    _, _, k_drop = stax.serial(stax.Dense(4, b_std=0.1), stax.Relu(), stax.Dense(3),
                               stax.Dropout(0.5))
    _, _, k_test = stax.serial(stax.Dense(4, b_std=0.1), stax.Relu(), stax.Dense(3),
                               stax.Dropout(0.5, "test"))
    eye = np.eye(len(XV), dtype=bool)
    for b, d, t in zip(_k(k_base, XV), _k(k_drop, XV), _k(k_test, XV)):
        np.testing.assert_allclose(d[eye], 2 * b[eye], rtol=1e-12)
        np.testing.assert_allclose(d[~eye], b[~eye], rtol=1e-12)
        np.testing.assert_allclose(t, b, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(k_drop(XV, XV[::-1], "nngp")),
                               np.asarray(k_base(XV, XV[::-1], "nngp")), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(k_drop(XV, XV, "nngp")),
                               np.asarray(k_drop(XV, None, "nngp")), rtol=1e-12)
    # on images in the full pixel-pair form: only the same pixel of the same input
    _, _, kb = _cnn(stax.GlobalAvgPool())
    _, _, kd = _cnn(stax.Dropout(0.5), stax.GlobalAvgPool())
    diff = np.asarray(kd(X, None, "nngp")) - np.asarray(kb(X, None, "nngp"))
    _, _, k_diag = _cnn(stax.Flatten())
    np.testing.assert_allclose(np.diag(diff), np.diag(np.asarray(k_diag(X, None, "nngp"))) / 36,
                               rtol=1e-10)
    np.testing.assert_allclose(diff[~np.eye(3, dtype=bool)], 0, atol=1e-14)
    with pytest.raises(ValueError, match="inputs"):
        stax.Dropout(0.5)[2](XV)
    with pytest.raises(ValueError, match="Gaussian"):
        stax.serial(stax.Dense(3), stax.Dropout(0.5), stax.Relu())[2](XV)


def test_dropout_kernel_matches_monte_carlo():
    # Dense -> Relu -> Dense(width) -> Dropout -> Dense(1): the NNGP averages over weights and
    # masks; the diagonal carries the 1/rate factor.
    width, draws = 128, 200
    net = stax.serial(stax.Dense(width, b_std=0.2), stax.Relu(), stax.Dropout(0.7),
                      stax.Dense(1))
    init_fn, apply_fn, kernel_fn = net
    nngp = np.asarray(kernel_fn(XV, None, "nngp"))
    keys = jax.random.split(jax.random.PRNGKey(5), draws)

    def one(key):
        k1, k2 = jax.random.split(key)
        _, params = init_fn(k1, XV.shape)
        f = apply_fn(params, XV, rng=k2)
        return f @ f.T

    samples = np.asarray(jax.vmap(one)(keys))
    mean, se = samples.mean(0), samples.std(0) / math.sqrt(draws)
    assert np.all(np.abs(mean - nngp) <= 4 * se + 0.02 * np.abs(nngp).max())


# ------------------------------------------------------------------------------------------
# Monte Carlo: a small WideResNet-like block
# ------------------------------------------------------------------------------------------
def _resnet_block(c):
    return stax.serial(
        stax.Conv(c, (3, 3), padding="SAME", b_std=0.1), stax.Relu(), stax.FanOut(2),
        stax.parallel(stax.serial(stax.Conv(c, (3, 3), padding="SAME"), stax.Relu(),
                                  stax.Conv(c, (3, 3), padding="SAME", W_std=1.2)),
                      stax.Identity()),
        stax.FanInSum(), stax.AvgPool((2, 2)), stax.Flatten(), stax.Dense(1))


def test_resnet_block_nngp_matches_monte_carlo():
    """Empirical output covariance of random finite networks vs the NNGP.

    Each draw s gives A_s = f_s f_s^T (one scalar output per image); the A_s are iid with
    mean K_c (the width-c NNGP), so |mean - K_c| <= 4 standard errors (estimated from the
    draws) fails with probability < 1e-4 per entry. K_c - K = O(1/c); with c = 32 the bias
    allowance is 6% of the largest entry."""
    c, draws = 32, 200
    init_fn, apply_fn, kernel_fn = _resnet_block(c)
    nngp = np.asarray(kernel_fn(X, None, "nngp"))

    def one(key):
        _, params = init_fn(key, X.shape)
        f = apply_fn(params, X)
        return f @ f.T

    samples = np.asarray(jax.vmap(one)(jax.random.split(jax.random.PRNGKey(0),
                                                                 draws)))
    mean, se = samples.mean(0), samples.std(0) / math.sqrt(draws)
    assert np.all(np.abs(mean - nngp) <= 4 * se + 0.06 * np.abs(nngp).max()), (mean, nngp)


def test_resnet_block_ntk_matches_empirical_ntk():
    """The empirical NTK concentrates at width c (fluctuation O(1/sqrt(c))): its mean over a
    few draws is within 4 standard errors (from the draws) plus a 5% finite-width bias
    allowance of the infinite-width NTK."""
    c, draws = 64, 4
    init_fn, apply_fn, kernel_fn = _resnet_block(c)
    ntk = np.asarray(kernel_fn(X, None, "ntk"))
    samples = []
    for key in jax.random.split(jax.random.PRNGKey(1), draws):
        _, params = init_fn(key, X.shape)
        samples.append(np.asarray(empirical.empirical_ntk(apply_fn, params, X)))
    samples = np.stack(samples)
    mean, se = samples.mean(0), samples.std(0) / math.sqrt(draws)
    assert np.all(np.abs(mean - ntk) <= 4 * se + 0.05 * np.abs(ntk).max()), (mean, ntk)


# ------------------------------------------------------------------------------------------
# neural-tangents' README WideResnet
# ------------------------------------------------------------------------------------------
def WideResnetBlock(channels, strides=(1, 1), channel_mismatch=False):
    Main = stax.serial(
        stax.Relu(), stax.Conv(channels, (3, 3), strides, padding='SAME'),
        stax.Relu(), stax.Conv(channels, (3, 3), padding='SAME'))
    Shortcut = stax.Identity() if not channel_mismatch else stax.Conv(
        channels, (3, 3), strides, padding='SAME')
    return stax.serial(stax.FanOut(2),
                       stax.parallel(Main, Shortcut),
                       stax.FanInSum())


def WideResnetGroup(n, channels, strides=(1, 1)):
    blocks = []
    blocks += [WideResnetBlock(channels, strides, channel_mismatch=True)]
    for _ in range(n - 1):
        blocks += [WideResnetBlock(channels, (1, 1))]
    return stax.serial(*blocks)


def WideResnet(block_size, k, num_classes):
    return stax.serial(
        stax.Conv(16, (3, 3), padding='SAME'),
        WideResnetGroup(block_size, int(16 * k)),
        WideResnetGroup(block_size, int(32 * k), (2, 2)),
        WideResnetGroup(block_size, int(64 * k), (2, 2)),
        stax.AvgPool((8, 8)),
        stax.Flatten(),
        stax.Dense(num_classes, 1., 0.))


def test_readme_wide_resnet_runs():
    # README: WideResnet(block_size=4, k=1, num_classes=10) on CIFAR-10 (32x32x3); here a
    # small width and block count, 2 tiny images of the size the AvgPool((8, 8)) needs.
    # (29 x 29 is the smallest size that is 8 x 8 after the two stride-2 groups.)
    init_fn, apply_fn, kernel_fn = WideResnet(block_size=1, k=0.25, num_classes=2)
    x = np.random.default_rng(1).standard_normal((2, 29, 29, 3))
    k = kernel_fn(x, None, ("nngp", "ntk"))
    assert k.nngp.shape == k.ntk.shape == (2, 2)
    nngp, ntk = np.asarray(k.nngp), np.asarray(k.ntk)
    assert np.all(np.isfinite(nngp)) and np.all(np.linalg.eigvalsh(nngp) > 0)
    assert np.all(np.diag(ntk) > np.diag(nngp))
    shape, params = init_fn(jax.random.PRNGKey(0), x.shape)
    assert shape == (2, 2)
    assert apply_fn(params, x).shape == (2, 2)
    entk = np.asarray(empirical.empirical_ntk(apply_fn, params, x))
    assert entk.shape == (2, 2) and np.all(np.isfinite(entk))
    assert eval(kernel_fn.spec, vars(stax)).__class__ is tuple  # spec rebuilds the network


# ------------------------------------------------------------------------------------------
# specs and bad arguments
# ------------------------------------------------------------------------------------------
def test_specs_rebuild_the_layers():
    layers = [stax.FanOut(3), stax.parallel(stax.Dense(2), stax.Identity()), stax.FanInSum(),
              stax.FanInConcat(), stax.AvgPool((2, 2), (1, 2), "SAME", True),
              stax.SumPool((3,)), stax.GlobalSumPool(), stax.Dropout(0.5, "test"),
              stax.repeat(stax.serial(stax.Dense(3), stax.Relu()), 2)]
    for layer in layers:
        spec = layer[2].spec
        assert eval(spec, vars(stax))[2].spec == spec
    names = {"FanOut", "parallel", "FanInSum", "FanInConcat", "repeat", "AvgPool", "SumPool",
             "GlobalSumPool", "Dropout"}
    assert names <= set(stax.__all__)
    for name in names:
        assert getattr(stax, name).__doc__


@pytest.mark.parametrize("build,name", [
    (lambda: stax.FanOut(0), "num"),
    (lambda: stax.FanOut(2.5), "num"),
    (lambda: stax.AvgPool((0, 2)), "window_shape"),
    (lambda: stax.AvgPool((2, 2), padding="FOO"), "padding"),
    (lambda: stax.AvgPool((2, 2), strides=(1,)), "strides"),
    (lambda: stax.AvgPool((2, 2), normalize_edges="yes"), "normalize_edges"),
    (lambda: stax.SumPool((2, -1)), "window_shape"),
    (lambda: stax.Dropout(rate=1.5), "rate"),
    (lambda: stax.Dropout(rate=0.0), "rate"),
    (lambda: stax.Dropout(0.5, mode="eval"), "mode"),
    (lambda: stax.FanInConcat(axis=0), "axis"),
    (lambda: stax.FanInConcat(axis=-2), "axis"),
    (lambda: stax.repeat(stax.Relu(), 0), "n"),
])
def test_bad_arguments_raise_value_error_naming_them(build, name):
    with pytest.raises(ValueError, match=name):
        build()


def test_misuse_of_branches_is_reported():
    with pytest.raises(ValueError, match="FanInSum"):  # branches not combined
        stax.serial(stax.FanOut(2), stax.Dense(3))[2](XV)
    with pytest.raises(ValueError, match="list of branches"):
        stax.serial(stax.Dense(3), stax.FanInSum())[2](XV)
    with pytest.raises(ValueError, match="equal shapes"):
        stax.serial(stax.FanOut(2), stax.parallel(stax.Dense(2), stax.Dense(3)),
                    stax.FanInSum())[2](XV)
    with pytest.raises(ValueError, match="2 branches"):
        stax.serial(stax.FanOut(3), stax.parallel(stax.Dense(2), stax.Dense(2)))[2](XV)
    with pytest.raises(ValueError, match="channel"):  # axis 1 of 4-d images is spatial
        stax.serial(stax.FanOut(2), stax.FanInConcat(axis=1))[2](X)
    with pytest.raises(TypeError):
        stax.parallel(stax.Dense(2), "not a layer")
    with pytest.raises(ValueError):
        stax.parallel()
