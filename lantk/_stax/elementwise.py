"""Nonlinearities and their closed-form kernel maps: ``ABRelu``, ``Relu``, ``LeakyRelu``, ``Abs``,
``Erf``."""

from __future__ import annotations

import dataclasses

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


def _elementwise(spec, fn, kmap):
    """A nonlinearity from its kernel map ``kmap(nngp, outer, ntk, same=None,
    diagonal=False) -> (nngp, ntk)``: ``outer(g)`` is ``g(q1) * g(q2)`` broadcast to the layout
    of ``nngp`` (``q1``, ``q2`` the same-pixel variances of the two inputs), ``same`` marks
    exactly correlated entries, and ``diagonal=True`` maps a variance to itself."""

    check_params = _no_params(spec)

    def init_fn(rng, input_shape):
        return tuple(input_shape), ()

    def apply_fn(params, inputs, **kwargs):
        check_params(params)
        return fn(inputs)

    def kernel(k: _State) -> _State:
        s, d1, d2 = _gaussian_input_variances(k, spec)
        outer = lambda g: _outer12(g(d1), g(d2), s, k.diag)
        nngp, ntk = kmap(k.nngp, outer, k.ntk, same=_same_mask(k.same, k.spatial, k.diag))

        def self_cov(v, d):
            if k.diag or s == 0:
                return kmap(v, None, None, diagonal=True)[0]
            return kmap(v, lambda g: _outer11(g(d), s), None,
                        same=_pixel_eye(k.spatial)[..., None])[0]

        var1 = self_cov(k.var1, d1)
        var2 = None if k.var2 is None else self_cov(k.var2, d2)
        return k.replace(var1=var1, var2=var2, nngp=_materialise(nngp, k.one),
                         ntk=_materialise(ntk, k.one), gaussian=False)

    return _make(spec, _Diag(), kernel, lambda s: s, init_fn, apply_fn, fast=Nonlin(kmap))


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

    return _elementwise(f"ABRelu({a!r}, {b!r})", fn, kmap)


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
    """``a * erf(b * x) + c`` (closed-form arcsine kernel)."""
    a, b, c = (check_real(v, f"Erf: {n}") for v, n in ((a, "a"), (b, "b"), (c, "c")))
    factor = 2 / np.pi

    def fn(x):
        return a * jax.scipy.special.erf(b * x) + c

    # The pair map needs the two variances separately ((1 + 2 q1)(1 + 2 q2)).
    def init_fn(rng, input_shape):
        return tuple(input_shape), ()

    spec = f"Erf(a={a!r}, b={b!r}, c={c!r})"
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
