"""Accuracy of the private numerics of ``lantk._stax`` (``_angle``, ``_sqrt0``).

``_angle`` replaces ``jnp.arctan2`` on the ReLU path for speed; its docstring promises a few
ulp: max abs error 3e-7 (float32) and 5e-16 (float64) on [0, pi]. Checked here against NumPy's
float64 ``np.arctan2`` on many magnitudes, including the branch
points of the argument reduction and the edges (0, 0), (y, 0), (0, x < 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lantk._stax._numerics import _angle, _sqrt0
from lantk._x64 import x64

RNG = np.random.default_rng(3)


def _points(n: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """(y >= 0, x) pairs covering every angle in [0, pi] and many magnitudes."""
    theta = np.concatenate([
        RNG.uniform(0, np.pi, n),
        # the reduction's branch points: tan(pi/8) (float32), atan(0.66) (float64), pi/4, pi/2
        np.pi / 8 + RNG.uniform(-1e-3, 1e-3, 2000),
        np.arctan(0.66) + RNG.uniform(-1e-3, 1e-3, 2000),
        np.pi / 4 + RNG.uniform(-1e-3, 1e-3, 2000),
        np.pi / 2 + RNG.uniform(-1e-3, 1e-3, 2000),
        np.pi - RNG.uniform(0, 1e-3, 2000),
        RNG.uniform(0, 1e-3, 2000),
    ])
    r = 10.0 ** RNG.uniform(-6, 6, theta.size)
    return r * np.sin(theta), r * np.cos(theta)


@x64
def _eval(y, x, dtype):
    out = jax.jit(_angle)(jnp.asarray(y, dtype), jnp.asarray(x, dtype))
    return np.asarray(out, np.float64)


@pytest.mark.parametrize("dtype, bound", [(np.float32, 3e-7), (np.float64, 5e-16)])
def test_angle_matches_arctan2_to_the_documented_bound(dtype, bound):
    y, x = _points()
    y, x = y.astype(dtype), x.astype(dtype)
    ref = np.arctan2(y.astype(np.float64), x.astype(np.float64))  # of the rounded inputs
    err = np.abs(_eval(y, x, dtype) - ref)
    assert err.max() <= bound, (dtype, err.max())
    # and it is not trivially loose: a one-term approximation would be far off
    assert np.abs(y / np.hypot(x, y) - ref).max() > 1e-2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_angle_edges(dtype):
    y = np.array([0.0, 0.0, 1.0, 2.5, 0.0, 1e-30], dtype)
    x = np.array([0.0, -1.0, 0.0, 2.5, 3.0, -1.0], dtype)
    got = _eval(y, x, dtype)
    want = np.array([0.0, np.pi, np.pi / 2, np.pi / 4, 0.0, np.pi])
    np.testing.assert_allclose(got, want, rtol=0, atol=4 * np.finfo(dtype).eps)


@x64
def test_sqrt0_clamps_negative_rounding_to_zero():
    x = jnp.asarray([-1e-12, -0.0, 0.0, 4.0, 2.25], jnp.float64)
    got = np.asarray(_sqrt0(x))
    np.testing.assert_array_equal(got, [0.0, 0.0, 0.0, 2.0, 1.5])
    assert np.all(np.isfinite(got))
