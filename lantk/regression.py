"""Kernel regression (spec §1): ``f(x*) = K(x*, X) (H + ρ I)⁻¹ y`` in float64.

Binary labels ``y ∈ {−1, +1}`` give a decision vector ``(b,)`` (predict ``sign f``);
multi-class labels (integer class indices ``0..C-1`` or a one-hot matrix) are regressed as
centred one-hot rows ``Y = onehot − 1/C`` and give ``(b, C)`` (predict ``argmax f``).

``ρ = 0`` is the setting of Chen, He & Su (2020), "Label-Aware Neural Tangent Kernel: Toward
Better Generalization and Local Elasticity", NeurIPS 2020. The solve uses a Cholesky
factorisation (``scipy.linalg.cho_factor``). When ``H + ρI`` is not positive definite (a
label-aware kernel ``K + λZ`` may be indefinite) it falls back to an LU factorisation. In
both cases the reciprocal condition number is estimated (LAPACK ``pocon``/``gecon``, O(n²));
when it is below ``n · machine-eps`` the matrix is *numerically singular* and a jitter
``δ I`` is added (``δ = 1e-10 · mean diag``, raised ×100 until it is well-conditioned) with a
:class:`SingularKernelWarning` naming ``δ``. Pass ``rho > 0`` to regularise on purpose.

Example:
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [3.0]])
    >>> H = np.exp(-(X - X.T) ** 2)
    >>> y = np.array([1.0, -1.0, 1.0])
    >>> f = kernel_regression(H, H, y)          # interpolates the training labels
    >>> np.round(f, 6).tolist()
    [1.0, -1.0, 1.0]
    >>> accuracy(y, f)
    1.0
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg as sla
from scipy.linalg import lapack

from dataclasses import dataclass

from lantk._checks import (as_float_array, check_finite, check_kernel_pair, check_lengths,
                           check_rho, encode_labels)

__all__ = [
    "SingularKernelWarning",
    "SolveInfo",
    "accuracy",
    "kernel_regression",
    "kernel_solve",
    "predict_labels",
    "solve",
]


class SingularKernelWarning(RuntimeWarning, UserWarning):
    """``H + ρI`` was numerically singular; a jitter was added to its diagonal.

    A ``RuntimeWarning`` (like SciPy's ``LinAlgWarning``) and a ``UserWarning``, so filters on
    either catch it."""


_check_rho = check_rho  # the shared validator (lantk._checks)


def _shifted_copy(H: np.ndarray, shift: float) -> np.ndarray:
    """``H + shift·I`` as a new Fortran-ordered array (what LAPACK wants). ``H`` is symmetric,
    so ``Hᵀ`` (a free view, Fortran-ordered when ``H`` is C-ordered) is copied with a plain
    memory copy instead of a transposing one."""
    A = np.array(H.T if H.flags.c_contiguous else H, dtype=np.float64, order="F", copy=True)
    if shift:
        A.flat[:: A.shape[0] + 1] += shift
    return A


def _one_norm(A: np.ndarray) -> float:
    """``‖A‖₁`` (= ``‖A‖∞`` for symmetric ``A``), in column blocks (no n×n temporary)."""
    n = A.shape[0]
    step = max(1, (1 << 22) // max(n, 1))
    return max(float(np.abs(A[:, s:s + step]).sum(axis=0).max()) for s in range(0, n, step))


def _factor(H: np.ndarray, shift: float):
    """Factor ``H + shift·I``: Cholesky if positive definite, else LU. Returns the factor and
    LAPACK's estimate of the reciprocal condition number (1-norm)."""
    A = _shifted_copy(H, shift)
    anorm = _one_norm(A)
    try:
        c, lower = sla.cho_factor(A, lower=True, overwrite_a=True, check_finite=False)
        rcond, _ = lapack.dpocon(c, anorm, uplo="L")
        return ("chol", (c, lower)), float(rcond)
    except np.linalg.LinAlgError:
        pass
    A = _shifted_copy(H, shift)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sla.LinAlgWarning)
        lu, piv = sla.lu_factor(A, overwrite_a=True, check_finite=False)
    if not np.all(np.isfinite(np.diag(lu))) or np.any(np.diag(lu) == 0):
        return ("lu", (lu, piv)), 0.0
    rcond, _info = lapack.dgecon(lu, anorm, norm="1")
    return ("lu", (lu, piv)), float(rcond)


def _apply(kind_factor, B: np.ndarray) -> np.ndarray:
    kind, fac = kind_factor
    if kind == "chol":
        return sla.cho_solve(fac, B, check_finite=False)
    return sla.lu_solve(fac, B, check_finite=False)


@dataclass(frozen=True)
class SolveInfo:
    """How ``(H + ρI)⁻¹ B`` was solved: ``jitter`` is the diagonal shift added beyond ``ρ``
    (0 when none was needed), ``rcond`` LAPACK's estimate of the reciprocal condition number of
    the matrix first tried (before any jitter), ``method`` ``"cholesky"`` (positive definite)
    or ``"lu"`` (indefinite or nearly singular)."""

    rho: float
    jitter: float
    rcond: float
    method: str

    @property
    def regularised(self) -> bool:
        return self.jitter > 0


def _solve_validated(H: np.ndarray, B: np.ndarray, rho: float, name: str = "H_train",
                     stacklevel: int = 3, info: bool = False):
    """``(H + ρI)⁻¹ B`` for validated float64 inputs, with the jitter fallback; with
    ``info=True`` also the :class:`SolveInfo`."""
    n = H.shape[0]
    threshold = n * np.finfo(np.float64).eps
    fac, rcond = _factor(H, rho)
    if rcond >= threshold:
        out = _apply(fac, B)
        return (out, SolveInfo(rho, 0.0, rcond, _METHOD[fac[0]])) if info else out
    with np.errstate(over="ignore"):
        scale = float(np.mean(np.abs(np.diag(H)))) or float(np.max(np.abs(H))) or 1.0
    if not np.isfinite(scale):
        raise ValueError(f"{name} has entries too large to regularise (mean |diagonal| "
                         f"overflows float64): rescale the kernel (or lower c)")
    first_rcond = rcond
    jitter = 1e-10 * scale
    for _ in range(5):  # 1e-10, 1e-8, ..., 1e-2 times the scale
        fac, rcond = _factor(H, rho + jitter)
        if rcond >= threshold:
            warnings.warn(
                f"{name} + rho*I (rho={rho:g}) is numerically singular (estimated reciprocal "
                f"condition number {first_rcond:.2e} < n*eps = {threshold:.2e}); added a jitter "
                f"{jitter:.2e} to the diagonal ({jitter / scale:.0e} × mean|diag|). Pass rho > 0 "
                f"to regularise explicitly.", SingularKernelWarning, stacklevel=stacklevel)
            out = _apply(fac, B)
            return (out, SolveInfo(rho, jitter, first_rcond, _METHOD[fac[0]])) if info else out
        jitter *= 100.0
    raise ValueError(
        f"{name} + rho*I is singular even with a jitter of 1e-2 × mean|diag| (reciprocal "
        f"condition number {rcond:.2e}); the kernel matrix is degenerate")


_METHOD = {"chol": "cholesky", "lu": "lu"}


def solve(H, B, rho: float = 0.0, *, return_info: bool = False, name: str = "H",
          stacklevel: int = 2):
    """``(H + ρI)⁻¹ B`` for a symmetric kernel matrix ``H`` and any right-hand side ``B``
    (``(n,)`` or ``(n, k)``), float64: Cholesky when ``H + ρI`` is positive definite, LU
    otherwise, and a small jitter with a :class:`SingularKernelWarning` when it is
    numerically singular.

    Args:
        H: ``(n, n)`` symmetric matrix.
        B: right-hand side with ``n`` rows.
        rho: ridge ``ρ >= 0``.
        return_info: also return the :class:`SolveInfo` (whether a jitter was needed).
        name: what ``H`` is called in errors and warnings (e.g. ``"H_train"``).
        stacklevel: of the :class:`SingularKernelWarning`, counted from the caller of
            ``solve`` (as :func:`warnings.warn`'s).

    Example:
        >>> import numpy as np
        >>> solve(np.eye(2) * 2.0, np.array([1.0, 4.0])).round(12).tolist()
        [0.5, 2.0]
    """
    rho = _check_rho(rho)
    H, _ = check_kernel_pair(H, None, name_train=name)
    B = as_float_array(B, "B", ndim=(1, 2))
    check_finite(B, "B")
    check_lengths(name, H.shape[0], "B", B.shape[0])
    return _solve_validated(H, B, rho, name=name, info=return_info, stacklevel=stacklevel + 1)


def kernel_solve(H_train, y, rho: float = 0.0) -> np.ndarray:
    """Regression coefficients ``α = (H + ρI)⁻¹ y`` (``(n,)`` binary, ``(n, C)`` multi-class).

    Args:
        H_train: ``(n, n)`` symmetric kernel matrix on the training inputs.
        y: ``±1`` labels, integer class indices ``0..C-1`` or a one-hot ``(n, C)`` matrix
            (multi-class labels are used centred, ``onehot − 1/C``).
        rho: ridge ``ρ >= 0``.

    Raises:
        ValueError: see :mod:`lantk._checks` (NaN/inf, shapes, labels), or ``rho < 0``.

    Example:
        >>> import numpy as np
        >>> kernel_solve(np.eye(2) * 2.0, np.array([1.0, -1.0])).round(12).tolist()
        [0.5, -0.5]
    """
    rho = _check_rho(rho)
    H, _ = check_kernel_pair(H_train)
    lab = encode_labels(y, "y")
    check_lengths("H_train", H.shape[0], "y", len(lab))
    return _solve_validated(H, lab.Y, rho)


def kernel_regression(H_train, H_test_train, y, rho: float = 0.0, *,
                      return_info: bool = False):
    """Kernel regression predictions ``f = K(X*, X) (H + ρI)⁻¹ y`` (spec §1).

    Args:
        H_train: ``(n, n)`` kernel on the training inputs, symmetric.
        H_test_train: ``(b, n)`` kernel between test and training inputs.
        y: training labels: ``±1`` (binary), integer class indices ``0..C-1``, or a one-hot
            ``(n, C)`` matrix (multi-class, regressed as centred one-hot rows).
        rho: ridge ``ρ >= 0`` (default 0, the paper's setting). A numerically singular
            ``H + ρI`` gets a small jitter and a :class:`SingularKernelWarning`.

        return_info: also return the :class:`SolveInfo`: whether the solve had to add a
            jitter (``info.regularised``), and the reciprocal condition number.

    Returns:
        ``(b,)`` float64 decision values for binary labels, ``(b, C)`` for multi-class;
        with ``return_info``, ``(f, info)``.

    Raises:
        ValueError: NaN/inf, a non-square or non-symmetric ``H_train``, ``H_test_train`` with
            the wrong number of columns, labels of the wrong length, a single class, binary
            labels other than ``±1``, or ``rho < 0``.

    Example:
        >>> import numpy as np
        >>> H = np.array([[2.0, 1.0], [1.0, 2.0]])
        >>> kernel_regression(H, np.array([[1.0, 0.0]]), np.array([1.0, -1.0])).round(4).tolist()
        [1.0]
    """
    rho = _check_rho(rho)
    H, Ht = check_kernel_pair(H_train, H_test_train)
    if Ht is None:
        raise ValueError("H_test_train is required (pass H_train to get fitted values)")
    lab = encode_labels(y, "y")
    check_lengths("H_train", H.shape[0], "y", len(lab))
    if return_info:
        alpha, info = _solve_validated(H, lab.Y, rho, info=True)
        return Ht @ alpha, info
    alpha = _solve_validated(H, lab.Y, rho)
    return Ht @ alpha


def predict_labels(f) -> np.ndarray:
    """Labels from decision values: ``sign f`` as ``±1`` floats for ``(b,)`` (``f = 0`` gives
    ``+1``), ``argmax f`` as int class indices for ``(b, C)``.

    Example:
        >>> import numpy as np
        >>> predict_labels(np.array([0.3, -2.0])).tolist(), predict_labels(np.eye(2)).tolist()
        ([1.0, -1.0], [0, 1])
    """
    f = as_float_array(f, "f", ndim=(1, 2))
    if f.ndim == 1:
        return np.where(f >= 0, 1.0, -1.0)
    return np.argmax(f, axis=1)


def accuracy(y_true, f) -> float:
    """Fraction of correct predictions of decision values ``f``.

    Args:
        y_true: ``±1`` labels when ``f`` is ``(b,)``; integer class indices ``0..C-1`` or a
            one-hot matrix when ``f`` is ``(b, C)``.
        f: decision values from :func:`kernel_regression`.

    Raises:
        ValueError: lengths differ, NaN/inf, or labels that do not match the form of ``f``.

    Example:
        >>> import numpy as np
        >>> accuracy(np.array([1, -1, 1]), np.array([0.5, 0.2, 2.0]))
        0.6666666666666666
    """
    f = as_float_array(f, "f", ndim=(1, 2))
    yt = np.asarray(y_true)
    check_lengths("y_true", yt.shape[0] if yt.ndim else 1, "f", f.shape[0])
    if f.ndim == 1:
        if yt.ndim != 1:
            raise ValueError("f is (b,) binary decision values, so y_true must be a 1-d ±1 "
                             f"vector; got shape {yt.shape}")
        lab = encode_labels(yt, "y_true", require_two_classes=False)
        if not lab.binary:
            raise ValueError("f is (b,) binary decision values, but y_true are not ±1 labels")
        return float(np.mean(predict_labels(f) == lab.Y))
    C = f.shape[1]
    if yt.ndim == 2:
        lab = encode_labels(yt, "y_true", require_two_classes=False)
        idx = lab.index
    else:
        yt = as_float_array(yt, "y_true", ndim=1)
        if np.any(yt != np.round(yt)) or yt.min() < 0:
            raise ValueError("f is (b, C) multi-class decision values, so y_true must be "
                             "integer class indices 0..C-1")
        idx = yt.astype(np.int64)
    if idx.max() >= C:
        raise ValueError(f"y_true has class index {int(idx.max())} but f has only {C} columns")
    return float(np.mean(np.argmax(f, axis=1) == idx))
