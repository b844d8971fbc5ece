"""Nonlinearities and their closed-form kernel maps: ``ABRelu``, ``Relu``, ``LeakyRelu``, ``Abs``,
``Erf``, ``Sigmoid_like``, ``Gelu``, ``Sin``, ``Cos``, ``Rbf``, ``Sign``.

Notation of the kernel maps: the layer's input at two points (two inputs, or two pixels) is a
centred Gaussian pair ``(u, v)`` with variances ``q1 = E u^2``, ``q2 = E v^2`` and covariance
``k = E uv``. The new NNGP is ``E f(u) f(v)``, and the NTK is multiplied by
``E f'(u) f'(v)``, which is ``d/dk E f(u) f(v)`` (Price's theorem)."""

from __future__ import annotations

import dataclasses
import math
import operator

import jax
import jax.numpy as jnp
import numpy as np

from lantk._checks import check_real
from lantk._stax._numerics import _angle, _sqrt0
from lantk._stax.fullpath import Nonlin
from lantk._stax.kernel import (
    KernelFn,
    _gaussian_input_variances,
    _make,
    _materialise,
    _outer11,
    _outer12,
    _pixel_eye,
    _same_mask,
    _State,
)
from lantk._stax.requirements import _Diag, _no_params


def _elementwise(spec, fn, kmap, fast: bool = False):
    """A nonlinearity from its kernel map ``kmap(nngp, outer, ntk, same=None,
    diagonal=False) -> (nngp, ntk)``: ``outer(g, combine=operator.mul)`` is
    ``combine(g(q1), g(q2))`` broadcast to the layout of ``nngp`` (``q1``, ``q2`` the same-pixel
    variances of the two inputs), ``same`` marks exactly correlated entries, and
    ``diagonal=True`` maps a variance to itself."""

    check_params = _no_params(spec)

    def init_fn(rng, input_shape):
        return tuple(input_shape), ()

    def apply_fn(params, inputs, **kwargs):
        check_params(params)
        return fn(inputs)

    def kernel(k: _State) -> _State:
        s, d1, d2 = _gaussian_input_variances(k, spec)

        def outer(g, combine=operator.mul):
            return _outer12(g(d1), g(d2), s, k.diag, combine)

        nngp, ntk = kmap(k.nngp, outer, k.ntk, same=_same_mask(k.same, k.spatial, k.diag))

        def self_cov(v, d):
            if k.diag or s == 0:
                return kmap(v, None, None, diagonal=True)[0]
            return kmap(v, lambda g, combine=operator.mul: _outer11(g(d), s, combine), None,
                        same=_pixel_eye(k.spatial)[..., None])[0]

        var1 = self_cov(k.var1, d1)
        var2 = None if k.var2 is None else self_cov(k.var2, d2)
        return k.replace(var1=var1, var2=var2, nngp=_materialise(nngp, k.one),
                         ntk=_materialise(ntk, k.one), gaussian=False)

    # only maps written for the full-mode fast path (fullpath.py calls them with a plain
    # product ``outer`` and ``store=``) may declare it: the ABRelu family
    return _make(spec, _Diag(), kernel, lambda s: s, init_fn, apply_fn,
                 fast=Nonlin(kmap) if fast else None)


def ABRelu(a: float, b: float):
    """``a * min(x, 0) + b * max(x, 0)`` (arc-cosine kernel maps, stable arctan2 form)."""
    a, b = check_real(a, "ABRelu: a"), check_real(b, "ABRelu: b")
    factor = (a - b) ** 2 / (2 * np.pi)
    mean_sq = (a ** 2 + b ** 2) / 2

    def fn(x):
        return a * jnp.minimum(x, 0) + b * jnp.maximum(x, 0)

    def kmap(nngp, outer, ntk, diagonal=False, same=None, store=None):
        # store: None, or a function that returns its argument stored as an array (the fast
        # path's _materialise), so that XLA computes the angle once for both outputs.
        if diagonal:  # same input, same pixel: correlation 1, angle 0
            return mean_sq * nngp, None
        prod = outer(lambda q: q)
        root = _sqrt0(prod - nngp * nngp)
        if same is not None:  # identical inputs at the same pixel: exactly angle 0
            root = jnp.where(same, 0, root)
        theta = jnp.where((root == 0) & (nngp == 0), np.pi / 2, _angle(root, nngp))
        dot_sigma = mean_sq - factor * theta
        if store is not None and ntk is not None:
            dot_sigma = store(dot_sigma)
        new = factor * root + dot_sigma * nngp
        return new, (None if ntk is None else ntk * dot_sigma)

    return _elementwise(f"ABRelu({a!r}, {b!r})", fn, kmap, fast=True)


def Relu():
    """ReLU. Kernel: ``(sqrt(q1 q2 - c^2) + (pi - theta) c) / (2 pi)``, NTK factor
    ``(pi - theta) / (2 pi)``, ``theta = arctan2(sqrt(q1 q2 - c^2), c)`` (stable near
    correlation 1; the square root is clamped at 0)."""
    init_fn, apply_fn, kernel_fn = ABRelu(0.0, 1.0)
    layer = dataclasses.replace(kernel_fn.layers[0], spec="Relu()")
    return init_fn, apply_fn, KernelFn([layer], "Relu()")


def LeakyRelu(alpha: float):
    """``alpha * min(x, 0) + max(x, 0)``."""
    alpha = check_real(alpha, "LeakyRelu: alpha")
    init_fn, apply_fn, kernel_fn = ABRelu(alpha, 1.0)
    spec = f"LeakyRelu({float(alpha)!r})"
    return init_fn, apply_fn, KernelFn([dataclasses.replace(kernel_fn.layers[0], spec=spec)],
                                       spec)


def Abs():
    """``|x|``."""
    init_fn, apply_fn, kernel_fn = ABRelu(-1.0, 1.0)
    return init_fn, apply_fn, KernelFn([dataclasses.replace(kernel_fn.layers[0], spec="Abs()")],
                                       "Abs()")


def Erf(a: float = 1.0, b: float = 1.0, c: float = 0.0):
    """``a * erf(b * x) + c`` (closed-form arcsine kernel).

    ``E erf(bu) erf(bv) = (2 / pi) arcsin(2 b^2 k / sqrt((1 + 2 b^2 q1)(1 + 2 b^2 q2)))``, so
    the NNGP is ``a^2`` times that plus ``c^2``, and the NTK factor is
    ``a^2 (4 b^2 / pi) / sqrt((1 + 2 b^2 q1)(1 + 2 b^2 q2) - 4 b^4 k^2)``.
    """
    a, b, c = (check_real(v, f"Erf: {n}") for v, n in ((a, "a"), (b, "b"), (c, "c")))
    return _erf(a, b, c, f"Erf(a={a!r}, b={b!r}, c={c!r})")


# neural-tangents' Sigmoid_like: the erf scale that best fits the logistic sigmoid (least
# squares on [-5, 5]).
_SIGMOID_LIKE_SCALE = 2.4020563531719796


def Sigmoid_like():
    """``0.5 * erf(x / 2.4020563531719796) + 0.5``, neural-tangents' erf approximation of the
    logistic sigmoid ``1 / (1 + exp(-x))`` (the scale minimises the squared difference on
    ``[-5, 5]``): :func:`Erf` with ``a = 0.5``, ``b = 1 / 2.4020563531719796``, ``c = 0.5``.
    """
    return _erf(0.5, 1 / _SIGMOID_LIKE_SCALE, 0.5, "Sigmoid_like()")


def _erf(a: float, b: float, c: float, spec: str):
    factor = 2 / np.pi

    def fn(x):
        return a * jax.scipy.special.erf(b * x) + c

    # The pair map needs the two variances separately ((1 + 2 q1)(1 + 2 q2)).
    def init_fn(rng, input_shape):
        return tuple(input_shape), ()

    check_params = _no_params(spec)

    def apply_fn(params, inputs, **kwargs):
        check_params(params)
        return fn(inputs)

    def pair_map(nngp, den, ntk):
        nngp = b * b * nngp
        root = _sqrt0(den - 4 * nngp * nngp)
        new = factor * jnp.arctan2(2 * nngp, root)
        if ntk is not None:
            ntk = (b * b) * ntk * (2 * factor / root)
            ntk = a * a * ntk
        return a * a * new + c * c, ntk

    def kernel(k: _State) -> _State:
        s, d1, d2 = _gaussian_input_variances(k, spec)
        e1, e2 = 1 + 2 * b * b * d1, 1 + 2 * b * b * d2
        nngp, ntk = pair_map(k.nngp, _outer12(e1, e2, s, k.diag), k.ntk)

        def self_cov(v, e):
            if k.diag or s == 0:
                vv = b * b * v
                return a * a * factor * jnp.arctan2(vv, jnp.sqrt(vv + 0.25)) + c * c
            return pair_map(v, _outer11(e, s), None)[0]

        var1 = self_cov(k.var1, e1)
        var2 = None if k.var2 is None else self_cov(k.var2, e2)
        return k.replace(var1=var1, var2=var2, nngp=nngp, ntk=ntk, gaussian=False)

    return _make(spec, _Diag(), kernel, lambda s: s, init_fn, apply_fn)


def Gelu(approximate: bool = False):
    """GELU, ``x Phi(x)`` (``Phi`` the standard normal CDF).

    With ``r = sqrt((1 + q1)(1 + q2))``, ``delta = sqrt(r^2 - k^2)`` (``>= 1``, so the maps are
    smooth everywhere) and ``alpha = arcsin(k / r) = arctan2(k, delta)``:

    * NNGP: ``k / 4 + k alpha / (2 pi) + (q1 q2 delta^2 + k^2) / (2 pi r^2 delta)``;
    * NTK factor: ``1 / 4 + alpha / (2 pi) + k / (2 pi delta) (1 + 1 / delta^2
      + (1 - q1 q2) / r^2)``;
    * variance (``q1 = q2 = k = q``): ``q / 4 + q arcsin(q / (1 + q)) / (2 pi)
      + q^2 / (pi (1 + q) sqrt(1 + 2 q))``.

    Derivation: ``Phi(u) = P(z <= u)`` for an independent ``z ~ N(0, 1)``, so
    ``E Phi(u) Phi(v)`` is the orthant probability ``1/4 + alpha / (2 pi)`` of the pair
    ``(z1 - u, z2 - v)`` (correlation ``k / r``); the other terms of
    ``E f'(u) f'(v)`` (``f' = Phi + x phi``) are Gaussian integrals of the same kind, which gives
    the NTK factor. The NNGP is its integral in ``k`` from the independent value
    ``E f(u) E f(v) = q1 q2 / (2 pi r)`` (``E u Phi(u) = q / sqrt(2 pi (1 + q))`` by Stein's
    lemma); one checks that the NNGP above has that value at ``k = 0`` and the NTK factor as
    its ``k``-derivative. (Tsuchida, Pearce, van der Heide, Roosta & Gallagher, 2021.)

    ``approximate=True`` uses the tanh approximation
    ``x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) / 2`` in ``apply_fn`` only: as in
    neural-tangents, the kernels are those of the exact GELU (the approximation has no closed
    form).
    """
    if not isinstance(approximate, (bool, np.bool_)):
        raise ValueError(f"Gelu: approximate must be True or False, got {approximate!r}")
    approximate = bool(approximate)

    def fn(x):
        return jax.nn.gelu(x, approximate=approximate)

    def kmap(nngp, outer, ntk, diagonal=False, same=None):
        if diagonal:
            q = nngp
            root = jnp.sqrt(1 + 2 * q)
            alpha = jnp.arctan2(q, root)
            return q * (0.25 + alpha / (2 * np.pi) + q / (np.pi * (1 + q) * root)), None
        prod = outer(lambda q: q)
        r2 = outer(lambda q: 1 + q)
        delta2 = r2 - nngp * nngp
        delta = _sqrt0(delta2)
        alpha = np.pi / 2 - _angle(delta, nngp)  # arctan2(k, delta), delta > 0
        new = (0.25 * nngp + nngp * alpha / (2 * np.pi)
               + (prod * delta2 + nngp * nngp) / (2 * np.pi * r2 * delta))
        if ntk is not None:
            dot = (0.25 + alpha / (2 * np.pi)
                   + nngp / (2 * np.pi * delta) * (1 + 1 / delta2 + (1 - prod) / r2))
            ntk = ntk * dot
        return new, ntk

    return _elementwise(f"Gelu(approximate={approximate!r})", fn, kmap)


def _sinusoid(a: float, b: float, c: float, cos: bool, spec: str):
    """``a sin(b x + c)`` (``cos=False``) or ``a cos(b x + c)``.

    From ``sin A sin B = (cos(A - B) - cos(A + B)) / 2``, ``cos A cos B = (cos(A - B)
    + cos(A + B)) / 2`` and ``E cos(w + t) = cos(t) exp(-Var(w) / 2)`` for a centred Gaussian
    ``w``: with ``s_pm = exp(-b^2 (q1 + q2 -+ 2 k) / 2)`` and ``sigma = -1`` (sin) or ``+1``
    (cos), the NNGP is ``a^2 / 2 (s_+ + sigma cos(2c) s_-)`` and the NTK factor (the same for
    the derivative ``a b cos`` or ``-a b sin``) ``a^2 b^2 / 2 (s_+ - sigma cos(2c) s_-)``;
    the variance is ``a^2 / 2 (1 + sigma cos(2c) exp(-2 b^2 q))``.
    """
    sigma = 1.0 if cos else -1.0
    half_a2 = a * a / 2
    b2 = b * b
    cos2c = sigma * math.cos(2 * c)

    def fn(x):
        return a * (jnp.cos if cos else jnp.sin)(b * x + c)

    def kmap(nngp, outer, ntk, diagonal=False, same=None):
        if diagonal:
            return half_a2 * (1 + cos2c * jnp.exp(-2 * b2 * nngp)), None
        half_sum = outer(lambda q: q / 2, operator.add)
        gap = nngp - half_sum  # -E (u - v)^2 / 2
        if same is not None:  # identical inputs at the same pixel: exactly 0
            gap = jnp.where(same, 0, gap)
        s_plus = jnp.exp(b2 * gap)
        s_minus = cos2c * jnp.exp(-b2 * (nngp + half_sum))
        new = half_a2 * (s_plus + s_minus)
        if ntk is not None:
            ntk = ntk * (half_a2 * b2 * (s_plus - s_minus))
        return new, ntk

    return _elementwise(spec, fn, kmap)


def _abc(name, a, b, c):
    return tuple(check_real(v, f"{name}: {n}") for v, n in ((a, "a"), (b, "b"), (c, "c")))


def Sin(a: float = 1.0, b: float = 1.0, c: float = 0.0):
    """``a * sin(b * x + c)``. NNGP ``a^2 / 2 (s_+ - cos(2c) s_-)``, NTK factor
    ``a^2 b^2 / 2 (s_+ + cos(2c) s_-)``, ``s_pm = exp(-b^2 (q1 + q2 -+ 2 k) / 2)``; variance
    ``a^2 / 2 (1 - cos(2c) exp(-2 b^2 q))``."""
    a, b, c = _abc("Sin", a, b, c)
    return _sinusoid(a, b, c, False, f"Sin(a={a!r}, b={b!r}, c={c!r})")


def Cos(a: float = 1.0, b: float = 1.0, c: float = 0.0):
    """``a * cos(b * x + c)`` (neural-tangents: ``Sin(a, b, c + pi / 2)``). NNGP
    ``a^2 / 2 (s_+ + cos(2c) s_-)``, NTK factor ``a^2 b^2 / 2 (s_+ - cos(2c) s_-)``,
    ``s_pm = exp(-b^2 (q1 + q2 -+ 2 k) / 2)``; variance ``a^2 / 2 (1 + cos(2c) exp(-2 b^2 q))``.
    """
    a, b, c = _abc("Cos", a, b, c)
    return _sinusoid(a, b, c, True, f"Cos(a={a!r}, b={b!r}, c={c!r})")


def Rbf(gamma: float = 1.0):
    """``sqrt(2) sin(sqrt(2 gamma) x + pi / 4)``, whose NNGP is the Gaussian (RBF) kernel of
    the layer's input: ``exp(-gamma (q1 + q2 - 2 k)) = exp(-gamma E (u - v)^2)`` (:func:`Sin`
    with ``a = sqrt(2)``, ``b = sqrt(2 gamma)``, ``c = pi / 4``, where ``cos(2c) = 0``). NTK
    factor ``2 gamma exp(-gamma (q1 + q2 - 2 k))``; variance 1. ``gamma > 0``
    (``gamma = 1 / (2 l^2)`` for a length scale ``l``)."""
    gamma = check_real(gamma, "Rbf: gamma", positive=True)
    scale, freq = math.sqrt(2.0), math.sqrt(2 * gamma)

    def fn(x):
        return scale * jnp.sin(freq * x + np.pi / 4)

    def kmap(nngp, outer, ntk, diagonal=False, same=None):
        if diagonal:
            return jnp.ones_like(nngp), None
        gap = 2 * nngp - outer(lambda q: q, operator.add)  # -E (u - v)^2
        if same is not None:  # identical inputs at the same pixel: exactly 0
            gap = jnp.where(same, 0, gap)
        new = jnp.exp(gamma * gap)
        return new, (None if ntk is None else ntk * (2 * gamma * new))

    return _elementwise(f"Rbf(gamma={gamma!r})", fn, kmap)


def Sign():
    """``sign(x)`` (``sign(0) = 0``). NNGP ``1 - 2 theta / pi = (2 / pi) arcsin(k /
    sqrt(q1 q2))``, ``theta = arctan2(sqrt(q1 q2 - k^2), k)`` (the probability that ``u`` and
    ``v`` differ in sign is ``theta / pi``); 0 when either variance is 0; variance 1 (0 where
    ``q = 0``). The NTK becomes 0, as in neural-tangents: the derivative of ``sign`` is 0
    almost everywhere (its distributional derivative ``2 delta(x)`` is not a finite-width
    gradient)."""

    def fn(x):
        return jnp.sign(x)

    def kmap(nngp, outer, ntk, diagonal=False, same=None):
        if diagonal:
            return (nngp != 0).astype(nngp.dtype), None
        root = _sqrt0(outer(lambda q: q) - nngp * nngp)
        if same is not None:  # identical inputs at the same pixel: exactly angle 0
            root = jnp.where(same, 0, root)
        theta = jnp.where((root == 0) & (nngp == 0), np.pi / 2, _angle(root, nngp))
        new = 1 - theta * (2 / np.pi)
        return new, (None if ntk is None else jnp.zeros_like(ntk))

    return _elementwise("Sign()", fn, kmap)
