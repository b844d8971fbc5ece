"""Empirical NTK by autodiff, and its convergence to the analytic kernel as width grows
(error ~ 1/sqrt(width): the fitted log-log slope is near -1/2)."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from lantk import archs, stax
from lantk.empirical import empirical_ntk, empirical_ntk_fn


def _rng(seed):
    return np.random.default_rng(seed)


def _slope(widths, errors):
    return float(np.polyfit(np.log(widths), np.log(errors), 1)[0])


def _mean_rel_errors(net_fn, widths, x, seeds, analytic):
    out = []
    for m in widths:
        init_fn, apply_fn, _ = net_fn(m)
        errs = []
        for s in range(seeds):
            _, params = init_fn(jax.random.PRNGKey(1000 * m + s), x.shape)
            k = np.asarray(empirical_ntk(apply_fn, params, x))
            errs.append(np.linalg.norm(k - analytic) / np.linalg.norm(analytic))
        out.append(float(np.mean(errs)))
    return out


def test_empirical_ntk_is_jacobian_inner_product():
    """A tiny network where the gradients are written by hand."""
    rng = _rng(0)
    d, m = 3, 4
    x1, x2 = rng.standard_normal((5, d)), rng.standard_normal((2, d))
    init_fn, apply_fn, _ = stax.serial(stax.Dense(m, W_std=1.5), stax.Relu(), stax.Dense(1))
    _, params = init_fn(jax.random.PRNGKey(0), x1.shape)
    (W1, _), _, (W2, _) = params
    W1, W2 = np.asarray(W1), np.asarray(W2)

    def grads(x):
        pre = 1.5 * x @ W1 / math.sqrt(d)
        h = np.maximum(pre, 0)
        g_w2 = h / math.sqrt(m)  # d f / d W2
        g_w1 = np.einsum("nd,nm->ndm", x * 1.5 / math.sqrt(d),
                         (pre > 0) * W2[:, 0] / math.sqrt(m))
        return np.concatenate([g_w1.reshape(len(x), -1), g_w2], axis=1)

    expected = grads(x1) @ grads(x2).T
    np.testing.assert_allclose(empirical_ntk(apply_fn, params, x1, x2), expected, rtol=1e-12)
    np.testing.assert_allclose(empirical_ntk(apply_fn, params, x1),
                               grads(x1) @ grads(x1).T, rtol=1e-12)
    for bs in (1, 2, 3):   # chunks that do and do not divide the batch
        np.testing.assert_allclose(empirical_ntk(apply_fn, params, x1, x2, batch_size=bs),
                                   expected, rtol=1e-12)
        np.testing.assert_allclose(empirical_ntk(apply_fn, params, x1, batch_size=bs),
                                   grads(x1) @ grads(x1).T, rtol=1e-12)


def test_multi_output_conventions():
    rng = _rng(1)
    x = rng.standard_normal((4, 3))
    init_fn, apply_fn, _ = stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(3))
    _, params = init_fn(jax.random.PRNGKey(2), x.shape)
    full = np.asarray(empirical_ntk(apply_fn, params, x, trace_axes=()))
    assert full.shape == (4, 4, 3, 3)
    # chunked (mirrored lower blocks carry the output axes swapped): the same kernel
    np.testing.assert_allclose(empirical_ntk(apply_fn, params, x, trace_axes=(), batch_size=3),
                               full, rtol=1e-12)
    traced = np.asarray(empirical_ntk(apply_fn, params, x))
    assert traced.shape == (4, 4)
    np.testing.assert_allclose(traced, np.trace(full, axis1=2, axis2=3) / 3, rtol=1e-12)
    ntk_fn = empirical_ntk_fn(apply_fn)
    np.testing.assert_allclose(ntk_fn(x, None, params), traced, rtol=1e-12)


@pytest.mark.parametrize("readout", ["flatten", "gap"])
@pytest.mark.usefixtures("x64")  # jax.jacobian of the network, in float64
def test_per_example_jacobians_match_the_batch_jacobian(readout):
    """empirical_ntk differentiates one example at a time; for a CNN with two outputs the
    result equals the contraction of the Jacobian of the whole batch (jax.jacobian)."""
    rng = _rng(4)
    x1, x2 = rng.standard_normal((3, 5, 5, 2)), rng.standard_normal((2, 5, 5, 2))
    last = stax.Flatten() if readout == "flatten" else stax.GlobalAvgPool()
    init_fn, apply_fn, _ = stax.serial(stax.Conv(3, (3, 3), padding="SAME"), stax.Relu(),
                                       stax.Conv(4, (2, 2), strides=(2, 2)), stax.Erf(), last,
                                       stax.Dense(2, b_std=0.5))
    _, params = init_fn(jax.random.PRNGKey(3), x1.shape)

    def flat_jacobian(x):
        jac = jax.jacobian(lambda p: apply_fn(p, x))(params)   # leaves (N, O, *param.shape)
        return np.concatenate([np.asarray(j).reshape(len(x), 2, -1)
                               for j in jax.tree_util.tree_leaves(jac)], axis=2)

    j1, j2 = flat_jacobian(x1), flat_jacobian(x2)
    expected = np.einsum("nop,mqp->nmoq", j1, j2)
    np.testing.assert_allclose(empirical_ntk(apply_fn, params, x1, x2, trace_axes=()), expected,
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(empirical_ntk(apply_fn, params, x1, x2, batch_size=2),
                               np.trace(expected, axis1=2, axis2=3) / 2, rtol=1e-10, atol=1e-12)


def test_empirical_bad_inputs():
    rng = _rng(2)
    init_fn, apply_fn, _ = archs.fc(1, width=4)
    _, params = init_fn(jax.random.PRNGKey(0), (2, 3))
    x = rng.standard_normal((2, 3))
    with pytest.raises(ValueError, match="same shape"):
        empirical_ntk(apply_fn, params, x, rng.standard_normal((2, 4)))
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        empirical_ntk(apply_fn, params, bad)
    with pytest.raises(ValueError, match="trace_axes"):
        empirical_ntk(apply_fn, params, x, trace_axes=(0,))


def test_two_layer_relu_converges_to_closed_form():
    rng = _rng(3)
    x = rng.standard_normal((6, 5))
    analytic = np.asarray(archs.two_layer_relu_kernel(x))
    widths = [256, 1024, 4096, 16384]
    errors = _mean_rel_errors(archs.two_layer_relu, widths, x, seeds=8, analytic=analytic)
    slope = _slope(widths, errors)
    assert errors[-1] < 0.05, errors
    assert -0.75 < slope < -0.3, (slope, errors)


@pytest.mark.parametrize("readout", ["flatten", "gap"])
def test_cnn_converges_to_analytic_kernel(readout):
    """Conv -> Relu -> Flatten/GlobalAvgPool -> Dense: the finite network of init_fn/apply_fn
    and the analytic kernel_fn describe the same model."""
    rng = _rng(4)
    x = rng.standard_normal((4, 5, 5, 2))
    widths = [64, 256, 1024, 4096]
    net = lambda m: archs.cnn(1, readout, width=m)
    analytic = np.asarray(net(1)[2](x, None, "ntk"))
    errors = _mean_rel_errors(net, widths, x, seeds=6, analytic=analytic)
    slope = _slope(widths, errors)
    assert errors[-1] < 0.02, errors
    assert -0.8 < slope < -0.3, (slope, errors)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cnn_gap_depth2", "strided_cnn"])
def test_deep_cnns_approach_analytic_kernel(name):
    """Deeper nets (a stride-2 SAME conv included): the error shrinks with width.

    (``paper_cnn`` itself is not used: its first ``Conv(16)`` does not grow with ``k``, so its
    empirical NTK keeps a width-16 fluctuation.)"""
    x = np.random.default_rng(11).standard_normal((3, 8, 8, 2))
    conv = lambda c, s=1: stax.Conv(c, (3, 3), (s, s), "SAME", W_std=math.sqrt(2))
    if name == "strided_cnn":
        net = lambda m: stax.serial(conv(m), stax.Relu(), conv(m, 2), stax.Relu(), conv(m),
                                    stax.Flatten(), stax.Dense(1))
    else:
        net = lambda m: archs.cnn(2, "gap", width=m)
    widths = [32, 128, 512]
    analytic = np.asarray(net(1)[2](x, None, "ntk"))
    errors = _mean_rel_errors(net, widths, x, seeds=6, analytic=analytic)
    assert errors[-1] < 0.6 * errors[0], errors
    assert -1.0 < _slope(widths, errors) < -0.2, errors


def test_width_study_error_shrinks_like_inverse_sqrt_width():
    from lantk import empirical
    x = np.random.default_rng(1).standard_normal((10, 6))
    r = empirical.width_study(lambda m: archs.two_layer_relu(width=m), x, [64, 512, 4096],
                              seeds=3, seed=0, progress=False)
    assert r["errors"].shape == (3, 3)
    assert np.all(np.diff(r["mean"]) < 0)
    assert -0.75 < r["slope"] < -0.25
    with pytest.raises(ValueError, match="at least two"):
        empirical.width_study(lambda m: archs.two_layer_relu(width=m), x, [64])


# -- structured derivatives == Jacobian contraction -------------------------------------------

def _cast(tree, dtype):
    return jax.tree_util.tree_map(lambda p: jax.numpy.asarray(p, dtype), tree)


def _net(name):
    if name == "fc":
        return archs.fc(2, 16, b_std=0.3), (5, 7)
    if name == "fc_multi":
        return stax.serial(stax.Dense(12, b_std=0.1), stax.Relu(), stax.Dense(3)), (5, 6)
    if name == "paper_cnn":
        return archs.paper_cnn(1, outputs=2), (3, 8, 8, 3)
    if name == "cnn_flatten":
        return archs.cnn(2, "flatten", width=4, outputs=3, b_std=0.2), (4, 6, 6, 2)
    if name == "cnn_gap":
        return archs.cnn(2, "gap", width=4, outputs=2), (4, 6, 6, 2)
    raise KeyError(name)


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["fc", "fc_multi", "paper_cnn", "cnn_flatten", "cnn_gap"])
@pytest.mark.usefixtures("x64")  # jnp.asarray(..., float64) inputs
def test_structured_equals_jacobian_contraction(name, dtype):
    from lantk import empirical
    (init_fn, apply_fn, _), shape = _net(name)
    rng = _rng(7)
    x1 = jax.numpy.asarray(rng.standard_normal(shape), dtype)
    x2 = jax.numpy.asarray(rng.standard_normal((3,) + shape[1:]), dtype)
    _, params = init_fn(jax.random.PRNGKey(5), x1.shape)
    params = _cast(params, dtype)
    # the rules do apply: every weight (not the biases) is handled by structured derivatives
    _, _, rules = empirical._plan(apply_fn, params, x1, x1.shape[0])
    n_weights = sum(1 for leaf in jax.tree_util.tree_leaves(params) if leaf.ndim >= 2 and
                    leaf.shape[0] != 1)
    assert len(rules) == n_weights > 0
    # float32: each implementation is within 1e-6 (relative to max |K|) of the exact kernel (the
    # float64 Jacobian contraction of the same float32 weights and inputs); two float32 sums in
    # different orders then differ by up to twice that (1.04e-6 seen on paper_cnn, jax 0.10)
    tol = 1e-6 if dtype == "float32" else 1e-12
    p64, x1_64 = _cast(params, "float64"), jax.numpy.asarray(x1, "float64")
    for xb in (None, x2):
        xb_64 = None if xb is None else jax.numpy.asarray(xb, "float64")
        for bs in (None, 2):
            for ta in ((-1,), ()):
                exact = empirical_ntk(apply_fn, p64, x1_64, xb_64, trace_axes=ta, batch_size=bs,
                                      implementation="jacobian")
                ref = empirical_ntk(apply_fn, params, x1, xb, trace_axes=ta, batch_size=bs,
                                    implementation="jacobian")
                got = empirical_ntk(apply_fn, params, x1, xb, trace_axes=ta, batch_size=bs,
                                    implementation="structured")
                assert got.dtype == ref.dtype == np.dtype(dtype)
                assert got.shape == ref.shape
                assert _rel(got, exact) < tol, (xb is None, bs, ta, _rel(got, exact))
                assert _rel(ref, exact) < tol, (xb is None, bs, ta, _rel(ref, exact))
                assert _rel(got, ref) < 2 * tol, (xb is None, bs, ta, _rel(got, ref))
                auto = empirical_ntk(apply_fn, params, x1, xb, trace_axes=ta, batch_size=bs)
                assert _rel(auto, exact) < tol


@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("name", ["fc_multi", "cnn_gap", "paper_cnn"])
def test_both_forms_of_the_rule_are_exact(name, dense, monkeypatch):
    """Force one form (``(a a'^T)(delta delta'^T)`` or the per-example weight gradient) for
    every Dense and Conv weight: the kernel is the Jacobian contraction either way."""
    from lantk import _structured, empirical
    monkeypatch.setattr(_structured, "choose_dense", lambda *a: dense)
    monkeypatch.setattr(empirical, "_PLANS", {})
    (init_fn, apply_fn, _), shape = _net(name)
    x = _rng(8).standard_normal(shape)
    _, params = init_fn(jax.random.PRNGKey(6), x.shape)
    _, _, rules = empirical._plan(apply_fn, params, jax.numpy.asarray(x), x.shape[0])
    assert rules and all(r[-1] == dense for r in rules)
    for bs in (None, 3):
        ref = empirical_ntk(apply_fn, params, x, trace_axes=(), batch_size=bs,
                            implementation="jacobian")
        got = empirical_ntk(apply_fn, params, x, trace_axes=(), batch_size=bs,
                            implementation="structured")
        assert _rel(got, ref) < 1e-12


def test_structured_falls_back_where_no_rule_applies():
    """Weights used twice, inside an elementwise product, as the left operand of a matmul,
    inside a nested ``jit``, and a weight passed through a transpose: the leaves with a rule
    use it, the others keep their Jacobians, and the kernel is exact."""
    from lantk import empirical
    rng = _rng(9)
    d, m = 4, 6

    @jax.jit
    def inner(h, V):
        return jax.numpy.tanh(h @ V)

    def apply_fn(p, x):
        h = jax.numpy.sin(x @ p["W"])            # rule (dense)
        h = h * p["s"] + h @ p["Q"] @ p["Q"]     # s: elementwise; Q used twice: fall back
        h = inner(h, p["V"])                     # rule, through the nested jit
        h = (p["L"] @ h.T).T                     # rule, W as the left operand
        h = h @ p["T"].T                         # the transpose is a use: fall back
        return h @ p["R"] + p["b"]               # rule; b: fall back

    params = {"W": rng.standard_normal((d, m)) / 2, "s": rng.standard_normal(m),
              "Q": rng.standard_normal((m, m)) / 3, "V": rng.standard_normal((m, m)) / 2,
              "L": rng.standard_normal((m, m)) / 2, "T": rng.standard_normal((m, m)) / 2,
              "R": rng.standard_normal((m, 2)), "b": rng.standard_normal(2)}
    x1, x2 = rng.standard_normal((5, d)), rng.standard_normal((3, d))
    names = sorted(params)   # the order of a dict's leaves
    _, _, rules = empirical._plan(apply_fn, params, jax.numpy.asarray(x1), 5)
    assert sorted(names[r[0]] for r in rules) == ["L", "R", "V", "W"]
    for x2_ in (None, x2):
        for bs in (None, 2):
            ref = empirical_ntk(apply_fn, params, x1, x2_, trace_axes=(), batch_size=bs,
                                implementation="jacobian")
            got = empirical_ntk(apply_fn, params, x1, x2_, trace_axes=(), batch_size=bs,
                                implementation="structured")
            assert _rel(got, ref) < 1e-12

    # no rule at all: "auto" is the Jacobian contraction, "structured" still exact
    def no_rule(p, x):
        return jax.numpy.tanh(x * p["a"]).sum(axis=1, keepdims=True) * p["c"]

    p2 = {"a": rng.standard_normal(d), "c": rng.standard_normal(1)}
    assert empirical._plan(no_rule, p2, jax.numpy.asarray(x1), 5)[2] == ()
    ref = empirical_ntk(no_rule, p2, x1, implementation="jacobian")
    assert _rel(empirical_ntk(no_rule, p2, x1), ref) < 1e-14
    assert _rel(empirical_ntk(no_rule, p2, x1, implementation="structured"), ref) < 1e-12
    with pytest.raises(ValueError, match="implementation"):
        empirical_ntk(no_rule, p2, x1, implementation="fast")


@pytest.mark.parametrize("name", ["valid_strided", "transpose"])
def test_structured_conv_paths_equal_jacobian_contraction(name, monkeypatch):
    """The tap-by-tap weight gradient (strided, VALID, rectangular filters) and the patches
    form that transposed convolutions keep both give the Jacobian contraction's kernel."""
    from lantk import _structured, empirical
    monkeypatch.setattr(_structured, "choose_dense", lambda *a: False)   # the gradient form
    monkeypatch.setattr(empirical, "_PLANS", {})
    if name == "valid_strided":
        net = stax.serial(stax.Conv(3, (2, 3), strides=(2, 1), padding="VALID", b_std=0.1),
                          stax.Relu(), stax.Conv(2, (3, 3), strides=(1, 2), padding="SAME"),
                          stax.Flatten(), stax.Dense(2))
    else:
        net = stax.serial(stax.ConvTranspose(3, (3, 3), strides=(2, 2), padding="SAME"),
                          stax.Relu(), stax.Conv(2, (3, 3), padding="SAME"), stax.Flatten(),
                          stax.Dense(1))
    init_fn, apply_fn, _ = net
    x = _rng(9).standard_normal((4, 7, 6, 2))
    _, params = init_fn(jax.random.PRNGKey(2), x.shape)
    closed, _, rules = empirical._plan(apply_fn, params, jax.numpy.asarray(x), x.shape[0])
    convs = [_structured.lookup(closed, r[1]) for r in rules
             if _structured.lookup(closed, r[1]).primitive.name == "conv_general_dilated"]
    assert len(convs) == 2 and not any(r[-1] for r in rules)
    assert [_structured.conv_taps_apply(e) for e in convs] == (
        [True, True] if name == "valid_strided" else [False, True])
    for x2 in (None, _rng(10).standard_normal((3, 7, 6, 2))):
        ref = empirical_ntk(apply_fn, params, x, x2, trace_axes=(), implementation="jacobian")
        got = empirical_ntk(apply_fn, params, x, x2, trace_axes=(), implementation="structured")
        assert _rel(got, ref) < 1e-12
