"""Normalisation layers: ``LayerNorm``."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from lantk._checks import check_real
from lantk._stax.kernel import _make, _outer11, _outer12, _State, _var_diag
from lantk._stax.requirements import ApplyError, _check_nt_defaults, _Diag, _no_params


def _axes(axis) -> tuple:
    """``axis`` as a tuple of distinct integers (not yet canonicalised: the rank is not known
    before the layer sees its input)."""
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    if not items:
        raise ValueError("LayerNorm: axis is empty: give the axes to normalise over, "
                         "including the channel axis -1")
    out = []
    for a in items:
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)):
            raise ValueError(f"LayerNorm: axis must be an integer or a tuple of integers, got "
                             f"{axis!r}")
        out.append(int(a))
    if len(set(out)) != len(out):
        raise ValueError(f"LayerNorm: axis {axis!r} repeats an axis")
    return tuple(out)


def LayerNorm(axis=-1, eps: float = 1e-12, batch_axis: int = 0, channel_axis: int = -1):
    """Layer normalisation over ``axis`` (neural-tangents' ``LayerNorm``, no learned scale
    or shift).

    Finite layer: ``(x - mean(x)) / sqrt(eps + var(x))``, mean and (biased) variance over
    ``axis``. ``axis`` must contain the channel axis ``-1`` (at infinite width the channel
    mean is 0 and the channel variance is the same-pixel variance ``q(x, p)``) and may
    contain spatial axes of images (``axis=(1, 2, 3)`` normalises each image over its pixels
    and channels); the batch axis is not supported.

    Kernel: ``K'(x, p; x', p') = K(x, p; x', p') / sqrt(Q(x, p) Q(x', p'))`` with
    ``Q(x, p) = eps + mean q(x, p)``, the mean over the normalised spatial axes (none for
    ``axis=-1``); the NTK is divided by the same factor. The input must be Gaussian (the
    output of a Dense or Conv layer, as in neural-tangents), and so is the output.
    """
    _check_nt_defaults(batch_axis, channel_axis)
    axes = _axes(axis)
    eps = check_real(eps, "LayerNorm: eps", nonnegative=True)
    spec_axis = axes[0] if len(axes) == 1 and not isinstance(axis, (tuple, list)) else axes
    spec = f"LayerNorm(axis={spec_axis!r}, eps={eps!r})"
    check_params = _no_params(spec)

    def canonical(ndim: int) -> tuple:
        """The normalised axes of an input of rank ``ndim``, sorted and non-negative."""
        out = []
        for a in axes:
            if not -ndim <= a < ndim:
                raise ValueError(f"{spec}: axis {a} is out of range for inputs of rank {ndim}")
            out.append(a % ndim)
        if len(set(out)) != len(out):
            raise ValueError(f"{spec}: axis {axes} names an axis twice for inputs of rank "
                             f"{ndim}")
        if ndim - 1 not in out:
            raise ValueError(f"{spec}: the normalisation must include the channel axis "
                             f"{ndim - 1} (-1), needed for an infinite-width limit; got "
                             f"axis={axes}")
        if 0 in out:
            raise NotImplementedError(f"{spec}: normalising over the batch axis 0 is not "
                                      "supported")
        return tuple(sorted(out))

    def init_fn(rng, input_shape):
        input_shape = tuple(input_shape)
        canonical(len(input_shape))
        return input_shape, ()

    def apply_fn(params, inputs, **kwargs):
        check_params(params)
        if jnp.ndim(inputs) < 2:
            raise ApplyError(f"{spec} needs inputs (N, ..., C), got shape "
                             f"{tuple(jnp.shape(inputs))}")
        ax = canonical(jnp.ndim(inputs))
        mean = jnp.mean(inputs, axis=ax, keepdims=True)
        var = jnp.var(inputs, axis=ax, keepdims=True)
        return (inputs - mean) / jnp.sqrt(eps + var)

    def kernel(k: _State) -> _State:
        if not k.gaussian:
            raise NotImplementedError(f"{spec} is implemented only for Gaussian inputs: put a "
                                      "Dense or Conv layer right before it")
        s = len(k.spatial)
        # normalised spatial axes, as axes of the (*S, N) same-pixel variances
        sp_axes = tuple(a - 1 for a in canonical(s + 2) if a != s + 1)

        def q(v):
            d = eps + _var_diag(v, k.spatial, k.diag)
            return jnp.mean(d, axis=sp_axes, keepdims=True) if sp_axes else d

        q1 = q(k.var1)
        q2 = q1 if k.var2 is None else q(k.var2)
        if sp_axes:  # broadcast the means back over the normalised axes
            q1 = jnp.broadcast_to(q1, k.spatial + q1.shape[-1:])
            q2 = jnp.broadcast_to(q2, k.spatial + q2.shape[-1:])
        inv = 1 / jnp.sqrt(_outer12(q1, q2, s, k.diag))

        def self_cov(v, qv):
            if v is None:
                return v
            if k.diag or s == 0:
                return v / qv
            return v / jnp.sqrt(_outer11(qv, s))

        ntk = k.ntk
        if ntk is not None:
            ntk = ntk * inv
        return k.replace(var1=self_cov(k.var1, q1), var2=self_cov(k.var2, q2),
                         nngp=k.nngp * inv, ntk=ntk)

    def shape(sh):
        canonical(len(sh) + 1)
        return tuple(sh)

    return _make(spec, _Diag(), kernel, shape, init_fn, apply_fn)
