"""Branching: ``FanOut``, ``FanInSum``, ``FanInConcat``."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from lantk._checks import check_int
from lantk._stax.kernel import KernelFn, _Layer, _make, _State
from lantk._stax.requirements import ApplyError, _Diag, _no_params
from lantk._x64 import x64


def _branch_inputs(inputs, spec: str, n: int | None = None):
    if not isinstance(inputs, (list, tuple)):
        raise ApplyError(f"{spec} needs a list of branch inputs (e.g. from FanOut(n)), got "
                          f"{type(inputs).__name__}")
    if n is not None and len(inputs) != n:
        raise ApplyError(f"{spec} has {n} branches but got {len(inputs)} inputs")
    if not inputs:
        raise ApplyError(f"{spec} got an empty list of branch inputs")
    return list(inputs)


def FanOut(num: int):
    """Fan-out: ``num`` copies of the input, to feed the branches of :func:`parallel`.

    ``apply_fn`` returns a list of ``num`` references to its input; ``init_fn`` returns the
    list of ``num`` input shapes; the kernel is copied to each branch.
    """
    num = check_int(num, "FanOut: num")
    spec = f"FanOut({num})"
    check_params = _no_params(spec)

    def init_fn(rng, input_shape):
        return [tuple(input_shape)] * num, ()

    def apply_fn(params, inputs, **kwargs):
        check_params(params)
        return [inputs] * num

    return _make(spec, _Diag(), lambda k: [k] * num, lambda s: [s] * num, init_fn, apply_fn)


def _fan_in_common(ks: list, spec: str) -> _State:
    k0 = ks[0]
    for k in ks[1:]:
        if k.spatial != k0.spatial or k.diag != k0.diag:  # pragma: no cover - shape-checked
            raise ValueError(f"{spec}: the branches have different spatial shapes "
                             f"{[k.spatial for k in ks]}")
    return k0


def _weighted_sum(ks: list, weights: list, field: str):
    vals = [getattr(k, field) for k in ks]
    if any(v is None for v in vals):
        return None
    total = None
    for v, w in zip(vals, weights):
        term = v if w == 1 else w * v
        total = term if total is None else total + term
    return total


def FanInSum():
    """Fan-in sum: adds the outputs of the branches (which must have equal shapes).

    Kernel: the sum of the branches' covariances plus their cross-covariances. A branch whose
    last layer is a Dense/Conv inside the branch (its output is a zero-mean affine map with
    weights of its own; no nonlinearity after it) is uncorrelated with the other branches, so
    its covariance simply adds, which is neural-tangents' rule (e.g. the residual blocks of a
    WideResNet). The other branches must all be the very same activations (e.g.
    ``Identity()`` shortcuts of the FanOut input): ``m`` copies of one activation contribute
    ``m**2`` times its covariance, exactly. Any other correlated combination raises
    ``NotImplementedError`` (neural-tangents sums the covariances regardless, which is wrong
    for correlated branches).
    """
    spec = "FanInSum()"
    check_params = _no_params(spec)

    def init_fn(rng, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not input_shape or not all(
                isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(f"{spec}: input_shape must be a list of branch shapes, got "
                             f"{input_shape!r}")
        return tuple(input_shape[0]), ()

    def apply_fn(params, inputs, **kwargs):
        check_params(params)
        inputs = _branch_inputs(inputs, spec)
        shapes = {tuple(jnp.shape(x)) for x in inputs}
        if len(shapes) != 1:
            raise ApplyError(f"{spec} needs branch outputs of equal shapes, got "
                              f"{[tuple(jnp.shape(x)) for x in inputs]}")
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out

    def kernel(ks):
        ks = list(ks)
        k0 = _fan_in_common(ks, spec)
        if len(ks) == 1:
            return k0

        def independent(i):
            k = ks[i]
            return k.gaussian and bool(k.tags) and all(
                k.tags.isdisjoint(o.tags) for j, o in enumerate(ks) if j != i)

        fresh = [k for i, k in enumerate(ks) if independent(i)]
        rest = [k for i, k in enumerate(ks) if not independent(i)]
        if any(r is not rest[0] for r in rest[1:]):
            raise NotImplementedError(
                "FanInSum: the kernel of a sum of correlated branches is implemented only when "
                "every branch but copies of one same activation (e.g. Identity() shortcuts) "
                "ends with its own Dense/Conv layer (no nonlinearity after it); here "
                f"{len(rest)} branches are correlated and differ")
        terms, weights = list(fresh), [1.0] * len(fresh)
        if rest:
            terms.append(rest[0])
            weights.append(float(len(rest)) ** 2)
        out = {f: _weighted_sum(terms, weights, f) for f in ("var1", "var2", "nngp", "ntk")}
        tags = frozenset().union(*(k.tags for k in ks))
        return k0.replace(**out, gaussian=all(k.gaussian for k in ks),
                          chan=rest[0].chan if rest and not fresh else None, tags=tags,
                          is_input=all(k.is_input for k in ks))

    def shape(shapes):
        if not shapes:
            raise ValueError(f"{spec} got no branches")
        if any(tuple(s) != tuple(shapes[0]) for s in shapes):
            raise ValueError(f"{spec} needs branches of equal shapes, got feature shapes "
                             f"{[tuple(s) for s in shapes]}")
        return tuple(shapes[0])

    layer = _Layer(spec=spec, req=_Diag(), kernel=kernel, shape=shape, takes_list=True)
    return x64(init_fn), x64(apply_fn), KernelFn([layer], spec)


def FanInConcat(axis: int = -1):
    """Fan-in concatenation of the branches along the channel axis.

    Kernel (neural-tangents' semantics): the channel-weighted mean of the branches'
    covariances, ``sum_i C_i K_i / sum_i C_i`` with ``C_i`` the branches' channel counts
    (the plain mean when they are equal). As in neural-tangents the result is not treated as
    Gaussian (a nonlinearity needs a Dense/Conv first). Only the channel axis is supported:
    ``axis=-1``, or the positive index of the last axis (checked against the inputs).
    """
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"FanInConcat: axis must be an integer (the channel axis, -1), got "
                         f"{axis!r}")
    axis = int(axis)
    if axis == 0 or axis < -1:
        raise ValueError(f"FanInConcat: axis={axis} is not supported: lantk concatenates only "
                         f"along the channel (last) axis, axis=-1")
    spec = f"FanInConcat(axis={axis})"
    check_params = _no_params(spec)

    def check_axis(ndim, where):
        if axis != -1 and axis != ndim - 1:
            raise ValueError(f"FanInConcat: axis={axis} is not the channel (last) axis of "
                             f"{where} of rank {ndim}; only channel concatenation is supported")

    def init_fn(rng, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not input_shape or not all(
                isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(f"{spec}: input_shape must be a list of branch shapes, got "
                             f"{input_shape!r}")
        first = tuple(input_shape[0])
        check_axis(len(first), "input_shape")
        return first[:-1] + (sum(int(s[-1]) for s in input_shape),), ()

    def apply_fn(params, inputs, **kwargs):
        check_params(params)
        inputs = _branch_inputs(inputs, spec)
        check_axis(jnp.ndim(inputs[0]), "the inputs")
        if len({tuple(jnp.shape(x)[:-1]) for x in inputs}) != 1:
            raise ApplyError(f"{spec} needs branch outputs that agree except on the channel "
                              f"axis, got {[tuple(jnp.shape(x)) for x in inputs]}")
        return jnp.concatenate(inputs, axis=-1)

    def kernel(ks):
        ks = list(ks)
        k0 = _fan_in_common(ks, spec)
        if len(ks) == 1:
            return k0
        widths = [k.width for k in ks]
        if any(w is None for w in widths):  # pragma: no cover - widths are always tracked
            raise ValueError(f"{spec}: unknown channel counts of the branches")
        if all(w == widths[0] for w in widths):
            weights = [1.0 / len(ks)] * len(ks)
        else:
            weights = [w / sum(widths) for w in widths]
        out = {f: _weighted_sum(ks, weights, f) for f in ("var1", "var2", "nngp", "ntk")}
        chans = [k.chan for k in ks]
        return k0.replace(**out, gaussian=False, width=sum(widths),
                          chan=None if None in chans else sum(chans),
                          tags=frozenset().union(*(k.tags for k in ks)),
                          is_input=all(k.is_input for k in ks))

    def shape(shapes):
        if not shapes:
            raise ValueError(f"{spec} got no branches")
        check_axis(len(shapes[0]) + 1, "the inputs")
        if any(tuple(s[:-1]) != tuple(shapes[0][:-1]) for s in shapes):
            raise ValueError(f"{spec} needs branches that agree except on the channel axis, "
                             f"got feature shapes {[tuple(s) for s in shapes]}")
        return tuple(shapes[0][:-1]) + (sum(s[-1] for s in shapes),)

    layer = _Layer(spec=spec, req=_Diag(), kernel=kernel, shape=shape, takes_list=True)
    return x64(init_fn), x64(apply_fn), KernelFn([layer], spec)
