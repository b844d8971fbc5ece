"""lantk.stax and lantk.archs: closed forms against the layer recursions, independent numpy
references, the stax interface (get, dtypes, jit, spec strings) and clear errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

from lantk import archs, stax

RNG = np.random.default_rng(0)


# ------------------------------------------------------------------------------------------
# independent references
# ------------------------------------------------------------------------------------------
def relu_maps_by_quadrature(q1, q2, c):
    """E[relu(u) relu(v)] and E[1{u>0} 1{v>0}] for (u, v) ~ N(0, [[q1, c], [c, q2]]) by
    integrating over the angle (the radial integral is closed form)."""
    theta = math.acos(max(-1.0, min(1.0, c / math.sqrt(q1 * q2))))
    f = lambda phi: max(math.cos(phi), 0.0) * max(math.cos(phi - theta), 0.0)
    ang, _ = integrate.quad(f, -math.pi, math.pi, points=[-math.pi / 2, math.pi / 2,
                                                          theta - math.pi / 2,
                                                          theta + math.pi / 2], limit=200)
    nngp = math.sqrt(q1 * q2) / math.pi * ang  # int_0^inf r^3 e^{-r^2/2} dr / (2 pi) = 1 / pi
    dot = (math.pi - theta) / (2 * math.pi)
    return nngp, dot


def fc_reference(x1, x2, depth, W_std, b_std):
    """NNGP/NTK recursion of a deep ReLU FC network written with arccos of the correlation."""
    d = x1.shape[1]
    b2 = 0.0 if b_std is None else b_std ** 2
    q1 = W_std ** 2 * np.sum(x1 ** 2, 1) / d + b2
    q2 = W_std ** 2 * np.sum(x2 ** 2, 1) / d + b2
    k = W_std ** 2 * x1 @ x2.T / d + b2
    ntk = k.copy()
    for layer in range(depth):
        norm = np.sqrt(np.outer(q1, q2))
        rho = np.clip(k / norm, -1, 1)
        th = np.arccos(rho)
        e = norm * (np.sin(th) + (np.pi - th) * np.cos(th)) / (2 * np.pi)
        de = (np.pi - th) / (2 * np.pi)
        w = W_std if layer < depth - 1 else 1.0  # readout W_std = 1 in archs.fc
        k_new = w ** 2 * e + b2
        ntk = k_new + w ** 2 * de * ntk
        q1, q2 = w ** 2 * q1 / 2 + b2, w ** 2 * q2 / 2 + b2
        k = k_new
    return k, ntk


def patches(x, f, s):
    """SAME-padded patches (N, P_out, f*f*C) of NHWC images, stride s."""
    n, h, w, _ = x.shape
    out_h, out_w = -(-h // s), -(-w // s)
    ph = max((out_h - 1) * s + f - h, 0)
    pw = max((out_w - 1) * s + f - w, 0)
    xp = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    ps = [xp[:, i * s:i * s + f, j * s:j * s + f, :].reshape(n, -1)
          for i in range(out_h) for j in range(out_w)]
    return np.stack(ps, 1)


# ------------------------------------------------------------------------------------------
# closed forms against recursions
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("q1,q2,c", [(1.0, 1.0, 0.3), (2.0, 0.5, -0.7), (1.5, 1.2, 1.3),
                                     (0.7, 0.9, 0.0), (1.0, 1.0, 0.999999)])
def test_relu_layer_matches_gaussian_integral(q1, q2, c):
    # Two 1-d inputs through Dense(1) with a covariance [[q1, c], [c, q2]]: the inputs are
    # rows of the Cholesky factor (scaled by sqrt(d) since Dense divides by fan-in).
    cov = np.array([[q1, c], [c, q2]])
    L = np.linalg.cholesky(cov) * math.sqrt(2)
    _, _, kernel_fn = stax.serial(stax.Dense(1), stax.Relu())
    k = kernel_fn(L[:1], L[1:], ("nngp",)).nngp
    nngp, dot = relu_maps_by_quadrature(q1, q2, c)
    assert float(k[0, 0]) == pytest.approx(nngp, rel=1e-9, abs=1e-12)
    # NTK of Dense -> Relu -> Dense(1): nngp_out + dot * nngp_in
    _, _, kf = stax.serial(stax.Dense(1), stax.Relu(), stax.Dense(1))
    ntk = float(kf(L[:1], L[1:], "ntk")[0, 0])
    assert ntk == pytest.approx(nngp + dot * c, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("depth,b_std", [(1, None), (3, None), (2, 0.3)])
def test_fc_matches_arccos_recursion(depth, b_std):
    x1, x2 = RNG.standard_normal((5, 4)), RNG.standard_normal((3, 4))
    _, _, kernel_fn = archs.fc(depth, width=8, b_std=b_std)
    k = kernel_fn(x1, x2)
    nngp, ntk = fc_reference(x1, x2, depth, math.sqrt(2), b_std)
    np.testing.assert_allclose(k.nngp, nngp, rtol=1e-11)
    np.testing.assert_allclose(k.ntk, ntk, rtol=1e-11)


def test_two_layer_relu_closed_form():
    x1, x2 = RNG.standard_normal((6, 5)), RNG.standard_normal((4, 5))
    _, _, kernel_fn = archs.two_layer_relu(64)
    k = kernel_fn(x1, x2)
    np.testing.assert_allclose(k.ntk, archs.two_layer_relu_kernel(x1, x2), rtol=1e-12)
    np.testing.assert_allclose(k.nngp, archs.two_layer_relu_kernel(x1, x2, "nngp"),
                               rtol=1e-12)
    # Direct transcription of the spec's formula.
    n1, n2 = np.linalg.norm(x1, axis=1)[:, None], np.linalg.norm(x2, axis=1)[None]
    th = np.arccos(np.clip(x1 @ x2.T / (n1 * n2), -1, 1))
    spec = (x1 @ x2.T * (np.pi - th) / (2 * np.pi)
            + n1 * n2 * (np.sin(th) + (np.pi - th) * np.cos(th)) / (2 * np.pi))
    np.testing.assert_allclose(k.ntk, spec, rtol=1e-12)
    # x with itself (angle 0): K(x, x) = |x|^2 (the sqrt is clamped; arctan2 is stable)
    kxx = np.diag(np.asarray(kernel_fn(x1, None, "ntk")))
    np.testing.assert_allclose(kxx, np.sum(x1 ** 2, 1), rtol=1e-7)
    np.testing.assert_allclose(np.diag(archs.two_layer_relu_kernel(x1)), np.sum(x1 ** 2, 1),
                               rtol=1e-7)


def test_two_layer_relu_network_is_the_spec_network():
    d, m = 5, 32
    x = RNG.standard_normal((3, d))
    init_fn, apply_fn, _ = archs.two_layer_relu(m)
    out_shape, params = init_fn(jax.random.PRNGKey(0), x.shape)
    assert out_shape == (3, 1)
    leaves = jax.tree_util.tree_leaves(params)
    W, a = leaves  # w_r are the columns of W: N(0, I_d), no 1/sqrt(d); a_r ~ N(0, 1)
    assert W.shape == (d, m) and a.shape == (m, 1)
    f = np.maximum(x @ np.asarray(W), 0) @ np.asarray(a) / math.sqrt(m)
    np.testing.assert_allclose(apply_fn(params, x), f, rtol=1e-12)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("b_std", [None, 0.4])
def test_conv_kernels_match_patch_inner_products(stride, b_std):
    """One SAME conv: Flatten readout = mean over output pixels of patch inner products
    (divided by fan-in); GAP readout = mean over all pixel pairs."""
    x1, x2 = RNG.standard_normal((3, 5, 6, 2)), RNG.standard_normal((2, 5, 6, 2))
    W_std, f = 1.7, 3
    b2 = 0.0 if b_std is None else b_std ** 2
    p1, p2 = patches(x1, f, stride), patches(x2, f, stride)
    fan_in = f * f * 2
    gram = np.einsum("npk,mqk->nmpq", p1, p2) / fan_in  # pixel-pair covariances
    conv = stax.Conv(4, (f, f), (stride, stride), "SAME", W_std=W_std, b_std=b_std)
    _, _, kf_flat = stax.serial(conv, stax.Flatten(), stax.Dense(1))
    _, _, kf_gap = stax.serial(conv, stax.GlobalAvgPool(), stax.Dense(1))
    flat = W_std ** 2 * np.mean(np.diagonal(gram, axis1=2, axis2=3), -1) + b2
    gap = W_std ** 2 * np.mean(gram, (2, 3)) + b2
    np.testing.assert_allclose(kf_flat(x1, x2, "nngp"), flat, rtol=1e-12)
    np.testing.assert_allclose(kf_gap(x1, x2, "nngp"), gap, rtol=1e-12)
    # NTK of a linear conv net: the conv weights' gradient contributes the same as the nngp
    np.testing.assert_allclose(kf_flat(x1, x2, "ntk"), 2 * flat, rtol=1e-12)
    # the conv layer alone keeps the pixel-pair covariances, in neural-tangents' layout
    _, _, kf_conv = conv
    full = kf_conv(x1, x2, "nngp")
    oh, ow = -(-5 // stride), -(-6 // stride)
    assert full.shape == (3, 2, oh, oh, ow, ow)
    ref = W_std ** 2 * gram.reshape(3, 2, oh, ow, oh, ow).transpose(0, 1, 2, 4, 3, 5) + b2
    np.testing.assert_allclose(full, ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("net", [lambda: archs.paper_cnn(1), lambda: archs.cnn(2, "flatten")])
def test_flatten_readout_diagonal_equals_full(net):
    """Same-pixel propagation (the cheap path) equals the full pixel-pair propagation."""
    x1, x2 = RNG.standard_normal((3, 8, 8, 3)), RNG.standard_normal((2, 8, 8, 3))
    _, _, kernel_fn = net()
    assert bool(kernel_fn.req)  # the Flatten readout selects the diagonal representation
    cheap = kernel_fn(x1, x2)
    full = kernel_fn(x1, x2, diagonal_spatial=False)
    np.testing.assert_allclose(cheap.nngp, full.nngp, rtol=1e-12)
    np.testing.assert_allclose(cheap.ntk, full.ntk, rtol=1e-12)


def test_gap_uses_pixel_pairs():
    _, _, kernel_fn = archs.cnn(2, "gap")
    assert not bool(kernel_fn.req)
    with pytest.raises(ValueError, match="pixel-pair"):
        kernel_fn(RNG.standard_normal((2, 4, 4, 1)), diagonal_spatial=True)


# ------------------------------------------------------------------------------------------
# architectures
# ------------------------------------------------------------------------------------------
def test_paper_cnn_structure():
    init_fn, apply_fn, kernel_fn = archs.paper_cnn(1)
    spec = kernel_fn.spec
    assert spec.startswith("serial(Conv(16, (3, 3), strides=(1, 1), padding='SAME'")
    assert spec.count("Conv(") == 7 and spec.count("Relu()") == 6
    for c, s in ((16, 1), (32, 2), (64, 2)):
        assert f"Conv({c}, (3, 3), strides=({s}, {s}), padding='SAME'" in spec
    assert spec.endswith("Flatten(), Dense(1, W_std=1.0, b_std=None))")
    out_shape, params = init_fn(jax.random.PRNGKey(0), (2, 32, 32, 3))
    assert out_shape == (2, 1)
    convs = [p for p in params if p and p[0].ndim == 4]
    assert [c[0].shape for c in convs] == [(3, 3, 3, 16), (3, 3, 16, 16), (3, 3, 16, 16),
                                          (3, 3, 16, 32), (3, 3, 32, 32), (3, 3, 32, 64),
                                          (3, 3, 64, 64)]
    assert params[-1][0].shape == (8 * 8 * 64, 1)
    x = RNG.standard_normal((2, 32, 32, 3))
    assert apply_fn(params, x).shape == (2, 1)
    _, params4 = archs.paper_cnn(4)[0](jax.random.PRNGKey(0), (2, 32, 32, 3))
    assert params4[-1][0].shape == (8 * 8 * 256, 1)
    # the kernel does not depend on k (widths)
    x1 = RNG.standard_normal((2, 8, 8, 3))
    np.testing.assert_allclose(kernel_fn(x1, None, "ntk"), archs.paper_cnn(4)[2](x1, None, "ntk"),
                               rtol=1e-13)


def test_cnn_and_fc_shapes():
    x = RNG.standard_normal((2, 6, 6, 3))
    for readout in ("flatten", "gap"):
        init_fn, apply_fn, kernel_fn = archs.cnn(3, readout, width=8)
        out_shape, params = init_fn(jax.random.PRNGKey(1), x.shape)
        assert out_shape == (2, 1) and apply_fn(params, x).shape == (2, 1)
        assert kernel_fn(x, None, "ntk").shape == (2, 2)
        assert kernel_fn.spec.count("Conv(8, (3, 3), strides=(1, 1), padding='SAME'") == 3
    init_fn, apply_fn, kernel_fn = archs.fc(2, width=16)
    _, params = init_fn(jax.random.PRNGKey(1), x.shape)
    assert apply_fn(params, x).shape == (2, 1)
    assert kernel_fn(x, None, "nngp").shape == (2, 2)
    with pytest.raises(ValueError):
        archs.cnn(2, "max")
    with pytest.raises(ValueError):
        archs.paper_cnn(0)


# ------------------------------------------------------------------------------------------
# interface
# ------------------------------------------------------------------------------------------
def test_get_forms():
    x1, x2 = RNG.standard_normal((3, 4)), RNG.standard_normal((2, 4))
    _, _, kernel_fn = archs.fc(2)
    both = kernel_fn(x1, x2)
    assert both._fields == ("nngp", "ntk")
    assert isinstance(kernel_fn(x1, x2, "ntk"), jax.Array)
    rev = kernel_fn(x1, x2, ("ntk", "nngp"))
    assert rev._fields == ("ntk", "nngp")
    np.testing.assert_array_equal(rev.ntk, both.ntk)
    np.testing.assert_array_equal(kernel_fn(x1, x2, get="nngp"), both.nngp)
    cov = kernel_fn(x1, x2, ("cov1", "cov2"))
    assert cov.cov1.shape == (3,) and cov.cov2.shape == (2,)
    # kernel_fn(x, None) == kernel_fn(x, x), symmetric
    sym = kernel_fn(x1, None, "ntk")
    np.testing.assert_allclose(sym, kernel_fn(x1, x1, "ntk"), rtol=1e-12)
    np.testing.assert_allclose(sym, sym.T, rtol=1e-12)


def test_nngp_only_does_not_compute_ntk():
    _, _, kernel_fn = archs.paper_cnn(1)
    x = jnp.asarray(RNG.standard_normal((2, 8, 8, 3)))

    def n_ops(get):
        jaxpr = jax.make_jaxpr(lambda a: kernel_fn._compute(a, None, get=get, diag=True))(x)
        return len(jaxpr.eqns)

    assert n_ops(("nngp",)) < n_ops(("nngp", "ntk")) - 50
    assert n_ops(("nngp",)) == n_ops(("cov1", "nngp"))  # cov1 is free; only ntk costs


@pytest.mark.usefixtures("x64")  # jnp.asarray / jax.jit of float64 inputs
def test_dtypes_and_array_types():
    x1 = RNG.standard_normal((3, 6, 6, 2))
    _, _, kernel_fn = archs.cnn(2)
    k64 = kernel_fn(x1, None, "ntk")
    assert k64.dtype == jnp.float64
    k32 = kernel_fn(x1.astype(np.float32), None, "ntk")
    assert k32.dtype == jnp.float32
    np.testing.assert_allclose(k32, k64, rtol=2e-5)
    kj = kernel_fn(jnp.asarray(x1), None, "ntk")
    np.testing.assert_allclose(kj, k64, rtol=1e-13)
    xi = (RNG.integers(-3, 4, (2, 6, 6, 2))).astype(np.int32)
    assert kernel_fn(xi, None, "ntk").dtype == jnp.float64


@pytest.mark.usefixtures("x64")  # jnp.asarray / jax.jit of float64 inputs
def test_kernel_fn_under_jit_and_vmap_free():
    x1, x2 = RNG.standard_normal((3, 6, 6, 2)), RNG.standard_normal((2, 6, 6, 2))
    _, _, kernel_fn = archs.paper_cnn(1)
    jitted = jax.jit(lambda a, b: kernel_fn(a, b, "ntk"))
    np.testing.assert_allclose(jitted(x1, x2), kernel_fn(x1, x2, "ntk"), rtol=1e-12)


def test_spec_is_stable_and_rebuilds_the_network():
    names = {n: getattr(stax, n) for n in stax.__all__}
    for net in (archs.paper_cnn(1), archs.cnn(2, "gap", b_std=0.1), archs.fc(3),
                stax.serial(stax.Dense(3), stax.Erf(0.5, 2.0, 0.1), stax.Dense(1)),
                archs.two_layer_relu(64)):
        spec = net[2].spec
        rebuilt = eval(spec, {"__builtins__": {}}, names)
        assert rebuilt[2].spec == spec
        assert net[2].spec == spec  # attribute is a plain, stable string
    assert archs.paper_cnn(1)[2].spec == archs.paper_cnn(1)[2].spec
    assert archs.paper_cnn(1)[2].spec != archs.paper_cnn(1, W_std=1.0)[2].spec
    assert "DenseUnscaled(64)" in archs.two_layer_relu(64)[2].spec


def test_conv_defaults_follow_neural_tangents():
    _, _, kf = stax.Conv(4, (3, 3))
    assert "strides=(1, 1), padding='VALID'" in kf.spec
    init_fn, _, _ = stax.Conv(4, (3, 3))
    out_shape, params = init_fn(jax.random.PRNGKey(0), (2, 7, 7, 3))
    assert out_shape == (2, 5, 5, 4) and params[0].shape == (3, 3, 3, 4) and params[1] is None


def test_docstring_examples_run():
    import doctest

    import lantk.archs
    import lantk.empirical
    import lantk.stax

    for module in (lantk.stax, lantk.archs, lantk.empirical):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------
def test_bad_inputs_raise_value_error():
    _, _, conv_kf = archs.cnn(1)
    _, _, fc_kf = archs.fc(1)
    x = RNG.standard_normal((2, 6, 6, 3))
    with pytest.raises(ValueError, match="same shape apart from the batch"):
        conv_kf(x, RNG.standard_normal((2, 6, 6, 2)))  # channels
    with pytest.raises(ValueError, match="same shape apart from the batch"):
        conv_kf(x, RNG.standard_normal((2, 5, 6, 3)))  # spatial
    with pytest.raises(ValueError, match="same shape apart from the batch"):
        fc_kf(RNG.standard_normal((2, 4)), RNG.standard_normal((2, 5)))
    with pytest.raises(ValueError, match="Conv"):
        conv_kf(RNG.standard_normal((2, 5)))  # rank
    with pytest.raises(ValueError, match="batch axis"):
        fc_kf(RNG.standard_normal(5))
    bad = x.copy()
    bad[0, 1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        conv_kf(bad)
    bad[0, 1, 2, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        conv_kf(x, bad)
    with pytest.raises(ValueError, match="unknown `get`"):
        conv_kf(x, None, "ntkk")
    with pytest.raises(ValueError, match="unknown `get`"):
        conv_kf(x, None, ("nngp", "foo"))
    with pytest.raises(ValueError):
        conv_kf(x, None, 3)
    _, _, relu_first = stax.serial(stax.Relu(), stax.Dense(1))
    with pytest.raises(ValueError, match="Gaussian"):
        relu_first(RNG.standard_normal((2, 3)))
    with pytest.raises(ValueError, match="padding"):
        stax.Conv(4, (3, 3), padding="FULL")
    with pytest.raises(TypeError):
        stax.serial(stax.Dense(1), (None, None, None))


@pytest.mark.parametrize("act", [stax.Relu, lambda: stax.LeakyRelu(0.2), stax.Abs,
                                 lambda: stax.ABRelu(-0.5, 2.0)])
def test_float32_matches_float64(act):
    """float32 and float64 agree (the vectorised arctan2 is accurate in both), including
    zero-variance inputs (angle pi/2, as in neural-tangents) and identical inputs (angle
    exactly 0)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 6, 6, 2))
    x[1] = 0.0  # an all-zero image: zero variances everywhere
    # strongly anti-correlated with image 2 (exact +-1 correlations of *different* inputs are
    # ill-conditioned in any precision: the angle moves like sqrt(rounding error) there)
    x[3] = -0.5 * x[2] + 0.2 * rng.standard_normal((6, 6, 2))
    conv = lambda: stax.Conv(4, (3, 3), padding="SAME", W_std=1.3, b_std=None)
    _, _, kernel_fn = stax.serial(conv(), act(), conv(), act(), stax.Flatten(), stax.Dense(1))
    k64 = kernel_fn(x, x)
    k32 = kernel_fn(x.astype(np.float32), x.astype(np.float32))
    for name in ("nngp", "ntk"):
        a, b = np.asarray(getattr(k32, name), np.float64), np.asarray(getattr(k64, name))
        assert np.max(np.abs(a - b)) <= 2e-6 * np.max(np.abs(b)), name
