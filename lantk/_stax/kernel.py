"""The kernel state (:class:`_State`, batch axes last), :class:`KernelFn` (validation, the jitted
computation, export to neural-tangents' layout) and :func:`_make`, which turns a layer's
kernel map into ``(init_fn, apply_fn, kernel_fn)``."""

from __future__ import annotations

import collections
import dataclasses
import math
import operator
import string
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from lantk._stax.requirements import _NO, _YES, _Diag
from lantk._x64 import x64

_GETS = ("nngp", "ntk", "cov1", "cov2")


_HIGHEST = lax.Precision.HIGHEST


@dataclasses.dataclass
class _State:
    var1: jnp.ndarray
    var2: jnp.ndarray | None  # None: x2 is x1
    nngp: jnp.ndarray
    ntk: jnp.ndarray | None  # None: not computed; 0-d zero before the first affine layer
    spatial: tuple  # spatial shape S of the current activations
    diag: bool  # diagonal (same-pixel) or full (pixel-pair) representation
    gaussian: bool  # output of an affine layer (required before a nonlinearity)
    chan: int | None  # finite channel count when known (inputs), else None
    same: jnp.ndarray | None = None  # (N1, N2) bool: x1[n1] and x2[n2] are identical
    one: jnp.ndarray | None = None  # 1.0 that XLA cannot constant-fold (see _materialise)
    width: int | None = None  # channel count of the (finite) activations
    # Lineage: one token per affine layer whose output this state is a linear function of
    # (used by FanInSum to know which branches are independent).
    tags: frozenset = frozenset()
    is_input: bool = True  # no affine layer applied yet
    x1_is_x2: object = True  # x2 is None or equal to x1 (neural-tangents' x1_is_x2; Dropout)

    def replace(self, **kw) -> _State:
        return dataclasses.replace(self, **kw)

    def map_cov(self, fn: Callable) -> _State:
        """Apply ``fn`` to var1, var2 and nngp (the NNGP-like covariances)."""
        return self.replace(
            var1=fn(self.var1),
            var2=None if self.var2 is None else fn(self.var2),
            nngp=fn(self.nngp),
        )


def _gaussian_input_variances(k, spec):
    """(number of spatial axes, variances of x1, of x2) for a nonlinearity's input ``k``,
    which must be Gaussian (the output of a Dense or Conv layer)."""
    if not k.gaussian:
        raise ValueError(f"The input to {spec} must be Gaussian, i.e. a Dense or Conv layer "
                         "must come before the nonlinearity")
    d1 = _var_diag(k.var1, k.spatial, k.diag)
    d2 = d1 if k.var2 is None else _var_diag(k.var2, k.spatial, k.diag)
    return len(k.spatial), d1, d2


def _var_diag(v: jnp.ndarray, spatial: tuple, diag: bool) -> jnp.ndarray:
    """Same-pixel variances ``(*S, N)`` from a var array of either mode."""
    if diag or not spatial:
        return v
    p = math.prod(spatial)
    n = v.shape[-1]
    d = jnp.diagonal(v.reshape(p, p, n), axis1=0, axis2=1)  # (N, P)
    return d.T.reshape(spatial + (n,))


def _outer12(d1: jnp.ndarray, d2: jnp.ndarray, s: int, diag: bool,
             combine=operator.mul) -> jnp.ndarray:
    """prod[..., n1, n2] = d1[p1, n1] * d2[p2, n2] broadcast to the nngp layout (``combine``
    in place of ``*``, e.g. ``operator.add`` for the sums of variances)."""
    if diag or s == 0:
        return combine(d1[..., :, None], d2[..., None, :])
    a = d1.reshape(d1.shape[:s] + (1,) * s + (d1.shape[-1], 1))
    b = d2.reshape((1,) * s + d2.shape[:s] + (1, d2.shape[-1]))
    return combine(a, b)


def _outer11(d: jnp.ndarray, s: int, combine=operator.mul) -> jnp.ndarray:
    """prod[p1, p2, n] = d[p1, n] * d[p2, n] (full-mode self covariances; ``combine`` in place
    of ``*``)."""
    a = d.reshape(d.shape[:s] + (1,) * s + (d.shape[-1],))
    b = d.reshape((1,) * s + d.shape[:s] + (d.shape[-1],))
    return combine(a, b)


@dataclasses.dataclass(frozen=True)
class _Layer:
    spec: str
    req: _Diag
    kernel: Callable[[_State], _State]
    shape: Callable[[tuple], tuple]  # feature shape (without batch) -> output feature shape
    takes_list: bool = False  # input is a list of branches (parallel, FanInSum, FanInConcat)
    fast: object = None  # description for the full-mode fast path (fullpath.py), or None


class KernelFn:
    """``kernel_fn(x1, x2=None, get=None, **kwargs)`` of a layer or network.

    ``get``: ``None`` (a namedtuple with ``nngp`` and ``ntk``), a string (that array), or a
    tuple of strings among ``'nngp', 'ntk', 'cov1', 'cov2'`` (a namedtuple with those fields
    in that order). ``get='nngp'`` does not compute the NTK.

    Attributes:
      spec: a stable string describing the architecture and all hyper-parameters; it is a
        valid Python expression in the names of :mod:`lantk.stax` (and, for the layers that
        neural-tangents has, of ``neural_tangents.stax``). Used as a cache key.
      layers: the flat sequence of layers.
    """

    def __init__(self, layers: Sequence[_Layer], spec: str):
        self.layers = tuple(layers)
        self.spec = spec
        req = _Diag(input=_YES, output=_NO) if not self.layers else None
        for layer in self.layers:
            req = layer.req if req is None else req >> layer.req
        self.req = req
        self._jitted = jax.jit(self._compute, static_argnames=("get", "diag"))

    def __repr__(self) -> str:
        return f"KernelFn({self.spec})"

    # -- validation ---------------------------------------------------------------------
    @staticmethod
    def _canonical_get(get):
        if get is None:
            return ("nngp", "ntk"), False
        if isinstance(get, str):
            names, single = (get,), True
        elif isinstance(get, (tuple, list)) and all(isinstance(g, str) for g in get):
            names, single = tuple(get), False
        else:
            raise ValueError(f"`get` must be None, a string or a tuple of strings, got {get!r}")
        if not names:
            raise ValueError("`get` is empty: ask for at least one of " + ", ".join(_GETS))
        for g in names:
            if g not in _GETS:
                raise ValueError(
                    f"unknown `get` entry {g!r}: lantk kernels provide {', '.join(_GETS)}")
        return names, single

    @staticmethod
    def _as_array(x, name):
        if isinstance(x, jax.Array):
            arr = x
        else:
            try:
                arr = np.asarray(x)
            except (TypeError, ValueError) as e:  # pragma: no cover - exotic inputs
                raise ValueError(f"`{name}` is not array-like: {e}") from None
            if arr.dtype == object:
                raise ValueError(f"`{name}` is not a numeric array (dtype object)")
        if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)
                or arr.dtype == bool):
            raise ValueError(f"`{name}` must be real-valued, got dtype {arr.dtype}")
        if arr.ndim < 2:
            raise ValueError(
                f"`{name}` must have a batch axis and a feature/channel axis, i.e. shape "
                f"(N, ..., C); got shape {tuple(arr.shape)}")
        if arr.shape[0] == 0:
            raise ValueError(f"`{name}` is empty: no inputs along the batch axis (shape "
                             f"{tuple(arr.shape)})")
        if 0 in arr.shape[1:]:
            raise ValueError(f"`{name}` has an axis of size 0 besides the batch axis (shape "
                             f"{tuple(arr.shape)}): every input needs at least one pixel and "
                             f"one channel")
        return arr

    @staticmethod
    def _check_finite(x, name):
        if isinstance(x, jax.core.Tracer):
            return  # cannot check under a caller's jit/vmap
        ok = bool(jnp.all(jnp.isfinite(x))) if isinstance(x, jax.Array) else bool(
            np.isfinite(x).all())
        if not ok:
            raise ValueError(f"`{name}` contains NaN or infinite values")

    def output_shape(self, feature_shape: tuple) -> tuple:
        """Feature shape (without the batch axis) after the network; ValueError if invalid."""
        shape = tuple(int(d) for d in feature_shape)
        for layer in self.layers:
            shape = _layer_shape(layer, shape)
        return shape

    @x64
    def __call__(self, x1, x2=None, get=None, *, diagonal_spatial=None, diagonal_batch=None,
                 mask_constant=None, **kwargs):
        if kwargs:
            raise TypeError(f"kernel_fn got unsupported keyword arguments {sorted(kwargs)}")
        if diagonal_batch not in (None, True):
            raise NotImplementedError("lantk kernels store only the batch diagonal of cov1/cov2 "
                                      "(diagonal_batch=True)")
        if mask_constant is not None:
            raise NotImplementedError("masked inputs (mask_constant) are not supported")
        names, single = self._canonical_get(get)
        x1 = self._as_array(x1, "x1")
        if x2 is not None:
            x2 = self._as_array(x2, "x2")
            if tuple(x2.shape[1:]) != tuple(x1.shape[1:]):
                raise ValueError(
                    f"x1 and x2 must have the same shape apart from the batch axis (same "
                    f"spatial size and number of channels); got {tuple(x1.shape)} and "
                    f"{tuple(x2.shape)}")
        self.output_shape(x1.shape[1:])  # raises ValueError for an incompatible input rank
        self._check_finite(x1, "x1")
        if x2 is not None:
            self._check_finite(x2, "x2")

        dtype = jnp.result_type(x1.dtype, x2.dtype) if x2 is not None else x1.dtype
        if not jnp.issubdtype(dtype, jnp.floating):
            dtype = jnp.zeros((), float).dtype  # float64 when x64 is on
        elif jnp.finfo(dtype).bits < 32:
            dtype = jnp.float32
        x1 = jnp.asarray(x1, dtype)
        x2 = None if x2 is None else jnp.asarray(x2, dtype)

        diag = bool(self.req)
        if diagonal_spatial is not None:
            if diagonal_spatial and self.req.input == _NO:
                raise ValueError("asked for diagonal_spatial=True, but this network needs the "
                                 "full pixel-pair covariances (e.g. it has GlobalAvgPool)")
            diag = bool(diagonal_spatial)
        if x1.ndim == 2:
            diag = True  # no spatial axes: both modes coincide

        out = self._jitted(x1, x2, get=names, diag=diag)
        if isinstance(out, list):  # the network ends with several branches
            return [o[0] if single else _namedtuple(names)(*o) for o in out]
        if single:
            return out[0]
        return _namedtuple(names)(*out)

    # -- computation --------------------------------------------------------------------
    def _compute(self, x1, x2, get, diag):
        want_ntk = "ntk" in get
        layers = self.layers
        j = 0
        if not diag and x1.ndim > 2 and _FAST_PATH["enabled"]:
            from lantk._stax import fullpath

            j = fullpath.split(layers, x1.ndim - 2)
        if j:  # a full-mode prefix ending in a global pooling layer (e.g. CNTK-GAP)
            k = fullpath.run(layers[:j], x1, x2, want_ntk)
        else:
            k = _input_state(x1, x2, diag, want_ntk)
        k = _run_layers(layers[j:], k)
        if isinstance(k, list):
            return [tuple(_export(ki, g) for g in get) for ki in k]
        return tuple(_export(k, g) for g in get)


# "enabled": the full-mode fast path of fullpath.py (switched off by the tests that compare
# it with the general path; a jitted KernelFn keeps the choice it was first traced with).
_FAST_PATH = {"enabled": True}


def _run_layers(layers, k):
    for layer in layers:
        k = layer.kernel(k)
    return k


def _layer_shape(layer: _Layer, shape):
    """``layer.shape(shape)``, checking that branches (lists) go only to branch layers."""
    if isinstance(shape, list) and not layer.takes_list:
        raise ValueError(f"{layer.spec} got {len(shape)} branches (from FanOut/parallel); "
                         "combine them with FanInSum() or FanInConcat() first")
    if not isinstance(shape, list) and layer.takes_list:
        raise ValueError(f"{layer.spec} needs a list of branches (e.g. from FanOut(n) and "
                         f"parallel(...)), got a single input of feature shape {shape}")
    return layer.shape(shape)


_NAMEDTUPLES: dict = {}


def _namedtuple(names: tuple):
    if names not in _NAMEDTUPLES:
        _NAMEDTUPLES[names] = collections.namedtuple("Kernel", names)
    return _NAMEDTUPLES[names]


def _input_state(x1, x2, diag: bool, want_ntk: bool) -> _State:
    n_sp = x1.ndim - 2
    spatial = tuple(x1.shape[1:-1])
    c = x1.shape[-1]
    letters = string.ascii_lowercase[7:7 + n_sp]  # h, i, ...: distinct from a, b, z
    xa = x1
    xb = x1 if x2 is None else x2
    if diag or n_sp == 0:
        nngp = jnp.einsum(f"a{letters}z,b{letters}z->{letters}ab", xa, xb, precision=_HIGHEST)
        var = lambda x: jnp.einsum(f"a{letters}z,a{letters}z->{letters}a", x, x,
                                   precision=_HIGHEST)
    else:
        p = math.prod(spatial)
        fa = xa.reshape(xa.shape[0], p, c)
        fb = xb.reshape(xb.shape[0], p, c)
        nngp = jnp.einsum("apz,bqz->pqab", fa, fb, precision=_HIGHEST)
        nngp = nngp.reshape(spatial + spatial + nngp.shape[-2:])

        def var(x):
            f = x.reshape(x.shape[0], p, c)
            v = jnp.einsum("apz,aqz->pqa", f, f, precision=_HIGHEST)
            return v.reshape(spatial + spatial + (x.shape[0],))
    var1 = var(x1) / c
    var2 = None if x2 is None else var(x2) / c
    ntk = jnp.zeros((), nngp.dtype) if want_ntk else None
    if x2 is None:
        same = jnp.eye(x1.shape[0], dtype=bool)
    else:
        h1, h2 = _row_hash(x1), _row_hash(x2)
        same = jnp.all(h1[:, None, :] == h2[None, :, :], axis=-1)
    # 1.0, computed from the data so that XLA cannot fold it (1 whatever the input value).
    first = x1.reshape(-1)[0]
    one = jnp.where(jnp.isfinite(first), first * 0 + 1, 1).astype(x1.dtype)
    if x2 is None:
        x1_is_x2 = True
    elif x2.shape != x1.shape:
        x1_is_x2 = False
    else:
        x1_is_x2 = jnp.all(x1 == x2)
    return _State(var1=var1, var2=var2, nngp=nngp / c, ntk=ntk, spatial=spatial,
                  diag=diag or n_sp == 0, gaussian=False, chan=int(c), same=same, one=one,
                  width=int(c), x1_is_x2=x1_is_x2)


def _materialise(a, one):
    """``a / one`` (= a): a float division is 'expensive' for XLA's fusion heuristics, so the
    array is computed once and stored instead of being fused into (and recomputed by) each
    shifted slice of the following convolution's box sum. ``optimization_barrier`` does not
    survive XLA:CPU's pipeline; this does, at the cost of one division per element."""
    if one is None or a is None or a.ndim == 0:
        return a
    return a / one


_HASH_SEEDS = (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F)


def _row_hash(x: jnp.ndarray) -> jnp.ndarray:
    """Exact 128-bit fingerprints of the rows' bit patterns, (N, 4) uint32.

    Integer arithmetic wraps and is associative, so identical rows get identical fingerprints
    whatever the batch position or reduction order (distinct rows collide with probability
    ~2^-128). Used to know which input pairs are identical: their same-pixel correlation is
    exactly 1 at every layer, where the ReLU angle would otherwise pick up sqrt(eps) rounding.
    """
    n = x.shape[0]
    bits = lax.bitcast_convert_type(x, jnp.uint32).reshape(n, -1)  # float32/float64 rows
    d = bits.shape[1]
    idx = jnp.arange(d, dtype=jnp.uint32)
    out = []
    for seed in _HASH_SEEDS:
        mult = (idx * jnp.uint32(2654435761) + jnp.uint32(seed)) | jnp.uint32(1)  # odd
        mixed = bits * mult
        mixed = mixed ^ (mixed >> jnp.uint32(15))
        out.append(jnp.sum(mixed * jnp.uint32(seed | 1), axis=1, dtype=jnp.uint32))
    return jnp.stack(out, axis=1)


def _export(k: _State, what: str):
    s = len(k.spatial)
    if what == "nngp":
        a = k.nngp
    elif what == "ntk":
        a = k.ntk
        if a.ndim == 0:  # no affine layer at all
            a = jnp.broadcast_to(a, k.nngp.shape)
    else:
        v = k.var1 if (what == "cov1" or k.var2 is None) else k.var2
        # (*S, N) or (*S, *S, N) -> (N, *S) or NT's (N, S1, S1, S2, S2, ...)
        if k.diag or s == 0:
            return jnp.moveaxis(v, -1, 0)
        perm = (2 * s,) + tuple(i for d in range(s) for i in (d, s + d))
        return jnp.transpose(v, perm)
    if k.diag or s == 0:
        return jnp.moveaxis(a, (-2, -1), (0, 1))
    perm = (2 * s, 2 * s + 1) + tuple(i for d in range(s) for i in (d, s + d))
    return jnp.transpose(a, perm)


def _make(spec, req, kernel, shape, init_fn, apply_fn, fast=None):
    layer = _Layer(spec=spec, req=req, kernel=kernel, shape=shape, fast=fast)
    return x64(init_fn), x64(apply_fn), KernelFn([layer], spec)


def _pixel_eye(spatial: tuple) -> jnp.ndarray:
    """(*S, *S) bool: the same pixel."""
    p = math.prod(spatial)
    return jnp.eye(p, dtype=bool).reshape(spatial + spatial)


def _same_mask(same, spatial: tuple, diag: bool):
    """Broadcastable mask of (input pair, pixel pair) entries that are exactly correlated."""
    if same is None:
        return None
    if diag or not spatial:
        return same
    return _pixel_eye(spatial)[..., None, None] & same
