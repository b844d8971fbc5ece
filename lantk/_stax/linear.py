"""Affine and reshaping layers: ``Dense``, ``DenseUnscaled``, ``Conv`` (the spatial box sums of
its kernel), ``Flatten``, ``Identity``, ``Dropout``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from jax import lax, random

from lantk._checks import check_choice, check_int, check_real
from lantk._stax.kernel import _HIGHEST, _make, _pixel_eye, _State
from lantk._stax.requirements import (
    _NO,
    _YES,
    ApplyError,
    _check_nt_defaults,
    _describe,
    _Diag,
    _dimension_numbers,
    _fmt,
    _input_shape,
    _int_tuple,
    _no_params,
    _std,
)


def _pads(n: int, f: int, s: int, padding: str) -> tuple[int, int]:
    if padding == "VALID":
        return 0, 0
    return tuple(lax.padtype_to_pads((n,), (f,), (s,), "SAME")[0])


def _conv_out_size(n: int, f: int, s: int, padding: str) -> int:
    lo, hi = _pads(n, f, s, padding)
    out = (n + lo + hi - f) // s + 1
    return out


def _pad_axes(a, axes, lo, hi, padding):
    if lo == 0 and hi == 0:
        return a
    widths = [(0, 0)] * a.ndim
    for ax in axes:
        widths[ax] = (lo, hi)
    if padding == "CIRCULAR":
        return jnp.pad(a, widths, mode="wrap")
    return jnp.pad(a, widths)


def _box(a: jnp.ndarray, spatial: tuple, diag: bool, filter_shape, strides, padding):
    """Mean over the filter window of same-offset covariances (a conv layer's kernel map).

    Diagonal mode: ``out[p] = mean_i a[s*p + i]``; full mode:
    ``out[p1, p2] = mean_i a[s*p1 + i, s*p2 + i]``. Zero padding for SAME (padded pixels have
    zero covariance), periodic padding for CIRCULAR.
    """
    if a.ndim == 0:
        return a
    n_sp = len(spatial)
    if diag:
        # Pad once, then add the prod(filter_shape) strided slices in one expression: XLA
        # fuses it into a single loop over the output (faster on CPU than reduce_window).
        pads = [_pads(n, f, s, padding) for n, f, s in zip(spatial, filter_shape, strides)]
        outs = [(n + lo + hi - f) // s + 1
                for n, f, s, (lo, hi) in zip(spatial, filter_shape, strides, pads)]
        widths = pads + [(0, 0)] * (a.ndim - n_sp)
        if any(lo or hi for lo, hi in pads):
            a = jnp.pad(a, widths, mode="wrap" if padding == "CIRCULAR" else "constant")
        for d, (f, s, o) in enumerate(zip(filter_shape, strides, outs)):  # separable
            total = None
            for i in range(f):
                idx = (slice(None),) * d + (slice(i, i + s * (o - 1) + 1, s),)
                part = a[idx]
                total = part if total is None else total + part
            a = total
        return a / math.prod(filter_shape)
    for d in range(n_sp):
        n, f, s = spatial[d], filter_shape[d], strides[d]
        axes = (d, n_sp + d)
        lo, hi = _pads(n, f, s, padding)
        out = (n + lo + hi - f) // s + 1
        a = _pad_axes(a, axes, lo, hi, padding)
        total = None
        for i in range(f):
            idx = [slice(None)] * a.ndim
            for ax in axes:
                idx[ax] = slice(i, i + s * (out - 1) + 1, s)
            part = a[tuple(idx)]
            total = part if total is None else total + part
        a = total
    return a / math.prod(filter_shape)


def _affine_params(params, spec: str, W_shape: tuple, has_bias: bool, out: int):
    """``(W, b)`` of a Dense/Conv layer, checked against the expected weight shape."""
    if not isinstance(params, (tuple, list)) or len(params) != 2:
        raise ApplyError(f"{spec} expects its parameters as a pair (W, b), got "
                          f"{_describe(params)} (the parameters do not match the architecture)")
    W, b = params
    if W is None or tuple(np.shape(W)) != tuple(W_shape):
        raise ApplyError(f"{spec}: W has shape {None if W is None else tuple(np.shape(W))}, "
                          f"expected {tuple(W_shape)} for these inputs (the parameters do not "
                          f"match the architecture or the inputs)")
    if has_bias:
        if b is None or np.ndim(b) == 0 or math.prod(np.shape(b)) != out or np.shape(b)[-1] != out:
            raise ApplyError(f"{spec}: the bias b has shape "
                              f"{None if b is None else tuple(np.shape(b))}, expected {out} "
                              f"entries along the last axis")
    elif b is not None:
        raise ApplyError(f"{spec} has no bias (b_std=None) but its parameters hold b of shape "
                          f"{tuple(np.shape(b))}")
    return W, b


def _affine_state(k: _State, W_std: float, b_std: float | None, fn=None,
                  fan_in_scale: float = 1.0, width: int | None = None) -> _State:
    """Kernel after an affine layer (NTK parameterisation): fn is the spatial map (or None)."""
    w2 = W_std ** 2 * fan_in_scale
    b2 = None if b_std is None else b_std ** 2

    def aff(a):
        a = a if fn is None else fn(a)
        a = w2 * a
        return a if b2 is None else a + b2

    out = k.map_cov(aff)
    ntk = k.ntk
    if ntk is not None:
        ntk = (ntk if fn is None else fn(ntk)) * w2 + out.nngp
    return out.replace(ntk=ntk, gaussian=True, chan=None, width=width,
                       tags=frozenset([object()]), is_input=False)


def Dense(out_dim: int, W_std: float = 1.0, b_std: float | None = None,
          batch_axis: int = 0, channel_axis: int = -1, parameterization: str = "ntk"):
    """Fully connected layer on the trailing (channel) axis, NTK parameterisation:
    ``z = W_std / sqrt(fan_in) * x @ W + b_std * b`` with ``W, b ~ N(0, 1)``."""
    _check_nt_defaults(batch_axis, channel_axis, parameterization)
    out_dim = check_int(out_dim, "Dense: out_dim")
    W_std = _std(W_std, "Dense: W_std")
    b_std = _std(b_std, "Dense: b_std", allow_none=True)
    spec = f"Dense({out_dim}, W_std={_fmt(W_std)}, b_std={_fmt(b_std)})"

    def init_fn(rng, input_shape):
        input_shape = _input_shape(input_shape, spec)
        output_shape = input_shape[:-1] + (out_dim,)
        rng1, rng2 = random.split(rng)
        W = random.normal(rng1, (input_shape[-1], out_dim))
        if b_std is None:
            b = None
        else:
            b = random.normal(rng2, (1,) * (len(input_shape) - 1) + (out_dim,))
        return output_shape, (W, b)

    def apply_fn(params, inputs, **kwargs):
        if jnp.ndim(inputs) < 1:
            raise ApplyError(f"{spec} needs inputs with a feature axis, got a scalar")
        W, b = _affine_params(params, spec, (inputs.shape[-1], out_dim), b_std is not None,
                              out_dim)
        out = (W_std / inputs.shape[-1] ** 0.5) * jnp.matmul(inputs, W, precision=_HIGHEST)
        if b is not None:
            out = out + b_std * b
        return out

    def kernel(k: _State) -> _State:
        return _affine_state(k, W_std, b_std, width=out_dim)

    def shape(s):
        if len(s) < 1:
            raise ValueError("Dense needs inputs with a feature axis")
        return s[:-1] + (out_dim,)

    return _make(spec, _Diag(), kernel, shape, init_fn, apply_fn)


def DenseUnscaled(out_dim: int):
    """Dense layer without the 1/sqrt(fan_in) factor: ``z = x @ W``, ``W ~ N(0, 1)`` (a lantk
    addition; neural-tangents' equivalent is ``Dense(out_dim, W_std=sqrt(fan_in))``).

    This is the first layer of the book's two-layer network (``w_r ~ N(0, I_d)``). Its kernel
    needs the finite fan-in, so it must act on the network's inputs (possibly flattened).
    """
    out_dim = check_int(out_dim, "DenseUnscaled: out_dim")
    spec = f"DenseUnscaled({out_dim})"

    def init_fn(rng, input_shape):
        input_shape = _input_shape(input_shape, spec)
        rng1, _ = random.split(rng)
        W = random.normal(rng1, (input_shape[-1], out_dim))
        return input_shape[:-1] + (out_dim,), (W, None)

    def apply_fn(params, inputs, **kwargs):
        if jnp.ndim(inputs) < 1:
            raise ApplyError(f"{spec} needs inputs with a feature axis, got a scalar")
        W, _ = _affine_params(params, spec, (inputs.shape[-1], out_dim), False, out_dim)
        return jnp.matmul(inputs, W, precision=_HIGHEST)

    def kernel(k: _State) -> _State:
        if k.chan is None:
            raise ValueError("DenseUnscaled must be applied to the network inputs (its kernel "
                             "needs the finite fan-in)")
        return _affine_state(k, 1.0, None, fan_in_scale=float(k.chan), width=out_dim)

    def shape(s):
        return s[:-1] + (out_dim,)

    return _make(spec, _Diag(), kernel, shape, init_fn, apply_fn)


_PADDINGS = ("VALID", "SAME", "CIRCULAR")


def Conv(out_chan: int, filter_shape: Sequence[int], strides: Sequence[int] | None = None,
         padding: str = "VALID", W_std: float = 1.0, b_std: float | None = None,
         dimension_numbers=None, parameterization: str = "ntk"):
    """Convolution with weights shared over positions, NTK parameterisation, inputs
    ``(N, *spatial, C)`` and filters ``(*filter_shape, C_in, C_out)`` as in neural-tangents.

    ``z = W_std / sqrt(C_in * prod(filter_shape)) * conv(x, W) + b_std * b``. The defaults
    (``strides=None`` = all ones, ``padding='VALID'``) are neural-tangents' defaults.
    """
    if dimension_numbers is not None and tuple(dimension_numbers) != _dimension_numbers(
            len(filter_shape)):
        raise NotImplementedError("lantk Conv supports only the NHWC/HWIO layout")
    if parameterization != "ntk":
        raise NotImplementedError("lantk supports only parameterization='ntk'")
    out_chan = check_int(out_chan, "Conv: out_chan")
    filter_shape = _int_tuple(filter_shape, "Conv: filter_shape")
    n_sp = len(filter_shape)
    if strides is None:
        strides = (1,) * n_sp
    else:
        strides = _int_tuple(strides, "Conv: strides")
        if len(strides) != n_sp:
            raise ValueError(f"Conv: strides {strides} has {len(strides)} entries but "
                             f"filter_shape {filter_shape} has {n_sp} (one stride per spatial "
                             f"axis)")
    if not isinstance(padding, str) or padding.upper() not in _PADDINGS:
        raise ValueError(f"Conv: padding must be one of {_PADDINGS}, got {padding!r}")
    padding = padding.upper()
    W_std = _std(W_std, "Conv: W_std")
    b_std = _std(b_std, "Conv: b_std", allow_none=True)
    spec = (f"Conv({out_chan}, {filter_shape}, strides={strides}, padding={padding!r}, "
            f"W_std={_fmt(W_std)}, b_std={_fmt(b_std)})")
    dn = _dimension_numbers(n_sp)
    init_padding = "SAME" if padding == "CIRCULAR" else padding

    def out_spatial(sp):
        return tuple(_conv_out_size(n, f, s, init_padding)
                     for n, f, s in zip(sp, filter_shape, strides))

    def init_fn(rng, input_shape):
        input_shape = _input_shape(input_shape, spec)
        if len(input_shape) != n_sp + 2:
            raise ValueError(f"Conv with a {n_sp}-d filter needs inputs of rank {n_sp + 2}, "
                             f"got input_shape {input_shape}")
        k1, k2 = random.split(rng)
        W = random.normal(k1, filter_shape + (input_shape[-1], out_chan))
        b = None if b_std is None else random.normal(k2, (1,) * (n_sp + 1) + (out_chan,))
        output_shape = (input_shape[0],) + out_spatial(input_shape[1:-1]) + (out_chan,)
        return output_shape, (W, b)

    def apply_fn(params, inputs, **kwargs):
        if jnp.ndim(inputs) != n_sp + 2:
            raise ApplyError(f"{spec} needs inputs of rank {n_sp + 2} (N, "
                              f"{', '.join(['S'] * n_sp)}, C), got shape "
                              f"{tuple(jnp.shape(inputs))}")
        W, b = _affine_params(params, spec, filter_shape + (inputs.shape[-1], out_chan),
                              b_std is not None, out_chan)
        norm = W_std / (inputs.shape[-1] * math.prod(filter_shape)) ** 0.5
        x = inputs
        pad = padding
        if padding == "CIRCULAR":
            widths = [(0, 0)] + [_pads(n, f, s, "SAME") for n, f, s in
                                 zip(inputs.shape[1:-1], filter_shape, strides)] + [(0, 0)]
            x = jnp.pad(x, widths, mode="wrap")
            pad = "VALID"
        out = norm * lax.conv_general_dilated(x, W, strides, pad, dimension_numbers=dn,
                                              precision=_HIGHEST)
        if b is not None:
            out = out + b_std * b
        return out

    def kernel(k: _State) -> _State:
        box = lambda a: _box(a, k.spatial, k.diag, filter_shape, strides, padding)
        out = _affine_state(k, W_std, b_std, fn=box, width=out_chan)
        return out.replace(spatial=out_spatial(k.spatial))

    def shape(s):
        if len(s) != n_sp + 1:
            raise ValueError(f"Conv with a {n_sp}-d filter needs inputs of shape "
                             f"(N, {', '.join(['S'] * n_sp)}, C); got feature shape {s}")
        sp = out_spatial(s[:-1])
        if min(sp) < 1:
            raise ValueError(f"input spatial shape {s[:-1]} is smaller than the filter "
                             f"{filter_shape}")
        return sp + (out_chan,)

    return _make(spec, _Diag(input=_YES, output=_NO), kernel, shape, init_fn, apply_fn)


def Flatten(batch_axis: int = 0, batch_axis_out: int = 0):
    """Flatten all non-batch axes. Kernel: the mean over pixels of the same-pixel covariances
    (the following Dense layer divides by sqrt(H * W * C))."""
    if batch_axis != 0 or batch_axis_out != 0:
        raise NotImplementedError("lantk Flatten uses batch_axis=0 and batch_axis_out=0")

    def init_fn(rng, input_shape):
        input_shape = tuple(input_shape)
        return (input_shape[0], int(math.prod(input_shape[1:]))), ()

    check_params = _no_params("Flatten()")

    def apply_fn(params, inputs, **kwargs):
        check_params(params)
        if jnp.ndim(inputs) < 1:
            raise ApplyError("Flatten() needs inputs with a batch axis, got a scalar")
        return inputs.reshape(inputs.shape[0], -1)

    def kernel(k: _State) -> _State:
        s = len(k.spatial)
        if s == 0:
            return k.replace(gaussian=False)

        def trace(a, n_batch):
            if a is None or a.ndim == 0:
                return a
            if k.diag:
                return jnp.mean(a, axis=tuple(range(s)))
            p = math.prod(k.spatial)
            a = a.reshape((p, p) + a.shape[2 * s:])
            return jnp.mean(jnp.diagonal(a, axis1=0, axis2=1), axis=-1)

        chan = None if k.chan is None else k.chan * math.prod(k.spatial)
        width = None if k.width is None else k.width * math.prod(k.spatial)
        return k.replace(var1=trace(k.var1, 1), var2=trace(k.var2, 1), nngp=trace(k.nngp, 2),
                         ntk=trace(k.ntk, 2), spatial=(), diag=True, gaussian=False, chan=chan,
                         width=width)

    return _make("Flatten()", _Diag(input=_YES, output=_YES), kernel,
                 lambda s: (int(math.prod(s)),), init_fn, apply_fn)


def Identity():
    """The identity layer."""
    check_params = _no_params("Identity()")

    def apply_fn(params, inputs, **kwargs):
        check_params(params)
        return inputs

    return _make("Identity()", _Diag(), lambda k: k, lambda s: s,
                 lambda rng, input_shape: (tuple(input_shape), ()), apply_fn)


def Dropout(rate: float, mode: str = "train"):
    """Dropout with keep probability ``rate`` (neural-tangents' and
    ``jax.example_libraries.stax``'s convention: ``rate=1`` keeps every neuron).

    ``mode='train'``: ``apply_fn(params, x, rng=key)`` keeps each entry with probability
    ``rate`` and divides the kept ones by ``rate`` (an ``rng`` keyword is required); the
    kernel multiplies the same-input, same-pixel entries by ``1 / rate`` (``cov1``/``cov2``
    at every same pixel; ``nngp``/``ntk`` on the batch diagonal when ``x2`` is ``None`` or
    equal to ``x1``), as neural-tangents does. It cannot act on the network inputs (there
    must be a Dense/Conv before it), and its output is not Gaussian (a nonlinearity needs a
    Dense/Conv first). ``mode='test'``: the identity.
    """
    rate = check_real(rate, "Dropout: rate")
    if not 0 < rate <= 1:
        raise ValueError(f"Dropout: rate must be in (0, 1] (the keep probability, as in "
                         f"neural-tangents), got {rate}")
    mode = check_choice(mode, "Dropout: mode", ("train", "test"))
    spec = f"Dropout({rate!r}, mode={mode!r})"
    check_params = _no_params(spec)

    def init_fn(rng, input_shape):
        return tuple(input_shape), ()

    def apply_fn(params, inputs, rng=None, **kwargs):
        check_params(params)
        if mode == "test":
            return inputs
        if rng is None:
            raise ApplyError(f"{spec} in 'train' mode needs a random key: call "
                              "apply_fn(params, inputs, rng=key)")
        keep = random.bernoulli(rng, rate, jnp.shape(inputs))
        return jnp.where(keep, inputs / rate, 0)

    def kernel(k: _State) -> _State:
        if mode == "test":
            return k
        if k.is_input:
            raise ValueError(f"{spec} cannot be applied to the network inputs (put a Dense or "
                             "Conv layer before it)")
        factor = 1.0 / rate
        s = len(k.spatial)

        def self_cov(v):
            if v is None:
                return v
            if k.diag or s == 0:
                return v * factor
            return jnp.where(_pixel_eye(k.spatial)[..., None], v * factor, v)

        n1, n2 = k.nngp.shape[-2:]
        if n1 == n2:
            batch = jnp.eye(n1, dtype=bool) & jnp.asarray(k.x1_is_x2)
        else:
            batch = jnp.zeros((n1, n2), bool)
        mask = batch if (k.diag or s == 0) else _pixel_eye(k.spatial)[..., None, None] & batch

        def pair(a):
            if a is None or a.ndim == 0:
                return a
            return jnp.where(mask, a * factor, a)

        return k.replace(var1=self_cov(k.var1), var2=self_cov(k.var2), nngp=pair(k.nngp),
                         ntk=pair(k.ntk), gaussian=False)

    return _make(spec, _Diag(), kernel, lambda s: s, init_fn, apply_fn)
