"""The full-mode fast path (lantk/_stax/fullpath.py) for networks that end in a global pooling
layer (CNTK-GAP): it equals the general layer-by-layer path, it is taken exactly for the
networks it supports, and float32 CNTK-GAP kernels agree with float64 ones."""

import numpy as np
import pytest

from lantk import archs, stax
from lantk._stax import fullpath, kernel

GETS = ("nngp", "ntk", "cov1", "cov2")


def _nets():
    return {
        "cntk_gap": (lambda: archs.cnn(2, "gap", width=8), (5, 6)),
        "biases_leaky_abs_dense_sumpool": (lambda: stax.serial(
            stax.Conv(4, (2, 3), padding="SAME", W_std=1.3, b_std=0.3), stax.LeakyRelu(0.1),
            stax.Dense(3, W_std=1.5, b_std=0.2), stax.Abs(),
            stax.Conv(4, (3, 3), padding="SAME"), stax.Relu(), stax.GlobalSumPool(),
            stax.Dense(2), stax.Relu(), stax.Dense(1)), (5, 4)),
        "conv_then_pool": (lambda: stax.serial(
            stax.Conv(3, (3, 3), padding="SAME", W_std=2.0), stax.GlobalAvgPool(),
            stax.Dense(1)), (4, 4)),
        "conv1d": (lambda: stax.serial(
            stax.Conv(3, (3,), padding="SAME"), stax.ABRelu(-0.5, 2.0),
            stax.Conv(3, (4,), padding="SAME"), stax.Relu(), stax.GlobalAvgPool()), (7,)),
    }


def _both(make, monkeypatch, *args, get=GETS):
    """(fast path, general path) kernels of fresh copies of the network."""
    fast = make()[2](*args, get)
    with monkeypatch.context() as m:
        m.setitem(kernel._FAST_PATH, "enabled", False)
        slow = make()[2](*args, get)
    return fast, slow


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("name", sorted(_nets()))
def test_fast_path_equals_general_path(name, monkeypatch):
    make, spatial = _nets()[name]
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((3,) + spatial + (2,))
    x2 = rng.standard_normal((4,) + spatial + (2,))
    x2[2] = x1[1]  # an identical pair: its same-pixel correlation is exactly 1
    assert fullpath.split(make()[2].layers, len(spatial)) > 0
    for args in ((x1, x2), (x1, None)):
        fast, slow = _both(make, monkeypatch, *args)
        for g, a, b in zip(GETS, fast, slow):
            assert np.shape(a) == np.shape(b), g
            assert _rel(a, b) < 1e-12, (name, g, _rel(a, b))


def test_fast_path_float32_equals_general_path(monkeypatch):
    make, spatial = _nets()["cntk_gap"]
    x = np.random.default_rng(1).standard_normal((5,) + spatial + (3,)).astype(np.float32)
    fast, slow = _both(make, monkeypatch, x[:2], x[2:], get=("nngp", "ntk"))
    for a, b in zip(fast, slow):
        assert a.dtype == b.dtype == np.float32
        assert _rel(a, b) < 2e-6


def test_cntk_gap_float32_agrees_with_float64():
    """The kernels of CIFAR-shaped (32x32x3) inputs computed in float32 agree with float64 to
    1e-4 relative (entrywise), NTK and NNGP, including an identical pair."""
    _, _, kernel_fn = archs.cnn(3, "gap")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 32, 32, 3))
    x1, x2 = x[:2], x[2:].copy()
    x2[0] = x1[1]
    k32 = kernel_fn(x1.astype(np.float32), x2.astype(np.float32), ("nngp", "ntk"))
    k64 = kernel_fn(x1, x2, ("nngp", "ntk"))
    for a, b in zip(k32, k64):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == np.float32 and b.dtype == np.float64
        assert np.max(np.abs(a - b) / np.abs(b)) < 1e-4


def test_split_takes_only_supported_prefixes():
    n_sp = 2
    conv = lambda **kw: stax.Conv(4, (3, 3), padding="SAME", **kw)  # noqa: E731
    taken = [archs.cnn(3, "gap"),
             stax.serial(conv(), stax.Relu(), stax.GlobalAvgPool(), stax.Dense(1))]
    for net in taken:
        assert fullpath.split(net[2].layers, n_sp) == len(net[2].layers) - 1
    not_taken = [
        archs.cnn(2, "flatten"),  # no global pooling
        stax.serial(stax.Conv(4, (3, 3), strides=(2, 2), padding="SAME"), stax.Relu(),
                    stax.GlobalAvgPool()),  # strided
        stax.serial(stax.Conv(4, (3, 3), padding="VALID"), stax.Relu(), stax.GlobalAvgPool()),
        stax.serial(conv(parameterization="standard"), stax.Relu(), stax.GlobalAvgPool()),
        stax.serial(conv(), stax.Erf(), stax.GlobalAvgPool()),  # no fast kernel map
        stax.serial(conv(), stax.Gelu(), stax.GlobalAvgPool()),
        stax.serial(conv(), stax.Sin(), stax.GlobalAvgPool()),
        stax.serial(conv(), stax.Rbf(), stax.GlobalAvgPool()),
        stax.serial(conv(), stax.Sign(), stax.GlobalAvgPool()),
        stax.serial(conv(), stax.AvgPool((2, 2)), stax.Relu(), stax.GlobalAvgPool()),
        stax.serial(stax.Relu(), conv(), stax.GlobalAvgPool()),  # not Gaussian: general error
        stax.serial(stax.GlobalAvgPool(), stax.Dense(1)),
    ]
    for net in not_taken:
        assert fullpath.split(net[2].layers, n_sp) == 0, net[2].spec


def test_unsupported_network_still_raises_the_general_error():
    _, _, kernel_fn = stax.serial(stax.Relu(), stax.Conv(2, (3, 3), padding="SAME"),
                                  stax.GlobalAvgPool())
    x = np.ones((2, 4, 4, 1))
    with pytest.raises(ValueError, match="must be Gaussian"):
        kernel_fn(x, None, "ntk")


def test_nngp_only(monkeypatch):
    """get='nngp' (the fast path then skips the NTK) equals the general path's NNGP."""
    make, spatial = _nets()["cntk_gap"]
    x = np.random.default_rng(3).standard_normal((3,) + spatial + (2,))
    fast, slow = _both(make, monkeypatch, x, None, get="nngp")
    assert _rel(fast, slow) < 1e-12


def test_other_nonlinearities_before_a_global_pool_take_the_general_path():
    """Gelu, Sin, Cos, Rbf, Sign, Sigmoid_like, Erf: their kernel maps are not written for
    the fast path, so a CNTK-GAP built with them computes on the general path."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 4, 2))
    for act in (stax.Gelu(), stax.Sin(), stax.Cos(), stax.Rbf(), stax.Sign(),
                stax.Sigmoid_like(), stax.Erf()):
        net = stax.serial(stax.Conv(3, (3, 3), padding="SAME"), act,
                          stax.Conv(3, (3, 3), padding="SAME"), stax.Relu(),
                          stax.GlobalAvgPool(), stax.Dense(1))
        assert fullpath.split(net[2].layers, 2) == 0, net[2].spec
        k = net[2](x, None, ("nngp", "ntk"))
        assert np.all(np.isfinite(k.nngp)) and np.all(np.isfinite(k.ntk)), net[2].spec
        assert np.allclose(k.nngp, k.nngp.T), net[2].spec
