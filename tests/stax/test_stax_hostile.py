"""Hostile inputs to lantk.stax: every bad argument is a clear error naming it (issue #13),
raised when the layer is built, not later as a ZeroDivisionError or an MLIR error."""

import jax
import numpy as np
import pytest

from lantk import stax

RNG = np.random.default_rng(0)
KEY = jax.random.PRNGKey(0)


@pytest.mark.parametrize("width", [0, -3, 2.5, "8", True, None, float("nan"), float("inf")])
@pytest.mark.parametrize("layer, name", [(stax.Dense, "Dense: out_dim"),
                                         (stax.DenseUnscaled, "DenseUnscaled: out_dim")])
def test_dense_widths_must_be_positive_integers(layer, name, width):
    with pytest.raises(ValueError, match=f"{name} must be a positive integer"):
        layer(width)


def test_integral_floats_and_numpy_integers_are_widths():
    assert "Dense(4," in stax.Dense(4.0)[2].spec
    assert "Dense(4," in stax.Dense(np.int64(4))[2].spec
    assert stax.Conv(np.int32(3), (2, 2))[2].spec.startswith("Conv(3, (2, 2)")


@pytest.mark.parametrize("kwargs, match", [
    ({"W_std": float("nan")}, "Dense: W_std must be a finite number"),
    ({"W_std": float("inf")}, "Dense: W_std must be a finite number"),
    ({"W_std": -1.0}, "Dense: W_std must be non-negative"),
    ({"W_std": "big"}, "Dense: W_std must be a real number"),
    ({"W_std": [1.0]}, "Dense: W_std must be a real number"),
    ({"b_std": float("inf")}, "Dense: b_std must be a finite number"),
    ({"b_std": -0.5}, "Dense: b_std must be non-negative"),
])
def test_dense_scales_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stax.Dense(4, **kwargs)


@pytest.mark.parametrize("args, kwargs, match", [
    ((-4, (3, 3)), {}, "Conv: out_chan must be a positive integer, got -4"),
    ((0, (3, 3)), {}, "Conv: out_chan must be a positive integer"),
    ((2.5, (3, 3)), {}, "Conv: out_chan must be a positive integer"),
    ((4, 3), {}, "Conv: filter_shape must be a tuple of positive integers such as"),
    ((4, "33"), {}, "Conv: filter_shape must be a tuple of positive integers"),
    ((4, ()), {}, "Conv: filter_shape is empty"),
    ((4, (3, 0)), {}, "Conv: filter_shape must be a tuple of positive integers"),
    ((4, (3, -1)), {}, "Conv: filter_shape must be a tuple of positive integers"),
    ((4, (2.5, 3)), {}, "Conv: filter_shape must be a tuple of positive integers"),
    ((4, (3, 3)), {"strides": (0, 1)}, "Conv: strides must be a tuple of positive integers"),
    ((4, (3, 3)), {"strides": (1.5, 1)}, "Conv: strides must be a tuple of positive integers"),
    ((4, (3, 3)), {"strides": 2}, "Conv: strides must be a tuple"),
    ((4, (3, 3)), {"strides": (1,)}, "Conv: strides \\(1,\\) has 1 entries but filter_shape"),
    ((4, (3, 3)), {"padding": "FULL"}, "Conv: padding must be one of"),
    ((4, (3, 3)), {"padding": 1}, "Conv: padding must be one of"),
    ((4, (3, 3)), {"W_std": float("nan")}, "Conv: W_std must be a finite number"),
    ((4, (3, 3)), {"b_std": -1.0}, "Conv: b_std must be non-negative"),
])
def test_conv_arguments_are_checked(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        stax.Conv(*args, **kwargs)


def test_conv_padding_names_are_case_insensitive():
    assert "padding='SAME'" in stax.Conv(4, (3, 3), padding="same")[2].spec


@pytest.mark.parametrize("build, match", [
    (lambda: stax.LeakyRelu(float("nan")), "LeakyRelu: alpha must be a finite number"),
    (lambda: stax.LeakyRelu("0.1"), "LeakyRelu: alpha must be a real number"),
    (lambda: stax.ABRelu(float("inf"), 1.0), "ABRelu: a must be a finite number"),
    (lambda: stax.ABRelu(0.0, None), "ABRelu: b must be a real number"),
    (lambda: stax.Erf(a=float("inf")), "Erf: a must be a finite number"),
    (lambda: stax.Erf(b=float("nan")), "Erf: b must be a finite number"),
    (lambda: stax.Erf(c="x"), "Erf: c must be a real number"),
])
def test_nonlinearity_constants_are_checked(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_serial_rejects_what_is_not_a_layer():
    with pytest.raises(ValueError, match="at least one layer"):
        stax.serial()
    with pytest.raises(TypeError, match="layer 1 of serial is not an"):
        stax.serial(stax.Dense(1), 3)
    with pytest.raises(TypeError, match="layer 0 of serial was not built by lantk.stax"):
        stax.serial((None, None, None))


# -- apply_fn with parameters that do not fit the architecture ------------------------------
def _params(layers, shape):
    init_fn, apply_fn, _ = stax.serial(*layers)
    return apply_fn, init_fn(KEY, shape)[1]


def test_apply_with_the_parameters_of_another_network_names_the_layer():
    x = RNG.standard_normal((2, 8, 8, 3))
    cnn_apply, cnn_params = _params([stax.Conv(4, (3, 3)), stax.Relu(), stax.Flatten(),
                                     stax.Dense(1)], x.shape)
    fc_apply, fc_params = _params([stax.Flatten(), stax.Dense(4), stax.Relu(), stax.Dense(1)],
                                  x.shape)
    with pytest.raises(ValueError, match=r"params\[0\] \(layer 0 of serial\): Conv\(4.*expects "
                                         r"its parameters as a pair \(W, b\), got \(\)"):
        cnn_apply(fc_params, x)
    with pytest.raises(ValueError, match=r"params\[0\].*Flatten\(\) has no parameters"):
        fc_apply(cnn_params, x)
    with pytest.raises(ValueError, match="expected parameters for 4 layers, got 3"):
        cnn_apply(cnn_params[:3], x)
    with pytest.raises(ValueError, match="serial expects params as a list"):
        cnn_apply({"W": 1.0}, x)


def test_apply_with_wrong_weight_shapes_or_inputs():
    x = RNG.standard_normal((2, 5))
    apply_fn, params = _params([stax.Dense(3), stax.Relu(), stax.Dense(1)], x.shape)
    with pytest.raises(ValueError, match=r"params\[0\].*Dense\(3.*W has shape \(5, 3\), "
                                         r"expected \(7, 3\)"):
        apply_fn(params, RNG.standard_normal((2, 7)))
    swapped = [params[2], params[1], params[0]]
    with pytest.raises(ValueError, match=r"params\[0\].*W has shape \(3, 1\), expected \(5, 3\)"):
        apply_fn(swapped, x)
    with pytest.raises(ValueError, match="has no bias \\(b_std=None\\) but its parameters hold b"):
        apply_fn([(params[0][0], np.ones(3)), (), params[2]], x)
    biased_apply, biased = _params([stax.Dense(3, b_std=0.1)], x.shape)
    with pytest.raises(ValueError, match="the bias b has shape None"):
        biased_apply([(biased[0][0], None)], x)
    conv_apply, conv_params = _params([stax.Conv(2, (3, 3))], (2, 6, 6, 1))
    with pytest.raises(ValueError, match="needs inputs of rank 4"):
        conv_apply(conv_params, RNG.standard_normal((2, 36)))
    with pytest.raises(ValueError, match=r"W has shape \(3, 3, 1, 2\), expected \(3, 3, 2, 2\)"):
        conv_apply(conv_params, RNG.standard_normal((2, 6, 6, 2)))


def test_apply_errors_survive_jit():
    x = RNG.standard_normal((2, 5))
    apply_fn, params = _params([stax.Dense(3), stax.Relu(), stax.Dense(1)], x.shape)
    with pytest.raises(ValueError, match="W has shape"):
        jax.jit(apply_fn)(params, RNG.standard_normal((2, 4)))


@pytest.mark.parametrize("shape", [(), (2,), (2, 0), (2, -4), "25", (2.0, 5), None])
def test_init_fn_checks_the_input_shape(shape):
    init_fn, _, _ = stax.Dense(3)
    with pytest.raises(ValueError, match="input_shape must"):
        init_fn(KEY, shape)


def test_conv_init_needs_the_right_rank():
    init_fn, _, _ = stax.Conv(3, (3, 3))
    with pytest.raises(ValueError, match="needs inputs of rank 4"):
        init_fn(KEY, (2, 8, 3))


# -- kernel_fn --------------------------------------------------------------------------------
KFN = stax.serial(stax.Dense(4), stax.Relu(), stax.Dense(1))[2]
CONV_KFN = stax.serial(stax.Conv(2, (3, 3)), stax.Relu(), stax.Flatten(), stax.Dense(1))[2]


@pytest.mark.parametrize("x1, match", [
    (np.zeros((0, 3)), "`x1` is empty"),
    (np.ones((2, 0)), "`x1` has an axis of size 0"),
    (np.ones(3), "batch axis and a feature/channel axis"),
    (np.ones((2, 3), complex), "must be real-valued"),
    (np.array([["a", "b"]]), "must be real-valued"),
    (np.array([[1.0, np.nan]]), "NaN or infinite"),
    (np.array([[1.0, np.inf]]), "NaN or infinite"),
])
def test_kernel_fn_inputs(x1, match):
    with pytest.raises(ValueError, match=match):
        KFN(x1, None, "ntk")


def test_kernel_fn_second_argument_and_get():
    x = RNG.standard_normal((3, 4))
    with pytest.raises(ValueError, match="`x2` is empty"):
        KFN(x, np.zeros((0, 4)), "ntk")
    with pytest.raises(ValueError, match="same shape apart from the batch"):
        KFN(x, x[:, :2], "ntk")
    with pytest.raises(ValueError, match="`x2` contains NaN"):
        KFN(x, x * np.nan, "ntk")
    with pytest.raises(ValueError, match="unknown `get`"):
        KFN(x, None, "NTK")
    with pytest.raises(ValueError, match="`get` is empty"):
        KFN(x, None, ())
    with pytest.raises(ValueError, match="`get` must be None, a string or a tuple"):
        KFN(x, None, 1)
    with pytest.raises(TypeError, match="unsupported keyword"):
        KFN(x, None, "ntk", bogus=1)
    with pytest.raises(ValueError, match="smaller than the filter"):
        CONV_KFN(RNG.standard_normal((2, 2, 2, 1)), None, "ntk")
    with pytest.raises(ValueError, match="Conv with a 2-d filter needs inputs of shape"):
        CONV_KFN(x, None, "ntk")
