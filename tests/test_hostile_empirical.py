"""Hostile inputs to lantk.empirical: parameters that do not fit the network, bad inputs and
options are named before any derivative is taken (issue #13)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lantk import archs, empirical

X = np.random.default_rng(0).standard_normal((3, 6, 6, 1))
CNN_INIT, CNN_APPLY, _ = archs.cnn(1, width=4)
FC_INIT, FC_APPLY, _ = archs.fc(1, width=4)
CNN_PARAMS = CNN_INIT(jax.random.PRNGKey(0), X.shape)[1]
FC_PARAMS = FC_INIT(jax.random.PRNGKey(0), X.shape)[1]


@pytest.mark.parametrize("implementation", ["auto", "jacobian"])
def test_params_of_another_architecture(implementation):
    # was: "not enough values to unpack (expected 2, got 0)"
    with pytest.raises(ValueError, match=r"do not match the architecture.*params\[0\] "
                                         r"\(layer 0 of serial\): Conv"):
        empirical.empirical_ntk(CNN_APPLY, FC_PARAMS, X, implementation=implementation)
    with pytest.raises(ValueError, match=r"Flatten\(\) has no parameters"):
        empirical.empirical_ntk(FC_APPLY, CNN_PARAMS, X, implementation=implementation)


def test_params_for_other_inputs_or_a_truncated_tree():
    _, small = FC_INIT(jax.random.PRNGKey(0), (3, 5))
    with pytest.raises(ValueError, match=r"inputs of shape \(N, 6, 6, 1\).*W has shape \(5, 4\), "
                                         r"expected \(36, 4\)"):
        empirical.empirical_ntk(FC_APPLY, small, X)
    with pytest.raises(ValueError, match="expected parameters for 4 layers, got 3"):
        empirical.empirical_ntk(CNN_APPLY, CNN_PARAMS[:3], X)
    with pytest.raises(ValueError, match="needs inputs of rank 4"):
        empirical.empirical_ntk(CNN_APPLY, CNN_PARAMS, X.reshape(3, -1))


def test_params_leaves_must_be_finite_floats():
    nan = jax.tree_util.tree_map(lambda p: np.asarray(p) * np.nan, FC_PARAMS)
    with pytest.raises(ValueError, match=r"params\[1\]\[0\] contains NaN or infinite"):
        empirical.empirical_ntk(FC_APPLY, nan, X)
    ints = jax.tree_util.tree_map(lambda p: jnp.asarray(p, jnp.int32), FC_PARAMS)
    with pytest.raises(ValueError, match=r"params\[1\]\[0\] must be a floating-point array.*int32"):
        empirical.empirical_ntk(FC_APPLY, ints, X)
    with pytest.raises(ValueError, match="must be a floating-point array"):
        empirical.empirical_ntk(lambda p, x: x @ p["w"], {"w": "abc"}, X.reshape(3, -1))
    with pytest.raises(ValueError, match="params has no trainable leaves"):
        empirical.empirical_ntk(FC_APPLY, [(), (None, None)], X)


def test_apply_fn_must_be_callable_and_return_one_batch_array():
    with pytest.raises(ValueError, match="apply_fn must be a callable"):
        empirical.empirical_ntk(3, FC_PARAMS, X)
    x2d = X.reshape(3, -1)
    w = {"w": jnp.ones((36, 2))}
    with pytest.raises(ValueError, match="apply_fn must return one array of shape \\(N, O\\)"):
        empirical.empirical_ntk(lambda p, x: (x @ p["w"], x @ p["w"]), w, x2d)
    with pytest.raises(ValueError, match="apply_fn must return one array of shape"):
        empirical.empirical_ntk(lambda p, x: jnp.sum(x @ p["w"]), w, x2d)


@pytest.mark.parametrize("x1, match", [
    (np.zeros((0, 6, 6, 1)), "`x1` must be a non-empty batch"),
    (np.float64(1.0), "`x1` must be a non-empty batch"),
    (X * np.nan, "`x1` contains NaN"),
    ([["a"]], "`x1` must be a real numeric array"),
    (X.astype(complex), "`x1` must be a real numeric array"),
])
def test_bad_inputs(x1, match):
    with pytest.raises(ValueError, match=match):
        empirical.empirical_ntk(FC_APPLY, FC_PARAMS, x1)


def test_bad_x2_and_options():
    with pytest.raises(ValueError, match="`x2` contains NaN"):
        empirical.empirical_ntk(FC_APPLY, FC_PARAMS, X, X * np.inf)
    with pytest.raises(ValueError, match="same shape apart from the batch"):
        empirical.empirical_ntk(FC_APPLY, FC_PARAMS, X, X[:, :3])
    for bs in (0, -1, 2.5, "2"):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            empirical.empirical_ntk(FC_APPLY, FC_PARAMS, X, batch_size=bs)
    with pytest.raises(ValueError, match="trace_axes must be"):
        empirical.empirical_ntk(FC_APPLY, FC_PARAMS, X, trace_axes=(0,))
    with pytest.raises(ValueError, match="trace_axes must be"):
        empirical.empirical_ntk(FC_APPLY, FC_PARAMS, X, trace_axes=-1)
    with pytest.raises(ValueError, match="implementation must be"):
        empirical.empirical_ntk(FC_APPLY, FC_PARAMS, X, implementation=["auto"])


def test_a_good_call_still_works_after_a_bad_one():
    with pytest.raises(ValueError):
        empirical.empirical_ntk(CNN_APPLY, FC_PARAMS, X)
    k = empirical.empirical_ntk(FC_APPLY, FC_PARAMS, X, batch_size=2.0)  # 2.0 is an integer
    assert k.shape == (3, 3) and bool(jnp.all(jnp.isfinite(k)))


def test_width_study_arguments():
    x = X.reshape(3, -1)
    factory = lambda m: archs.two_layer_relu(m)  # noqa: E731
    with pytest.raises(ValueError, match="widths must hold positive integers"):
        empirical.width_study(factory, x, [1.5, 2], progress=False)
    with pytest.raises(ValueError, match="widths must hold positive integers"):
        empirical.width_study(factory, x, [0, 2], progress=False)
    with pytest.raises(ValueError, match="widths must be a sequence"):
        empirical.width_study(factory, x, 8, progress=False)
    with pytest.raises(ValueError, match="at least two positive widths"):
        empirical.width_study(factory, x, [8], progress=False)
    with pytest.raises(ValueError, match="seeds must be a positive integer"):
        empirical.width_study(factory, x, [4, 8], seeds=0, progress=False)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        empirical.width_study(factory, x, [4, 8], seed=-1, progress=False)
    with pytest.raises(ValueError, match="arch_factory must be a callable"):
        empirical.width_study(None, x, [4, 8], progress=False)
    with pytest.raises(ValueError, match="`x` contains NaN"):
        empirical.width_study(factory, x * np.nan, [4, 8], progress=False)


def test_empirical_ntk_fn_rejects_unknown_options():
    with pytest.raises(TypeError, match="unsupported keyword arguments \\['vmap_axes'\\]"):
        empirical.empirical_ntk_fn(FC_APPLY, vmap_axes=0)
    ntk_fn = empirical.empirical_ntk_fn(FC_APPLY, batch_size=2)
    with pytest.raises(TypeError, match="ntk_fn got unsupported keyword arguments"):
        ntk_fn(X, None, FC_PARAMS, diagonal_axes=())
    with pytest.raises(ValueError, match="do not match the architecture"):
        ntk_fn(X, None, CNN_PARAMS)
