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

Example:
    >>> from lantk import data
    >>> x, y = data.load("digits", "train")
    >>> x.shape, x.dtype, int(y.max())
    ((1348, 8, 8, 1), dtype('uint8'), 9)
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lantk._checks import no_progress

__all__ = [
    "CIFAR10_CLASSES",
    "DATASETS",
    "Task",
    "available",
    "binary_task",
    "choose_dataset",
    "data_root",
    "fetch",
    "info",
    "load",
    "md5sum",
    "multiclass_task",
    "one_hot_centred",
    "preprocess",
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
CIFAR10_URLS = ("https://www.cs.toronto.edu/~kriz/",)


# --------------------------------------------------------------------------- roots and files
def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder datasets are read from: ``root``, else ``$LANTK_DATA_DIR``, else ``~/.cache/lantk``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("LANTK_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/lantk").expanduser()


def _check_dataset(name: str) -> str:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    return name


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


# --------------------------------------------------------------------------- readers
def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a uint8 array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(raw) - offset < count:
        raise ValueError(f"{path} is truncated: header announces {dims}, file holds fewer bytes")
    return np.frombuffer(raw, dtype=np.uint8, count=count, offset=offset).reshape(dims)


def _load_mnist(split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    img_path, lab_path = _required_files("mnist", split, root)
    images = _read_idx(img_path)
    labels = _read_idx(lab_path).astype(np.int64)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"MNIST {split}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images[..., None], labels


def _load_cifar10(split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for path in _required_files("cifar10", split, root):
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        ys.append(np.asarray(batch[b"labels"], dtype=np.int64))
    return np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys)


def _load_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = d.target.astype(np.int64)
    test = np.arange(len(labels)) % 4 == 3
    mask = test if split == "test" else ~test
    return images[mask], labels[mask]


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
    """
    _check_dataset(name)
    _check_split(split)
    if name == "digits":
        return _load_digits(split)
    base = data_root(root)
    missing = [p for p in _required_files(name, split, base) if not p.is_file()]
    if missing:
        raise _missing_error(name, split, base, missing)
    return _load_mnist(split, base) if name == "mnist" else _load_cifar10(split, base)


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
    """Which datasets are found under the root, with images per split and per class."""
    out = {}
    for name in DATASETS:
        entry = {}
        for split in SPLITS:
            try:
                counts = _class_counts(name, split, root)
            except FileNotFoundError as e:
                entry[split] = {"found": False, "error": str(e)}
                continue
            entry[split] = {"found": True, "images": int(counts.sum()),
                            "per_class": counts.tolist()}
        out[name] = entry
    return out


# --------------------------------------------------------------------------- fetching
def md5sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """MD5 hex digest of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _download_verified(url: str, dest_dir: Path, filename: str, md5: str, progress: bool) -> Path:
    """Download ``url`` into a temporary file in ``dest_dir`` and return it once its MD5 matches.

    A partial or corrupt download is deleted and raises; it is never returned.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{filename}.", suffix=".partial", dir=dest_dir)
    tmp = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            from tqdm import tqdm

            with tqdm(total=total, unit="B", unit_scale=True, desc=filename, disable=no_progress(progress)) as bar:
                for block in iter(lambda: resp.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
        from lantk.runner import _umask  # the runner imports no JAX at import time

        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; honour the umask
        got = md5sum(tmp)
        if got != md5:
            raise OSError(f"checksum mismatch for {filename} from {url}: md5 {got}, expected {md5}; "
                          "the download was discarded")
        return tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def fetch(name: str, root: str | os.PathLike | None = None, *, base_urls=None,
          files=None, progress: bool = True) -> Path:
    """Download a dataset's official archives, verify their MD5, and install them atomically.

    Files already present with the right checksum are kept. Each download goes to a temporary
    file, is checked against the official MD5 and only then renamed into place (CIFAR-10 is
    extracted into a temporary folder that is renamed as a whole), so an interrupted or
    corrupt download is never used.

    Args:
        name: ``"mnist"`` or ``"cifar10"`` (``"digits"`` ships with scikit-learn).
        root: data folder (see :func:`data_root`).
        base_urls: mirrors to try in order (``file://`` URLs work, which the tests use).
        files: for MNIST, a subset of the four archive names.
        progress: show a progress bar.

    Returns:
        The dataset folder.
    """
    _check_dataset(name)
    if name == "digits":
        raise ValueError("the digits dataset ships with scikit-learn; nothing to fetch")
    base = data_root(root)
    base.mkdir(parents=True, exist_ok=True)
    if name == "mnist":
        dest = base / MNIST_DIR
        dest.mkdir(exist_ok=True)
        wanted = list(files) if files is not None else list(MNIST_MD5)
        unknown = [f for f in wanted if f not in MNIST_MD5]
        if unknown:
            raise ValueError(f"unknown MNIST files {unknown}; known: {list(MNIST_MD5)}")
        for fname in wanted:
            target = dest / fname
            if target.is_file() and md5sum(target) == MNIST_MD5[fname]:
                continue
            tmp = _try_mirrors(base_urls or MNIST_URLS, fname, dest, MNIST_MD5[fname], progress)
            os.replace(tmp, target)
        return dest
    dest = base / CIFAR10_DIR
    if all((dest / f).is_file() for s in SPLITS for f in CIFAR10_FILES[s]):
        return dest
    tmp = _try_mirrors(base_urls or CIFAR10_URLS, CIFAR10_ARCHIVE, base, CIFAR10_MD5[CIFAR10_ARCHIVE],
                       progress)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".cifar10.", dir=base))
        with tarfile.open(tmp, "r:gz") as tar:
            tar.extractall(staging, filter="data")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staging / CIFAR10_DIR, dest)
        shutil.rmtree(staging, ignore_errors=True)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _try_mirrors(base_urls, filename, dest_dir, md5, progress) -> Path:
    errors = []
    for url in base_urls:
        try:
            return _download_verified(url.rstrip("/") + "/" + filename, dest_dir, filename, md5, progress)
        except (OSError, ValueError) as e:  # try the next mirror, report all at the end
            errors.append(f"{url}: {e}")
    raise OSError(f"could not fetch {filename}:\n  " + "\n  ".join(errors))


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
    """One-hot rows centred to mean zero per row (spec §1): ``Y = onehot - 1/C``."""
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError("labels must be a 1-d array of integer class indices")
    C = int(n_classes if n_classes is not None else y.max() + 1)
    if y.min() < 0 or y.max() >= C:
        raise ValueError(f"labels must lie in 0..{C - 1}")
    Y = np.zeros((len(y), C))
    Y[np.arange(len(y)), y] = 1.0
    return Y - 1.0 / C
