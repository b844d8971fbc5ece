"""Large kernel matrices, computed tile by tile.

:func:`kernel_matrix` turns a neural-tangents-style ``kernel_fn(x1, x2=None, get=...)``
into the full ``len(x1) x len(x2)`` NTK and/or NNGP matrix without ever asking the kernel
for more than one tile per device at a time:

* tiles of any size (the last row and column of tiles are padded by repeating the last
  input and cropped afterwards, so every tile has one shape and compiles once);
* ``x2=None`` computes only the upper triangle of tiles and mirrors it: the result is
  exactly symmetric;
* before starting, XLA's own memory analysis of the compiled tile program gives the
  device memory it needs; a tile that does not fit is a ``ValueError`` naming a tile size
  that does;
* an optional on-disk cache (``cache_dir``) stores every finished tile atomically with a
  SHA-256 checksum: an interrupted run resumes where it stopped, and a corrupt or truncated
  tile file is recomputed, never used;
* tiles are spread over all local accelerators with ``jax.shard_map`` over a
  :class:`jax.sharding.Mesh`: each step computes one tile per device;
* ``store=`` writes the tiles into a tile store (:mod:`lantk.tiles`: one preallocated file
  per matrix and a checksummed journal per process) that the processes of a multi-host
  run (:func:`jax.distributed.initialize`) fill side by side, each computing its own share.

Example:
    >>> import numpy as np
    >>> import jax.numpy as jnp
    >>> from lantk.kernels import kernel_matrix
    >>> def rbf(x1, x2=None, get="ntk"):
    ...     x2 = x1 if x2 is None else x2
    ...     return jnp.exp(-0.5 * ((x1[:, None] - x2[None]) ** 2).sum(-1))
    >>> x = np.random.default_rng(0).normal(size=(37, 5))
    >>> k = kernel_matrix(rbf, x, tile=8, progress=False)
    >>> k.shape, k.dtype, bool((k == k.T).all())
    ((37, 37), dtype('float64'), True)
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import math
import os
import sys
import time
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

import lantk
from lantk import tiles
from lantk._checks import check_float_dtype, no_progress, pad_rows
from lantk._io import atomic_write as _atomic_write  # fsync, umask, rename, fsync folder
from lantk._x64 import x64

__all__ = ["GETS", "TILE_AXIS", "kernel_matrix"]

log = logging.getLogger(__name__)

GETS = ("nngp", "ntk")
"""The kernels a ``kernel_fn`` can be asked for."""

TILE_AXIS = "tiles"
"""Name of the mesh axis the tiles of one step are spread over (one tile per device)."""

MAX_AUTO_TILE = 1024
"""Largest tile side tried when ``tile=None``."""

AUTO_TILE_ELEMENTS = {"cpu": 2**20, "default": 2**26}
"""With ``tile=None`` the tile side starts at ``sqrt(elements / spatial positions)``: a
convolutional kernel holds one covariance per pair of inputs and spatial position, and on a
CPU a tile whose covariances outgrow the caches runs several times slower per entry
(measured: ``paper_cnn(1)`` on 32x32 images, 2 cores: 77k entries/s with 32x32 tiles, 31k
with 64x64, 8k with 200x200)."""

MEMORY_FRACTION = 0.8
"""Share of a device's free memory that ``max_tile_bytes`` defaults to."""

_CACHE_FORMAT = 1


@x64
def kernel_matrix(
    kernel_fn: Callable[..., Any],
    x1: Any,
    x2: Any = None,
    *,
    get: str | Sequence[str] = "ntk",
    tile: int | None = None,
    dtype: Any = np.float64,
    cache_dir: str | os.PathLike | None = None,
    store: str | os.PathLike | None = None,
    key: str | None = None,
    max_tile_bytes: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = True,
):
    """The kernel matrix ``kernel_fn(x1, x2)``, computed in tiles.

    ``kernel_fn`` follows neural-tangents: ``kernel_fn(x1, x2, get=get)`` returns the
    ``(len(x1), len(x2))`` matrix for ``get='ntk'`` or ``'nngp'``, and for a tuple of them a
    tuple, namedtuple or dict of matrices. It must be traceable by JAX (it is jitted and run
    under :func:`jax.shard_map`).

    Every step computes one tile per device: the mesh spans ``devices`` (all local devices
    by default), the inputs are copied once to every device and each device slices its own
    tile out of them.

    On several processes or hosts (JAX's multi-controller runtime: every process calls
    :func:`jax.distributed.initialize`, then ``kernel_matrix`` with the same arguments and a
    ``store`` on a file system they share), the tiles are dealt round-robin: tile number
    ``t`` (row-major, only the upper triangle for ``x2=None``) is computed by process
    ``t mod jax.process_count()`` on its local devices and written into the store; no tile
    is computed twice. A barrier
    (:func:`jax.experimental.multihost_utils.sync_global_devices`) then waits for every
    process, and each returns the whole matrix, read from the store. A run that was killed
    is resumed by launching it again: each process computes only its tiles that are not in
    the store yet. (Without a ``store`` every process computes the whole matrix itself.)

    Args:
        kernel_fn: ``kernel_fn(x1, x2, get=...)``, e.g. from :mod:`lantk.stax`.
        x1: inputs, shape ``(n1, *features)`` (NumPy or JAX array).
        x2: inputs, shape ``(n2, *features)``, or None for ``x2 = x1``: then only the
            upper triangle of tiles is computed and mirrored, and the result is exactly
            symmetric.
        get: ``'ntk'``, ``'nngp'`` or a tuple of them.
        tile: tile side (rows and columns); any size, it need not divide ``n1`` or ``n2``.
            None picks a tile by :data:`AUTO_TILE_ELEMENTS` (smaller on CPUs), at most
            :data:`MAX_AUTO_TILE`, that fits in ``max_tile_bytes``.
        dtype: ``np.float64`` (default) or ``np.float32``: the inputs are cast to it, the
            kernel is computed in it and the matrices are returned in it. ``kernel_fn`` runs
            with JAX's 64-bit mode on (whatever the global setting; see :mod:`lantk`), so
            float64 needs no ``jax_enable_x64`` of yours.
        cache_dir: folder for the on-disk tile cache, or None for no cache. Tiles live in
            a sub-folder named by a hash of (the lantk source, the kernel, the inputs, dtype,
            get), one ``.npz`` per tile holding its arrays, a SHA-256 of them, the folder's
            key and the tile's position; a tile whose key, position or checksum does not
            match (a file swapped or copied in from another cache) is recomputed with a
            warning, never served. Tiles are written atomically (temporary file in the same
            folder, fsync, :func:`os.replace`) with the permissions of the user's umask.
        store: folder of a tile store (:mod:`lantk.tiles`), or None: one preallocated
            ``.npy`` file per matrix that the tiles are written into in place, an
            append-only journal per process recording each finished tile with a SHA-256 of
            its bytes, and a ``meta.json`` naming the kernel, inputs, dtype, ``get``, shape
            and tile. Meant for large kernels (a 50,000-image kernel is ~10⁶ tiles, and a
            handful of files here) and for several processes (above). A tile counts as done
            only when it is journaled and its bytes still match the checksum, so a tile torn
            by a crash is recomputed; a store made for another kernel, other inputs, dtype or
            ``get``, or with another tile size, is a ``ValueError``. With ``tile=None`` an
            existing store's tile is used. The store is not keyed by the lantk source as the
            ``cache_dir`` folders are: a store made with another lantk source is an error
            too, not a new folder. Cannot be combined with ``cache_dir``.
        key: for a ``kernel_fn`` without a ``.spec`` (a function of your own), the string that
            identifies it for the cache (its definition and hyper-parameters: you are
            responsible for changing it when the function changes). A ``lantk.stax`` kernel
            is identified by its own ``.spec``; a ``key`` that disagrees with it is an error,
            so one architecture can never be served another's tiles.
        max_tile_bytes: per-device memory one step may use. Defaults to
            :data:`MEMORY_FRACTION` of the device's free memory (of the host's available
            memory, shared among the devices, on CPU).
        devices: devices to spread the tiles over (default ``jax.local_devices()``).
        progress: show a tqdm progress bar (entries per second) and the memory estimate.

    Returns:
        A NumPy array of shape ``(n1, n2)`` and type ``dtype`` for a single ``get``; for a
        tuple, a namedtuple of such arrays with fields named as in ``get``. For a network
        with several outputs (one that ends in ``stax.parallel``, e.g. heads at several depths
        of one trunk after ``FanOut``: ``kernel_fn`` returns a list), a list with that result
        for each output, in order (even for one branch): the trunk's layers are
        computed once for all of them. With a
        ``store``, the arrays are read-only :class:`numpy.memmap` views of the store's
        files (nothing of size ``n1 x n2`` is held in memory).

    Raises:
        ValueError: inputs that are not ``(n, *features)`` arrays, ``x1`` and ``x2`` with
            different feature shapes, NaN or infinite inputs, an unknown ``get`` or
            ``dtype``, ``tile < 1``, a tile that does not fit in ``max_tile_bytes`` (the
            message names a tile that does), a cache with no ``key``/``spec`` or a ``key``
            that contradicts ``kernel_fn.spec``, or a kernel that returns NaN or infinite
            entries (which would otherwise be returned and cached); both ``cache_dir`` and
            ``store``, or a ``store`` made for another computation or tile size.
        RuntimeError: with several processes, tiles still missing from the store after the
            barrier (a process failed); running again computes only those.

    Example:
        >>> import numpy as np
        >>> import jax.numpy as jnp
        >>> def linear(x1, x2=None, get=("nngp", "ntk")):
        ...     x2 = x1 if x2 is None else x2
        ...     return {"nngp": x1 @ x2.T, "ntk": 2 * x1 @ x2.T}
        >>> x = np.arange(6.0).reshape(3, 2)
        >>> k = kernel_matrix(linear, x, get=("nngp", "ntk"), tile=2, progress=False)
        >>> k.ntk
        array([[ 2.,  6., 10.],
               [ 6., 26., 46.],
               [10., 46., 82.]])
    """
    if not callable(kernel_fn):
        raise ValueError(f"kernel_fn must be a kernel function kernel_fn(x1, x2, get) (the third "
                         f"element of a stax layer), got {type(kernel_fn).__name__}")
    names, single = _check_get(get)
    dtype = check_float_dtype(dtype)
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, (int, np.integer))
                             or tile < 1):
        raise ValueError(f"tile must be a positive integer (or None to choose one), got {tile!r}")
    tile = None if tile is None else int(tile)
    symmetric = x2 is None
    x1 = _check_inputs(x1, "x1", dtype)
    x2 = x1 if symmetric else _check_inputs(x2, "x2", dtype)
    if x1.shape[1:] != x2.shape[1:]:
        raise ValueError(
            f"x1 and x2 must have the same feature shape: x1 is {x1.shape} (features "
            f"{x1.shape[1:]}), x2 is {x2.shape} (features {x2.shape[1:]})"
        )
    if cache_dir is not None and store is not None:
        raise ValueError("pass cache_dir= (one .npz per tile) or store= (one shared, "
                         "preallocated file per matrix), not both")
    cache = spec = None
    if cache_dir is not None or store is not None:
        own = getattr(kernel_fn, "spec", None)
        if key is not None and own is not None and key != own:
            raise ValueError(
                "key= contradicts kernel_fn.spec: a lantk.stax kernel is identified by its own "
                "spec, so its tiles can never be confused with another architecture's; drop key= "
                f"(kernel_fn.spec = {str(own)[:80]!r}..., key = {str(key)[:80]!r})")
        spec = key if key is not None else own
        if spec is None:
            raise ValueError(
                f"{'cache_dir' if store is None else 'store'} needs a way to identify the "
                "kernel: pass key='...' (a string naming the architecture and its "
                "hyper-parameters) or use a kernel_fn with a .spec attribute (as lantk.stax "
                "kernels have)"
            )
        if not isinstance(spec, str):
            raise TypeError(f"the cache key must be a string, got {type(spec).__name__}")

    n1, n2 = len(x1), len(x2)
    branches = output_count(kernel_fn, x1.shape[1:])
    held = names if branches is None else tuple(
        f"{name}.{b}" for b in range(branches) for name in names)
    if cache_dir is not None:
        cache = _TileCache(Path(cache_dir), spec, x1, None if symmetric else x2, dtype, held)
    outputs = {name: np.empty((n1, n2), dtype) for name in held}  # allocated lazily
    if n1 and n2:
        devices = jax.local_devices() if devices is None else list(devices)
        budget = _default_budget(devices) if max_tile_bytes is None else max_tile_bytes
        job = _Job(kernel_fn, get, held, x1, None if symmetric else x2, dtype, devices, budget,
                   branches=branches)
        if store is None:
            _fill(outputs, job, tile, cache, progress)
        else:
            outputs = _fill_store(Path(store), spec, job, tile, progress)

    def result(suffix=""):
        if single:
            return outputs[names[0] + suffix]
        return collections.namedtuple("Kernels", names)(
            **{name: outputs[name + suffix] for name in names})

    if branches is None:
        return result()
    return [result(f".{b}") for b in range(branches)]


# ---------------------------------------------------------------------------------------
# validation


def _check_get(get) -> tuple[tuple[str, ...], bool]:
    """The requested kernel names, and whether a single matrix (not a tuple) is returned."""
    single = isinstance(get, str)
    names = (get,) if single else tuple(get) if isinstance(get, (tuple, list)) else None
    if not names or len(set(names)) != len(names) or any(n not in GETS for n in names):
        raise ValueError(
            f"unknown get={get!r}: expected 'nngp', 'ntk' or a tuple of them "
            "(each at most once)"
        )
    return names, single


def _check_inputs(x, name: str, dtype: np.dtype) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (n, *features), got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool) or np.iscomplexobj(x):
        raise ValueError(f"{name} must be a real numeric array, got dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=dtype)
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(x), -1).any(axis=1))
        raise ValueError(
            f"{name} contains {int(bad.sum())} NaN or infinite values "
            f"(in {len(rows)} rows, the first being row {rows[0]})"
        )
    return x


# ---------------------------------------------------------------------------------------
# the tile program


def output_count(kernel_fn, feature_shape) -> int | None:
    """The number of parallel outputs of a ``lantk.stax`` kernel on inputs of
    ``feature_shape`` (a network that ends in ``stax.parallel``, e.g. after ``FanOut``: its
    ``kernel_fn`` returns a list with one result per branch, and :func:`kernel_matrix` a list
    of matrices), read from its output shape without tracing it; ``None`` for one output or a
    kernel function of another kind."""
    shape_of = getattr(kernel_fn, "output_shape", None)
    if not callable(shape_of):
        return None
    try:
        shape = shape_of(tuple(feature_shape))
    except (ValueError, TypeError):  # the tile program reports a failing kernel_fn itself
        return None
    return len(shape) if isinstance(shape, list) else None


def _components(out, names: tuple[str, ...], single: bool) -> tuple:
    """kernel_fn's result as a tuple of matrices in the order of ``names``."""
    if single and not isinstance(out, (Mapping, tuple, list)):
        return (out,)
    if isinstance(out, Mapping):
        return tuple(out[n] for n in names)
    if all(hasattr(out, n) for n in names):  # namedtuple, neural-tangents' Kernel
        return tuple(getattr(out, n) for n in names)
    if isinstance(out, (tuple, list)) and len(out) == len(names):
        return tuple(out)
    raise TypeError(
        f"kernel_fn(..., get={names[0] if single else names!r}) returned "
        f"{type(out).__name__}; expected an array, or a tuple/namedtuple/dict of arrays"
    )


class _MemoryEstimate(NamedTuple):
    """What :func:`kernel_matrix` expects to need, worked out before it starts (and logged).

    Attributes:
        tile_shape: rows and columns of one tile.
        device_bytes: memory per device for one step: the inputs (kept on every device),
            the working memory of one tile and the outputs of two steps in flight.
        input_bytes: the part of ``device_bytes`` taken by the inputs.
        budget_bytes: the per-device limit it was checked against (``max_tile_bytes``).
        output_bytes: host memory of the returned matrices.
        n_devices: devices the tiles are spread over.
        from_compiler: True when ``device_bytes`` comes from XLA's memory analysis of the
            compiled tile program, False when from the fallback rule of thumb.
    """

    tile_shape: tuple[int, int]
    device_bytes: int
    input_bytes: int
    budget_bytes: int | None
    output_bytes: int
    n_devices: int
    from_compiler: bool


class _Compiled(NamedTuple):
    run: Callable  # run(offsets, x1[, x2]) -> tuple of (n_devices, rows, cols) arrays
    estimate: _MemoryEstimate


_COMPILED: collections.OrderedDict = collections.OrderedDict()
_COMPILED_KEEP = 16


class _Job:
    """The fixed parts of one :func:`kernel_matrix` call: kernel, inputs, dtype and mesh."""

    def __init__(self, kernel_fn, get, names, x1, x2, dtype, devices, budget, branches=None):
        self.kernel_fn, self.get, self.names = kernel_fn, get, names
        self.branches = branches  # parallel outputs: names holds every branch's matrices
        self.x1, self.x2, self.symmetric = x1, x2, x2 is None
        self.n1, self.n2 = len(x1), len(x1 if x2 is None else x2)
        self.dtype, self.budget = dtype, budget
        self.mesh = Mesh(np.array(devices), (TILE_AXIS,))
        self.n_devices = len(devices)
        self.output_bytes = self.n1 * self.n2 * dtype.itemsize * len(names)

    def auto_side(self) -> int:
        """The starting tile side for ``tile=None`` (see :data:`AUTO_TILE_ELEMENTS`)."""
        feats = self.x1.shape[1:]
        positions = math.prod(feats[:-1]) if len(feats) > 1 else 1
        platform = self.mesh.devices.flat[0].platform
        elements = AUTO_TILE_ELEMENTS.get(platform, AUTO_TILE_ELEMENTS["default"])
        return max(16, min(MAX_AUTO_TILE, math.isqrt(elements // positions)))

    def tile_shape(self, side: int) -> tuple[int, int]:
        if self.symmetric:
            return side, side
        return min(side, self.n1), min(side, self.n2)

    def padded_shapes(self, tr: int, tc: int) -> list[tuple[int, ...]]:
        """Shapes of the inputs padded to whole tiles: the arguments after ``offsets``."""
        feats = self.x1.shape[1:]
        shapes = [(_bucket(self.n1, tr), *feats)]
        return shapes if self.symmetric else shapes + [(_bucket(self.n2, tc), *feats)]

    def padded(self, tr: int, tc: int) -> list[np.ndarray]:
        return [pad_rows(x, shape[0])
                for x, shape in zip((self.x1, self.x2), self.padded_shapes(tr, tc))]

    def compile(self, side: int) -> _Compiled:
        """jit(shard_map(...)) for tiles of ``side``: each device slices its own tile out of
        the inputs (kept whole on every device) and computes it.

        Compiled programs are kept (a few, most recent first) for later calls with the same
        kernel, shapes, dtype and devices: the train/validation/test blocks of tasks of one
        size then compile once, not once per call."""
        key = (id(self.kernel_fn), repr(self.get), self.names, self.branches, self.symmetric,
               tuple(self.padded_shapes(*self.tile_shape(side))), str(self.dtype), side,
               tuple(str(d) for d in self.mesh.devices.flat))
        hit = _COMPILED.get(key)
        if hit is not None and hit[0] is self.kernel_fn:
            _COMPILED.move_to_end(key)
            # the budget (free memory) changes between calls; plan() checks it again
            return hit[1]._replace(estimate=hit[1].estimate._replace(
                budget_bytes=self.budget, output_bytes=self.output_bytes))
        compiled = self._compile(side)
        _COMPILED[key] = (self.kernel_fn, compiled)   # holding kernel_fn keeps its id unique
        while len(_COMPILED) > _COMPILED_KEEP:
            _COMPILED.popitem(last=False)
        return compiled

    def _compile(self, side: int) -> _Compiled:
        tr, tc = self.tile_shape(side)
        names, single = self.names, isinstance(self.get, str)
        asked = _check_get(self.get)[0]

        def one_tile(offsets, x1, *x2):  # offsets: this device's (1, 2) tile corner
            a = jax.lax.dynamic_slice_in_dim(x1, offsets[0, 0], tr, axis=0)
            b = jax.lax.dynamic_slice_in_dim(x2[0] if x2 else x1, offsets[0, 1], tc, axis=0)
            out = self.kernel_fn(a, b, get=self.get)
            if self.branches is None:
                out = _components(out, names, single)
            else:   # one result per branch, each with the matrices of ``get``
                if not isinstance(out, list) or len(out) != self.branches:
                    raise TypeError(f"kernel_fn's network has {self.branches} outputs, but it "
                                    f"returned {type(out).__name__} (expected a list of "
                                    f"{self.branches})")
                out = tuple(k for o in out for k in _components(o, asked, single))
            for name, k in zip(names, out):
                if jnp.shape(k) != (tr, tc):
                    raise ValueError(
                        f"kernel_fn returned a {name} block of shape {jnp.shape(k)} for a "
                        f"{tr}x{tc} tile; expected ({tr}, {tc})"
                    )
            return tuple(jnp.asarray(k, self.dtype)[None] for k in out)

        inputs = [jax.ShapeDtypeStruct(shape, self.dtype, sharding=self.replicated)
                  for shape in self.padded_shapes(tr, tc)]
        offsets = jax.ShapeDtypeStruct((self.n_devices, 2), np.int32, sharding=self.by_tile)
        program = jax.jit(jax.shard_map(
            one_tile, mesh=self.mesh, in_specs=(P(TILE_AXIS),) + (P(),) * len(inputs),
            out_specs=P(TILE_AXIS), check_vma=False))
        compiled = program.lower(offsets, *inputs).compile()

        input_bytes = sum(math.prod(x.shape) for x in inputs) * self.dtype.itemsize
        try:
            mem = compiled.memory_analysis()
            device_bytes = (mem.argument_size_in_bytes + mem.temp_size_in_bytes
                            + 2 * mem.output_size_in_bytes - mem.alias_size_in_bytes)
        except (NotImplementedError, RuntimeError, AttributeError):  # not every backend has it
            device_bytes = 0
        from_compiler = device_bytes > 0
        if not from_compiler:
            # rule of thumb: a few covariance-sized temporaries per pair of inputs, where a
            # pair's covariance has one entry per spatial position (channels are summed)
            features = self.x1.shape[1:]
            per_pair = math.prod(features[:-1]) if len(features) > 1 else 1
            device_bytes = input_bytes + tr * tc * self.dtype.itemsize * (
                8 * per_pair + 2 * len(names))
        return _Compiled(compiled, _MemoryEstimate(
            (tr, tc), int(device_bytes), int(input_bytes), self.budget, self.output_bytes,
            self.n_devices, from_compiler))

    @property
    def by_tile(self):
        return NamedSharding(self.mesh, P(TILE_AXIS))

    @property
    def replicated(self):
        return NamedSharding(self.mesh, P())

    def plan(self, tile: int | None) -> _Compiled:
        """Compile for ``tile`` (for tile=None, the largest tile that fits) and check memory.

        Beyond the inputs' fixed share, device memory grows about as tile², which gives the
        next tile to try; a few compilations settle it.
        """
        budget = self.budget
        side = min(self.auto_side() if tile is None else tile, max(self.n1, self.n2))
        compiled = self.compile(side)
        first = est = compiled.estimate
        if budget is None or est.device_bytes <= budget:
            return compiled
        if est.input_bytes >= budget:
            raise ValueError(
                f"the inputs alone need {_fmt_bytes(est.input_bytes)} on every device, more "
                f"than max_tile_bytes={_fmt_bytes(budget)}: pass fewer inputs per call (split "
                "x1) or a larger max_tile_bytes"
            )
        fits = None
        for _ in range(6):
            ratio = (budget - est.input_bytes) / max(est.device_bytes - est.input_bytes, 1)
            side = max(1, min(side - 1, int(side * math.sqrt(ratio) * 0.95)))
            compiled = self.compile(side)
            est = compiled.estimate
            if est.device_bytes <= budget:
                fits = compiled
                break
            if side == 1:
                break
        if tile is None and fits is not None:
            return fits
        hint = (f"use tile={side} or less" if fits is not None else
                "even a 1x1 tile does not fit" if side == 1 else
                f"try tile={side // 2} or less")
        rows, cols = first.tile_shape
        raise ValueError(
            f"a {rows}x{cols} tile needs about {_fmt_bytes(first.device_bytes)} per device, "
            f"more than max_tile_bytes={_fmt_bytes(budget)}: {hint}"
        )

    def run(self, compiled: _Compiled, corners: list, on_step: Callable) -> None:
        """Compute the tiles at ``corners``, one per device and step; ``on_step(corners,
        results)`` gets each step's results (numpy, padded tiles) in order."""
        tr, tc = compiled.estimate.tile_shape
        xs = [jax.device_put(x, self.replicated) for x in self.padded(tr, tc)]
        d = self.n_devices

        def finish(step, result):
            on_step(step, [np.asarray(r) for r in result])

        in_flight: collections.deque = collections.deque()
        try:
            for s in range(0, len(corners), d):
                step = corners[s:s + d]
                offsets = np.array(step + [step[-1]] * (d - len(step)), np.int32)
                # dispatch is asynchronous: this step runs while the last one is copied back
                in_flight.append((step, compiled.run(jax.device_put(offsets, self.by_tile),
                                                     *xs)))
                if len(in_flight) > 1:
                    finish(*in_flight.popleft())
            while in_flight:
                finish(*in_flight.popleft())
        except Exception:
            # keep (and cache) what finished before the failure, then re-raise it
            while in_flight:
                try:
                    finish(*in_flight.popleft())
                except Exception:  # noqa: BLE001 -- the first failure is the one re-raised
                    break
            raise


# ---------------------------------------------------------------------------------------
# memory


_host_available_bytes = tiles.host_available_bytes  # MemAvailable, else free pages


def _default_budget(devices) -> int | None:
    """MEMORY_FRACTION of the smallest free memory among the devices."""
    free = []
    for dev in devices:
        try:
            stats = dev.memory_stats()
        except (NotImplementedError, RuntimeError):
            stats = None
        if stats and "bytes_limit" in stats:
            free.append(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
        else:  # CPU: the host's memory, shared by every CPU device
            host = _host_available_bytes()
            if host is None:
                return None
            free.append(host // sum(d.platform == "cpu" for d in devices))
    return int(MEMORY_FRACTION * min(free))


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


# ---------------------------------------------------------------------------------------
# the loop


def _fill(outputs: dict, job: _Job, tile: int | None, cache, progress: bool) -> None:
    n1, n2, names, symmetric = job.n1, job.n2, job.names, job.symmetric
    host = _host_available_bytes()
    if host is not None and job.output_bytes > host:
        raise ValueError(f"the result needs {_fmt_bytes(job.output_bytes)} of host memory but "
                         f"only {_fmt_bytes(host)} is available: split x1 or x2")
    # with a tile given, the cache is read before compiling: a finished matrix needs no
    # compilation at all
    compiled = job.plan(None) if tile is None else None
    tr, tc = compiled.estimate.tile_shape if compiled else job.tile_shape(
        min(tile, max(n1, n2)))
    corners = [(i, j) for i in range(0, n1, tr) for j in range(0, n2, tc)
               if not symmetric or j >= i]

    def place(i, j, blocks: dict) -> int:
        for name, block in blocks.items():
            out = outputs[name]
            out[i:i + block.shape[0], j:j + block.shape[1]] = block
            if symmetric and i != j:
                out[j:j + block.shape[1], i:i + block.shape[0]] = block.T
        return block.size * (2 if symmetric and i != j else 1)

    done, missing = 0, []
    for i, j in corners:
        blocks = cache.load(i, j, min(tr, n1 - i), min(tc, n2 - j)) if cache else None
        if blocks is None:
            missing.append((i, j))
        else:
            done += place(i, j, blocks)
    if missing and compiled is None:
        compiled = job.plan(tile)

    summary = (f"kernel_matrix: {n1}x{n2} {'/'.join(names)} in {job.dtype.name}, "
               f"{len(corners)} tiles of {tr}x{tc} ({len(corners) - len(missing)} cached)")
    if compiled:
        est = compiled.estimate
        summary += (
            f" on {job.n_devices} {job.mesh.devices.flat[0].platform} device(s); memory per "
            f"device ~{_fmt_bytes(est.device_bytes)}"
            f"{'' if est.from_compiler else ' (rule of thumb)'} of "
            f"{_fmt_bytes(est.budget_bytes) if est.budget_bytes else 'unknown'}, result "
            f"{_fmt_bytes(est.output_bytes)}")
    log.info(summary)
    if not no_progress(progress):
        tqdm.write(summary, file=sys.stderr)
    if not missing:
        return

    with tqdm(total=n1 * n2, initial=done, unit=" entries", unit_scale=True,
              disable=no_progress(progress), desc=f"kernel {'/'.join(names)}", file=sys.stderr) as bar:

        def on_step(step, results):
            for k, (i, j) in enumerate(step):
                blocks = _tile_blocks(job, results, k, i, j, tr, tc)
                if cache:
                    cache.save(i, j, blocks)
                bar.update(place(i, j, blocks))

        job.run(compiled, missing, on_step)


def _tile_blocks(job: _Job, results, k: int, i: int, j: int, tr: int, tc: int) -> dict:
    """The ``k``-th tile of a step's ``results``, cropped to the matrix, made exactly
    symmetric on the diagonal, and checked to be finite."""
    blocks = {name: r[k, :min(tr, job.n1 - i), :min(tc, job.n2 - j)]
              for name, r in zip(job.names, results)}
    if job.symmetric and i == j:  # exactly symmetric: mirror the upper triangle
        blocks = {n: np.triu(b) + np.triu(b, 1).T for n, b in blocks.items()}
    for n, b in blocks.items():
        if not np.all(np.isfinite(b)):
            bad = int(np.size(b) - np.count_nonzero(np.isfinite(b)))
            raise ValueError(
                f"the kernel returned {bad} NaN or infinite {n} entries in the tile "
                f"at rows {i}-{i + b.shape[0]}, columns {j}-{j + b.shape[1]} (inputs "
                f"too large or too small for {np.dtype(b.dtype).name}? rescale them); "
                f"nothing was cached for it")
    return blocks


def _fill_store(folder: Path, spec: str, job: _Job, tile: int | None, progress: bool) -> dict:
    """Compute this process's share of the tiles into the tile store in ``folder`` (see
    :mod:`lantk.tiles`), wait for the other processes, and return the store's matrices as
    read-only memory maps.

    Tile number ``t`` (row-major over the upper triangle when symmetric) belongs to process
    ``t mod jax.process_count()``; a process computes only those of its tiles that are not
    already in the store (journaled with a matching checksum).
    """
    n1, n2, names, symmetric = job.n1, job.n2, job.names, job.symmetric
    count, index = jax.process_count(), jax.process_index()
    header, key = _identity(spec, job.x1, job.x2, job.dtype, names)
    header = dict(header, inputs_sha256=key)
    compiled = None
    meta = tiles.read_meta(folder)
    if meta is not None and "tile" in meta:
        shape = tuple(meta["tile"])
    elif tile is None:
        compiled = job.plan(None)
        shape = compiled.estimate.tile_shape
    else:
        shape = job.tile_shape(min(tile, max(n1, n2)))
    store = tiles.TileStore.open(folder, header, (n1, n2), shape, job.dtype, names,
                                 symmetric=symmetric, process_index=index)
    tr, tc = store.tile_shape  # another process may have created the store first
    if tile is not None and job.tile_shape(min(tile, max(n1, n2))) != (tr, tc):
        store.close()
        raise ValueError(
            f"the tile store {folder} holds {tr}x{tc} tiles, but tile={tile} asks for "
            f"{'x'.join(map(str, job.tile_shape(min(tile, max(n1, n2)))))}: pass "
            f"tile={max(tr, tc)} (or tile=None) to resume it, or use another folder")
    every = store.tiles()
    mine = [t for k, t in enumerate(every) if tiles.owner(k, count) == index]
    try:
        stored = store.valid(mine)
        missing = [t for t in mine if t not in stored]
        if missing and (compiled is None or compiled.estimate.tile_shape != (tr, tc)):
            compiled = job.plan(max(tr, tc))
        summary = (f"kernel_matrix: {n1}x{n2} {'/'.join(names)} in {job.dtype.name} into the "
                   f"tile store {folder}: {len(every)} tiles of {tr}x{tc}, {len(mine)} for "
                   f"process {index} of {count} ({len(mine) - len(missing)} already stored)")
        log.info(summary)
        if not no_progress(progress):
            tqdm.write(summary, file=sys.stderr)
        if missing:
            with tqdm(total=sum(t[2] * t[3] for t in missing), unit=" entries",
                      unit_scale=True, disable=no_progress(progress), file=sys.stderr,
                      desc=f"kernel {'/'.join(names)} (process {index})") as bar:

                def on_step(step, results):
                    for k, (i, j) in enumerate(step):
                        blocks = _tile_blocks(job, results, k, i, j, tr, tc)
                        store.write(i, j, blocks)
                        bar.update(next(iter(blocks.values())).size)
                    store.commit_if_due()

                job.run(compiled, [(t[0], t[1]) for t in missing], on_step)
    finally:
        store.close()  # journals what was written, also when a tile failed

    if count > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"lantk.kernel_matrix {key[:16]}")
    _wait_for_tiles(store, every, count)
    return store.arrays()


STORE_WAIT_SECONDS = 60.0
"""After the barrier, how long :func:`kernel_matrix` waits for the other processes' journal
lines to become visible (a shared file system may show them late) before it gives up."""


def _wait_for_tiles(store, every: list, count: int) -> None:
    deadline = time.monotonic() + STORE_WAIT_SECONDS
    while True:
        done = store.journal()
        absent = [k for k, t in enumerate(every) if t not in done]
        if not absent or count == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if absent:
        owners = sorted({tiles.owner(k, count) for k in absent})
        i, j, rows, cols = every[absent[0]]
        raise RuntimeError(
            f"the tile store {store.folder} is missing {len(absent)} of {len(every)} tiles "
            f"after every process finished (the first at rows {i}-{i + rows}, columns "
            f"{j}-{j + cols}; they belong to process(es) {owners}): did one of them fail? "
            "Run again to compute only the missing tiles")


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _bucket(n: int, tile: int) -> int:
    """Rows of an input padded to whole tiles, the number of tiles rounded up to a power of
    two: calls whose sizes fall in one bucket share a compiled program (the padding rows are
    never computed on, they only fill the array)."""
    tiles = _ceil(n, tile)
    return tile * (1 << (tiles - 1).bit_length())


# ---------------------------------------------------------------------------------------
# the cache


def _source_hash() -> str:
    """The hash of lantk's source files: a change to any layer's maps invalidates the tiles
    even when the version number stays the same."""
    from lantk.book.records import lantk_source_hash

    return lantk_source_hash()


def _identity(spec: str, x1, x2, dtype, names) -> tuple[dict, str]:
    """What identifies one computation for the cache and the store: a header (lantk version
    and source, the kernel's spec, get, dtype, input shapes) and a SHA-256 of it and of the
    inputs' bytes."""
    header = {
        "format": _CACHE_FORMAT,
        "lantk": lantk.__version__,
        "lantk_source": _source_hash(),
        "kernel": spec,
        "get": sorted(names),
        "dtype": dtype.name,
        "x1": list(x1.shape),
        "x2": None if x2 is None else list(x2.shape),
    }
    h = hashlib.sha256()
    h.update(json.dumps(header, sort_keys=True).encode())
    h.update(x1.tobytes())
    if x2 is not None:
        h.update(x2.tobytes())
    return header, h.hexdigest()


class _TileCache:
    """One folder per (kernel, inputs, dtype, get); one checksummed ``.npz`` per tile."""

    def __init__(self, root: Path, spec: str, x1, x2, dtype, names):
        header, self.key = _identity(spec, x1, x2, dtype, names)
        self.dir = root.expanduser() / self.key[:32]
        self.dir.mkdir(parents=True, exist_ok=True)
        self.names, self.dtype = names, dtype
        meta = self.dir / "meta.json"
        if not meta.exists():
            _atomic_write(meta, json.dumps(header, indent=1))

    def _path(self, i, j, rows, cols) -> Path:
        return self.dir / f"r{i}-{i + rows}_c{j}-{j + cols}.npz"

    @staticmethod
    def _checksum(blocks: dict) -> str:
        h = hashlib.sha256()
        for name, b in sorted(blocks.items()):
            h.update(f"{name}:{b.dtype.str}:{b.shape}".encode())
            h.update(np.ascontiguousarray(b).tobytes())
        return h.hexdigest()

    def load(self, i, j, rows, cols) -> dict[str, np.ndarray] | None:
        path = self._path(i, j, rows, cols)
        if not path.exists():
            return None
        try:
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:
                blocks = {name: f[name] for name in self.names}
                stored = str(f["sha256"])
                key = str(f["key"]) if "key" in f.files else None
                where = f["position"].tolist() if "position" in f.files else None
            problem = next((f"{n} has shape {b.shape} and dtype {b.dtype}"
                            for n, b in blocks.items()
                            if b.shape != (rows, cols) or b.dtype != self.dtype), None)
            if problem is None and key != self.key:
                problem = "it belongs to another kernel, inputs or lantk source"
            if problem is None and where != [i, j, rows, cols]:
                problem = f"it holds the tile at {where}, not at {[i, j, rows, cols]}"
            if problem is None and stored != self._checksum(blocks):
                problem = "checksum mismatch"
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            problem = f"unreadable: {type(e).__name__}: {e}"
        if problem:
            warnings.warn(f"cached tile {path} cannot be used ({problem}); recomputing it",
                          RuntimeWarning, stacklevel=2)
            return None
        return blocks

    def save(self, i, j, blocks: dict) -> None:
        rows, cols = next(iter(blocks.values())).shape
        arrays = dict(blocks, sha256=np.array(self._checksum(blocks)), key=np.array(self.key),
                      position=np.array([i, j, rows, cols]))
        _atomic_write(self._path(i, j, rows, cols), lambda f: np.savez(f, **arrays))
