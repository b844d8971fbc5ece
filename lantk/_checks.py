"""Shared input validation for the kernel-regression and label-aware modules.

Every public function of :mod:`lantk.regression`, :mod:`lantk.label_aware` and
:mod:`lantk.elasticity` validates its inputs with these helpers, so bad input fails the same
way everywhere: a ``ValueError`` that names the argument and the problem. Nothing is fixed
silently (a slightly asymmetric ``H`` from round-off is symmetrised; anything beyond
round-off is an error).

Labels (spec §1) come in three forms, all turned into a :class:`Labels` by
:func:`encode_labels`:

* binary: a 1-d array whose values are exactly ``-1`` and ``+1`` (both present);
* multi-class: a 1-d array of integer class indices ``0..C-1`` (``C = max + 1``, at least two
  distinct classes present), as :func:`lantk.data.multiclass_task` gives them;
* multi-class: a 2-d one-hot matrix ``(n, C)`` (0/1 rows with a single 1), or the same matrix
  already centred (``onehot - 1/C``).

Multi-class labels are used as centred one-hot rows ``Y = onehot - 1/C`` (spec §1), so that
``T = Y Yᵀ`` has ``T_ij = 1 - 1/C`` for a shared class and ``-1/C`` otherwise.

Example:
    >>> import numpy as np
    >>> lab = encode_labels(np.array([1.0, -1.0, 1.0]))
    >>> lab.binary, lab.Y.tolist()
    (True, [1.0, -1.0, 1.0])
    >>> encode_labels(np.array([0, 2, 1])).Y.shape
    (3, 3)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Labels",
    "as_float_array",
    "check_choice",
    "check_finite",
    "check_int",
    "check_kernel_pair",
    "check_lengths",
    "check_real",
    "check_seed",
    "check_square_symmetric",
    "encode_labels",
]

# Relative asymmetry max|H - Hᵀ| / max|H| tolerated as round-off (then H is symmetrised).
SYMMETRY_RTOL = 1e-8
_BLOCK = 1 << 22  # elements per block when scanning big matrices (32 MiB of float64)


def as_float_array(a, name: str, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """``a`` as a float64 array (no copy when it already is one), checked for NaN/inf and ndim.

    Raises:
        ValueError: ``name`` has the wrong number of dimensions, is not numeric, or contains
            NaN or inf.
    """
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a numeric array ({e})") from None
    if ndim is not None:
        dims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in dims:
            want = " or ".join(f"{d}-d" for d in dims)
            raise ValueError(f"{name} must be {want}, got an array of shape {arr.shape}")
    check_finite(arr, name)
    return arr


def check_float_dtype(dtype, name: str = "dtype") -> np.dtype:
    """``dtype`` as ``np.float32`` or ``np.float64`` (a name or a type), else a ValueError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{name} must be float32 or float64, got {dtype!r}")
    return dt


def check_int(value, name: str, *, minimum: int | None = 1, allow_none: bool = False):
    """``value`` as a Python ``int``, checked to be an integer ``>= minimum``.

    Accepts Python and NumPy integers, and floats with an integral value (``4.0``); rejects
    ``bool``, strings, non-integral numbers (``2.5``), NaN and inf. ``minimum=None`` allows
    any integer; ``allow_none`` lets ``None`` through (returned as ``None``).

    Raises:
        ValueError: ``name`` is not an integer or is below ``minimum``.

    Example:
        >>> check_int(4.0, "width")
        4
        >>> check_int(0, "width")
        Traceback (most recent call last):
        ...
        ValueError: width must be a positive integer, got 0
    """
    if value is None and allow_none:
        return None
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value.item()   # a 0-d array (e.g. a NumPy scalar result)
    want = ("an integer" if minimum is None else "a positive integer" if minimum == 1 else
            "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}")
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be {want}, got {value!r}")
    if isinstance(value, (int, np.integer)):
        out = int(value)
    elif isinstance(value, (float, np.floating)) and np.isfinite(value) and \
            float(value).is_integer():
        out = int(value)
    else:
        raise ValueError(f"{name} must be {want}, got {value!r}")
    if minimum is not None and out < minimum:
        raise ValueError(f"{name} must be {want}, got {value!r}")
    return out


def check_rho(rho) -> float:
    """A ridge ``ρ``: a finite real number ``>= 0``, as a Python ``float``."""
    try:
        r = float(rho)
    except (TypeError, ValueError):
        raise ValueError(f"rho must be a real number >= 0, got {rho!r}") from None
    if not np.isfinite(r) or r < 0:
        raise ValueError(f"rho must be a finite number >= 0, got {rho!r}")
    return r


def check_real(value, name: str, *, positive: bool = False, nonnegative: bool = False,
               allow_none: bool = False, allow_inf: bool = False):
    """``value`` as a finite Python ``float`` (optionally ``> 0`` or ``>= 0``).

    ``allow_inf`` lets ``+inf`` through (e.g. a training time ``t = inf``); NaN never passes.

    Raises:
        ValueError: ``name`` is not a real number, is NaN or inf, or has the wrong sign.

    Example:
        >>> check_real("1e-3", "lr")
        Traceback (most recent call last):
        ...
        ValueError: lr must be a real number, got '1e-3'
    """
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        arr = np.asarray(value) if isinstance(value, np.ndarray) else None
        if arr is None or arr.ndim != 0 or arr.dtype.kind not in "iuf":
            raise ValueError(f"{name} must be a real number, got {value!r}")
    out = float(value)
    if np.isnan(out) or (np.isinf(out) and not (allow_inf and out > 0)):
        raise ValueError(f"{name} must be a finite number, got {out}")
    if positive and not out > 0:
        raise ValueError(f"{name} must be positive, got {out}")
    if nonnegative and not out >= 0:
        raise ValueError(f"{name} must be non-negative, got {out}")
    return out


def check_seed(seed, name: str = "seed", *, allow_generator: bool = False):
    """A NumPy-compatible seed: a non-negative integer or a sequence of them (or, with
    ``allow_generator``, a ``numpy.random.Generator``), returned unchanged (integers as
    ``int``).

    Raises:
        ValueError: anything else (negative, non-integer, string, ...), naming ``name``.
    """
    if allow_generator and isinstance(seed, np.random.Generator):
        return seed
    want = "a non-negative integer" + (" or a numpy Generator" if allow_generator else "")
    if isinstance(seed, (tuple, list)) and seed:
        try:
            return type(seed)(check_int(s, name, minimum=0) for s in seed)
        except ValueError:
            raise ValueError(f"{name} must be {want} (or a sequence of non-negative integers),"
                             f" got {seed!r}") from None
    try:
        return check_int(seed, name, minimum=0)
    except ValueError:
        raise ValueError(f"{name} must be {want}, got {seed!r}") from None


def pad_rows(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` padded to ``n`` rows by repeating its last row (a valid input, unlike zeros): for
    arrays whose padding rows fill a compiled program's fixed shape and are never used."""
    return x if len(x) == n else np.concatenate([x, np.repeat(x[-1:], n - len(x), axis=0)])


def flat_inputs(x, name: str, rows: str = "N") -> np.ndarray:
    """``(N, ...)`` inputs as a finite float64 ``(N, d)`` matrix (``N = 0`` allowed);
    ``rows`` names the first axis in the error message."""
    a = as_float_array(x, name)
    if a.ndim < 2:
        raise ValueError(f"{name} must have shape ({rows}, d) or ({rows}, H, W, C), got shape "
                         f"{a.shape}")
    d = int(np.prod(a.shape[1:]))
    if d == 0:
        raise ValueError(f"{name} has no features (shape {a.shape})")
    return a.reshape(a.shape[0], d)


def check_widths(widths, name: str = "widths") -> list:
    """A sequence of positive integer widths, as a list of ints (may be empty)."""
    try:
        return [check_int(m, name) for m in widths]
    except TypeError:
        raise ValueError(f"{name} must be a sequence of positive integers, got {widths!r}") \
            from None
    except ValueError:
        raise ValueError(f"{name} must hold positive integers, got {list(widths)}") from None


def check_choice(value, name: str, choices) -> str:
    """``value`` if it is one of the strings ``choices``, else a ``ValueError`` listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got "
                         f"{value!r}")
    return value


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` if ``arr`` contains NaN or inf (scans big arrays in blocks)."""
    flat = arr.reshape(-1) if arr.flags.c_contiguous else np.ravel(arr)
    for s in range(0, flat.size, _BLOCK):
        chunk = flat[s:s + _BLOCK]
        if not np.isfinite(chunk).all():
            kind = "NaN" if np.isnan(chunk).any() else "inf"
            raise ValueError(f"{name} contains {kind} values; every entry must be finite")


def check_square_symmetric(H: np.ndarray, name: str = "H_train") -> np.ndarray:
    """Check that ``H`` is a square, symmetric (to round-off) matrix; return it symmetric.

    Asymmetry up to ``SYMMETRY_RTOL * max|H|`` is treated as round-off and removed by
    ``(H + Hᵀ)/2`` (a copy); anything larger raises. Big matrices are scanned in blocks of
    rows, so no second n×n temporary is made for the check.

    Raises:
        ValueError: not 2-d, not square, or not symmetric.
    """
    if H.ndim != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {H.shape}")
    n = H.shape[0]
    if n == 0:
        raise ValueError(f"{name} is empty")
    scale = max(float(H.max()), -float(H.min()))  # max|H| without an n×n temporary
    tol = SYMMETRY_RTOL * scale
    rows = max(1, _BLOCK // n)
    worst = 0.0
    for s in range(0, n, rows):
        d = np.max(np.abs(H[s:s + rows] - H[:, s:s + rows].T))
        worst = max(worst, float(d))
    if worst > tol:
        raise ValueError(
            f"{name} must be symmetric: max|{name} - {name}ᵀ| = {worst:.3g} "
            f"(relative {worst / scale if scale else np.inf:.3g} > {SYMMETRY_RTOL:g})")
    if worst > 0.0:
        H = 0.5 * (H + H.T)
    return H


def check_lengths(name_a: str, len_a: int, name_b: str, len_b: int) -> None:
    """Raise ``ValueError`` when two lengths that must agree do not."""
    if len_a != len_b:
        raise ValueError(f"length mismatch: {name_a} has {len_a} rows but {name_b} has {len_b}")


def check_kernel_pair(H_train, H_test_train=None, *, name_train: str = "H_train",
                      name_test: str = "H_test_train"):
    """Validate a training kernel matrix (n×n) and optional test–train block (b×n).

    Returns:
        ``(H_train, H_test_train)`` as float64 arrays (``H_test_train`` may be ``None``).
    """
    H = as_float_array(H_train, name_train, ndim=2)
    H = check_square_symmetric(H, name_train)
    Ht = None
    if H_test_train is not None:
        Ht = as_float_array(H_test_train, name_test, ndim=2)
        if Ht.shape[1] != H.shape[0]:
            raise ValueError(
                f"length mismatch: {name_test} has {Ht.shape[1]} columns but {name_train} is "
                f"{H.shape[0]}×{H.shape[0]} ({name_test} must be (b, n))")
    return H, Ht


@dataclass(frozen=True)
class Labels:
    """Validated labels.

    Attributes:
        Y: ``(n,)`` float64 ``±1`` for binary labels, ``(n, C)`` centred one-hot otherwise.
        binary: whether the labels are binary ``±1``.
        index: ``(n,)`` int class index (binary: 0 for ``-1``, 1 for ``+1``).
        n_classes: 2 for binary, ``C`` otherwise.
    """

    Y: np.ndarray
    binary: bool
    index: np.ndarray
    n_classes: int

    def __len__(self) -> int:
        return len(self.index)

    def same_class(self, i, j) -> np.ndarray:
        """Boolean mask of whether pairs ``(i, j)`` (broadcast) share a class."""
        return self.index[i] == self.index[j]


def _is_integral(a: np.ndarray) -> bool:
    return np.issubdtype(a.dtype, np.integer) or bool(np.all(a == np.round(a)))


def encode_labels(y, name: str = "y", *, require_two_classes: bool = True,
                  n_classes: int | None = None, multiclass: bool | None = None) -> Labels:
    """Validate labels and return them as ``±1`` (binary) or centred one-hot (multi-class).

    Args:
        y: ``±1`` vector, integer class indices ``0..C-1``, or an ``(n, C)`` one-hot matrix
            (plain 0/1 or already centred).
        name: the argument's name, used in error messages.
        require_two_classes: raise when fewer than two classes are present (training labels);
            ``False`` for e.g. a few test labels.
        n_classes: the number of classes ``C`` for integer labels (default ``max + 1``).
        multiclass: ``True`` reads a 1-d vector as class indices even when its values are
            within ``{-1, +1}`` (e.g. test labels ``[1, 1]`` of a multi-class task);
            ``None`` decides from the values.

    Raises:
        ValueError: empty labels, NaN/inf, non-integer values, a single class, or a 1-d label
            vector that is neither ``±1`` nor non-negative class indices (e.g. ``{-1, 0, 1}``).
    """
    arr = np.asarray(y)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be numeric labels (±1 or class indices), got dtype "
                         f"{arr.dtype}")
    arr = arr.astype(np.float64) if arr.dtype == bool else arr
    if arr.ndim == 2 and arr.shape[1] == 1:
        raise ValueError(f"{name} has shape {arr.shape}: pass a 1-d label vector, or a one-hot "
                         f"matrix with one column per class")
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must be a 1-d label vector or an (n, C) one-hot matrix, got "
                         f"shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    check_finite(np.asarray(arr, dtype=np.float64), name)

    if arr.ndim == 2:
        return _encode_one_hot(arr.astype(np.float64), name, require_two_classes)

    values = np.unique(arr)
    if not _is_integral(values):
        bad = float(values[values != np.round(values)][0])
        raise ValueError(f"{name} must hold ±1 (binary) or integer class indices; got "
                         f"non-integer values such as {bad!r}")
    if not multiclass and np.all(np.isin(values, (-1, 1))):
        if require_two_classes and len(values) < 2:
            raise ValueError(f"{name} has a single class ({int(values[0]):+d} only): binary "
                             f"labels need both -1 and +1 (one class is not enough)")
        yb = np.where(arr > 0, 1.0, -1.0)
        return Labels(Y=yb, binary=True, index=(yb > 0).astype(np.int64), n_classes=2)
    if values.min() < 0:
        raise ValueError(
            f"{name} must be binary labels -1/+1 (exactly two classes) or non-negative class "
            f"indices 0..C-1; got values {_show(values)}")
    idx = arr.astype(np.int64)
    C = int(idx.max()) + 1 if n_classes is None else int(n_classes)
    if idx.max() >= C:
        raise ValueError(f"{name} has class index {int(idx.max())} >= n_classes = {C}")
    if require_two_classes and len(values) < 2:
        raise ValueError(f"{name} has a single class ({int(values[0])} only): at least two "
                         f"classes are needed (one class is not enough)")
    if C < 2:
        raise ValueError(f"{name}: at least two classes are needed, got n_classes = {C}")
    Y = np.full((len(idx), C), -1.0 / C)
    Y[np.arange(len(idx)), idx] += 1.0
    return Labels(Y=Y, binary=False, index=idx, n_classes=C)


def _encode_one_hot(arr: np.ndarray, name: str, require_two_classes: bool) -> Labels:
    n, C = arr.shape
    if C < 2:
        raise ValueError(f"{name}: a one-hot matrix needs at least two columns, got {C}")
    shifted = arr + 1.0 / C if np.all(np.abs(arr.sum(axis=1)) < 1e-8) else arr
    ok = np.all(np.isclose(shifted, 0.0, atol=1e-8) | np.isclose(shifted, 1.0, atol=1e-8))
    ok = ok and np.allclose(shifted.sum(axis=1), 1.0, atol=1e-8)
    if not ok:
        raise ValueError(f"{name} must be a one-hot matrix (0/1 rows with a single 1, or such "
                         f"rows centred by -1/C)")
    idx = np.argmax(shifted, axis=1).astype(np.int64)
    if require_two_classes and len(np.unique(idx)) < 2:
        raise ValueError(f"{name} has a single class (column {idx[0]} only): at least two "
                         f"classes are needed (one class is not enough)")
    Y = np.full((n, C), -1.0 / C)
    Y[np.arange(n), idx] += 1.0
    return Labels(Y=Y, binary=False, index=idx, n_classes=C)


def _show(values: np.ndarray, k: int = 6) -> str:
    shown = ", ".join(f"{v:g}" for v in values[:k])
    return "{" + shown + (", ..." if len(values) > k else "") + "}"


def no_progress(progress: bool) -> bool:
    """``disable=`` for a tqdm bar: off when ``progress`` is false, and also when
    ``TQDM_DISABLE`` is set (``lantk run`` sets it for chapter kernels, whose bars would end
    up in the rendered book); tqdm itself ignores that variable once ``disable`` is given."""
    return not progress or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")
