"""Datasets and the binary / multi-class tasks of the book.

Three datasets are known:

* ``"digits"`` -- scikit-learn's bundled 8x8 handwritten digits (1,797 images). It needs no
  files and is the embedded default of ``make book``. Its split is fixed and documented:
  image ``i`` (in scikit-learn's order) is a *test* image when ``i % 4 == 3``, otherwise a
  training image (1,348 train / 449 test).
* ``"mnist"`` -- the IDX gzip files ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``
  under ``<root>/mnist/``.
* ``"cifar10"`` -- the python pickle batches under ``<root>/cifar-10-batches-py/``.

The data root is the ``root`` argument, else the environment variable ``LANTK_DATA_DIR``,
else ``~/.cache/lantk``.

Checksums. :func:`verify` (``lantk data verify``) checks every file against, in this order,
the SHA-256 manifest :func:`fetch` writes into the dataset folder
(``<root>/<dataset folder>/MANIFEST.json``), a ``<root>/MANIFEST.json`` keyed by
``"<dataset folder>/<file>"`` (the format of the shared data folder), and the official MD5 of
the file. Loading checks the SHA-256 manifests once per file version and warns on a mismatch
(:class:`DataChecksumWarning`). A corrupt or truncated file raises :class:`DataFileError`
naming the file and the command that replaces it; a training split that shares images with
its test split raises :class:`DataOverlapError`.

Downloads. ``$LANTK_DATA_MIRROR`` (one or more base URLs, separated by spaces or commas;
each serves the archives by file name) replaces the official mirrors; ``$LANTK_DATA_MD5``
(a JSON object ``{"file name": "md5"}``) replaces expected archive checksums -- both are
meant for tests and local mirrors. ``LANTK_OFFLINE=1`` stops :func:`ensure_book_data` from
downloading.

Example:
    >>> from lantk import data
    >>> x, y = data.load("digits", "train")
    >>> x.shape, x.dtype, int(y.max())
    ((1348, 8, 8, 1), dtype('uint8'), 9)
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import pickle
import shutil
import socket
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lantk._checks import encode_labels, no_progress

__all__ = [
    "CIFAR10_CLASSES",
    "DATASETS",
    "DataChecksumWarning",
    "DataFileError",
    "DataOverlapError",
    "FetchError",
    "FileCheck",
    "Task",
    "VerifyReport",
    "available",
    "binary_task",
    "choose_dataset",
    "data_root",
    "ensure_book_data",
    "fetch",
    "info",
    "load",
    "md5sum",
    "multiclass_task",
    "one_hot_centred",
    "check_dataset",
    "preprocess",
    "verify",
]

DATASETS = ("digits", "mnist", "cifar10")
SPLITS = ("train", "test")

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
DIGIT_CLASSES = tuple(str(i) for i in range(10))
CLASS_NAMES = {"digits": DIGIT_CLASSES, "mnist": DIGIT_CLASSES, "cifar10": CIFAR10_CLASSES}

MNIST_DIR = "mnist"
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# Official MD5 checksums of the MNIST archives (LeCun, Cortes & Burges).
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_FILES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_MD5 = {CIFAR10_ARCHIVE: "c58f30108f718f92721af3b95e74349a"}
# Official MD5 of the files inside the archive (as published with the archive's contents).
CIFAR10_FILE_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
CIFAR10_URLS = ("https://www.cs.toronto.edu/~kriz/",)

DATASET_DIRS = {"mnist": MNIST_DIR, "cifar10": CIFAR10_DIR}
OFFICIAL_MD5 = {"mnist": MNIST_MD5, "cifar10": CIFAR10_FILE_MD5}
MANIFEST = "MANIFEST.json"
_MANIFEST_FORMAT = "lantk-data-manifest/1"

CONNECT_TIMEOUT = 60.0   # seconds; ensure_book_data uses 5 s so an offline machine never hangs
READ_TIMEOUT = 60.0      # seconds without data once a download has started


# --------------------------------------------------------------------------- errors
class DataFileError(ValueError):
    """A data file is corrupt, truncated, malformed or fails its checksum.

    The message names the file and the command that replaces it
    (``lantk data fetch NAME --force``).
    """


class DataOverlapError(ValueError):
    """A dataset's training split shares images with its test split."""


class DataChecksumWarning(UserWarning):
    """A data file no longer matches the SHA-256 recorded for it in a manifest."""


class FetchError(OSError):
    """A download failed (no network, interrupted, or a checksum mismatch); nothing was installed.

    ``network`` is true when no mirror could be reached or a transfer broke off (as opposed to
    a server that answered with the wrong bytes).
    """

    def __init__(self, message: str, network: bool = False):
        super().__init__(message)
        self.network = network


def _fix_command(name: str, root: Path) -> str:
    return f"lantk data fetch {name} --force --root {root}"


def _corrupt(path: Path, name: str, root: Path, what: str) -> DataFileError:
    return DataFileError(
        f"{path}: {what}. The file is corrupt or truncated; replace it with:  "
        f"{_fix_command(name, root)}")


# --------------------------------------------------------------------------- roots and files
def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder datasets are read from: ``root``, else ``$LANTK_DATA_DIR``, else ``~/.cache/lantk``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("LANTK_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/lantk").expanduser()


def check_dataset(name: str) -> str:
    """``name`` if it is one of :data:`DATASETS`, else a ``ValueError`` that lists them."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    return name


_check_dataset = check_dataset


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    return split


def _required_files(name: str, split: str, root: Path) -> list[Path]:
    if name == "mnist":
        return [root / MNIST_DIR / f for f in MNIST_FILES[split]]
    if name == "cifar10":
        return [root / CIFAR10_DIR / f for f in CIFAR10_FILES[split]]
    return []


def _missing_error(name: str, split: str, root: Path, missing: list[Path]) -> FileNotFoundError:
    names = ", ".join(p.name for p in missing)
    return FileNotFoundError(
        f"{name} ({split}) needs the files {names} in {missing[0].parent}, which were not found "
        f"(data root {root}: the `root` argument, else $LANTK_DATA_DIR, else ~/.cache/lantk). "
        f"Fetch them with:  lantk data fetch {name} --root {root}"
    )


# --------------------------------------------------------------------------- checksums
def md5sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """MD5 hex digest of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _digests(path: Path, chunk: int = 1 << 20) -> tuple[str, str]:
    """(md5, sha256) of a file in one pass."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            md5.update(block)
            sha.update(block)
    return md5.hexdigest(), sha.hexdigest()


def _identity(path: Path) -> tuple:
    """What identifies one version of a file in this process: path, size, inode, times."""
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


_SHA256_CACHE: dict[tuple, str] = {}


def _sha256_cached(path: Path) -> str:
    key = _identity(path)
    if key not in _SHA256_CACHE:
        _SHA256_CACHE[key] = _digests(path)[1]
    return _SHA256_CACHE[key]


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return None, f"{path} cannot be read as JSON ({type(e).__name__}: {e})"


def _recorded_sha256(name: str, root: Path) -> tuple[dict, list[str]]:
    """SHA-256 recorded for the files of a dataset: ``{file name: (sha256, where)}``.

    The dataset folder's manifest (written by :func:`fetch`) takes precedence over the
    root's. Returns the entries and a list of problems (an unreadable manifest).
    """
    folder = DATASET_DIRS[name]
    out, problems = {}, []
    root_manifest = root / MANIFEST
    if root_manifest.is_file():
        doc, err = _read_json(root_manifest)
        if err:
            problems.append(err)
        elif isinstance(doc, dict):
            for key, entry in doc.items():
                if (isinstance(key, str) and key.startswith(folder + "/")
                        and isinstance(entry, dict) and isinstance(entry.get("sha256"), str)):
                    out[key[len(folder) + 1:]] = (entry["sha256"].lower(), str(root_manifest))
    own = root / folder / MANIFEST
    if own.is_file():
        doc, err = _read_json(own)
        files = doc.get("files") if isinstance(doc, dict) else None
        if err:
            problems.append(err)
        elif not isinstance(files, dict):
            problems.append(f"{own} has no \"files\" table (not a lantk data manifest)")
        else:
            for fname, entry in files.items():
                if isinstance(entry, dict) and isinstance(entry.get("sha256"), str):
                    out[fname] = (entry["sha256"].lower(), str(own))
    return out, problems


def _write_manifest(folder: Path, name: str, entries: dict, source: str) -> None:
    """Record ``{file: {"sha256", "bytes"}}`` in ``folder/MANIFEST.json`` (merged, atomically)."""
    from lantk._io import atomic_write

    path = folder / MANIFEST
    doc, err = _read_json(path) if path.is_file() else (None, None)
    files = doc.get("files") if isinstance(doc, dict) and not err else None
    files = dict(files) if isinstance(files, dict) else {}
    files.update(entries)
    files = {f: e for f, e in files.items() if (folder / f).is_file()}
    body = {"format": _MANIFEST_FORMAT, "dataset": name, "source": source,
            "files": dict(sorted(files.items()))}
    atomic_write(path, json.dumps(body, indent=1) + "\n")


def _manifest_entry(path: Path) -> dict:
    md5, sha = _digests(path)
    return {"sha256": sha, "md5": md5, "bytes": path.stat().st_size}


@dataclass
class FileCheck:
    """The result of checking one file: ``status`` is ``"ok"``, ``"failed"``, ``"missing"`` or
    ``"unchecked"`` (no checksum recorded)."""

    dataset: str
    file: str          # relative to the data root, e.g. "mnist/t10k-images-idx3-ubyte.gz"
    path: Path
    status: str
    detail: str

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "missing")


@dataclass
class VerifyReport:
    """What :func:`verify` found: one :class:`FileCheck` per file, plus manifest problems."""

    root: Path
    datasets: list
    files: list = field(default_factory=list)
    problems: list = field(default_factory=list)

    @property
    def failed(self) -> list:
        return [c for c in self.files if c.failed]

    @property
    def unchecked(self) -> list:
        return [c for c in self.files if c.status == "unchecked"]

    @property
    def ok(self) -> bool:
        """No file failed or is missing, and every manifest could be read."""
        return not self.failed and not self.problems

    def fix_commands(self) -> list[str]:
        names = sorted({c.dataset for c in self.failed}, key=DATASETS.index)
        return [_fix_command(n, self.root) for n in names]

    def lines(self) -> list[str]:
        out = [f"data root: {self.root}"]
        if not self.datasets:
            out.append("no dataset found (mnist/ or cifar-10-batches-py/); nothing to verify")
        width = max([len(c.file) for c in self.files] + [0])
        label = {"ok": "ok", "failed": "FAILED", "missing": "MISSING", "unchecked": "unchecked"}
        for c in self.files:
            out.append(f"{label[c.status]:9s}  {c.file:{width}s}  {c.detail}")
        for p in self.problems:
            out.append(f"FAILED     {p}")
        if self.files:
            n_ok = sum(c.status == "ok" for c in self.files)
            out.append(f"{len(self.files)} files: {n_ok} ok, {len(self.failed)} failed or missing, "
                       f"{len(self.unchecked)} with no checksum recorded")
        for cmd in self.fix_commands():
            out.append(f"replace the failing files with:  {cmd}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _check_file(name: str, root: Path, fname: str, recorded: dict, expected_md5: str | None) -> FileCheck:
    """Check one file of a dataset folder against its recorded SHA-256, else ``expected_md5``."""
    path = root / DATASET_DIRS[name] / fname
    rel = f"{DATASET_DIRS[name]}/{fname}"
    if not path.is_file():
        return FileCheck(name, rel, path, "missing", f"not found; fetch it with:  {_fix_command(name, root)}")
    rec = recorded.get(fname)
    if rec is None and expected_md5 is None:
        return FileCheck(name, rel, path, "unchecked", "no checksum recorded")
    try:
        md5, sha = _digests(path)
    except OSError as e:
        return FileCheck(name, rel, path, "failed", f"cannot be read ({e})")
    official = OFFICIAL_MD5[name].get(fname)
    if rec is not None:
        want, where = rec
        if sha != want:
            return FileCheck(name, rel, path, "failed",
                             f"sha256 {sha[:12]}… does not match {want[:12]}… recorded in {where}; "
                             f"replace it with:  {_fix_command(name, root)}")
        note = ""
        if official is not None:
            note = ("; the official file (md5 matches)" if md5 == official
                    else "; not the official file (md5 differs), as recorded")
        return FileCheck(name, rel, path, "ok", f"sha256 matches {where}{note}")
    if md5 != expected_md5:
        what = "the official md5" if expected_md5 == official else "the expected md5"
        return FileCheck(name, rel, path, "failed",
                         f"md5 {md5} is not {what} {expected_md5}; replace it with:  "
                         f"{_fix_command(name, root)}")
    what = "official" if expected_md5 == official else "expected"
    return FileCheck(name, rel, path, "ok", f"md5 matches the {what} checksum")


def _dataset_files(name: str, root: Path) -> list[str]:
    """The files to check in a dataset folder: those the loader needs, then any others present."""
    needed = [p.name for s in SPLITS for p in _required_files(name, s, root)]
    folder = root / DATASET_DIRS[name]
    extra = []
    if folder.is_dir():
        extra = sorted(p.name for p in folder.iterdir()
                       if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")
                       and p.name not in needed)
    return needed + extra


def verify(name: str | None = None, root: str | os.PathLike | None = None) -> VerifyReport:
    """Check every file of a dataset (default: every dataset found under the root) against its
    recorded SHA-256 (the dataset folder's ``MANIFEST.json``, else the root's) or, where none
    is recorded, its official MD5.

    Args:
        name: ``"mnist"``, ``"cifar10"`` or ``None`` (each of them whose folder exists);
            ``"digits"`` ships with scikit-learn and has nothing to check.
        root: data folder (see :func:`data_root`).

    Returns:
        A :class:`VerifyReport`; ``report.ok`` is false when a file fails its checksum, a file
        the loader needs is missing, or a manifest cannot be read. ``str(report)`` names each
        failing file and the ``lantk data fetch NAME --force`` command that replaces it.
        Files with no recorded checksum are listed as ``unchecked`` (not a failure).
    """
    base = data_root(root)
    if name is None:
        names = [n for n in DATASET_DIRS if (base / DATASET_DIRS[n]).is_dir()]
    else:
        _check_dataset(name)
        names = [name] if name in DATASET_DIRS else []
    report = VerifyReport(root=base, datasets=names)
    for n in names:
        recorded, problems = _recorded_sha256(n, base)
        report.problems.extend(problems)
        for fname in _dataset_files(n, base):
            report.files.append(_check_file(n, base, fname, recorded, OFFICIAL_MD5[n].get(fname)))
    return report


# --------------------------------------------------------------------------- readers
def _read_idx(path: Path, name: str = "mnist", root: Path | None = None,
              ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a uint8 array, checking its header."""
    root = path.parent.parent if root is None else root
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise _corrupt(path, name, root, f"cannot be decompressed ({type(e).__name__}: {e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise _corrupt(path, name, root, "is not an unsigned-byte IDX file (wrong magic number)")
    nd = raw[3]
    if ndim is not None and nd != ndim:
        raise _corrupt(path, name, root, f"has {nd} dimensions in its IDX header, expected {ndim}")
    offset = 4 + 4 * nd
    if len(raw) < offset:
        raise _corrupt(path, name, root, "is truncated inside its IDX header")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd)]
    count = int(np.prod(dims, dtype=np.int64)) if dims else 1
    payload = len(raw) - offset
    if payload < count:
        raise _corrupt(path, name, root, f"is truncated: its header announces {dims} "
                       f"({count} bytes), the file holds {payload}")
    if payload > count:
        raise _corrupt(path, name, root, f"holds {payload - count} bytes more than its header "
                       f"announces ({dims}): header and contents disagree")
    return np.frombuffer(raw, dtype=np.uint8, count=count, offset=offset).reshape(dims)


def _load_mnist(split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    img_path, lab_path = _required_files("mnist", split, root)
    images = _read_idx(img_path, "mnist", root, ndim=3)
    labels = _read_idx(lab_path, "mnist", root, ndim=1).astype(np.int64)
    if images.shape[1:] != (28, 28):
        raise _corrupt(img_path, "mnist", root,
                       f"holds images of shape {images.shape[1:]}, MNIST's are (28, 28)")
    if images.shape[0] != labels.shape[0]:
        raise DataFileError(
            f"MNIST {split}: {img_path} holds {images.shape[0]} images but {lab_path} holds "
            f"{labels.shape[0]} labels; replace them with:  {_fix_command('mnist', root)}")
    if labels.size and labels.max() > 9:
        raise _corrupt(lab_path, "mnist", root, f"holds the label {int(labels.max())}, outside 0..9")
    return images[..., None], labels


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR-10 batches: dicts, lists, bytes and numpy arrays, no other globals."""

    _ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"), ("__builtin__", "bytes"), ("builtins", "bytes"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing the global {module}.{name}, which a CIFAR-10 "
                                         "batch does not contain")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path, root: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as e:  # UnpicklingError, EOFError, ValueError, ... from a damaged pickle
        raise _corrupt(path, "cifar10", root, f"cannot be unpickled ({type(e).__name__}: {e})") from None
    if not isinstance(batch, dict):
        raise _corrupt(path, "cifar10", root, f"holds a {type(batch).__name__}, not a CIFAR-10 batch (a dict)")
    keys = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in keys or "labels" not in keys:
        raise _corrupt(path, "cifar10", root, "has no 'data' and 'labels' entries (not a CIFAR-10 batch)")
    try:
        data = np.asarray(keys["data"])
        labels = np.asarray(keys["labels"])
    except Exception as e:
        raise _corrupt(path, "cifar10", root, f"has unreadable data or labels ({e})") from None
    if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise _corrupt(path, "cifar10", root, "has labels that are not a list of integers")
    n = labels.shape[0]
    if data.dtype != np.uint8:
        raise _corrupt(path, "cifar10", root, f"has pixel data of type {data.dtype}, expected uint8")
    if data.size != n * 3072:
        raise _corrupt(path, "cifar10", root, f"holds {data.size} pixel values for {n} labels; "
                       f"a batch of {n} images has {n} × 3072 (3 × 32 × 32)")
    if n and (labels.min() < 0 or labels.max() > 9):
        raise _corrupt(path, "cifar10", root,
                       f"holds labels from {int(labels.min())} to {int(labels.max())}, outside 0..9")
    return data.reshape(n, 3, 32, 32).transpose(0, 2, 3, 1), labels.astype(np.int64)


def _load_cifar10(split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for path in _required_files("cifar10", split, root):
        x, y = _read_cifar_batch(path, root)
        xs.append(x)
        ys.append(y)
    return np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys)


def _load_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = d.target.astype(np.int64)
    test = np.arange(len(labels)) % 4 == 3
    mask = test if split == "test" else ~test
    return images[mask], labels[mask]


def _warn_if_modified(name: str, files: list[Path], root: Path) -> None:
    """Warn (once per file version) when a file no longer matches its recorded SHA-256."""
    recorded, problems = _recorded_sha256(name, root)
    for p in problems:
        warnings.warn(f"{p}; its checksums are not used", DataChecksumWarning, stacklevel=4)
    for path in files:
        rec = recorded.get(path.name)
        if rec is None:
            continue
        key = _identity(path)
        fresh = key not in _SHA256_CACHE
        if _sha256_cached(path) != rec[0] and fresh:
            warnings.warn(
                f"{path} does not match the sha256 recorded in {rec[1]}: it was modified or is "
                f"corrupt. Check with:  lantk data verify {name} --root {root}   and replace it "
                f"with:  {_fix_command(name, root)}", DataChecksumWarning, stacklevel=4)


def _read_split(name: str, split: str, base: Path) -> tuple[np.ndarray, np.ndarray]:
    if name == "digits":
        return _load_digits(split)
    missing = [p for p in _required_files(name, split, base) if not p.is_file()]
    if missing:
        raise _missing_error(name, split, base, missing)
    _warn_if_modified(name, _required_files(name, split, base), base)
    return _load_mnist(split, base) if name == "mnist" else _load_cifar10(split, base)


def _row_hashes(x: np.ndarray, block: int = 4096) -> np.ndarray:
    """A 64-bit hash of each image (row of uint8), for finding exact duplicates cheaply."""
    rows = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.uint8)
    pad = (-rows.shape[1]) % 8
    if pad:
        rows = np.pad(rows, ((0, 0), (0, pad)))
    words = rows.view("<u8")
    mult = np.random.default_rng(20240601).integers(1, 2**63, size=words.shape[1], dtype=np.uint64)
    mult |= np.uint64(1)
    out = np.empty(len(words), dtype=np.uint64)
    for i in range(0, len(words), block):  # wraps modulo 2**64, which is what a hash wants
        out[i:i + block] = (words[i:i + block] * mult).sum(axis=1, dtype=np.uint64)
    return out


def shared_images(x_train: np.ndarray, x_test: np.ndarray) -> int:
    """How many images of ``x_test`` also occur, byte for byte, in ``x_train``.

    >>> a = np.arange(12, dtype=np.uint8).reshape(3, 2, 2)
    >>> shared_images(a, np.stack([a[1], a[1] + 1]))
    1
    """
    if len(x_train) == 0 or len(x_test) == 0:
        return 0
    h_tr, h_te = _row_hashes(x_train), _row_hashes(x_test)
    candidates = np.flatnonzero(np.isin(h_te, h_tr))
    if len(candidates) == 0:
        return 0
    by_hash: dict = {}
    for i in np.flatnonzero(np.isin(h_tr, h_te[candidates])):
        by_hash.setdefault(int(h_tr[i]), []).append(i)
    flat_tr = x_train.reshape(len(x_train), -1)
    flat_te = x_test.reshape(len(x_test), -1)
    return sum(any(np.array_equal(flat_te[j], flat_tr[i]) for i in by_hash.get(int(h_te[j]), ()))
               for j in candidates)


_OVERLAP_CACHE: dict[tuple, int] = {}


def _check_overlap(name: str, base: Path, x_train: np.ndarray) -> None:
    """Refuse a training split that shares images with its test split (cached per file version)."""
    files = [p for s in SPLITS for p in _required_files(name, s, base)]
    if any(not p.is_file() for p in files):
        return  # without the test split there is nothing to compare against
    key = (name, tuple(_identity(p) for p in files))
    if key not in _OVERLAP_CACHE:
        x_test, _ = _read_split(name, "test", base)
        _OVERLAP_CACHE[key] = shared_images(x_train, x_test)
    k = _OVERLAP_CACHE[key]
    if k:
        where = f" in {base / DATASET_DIRS[name]}" if name in DATASET_DIRS else ""
        raise DataOverlapError(
            f"{name}{where}: {k} test image(s) also occur, byte for byte, in the training split; "
            "a training split must not share images with its test split, or test accuracy "
            f"measures memory. Replace the files with the official ones:  {_fix_command(name, base)}")


def load(name: str, split: str = "train", root: str | os.PathLike | None = None):
    """Load a dataset split as ``(images, labels)``.

    Args:
        name: ``"digits"``, ``"mnist"`` or ``"cifar10"``.
        split: ``"train"`` or ``"test"``.
        root: data folder; default ``$LANTK_DATA_DIR`` or ``~/.cache/lantk``.

    Returns:
        ``images`` as ``uint8`` of shape ``(N, H, W, C)`` and ``labels`` as ``int64`` of shape ``(N,)``.

    Raises:
        ValueError: unknown dataset or split.
        FileNotFoundError: the files are missing; the message names them, where it looked,
            and the command that fetches them.
        DataFileError: a file is corrupt, truncated or malformed (the message names it and
            the ``lantk data fetch NAME --force`` command that replaces it).
        DataOverlapError: loading ``"train"`` when some test images also occur in the training
            split (checked once per version of the files in a process).

    Warns:
        DataChecksumWarning: a file does not match the SHA-256 recorded in a manifest.
    """
    _check_dataset(name)
    _check_split(split)
    base = data_root(root) if name != "digits" else Path()
    x, y = _read_split(name, split, base)
    if split == "train":
        _check_overlap(name, base, x)
    return x, y


def available(name: str, root: str | os.PathLike | None = None) -> bool:
    """Whether both splits of a dataset are found under the data root (digits always are)."""
    _check_dataset(name)
    base = data_root(root)
    return all(p.is_file() for s in SPLITS for p in _required_files(name, s, base))


def choose_dataset(preferred: str, root: str | os.PathLike | None = None, fallback: str = "digits") -> str:
    """``preferred`` when its files are found under the data root, else ``fallback``.

    The experiment chapters use this so that ``make book`` works on a fresh machine (on the
    embedded digits) and runs on real CIFAR-10 / MNIST wherever ``LANTK_DATA_DIR`` points at them.
    """
    return preferred if available(preferred, root) else _check_dataset(fallback)


def largest_balanced(dataset: str, classes, split: str = "train",
                     root: str | os.PathLike | None = None) -> int:
    """The largest sample size a balanced task on ``classes`` can draw from ``split``.

    Profiles written for the full official datasets use it to cap their default sizes on a
    smaller copy (the shared CIFAR-10 subset holds about 517 training images per class):

    >>> largest_balanced("digits", [3, 8], "test") <= 2 * 50
    True
    """
    _check_dataset(dataset)
    cls = [_resolve_class(dataset, c) for c in classes]
    counts = _class_counts(dataset, split, root)
    return len(cls) * int(counts[cls].min())


def _class_counts(name: str, split: str, root) -> np.ndarray:
    """Images per class in a split (length: the dataset's number of classes)."""
    return np.bincount(load(name, split, root)[1], minlength=len(CLASS_NAMES[name]))


def info(root: str | os.PathLike | None = None) -> dict:
    """Which datasets are found under the root, with images per split and per class.

    A split whose files are missing has ``found: False``; one whose files are corrupt (or
    whose training split shares images with its test split) has ``found: True`` and an
    ``error`` naming the file and the fix, instead of the counts.
    """
    out = {}
    for name in DATASETS:
        entry = {}
        for split in SPLITS:
            try:
                counts = _class_counts(name, split, root)
            except FileNotFoundError as e:
                entry[split] = {"found": False, "error": str(e)}
                continue
            except (DataFileError, DataOverlapError) as e:
                entry[split] = {"found": True, "error": str(e)}
                continue
            entry[split] = {"found": True, "images": int(counts.sum()),
                            "per_class": counts.tolist()}
        out[name] = entry
    return out


# --------------------------------------------------------------------------- fetching
def _human(n: int | None) -> str:
    if not n:
        return "size unknown"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def _is_network_error(e: BaseException) -> bool:
    if isinstance(e, FetchError):
        return e.network
    if isinstance(e, urllib.error.HTTPError):
        return False  # the server answered
    return isinstance(e, (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout,
                          http.client.HTTPException))


def _download_verified(url: str, dest_dir: Path, filename: str, md5: str, progress: bool,
                       connect_timeout: float = CONNECT_TIMEOUT) -> Path:
    """Download ``url`` into a temporary file in ``dest_dir`` and return it once its MD5 matches.

    A partial or corrupt download is deleted and raises :class:`FetchError`; it is never returned.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{filename}.", suffix=".partial", dir=dest_dir)
    tmp = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=connect_timeout) as resp:
            sock = getattr(getattr(getattr(resp, "fp", None), "raw", None), "_sock", None)
            if sock is not None:  # connected: allow slow transfers
                sock.settimeout(max(READ_TIMEOUT, connect_timeout))
            total = int(resp.headers.get("Content-Length") or 0) or None
            if progress:  # announced even where TQDM_DISABLE hides the bar
                print(f"lantk: downloading {filename} ({_human(total)}) from {url}", file=sys.stderr)
            from tqdm import tqdm

            got_bytes = 0
            with tqdm(total=total, unit="B", unit_scale=True, desc=filename, disable=no_progress(progress)) as bar:
                for block in iter(lambda: resp.read(1 << 20), b""):
                    out.write(block)
                    got_bytes += len(block)
                    bar.update(len(block))
        if total is not None and got_bytes != total:
            raise FetchError(f"the download of {filename} from {url} was interrupted: {got_bytes} of "
                             f"{total} bytes arrived; it was discarded", network=True)
        from lantk._io import umask as _umask

        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; honour the umask
        got = md5sum(tmp)
        if got != md5:
            raise FetchError(f"checksum mismatch for {filename} from {url}: md5 {got}, expected {md5}; "
                             "the download was discarded")
        return tmp
    except http.client.HTTPException as e:  # IncompleteRead and friends are not OSErrors
        tmp.unlink(missing_ok=True)
        raise FetchError(f"the download of {filename} from {url} broke off ({type(e).__name__}: {e}); "
                         "it was discarded", network=True) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _try_mirrors(base_urls, filename, dest_dir, md5, progress,
                 connect_timeout: float = CONNECT_TIMEOUT) -> Path:
    errors, network = [], True
    for url in base_urls:
        try:
            return _download_verified(url.rstrip("/") + "/" + filename, dest_dir, filename, md5,
                                      progress, connect_timeout)
        except (OSError, ValueError, http.client.HTTPException) as e:  # try the next mirror
            errors.append(f"{url}: {e}")
            network = network and _is_network_error(e)
    raise FetchError(f"could not fetch {filename}:\n  " + "\n  ".join(errors), network=network)


def _mirrors(name: str, base_urls) -> list[str]:
    """Base URLs for a dataset: ``base_urls`` (a list, a string or ``{dataset: list}``), else
    ``$LANTK_DATA_MIRROR``, else the official mirrors."""
    if isinstance(base_urls, dict):
        base_urls = base_urls.get(name)
    if isinstance(base_urls, str):
        base_urls = [base_urls]
    if base_urls:
        return list(base_urls)
    env = os.environ.get("LANTK_DATA_MIRROR", "").replace(",", " ").split()
    if env:
        return env
    return list(MNIST_URLS if name == "mnist" else CIFAR10_URLS)


def _expected_md5(filename: str, md5) -> str:
    """The MD5 a download must have: ``md5[filename]``, else ``$LANTK_DATA_MD5``, else official."""
    if md5 and filename in md5:
        return md5[filename]
    env = os.environ.get("LANTK_DATA_MD5")
    if env:
        try:
            table = json.loads(env)
        except ValueError as e:
            raise ValueError(f"LANTK_DATA_MD5 must be a JSON object {{\"file name\": \"md5\"}} ({e}); "
                             "unset it to use the official checksums") from None
        if not isinstance(table, dict):
            raise ValueError("LANTK_DATA_MD5 must be a JSON object {\"file name\": \"md5\"}; "
                             "unset it to use the official checksums")
        if filename in table:
            return table[filename]
    return {**MNIST_MD5, **CIFAR10_MD5}[filename]


def _refuse(name: str, base: Path, bad: list) -> DataFileError:
    listing = "\n  ".join(f"{c.path}: {c.detail.split('; replace it with')[0]}" for c in bad)
    return DataFileError(
        f"{name}: files already under {base} fail their checksum, so they were left alone:\n  "
        f"{listing}\nreplace them with:  {_fix_command(name, base)}")


def fetch(name: str, root: str | os.PathLike | None = None, *, base_urls=None,
          files=None, progress: bool = True, force: bool = False, md5: dict | None = None,
          connect_timeout: float = CONNECT_TIMEOUT, actions: dict | None = None) -> Path:
    """Download a dataset's official archives, verify their MD5, and install them atomically.

    Files already present are verified (against the SHA-256 in a manifest, else the official
    MD5) and kept when they pass; nothing is downloaded for them. Files that fail are left
    alone and a :class:`DataFileError` names them, unless ``force`` is true, which replaces
    them. Each download goes to a temporary file, is checked against the expected MD5 and only
    then renamed into place (CIFAR-10 is extracted into a temporary folder that is renamed as
    a whole), so an interrupted or corrupt download is never used. The SHA-256 of every
    installed file is recorded in ``<dataset folder>/MANIFEST.json``.

    Args:
        name: ``"mnist"`` or ``"cifar10"`` (``"digits"`` ships with scikit-learn).
        root: data folder (see :func:`data_root`).
        base_urls: mirrors to try in order (``file://`` URLs work, which the tests use);
            default ``$LANTK_DATA_MIRROR``, else the official ones.
        files: for MNIST, a subset of the four archive names.
        progress: announce each download with its size and show a progress bar.
        force: replace existing files that fail their checksum (files that pass are kept).
        md5: expected MD5 per archive name, replacing the official ones (for tests and
            private mirrors; also ``$LANTK_DATA_MD5``).
        connect_timeout: seconds to wait for a mirror to answer.
        actions: if a dict, filled with ``{file name: "verified" | "downloaded" | "replaced"}``.

    Returns:
        The dataset folder.

    Raises:
        DataFileError: existing files fail their checksum and ``force`` is false.
        FetchError: no mirror delivered a file with the expected checksum; nothing was installed.
    """
    _check_dataset(name)
    if name == "digits":
        raise ValueError("the digits dataset ships with scikit-learn; nothing to fetch")
    actions = {} if actions is None else actions
    base = data_root(root)
    base.mkdir(parents=True, exist_ok=True)
    recorded, _ = _recorded_sha256(name, base)
    urls = _mirrors(name, base_urls)
    if name == "mnist":
        dest = base / MNIST_DIR
        dest.mkdir(exist_ok=True)
        wanted = list(files) if files is not None else list(MNIST_MD5)
        unknown = [f for f in wanted if f not in MNIST_MD5]
        if unknown:
            raise ValueError(f"unknown MNIST files {unknown}; known: {list(MNIST_MD5)}")
        todo, bad = [], []
        for fname in wanted:
            if not (dest / fname).is_file():
                todo.append(fname)
                continue
            check = _check_file(name, base, fname, recorded, _expected_md5(fname, md5))
            if check.status == "ok":
                actions[fname] = "verified"
            else:
                bad.append(check)
                todo.append(fname)
        if bad and not force:
            raise _refuse(name, base, bad)
        for fname in todo:
            existed = (dest / fname).exists()
            tmp = _try_mirrors(urls, fname, dest, _expected_md5(fname, md5), progress, connect_timeout)
            entry = _manifest_entry(tmp)
            os.replace(tmp, dest / fname)
            _write_manifest(dest, name, {fname: entry}, source=" ".join(urls))
            actions[fname] = "replaced" if existed else "downloaded"
        return dest

    dest = base / CIFAR10_DIR
    needed = [f for s in SPLITS for f in CIFAR10_FILES[s]]
    present = [f for f in needed + ["batches.meta"] if (dest / f).is_file()]
    checks = [_check_file(name, base, f, recorded, OFFICIAL_MD5[name].get(f)) for f in present]
    bad = [c for c in checks if c.status != "ok"]
    if bad and not force:
        raise _refuse(name, base, bad)
    if not bad and all(f in present for f in needed):
        actions.update({c.path.name: "verified" for c in checks})
        return dest
    tmp = _try_mirrors(urls, CIFAR10_ARCHIVE, base, _expected_md5(CIFAR10_ARCHIVE, md5), progress,
                       connect_timeout)
    staging = Path(tempfile.mkdtemp(prefix=".cifar10.", dir=base))
    old = None
    try:
        try:
            with tarfile.open(tmp, "r:gz") as tar:
                tar.extractall(staging, filter="data")
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise FetchError(f"{CIFAR10_ARCHIVE} passed its checksum but cannot be extracted "
                             f"({type(e).__name__}: {e})") from None
        new = staging / CIFAR10_DIR
        lacking = [f for f in needed if not (new / f).is_file()]
        if lacking:
            raise FetchError(f"{CIFAR10_ARCHIVE} has no {CIFAR10_DIR}/{lacking[0]}; nothing was installed")
        entries = {p.name: _manifest_entry(p) for p in sorted(new.iterdir()) if p.is_file()}
        _write_manifest(new, name, entries, source=" ".join(urls))
        if dest.exists():
            old = base / f".{CIFAR10_DIR}.old.{os.getpid()}"
            os.replace(dest, old)
        try:
            os.replace(new, dest)
        except BaseException:
            if old is not None:
                os.replace(old, dest)
                old = None
            raise
        before = {c.path.name for c in checks}
        actions.update({f: ("replaced" if f in before else "downloaded") for f in entries})
    finally:
        tmp.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return dest


def _offline() -> bool:
    return os.environ.get("LANTK_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def ensure_book_data(datasets=("mnist", "cifar10"), root: str | os.PathLike | None = None, *,
                     progress: bool = True, base_urls=None, md5: dict | None = None,
                     connect_timeout: float = 5.0, stream=None, offline: bool | None = None) -> dict:
    """Make the book's real datasets available if possible; never raises for a failed download.

    Each dataset not found under the data root is fetched (official archives, MD5-verified,
    installed atomically, each download announced with its size) unless ``LANTK_OFFLINE=1``.
    When offline, or when a fetch fails (an unreachable mirror gives up after
    ``connect_timeout`` seconds, and the other datasets are then not tried), ONE line on
    ``stream`` (default stderr) says so and that the book goes on with the embedded digits.

    Args:
        datasets: names among ``"mnist"``, ``"cifar10"`` (``"digits"`` is always available).
        root: data folder (see :func:`data_root`).
        progress: announce downloads and show progress bars.
        base_urls: mirrors, a list for every dataset or ``{dataset: list}``; default
            ``$LANTK_DATA_MIRROR``, else the official ones.
        md5: expected archive MD5s replacing the official ones (tests, private mirrors).
        connect_timeout: seconds to wait for a mirror to answer.
        stream: where the notice goes (default ``sys.stderr``).
        offline: download nothing (``None``: ``$LANTK_OFFLINE``).

    Returns:
        ``{dataset: bool}``: whether each dataset is available under the root afterwards.
    """
    for n in datasets:
        _check_dataset(n)
    base = data_root(root)
    status = {n: available(n, base) for n in datasets}
    missing = [n for n, ok in status.items() if not ok]
    if not missing:
        return status
    out = sys.stderr if stream is None else stream
    if _offline() if offline is None else offline:
        print(f"lantk: {', '.join(missing)} not found under {base} and offline (--offline or "
              f"LANTK_OFFLINE=1), so not "
              "downloaded; the book goes on with the embedded digits", file=out)
        return status
    failed, reason = [], ""
    for i, n in enumerate(missing):
        try:
            fetch(n, base, base_urls=base_urls, progress=progress, md5=md5,
                  connect_timeout=connect_timeout)
        except (OSError, ValueError) as e:
            failed.append(n)
            if not reason:
                if isinstance(e, DataFileError):
                    reason = (f"files of {n} already there fail their checksum; see  "
                              f"lantk data verify {n} --root {base}")
                else:
                    lines = [s.strip() for s in str(e).splitlines() if s.strip()] or [repr(e)]
                    reason = lines[0] + (" " + lines[-1] if len(lines) > 1 else "")
                reason = reason if len(reason) <= 240 else reason[:237] + "..."
            if _is_network_error(e):  # no network: the other archives would not come either
                failed.extend(missing[i + 1:])
                break
            continue
        status[n] = available(n, base)
    if failed:
        print(f"lantk: could not fetch {', '.join(failed)} into {base} ({reason}); the book goes "
              "on with the embedded digits", file=out)
    return status


# --------------------------------------------------------------------------- tasks
@dataclass
class Task:
    """A supervised task: train / validation / test splits with preprocessed inputs.

    ``y_*`` are ``±1`` floats for binary tasks and integer class indices ``0..C-1`` for
    multi-class tasks. ``idx_*`` index into the original dataset split, so every image is
    traceable.
    """

    dataset: str
    classes: tuple
    class_names: tuple
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    idx_train: np.ndarray
    idx_val: np.ndarray
    idx_test: np.ndarray
    config: dict = field(default_factory=dict)

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    def summary(self) -> str:
        return (f"{self.dataset} classes {self.class_names}: {len(self.y_train)} train, "
                f"{len(self.y_val)} val, {len(self.y_test)} test, input shape {self.X_train.shape[1:]}")


def _resolve_class(dataset: str, c) -> int:
    names = CLASS_NAMES[dataset]
    if isinstance(c, str) and not c.isdigit():
        if c not in names:
            raise ValueError(f"unknown class {c!r} for {dataset}; available: {', '.join(names)}")
        return names.index(c)
    i = int(c)
    if not 0 <= i < len(names):
        raise ValueError(f"unknown class {c!r} for {dataset}; available: 0..{len(names) - 1} "
                         f"({', '.join(names)})")
    return i


def preprocess(images: np.ndarray, *, standardize: bool = False, flatten: bool = False,
               stats: tuple | None = None):
    """Scale ``uint8`` images to [-1, 1]; optionally standardise per channel and flatten.

    ``stats`` = (mean, std) per channel, computed on the training set and reused for other
    splits. Returns ``(x, stats)`` in float64.
    """
    x = images.astype(np.float64) / 127.5 - 1.0
    if standardize:
        if stats is None:
            stats = (x.mean(axis=(0, 1, 2)), x.std(axis=(0, 1, 2)) + 1e-12)
        x = (x - stats[0]) / stats[1]
    if flatten:
        x = x.reshape(len(x), int(np.prod(x.shape[1:])))
    return x, stats


def _pick(labels: np.ndarray, classes: list[int], n: int | None, rng, split: str, dataset: str,
          exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices with the given classes: all of them if n is None, else balanced (n // C each,
    the remainder to the first classes), in random order."""
    pools = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        if exclude is not None:
            idx = np.setdiff1d(idx, exclude)
        pools.append(rng.permutation(idx))
    if n is None:
        chosen = np.concatenate(pools)
    else:
        if n < 0:
            raise ValueError(f"the number of {split} samples must be >= 0, got {n}")
        k = len(classes)
        want = [n // k + (1 if i < n % k else 0) for i in range(k)]
        for c, w, pool in zip(classes, want, pools):
            if w > len(pool):
                raise ValueError(
                    f"asked for {w} {split} images of class {c} ({CLASS_NAMES[dataset][c]}) from "
                    f"{dataset}, but only {len(pool)} are available")
        chosen = np.concatenate([pool[:w] for w, pool in zip(want, pools)])
    return rng.permutation(chosen)


def _build_task(dataset, classes, n_train, n_test, n_val, seed, root, standardize, flatten,
                binary: bool) -> Task:
    _check_dataset(dataset)
    cls = [_resolve_class(dataset, c) for c in classes]
    if len(set(cls)) != len(cls):
        raise ValueError(f"classes must be distinct, got {tuple(classes)}")
    if len(cls) < 2:
        raise ValueError(f"a task needs at least two classes, got {tuple(classes)}")
    for name, value, least in (("n_train", n_train, 1), ("n_test", n_test, 1), ("n_val", n_val, 0)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}"
                             + (" or None (every image)" if name != "n_val" else "")
                             + f", got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    rng = np.random.default_rng(seed)
    x_tr_all, y_tr_all = load(dataset, "train", root)
    x_te_all, y_te_all = load(dataset, "test", root)
    n_val = n_val or 0
    idx_val = _pick(y_tr_all, cls, n_val, rng, "validation", dataset) if n_val else np.zeros(0, int)
    idx_tr = _pick(y_tr_all, cls, n_train, rng, "train", dataset, exclude=idx_val)
    idx_te = _pick(y_te_all, cls, n_test, rng, "test", dataset)
    x_tr, stats = preprocess(x_tr_all[idx_tr], standardize=standardize, flatten=flatten)
    x_va, _ = preprocess(x_tr_all[idx_val], standardize=standardize, flatten=flatten, stats=stats)
    x_te, _ = preprocess(x_te_all[idx_te], standardize=standardize, flatten=flatten, stats=stats)
    lookup = {c: i for i, c in enumerate(cls)}

    def labels(y):
        k = np.array([lookup[int(v)] for v in y], dtype=np.int64)
        return (1.0 - 2.0 * k) if binary else k  # binary: first class -> +1, second -> -1

    return Task(
        dataset=dataset, classes=tuple(cls),
        class_names=tuple(CLASS_NAMES[dataset][c] for c in cls),
        X_train=x_tr, y_train=labels(y_tr_all[idx_tr]),
        X_val=x_va, y_val=labels(y_tr_all[idx_val]),
        X_test=x_te, y_test=labels(y_te_all[idx_te]),
        idx_train=idx_tr, idx_val=idx_val, idx_test=idx_te,
        config={"dataset": dataset, "classes": list(cls), "n_train": n_train, "n_test": n_test,
                    "n_val": n_val, "seed": seed, "standardize": standardize, "flatten": flatten},
    )


def binary_task(dataset: str, classes=(0, 1), n_train: int | None = None, n_test: int | None = None,
                n_val: int = 0, seed: int = 0, *, root=None, standardize: bool = False,
                flatten: bool = False) -> Task:
    """A binary task with labels ``+1`` (first class) and ``-1`` (second class).

    Args:
        dataset: ``"digits"``, ``"mnist"`` or ``"cifar10"``.
        classes: two distinct classes, as indices or names (``("cat", "dog")``).
        n_train, n_test: sizes, balanced between the classes; ``None`` takes every image of
            the two classes (then the classes keep their natural proportions).
        n_val: validation images carved from the training split, disjoint from ``X_train``.
        seed: the same seed gives the same images in the same order.
        root: data folder.
        standardize: per-channel standardisation with training-set statistics after scaling
            pixels to [-1, 1].
        flatten: return inputs of shape ``(N, H*W*C)`` instead of ``(N, H, W, C)``.

    Example:
        >>> t = binary_task("digits", classes=(3, 8), n_train=20, n_test=10)
        >>> t.X_train.shape, sorted(set(t.y_train.tolist()))
        ((20, 8, 8, 1), [-1.0, 1.0])
    """
    if len(tuple(classes)) != 2:
        raise ValueError(f"a binary task needs exactly two classes, got {tuple(classes)}")
    return _build_task(dataset, classes, n_train, n_test, n_val, seed, root, standardize, flatten,
                       binary=True)


def multiclass_task(dataset: str, classes=None, n_train: int | None = None,
                    n_test: int | None = None, n_val: int = 0, seed: int = 0, *, root=None,
                    standardize: bool = False, flatten: bool = False) -> Task:
    """A multi-class task with integer labels ``0..C-1`` (in the order of ``classes``).

    ``classes=None`` uses all ten classes. Sizes are balanced across classes when given;
    ``None`` takes every image. See :func:`binary_task` for the other arguments.
    """
    if classes is None:
        classes = tuple(range(len(CLASS_NAMES[_check_dataset(dataset)])))
    return _build_task(dataset, classes, n_train, n_test, n_val, seed, root, standardize, flatten,
                       binary=False)


def one_hot_centred(y: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """One-hot rows centred to mean zero per row (spec §1): ``Y = onehot - 1/C``, from the
    package's one label encoder (:func:`lantk._checks.encode_labels`)."""
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError("labels must be a 1-d array of integer class indices")
    if n_classes is not None and len(y) and y.max() >= int(n_classes):
        raise ValueError(f"labels must lie in 0..{int(n_classes) - 1}")
    return encode_labels(y, "y", require_two_classes=False, n_classes=n_classes,
                         multiclass=True).Y
