"""Pooling layers: ``AvgPool``, ``SumPool``, ``GlobalAvgPool``, ``GlobalSumPool``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from lantk._stax.fullpath import Pool
from lantk._stax.kernel import _make, _State
from lantk._stax.linear import _conv_out_size, _pad_axes, _pads
from lantk._stax.requirements import (
    _MAYBE,
    _NO,
    _YES,
    ApplyError,
    _check_nt_defaults,
    _Diag,
    _input_shape,
    _int_tuple,
    _no_params,
)


def GlobalAvgPool(batch_axis: int = 0, channel_axis: int = -1):
    """Global average pooling over all spatial axes. Kernel: the mean over all pixel pairs
    (needs the full pixel-pair covariances)."""
    _check_nt_defaults(batch_axis, channel_axis, "ntk")
    return _global_pool("GlobalAvgPool", average=True)


def _global_pool(name: str, average: bool):
    """``GlobalAvgPool`` (``average``) or ``GlobalSumPool``: a mean or a sum over every pixel,
    so the kernel is the mean or the sum over every pixel pair."""
    spec = f"{name}()"
    check_params = _no_params(spec)
    reduce = jnp.mean if average else jnp.sum

    def init_fn(rng, input_shape):
        input_shape = tuple(input_shape)
        return (input_shape[0], input_shape[-1]), ()

    def apply_fn(params, inputs, **kwargs):
        check_params(params)
        if jnp.ndim(inputs) < 3:
            raise ApplyError(f"{spec} needs inputs with spatial axes (N, ..., C), got shape "
                              f"{tuple(jnp.shape(inputs))}")
        return reduce(inputs, axis=tuple(range(1, inputs.ndim - 1)))

    def kernel(k: _State) -> _State:
        s = len(k.spatial)
        if s == 0:
            return k

        def pool(a):
            if a is None or a.ndim == 0:
                return a
            if not k.diag:
                return reduce(a, axis=tuple(range(2 * s)))
            # off-diagonal pixel pairs taken as zero (neural-tangents' semantics)
            out = reduce(a, axis=tuple(range(s)))
            return out / math.prod(k.spatial) if average else out

        return k.replace(var1=pool(k.var1), var2=pool(k.var2), nngp=pool(k.nngp),
                         ntk=pool(k.ntk), spatial=(), diag=True, chan=None)

    def shape(s):
        if len(s) < 2:
            raise ValueError(f"{name} needs inputs with spatial axes (N, ..., C); got "
                             f"feature shape {s}")
        return (s[-1],)

    return _make(spec, _Diag(input=_MAYBE, output=_YES), kernel, shape, init_fn, apply_fn,
                 fast=Pool(average))


_POOL_PADDINGS = ("VALID", "SAME", "CIRCULAR")


def _window_sum_axis(a, axis: int, n: int, f: int, s: int, padding: str):
    """Sum over the pooling window along one axis (zero padding for SAME, periodic for
    CIRCULAR): ``out[o] = sum_i a[s*o + i - lo]``."""
    lo, hi = _pads(n, f, s, padding)
    out = (n + lo + hi - f) // s + 1
    a = _pad_axes(a, (axis,), lo, hi, padding)
    total = None
    for i in range(f):
        idx = [slice(None)] * a.ndim
        idx[axis] = slice(i, i + s * (out - 1) + 1, s)
        part = a[tuple(idx)]
        total = part if total is None else total + part
    return total


def _window_counts(n: int, f: int, s: int, padding: str) -> np.ndarray:
    """Number of non-padding pixels in each output window along one axis."""
    if padding != "SAME":
        out = _conv_out_size(n, f, s, padding)
        return np.full(out, float(f))
    lo, _ = _pads(n, f, s, padding)
    out = _conv_out_size(n, f, s, padding)
    starts = np.arange(out) * s - lo
    return (np.minimum(starts + f, n) - np.maximum(starts, 0)).astype(float)


def _Pool(kind: str, window_shape, strides, padding, normalize_edges, batch_axis,
          channel_axis):
    name = "AvgPool" if kind == "AVG" else "SumPool"
    _check_nt_defaults(batch_axis, channel_axis, "ntk")
    window_shape = _int_tuple(window_shape, f"{name}: window_shape")
    n_sp = len(window_shape)
    if strides is None:
        strides = (1,) * n_sp
    else:
        strides = _int_tuple(strides, f"{name}: strides")
        if len(strides) != n_sp:
            raise ValueError(f"{name}: strides {strides} has {len(strides)} entries but "
                             f"window_shape {window_shape} has {n_sp} (one per spatial axis)")
    if not isinstance(padding, str) or padding.upper() not in _POOL_PADDINGS:
        raise ValueError(f"{name}: padding must be one of {_POOL_PADDINGS}, got {padding!r}")
    padding = padding.upper()
    if not isinstance(normalize_edges, (bool, np.bool_)):
        raise ValueError(f"{name}: normalize_edges must be True or False, got "
                         f"{normalize_edges!r}")
    normalize_edges = bool(normalize_edges)
    if kind == "AVG":
        spec = (f"AvgPool({window_shape}, strides={strides}, padding={padding!r}, "
                f"normalize_edges={normalize_edges})")
    else:
        spec = f"SumPool({window_shape}, strides={strides}, padding={padding!r})"
    check_params = _no_params(spec)
    # per-axis divisors of the apply map (None: a plain sum)
    edge = kind == "AVG" and normalize_edges and padding == "SAME"

    def divisors(sp):
        if kind == "SUM":
            return None
        if edge:
            return [_window_counts(n, f, s, padding) for n, f, s in
                    zip(sp, window_shape, strides)]
        return [np.full(_conv_out_size(n, f, s, padding), float(f)) for n, f, s in
                zip(sp, window_shape, strides)]

    def out_spatial(sp):
        return tuple(_conv_out_size(n, f, s, padding)
                     for n, f, s in zip(sp, window_shape, strides))

    def init_fn(rng, input_shape):
        input_shape = _input_shape(input_shape, spec)
        if len(input_shape) != n_sp + 2:
            raise ValueError(f"{spec} needs inputs of rank {n_sp + 2}, got input_shape "
                             f"{input_shape}")
        shape(input_shape[1:])
        return (input_shape[0],) + out_spatial(input_shape[1:-1]) + (input_shape[-1],), ()

    def apply_fn(params, inputs, **kwargs):
        check_params(params)
        if jnp.ndim(inputs) != n_sp + 2:
            raise ApplyError(f"{spec} needs inputs of rank {n_sp + 2} (N, "
                              f"{', '.join(['S'] * n_sp)}, C), got shape "
                              f"{tuple(jnp.shape(inputs))}")
        sp = tuple(inputs.shape[1:-1])
        x = inputs
        for d, (n, f, s) in enumerate(zip(sp, window_shape, strides)):
            x = _window_sum_axis(x, 1 + d, n, f, s, padding)
        div = divisors(sp)
        if div is not None:
            for d, v in enumerate(div):
                x = x / jnp.asarray(v, x.dtype).reshape((-1,) + (1,) * (n_sp - d))
        return x

    def kernel(k: _State) -> _State:
        sp = k.spatial
        if len(sp) != n_sp:  # pragma: no cover - shape-checked
            raise ValueError(f"{spec} needs {n_sp} spatial axes, got {len(sp)}")
        div = divisors(sp)

        def pool(a):
            if a is None or a.ndim == 0:
                return a
            for d, (n, f, s) in enumerate(zip(sp, window_shape, strides)):
                axes = (d,) if k.diag else (d, n_sp + d)
                for ax in axes:
                    a = _window_sum_axis(a, ax, n, f, s, padding)
                if div is not None:
                    v = jnp.asarray(div[d], a.dtype)
                    if k.diag:  # off-diagonal pixel pairs taken as zero (neural-tangents)
                        a = a / (v * v).reshape((-1,) + (1,) * (a.ndim - d - 1))
                    else:
                        a = a / v.reshape((-1,) + (1,) * (a.ndim - d - 1))
                        a = a / v.reshape((-1,) + (1,) * (a.ndim - n_sp - d - 1))
            return a

        return k.replace(var1=pool(k.var1), var2=pool(k.var2), nngp=pool(k.nngp),
                         ntk=pool(k.ntk), spatial=out_spatial(sp))

    def shape(s):
        if len(s) != n_sp + 1:
            raise ValueError(f"{spec} needs inputs of shape (N, {', '.join(['S'] * n_sp)}, C);"
                             f" got feature shape {s}")
        sp = out_spatial(s[:-1])
        if min(sp) < 1:
            raise ValueError(f"input spatial shape {s[:-1]} is smaller than the pooling "
                             f"window {window_shape}")
        return sp + (s[-1],)

    # Pixel-mixing: needs the full pixel-pair covariances (neural-tangents' Diagonal(
    # input=MAYBE)); with diagonal_spatial=True forced, off-diagonal pairs count as zero.
    return _make(spec, _Diag(input=_MAYBE, output=_NO), kernel, shape, init_fn, apply_fn)


def AvgPool(window_shape: Sequence[int], strides: Sequence[int] | None = None,
            padding: str = "VALID", normalize_edges: bool = False, batch_axis: int = 0,
            channel_axis: int = -1):
    """Average pooling over ``window_shape`` (neural-tangents' ``AvgPool``).

    ``strides=None`` means all ones; ``padding`` is ``'VALID'``, ``'SAME'`` (zero padding) or
    ``'CIRCULAR'`` (periodic). The output is the window sum divided by the window size, or,
    with ``normalize_edges=True`` and SAME padding, by the number of non-padding pixels in the
    window (``jax.example_libraries.stax.AvgPool``'s semantics).

    Kernel: the same linear map applied to each of the two pixel indices,
    ``K'[p, q] = sum_{i, j} K[s p + i, s q + j] / (n_p n_q)``; the NTK is mapped the same way
    (no weights). It mixes pixels, so the network propagates the full pixel-pair covariances.
    """
    return _Pool("AVG", window_shape, strides, padding, normalize_edges, batch_axis,
                 channel_axis)


def SumPool(window_shape: Sequence[int], strides: Sequence[int] | None = None,
            padding: str = "VALID", batch_axis: int = 0, channel_axis: int = -1):
    """Sum pooling over ``window_shape`` (neural-tangents' ``SumPool``): :func:`AvgPool`
    without the division, so its kernel is ``prod(window_shape)**2`` times AvgPool's."""
    return _Pool("SUM", window_shape, strides, padding, False, batch_axis, channel_axis)


def GlobalSumPool(batch_axis: int = 0, channel_axis: int = -1):
    """Global sum pooling over all spatial axes. Kernel: the sum over all pixel pairs, i.e.
    ``P**2`` times :func:`GlobalAvgPool`'s for ``P`` pixels (needs the full pixel-pair
    covariances; with ``diagonal_spatial=True`` forced, the sum of the same-pixel ones)."""
    _check_nt_defaults(batch_axis, channel_axis, "ntk")
    return _global_pool("GlobalSumPool", average=False)
