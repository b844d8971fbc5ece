"""Empirical (finite-width) NTK by automatic differentiation.

``K(x, x') = sum over all parameters of <d f(x)/d theta, d f(x')/d theta>`` at the given
parameters, e.g. a random initialisation from a :mod:`lantk.stax` / :mod:`lantk.archs`
``init_fn``. As the width grows it approaches the analytic ``kernel_fn(..., get='ntk')``.

Multi-output networks follow neural-tangents' ``empirical_ntk_fn`` convention: with the
default ``trace_axes=(-1,)`` the kernel is the *mean over outputs* of the per-output NTKs
(shape ``(N1, N2)``, equal to the plain NTK for the book's scalar-output networks); with
``trace_axes=()`` the full per-output-pair kernel of shape ``(N1, N2, O, O)`` is returned.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from lantk import _structured
from lantk._checks import check_choice, check_int, check_seed, check_widths, no_progress
from lantk._x64 import x64

_HIGHEST = jax.lax.Precision.HIGHEST

__all__ = ["empirical_ntk", "empirical_ntk_fn", "width_study"]


def _as_batch(x, name):
    if x is None:
        return None
    if not isinstance(x, jax.Array):
        host = np.asarray(x)
        if not (np.issubdtype(host.dtype, np.number) or host.dtype == bool) or \
                np.issubdtype(host.dtype, np.complexfloating):
            raise ValueError(f"`{name}` must be a real numeric array, got dtype {host.dtype}")
    arr = jnp.asarray(x)
    if arr.ndim < 1 or arr.shape[0] == 0:
        raise ValueError(f"`{name}` must be a non-empty batch (N, ...), got shape {arr.shape}")
    if not bool(jnp.all(jnp.isfinite(arr))):
        raise ValueError(f"`{name}` contains NaN or infinite values")
    return arr


_CHECKED: dict = {}


def _check_params(apply_fn, params, x):
    """Check, before any differentiation, that ``params`` are floating-point, finite, and fit
    ``apply_fn`` on inputs like ``x`` (one traced call per architecture, shapes and dtype);
    a mismatch is a ``ValueError`` naming what does not fit, not a raw JAX error from deep
    inside the derivatives."""
    leaves_with_path = jax.tree_util.tree_flatten_with_path(params)[0]
    for path, leaf in leaves_with_path:
        where = "params" + jax.tree_util.keystr(path)
        try:
            dtype = None if isinstance(leaf, str) else jnp.result_type(leaf)
        except TypeError:
            dtype = None
        if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
            raise ValueError(f"{where} must be a floating-point array (the empirical NTK "
                             f"differentiates it), got {type(leaf).__name__}"
                             f"{'' if dtype is None else ' of dtype ' + str(dtype)}")
        if not isinstance(leaf, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(leaf))):
            raise ValueError(f"{where} contains NaN or infinite values")
    leaves, treedef = jax.tree_util.tree_flatten(params)
    key = (apply_fn, treedef, tuple((tuple(np.shape(l)), jnp.result_type(l)) for l in leaves),
           tuple(x.shape[1:]), x.dtype)
    if key in _CHECKED:
        return
    try:
        out = jax.eval_shape(apply_fn, params, jax.ShapeDtypeStruct((1,) + x.shape[1:], x.dtype))
    except Exception as e:  # noqa: BLE001 (any failure of the user's network is reported)
        from lantk._stax.requirements import _describe

        raise ValueError(f"apply_fn(params, x) fails for these params and inputs of shape "
                         f"(N, {', '.join(map(str, x.shape[1:]))}): the parameters (structure "
                         f"and shapes {_describe(params)}) do not match the architecture or "
                         f"the inputs. {type(e).__name__}: {e}") from e
    outs = jax.tree_util.tree_leaves(out)
    if len(outs) != 1 or outs[0].ndim not in (1, 2) or outs[0].shape[0] != 1:
        shapes = [tuple(o.shape) for o in outs]
        raise ValueError(f"apply_fn must return one array of shape (N, O) or (N,); for one "
                         f"input it returned {shapes[0] if len(shapes) == 1 else shapes}")
    if len(_CHECKED) > 64:
        _CHECKED.clear()
    _CHECKED[key] = True


def _jacobian(apply_fn, params, x):
    """Leaves of d apply_fn(params, x) / d params, each of shape (N, O, *param.shape).

    One reverse pass per example and output (``vmap`` over examples of the Jacobian of a
    single-example call): the Jacobian of the whole batch at once would run every backward
    pass over all N examples, N times the work for the same numbers. This assumes the network
    treats examples independently, as every :mod:`lantk.stax` network does.
    """

    def f(p, xi):
        return apply_fn(p, xi[None]).reshape(-1)

    return jax.tree_util.tree_leaves(jax.vmap(jax.jacrev(f), in_axes=(None, 0))(params, x))


@functools.lru_cache(maxsize=32)
def _jitted_jacobian(apply_fn):
    return jax.jit(lambda p, x: _jacobian(apply_fn, p, x))


@jax.jit
def _contract(j1, j2):
    """sum over parameters of J1[n, o, ...] J2[m, q, ...] -> (N1, N2, O, O)."""
    total = None
    for a, b in zip(j1, j2):
        a2 = a.reshape(a.shape[0], a.shape[1], -1)
        b2 = b.reshape(b.shape[0], b.shape[1], -1)
        part = jnp.einsum("nop,mqp->nmoq", a2, b2, precision=_HIGHEST)
        total = part if total is None else total + part
    return total


# -- structured derivatives (see lantk._structured) -----------------------------------------

_PLANS: dict = {}


def _plan(apply_fn, params, x, n):
    """Trace ``apply_fn`` for one example and decide, per parameter leaf, its rule and form.

    Returns ``(closed, treedef, rules)`` with ``rules`` a tuple of ``(leaf, path, widx,
    dense)``; leaves not in ``rules`` keep their per-example Jacobian."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    key = (apply_fn, treedef, tuple((tuple(np.shape(l)), jnp.result_type(l)) for l in leaves),
           tuple(x.shape[1:]), x.dtype, int(n))
    if key in _PLANS:
        return _PLANS[key]
    spec = [jax.ShapeDtypeStruct(np.shape(l), jnp.result_type(l)) for l in leaves]
    xs = jax.ShapeDtypeStruct((1,) + tuple(x.shape[1:]), x.dtype)
    closed = jax.make_jaxpr(
        lambda ls, xi: apply_fn(jax.tree_util.tree_unflatten(treedef, ls), xi))(spec, xs)
    out_size = math.prod(closed.out_avals[0].shape) if len(closed.out_avals) == 1 else None
    rules = []
    if out_size is not None:
        for leaf, (path, widx) in sorted(_structured.find_rules(closed.jaxpr,
                                                               len(leaves)).items()):
            eqn = _structured.lookup(closed, path)
            dense = _structured.choose_dense(*_structured.sizes(eqn, widx), out_size, n)
            rules.append((leaf, path, widx, dense))
    if len(_PLANS) > 64:
        _PLANS.clear()
    _PLANS[key] = (closed, treedef, tuple(rules))
    return _PLANS[key]


@functools.lru_cache(maxsize=64)
def _jitted_features(closed, rules):
    """``features(leaves, x) -> (jacobian-like list (n, O, p), dense list (a, delta))``."""
    rule_of = {leaf: (path, widx, dense) for leaf, path, widx, dense in rules}

    def per_example(leaves, xi):
        fb_idx = [i for i in range(len(leaves)) if i not in rule_of]

        def f(eps_vals, fb_vals):
            args = list(leaves)
            for i, v in zip(fb_idx, fb_vals):
                args[i] = v
            eps = {rule_of[leaf][0]: (e, rule_of[leaf][1]) for (leaf, *_), e in
                   zip(rules, eps_vals)}
            record = {}
            out = _structured.evaluate(closed, args + [xi[None]], eps, record)
            return out[0].reshape(-1), [record[path] for _, path, *_ in rules]

        eps0 = [jnp.zeros(_structured.lookup(closed, path).outvars[0].aval.shape,
                          _structured.lookup(closed, path).outvars[0].aval.dtype)
                for _, path, *_ in rules]
        (d_eps, d_fb), a_rec = jax.jacrev(f, argnums=(0, 1), has_aux=True)(
            eps0, [leaves[i] for i in fb_idx])
        return d_eps, d_fb, a_rec

    def features(leaves, x):
        d_eps, d_fb, a_rec = jax.vmap(per_example, in_axes=(None, 0))(leaves, x)
        n = x.shape[0]
        jac = [j.reshape(n, j.shape[1], -1) for j in d_fb]
        dense = []
        for (leaf, path, widx, is_dense), d, a in zip(rules, d_eps, a_rec):
            eqn = _structured.lookup(closed, path)
            if not is_dense and _structured.conv_taps_apply(eqn):
                # the weight gradient tap by tap (strided slices and batched products): on
                # XLA:CPU several times faster than through the patches of the input
                jac.extend(_structured.conv_weight_gradient_taps(eqn, a, d))
                continue
            a2, d2 = jax.vmap(lambda ai, di: _structured.operand_matrices(eqn, widx, ai, di))(
                a, d)
            if is_dense:
                dense.append((a2, d2))
            else:   # the per-example weight gradient a^T delta, then the inner product
                g = jnp.einsum("npc,nopf->nocf", a2, d2, precision=_HIGHEST)
                jac.append(g.reshape(n, d2.shape[1], -1))
        return jac, dense

    return jax.jit(features)


@jax.jit
def _contract_features(f1, f2):
    """The block ``(N1, N2, O, O)`` from two chunks' features."""
    (j1, d1), (j2, d2) = f1, f2
    total = _contract(j1, j2) if j1 else 0.0
    for (a1, e1), (a2, e2) in zip(d1, d2):
        aa = jnp.einsum("npc,mrc->nmpr", a1, a2, precision=_HIGHEST)
        if a1.shape[1] == 1:
            ee = jnp.einsum("nof,mqf->nmoq", e1[:, :, 0], e2[:, :, 0], precision=_HIGHEST)
            part = aa[:, :, 0, 0, None, None] * ee
        else:
            ee = jnp.einsum("nopf,mqrf->nmoqpr", e1, e2, precision=_HIGHEST)
            part = jnp.einsum("nmpr,nmoqpr->nmoq", aa, ee, precision=_HIGHEST)
        total = total + part
    return total


@x64
def empirical_ntk(apply_fn: Callable, params, x1, x2=None, *, trace_axes=(-1,),
                  batch_size: int | None = None, implementation: str = "auto"):
    """Empirical NTK of ``apply_fn`` at ``params`` between ``x1`` and ``x2`` (``x1`` if None).

    Args:
      apply_fn: ``apply_fn(params, x) -> (N, O)`` (or ``(N,)``), e.g. from
        :func:`lantk.archs.paper_cnn`; each example's output must depend on that example
        alone (true of every :mod:`lantk.stax` network; no batch statistics).
      params: the parameters (any pytree; ``None`` leaves are ignored).
      trace_axes: ``(-1,)`` (default): mean over the output axis, result ``(N1, N2)``;
        ``()``: the per-output kernel ``(N1, N2, O, O)``.
      batch_size: hold the Jacobians of at most two chunks of this many inputs at a time
        (a memory cap: each holds chunk x outputs x parameters numbers), at the price of
        recomputing Jacobians; ``None``: one chunk per argument.
      implementation: how the kernel is computed; all give the same kernel up to round-off.
        ``"jacobian"``: per-example Jacobians of all parameters (``vmap`` of ``jacrev``),
        then ``J1 J2^T``. ``"structured"``: structured derivatives (Novak et al., 2022):
        ``apply_fn`` is traced to a jaxpr; a leaf used exactly once, as the weight ``W`` of a
        ``dot_general`` ``y = a W`` (``Dense``) or of a ``conv_general_dilated``, is never
        differentiated directly: its contribution is built from the op's input ``a`` and the
        cotangent ``delta = d f / d y``, as ``sum_{p,p'} (a a'^T)(delta delta'^T)`` over the
        op's non-contracted positions (no weight Jacobian at all) or, when a cost estimate
        finds it cheaper (convolutions), from the per-example weight gradient
        ``op^T(a, delta)``. Leaves without such a rule (biases, shared or otherwise used
        weights) fall back to their per-example Jacobians; with no rule at all (or an
        ``apply_fn`` with several outputs) it is ``"jacobian"``. A chunk then holds, per
        structured weight, its inputs (patches for convolutions) and output cotangents
        instead of its Jacobian. A convolution's per-example weight gradient is formed tap
        by tap (a strided slice of the padded input times the cotangents, one batched
        product over the output positions per filter tap); transposed convolutions form it
        through the input's patches. ``"auto"`` (default): ``"structured"``, the faster one
        on every network of ``benchmarks/bench_entk.py`` (by hundreds of times on a wide FC
        network, about twice on the paper CNN).

    Returns:
      The kernel, a JAX array in the dtype of the parameters (float64 for the float64
      parameters of a :mod:`lantk.stax` ``init_fn``): it is computed with JAX's 64-bit mode on
      (see :mod:`lantk`); outside that mode JAX computes on it in float32, so take
      ``np.asarray`` of it for float64 arithmetic.

    Example:
        >>> import jax, numpy as np
        >>> from lantk import archs
        >>> init_fn, apply_fn, kernel_fn = archs.two_layer_relu(4096)
        >>> x = np.random.default_rng(0).standard_normal((3, 5))
        >>> _, params = init_fn(jax.random.PRNGKey(0), x.shape)
        >>> k = np.asarray(empirical_ntk(apply_fn, params, x))
        >>> limit = np.asarray(kernel_fn(x, None, "ntk"))
        >>> bool(np.linalg.norm(k - limit) < 0.1 * np.linalg.norm(limit))  # width 4096
        True
    """
    if not callable(apply_fn):
        raise ValueError(f"apply_fn must be a callable apply_fn(params, x), got "
                         f"{type(apply_fn).__name__}")
    try:
        axes = tuple(trace_axes)
    except TypeError:
        axes = None
    if axes not in ((-1,), ()):
        raise ValueError("trace_axes must be (-1,) (mean over outputs) or () (per output), "
                         f"got {trace_axes!r}")
    x1 = _as_batch(x1, "x1")
    x2 = _as_batch(x2, "x2")
    if x2 is not None and x2.shape[1:] != x1.shape[1:]:
        raise ValueError(f"x1 and x2 must have the same shape apart from the batch axis, got "
                         f"{x1.shape} and {x2.shape}")
    if not jax.tree_util.tree_leaves(params):
        raise ValueError("params has no trainable leaves")

    bs = check_int(batch_size, "batch_size", allow_none=True)
    check_choice(implementation, "implementation", ("auto", "structured", "jacobian"))
    if x2 is not None and x2.dtype != x1.dtype:   # one traced program for both
        common = jnp.result_type(x1, x2)
        x1, x2 = x1.astype(common), x2.astype(common)
    _check_params(apply_fn, params, x1)
    n_ref = max(x1.shape[0], 0 if x2 is None else x2.shape[0]) if bs is None else bs
    if implementation == "jacobian":
        jac, contract = _jitted_jacobian(apply_fn), _contract
    else:
        closed, treedef, rules = _plan(apply_fn, params, x1, n_ref)
        if not rules:   # nothing to structure: the same computation as "jacobian"
            jac, contract = _jitted_jacobian(apply_fn), _contract
        else:
            feats = _jitted_features(closed, rules)
            jac = lambda p, x: feats(jax.tree_util.tree_leaves(p), x)
            contract = _contract_features

    def chunks(x):
        return [x] if bs is None else [x[i:i + bs] for i in range(0, x.shape[0], bs)]

    # At most two chunks' Jacobians are alive at a time (a Jacobian holds chunk x outputs x
    # parameters numbers); column chunks are recomputed for every row chunk, and for x2=None
    # only the upper block triangle is computed.
    c1 = chunks(x1)
    c2 = c1 if x2 is None else chunks(x2)
    blocks = {}
    for i, a in enumerate(c1):
        ja = jac(params, a)
        for j, b in enumerate(c2):
            if x2 is None and j < i:
                blocks[i, j] = jnp.transpose(blocks[j, i], (1, 0, 3, 2))
            else:
                blocks[i, j] = contract(ja, ja if (x2 is None and j == i) else jac(params, b))
        del ja
    k = jnp.concatenate([jnp.concatenate([blocks[i, j] for j in range(len(c2))], axis=1)
                         for i in range(len(c1))], axis=0)  # (N1, N2, O, O)
    if tuple(trace_axes) == (-1,):
        k = jnp.trace(k, axis1=2, axis2=3) / k.shape[2]
    return k


def empirical_ntk_fn(apply_fn: Callable, trace_axes=(-1,), **kwargs):
    """neural-tangents-style factory: returns ``ntk_fn(x1, x2, params)``.

    ``kwargs``: ``batch_size`` and ``implementation`` of :func:`empirical_ntk`; any other
    (neural-tangents') option is a ``TypeError`` rather than silently ignored."""
    unknown = sorted(set(kwargs) - {"batch_size", "implementation"})
    if unknown:
        raise TypeError(f"empirical_ntk_fn got unsupported keyword arguments {unknown} (lantk "
                        f"supports trace_axes, batch_size and implementation)")

    def ntk_fn(x1, x2, params, **kw):
        if kw:
            raise TypeError(f"ntk_fn got unsupported keyword arguments {sorted(kw)}")
        return empirical_ntk(apply_fn, params, x1, x2, trace_axes=trace_axes,
                             batch_size=kwargs.get("batch_size"),
                             implementation=kwargs.get("implementation", "auto"))

    return ntk_fn


@x64
def width_study(arch_factory: Callable, x, widths, seeds: int = 3, seed: int = 0,
                progress: bool = True) -> dict:
    """How fast the empirical NTK of finite networks approaches the analytic kernel.

    For every width ``m`` in ``widths`` the network ``arch_factory(m)`` (an
    ``(init_fn, apply_fn, kernel_fn)`` triple) is initialised ``seeds`` times; each time the
    relative Frobenius error ``||K_m - K|| / ||K||`` between its empirical NTK on ``x`` and
    the analytic ``kernel_fn(x, None, "ntk")`` is recorded. The analytic kernel does not depend
    on the width; it is taken from the first width.

    Args:
      arch_factory: ``m -> (init_fn, apply_fn, kernel_fn)``, e.g.
        ``lambda m: archs.two_layer_relu(width=m)``.
      x: inputs ``(N, ...)``.
      widths: increasing widths (at least two, for the slope).
      seeds: random initialisations per width.
      seed: base seed; initialisation ``s`` of width ``m`` uses ``fold_in(PRNGKey(seed), ...)``.
      progress: show a progress bar.

    Returns:
      ``dict(widths, mean, std, errors (widths x seeds), slope)`` where ``slope`` is the
      least-squares slope of ``log mean`` against ``log width`` (``-1/2`` in theory).

    Example:
        >>> from lantk import archs
        >>> x = np.random.default_rng(0).standard_normal((4, 3))
        >>> r = width_study(lambda m: archs.two_layer_relu(width=m), x, [64, 4096], seeds=2,
        ...                 progress=False)
        >>> bool(r["mean"][1] < r["mean"][0])
        True
    """
    if not callable(arch_factory):
        raise ValueError(f"arch_factory must be a callable m -> (init_fn, apply_fn, kernel_fn), "
                         f"got {type(arch_factory).__name__}")
    widths = check_widths(widths)
    if len(widths) < 2:
        raise ValueError(f"widths must hold at least two positive widths, got {widths}")
    seeds = check_int(seeds, "seeds")
    seed = check_seed(seed)
    x = _as_batch(x, "x")
    limit = None
    errors = np.zeros((len(widths), int(seeds)))
    bar = tqdm(total=len(widths) * int(seeds), desc="empirical NTK", disable=no_progress(progress))
    for i, m in enumerate(widths):
        init_fn, apply_fn, kernel_fn = arch_factory(m)
        if limit is None:
            limit = np.asarray(kernel_fn(x, None, "ntk"), np.float64)
            norm = np.linalg.norm(limit)
        for s in range(int(seeds)):
            key = jax.random.fold_in(jax.random.PRNGKey(seed), i * 100_003 + s)
            _, params = init_fn(key, x.shape)
            k = np.asarray(empirical_ntk(apply_fn, params, x), np.float64)
            errors[i, s] = np.linalg.norm(k - limit) / norm
            bar.update()
    bar.close()
    mean = errors.mean(axis=1)
    slope = float(np.polyfit(np.log(widths), np.log(mean), 1)[0])
    return {"widths": widths, "mean": mean, "std": errors.std(axis=1), "errors": errors,
            "slope": slope}
