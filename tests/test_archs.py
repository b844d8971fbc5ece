"""lantk.archs: the ``outputs`` keyword of cnn / paper_cnn (multi-class readouts) and the
readout scale, which multiplies the kernel by readout_W_std ** 2 when there are no biases."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from lantk import archs
from lantk.empirical import empirical_ntk

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("readout", ["flatten", "gap"])
def test_cnn_outputs_shapes_and_same_kernel(readout):
    x1, x2 = RNG.standard_normal((3, 6, 6, 2)), RNG.standard_normal((2, 6, 6, 2))
    init_fn, apply_fn, kernel_fn = archs.cnn(2, readout, width=8, outputs=10)
    out_shape, params = init_fn(jax.random.PRNGKey(0), x1.shape)
    assert out_shape == (3, 10)
    assert params[-1][0].shape[-1] == 10
    assert apply_fn(params, x1).shape == (3, 10)
    assert kernel_fn.spec.endswith("Dense(10, W_std=1.0, b_std=None))")
    k1 = archs.cnn(2, readout, width=8)[2](x1, x2)
    k10 = kernel_fn(x1, x2)
    np.testing.assert_array_equal(np.asarray(k10.ntk), np.asarray(k1.ntk))
    np.testing.assert_array_equal(np.asarray(k10.nngp), np.asarray(k1.nngp))


def test_paper_cnn_outputs():
    init_fn, apply_fn, kernel_fn = archs.paper_cnn(1, outputs=3)
    x = RNG.standard_normal((2, 8, 8, 3))
    out_shape, params = init_fn(jax.random.PRNGKey(0), x.shape)
    assert out_shape == (2, 3) and apply_fn(params, x).shape == (2, 3)
    assert params[-1][0].shape == (2 * 2 * 64, 3)
    np.testing.assert_array_equal(np.asarray(kernel_fn(x, None, "ntk")),
                                  np.asarray(archs.paper_cnn(1)[2](x, None, "ntk")))


def test_each_output_of_a_finite_network_has_the_single_output_ntk():
    """With shared hidden weights, output c of a C-output network is the 1-output network
    whose readout is column c: its empirical NTK block is that network's NTK."""
    x = RNG.standard_normal((4, 5, 5, 1))
    _, apply3, _ = archs.cnn(2, width=6, outputs=3)
    _, params3 = archs.cnn(2, width=6, outputs=3)[0](jax.random.PRNGKey(1), x.shape)
    per_output = np.asarray(empirical_ntk(apply3, params3, x, trace_axes=()))
    assert per_output.shape == (4, 4, 3, 3)
    _, apply1, _ = archs.cnn(2, width=6)
    for c in range(3):
        params1 = list(params3)
        params1[-1] = (params3[-1][0][:, c:c + 1],) + tuple(params3[-1][1:])
        np.testing.assert_allclose(per_output[:, :, c, c],
                                   np.asarray(empirical_ntk(apply1, params1, x)), rtol=1e-12)
    # the outputs differ: different readout columns
    assert not np.allclose(per_output[:, :, 0, 0], per_output[:, :, 1, 1])


@pytest.mark.parametrize("readout", ["flatten", "gap"])
def test_readout_scale_multiplies_the_kernel(readout):
    x = RNG.standard_normal((3, 5, 5, 2))
    base = archs.cnn(3, readout)[2](x)
    small = archs.cnn(3, readout, readout_W_std=0.1, outputs=10)[2](x)
    np.testing.assert_allclose(np.asarray(small.ntk), 0.01 * np.asarray(base.ntk), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(small.nngp), 0.01 * np.asarray(base.nngp), rtol=1e-12)
    # with biases the readout scale no longer factors out
    b = archs.cnn(3, readout, b_std=0.5)[2](x, None, "ntk")
    b_small = archs.cnn(3, readout, b_std=0.5, readout_W_std=0.1)[2](x, None, "ntk")
    assert not np.allclose(np.asarray(b_small), 0.01 * np.asarray(b), rtol=1e-3)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10", None])
def test_bad_outputs_raise(bad):
    with pytest.raises(ValueError, match="outputs must be a positive integer"):
        archs.cnn(2, outputs=bad)
    with pytest.raises(ValueError, match="outputs must be a positive integer"):
        archs.paper_cnn(1, outputs=bad)


def test_numpy_integer_outputs_accepted():
    assert archs.cnn(1, width=4, outputs=np.int64(4))[0](jax.random.PRNGKey(0), (1, 3, 3, 1))[0] == (1, 4)
