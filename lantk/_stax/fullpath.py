"""Fast path for full-mode (pixel-pair) kernels that end in a global pooling layer, such as
Arora et al.'s CNTK-GAP: ``[Conv(SAME, stride 1), Relu] * depth, GlobalAvgPool, Dense``.

Why it is faster
----------------
In the full mode a stride-1 SAME convolution maps the pixel-pair covariance as
``box(K)[p, q] = mean_t K[p + t, q + t]`` (zero outside the image): the pixel offset
``q - p`` never changes, and the nonlinearities act on one pixel pair at a time. So the
``P^2`` pixel pairs (``P`` pixels) split into ``P`` independent *classes*
``c = (q - p) mod n`` (per spatial axis), each of ``P`` pairs
``(p, q(p) = (p + c) mod n)``, and every layer up to the global pooling maps each class to
itself: a 3-tap pass along axis ``d`` reads ``K[p + t e_d, q + t e_d]``, which belongs to the
same class, and is zero (padding) when ``p_d + t`` or ``q_d + t`` leaves ``[0, n_d)`` (the
second condition is where the class wraps round). The global pooling only needs the sum over
all pairs of the last layer.

So the computation runs class-chunk by class-chunk (``lax.map``): for a chunk of ``G``
classes it builds the input covariances ``x1[p] . x2[q(p)] / C``, applies every layer (box sums
as ``prod(filter_shape)`` shifted, masked slices added in the same order as the general path;
the nonlinearity's kernel map, shared with the general path, computed once for the NNGP and
the NTK factor) and sums over the chunk. The per-layer pixel-pair arrays never leave the cache
and the last layer's arrays are never stored. The same-pixel variances that the
nonlinearities need are computed beforehand in the diagonal mode (``(*S, N)`` arrays, which
the full-mode diagonal equals), and the pooled self-covariances (``cov1``/``cov2``, needed only
when asked for or used by a later nonlinearity; XLA drops them otherwise) by the same loop on
the ``(n, n)`` pairs.

The values equal the general path's up to floating-point reassociation of the final sum
(tests/stax/test_stax_fullpath.py checks this).
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from lantk._stax.kernel import _HIGHEST, _input_state, _materialise, _State

# Pixel pairs x batch entries per chunk: small enough that a chunk's arrays stay in cache,
# large enough that the loop's per-iteration overhead is negligible.
_CHUNK_ELEMENTS = 1 << 18

# Input covariances from at most this many channels are summed channel by channel.
_UNROLL_CHANNELS = 8


@dataclasses.dataclass(frozen=True)
class Affine:
    """A layer ``K' = w2 box(K) + b2``, ``Θ' = w2 box(Θ) + K'`` (NTK parameterisation);
    ``taps`` per spatial axis (offsets ``t`` of a stride-1 SAME box), None for Dense."""
    w2: float
    b2: float | None
    taps: tuple | None
    width: int


@dataclasses.dataclass(frozen=True)
class Nonlin:
    """A nonlinearity with the general path's kernel map ``kmap(nngp, outer, ntk, same=,
    store=)`` (``store``: a function the map may pass intermediate arrays through so that XLA
    computes them once)."""
    kmap: object


@dataclasses.dataclass(frozen=True)
class Pool:
    """GlobalAvgPool (``average``) or GlobalSumPool."""
    average: bool


def same_taps(filter_shape, padding, strides):
    """Per-axis tap offsets of a stride-1 SAME box, or None when the layer is not one."""
    if padding != "SAME" or any(s != 1 for s in strides):
        return None
    taps = []
    for f in filter_shape:
        lo = lax.padtype_to_pads((f,), (f,), (1,), "SAME")[0][0]  # as the general path's box
        taps.append(tuple(i - lo for i in range(f)))
    return tuple(taps)


def split(layers, n_sp: int):
    """Index ``j`` such that ``layers[:j]`` (ending with a global pool) runs on the fast path,
    or 0 when the network does not start that way."""
    gaussian = False
    for j, layer in enumerate(layers):
        op = layer.fast
        if isinstance(op, Pool):
            return j + 1 if j > 0 else 0
        if isinstance(op, Affine):
            if op.taps is not None and len(op.taps) != n_sp:
                return 0
            gaussian = True
        elif isinstance(op, Nonlin):
            if not gaussian:
                return 0  # the general path raises the error
            gaussian = False
        else:
            return 0
    return 0


def run(layers, x1, x2, want_ntk: bool) -> _State:
    """The state after ``layers`` (a prefix accepted by :func:`split`) in full mode: the
    general path's state after its global pooling layer."""
    ops = [layer.fast for layer in layers]
    spatial = tuple(x1.shape[1:-1])
    base = _input_state(x1, x2, True, False)  # diagonal mode: same-pixel variances
    # Same-pixel variances at each nonlinearity's input, from the diagonal mode.
    qs1, qs2 = [], []
    k = base
    for layer, op in zip(layers[:-1], ops[:-1]):
        if isinstance(op, Nonlin):
            qs1.append(k.var1)
            qs2.append(k.var1 if k.var2 is None else k.var2)
        k = layer.kernel(k)
    pool = ops[-1]
    body = ops[:-1]
    xb = x1 if x2 is None else x2
    nngp, ntk = _pooled(body, x1, xb, qs1, qs2, base.same, base.one, want_ntk, pairs=True)
    # Self covariances of every input (the (n, n) pairs), x1 and x2 in one loop.
    xs = x1 if x2 is None else jnp.concatenate([x1, x2])
    qs = qs1 if x2 is None else [jnp.concatenate([a, b], axis=-1) for a, b in zip(qs1, qs2)]
    var, _ = _pooled(body, xs, xs, qs, qs, None, base.one, False, pairs=False)
    var1, var2 = (var, None) if x2 is None else (var[:x1.shape[0]], var[x1.shape[0]:])
    if pool.average:
        scale = 1.0 / math.prod(spatial) ** 2
        nngp, var1 = nngp * scale, var1 * scale
        ntk = None if ntk is None else ntk * scale
        var2 = None if var2 is None else var2 * scale
    affines = [op for op in body if isinstance(op, Affine)]
    return base.replace(var1=var1, var2=var2, nngp=nngp, ntk=ntk, spatial=(), diag=True,
                        gaussian=isinstance(body[-1], Affine), chan=None,
                        width=affines[-1].width, tags=frozenset([object()]), is_input=False)


def _divisor_at_most(n: int, m: int) -> int:
    m = max(1, min(n, m))
    while n % m:
        m -= 1
    return m


def _pooled(ops, xa, xb, qs_a, qs_b, same, one, want_ntk, pairs: bool):
    """Sums over all pixel pairs of the last layer's nngp (and ntk): ``(Na, Nb)`` for
    ``pairs``, else ``(N,)`` for the pairs ``(xa[n], xb[n])`` (``xa is xb``)."""
    spatial = tuple(xa.shape[1:-1])
    n_sp = len(spatial)
    p = math.prod(spatial)
    c = xa.shape[-1]
    dtype = xa.dtype
    fa = jnp.moveaxis(xa.reshape(xa.shape[0], p, c), 0, 1)  # (P, Na, C)
    fb = jnp.moveaxis(xb.reshape(xb.shape[0], p, c), 0, 1)  # (P, Nb, C)
    qa = [q.reshape(p, -1) for q in qs_a]  # (P, Na)
    qb = [q.reshape(p, -1) for q in qs_b]
    batch = (xa.shape[0], xb.shape[0]) if pairs else (xa.shape[0],)
    nb = len(batch)
    g = _divisor_at_most(p, _CHUNK_ELEMENTS // max(1, p * math.prod(batch)))
    classes = np.stack(np.unravel_index(np.arange(p), spatial), axis=-1).astype(np.int32)
    classes = classes.reshape(p // g, g, n_sp)
    coords = [np.arange(n, dtype=np.int32).reshape((1,) * (1 + d) + (n,) + (1,) * (n_sp - d - 1))
              for d, n in enumerate(spatial)]
    strides = [math.prod(spatial[d + 1:]) for d in range(n_sp)]
    bshape = (1,) * nb

    def chunk(cls):  # cls: (G, n_sp) class offsets
        cd = [cls[:, d].reshape((g,) + (1,) * n_sp) for d in range(n_sp)]
        q = [(coords[d] + cd[d]) % spatial[d] for d in range(n_sp)]  # (G, *S) partner pixel
        qflat = sum(q[d] * strides[d] for d in range(n_sp)).reshape(g, p)
        gb = jnp.take(fb, qflat, axis=0)  # (G, P, Nb, C)
        if c <= _UNROLL_CHANNELS:  # a few input channels: an unrolled sum XLA fuses
            left = fa[None, :, :, None, :] if pairs else fa[None]
            right = gb[:, :, None, :, :] if pairs else gb
            nngp = left[..., 0] * right[..., 0]
            for z in range(1, c):
                nngp = nngp + left[..., z] * right[..., z]
        elif pairs:
            nngp = jnp.einsum("pac,gpbc->gpab", fa, gb, precision=_HIGHEST)
        else:
            nngp = jnp.einsum("pnc,gpnc->gpn", fa, gb, precision=_HIGHEST)
        nngp = _materialise((nngp / c).reshape((g,) + spatial + batch), one)
        pix = jnp.all(cls == 0, axis=1).reshape((g,) + (1,) * n_sp + bshape)  # same pixel
        if pairs:
            mask = pix & same
        else:
            mask = pix
        ntk = None
        il = 0
        for op in ops:
            if isinstance(op, Affine):
                if op.taps is not None:
                    nngp = _box(nngp, q, spatial, op.taps, nb, one)
                    ntk = None if ntk is None else _box(ntk, q, spatial, op.taps, nb, one)
                nngp = op.w2 * nngp
                if op.b2 is not None:
                    nngp = nngp + op.b2
                if want_ntk:
                    ntk = nngp if ntk is None else ntk * op.w2 + nngp
            else:
                a = qa[il].reshape((1,) + spatial + ((batch[0], 1) if pairs else batch))
                b = jnp.take(qb[il], qflat, axis=0)
                b = b.reshape((g,) + spatial + ((1, batch[1]) if pairs else batch))
                nngp, ntk = op.kmap(nngp, lambda fn: fn(a) * fn(b), ntk, same=mask,
                                    store=lambda v: _materialise(v, one))
                nngp, ntk = _materialise(nngp, one), _materialise(ntk, one)
                il += 1
        axes = tuple(range(1 + n_sp))
        return (jnp.sum(nngp, axis=axes),
                jnp.sum(ntk, axis=axes) if want_ntk else jnp.zeros(batch, dtype))

    sums_nngp, sums_ntk = lax.map(chunk, jnp.asarray(classes))
    nngp = jnp.sum(sums_nngp, axis=0)
    return nngp, (jnp.sum(sums_ntk, axis=0) if want_ntk else None)


def _box(a, q, spatial, taps, nb, one):
    """``mean_t a[p + t, q + t]`` within each class: per axis, the taps' shifted slices (zero
    beyond the image, and where the partner pixel ``q_d + t`` leaves it), summed in tap order
    as the general path's box sum; then divided by the filter size."""
    n_sp = len(spatial)
    size = 1
    for d, (n, ts) in enumerate(zip(spatial, taps)):
        lo, hi = -ts[0], ts[-1]
        size *= len(ts)
        widths = [(0, 0)] * a.ndim
        widths[1 + d] = (max(lo, 0), max(hi, 0))
        padded = jnp.pad(a, widths)
        total = None
        for t in ts:
            idx = [slice(None)] * a.ndim
            start = t + max(lo, 0)
            idx[1 + d] = slice(start, start + n)
            part = padded[tuple(idx)]
            if t:
                ok = (q[d] + t >= 0) & (q[d] + t < n)  # (G, *S): the partner stays inside
                part = jnp.where(ok.reshape(ok.shape + (1,) * nb), part, 0)
            total = part if total is None else total + part
        a = _materialise(total, one)
    return a / size
