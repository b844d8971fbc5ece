"""Empirical NTK by autodiff, and its convergence to the analytic kernel as width grows
(error ~ 1/sqrt(width): the fitted log-log slope is near -1/2)."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

import lantk  # noqa: F401  (x64)
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
