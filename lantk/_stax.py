"""Implementation of :mod:`lantk.stax`: infinite-width NNGP/NTK kernels with neural-tangents'
``stax`` interface for the layers the book needs.

Semantics follow neural-tangents 0.6.5 (``parameterization='ntk'``, ``channel_axis=-1``,
inputs ``(N, *spatial, C)``, filters ``(*spatial, I, O)``), so code written for
``neural_tangents.stax`` with these layers runs unchanged and gives the same numbers.

Internal representation
-----------------------
A kernel is propagated as a :class:`_State` with the *batch axes last* (pairs of inputs are the
innermost, contiguous axes, which makes the spatial box sums of convolutions plain shifted
slices of contiguous blocks):

* ``nngp``/``ntk``: ``(*S, N1, N2)`` in the *diagonal* mode (only same-pixel covariances are
  tracked: enough when every pixel-mixing layer is eventually followed by a ``Flatten``
  readout), or ``(*S, *S, N1, N2)`` in the *full* mode (all pixel pairs: needed by
  ``GlobalAvgPool``);
* ``var1``/``var2``: per-input covariances (the diagonal of the batch-batch covariance),
  ``(*S, N)`` in the diagonal mode and ``(*S, *S, N)`` in the full mode.

The mode is chosen per network by neural-tangents' requirement algebra (``Diagonal`` with
``>>``): diagonal iff all later layers allow it. The whole computation is one ``jax.jit``-ed
function per (shapes, dtype, ``get``) and does not compute the NTK when only the NNGP is asked
for. Results are returned in neural-tangents' layout (batch axes first; in the full mode
spatial axes interleaved as ``(N1, N2, H, H, W, W)``).

Speed (CPU) comes from three choices, each measured on the CNTK of ``paper_cnn(1)``:

* the ReLU angle uses a vectorisable ``arctan2`` (:func:`_angle`; ``jnp.arctan2`` costs
  ~25 ns per element on XLA:CPU);
* the ReLU outputs are materialised (:func:`_materialise`) so that XLA does not fuse the ReLU
  into, and recompute it in, every shifted slice of the next box sum;
* box sums pad once and add shifted slices separably (faster than ``reduce_window``).

Identical input pairs (found by an exact fingerprint of their bits) get correlation exactly 1
at every pixel, so the diagonal of a Gram matrix carries no ``sqrt(eps)`` rounding from the
ReLU angle.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import string
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax, random

from lantk._checks import check_choice, check_int, check_real
from lantk._x64 import x64

__all__ = [
    "ABRelu",
    "Abs",
    "AvgPool",
    "Conv",
    "Dense",
    "DenseUnscaled",
    "Dropout",
    "Erf",
    "FanInConcat",
    "FanInSum",
    "FanOut",
    "Flatten",
    "GlobalAvgPool",
    "GlobalSumPool",
    "Identity",
    "KernelFn",
    "LeakyRelu",
    "Relu",
    "SumPool",
    "parallel",
    "repeat",
    "serial",
]

_NO, _MAYBE, _YES = 0, 1, 2
_GETS = ("nngp", "ntk", "cov1", "cov2")
_HIGHEST = lax.Precision.HIGHEST


# --------------------------------------------------------------------------------------------
# neural-tangents' `Diagonal` requirement algebra (decides which covariances are propagated)
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Diag:
    input: int = _YES
    output: int = _NO

    def __rshift__(self, other: _Diag) -> _Diag:
        if self.output == _YES:
            return self
        if self.output > _NO and other.input > _NO:
            inp = self.input
        elif self.output == _NO and other.input < _YES:
            inp = _NO
        else:
            inp = min(self.input, other.input)
        return _Diag(input=inp, output=other.output)

    def __and__(self, other: _Diag) -> _Diag:
        """Requirement of parallel branches: the most demanding of each."""
        return _Diag(input=min(self.input, other.input), output=min(self.output, other.output))

    def __bool__(self) -> bool:
        return self.input == _YES and self.output > _NO


# --------------------------------------------------------------------------------------------
# Kernel state
# --------------------------------------------------------------------------------------------
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


def _outer12(d1: jnp.ndarray, d2: jnp.ndarray, s: int, diag: bool) -> jnp.ndarray:
    """prod[..., n1, n2] = d1[p1, n1] * d2[p2, n2] broadcast to the nngp layout."""
    if diag or s == 0:
        return d1[..., :, None] * d2[..., None, :]
    a = d1.reshape(d1.shape[:s] + (1,) * s + (d1.shape[-1], 1))
    b = d2.reshape((1,) * s + d2.shape[:s] + (1, d2.shape[-1]))
    return a * b


def _outer11(d: jnp.ndarray, s: int) -> jnp.ndarray:
    """prod[p1, p2, n] = d[p1, n] * d[p2, n] (full-mode self covariances)."""
    a = d.reshape(d.shape[:s] + (1,) * s + (d.shape[-1],))
    b = d.reshape((1,) * s + d.shape[:s] + (d.shape[-1],))
    return a * b


# --------------------------------------------------------------------------------------------
# Layer descriptions
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Layer:
    spec: str
    req: _Diag
    kernel: Callable[[_State], _State]
    shape: Callable[[tuple], tuple]  # feature shape (without batch) -> output feature shape
    takes_list: bool = False  # input is a list of branches (parallel, FanInSum, FanInConcat)


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
        k = _input_state(x1, x2, diag, want_ntk)
        k = _run_layers(self.layers, k)
        if isinstance(k, list):
            return [tuple(_export(ki, g) for g in get) for ki in k]
        return tuple(_export(k, g) for g in get)


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


# --------------------------------------------------------------------------------------------
# Spatial box sums (the kernel of a convolution)
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------
def _fmt(x) -> str:
    return "None" if x is None else repr(float(x))


class ApplyError(ValueError):
    """An ``apply_fn`` got parameters or inputs that do not fit its layer; :func:`serial`
    adds the layer's index to the message."""


def _describe(params, limit: int = 160) -> str:
    """A short description of a parameter pytree: its structure with leaves as shapes."""
    try:
        shown = repr(jax.tree_util.tree_map(lambda leaf: tuple(np.shape(leaf)), params))
    except Exception:  # pragma: no cover - exotic pytrees
        shown = type(params).__name__
    return shown if len(shown) <= limit else shown[:limit] + "..."


def _std(value, name: str, allow_none: bool = False):
    """A weight/bias standard deviation: a finite number >= 0 (``None`` if allowed)."""
    return check_real(value, name, nonnegative=True, allow_none=allow_none)


def _no_params(spec: str):
    """``apply_fn`` of a parameterless layer: check that it got no parameters."""

    def check(params):
        if jax.tree_util.tree_leaves(params):
            raise ApplyError(f"{spec} has no parameters, but got {_describe(params)} (the "
                              f"parameters do not match the architecture)")

    return check


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


def _make(spec, req, kernel, shape, init_fn, apply_fn):
    layer = _Layer(spec=spec, req=req, kernel=kernel, shape=shape)
    return x64(init_fn), x64(apply_fn), KernelFn([layer], spec)


def _affine_state(k: _State, W_std: float, b_std: float | None, fn=None,
                  fan_in_scale: float = 1.0, width: int | None = None) -> _State:
    """Kernel after an affine layer (NTK parameterisation): fn is the spatial map (or None)."""
    w2 = W_std ** 2 * fan_in_scale
    b2 = None if b_std is None else b_std ** 2

    def aff(a):
        a = a if fn is None else fn(a)
        a = w2 * a
        return a if b2 is None else a + b2

    out = k.map_cov(aff)
    ntk = k.ntk
    if ntk is not None:
        ntk = (ntk if fn is None else fn(ntk)) * w2 + out.nngp
    return out.replace(ntk=ntk, gaussian=True, chan=None, width=width,
                       tags=frozenset([object()]), is_input=False)


def Dense(out_dim: int, W_std: float = 1.0, b_std: float | None = None,
          batch_axis: int = 0, channel_axis: int = -1, parameterization: str = "ntk"):
    """Fully connected layer on the trailing (channel) axis, NTK parameterisation:
    ``z = W_std / sqrt(fan_in) * x @ W + b_std * b`` with ``W, b ~ N(0, 1)``."""
    _check_nt_defaults(batch_axis, channel_axis, parameterization)
    out_dim = check_int(out_dim, "Dense: out_dim")
    W_std = _std(W_std, "Dense: W_std")
    b_std = _std(b_std, "Dense: b_std", allow_none=True)
    spec = f"Dense({out_dim}, W_std={_fmt(W_std)}, b_std={_fmt(b_std)})"

    def init_fn(rng, input_shape):
        input_shape = _input_shape(input_shape, spec)
        output_shape = input_shape[:-1] + (out_dim,)
        rng1, rng2 = random.split(rng)
        W = random.normal(rng1, (input_shape[-1], out_dim))
        if b_std is None:
            b = None
        else:
            b = random.normal(rng2, (1,) * (len(input_shape) - 1) + (out_dim,))
        return output_shape, (W, b)

    def apply_fn(params, inputs, **kwargs):
        if jnp.ndim(inputs) < 1:
            raise ApplyError(f"{spec} needs inputs with a feature axis, got a scalar")
        W, b = _affine_params(params, spec, (inputs.shape[-1], out_dim), b_std is not None,
                              out_dim)
        out = (W_std / inputs.shape[-1] ** 0.5) * jnp.matmul(inputs, W, precision=_HIGHEST)
        if b is not None:
            out = out + b_std * b
        return out

    def kernel(k: _State) -> _State:
        return _affine_state(k, W_std, b_std, width=out_dim)

    def shape(s):
        if len(s) < 1:
            raise ValueError("Dense needs inputs with a feature axis")
        return s[:-1] + (out_dim,)

    return _make(spec, _Diag(), kernel, shape, init_fn, apply_fn)


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


def Conv(out_chan: int, filter_shape: Sequence[int], strides: Sequence[int] | None = None,
         padding: str = "VALID", W_std: float = 1.0, b_std: float | None = None,
         dimension_numbers=None, parameterization: str = "ntk"):
    """Convolution with weights shared over positions, NTK parameterisation, inputs
    ``(N, *spatial, C)`` and filters ``(*filter_shape, C_in, C_out)`` as in neural-tangents.

    ``z = W_std / sqrt(C_in * prod(filter_shape)) * conv(x, W) + b_std * b``. The defaults
    (``strides=None`` = all ones, ``padding='VALID'``) are neural-tangents' defaults.
    """
    if dimension_numbers is not None and tuple(dimension_numbers) != _dimension_numbers(
            len(filter_shape)):
        raise NotImplementedError("lantk Conv supports only the NHWC/HWIO layout")
    if parameterization != "ntk":
        raise NotImplementedError("lantk supports only parameterization='ntk'")
    out_chan = check_int(out_chan, "Conv: out_chan")
    filter_shape = _int_tuple(filter_shape, "Conv: filter_shape")
    n_sp = len(filter_shape)
    if strides is None:
        strides = (1,) * n_sp
    else:
        strides = _int_tuple(strides, "Conv: strides")
        if len(strides) != n_sp:
            raise ValueError(f"Conv: strides {strides} has {len(strides)} entries but "
                             f"filter_shape {filter_shape} has {n_sp} (one stride per spatial "
                             f"axis)")
    if not isinstance(padding, str) or padding.upper() not in _PADDINGS:
        raise ValueError(f"Conv: padding must be one of {_PADDINGS}, got {padding!r}")
    padding = padding.upper()
    W_std = _std(W_std, "Conv: W_std")
    b_std = _std(b_std, "Conv: b_std", allow_none=True)
    spec = (f"Conv({out_chan}, {filter_shape}, strides={strides}, padding={padding!r}, "
            f"W_std={_fmt(W_std)}, b_std={_fmt(b_std)})")
    dn = _dimension_numbers(n_sp)
    init_padding = "SAME" if padding == "CIRCULAR" else padding

    def out_spatial(sp):
        return tuple(_conv_out_size(n, f, s, init_padding)
                     for n, f, s in zip(sp, filter_shape, strides))

    def init_fn(rng, input_shape):
        input_shape = _input_shape(input_shape, spec)
        if len(input_shape) != n_sp + 2:
            raise ValueError(f"Conv with a {n_sp}-d filter needs inputs of rank {n_sp + 2}, "
                             f"got input_shape {input_shape}")
        k1, k2 = random.split(rng)
        W = random.normal(k1, filter_shape + (input_shape[-1], out_chan))
        b = None if b_std is None else random.normal(k2, (1,) * (n_sp + 1) + (out_chan,))
        output_shape = (input_shape[0],) + out_spatial(input_shape[1:-1]) + (out_chan,)
        return output_shape, (W, b)

    def apply_fn(params, inputs, **kwargs):
        if jnp.ndim(inputs) != n_sp + 2:
            raise ApplyError(f"{spec} needs inputs of rank {n_sp + 2} (N, "
                              f"{', '.join(['S'] * n_sp)}, C), got shape "
                              f"{tuple(jnp.shape(inputs))}")
        W, b = _affine_params(params, spec, filter_shape + (inputs.shape[-1], out_chan),
                              b_std is not None, out_chan)
        norm = W_std / (inputs.shape[-1] * math.prod(filter_shape)) ** 0.5
        x = inputs
        pad = padding
        if padding == "CIRCULAR":
            widths = [(0, 0)] + [_pads(n, f, s, "SAME") for n, f, s in
                                 zip(inputs.shape[1:-1], filter_shape, strides)] + [(0, 0)]
            x = jnp.pad(x, widths, mode="wrap")
            pad = "VALID"
        out = norm * lax.conv_general_dilated(x, W, strides, pad, dimension_numbers=dn,
                                              precision=_HIGHEST)
        if b is not None:
            out = out + b_std * b
        return out

    def kernel(k: _State) -> _State:
        box = lambda a: _box(a, k.spatial, k.diag, filter_shape, strides, padding)
        out = _affine_state(k, W_std, b_std, fn=box, width=out_chan)
        return out.replace(spatial=out_spatial(k.spatial))

    def shape(s):
        if len(s) != n_sp + 1:
            raise ValueError(f"Conv with a {n_sp}-d filter needs inputs of shape "
                             f"(N, {', '.join(['S'] * n_sp)}, C); got feature shape {s}")
        sp = out_spatial(s[:-1])
        if min(sp) < 1:
            raise ValueError(f"input spatial shape {s[:-1]} is smaller than the filter "
                             f"{filter_shape}")
        return sp + (out_chan,)

    return _make(spec, _Diag(input=_YES, output=_NO), kernel, shape, init_fn, apply_fn)


def _int_tuple(value, name: str) -> tuple:
    """A non-empty tuple of positive integers (a filter shape or strides)."""
    if isinstance(value, str) or not isinstance(value, Sequence) and not isinstance(
            value, np.ndarray):
        raise ValueError(f"{name} must be a tuple of positive integers such as (3, 3), got "
                         f"{value!r}")
    items = tuple(value)
    if not items:
        raise ValueError(f"{name} is empty: give one positive integer per spatial axis")
    try:
        return tuple(check_int(v, name) for v in items)
    except ValueError:
        raise ValueError(f"{name} must be a tuple of positive integers, got {value!r}") from None


def _input_shape(input_shape, spec: str) -> tuple:
    """``init_fn``'s ``input_shape`` as a tuple of ints (``-1`` allowed for the batch)."""
    try:
        shape = tuple(input_shape)
        ok = all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in shape)
    except TypeError:
        ok = False
    if not ok or len(shape) < 1 or any(d < 1 for d in shape[1:]) or shape[0] < -1:
        raise ValueError(f"{spec}: input_shape must be a tuple of integers (N, ..., C) with "
                         f"positive sizes (N may be -1), got {input_shape!r}")
    if len(shape) < 2:
        raise ValueError(f"{spec}: input_shape must have a batch axis and a feature axis, "
                         f"got {shape}")
    return shape


def _dimension_numbers(n_sp: int):
    letters = "".join(c for c in string.ascii_uppercase if c not in "NCIO")[:n_sp]
    return ("N" + letters + "C", letters + "IO", "N" + letters + "C")


def _check_nt_defaults(batch_axis, channel_axis, parameterization):
    if batch_axis != 0 or channel_axis != -1:
        raise NotImplementedError("lantk layers use batch_axis=0 and channel_axis=-1")
    if parameterization != "ntk":
        raise NotImplementedError("lantk supports only parameterization='ntk'")


def _elementwise(spec, fn, kmap):
    """A nonlinearity from its kernel map ``kmap(nngp, outer, ntk, same=None,
    diagonal=False) -> (nngp, ntk)``: ``outer(g)`` is ``g(q1) * g(q2)`` broadcast to the layout
    of ``nngp`` (``q1``, ``q2`` the same-pixel variances of the two inputs), ``same`` marks
    exactly correlated entries, and ``diagonal=True`` maps a variance to itself."""

    check_params = _no_params(spec)

    def init_fn(rng, input_shape):
        return tuple(input_shape), ()

    def apply_fn(params, inputs, **kwargs):
        check_params(params)
        return fn(inputs)

    def kernel(k: _State) -> _State:
        s, d1, d2 = _gaussian_input_variances(k, spec)
        outer = lambda g: _outer12(g(d1), g(d2), s, k.diag)
        nngp, ntk = kmap(k.nngp, outer, k.ntk, same=_same_mask(k.same, k.spatial, k.diag))

        def self_cov(v, d):
            if k.diag or s == 0:
                return kmap(v, None, None, diagonal=True)[0]
            return kmap(v, lambda g: _outer11(g(d), s), None,
                        same=_pixel_eye(k.spatial)[..., None])[0]

        var1 = self_cov(k.var1, d1)
        var2 = None if k.var2 is None else self_cov(k.var2, d2)
        return k.replace(var1=var1, var2=var2, nngp=_materialise(nngp, k.one),
                         ntk=_materialise(ntk, k.one), gaussian=False)

    return _make(spec, _Diag(), kernel, lambda s: s, init_fn, apply_fn)


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


def _sqrt0(x):
    return jnp.sqrt(jnp.maximum(x, 0))


# Cephes' atan: rational approximation on |w| <= 0.66 (double), polynomial on |w| <= tan(pi/8)
# (single). Written with elementwise ops so that XLA vectorises it (jnp.arctan2 on CPU runs at
# ~25 ns per element, which dominated the kernel's cost).
_ATAN_P = (-8.750608600031904122785e-1, -1.615753718733365076637e1, -7.500855792314704667340e1,
           -1.228866684490136173410e2, -6.485021904942025371773e1)
_ATAN_Q = (2.485846490142306297962e1, 1.650270098316988542046e2, 4.328810604912902668951e2,
           4.853903996359136964868e2, 1.945506571482613964425e2)
_ATAN_PF = (8.05374449538e-2, -1.38776856032e-1, 1.99777106478e-1, -3.33329491539e-1)


def _angle(y, x):
    """``arctan2(y, x)`` for ``y >= 0`` (an angle in [0, pi]); 0 at (0, 0).

    Accurate to a few ulp in float32 and float64 (max abs error 3e-7 / 5e-16 on [0, pi]).
    """
    ax = jnp.abs(x)
    lo = jnp.minimum(y, ax)
    hi = jnp.maximum(y, ax)
    # Reduced argument w = tan(reduced angle) with a single division: lo/hi on the first
    # part of [0, 1], (lo - hi)/(lo + hi) (= tan(angle - pi/4)) on the rest.
    if x.dtype == jnp.float32:
        big = lo > 0.41421356237309503 * hi  # tan(pi/8)
    else:
        big = lo > 0.66 * hi
    num = jnp.where(big, lo - hi, lo)
    den = jnp.where(big, lo + hi, hi)
    w = num / jnp.where(den > 0, den, 1)
    w2 = w * w
    if x.dtype == jnp.float32:
        p = (((_ATAN_PF[0] * w2 + _ATAN_PF[1]) * w2 + _ATAN_PF[2]) * w2 + _ATAN_PF[3]) * w2
        a = p * w + w
        a = jnp.where(big, a + np.pi / 4, a)
    else:
        num = (((_ATAN_P[0] * w2 + _ATAN_P[1]) * w2 + _ATAN_P[2]) * w2 + _ATAN_P[3]) * w2 \
            + _ATAN_P[4]
        den = ((((w2 + _ATAN_Q[0]) * w2 + _ATAN_Q[1]) * w2 + _ATAN_Q[2]) * w2
               + _ATAN_Q[3]) * w2 + _ATAN_Q[4]
        a = w * (w2 * num / den) + w
        a = jnp.where(big, a + (np.pi / 4 + 3.061616997868383e-17), a)
    a = jnp.where(y > ax, np.pi / 2 - a, a)
    return jnp.where(x < 0, np.pi - a, a)


def ABRelu(a: float, b: float, do_stabilize: bool = False):
    """``a * min(x, 0) + b * max(x, 0)`` (arc-cosine kernel maps, stable arctan2 form)."""
    a, b = check_real(a, "ABRelu: a"), check_real(b, "ABRelu: b")
    factor = (a - b) ** 2 / (2 * np.pi)
    mean_sq = (a ** 2 + b ** 2) / 2

    def fn(x):
        return a * jnp.minimum(x, 0) + b * jnp.maximum(x, 0)

    def kmap(nngp, outer, ntk, diagonal=False, same=None):
        if diagonal:  # same input, same pixel: correlation 1, angle 0
            return mean_sq * nngp, None
        prod = outer(lambda q: q)
        root = _sqrt0(prod - nngp * nngp)
        if same is not None:  # identical inputs at the same pixel: exactly angle 0
            root = jnp.where(same, 0, root)
        theta = jnp.where((root == 0) & (nngp == 0), np.pi / 2, _angle(root, nngp))
        dot_sigma = mean_sq - factor * theta
        new = factor * root + dot_sigma * nngp
        return new, (None if ntk is None else ntk * dot_sigma)

    return _elementwise(f"ABRelu({a!r}, {b!r})", fn, kmap)


def Relu(do_stabilize: bool = False):
    """ReLU. Kernel: ``(sqrt(q1 q2 - c^2) + (pi - theta) c) / (2 pi)``, NTK factor
    ``(pi - theta) / (2 pi)``, ``theta = arctan2(sqrt(q1 q2 - c^2), c)`` (stable near
    correlation 1; the square root is clamped at 0)."""
    init_fn, apply_fn, kernel_fn = ABRelu(0.0, 1.0)
    layer = dataclasses.replace(kernel_fn.layers[0], spec="Relu()")
    return init_fn, apply_fn, KernelFn([layer], "Relu()")


def LeakyRelu(alpha: float, do_stabilize: bool = False):
    """``alpha * min(x, 0) + max(x, 0)``."""
    alpha = check_real(alpha, "LeakyRelu: alpha")
    init_fn, apply_fn, kernel_fn = ABRelu(alpha, 1.0)
    spec = f"LeakyRelu({float(alpha)!r})"
    return init_fn, apply_fn, KernelFn([dataclasses.replace(kernel_fn.layers[0], spec=spec)],
                                       spec)


def Abs(do_stabilize: bool = False):
    """``|x|``."""
    init_fn, apply_fn, kernel_fn = ABRelu(-1.0, 1.0)
    return init_fn, apply_fn, KernelFn([dataclasses.replace(kernel_fn.layers[0], spec="Abs()")],
                                       "Abs()")


def Erf(a: float = 1.0, b: float = 1.0, c: float = 0.0):
    """``a * erf(b * x) + c`` (closed-form arcsine kernel)."""
    a, b, c = (check_real(v, f"Erf: {n}") for v, n in ((a, "a"), (b, "b"), (c, "c")))
    factor = 2 / np.pi

    def fn(x):
        return a * jax.scipy.special.erf(b * x) + c

    # The pair map needs the two variances separately ((1 + 2 q1)(1 + 2 q2)).
    def init_fn(rng, input_shape):
        return tuple(input_shape), ()

    spec = f"Erf(a={a!r}, b={b!r}, c={c!r})"
    check_params = _no_params(spec)

    def apply_fn(params, inputs, **kwargs):
        check_params(params)
        return fn(inputs)

    def pair_map(nngp, den, ntk):
        nngp = b * b * nngp
        root = _sqrt0(den - 4 * nngp * nngp)
        new = factor * jnp.arctan2(2 * nngp, root)
        if ntk is not None:
            ntk = (b * b) * ntk * (2 * factor / root)
            ntk = a * a * ntk
        return a * a * new + c * c, ntk

    def kernel(k: _State) -> _State:
        s, d1, d2 = _gaussian_input_variances(k, spec)
        e1, e2 = 1 + 2 * b * b * d1, 1 + 2 * b * b * d2
        nngp, ntk = pair_map(k.nngp, _outer12(e1, e2, s, k.diag), k.ntk)

        def self_cov(v, e):
            if k.diag or s == 0:
                vv = b * b * v
                return a * a * factor * jnp.arctan2(vv, jnp.sqrt(vv + 0.25)) + c * c
            return pair_map(v, _outer11(e, s), None)[0]

        var1 = self_cov(k.var1, e1)
        var2 = None if k.var2 is None else self_cov(k.var2, e2)
        return k.replace(var1=var1, var2=var2, nngp=nngp, ntk=ntk, gaussian=False)

    return _make(spec, _Diag(), kernel, lambda s: s, init_fn, apply_fn)


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

    return _make(spec, _Diag(input=_MAYBE, output=_YES), kernel, shape, init_fn, apply_fn)


def Identity():
    """The identity layer."""
    check_params = _no_params("Identity()")

    def apply_fn(params, inputs, **kwargs):
        check_params(params)
        return inputs

    return _make("Identity()", _Diag(), lambda k: k, lambda s: s,
                 lambda rng, input_shape: (tuple(input_shape), ()), apply_fn)


def _split_rng(kwargs: dict, n: int) -> list:
    """Pop ``rng`` from ``kwargs`` and split it into ``n`` keys (``None`` s without one), as
    ``jax.example_libraries.stax.serial``/``parallel`` do, so that e.g. two Dropout layers
    draw independent masks."""
    rng = kwargs.pop("rng", None)
    if rng is None:
        return [None] * n
    return list(random.split(rng, n))


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


# --------------------------------------------------------------------------------------------
# Branching: FanOut, parallel, FanInSum, FanInConcat, repeat
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# Dropout
# --------------------------------------------------------------------------------------------
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
