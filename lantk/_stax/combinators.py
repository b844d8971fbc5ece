"""Combinators: ``serial``, ``parallel``, ``repeat``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax, random

from lantk._checks import check_int
from lantk._stax.branching import _branch_inputs
from lantk._stax.kernel import KernelFn, _Layer, _run_layers
from lantk._stax.requirements import ApplyError, _describe, _split_rng
from lantk._x64 import x64


def _unpack_layers(layers, who: str):
    """``(init_fns, apply_fns, kernel_fns)`` of lantk layers (TypeError otherwise)."""
    init_fns, apply_fns, kernel_fns = [], [], []
    for i, layer in enumerate(layers):
        try:
            init_f, apply_f, kernel_f = layer
        except (TypeError, ValueError):
            raise TypeError(f"layer {i} of {who} is not an (init_fn, apply_fn, kernel_fn) "
                            "triple") from None
        if not isinstance(kernel_f, KernelFn):
            raise TypeError(f"layer {i} of {who} was not built by lantk.stax")
        init_fns.append(init_f)
        apply_fns.append(apply_f)
        kernel_fns.append(kernel_f)
    return init_fns, apply_fns, kernel_fns


def serial(*layers):
    """Compose layers: ``init_fn`` splits the key as ``jax.example_libraries.stax.serial``
    does and returns a list of per-layer parameters; ``apply_fn`` splits an ``rng`` keyword
    among the layers in the same way."""
    if not layers:
        raise ValueError("serial needs at least one layer")
    init_fns, apply_fns, kernel_fns = _unpack_layers(layers, "serial")

    def init_fn(rng, input_shape):
        params = []
        for f in init_fns:
            rng, layer_rng = random.split(rng)
            input_shape, param = f(layer_rng, input_shape)
            params.append(param)
        return input_shape, params

    def apply_fn(params, inputs, **kwargs):
        if not isinstance(params, (list, tuple)):
            raise ApplyError(f"serial expects params as a list with one entry per layer "
                              f"({len(apply_fns)} layers), got {_describe(params)}")
        if len(params) != len(apply_fns):
            raise ApplyError(f"expected parameters for {len(apply_fns)} layers, got "
                              f"{len(params)} (the parameters do not match the architecture)")
        rngs = _split_rng(kwargs, len(apply_fns))
        for i, (f, p) in enumerate(zip(apply_fns, params)):
            try:
                inputs = f(p, inputs, **kwargs, rng=rngs[i])
            except ApplyError as e:
                raise ApplyError(f"params[{i}] (layer {i} of serial): {e}") from None
        return inputs

    flat = [layer for kf in kernel_fns for layer in kf.layers]
    spec = "serial(" + ", ".join(kf.spec for kf in kernel_fns) + ")"
    return x64(init_fn), x64(apply_fn), KernelFn(flat, spec)


def parallel(*layers):
    """Apply ``layers[i]`` to the ``i``-th of a list of inputs (usually from :func:`FanOut`),
    as ``jax.example_libraries.stax.parallel``: ``init_fn`` returns the list of output shapes
    and a tuple of per-branch parameters, ``apply_fn`` a list of outputs; an ``rng`` keyword
    is split among the branches. The kernel maps each branch's kernel through its layers.

    The covariance representation is chosen for the whole network, each branch counting with
    its most demanding requirement (neural-tangents' ``&`` of the branch requirements).
    """
    if not layers:
        raise ValueError("parallel needs at least one layer (one per branch)")
    init_fns, apply_fns, kernel_fns = _unpack_layers(layers, "parallel")
    n = len(layers)
    spec = "parallel(" + ", ".join(kf.spec for kf in kernel_fns) + ")"

    def init_fn(rng, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != n or not all(
                isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(f"{spec}: input_shape must be a list of {n} shapes (one per "
                             f"branch, e.g. from FanOut({n})), got {input_shape!r}")
        rngs = random.split(rng, n)
        outs = [f(r, s) for f, r, s in zip(init_fns, rngs, input_shape)]
        return [o[0] for o in outs], tuple(o[1] for o in outs)

    def apply_fn(params, inputs, **kwargs):
        inputs = _branch_inputs(inputs, spec, n)
        if not isinstance(params, (list, tuple)) or len(params) != n:
            raise ApplyError(f"parallel expects params as a tuple with one entry per branch "
                              f"({n} branches), got {_describe(params)}")
        rngs = _split_rng(kwargs, n)
        out = []
        for i, (f, p, x) in enumerate(zip(apply_fns, params, inputs)):
            try:
                out.append(f(p, x, **kwargs, rng=rngs[i]))
            except ApplyError as e:
                raise ApplyError(f"branch {i} of parallel: {e}") from None
        return out

    def kernel(ks):
        return [_run_layers(kf.layers, k) for kf, k in zip(kernel_fns, ks)]

    def shape(shapes):
        if len(shapes) != n:
            raise ValueError(f"{spec} has {n} branches but got {len(shapes)} inputs")
        return [kf.output_shape(s) for kf, s in zip(kernel_fns, shapes)]

    req = kernel_fns[0].req
    for kf in kernel_fns[1:]:
        req = req & kf.req
    layer = _Layer(spec=spec, req=req, kernel=kernel, shape=shape, takes_list=True)
    return x64(init_fn), x64(apply_fn), KernelFn([layer], spec)


def repeat(layer, n: int):
    """``layer`` composed ``n`` times, as neural-tangents' ``repeat``: equivalent to
    ``serial(*[layer] * n)`` with independent parameters per repetition, stacked along a
    leading axis of size ``n`` and applied with ``lax.scan``. ``layer`` must keep the shape
    of its input."""
    n = check_int(n, "repeat: n")
    (init_f,), (apply_f,), (kernel_f,) = _unpack_layers([layer], "repeat")
    spec = f"repeat({kernel_f.spec}, {n})"

    def init_fn(rng, input_shape):
        out_shape, _ = init_f(rng, input_shape)
        if tuple(out_shape) != tuple(input_shape):
            raise ValueError(f"{spec}: the layer changes the shape {tuple(input_shape)} to "
                             f"{tuple(out_shape)}; repeat needs a shape-preserving layer")
        keys = random.split(rng, n)
        params = [init_f(key, input_shape)[1] for key in keys]
        stacked = jax.tree_util.tree_map(lambda *p: jnp.stack(p), *params)
        return tuple(out_shape), stacked

    def apply_fn(params, inputs, **kwargs):
        rng = kwargs.pop("rng", None)
        rngs = None if rng is None else random.split(rng, n)

        def step(x, pr):
            p, r = pr
            return apply_f(p, x, **kwargs, rng=r), None

        out, _ = lax.scan(step, inputs, (params, rngs), length=n)
        return out

    def shape(s):
        out = kernel_f.output_shape(s)
        if tuple(out) != tuple(s):
            raise ValueError(f"{spec}: the layer changes the feature shape {s} to {out}; "
                             "repeat needs a shape-preserving layer")
        return out

    flat = list(kernel_f.layers) * n
    req = KernelFn(flat, spec).req
    inner = _Layer(spec=spec, req=req, kernel=lambda k: _run_layers(flat, k), shape=shape)
    return x64(init_fn), x64(apply_fn), KernelFn([inner], spec)
