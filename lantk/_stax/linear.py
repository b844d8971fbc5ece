"""Affine and reshaping layers: ``Dense``, ``DenseUnscaled``, ``Conv`` and ``ConvTranspose`` (the
spatial box sums of their kernels), ``Flatten``, ``Identity``, ``Dropout``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from jax import lax, random

from lantk._checks import check_choice, check_int, check_real
from lantk._stax.fullpath import Affine, same_taps
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
    _parameterization,
    _std,
    _width_scalings,
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
                  fan_in_scale: float = 1.0, width: int | None = None,
                  standard_fan_in: float | None = None) -> _State:
    """Kernel after an affine layer; ``fn`` is the spatial map (or None).

    NTK parameterisation (``standard_fan_in=None``): ``K' = w2 fn(K) + b2`` for the
    covariances and ``Θ' = w2 fn(Θ) + K'``, with ``w2 = W_std**2 * fan_in_scale``.

    Standard parameterisation (``standard_fan_in = n``, the finite fan-in divided by
    ``s[0]``): the same covariances, and ``Θ' = n fn(K) + w2 fn(Θ) (+ 1 with a bias)``: the
    weight gradients contribute the unnormalised input covariance, the bias gradient 1.
    """
    w2 = W_std ** 2 * fan_in_scale
    b2 = None if b_std is None else b_std ** 2

    def aff(a):
        a = a if fn is None else fn(a)
        a = w2 * a
        return a if b2 is None else a + b2

    ntk = k.ntk
    if standard_fan_in is None:
        out = k.map_cov(aff)
        if ntk is not None:
            ntk = (ntk if fn is None else fn(ntk)) * w2 + out.nngp
    else:
        mapped = k.nngp if fn is None else fn(k.nngp)
        nngp = w2 * mapped
        out = k.replace(var1=aff(k.var1), var2=None if k.var2 is None else aff(k.var2),
                        nngp=nngp if b2 is None else nngp + b2)
        if ntk is not None:
            ntk = standard_fan_in * mapped + w2 * (ntk if fn is None else fn(ntk))
            if b_std is not None:
                ntk = ntk + 1.0
    return out.replace(ntk=ntk, gaussian=True, chan=None, width=width,
                       tags=frozenset([object()]), is_input=False)


def _param_spec(parameterization: str, s: tuple) -> str:
    """The spec's tail for the parameterisation: empty for 'ntk' (whose specs predate the
    argument), else ``parameterization='standard'`` and ``s`` when it is not ``(1, 1)``."""
    if parameterization == "ntk":
        return ""
    return ", parameterization='standard'" + ("" if s == (1, 1) else f", s={s}")


def _standard_fan_in(k: _State, spec: str, filter_size: int, s: tuple) -> float:
    """``fan_in / s[0]`` of a standard-parameterisation layer, from the finite width of its
    input (neural-tangents' ``k.shape1[channel_axis] * prod(filter_shape) / s[0]``)."""
    if k.width is None:  # pragma: no cover - widths are always tracked
        raise ValueError(f"{spec}: the finite width of its input is unknown")
    return float(k.width) * filter_size / s[0]


def Dense(out_dim: int, W_std: float = 1.0, b_std: float | None = None,
          batch_axis: int = 0, channel_axis: int = -1, parameterization: str = "ntk",
          s: Sequence[int] = (1, 1)):
    """Fully connected layer on the trailing (channel) axis, as neural-tangents' ``Dense``.

    ``parameterization='ntk'`` (default): ``z = W_std / sqrt(fan_in) * x @ W + b_std * b``
    with ``W, b ~ N(0, 1)``; ``s`` is ignored (as in neural-tangents). Kernels:
    ``K' = W_std**2 K + b_std**2``, ``Θ' = W_std**2 Θ + K'``.

    ``parameterization='standard'`` (Sohl-Dickstein et al. 2020): ``W`` has shape
    ``(fan_in, s[1] * out_dim)`` with entries ``N(0, W_std**2 s[0] / fan_in)``, the bias
    ``N(0, b_std**2)``, and ``z = x @ W / sqrt(s[0]) + b``. The NNGP is the same as in the NTK
    parameterisation; the NTK is ``Θ' = (fan_in / s[0]) K + W_std**2 Θ (+ 1 with a bias)``,
    where ``fan_in`` is the finite width of the layer's input (so it depends on the widths of
    the previous layers, as in neural-tangents).
    """
    parameterization = _check_nt_defaults(batch_axis, channel_axis, parameterization)
    out_dim = check_int(out_dim, "Dense: out_dim")
    W_std = _std(W_std, "Dense: W_std")
    b_std = _std(b_std, "Dense: b_std", allow_none=True)
    s = _width_scalings(s, "Dense")
    standard = parameterization == "standard"
    width = out_dim * s[1] if standard else out_dim
    spec = (f"Dense({out_dim}, W_std={_fmt(W_std)}, b_std={_fmt(b_std)}"
            f"{_param_spec(parameterization, s)})")

    def init_fn(rng, input_shape):
        input_shape = _input_shape(input_shape, spec)
        output_shape = input_shape[:-1] + (width,)
        rng1, rng2 = random.split(rng)
        W = random.normal(rng1, (input_shape[-1], width))
        if b_std is None:
            b = None
        else:
            b = random.normal(rng2, (1,) * (len(input_shape) - 1) + (width,))
        if standard:
            W = W * (W_std / (input_shape[-1] / s[0]) ** 0.5)
            b = None if b is None else b * b_std
        return output_shape, (W, b)

    def apply_fn(params, inputs, **kwargs):
        if jnp.ndim(inputs) < 1:
            raise ApplyError(f"{spec} needs inputs with a feature axis, got a scalar")
        W, b = _affine_params(params, spec, (inputs.shape[-1], width), b_std is not None,
                              width)
        prod = jnp.matmul(inputs, W, precision=_HIGHEST)
        if standard:
            out = prod / s[0] ** 0.5
            return out if b is None else out + b
        out = (W_std / inputs.shape[-1] ** 0.5) * prod
        if b is not None:
            out = out + b_std * b
        return out

    def kernel(k: _State) -> _State:
        fan_in = _standard_fan_in(k, spec, 1, s) if standard else None
        return _affine_state(k, W_std, b_std, width=width, standard_fan_in=fan_in)

    def shape(sh):
        if len(sh) < 1:
            raise ValueError("Dense needs inputs with a feature axis")
        return sh[:-1] + (width,)

    fast = None if standard else Affine(W_std ** 2 * 1.0, None if b_std is None else b_std ** 2,
                                        None, width)
    return _make(spec, _Diag(), kernel, shape, init_fn, apply_fn, fast=fast)


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


def _transpose_pads(f: int, s: int, padding: str) -> tuple[int, int]:
    """Padding of the stride-dilated input of a transposed convolution (the padding
    ``lax.conv_transpose`` uses): ``VALID`` gives ``n s + max(f - s, 0)`` outputs, ``SAME``
    ``n s``."""
    if padding == "VALID":
        total = f + s - 2 + max(f - s, 0)
        lo = f - 1
    else:
        total = f + s - 2
        lo = f - 1 if s > f - 1 else -(-total // 2)
    return lo, total - lo


def _transpose_out_size(n: int, f: int, s: int, padding: str) -> int:
    lo, hi = _transpose_pads(f, s, padding)
    return (n - 1) * s + 1 + lo + hi - f + 1


def _dilate(a: jnp.ndarray, spatial: tuple, diag: bool, filter_shape, strides, padding):
    """Insert ``s - 1`` zeros between pixels and pad as ``lax.conv_transpose`` does (along
    both pixel indices in the full mode): the covariance of the dilated, padded input of a
    transposed convolution, whose stride-1 VALID box sum is the layer's kernel map."""
    if a.ndim == 0:
        return a
    n_sp = len(spatial)
    cfg = [(0, 0, 0)] * a.ndim
    for d, (f, s) in enumerate(zip(filter_shape, strides)):
        lo, hi = _transpose_pads(f, s, padding)
        for ax in ((d,) if diag else (d, n_sp + d)):
            cfg[ax] = (lo, hi, s - 1)
    return lax.pad(a, jnp.zeros((), a.dtype), cfg)


def _conv_layer(name: str, transpose: bool, out_chan, filter_shape, strides, padding, W_std,
                b_std, dimension_numbers, parameterization, s):
    """``Conv`` (``transpose=False``) and ``ConvTranspose``: argument checks, the finite
    layer and the kernel map (a box sum over the filter window, of the stride-dilated input
    covariance for the transposed convolution)."""
    parameterization = _parameterization(parameterization, name)
    out_chan = check_int(out_chan, f"{name}: out_chan")
    filter_shape = _int_tuple(filter_shape, f"{name}: filter_shape")
    n_sp = len(filter_shape)
    if dimension_numbers is not None and tuple(dimension_numbers) != _dimension_numbers(n_sp):
        raise NotImplementedError(f"lantk {name} supports only the NHWC/HWIO layout")
    if strides is None:
        strides = (1,) * n_sp
    else:
        strides = _int_tuple(strides, f"{name}: strides")
        if len(strides) != n_sp:
            raise ValueError(f"{name}: strides {strides} has {len(strides)} entries but "
                             f"filter_shape {filter_shape} has {n_sp} (one stride per spatial "
                             f"axis)")
    if not isinstance(padding, str) or padding.upper() not in _PADDINGS:
        raise ValueError(f"{name}: padding must be one of {_PADDINGS}, got {padding!r}")
    padding = padding.upper()
    if transpose and padding == "CIRCULAR":
        raise NotImplementedError("lantk ConvTranspose supports padding 'VALID' and 'SAME', "
                                  "not 'CIRCULAR'")
    W_std = _std(W_std, f"{name}: W_std")
    b_std = _std(b_std, f"{name}: b_std", allow_none=True)
    s = _width_scalings(s, name)
    standard = parameterization == "standard"
    width = out_chan * s[1] if standard else out_chan
    spec = (f"{name}({out_chan}, {filter_shape}, strides={strides}, padding={padding!r}, "
            f"W_std={_fmt(W_std)}, b_std={_fmt(b_std)}{_param_spec(parameterization, s)})")
    dn = _dimension_numbers(n_sp)
    init_padding = "SAME" if padding == "CIRCULAR" else padding
    filter_size = math.prod(filter_shape)

    def out_spatial(sp):
        if transpose:
            return tuple(_transpose_out_size(n, f, st, padding)
                         for n, f, st in zip(sp, filter_shape, strides))
        return tuple(_conv_out_size(n, f, st, init_padding)
                     for n, f, st in zip(sp, filter_shape, strides))

    def init_fn(rng, input_shape):
        input_shape = _input_shape(input_shape, spec)
        if len(input_shape) != n_sp + 2:
            raise ValueError(f"{name} with a {n_sp}-d filter needs inputs of rank {n_sp + 2}, "
                             f"got input_shape {input_shape}")
        k1, k2 = random.split(rng)
        W = random.normal(k1, filter_shape + (input_shape[-1], width))
        b = None if b_std is None else random.normal(k2, (1,) * (n_sp + 1) + (width,))
        if standard:
            W = W * (W_std / (input_shape[-1] * filter_size / s[0]) ** 0.5)
            b = None if b is None else b * b_std
        output_shape = (input_shape[0],) + out_spatial(input_shape[1:-1]) + (width,)
        return output_shape, (W, b)

    def apply_fn(params, inputs, **kwargs):
        if jnp.ndim(inputs) != n_sp + 2:
            raise ApplyError(f"{spec} needs inputs of rank {n_sp + 2} (N, "
                              f"{', '.join(['S'] * n_sp)}, C), got shape "
                              f"{tuple(jnp.shape(inputs))}")
        W, b = _affine_params(params, spec, filter_shape + (inputs.shape[-1], width),
                              b_std is not None, width)
        if standard:
            norm, b_scale = 1.0 / s[0] ** 0.5, 1.0
        else:
            norm, b_scale = W_std / (inputs.shape[-1] * filter_size) ** 0.5, b_std
        x = inputs
        pad = padding
        if padding == "CIRCULAR":
            widths = [(0, 0)] + [_pads(n, f, st, "SAME") for n, f, st in
                                 zip(inputs.shape[1:-1], filter_shape, strides)] + [(0, 0)]
            x = jnp.pad(x, widths, mode="wrap")
            pad = "VALID"
        if transpose:
            out = lax.conv_transpose(x, W, strides, pad, dimension_numbers=dn,
                                     precision=_HIGHEST)
        else:
            out = lax.conv_general_dilated(x, W, strides, pad, dimension_numbers=dn,
                                           precision=_HIGHEST)
        out = norm * out
        if b is not None:
            out = out + (b if standard else b_scale * b)
        return out

    def kernel(k: _State) -> _State:
        if transpose:
            dilated = tuple((n - 1) * st + 1 + sum(_transpose_pads(f, st, padding))
                            for n, f, st in zip(k.spatial, filter_shape, strides))
            ones = (1,) * n_sp

            def box(a):
                a = _dilate(a, k.spatial, k.diag, filter_shape, strides, padding)
                return _box(a, dilated, k.diag, filter_shape, ones, "VALID")
        else:
            box = lambda a: _box(a, k.spatial, k.diag, filter_shape, strides, padding)
        fan_in = _standard_fan_in(k, spec, filter_size, s) if standard else None
        out = _affine_state(k, W_std, b_std, fn=box, width=width, standard_fan_in=fan_in)
        return out.replace(spatial=out_spatial(k.spatial))

    def shape(sh):
        if len(sh) != n_sp + 1:
            raise ValueError(f"{name} with a {n_sp}-d filter needs inputs of shape "
                             f"(N, {', '.join(['S'] * n_sp)}, C); got feature shape {sh}")
        sp = out_spatial(sh[:-1])
        if min(sp) < 1:
            raise ValueError(f"input spatial shape {sh[:-1]} is smaller than the filter "
                             f"{filter_shape}")
        return sp + (width,)

    # fast path (fullpath.py): stride-1 SAME NTK-parameterised convolutions; w2 computed as
    # _affine_state does (W_std ** 2 * fan_in_scale)
    taps = None if transpose or standard else same_taps(filter_shape, padding, strides)
    fast = None if taps is None else Affine(W_std ** 2 * 1.0,
                                            None if b_std is None else b_std ** 2, taps, width)
    return _make(spec, _Diag(input=_YES, output=_NO), kernel, shape, init_fn, apply_fn,
                 fast=fast)


def Conv(out_chan: int, filter_shape: Sequence[int], strides: Sequence[int] | None = None,
         padding: str = "VALID", W_std: float = 1.0, b_std: float | None = None,
         dimension_numbers=None, parameterization: str = "ntk", s: Sequence[int] = (1, 1)):
    """Convolution with weights shared over positions, inputs ``(N, *spatial, C)`` and filters
    ``(*filter_shape, C_in, C_out)`` as in neural-tangents.

    NTK parameterisation: ``z = W_std / sqrt(fan_in) * conv(x, W) + b_std * b``,
    ``fan_in = C_in * prod(filter_shape)``, ``W, b ~ N(0, 1)``. Standard parameterisation:
    ``z = conv(x, W) / sqrt(s[0]) + b`` with ``W ~ N(0, W_std**2 s[0] / fan_in)`` of
    ``s[1] * out_chan`` output channels and ``b ~ N(0, b_std**2)``. The defaults
    (``strides=None`` = all ones, ``padding='VALID'``) are neural-tangents' defaults.

    Kernel: ``K' = W_std**2 box(K) + b_std**2`` where ``box`` is the mean over the filter
    window of same-offset pixel covariances, ``box(K)[p, q] = mean_i K[s p + i, s q + i]``
    (zero padding for SAME, periodic for CIRCULAR). NTK: ``Θ' = W_std**2 box(Θ) + K'``
    (``'ntk'``) or ``Θ' = (fan_in / s[0]) box(K) + W_std**2 box(Θ) (+ 1 with a bias)``
    (``'standard'``, with the finite fan-in).
    """
    return _conv_layer("Conv", False, out_chan, filter_shape, strides, padding, W_std, b_std,
                       dimension_numbers, parameterization, s)


def ConvTranspose(out_chan: int, filter_shape: Sequence[int],
                  strides: Sequence[int] | None = None, padding: str = "VALID",
                  W_std: float = 1.0, b_std: float | None = None, dimension_numbers=None,
                  parameterization: str = "ntk", s: Sequence[int] = (1, 1)):
    """Transposed convolution (neural-tangents' ``ConvTranspose``; ``lax.conv_transpose``
    with filters ``(*filter_shape, C_in, C_out)``), padding ``'VALID'`` (``n s + max(f - s,
    0)`` outputs per axis) or ``'SAME'`` (``n s``); ``'CIRCULAR'`` is not supported.

    The finite layer is a stride-1 VALID convolution of the input dilated by the strides
    (``s - 1`` zeros between pixels) and padded, with the same scalings as :func:`Conv`
    (``fan_in = C_in * prod(filter_shape)``). Kernel: the same as :func:`Conv`'s with
    ``box(K)[p, q] = mean_i D(K)[p + i, q + i]``, ``D(K)`` the covariance of the dilated,
    padded input (zero at the inserted pixels).
    """
    return _conv_layer("ConvTranspose", True, out_chan, filter_shape, strides, padding, W_std,
                       b_std, dimension_numbers, parameterization, s)



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
