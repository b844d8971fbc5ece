"""Structured derivatives for the empirical NTK (the idea of Novak et al. 2022, written anew).

The function ``apply_fn(params, x)`` is traced to a jaxpr for one example. A parameter leaf
that is used exactly once, as the weight operand of a ``dot_general`` (no batch dimensions)
or of a ``conv_general_dilated``, enters the output only through that bilinear operation
``y = op(a, W)``; then ``d f / d W = op_W^T(a, delta)`` with ``a`` the other operand and
``delta = d f / d y``. The jaxpr is re-evaluated with a zero perturbation ``eps`` added to
each such ``y`` (so ``delta = d f / d eps``) while the operand ``a`` is recorded. Per leaf:

* dense form (``dot_general``): with ``a`` as ``(P, C)`` (free x contracting positions) and
  ``delta`` as ``(P, F)``, the contribution to ``K(x, x')`` is
  ``sum_{p, p'} (a a'^T)[p, p'] (delta delta'^T)[p, p']`` and ``W``'s Jacobian is never formed;
* gradient form: the per-example weight gradient ``op_W^T(a, delta)`` followed by the inner
  product; for a convolution it is formed tap by tap (:func:`conv_weight_gradient_taps`: a
  strided slice of the padded input and one batched product with ``delta`` per filter tap),
  which XLA:CPU runs several times faster than a product through the input's patches (kept
  for transposed convolutions, whose input is dilated).

A cost estimate picks the form per operation. Every other leaf (biases, leaves used twice or
by another operation) keeps its per-example Jacobian. The sum is exactly the Jacobian
contraction; only the order of the floating-point operations differs.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

try:  # jax >= 0.4.36
    from jax.extend.core import Literal as _Literal
except ImportError:  # pragma: no cover
    from jax.core import Literal as _Literal

_HIGHEST = jax.lax.Precision.HIGHEST
_CALLS = ("pjit", "jit", "closed_call", "core_call")


def _inner(eqn):
    """The closed jaxpr of a call-like equation (``jit`` inside ``apply_fn``), else None."""
    if eqn.primitive.name not in _CALLS:
        return None
    j = eqn.params.get("jaxpr", eqn.params.get("call_jaxpr"))
    if j is None:
        return None
    return j if hasattr(j, "jaxpr") else jax.extend.core.ClosedJaxpr(j, ())


def _weight_operand(eqn, var):
    """Index (0 or 1) of ``var`` as the weight of a bilinear op with a rule, else None."""
    name = eqn.primitive.name
    if len(eqn.invars) != 2 or eqn.invars[0] is eqn.invars[1]:
        return None
    idx = 0 if eqn.invars[0] is var else 1
    if name == "dot_general":
        (_, _), (lb, rb) = eqn.params["dimension_numbers"]
        return idx if not lb and not rb else None
    if name == "conv_general_dilated":
        ok = (idx == 1 and eqn.params["feature_group_count"] == 1
              and eqn.params["batch_group_count"] == 1)
        return idx if ok else None
    return None


def find_rules(jaxpr, n_param_leaves):
    """Map leaf index -> (path, weight operand index) for the leaves with a rule.

    ``path`` is the tuple of equation indices through nested calls. A leaf qualifies only if
    its value (followed into calls) has exactly one use and that use is a rule."""
    uses = {i: [] for i in range(n_param_leaves)}

    def walk(jx, marked, path):
        for v in jx.outvars:
            if not isinstance(v, _Literal) and v in marked:
                uses[marked[v]].append(None)
        for k, eqn in enumerate(jx.eqns):
            hit = [(j, v) for j, v in enumerate(eqn.invars)
                   if not isinstance(v, _Literal) and v in marked]
            if not hit:
                continue
            inner = _inner(eqn)
            if inner is not None:
                walk(inner.jaxpr, {inner.jaxpr.invars[j]: marked[v] for j, v in hit},
                     path + (k,))
                continue
            for j, v in hit:
                w = _weight_operand(eqn, v)
                uses[marked[v]].append(None if w is None else (path + (k,), w))

    walk(jaxpr, {v: i for i, v in enumerate(jaxpr.invars[:n_param_leaves])}, ())
    return {i: u[0] for i, u in uses.items() if len(u) == 1 and u[0] is not None}


def _bind_params(eqn):
    """``(subfuns, params)`` to bind ``eqn``'s primitive (the API differs across versions)."""
    got = eqn.primitive.get_bind_params(eqn.params)
    if isinstance(got, tuple) and len(got) == 2 and isinstance(got[1], dict):
        return got
    return (), got


def evaluate(closed, args, eps, record):
    """Evaluate ``closed`` on ``args``, adding ``eps[path]`` to the output of the rule
    operation at ``path`` and storing its other operand in ``record[path]``."""
    prefixes = {p[:i] for p in eps for i in range(1, len(p))}

    def run(jx, consts, vals, path):
        env = {}

        def read(v):
            return v.val if isinstance(v, _Literal) else env[v]

        for v, c in zip(jx.constvars, consts):
            env[v] = c
        for v, a in zip(jx.invars, vals):
            env[v] = a
        for k, eqn in enumerate(jx.eqns):
            here = path + (k,)
            invals = [read(v) for v in eqn.invars]
            inner = _inner(eqn)
            if here in prefixes and inner is not None:
                outs = run(inner.jaxpr, inner.consts, invals, here)
            else:
                subfuns, params = _bind_params(eqn)
                outs = eqn.primitive.bind(*subfuns, *invals, **params)
                if not eqn.primitive.multiple_results:
                    outs = [outs]
            if here in eps:
                w = eps[here][1]
                record[here] = invals[1 - w]
                outs = [outs[0] + eps[here][0]]
            for v, o in zip(eqn.outvars, outs):
                env[v] = o
        return [read(v) for v in jx.outvars]

    return run(closed.jaxpr, closed.consts, args, ())


def dense_layout(eqn, widx, a_shape):
    """Permutations putting ``a`` as (free, contracting) and ``y`` as (a-free, W-free), and
    the sizes ``P`` (free positions of ``a``) and ``C`` (contracted) of a ``dot_general``."""
    (lc, rc), _ = eqn.params["dimension_numbers"]
    ac = tuple(lc if widx == 1 else rc)
    a_free = [d for d in range(len(a_shape)) if d not in ac]
    n_af = len(a_free)
    n_wf = len(eqn.invars[widx].aval.shape) - len(ac)
    y_perm = (tuple(range(n_af + n_wf)) if widx == 1 else
              tuple(range(n_wf, n_wf + n_af)) + tuple(range(n_wf)))
    P = math.prod(a_shape[d] for d in a_free)
    C = math.prod(a_shape[d] for d in ac)
    return tuple(a_free) + ac, y_perm, P, C


def lookup(closed, path):
    """The equation at ``path`` (indices through nested calls)."""
    jx = closed.jaxpr
    for k in path[:-1]:
        jx = _inner(jx.eqns[k]).jaxpr
    return jx.eqns[path[-1]]


def operand_matrices(eqn, widx, a, d):
    """One example's operand ``a`` as ``(P, C)`` and cotangents ``d`` (``(O, *y.shape)``) as
    ``(O, P, F)`` with ``y[p, f] = sum_c a[p, c] W'[c, f]`` for a fixed rearrangement ``W'``
    of the weight (convolutions through their patches)."""
    O = d.shape[0]
    if eqn.primitive.name == "conv_general_dilated":
        prm = eqn.params
        dn = prm["dimension_numbers"]
        w_shape = eqn.invars[1].aval.shape
        patches = jax.lax.conv_general_dilated_patches(
            a, tuple(w_shape[i] for i in dn.rhs_spec[2:]), prm["window_strides"],
            prm["padding"], prm["lhs_dilation"], prm["rhs_dilation"], dn, precision=_HIGHEST)
        out = dn.out_spec
        perm = (out[0],) + tuple(out[2:]) + (out[1],)
        a2 = jnp.transpose(patches, perm)
        a2 = a2.reshape(-1, a2.shape[-1])
        d2 = jnp.transpose(d, (0,) + tuple(p + 1 for p in perm))
        return a2, d2.reshape(O, a2.shape[0], -1)
    a_perm, y_perm, P, C = dense_layout(eqn, widx, a.shape)
    a2 = jnp.transpose(a, a_perm).reshape(P, C)
    d2 = jnp.transpose(d, (0,) + tuple(p + 1 for p in y_perm))
    return a2, d2.reshape(O, P, -1)


def sizes(eqn, widx):
    """``(P, C, F)`` of :func:`operand_matrices` for ``eqn``."""
    y_size = math.prod(eqn.outvars[0].aval.shape)
    w_size = math.prod(eqn.invars[widx].aval.shape)
    if eqn.primitive.name == "conv_general_dilated":
        dn = eqn.params["dimension_numbers"]
        F = eqn.invars[1].aval.shape[dn.rhs_spec[0]]
        P = y_size // F
        return P, w_size // F, F
    _, _, P, C = dense_layout(eqn, widx, eqn.invars[1 - widx].aval.shape)
    return P, C, y_size // P


def choose_dense(P, C, F, O, n):
    """True when the dense form is cheaper than forming the weight gradient (flop counts
    for an n x n block)."""
    dense = n * n * P * P * (C + O * O * F)
    grad = n * O * P * C * F + n * n * O * O * C * F
    return dense <= grad


def conv_taps_apply(eqn) -> bool:
    """True when :func:`conv_weight_gradient_taps` handles this convolution: no input
    dilation (a transposed convolution keeps the patches form), one feature group."""
    if eqn.primitive.name != "conv_general_dilated":
        return False
    prm = eqn.params
    return (all(int(v) == 1 for v in prm["lhs_dilation"]) and prm["feature_group_count"] == 1
            and prm["batch_group_count"] == 1)


def conv_weight_gradient_taps(eqn, a, d):
    """Per-example weight gradients of a convolution, one array per filter tap.

    ``a`` is the recorded input of ``n`` examples, shaped ``(n, *lhs)`` with a batch axis of
    one in ``lhs``; ``d`` the cotangents ``(n, O, *out)`` of its output. With the padded input
    ``a_p``, strides ``s`` and filter dilation ``r``, the gradient of weight ``W[t, c, f]`` is
    ``sum_p a_p[s p + r t, c] d[p, f]``: for each tap ``t`` a strided slice of ``a_p`` and one
    batched matrix product over the output positions. Returns a list of ``(n, O, C * F)``
    arrays (the entries of the per-example weight Jacobian, grouped by tap)."""
    prm = eqn.params
    dn = prm["dimension_numbers"]
    w_shape = eqn.invars[1].aval.shape
    taps = tuple(int(w_shape[i]) for i in dn.rhs_spec[2:])
    k = len(taps)
    n, O = d.shape[0], d.shape[1]
    # (n, spatial..., C) and (n, O, spatial..., F), dropping the per-example batch axis of one
    lhs = dn.lhs_spec
    a2 = jnp.transpose(a, (0, 1 + lhs[0]) + tuple(1 + s for s in lhs[2:]) + (1 + lhs[1],))
    a2 = a2.reshape((n,) + a2.shape[2:])
    out = dn.out_spec
    d2 = jnp.transpose(d, (0, 1, 2 + out[0]) + tuple(2 + s for s in out[2:]) + (2 + out[1],))
    d2 = d2.reshape((n, O) + d2.shape[3:])
    pads = [(0, 0, 0)] + [(int(lo), int(hi), 0) for lo, hi in prm["padding"]] + [(0, 0, 0)]
    ap = jax.lax.pad(a2, jnp.zeros((), a2.dtype), pads)
    out_sp = d2.shape[2:2 + k]
    strides = tuple(int(s) for s in prm["window_strides"])
    dil = tuple(int(r) for r in prm["rhs_dilation"])
    C, F = a2.shape[-1], d2.shape[-1]
    sp = tuple(range(1, 1 + k))
    grads = []
    for t in np.ndindex(*taps):
        start = (0,) + tuple(ti * ri for ti, ri in zip(t, dil)) + (0,)
        limit = ((n,) + tuple(st + s * (o - 1) + 1 for st, s, o in zip(start[1:], strides, out_sp))
                 + (C,))
        at = jax.lax.slice(ap, start, limit, (1,) + strides + (1,))
        # (n, spatial, C) x (n, O, spatial, F) -> (n, C, O, F), contracting the positions
        g = jax.lax.dot_general(at, d2, ((sp, tuple(2 + s - 1 for s in sp)), ((0,), (0,))),
                                precision=_HIGHEST)
        grads.append(jnp.transpose(g, (0, 2, 1, 3)).reshape(n, O, C * F))
    return grads
