"""Numerics shared by the kernel maps: a clamped square root and a vectorisable ``arctan2``."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def _sqrt0(x):
    return jnp.sqrt(jnp.maximum(x, 0))


# Cephes' atan: rational approximation on |w| <= 0.66 (double), polynomial on |w| <= tan(pi/8)
# (single). Written with elementwise ops so that XLA vectorises it (jnp.arctan2 on CPU runs at
# ~25 ns per element, which dominated the kernel's cost).
_ATAN_P = (-8.750608600031904122785e-1, -1.615753718733365076637e1, -7.500855792314704667340e1,
           -1.228866684490136173410e2, -6.485021904942025371773e1)


_ATAN_Q = (2.485846490142306297962e1, 1.650270098316988542046e2, 4.328810604912902668951e2,
           4.853903996359136964868e2, 1.945506571482613964425e2)


_ATAN_PF = (8.05374449538e-2, -1.38776856032e-1, 1.99777106478e-1, -3.33329491539e-1)


def _angle(y, x):
    """``arctan2(y, x)`` for ``y >= 0`` (an angle in [0, pi]); 0 at (0, 0).

    Accurate to a few ulp in float32 and float64 (max abs error 3e-7 / 5e-16 on [0, pi]).
    """
    ax = jnp.abs(x)
    lo = jnp.minimum(y, ax)
    hi = jnp.maximum(y, ax)
    # Reduced argument w = tan(reduced angle) with a single division: lo/hi on the first
    # part of [0, 1], (lo - hi)/(lo + hi) (= tan(angle - pi/4)) on the rest.
    # ``big`` as 0.0/1.0 and selects written as exact blends (x + 0 * y = x, 1 * y = y): the
    # same values as jnp.where, but XLA:CPU fuses them into fewer loops (about 2x faster).
    if x.dtype == jnp.float32:
        big = (lo > 0.41421356237309503 * hi).astype(x.dtype)  # tan(pi/8)
    else:
        big = (lo > 0.66 * hi).astype(x.dtype)
    num = lo - big * hi
    den = hi + big * lo
    w = num / jnp.where(den > 0, den, 1)
    w2 = w * w
    if x.dtype == jnp.float32:
        p = (((_ATAN_PF[0] * w2 + _ATAN_PF[1]) * w2 + _ATAN_PF[2]) * w2 + _ATAN_PF[3]) * w2
        a = p * w + w + big * (np.pi / 4)
    else:
        num = (((_ATAN_P[0] * w2 + _ATAN_P[1]) * w2 + _ATAN_P[2]) * w2 + _ATAN_P[3]) * w2 \
            + _ATAN_P[4]
        den = ((((w2 + _ATAN_Q[0]) * w2 + _ATAN_Q[1]) * w2 + _ATAN_Q[2]) * w2
               + _ATAN_Q[3]) * w2 + _ATAN_Q[4]
        a = w * (w2 * num / den) + w + big * (np.pi / 4 + 3.061616997868383e-17)
    a = jnp.where(y > ax, np.pi / 2 - a, a)
    return jnp.where(x < 0, np.pi - a, a)
