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
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from lantk._checks import no_progress

__all__ = ["empirical_ntk", "empirical_ntk_fn", "width_study"]


def _as_batch(x, name):
    if x is None:
        return None
    arr = jnp.asarray(x)
    if arr.ndim < 1 or arr.shape[0] == 0:
        raise ValueError(f"`{name}` must be a non-empty batch (N, ...), got shape {arr.shape}")
    if not bool(jnp.all(jnp.isfinite(arr))):
        raise ValueError(f"`{name}` contains NaN or infinite values")
    return arr


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
        part = jnp.einsum("nop,mqp->nmoq", a2, b2, precision=jax.lax.Precision.HIGHEST)
        total = part if total is None else total + part
    return total


def empirical_ntk(apply_fn: Callable, params, x1, x2=None, *, trace_axes=(-1,),
                  batch_size: int | None = None):
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

    Returns:
      The kernel in the dtype of the parameters (float64 under lantk's x64 mode).

    Example:
        >>> import jax, numpy as np
        >>> from lantk import archs
        >>> init_fn, apply_fn, kernel_fn = archs.two_layer_relu(4096)
        >>> x = np.random.default_rng(0).standard_normal((3, 5))
        >>> _, params = init_fn(jax.random.PRNGKey(0), x.shape)
        >>> k = empirical_ntk(apply_fn, params, x)
        >>> limit = np.asarray(kernel_fn(x, None, "ntk"))
        >>> bool(np.linalg.norm(k - limit) < 0.1 * np.linalg.norm(limit))  # width 4096
        True
    """
    if tuple(trace_axes) not in ((-1,), ()):
        raise ValueError("trace_axes must be (-1,) (mean over outputs) or () (per output)")
    x1 = _as_batch(x1, "x1")
    x2 = _as_batch(x2, "x2")
    if x2 is not None and x2.shape[1:] != x1.shape[1:]:
        raise ValueError(f"x1 and x2 must have the same shape apart from the batch axis, got "
                         f"{x1.shape} and {x2.shape}")
    if not jax.tree_util.tree_leaves(params):
        raise ValueError("params has no trainable leaves")

    bs = None if batch_size is None else int(batch_size)
    if bs is not None and bs < 1:
        raise ValueError("batch_size must be positive")
    jac = _jitted_jacobian(apply_fn)

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
                blocks[i, j] = _contract(ja, ja if (x2 is None and j == i) else jac(params, b))
        del ja
    k = jnp.concatenate([jnp.concatenate([blocks[i, j] for j in range(len(c2))], axis=1)
                         for i in range(len(c1))], axis=0)  # (N1, N2, O, O)
    if tuple(trace_axes) == (-1,):
        k = jnp.trace(k, axis1=2, axis2=3) / k.shape[2]
    return k


def empirical_ntk_fn(apply_fn: Callable, trace_axes=(-1,), **kwargs):
    """neural-tangents-style factory: returns ``ntk_fn(x1, x2, params)``."""

    def ntk_fn(x1, x2, params, **kw):
        return empirical_ntk(apply_fn, params, x1, x2, trace_axes=trace_axes,
                             batch_size=kwargs.get("batch_size"))

    return ntk_fn


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
    widths = [int(m) for m in widths]
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(f"widths must hold at least two positive widths, got {widths}")
    if int(seeds) < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds}")
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
