"""A tile store on disk for kernel matrices computed by one or many processes.

:func:`lantk.kernels.kernel_matrix` with ``store=FOLDER`` writes its tiles here instead of
one ``.npz`` per tile (the ``cache_dir`` cache), so that a 50,000-image kernel (about 10⁶
tiles) is a handful of files that several processes fill side by side:

* ``meta.json``: what the store holds (the kernel's spec, the lantk source, a hash of the
  inputs, ``get``, dtype, shape and tile shape). Opening a store made for anything else is a
  :class:`ValueError` naming the field that differs.
* ``<get>.npy`` (``ntk.npy``, ``nngp.npy``): one preallocated ``.npy`` file per matrix, the
  whole ``n1 x n2`` matrix (read back with :func:`numpy.load` ``(mmap_mode='r')``). Each
  tile, and for a symmetric matrix its mirror image below the diagonal, is written in place
  into its own disjoint region with :func:`os.pwrite` (plain writes, not a writable memory
  map, so that processes on different hosts of a network file system never write back each
  other's pages).
* ``journal.p<k>.jsonl``: one append-only journal per process ``k``, a line per finished
  tile with the SHA-256 of its bytes. A line is appended only after the tile's data are
  fsynced, and a tile counts as done only while its journal line exists *and* its checksum
  matches the bytes in the ``.npy`` file: a tile torn by a crash, never finished, or
  altered afterwards is recomputed, never served.

Files are created once and atomically (written under a temporary name, then hard-linked
into place with :func:`os.link`, which fails rather than replace a file another process
created first), so processes that open the store at the same time agree on one version.
Hard links are supported by every POSIX file system used for this (ext4, XFS, NFS, Lustre,
GPFS).

Standard library and NumPy only (no JAX): :mod:`lantk.regression` reads the host's memory
from here too.

Example:
    >>> import tempfile
    >>> import numpy as np
    >>> folder = tempfile.mkdtemp()
    >>> store = TileStore.open(folder, {"kernel": "demo"}, (3, 3), (2, 2), np.float64,
    ...                        ("ntk",), symmetric=True)
    >>> block = np.array([[2.0, 1.0], [1.0, 2.0]])
    >>> store.write(0, 0, {"ntk": block}); store.write(0, 2, {"ntk": np.array([[5.0], [6.0]])})
    >>> store.write(2, 2, {"ntk": np.array([[9.0]])})
    >>> store.commit()  # fsync the array, then journal the three tiles
    3
    >>> store.arrays()["ntk"].tolist()
    [[2.0, 1.0, 5.0], [1.0, 2.0, 6.0], [5.0, 6.0, 9.0]]
    >>> sorted(store.valid([(0, 0, 2, 2), (0, 2, 2, 1), (2, 2, 1, 1)]))
    [(0, 0, 2, 2), (0, 2, 2, 1), (2, 2, 1, 1)]
    >>> store.close()
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from lantk._io import _fsync_dir, umask

__all__ = ["STORE_FORMAT", "TileStore", "host_available_bytes"]

STORE_FORMAT = "lantk-tile-store/1"
"""Format tag written into ``meta.json``."""

COMMIT_SECONDS = 5.0
"""Finished tiles are fsynced and journaled at least this often (and at the end of a run):
a killed run loses at most this much work."""

Tile = tuple[int, int, int, int]  # (first row, first column, rows, columns)


def host_available_bytes() -> int | None:
    """The host memory available to a new allocation (``MemAvailable`` of /proc/meminfo,
    else ``os.sysconf``'s free pages), or None when neither can be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _create_once(path: Path, write) -> bool:
    """Create ``path`` atomically unless it exists: ``write(tmp_path)`` fills a temporary
    file in the same folder, which is then hard-linked to ``path``. Returns whether this
    call created it (False: another process was first, and its file is kept)."""
    if path.exists():
        return False
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~umask())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        Path(tmp).unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return True


def read_meta(folder) -> dict | None:
    """The ``meta.json`` of the store in ``folder``, or None when there is none yet."""
    path = Path(folder).expanduser() / "meta.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ValueError(f"the tile store's {path} is unreadable ({type(e).__name__}: {e}); "
                         "it is not a lantk tile store, or was damaged: use another folder"
                         ) from None


class TileStore:
    """The files of one store (see the module docstring); use :meth:`open` to make one.

    Attributes:
        folder: the store's folder.
        shape: ``(n1, n2)`` of every matrix.
        tile_shape: ``(rows, cols)`` of a full tile (the last row/column of tiles is cut).
        symmetric: whether the matrices are symmetric: only tiles on or above the diagonal
            are computed, and each is also written mirrored below it.
        names: the matrices held (``get``), one ``.npy`` file each.
        process_index: the process whose journal this object appends to.
    """

    def __init__(self, folder: Path, meta: dict, process_index: int):
        self.folder, self.meta = folder, meta
        self.shape = tuple(meta["shape"])
        self.tile_shape = tuple(meta["tile"])
        self.symmetric = bool(meta["symmetric"])
        self.names = tuple(meta["names"])
        self.dtype = np.dtype(meta["dtype"])
        self.process_index = process_index
        self._fds: dict[str, int] = {}
        self._offsets: dict[str, int] = {}
        for name in self.names:
            path = self._array_path(name)
            arr = np.load(path, mmap_mode="r")
            if arr.shape != self.shape or arr.dtype != self.dtype:
                raise ValueError(
                    f"{path} holds a {arr.shape} {arr.dtype} array, but the store's meta.json "
                    f"says {self.shape} {self.dtype.name}: the store is damaged; use another "
                    "folder")
            self._offsets[name] = int(arr.offset)
            del arr
        self._pending: list[tuple[Tile, str]] = []
        self._last_commit = time.monotonic()

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, folder, header: Mapping, shape: Sequence[int], tile_shape: Sequence[int],
             dtype, names: Sequence[str], *, symmetric: bool, process_index: int = 0
             ) -> TileStore:
        """Open the store in ``folder``, creating it (its meta.json and preallocated arrays)
        when it does not exist yet.

        Args:
            folder: the store's folder (created if missing).
            header: what identifies the computation (kernel spec, inputs hash, lantk source,
                ...): JSON-serialisable, compared field by field with an existing store.
            shape: ``(n1, n2)`` of each matrix.
            tile_shape: ``(rows, cols)`` of a tile. An existing store keeps its own: compare
                :attr:`tile_shape` with what you asked for.
            dtype: float32 or float64.
            names: the matrices (``get``), e.g. ``("ntk",)``.
            symmetric: whether the matrices are symmetric (upper tiles only, mirrored).
            process_index: whose journal this object appends to (``jax.process_index()``).

        Raises:
            ValueError: the folder holds a store made for another computation (the message
                names the field that differs), or a damaged one.
        """
        folder = Path(folder).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        dtype = np.dtype(dtype)
        ours = dict(header, format=STORE_FORMAT, shape=[int(s) for s in shape],
                    dtype=dtype.name, names=sorted(names), symmetric=bool(symmetric),
                    tile=[int(t) for t in tile_shape])
        text = json.dumps(ours, indent=1, sort_keys=True)
        _create_once(folder / "meta.json", lambda tmp: Path(tmp).write_text(text))
        meta = read_meta(folder)
        first = ("format", "kernel", "get", "dtype", "x1", "x2", "shape", "names", "symmetric")
        fields = [f for f in first if f in ours or f in meta]
        fields += sorted((set(ours) | set(meta)) - set(first) - {"tile", "inputs_sha256"})
        for field in fields + ["inputs_sha256"]:
            if meta.get(field) != ours.get(field):
                what = " (a hash of the inputs x1, x2)" if field == "inputs_sha256" else ""
                raise ValueError(
                    f"the tile store {folder} was made for another computation: its {field}"
                    f"{what} is {str(meta.get(field))[:100]!r}, this call's is "
                    f"{str(ours.get(field))[:100]!r}; use another folder (or delete this one)")
        for name in names:
            _create_once(folder / f"{name}.npy",
                         lambda tmp: np.lib.format.open_memmap(
                             tmp, mode="w+", dtype=dtype, shape=tuple(shape)).flush())
        return cls(folder, meta, process_index)

    def _array_path(self, name: str) -> Path:
        return self.folder / f"{name}.npy"

    def _journal_path(self, index: int) -> Path:
        return self.folder / f"journal.p{index}.jsonl"

    # ------------------------------------------------------------------ tiles

    def tiles(self) -> list[Tile]:
        """Every tile of the matrix (only those on or above the diagonal when symmetric), in
        row-major order: the order :func:`owner` assigns them to processes in."""
        (n1, n2), (tr, tc) = self.shape, self.tile_shape
        return [(i, j, min(tr, n1 - i), min(tc, n2 - j))
                for i in range(0, n1, tr) for j in range(0, n2, tc)
                if not self.symmetric or j >= i]

    def _mirrored(self, tile: Tile) -> bool:
        return self.symmetric and tile[0] != tile[1]

    def _digest(self, tile: Tile, blocks: Mapping[str, np.ndarray],
                mirrors: Mapping[str, np.ndarray] | None) -> str:
        h = hashlib.sha256(json.dumps(list(tile)).encode())
        for name in sorted(blocks):
            b = blocks[name]
            h.update(f"{name}:{b.dtype.str}:{b.shape}".encode())
            h.update(np.ascontiguousarray(b).tobytes())
            if mirrors is not None:
                h.update(np.ascontiguousarray(mirrors[name]).tobytes())
        return h.hexdigest()

    def write(self, i: int, j: int, blocks: Mapping[str, np.ndarray]) -> None:
        """Write the tile at row ``i``, column ``j`` (and its mirror image when symmetric and
        off the diagonal) into the arrays; it is journaled by the next :meth:`commit`
        (:meth:`commit_if_due` commits every :data:`COMMIT_SECONDS`)."""
        rows, cols = next(iter(blocks.values())).shape
        tile = (int(i), int(j), int(rows), int(cols))
        n2, item = self.shape[1], self.dtype.itemsize
        blocks = {n: np.ascontiguousarray(b, dtype=self.dtype) for n, b in blocks.items()}
        mirrors = ({n: np.ascontiguousarray(b.T) for n, b in blocks.items()}
                   if self._mirrored(tile) else None)
        for name, b in blocks.items():
            fd = self._fd(name)
            off = self._offsets[name]
            for r in range(rows):
                os.pwrite(fd, b[r].tobytes(), off + ((i + r) * n2 + j) * item)
            if mirrors is not None:
                m = mirrors[name]
                for r in range(cols):
                    os.pwrite(fd, m[r].tobytes(), off + ((j + r) * n2 + i) * item)
        self._pending.append((tile, self._digest(tile, blocks, mirrors)))

    def _fd(self, name: str) -> int:
        if name not in self._fds:
            self._fds[name] = os.open(self._array_path(name), os.O_RDWR)
        return self._fds[name]

    def commit(self) -> int:
        """Make the tiles written since the last commit durable (fsync the arrays), then
        append their journal lines (and fsync the journal). Returns how many were journaled."""
        self._last_commit = time.monotonic()
        if not self._pending:
            return 0
        for fd in self._fds.values():
            os.fsync(fd)
        path = self._journal_path(self.process_index)
        lines = "".join(json.dumps({"tile": list(t), "sha256": d}) + "\n"
                        for t, d in self._pending)
        with open(path, "ab") as f:
            if f.tell() and not _ends_with_newline(path):
                lines = "\n" + lines  # a line torn by a crash stays unreadable on its own
            f.write(lines.encode())
            f.flush()
            os.fsync(f.fileno())
        done, self._pending = len(self._pending), []
        return done

    def commit_if_due(self) -> None:
        """:meth:`commit` when :data:`COMMIT_SECONDS` have passed since the last one."""
        if time.monotonic() - self._last_commit >= COMMIT_SECONDS:
            self.commit()

    def close(self) -> None:
        """Commit what is pending and close the files."""
        try:
            self.commit()
        finally:
            for fd in self._fds.values():
                os.close(fd)
            self._fds = {}

    # ------------------------------------------------------------------ reading

    def journal(self) -> dict[Tile, set[str]]:
        """Every tile some process has journaled, with the checksums recorded for it (all
        journals; unreadable or torn lines are skipped)."""
        out: dict[Tile, set[str]] = {}
        for path in sorted(self.folder.glob("journal.p*.jsonl")):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            for line in text.splitlines():
                try:
                    entry = json.loads(line)
                    tile = tuple(int(v) for v in entry["tile"])
                    digest = str(entry["sha256"])
                except (ValueError, KeyError, TypeError):
                    continue
                if len(tile) == 4:
                    out.setdefault(tile, set()).add(digest)
        return out

    def valid(self, tiles: Iterable[Tile]) -> set[Tile]:
        """The tiles among ``tiles`` that are journaled *and* whose bytes in the arrays match
        a journaled checksum. A journaled tile that fails its checksum (torn by a crash or
        altered) is left out with a RuntimeWarning."""
        recorded = self.journal()
        arrays = self.arrays()
        ok = set()
        for tile in tiles:
            digests = recorded.get(tuple(tile))
            if not digests:
                continue
            i, j, rows, cols = tile
            blocks = {n: a[i:i + rows, j:j + cols] for n, a in arrays.items()}
            mirrors = ({n: a[j:j + cols, i:i + rows] for n, a in arrays.items()}
                       if self._mirrored(tile) else None)
            if self._digest(tuple(tile), blocks, mirrors) in digests:
                ok.add(tuple(tile))
            else:
                warnings.warn(
                    f"the tile at rows {i}-{i + rows}, columns {j}-{j + cols} of the tile store "
                    f"{self.folder} does not match its journaled checksum (torn by a crash, or "
                    "altered); recomputing it", RuntimeWarning, stacklevel=3)
        return ok

    def arrays(self) -> dict[str, np.memmap]:
        """The matrices as read-only memory maps."""
        return {n: np.load(self._array_path(n), mmap_mode="r") for n in self.names}


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def owner(index: int, process_count: int) -> int:
    """The process that computes tile number ``index`` (of :meth:`TileStore.tiles`): tiles are
    dealt round-robin, ``index mod process_count``. All tiles have one shape (the last ones are
    padded to it), so every process gets the same work to within one tile.

    Example:
        >>> [owner(k, 3) for k in range(7)]
        [0, 1, 2, 0, 1, 2, 0]
    """
    return index % process_count
