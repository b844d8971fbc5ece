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

For ``n`` beyond what a dense float64 factor fits in host memory, :func:`solve` has an
iterative path (``method="cg"`` or ``"minres"``, chosen by ``method="auto"``): Jacobi-
preconditioned conjugate gradients (SciPy) for a positive definite ``H + ρI``, MINRES for
an indefinite one. ``H`` may then be a :class:`numpy.memmap` (a tile store's array from
:func:`lantk.kernels.kernel_matrix` ``(store=...)``): each product streams it in row blocks.

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

import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse.linalg as spla
from scipy.linalg import lapack

from lantk._checks import (SYMMETRY_RTOL, as_float_array, check_finite, check_int,
                           check_kernel_pair, check_lengths, check_real, check_rho,
                           encode_labels)
from lantk.tiles import host_available_bytes

__all__ = [
    "ConvergenceError",
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


class ConvergenceError(RuntimeError):
    """An iterative solve (``method="cg"`` or ``"minres"``) stopped at ``maxiter`` iterations
    without reaching ``tol``; the message names the relative residual it reached."""


_check_rho = check_rho  # the shared validator (lantk._checks)

METHODS = ("auto", "cholesky", "cg", "minres")
"""The ``method`` values of :func:`solve`."""

DENSE_MEMORY_FRACTION = 0.8
"""``method="auto"`` factors densely when two float64 copies of ``H`` (the factor, and the LU
fallback's copy) fit in this share of the host's available memory."""

CROSSOVER_N = 4000
"""Measured by ``benchmarks/bench_solve.py`` on the 2-core CI CPU (shared, so ±50 %; see the
README): on the ReLU NTK of random unit-norm inputs, ``tol=1e-10``, CG (120-160 iterations)
and Cholesky take about the same time at ``n = 2000`` and CG is faster from about this
``n`` (2.3 s vs 2.8 s at 4000, 2.3 s vs 5.8 s at 8000 for ``rho = 1e-2 · mean diag``).
``method="auto"`` does not switch here: it chooses by memory only, since CG's iteration
count grows with the condition number (``rho = 0`` can need thousands) and Cholesky's cost
does not, and the dense solve estimates the condition number and adds a jitter when needed."""


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
    the matrix first tried (before any jitter; NaN for an iterative solve, which does not
    estimate it), ``method`` ``"cholesky"`` (positive definite), ``"lu"`` (indefinite or
    nearly singular), ``"cg"`` or ``"minres"``; for the iterative methods ``iterations`` and
    ``residual``, the relative residual ``‖B − (H + ρI)X‖_F / ‖B‖_F`` reached."""

    rho: float
    jitter: float
    rcond: float
    method: str
    iterations: int | None = None
    residual: float | None = None

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


def solve(H, B, rho: float = 0.0, *, method: str = "auto", tol: float = 1e-10,
          maxiter: int | None = None, return_info: bool = False, name: str = "H",
          stacklevel: int = 2):
    """``(H + ρI)⁻¹ B`` for a symmetric kernel matrix ``H`` and any right-hand side ``B``
    (``(n,)`` or ``(n, k)``), float64.

    ``method="cholesky"`` is the dense solve: Cholesky when ``H + ρI`` is positive definite,
    LU otherwise, and a small jitter with a :class:`SingularKernelWarning` when it is
    numerically singular. ``"cg"`` is conjugate gradients (:func:`scipy.sparse.linalg.cg`)
    with a Jacobi (diagonal) preconditioner, for a positive definite ``H + ρI``; ``"minres"``
    (:func:`scipy.sparse.linalg.minres`) also solves an indefinite one (a label-aware
    ``K + λZ`` may be). The iterative methods never hold more than one row block of ``H``
    (about 64 MiB) in float64 at a time: ``H`` may be a :class:`numpy.memmap`, e.g. a tile
    store's array, which every product reads once in row blocks; the columns of ``B`` are
    solved together (one pass over ``H`` per iteration for all of them).

    ``"auto"`` chooses the dense solve when two float64 ``n × n`` copies (the factor and the
    LU fallback's) fit in :data:`DENSE_MEMORY_FRACTION` of the host's available memory (from
    /proc/meminfo, else ``os.sysconf``; dense when it cannot be read), else CG, or MINRES
    when a diagonal entry of ``H + ρI`` is not positive (then it is not positive definite).
    Measured on a 2-core CPU (``benchmarks/bench_solve.py``, README), CG with
    ``tol=1e-10`` overtakes Cholesky from about ``n = 4000`` (:data:`CROSSOVER_N`) on a
    well-conditioned ``H + ρI``; "auto" still switches only when memory demands it, since
    CG's iterations grow with the condition number. Pass ``method="cg"`` to use it earlier.

    Args:
        H: ``(n, n)`` symmetric matrix (an array or, for the iterative methods, a memmap).
        B: right-hand side with ``n`` rows.
        rho: ridge ``ρ >= 0``.
        method: ``"auto"``, ``"cholesky"``, ``"cg"`` or ``"minres"`` (above).
        tol: iterative methods: stop when ``‖B − (H + ρI)X‖_F <= tol · ‖B‖_F``; ``0 < tol <
            1``. The error of ``X`` is then up to about ``cond(H + ρI) · tol`` relative.
            Ignored by the dense solve.
        maxiter: iterative methods: at most this many iterations (one pass over ``H``
            each); default ``10 n`` (SciPy's for CG). Not converging within it is a
            :class:`ConvergenceError`.
        return_info: also return the :class:`SolveInfo` (whether a jitter was needed; the
            iterations and residual of an iterative solve).
        name: what ``H`` is called in errors and warnings (e.g. ``"H_train"``).
        stacklevel: of the :class:`SingularKernelWarning`, counted from the caller of
            ``solve`` (as :func:`warnings.warn`'s).

    Raises:
        ValueError: NaN/inf, a non-square or non-symmetric ``H``, ``B`` of the wrong length,
            ``rho < 0``, an unknown ``method``, ``tol`` not in (0, 1), ``maxiter < 1``, or
            ``method="cg"`` for a matrix with a non-positive diagonal entry.
        ConvergenceError: an iterative method did not reach ``tol`` in ``maxiter``
            iterations (the message names the residual reached).

    Example:
        >>> import numpy as np
        >>> solve(np.eye(2) * 2.0, np.array([1.0, 4.0])).round(12).tolist()
        [0.5, 2.0]
        >>> x, info = solve(np.eye(2) * 2.0, np.array([1.0, 4.0]), method="cg",
        ...                 return_info=True)
        >>> x.round(12).tolist(), info.method, info.iterations
        ([0.5, 2.0], 'cg', 1)
    """
    rho = _check_rho(rho)
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got "
                         f"{method!r}")
    tol = check_real(tol, "tol", positive=True)
    if not tol < 1:
        raise ValueError(f"tol must be below 1 (a relative residual), got {tol}")
    maxiter = check_int(maxiter, "maxiter", allow_none=True)
    shape = np.shape(H)
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {shape}")
    if method == "auto":
        method = "cholesky" if _dense_fits(shape[0]) else "iterative"
    if method == "cholesky":
        H, _ = check_kernel_pair(H, None, name_train=name)
    else:
        H = _check_streamed(H, name)
    B = as_float_array(B, "B", ndim=(1, 2))
    check_finite(B, "B")
    check_lengths(name, H.shape[0], "B", B.shape[0])
    if method == "cholesky":
        return _solve_validated(H, B, rho, name=name, info=return_info,
                                stacklevel=stacklevel + 1)
    out, info = _solve_iterative(H, B, rho, method, tol, maxiter, name)
    return (out, info) if return_info else out


def _dense_fits(n: int) -> bool:
    """Whether two float64 ``n × n`` copies fit in DENSE_MEMORY_FRACTION of available memory
    (True when the available memory cannot be read: the dense solve is the default)."""
    available = host_available_bytes()
    return available is None or 2 * 8 * n * n <= DENSE_MEMORY_FRACTION * available


_STREAM_ELEMENTS = 1 << 23  # float64 elements per row block of a streamed product (64 MiB)
_SQUARE = 2048  # side of the square blocks the symmetry check compares


def _check_streamed(H, name: str):
    """Check ``H`` (an array or memmap, any real dtype) for the iterative path without
    copying it: finite, square, symmetric to ``SYMMETRY_RTOL · max|H|``, read in square
    blocks (each block is compared with its mirror image, so ``H`` is read once). Round-off
    asymmetry is left as it is (the products use ``H`` as given)."""
    if not isinstance(H, np.ndarray):
        H = as_float_array(H, name, ndim=2)
    if not (np.issubdtype(H.dtype, np.floating) or np.issubdtype(H.dtype, np.integer)):
        raise ValueError(f"{name} must be a real numeric array, got dtype {H.dtype}")
    n = H.shape[0]
    if n == 0:
        raise ValueError(f"{name} is empty")
    scale = worst = 0.0
    for a in range(0, n, _SQUARE):
        for b in range(a, n, _SQUARE):
            upper = np.asarray(H[a:a + _SQUARE, b:b + _SQUARE], dtype=np.float64)
            lower = (upper if a == b else
                     np.asarray(H[b:b + _SQUARE, a:a + _SQUARE], dtype=np.float64))
            for block in (upper, lower):
                if not np.isfinite(block).all():
                    kind = "NaN" if np.isnan(block).any() else "inf"
                    raise ValueError(f"{name} contains {kind} values; every entry must be "
                                     "finite")
                scale = max(scale, float(np.abs(block).max()))
            worst = max(worst, float(np.abs(upper - lower.T).max()))
    if worst > SYMMETRY_RTOL * scale:
        raise ValueError(
            f"{name} must be symmetric: max|{name} - {name}ᵀ| = {worst:.3g} "
            f"(relative {worst / scale if scale else np.inf:.3g} > {SYMMETRY_RTOL:g})")
    return H


def _solve_iterative(H, B: np.ndarray, rho: float, method: str, tol: float,
                     maxiter: int | None, name: str):
    """Jacobi-preconditioned CG or MINRES on ``(H + ρI) X = B``, all columns of ``B`` as one
    block-diagonal system (one streamed pass over ``H`` per iteration)."""
    n = H.shape[0]
    k = 1 if B.ndim == 1 else B.shape[1]
    diag = np.asarray(H.diagonal(), dtype=np.float64) + rho
    positive = bool(np.all(diag > 0))
    if method == "iterative":
        method = "cg" if positive else "minres"
    if method == "cg" and not positive:
        i = int(np.argmin(diag))
        raise ValueError(
            f"{name} + rho*I has a non-positive diagonal entry ({diag[i]:.3g} at {i}), so it is "
            "not positive definite, as conjugate gradients need: use method='minres' (for an "
            "indefinite matrix) or a larger rho")
    rows = max(1, _STREAM_ELEMENTS // n)

    def product(v: np.ndarray) -> np.ndarray:
        X = v.reshape(n, k)
        out = np.empty((n, k))
        for s in range(0, n, rows):
            out[s:s + rows] = np.asarray(H[s:s + rows], dtype=np.float64) @ X
        out += rho * X
        return out.reshape(-1)

    size = n * k
    A = spla.LinearOperator((size, size), matvec=product, dtype=np.float64)
    weight = 1.0 / np.abs(diag) if np.all(diag != 0) else None
    M = (None if weight is None else
         spla.LinearOperator((size, size), matvec=lambda v: (v.reshape(n, k)
                                                            * weight[:, None]).reshape(-1),
                             dtype=np.float64))
    b = B.reshape(-1)
    maxiter = 10 * n if maxiter is None else maxiter
    count = [0]

    def tick(_):
        count[0] += 1

    solver = spla.cg if method == "cg" else spla.minres
    norm_b = float(np.linalg.norm(b))
    x, residual = None, math.inf
    # SciPy stops on its own residual estimate (MINRES's is a bound in another norm, often a
    # few times optimistic): restart from the last iterate, asking for 10x less each time,
    # until the true residual meets tol, as long as each restart improves it
    inner = tol
    while count[0] < maxiter:
        x, _status = solver(A, b, x0=x, rtol=inner, maxiter=maxiter - count[0], M=M,
                            callback=tick)
        last, residual = residual, (float(np.linalg.norm(b - product(x))) / norm_b
                                    if norm_b else 0.0)
        if residual <= tol or not residual < last:
            break
        inner = max(inner / 10, np.finfo(np.float64).eps)
    if not residual <= tol:
        hint = (" If it is indefinite (a label-aware kernel K + λZ may be), use "
                "method='minres'." if method == "cg" else "")
        raise ConvergenceError(
            f"{method} did not converge on {name} + rho*I (rho={rho:g}): after {count[0]} "
            f"iterations the relative residual is {residual:.3g}, above tol={tol:g}. Raise "
            f"maxiter (now {maxiter}), loosen tol, or pass rho > 0 (a better-conditioned "
            f"matrix).{hint}")
    out = x.reshape(B.shape)
    return out, SolveInfo(rho, 0.0, float("nan"), method, count[0], residual)


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
