"""Label-aware kernels ``K + λZ`` and LANTK-HR, the higher-order-regression estimates of ``Z``.

Spec §3-§4 (Chen, He & Su 2020, "Label-Aware Neural Tangent Kernel: Toward Better
Generalization and Local Elasticity", NeurIPS 2020, Section 4). ``Z(x, x')`` estimates the
oracle ``y(x) y(x')`` by regressing the *label-product* ``T_ij = y_i y_j`` (multi-class:
``T = Y Yᵀ`` with centred one-hot ``Y``) on features of the pair ``(x_i, x_j)`` over all n²
training pairs.

* :func:`oracle_Z` -- the oracle ``y_a y_bᵀ`` (an upper bound: it uses test labels).
* :func:`kr_estimate` -- KR-V1 / KR-V2: Nadaraya-Watson on the scalar pair feature
  ``h = K(x, x')``. The weight ``ω = σ² − (h − H_ij)²`` is a quadratic in ``h``, so ``Z`` is
  the ratio of two quadratics in ``h`` whose six coefficients need only the moments
  ``Σ H_ijᵖ T_ij`` and ``Σ H_ijᵖ`` (p = 0, 1, 2). For ``T = y yᵀ``,
  ``Σ H_ijᵖ T_ij = yᵀ (H^∘p) y``: O(n²) once, then O(1) per pair, O(n² + b·n) in all.
  KR-V2 replaces ``T`` by ``α αᵀ`` with ``α = H⁻¹ y`` (one extra solve).
* :func:`fjlt_estimate` -- FJLT-V1 / FJLT-V2: linear least squares of ``T_ij`` on 10 (V1) or
  20 (V2) pair features (see :data:`FEATURES_V1`), solved exactly by streaming the normal
  equations, or by sketch-and-solve with a fast Johnson-Lindenstrauss transform.
* :func:`lantk_kernel` / :func:`scale_lambda` -- ``K_LA = K + λZ`` with
  ``λ = c · mean|H_train| / mean|Z_train|``, the same ``λ`` for the train and test blocks.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3)); y = np.where(X[:, 0] > 0, 1.0, -1.0)
    >>> H = X @ X.T + 1.0
    >>> Z_tr, Z_te = kr_estimate(H, H[:5], y, variant="v1")
    >>> Z_tr.shape, Z_te.shape
    ((40, 40), (5, 40))
    >>> K_tr, K_te = lantk_kernel(H, Z_tr, 0.5, H_test_train=H[:5], Z_test=Z_te)
    >>> bool(np.isclose(np.abs(K_tr - H).mean(), 0.5 * np.abs(H).mean()))
    True
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.spatial.distance import cdist

from lantk._checks import (
    Labels,
    as_float_array,
    check_kernel_pair,
    check_lengths,
    check_square_symmetric,
    encode_labels,
)
from lantk.regression import _check_rho, _solve_validated

__all__ = [
    "FEATURES_V1",
    "FEATURES_V2",
    "KernelSpectrum",
    "PairRegression",
    "fjlt_estimate",
    "kernel_spectrum",
    "kr_estimate",
    "lantk_kernel",
    "oracle_Z",
    "pair_features",
    "psd_projection",
    "scale_lambda",
    "sketch_rows",
]

_ROWS_BLOCK_ELEMS = 1 << 22  # elements per row block of an n×n pass (32 MiB of float64)

FEATURES_V1 = ("K", "dot", "cos", "sqdist", "normprod", "sin", "angle", "rbf", "pearson", "l1")
"""The 10 pair features of FJLT-V1 (spec §4), in column order: ``K(x,x')``, ``xᵀx'``,
``cos ∠``, ``‖x − x'‖²``, ``‖x‖‖x'‖``, ``sin ∠``, ``∠``, ``exp(−‖x − x'‖²/s²)``, the Pearson
correlation of the two pixel vectors, ``‖x − x'‖₁``."""
N_PCA = 5
FEATURES_V2 = FEATURES_V1 + tuple(f"pca_prod{k}" for k in range(N_PCA)) + tuple(
    f"pca_absdiff{k}" for k in range(N_PCA))
"""FJLT-V2: the V1 features plus ``z ∘ z'`` and ``|z − z'|`` for the top-5 PCA coordinates
``z`` (fit on the training inputs)."""


# ----------------------------------------------------------------------------- helpers
def _check_variant(variant, allowed=("v1", "v2")) -> str:
    v = str(variant).lower()
    if v not in allowed:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(allowed)}")
    return v


def _row_blocks(n_rows: int, n_cols: int):
    step = max(1, _ROWS_BLOCK_ELEMS // max(n_cols, 1))
    for s in range(0, n_rows, step):
        yield s, min(n_rows, s + step)


def _labels_joint(y_a, y_b, name_a="y_a", name_b="y_b"):
    """Encode two label arrays consistently (same binary/multi-class form and same C)."""
    la = encode_labels(y_a, name_a, require_two_classes=False)
    lb = encode_labels(y_b, name_b, require_two_classes=False)
    if la.binary and lb.binary:
        return la, lb
    if np.asarray(y_a).ndim == 2 or np.asarray(y_b).ndim == 2:
        if la.binary or lb.binary or la.n_classes != lb.n_classes:
            raise ValueError(f"{name_a} and {name_b} must have the same classes (one-hot "
                             f"matrices with the same number of columns)")
        return la, lb
    # multi-class class indices; a side whose values happen to be within {-1, 1} (e.g. test
    # labels [1, 1]) is read as class indices too, and C is taken from both sides
    C = int(max(np.max(y_a), np.max(y_b))) + 1
    return (encode_labels(y_a, name_a, require_two_classes=False, n_classes=C, multiclass=True),
            encode_labels(y_b, name_b, require_two_classes=False, n_classes=C, multiclass=True))


def oracle_Z(y_a, y_b) -> np.ndarray:
    """The oracle ``Z = y_a y_bᵀ`` (spec §3), ``(len(y_a), len(y_b))``.

    Binary ``±1`` labels give the outer product; multi-class labels (class indices or
    one-hot) give ``Y_a Y_bᵀ`` with centred one-hot rows (``1 − 1/C`` for a shared class,
    ``−1/C`` otherwise; ``C`` is taken from both arguments together). It needs the test labels:
    an upper bound, never a method.

    Example:
        >>> import numpy as np
        >>> oracle_Z(np.array([1, -1]), np.array([1, 1, -1])).tolist()
        [[1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]]
    """
    la, lb = _labels_joint(y_a, y_b)
    if la.binary:
        return np.outer(la.Y, lb.Y)
    return la.Y @ lb.Y.T


def _label_weights(lab: Labels, H: np.ndarray, variant: str, rho: float) -> np.ndarray:
    """The vectors ``W`` with ``T = W Wᵀ``: ``y`` (V1) or ``α = (H + ρI)⁻¹ y`` (V2);
    ``(n,)`` or ``(n, C)``."""
    if variant == "v1":
        return lab.Y
    return _solve_validated(H, lab.Y, rho, stacklevel=5)


def _moments(H: np.ndarray, W: np.ndarray):
    """``(Σ H_ijᵖ T_ij, Σ H_ijᵖ)`` for p = 0, 1, 2 with ``T = W Wᵀ``, in one O(n²) pass."""
    W2 = W if W.ndim == 2 else W[:, None]
    n = H.shape[0]
    sT = np.zeros(3)
    s = np.zeros(3)
    colsum = W2.sum(axis=0)
    sT[0] = float(colsum @ colsum)          # Σ_ij T_ij = Σ_c (Σ_i W_ic)²
    s[0] = float(n) * n
    for a, b in _row_blocks(n, n):
        Hb = H[a:b]
        HW = Hb @ W2
        sT[1] += float(np.sum(HW * W2[a:b]))
        s[1] += float(Hb.sum())
        H2 = Hb * Hb
        sT[2] += float(np.sum((H2 @ W2) * W2[a:b]))
        s[2] += float(H2.sum())
    return sT, s


def _nw_ratio(Hm: np.ndarray, num: tuple, den: tuple, out: np.ndarray) -> float:
    """``out = (n0 + n1 h + n2 h²) / (d0 + d1 h + d2 h²)`` elementwise over ``h = Hm``, in row
    blocks; returns the smallest denominator."""
    rows, cols = Hm.shape
    dmin = np.inf
    for a, b in _row_blocks(rows, cols):
        h = Hm[a:b]
        t = np.multiply(h, num[2])
        t += num[1]
        t *= h
        t += num[0]
        d = np.multiply(h, den[2])
        d += den[1]
        d *= h
        d += den[0]
        dmin = min(dmin, float(d.min()))
        np.divide(t, d, out=out[a:b])
    return dmin


def _kr_coefficients(H: np.ndarray, lab: Labels, variant: str, rho: float):
    """The two quadratics in ``h`` of KR-V1/V2: ``Z(h) = num(h) / den(h)`` (coefficients of
    ``1, h, h²``), from the moments ``Σ H_ijᵖ T_ij`` and ``Σ H_ijᵖ``."""
    W = _label_weights(lab, H, variant, rho)
    sT, s = _moments(H, W)
    hmax, hmin = float(H.max()), float(H.min())
    sigma2 = (hmax - hmin) ** 2
    if sigma2 == 0.0:
        raise ValueError("H_train is constant (max H = min H), so σ² = 0 and the "
                         "Nadaraya-Watson weights vanish")
    num = (sigma2 * sT[0] - sT[2], 2.0 * sT[1], -sT[0])
    den = (sigma2 * s[0] - s[2], 2.0 * s[1], -s[0])
    return num, den


def kr_estimate(H_train, H_test_train=None, y=None, variant: str = "v1", *, rho: float = 0.0):
    """KR-V1 / KR-V2 estimates of ``y(x) y(x')`` (spec §4), Nadaraya-Watson on ``h = K(x,x')``.

    ``Z(x, x') = Σ_ij ω(h, H_ij) T_ij / Σ_ij ω(h, H_ij)`` with ``h = K(x, x')``,
    ``ω(h, H_ij) = σ² − (h − H_ij)²`` and ``σ² = (max H_train − min H_train)²``. Expanding the
    square, numerator and denominator are quadratics in ``h`` whose coefficients are the
    moments ``Σ H_ijᵖ T_ij`` and ``Σ H_ijᵖ`` (p = 0, 1, 2); with ``T = W Wᵀ`` the first is
    ``Σ_c W_cᵀ (H^∘p) W_c`` (O(n²), no n×n ``T`` is formed). V1: ``W = y`` (``T = y yᵀ``);
    V2: ``W = α = (H + ρI)⁻¹ y`` (``T = α αᵀ``), which costs one Cholesky solve. Multi-class
    labels use centred one-hot ``Y`` (``T = Y Yᵀ``, ``α = H⁻¹ Y`` summed over classes).

    Args:
        H_train: ``(n, n)`` symmetric kernel on the training inputs.
        H_test_train: ``(b, n)`` test–train kernel, or ``None`` (then ``Z_test`` is ``None``).
        y: training labels (``±1``, class indices ``0..C-1`` or one-hot).
        variant: ``"v1"`` or ``"v2"``.
        rho: ridge for ``α`` in V2 (default 0; a singular ``H`` gets a jitter with a warning).

    Returns:
        ``(Z_train, Z_test)``: ``(n, n)`` with ``h = H_train`` entries (symmetric) and
        ``(b, n)`` with ``h = H_test_train`` entries.

    Raises:
        ValueError: bad shapes, NaN/inf, asymmetric ``H_train``, bad labels, a constant
            ``H_train`` (then ``σ² = 0`` and the weights vanish), unknown variant.

    Example:
        >>> import numpy as np
        >>> H = np.array([[2.0, 0.5, -0.5], [0.5, 2.0, 0.0], [-0.5, 0.0, 2.0]])
        >>> Z, _ = kr_estimate(H, None, np.array([1.0, 1.0, -1.0]))
        >>> bool(np.allclose(Z, Z.T)), Z.shape
        (True, (3, 3))
    """
    variant = _check_variant(variant)
    if y is None:
        raise ValueError("y (the training labels) is required")
    rho = _check_rho(rho)
    H, Ht = check_kernel_pair(H_train, H_test_train)
    lab = encode_labels(y, "y")
    check_lengths("H_train", H.shape[0], "y", len(lab))
    num, den = _kr_coefficients(H, lab, variant, rho)
    n = H.shape[0]
    Z_train = np.empty((n, n))
    _nw_ratio(H, num, den, Z_train)
    Z_test = None
    if Ht is not None:
        Z_test = np.empty(Ht.shape)
        dmin = _nw_ratio(Ht, num, den, Z_test)
        if dmin <= 1e-12 * abs(den[0]):
            warnings.warn(
                "some test kernel values lie so far outside the training range that the "
                "Nadaraya-Watson weights sum to <= 0; Z_test is unreliable there",
                RuntimeWarning, stacklevel=2)
    return Z_train, Z_test


# ----------------------------------------------------------------------------- λ and K + λZ
def scale_lambda(H_train, Z_train, c: float) -> float:
    """``λ = c · mean|H_train| / mean|Z_train|`` (spec §3).

    Example:
        >>> import numpy as np
        >>> scale_lambda(np.full((2, 2), 4.0), np.full((2, 2), -2.0), 0.5)
        1.0
    """
    try:
        c = float(c)
    except (TypeError, ValueError):
        raise ValueError(f"c must be a real number, got {c!r}") from None
    if not np.isfinite(c) or c < 0:
        raise ValueError(f"c must be a finite number >= 0 (the weight of the label-aware term), "
                         f"got {c!r}")
    H = as_float_array(H_train, "H_train", ndim=2)
    Z = as_float_array(Z_train, "Z_train", ndim=2)
    if Z.shape != H.shape:
        raise ValueError(f"Z_train has shape {Z.shape} but H_train has shape {H.shape}")
    mz = float(np.mean(np.abs(Z)))
    if mz == 0.0:
        raise ValueError("Z_train is identically zero, so λ = c · mean|H| / mean|Z| is undefined")
    lam = c * float(np.mean(np.abs(H))) / mz
    if not np.isfinite(lam):
        raise ValueError(f"λ = c · mean|H| / mean|Z| = {lam} is not finite (c={c:g}): lower c")
    return lam


@dataclass(frozen=True)
class KernelSpectrum:
    """The extreme eigenvalues of a symmetric training block ``K_tr + λZ_tr``.

    ``relative_min`` is ``λ_min / λ_max`` (negative: the matrix is not a kernel matrix, i.e.
    not positive semi-definite); ``condition`` is ``|λ|_max / |λ|_min`` (inf when singular).
    """

    min: float
    max: float
    relative_min: float
    condition: float
    lam: float = float("nan")

    @property
    def psd(self) -> bool:
        return self.relative_min >= -1e-10


def kernel_spectrum(K, lam: float = float("nan")) -> KernelSpectrum:
    """Smallest and largest eigenvalue of a symmetric matrix, its relative smallest eigenvalue
    and condition number (one symmetric eigendecomposition, float64).

    Example:
        >>> import numpy as np
        >>> kernel_spectrum(np.diag([2.0, -1.0])).relative_min
        -0.5
    """
    K = check_square_symmetric(as_float_array(K, "K", ndim=2), "K")
    ev = np.linalg.eigvalsh(K)
    top = float(np.max(np.abs(ev)))
    low = float(np.min(np.abs(ev)))
    return KernelSpectrum(min=float(ev[0]), max=float(ev[-1]),
                          relative_min=float(ev[0] / top) if top > 0 else 0.0,
                          condition=top / low if low > 0 else float("inf"), lam=float(lam))


def psd_projection(Z_train, Z_test=None, tol: float = 1e-12):
    """``Z`` made positive semi-definite consistently for training and test rows.

    With ``Z_train = V diag(s) Vᵀ``, the training block keeps the positive part of the
    spectrum, ``Z⁺ = V₊ diag(s₊) V₊ᵀ``, and the test rows are projected onto the same
    eigenvectors, ``Z_test V₊ V₊ᵀ``. This is the Nyström extension of the feature map
    ``φ(x) = diag(s₊)^(-1/2) V₊ᵀ Z(X, x)``, so train and test blocks are blocks of one Gram
    matrix: ``K + λZ⁺`` is then positive semi-definite whenever ``K`` is and ``λ ≥ 0``.

    Args:
        Z_train: ``(n, n)`` symmetric estimate of ``y yᵀ``.
        Z_test: optional ``(b, n)`` test-train block.
        tol: eigenvalues below ``tol · max|s|`` count as zero.

    Returns:
        ``Z⁺_train``, or ``(Z⁺_train, Z⁺_test)`` when ``Z_test`` is given.

    Example:
        >>> import numpy as np
        >>> Z = np.array([[1.0, 2.0], [2.0, 1.0]])          # eigenvalues 3 and -1
        >>> np.linalg.eigvalsh(psd_projection(Z)).round(12).tolist()
        [0.0, 3.0]
    """
    Z = check_square_symmetric(as_float_array(Z_train, "Z_train", ndim=2), "Z_train")
    s, V = np.linalg.eigh(Z)
    keep = s > tol * max(float(np.max(np.abs(s))), np.finfo(np.float64).tiny)
    Vp = V[:, keep]
    Zp = (Vp * s[keep]) @ Vp.T
    Zp = (Zp + Zp.T) / 2
    if Z_test is None:
        return Zp
    Zt = as_float_array(Z_test, "Z_test", ndim=2)
    if Zt.shape[1] != Z.shape[0]:
        raise ValueError(f"Z_test has {Zt.shape[1]} columns but Z_train is {Z.shape[0]}×{Z.shape[0]}")
    return Zp, (Zt @ Vp) @ Vp.T


def lantk_kernel(H_train, Z_train, c: float, H_test_train=None, Z_test=None, *,
                 lam: float | None = None, psd: bool = False, return_spectrum: bool = False):
    """The label-aware kernel ``K_LA = K + λZ`` (spec §3), the same ``λ`` for both blocks.

    Args:
        H_train: ``(n, n)`` label-agnostic kernel on the training inputs (symmetric).
        Z_train: ``(n, n)`` estimate of ``y yᵀ`` on the training pairs (symmetric).
        c: strength; ``λ = c · mean|H_train| / mean|Z_train|`` (:func:`scale_lambda`).
        H_test_train, Z_test: optional ``(b, n)`` test–train blocks (give both or neither).
        lam: use this ``λ`` instead of computing it from ``c`` (then ``c`` is ignored).
        psd: replace ``Z`` by its positive semi-definite part, consistently for the test rows
            (:func:`psd_projection`), so that ``K + λZ`` is a kernel matrix. Off by default:
            the paper's method uses ``Z`` as estimated, which can make ``K + λZ`` indefinite.
        return_spectrum: also return the :class:`KernelSpectrum` of the training block.

    Returns:
        ``K_train`` when no test blocks are given, else ``(K_train, K_test)``; with
        ``return_spectrum``, the spectrum is appended (``(K_train, spectrum)`` or
        ``(K_train, K_test, spectrum)``).

    Example:
        >>> import numpy as np
        >>> H = np.array([[2.0, 1.0], [1.0, 2.0]]); Z = np.array([[1.0, -1.0], [-1.0, 1.0]])
        >>> lantk_kernel(H, Z, 1.0).tolist()       # λ = 1.5 / 1 = 1.5
        [[3.5, -0.5], [-0.5, 3.5]]
    """
    H, Ht = check_kernel_pair(H_train, H_test_train)
    Z = check_square_symmetric(as_float_array(Z_train, "Z_train", ndim=2), "Z_train")
    if Z.shape != H.shape:
        raise ValueError(f"Z_train has shape {Z.shape} but H_train has shape {H.shape}")
    if (Ht is None) != (Z_test is None):
        raise ValueError("give both H_test_train and Z_test, or neither")
    if lam is None:
        lam = scale_lambda(H, Z, c)
    else:
        lam = float(lam)
        if not np.isfinite(lam) or lam < 0:
            raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
    Zt = None
    if Ht is not None:
        Zt = as_float_array(Z_test, "Z_test", ndim=2)
        if Zt.shape != Ht.shape:
            raise ValueError(f"Z_test has shape {Zt.shape} but H_test_train has shape {Ht.shape}")
    if psd:
        Z, Zt = psd_projection(Z, Zt) if Zt is not None else (psd_projection(Z), None)
    with np.errstate(over="ignore", invalid="ignore"):
        K_train = H + lam * Z
        K_test = None if Zt is None else Ht + lam * Zt
    for name, K in (("K_train", K_train), ("K_test", K_test)):
        if K is not None and not np.all(np.isfinite(K)):
            raise ValueError(f"{name} = H + λZ has non-finite entries (λ = {lam:g}): lower c")
    out = (K_train,) if K_test is None else (K_train, K_test)
    if return_spectrum:
        out = (*out, kernel_spectrum(K_train, lam))
    return out[0] if len(out) == 1 else out


# ----------------------------------------------------------------------------- FJLT features
def _flatten(X, name: str) -> np.ndarray:
    arr = as_float_array(X, name)
    if arr.ndim < 2:
        raise ValueError(f"{name} must have shape (n, d) or (n, ...) images, got {arr.shape}")
    return arr.reshape(arr.shape[0], -1)


def _sym(A: np.ndarray) -> np.ndarray:
    A += A.T
    A *= 0.5
    return A


class _Side:
    """Per-input quantities of one side of the pairs (norms, centred-normalised rows, PCA)."""

    def __init__(self, X: np.ndarray, pca_mean=None, pca_V=None):
        self.X = X
        self.sqn = np.einsum("ij,ij->i", X, X)
        self.norm = np.sqrt(self.sqn)
        Xc = X - X.mean(axis=1, keepdims=True)
        cn = np.linalg.norm(Xc, axis=1)
        self.U = Xc / np.where(cn > 0, cn, 1.0)[:, None]  # constant vectors: correlation 0
        self.pca_mean, self.pca_V = pca_mean, pca_V
        self.z = None if pca_V is None else (X - pca_mean) @ pca_V


def _top_eigh(S: np.ndarray, k: int):
    m = S.shape[0]
    k = min(k, m)
    return sla.eigh(S, subset_by_index=[m - k, m - 1], driver="evr")


def _pca(X: np.ndarray, k: int):
    """Top-``k`` principal directions of the rows of ``X`` (fit on these rows)."""
    mean = X.mean(axis=0)
    Xc = X - mean
    n, d = Xc.shape
    if n <= d:
        evals, evecs = _top_eigh(Xc @ Xc.T, k)
        order = np.argsort(evals)[::-1]
        evals, U = evals[order], evecs[:, order]
        keep = evals > 1e-12 * max(evals.max(initial=0.0), 1e-300)
        V = Xc.T @ (U[:, keep] / np.sqrt(evals[keep]))
    else:
        evals, evecs = _top_eigh(Xc.T @ Xc, k)
        order = np.argsort(evals)[::-1]
        evals, V = evals[order], evecs[:, order]
        keep = evals > 1e-12 * max(evals.max(initial=0.0), 1e-300)
        V = V[:, keep]
    return mean, V


@dataclass
class _PairBase:
    """Everything needed to produce the features of pair ``(a, j)`` for flat indices
    ``t = a · n_b + j``: matrices over (a, j) raveled, and per-row quantities."""

    H: np.ndarray   # (m, n) kernel block
    G: np.ndarray   # (m, n) xᵀx'
    P: np.ndarray   # (m, n) Pearson correlation
    D1: np.ndarray  # (m, n) L1 distance
    a: _Side
    b: _Side
    s2: float
    n_b: int
    p: int

    @property
    def n_pairs(self) -> int:
        return self.H.size

    def features(self, t0: int, t1: int) -> np.ndarray:
        """Features of flat pairs ``t0 <= t < t1``, ``(t1 − t0, p)`` float64 (F-ordered).

        Computed for the whole rows covering the range (broadcasting row and column
        quantities, no gathers), then cut to the range.
        """
        n = self.n_b
        r0, r1 = t0 // n, -(-t1 // n)
        m = (r1 - r0) * n
        out = np.empty((self.p, m))  # one contiguous row per feature
        na, nb = self.a.norm[r0:r1, None], self.b.norm[None, :]
        g = self.G[r0:r1]
        nn = na * nb
        cos = np.divide(g, nn, out=np.zeros_like(g), where=nn > 0)
        np.clip(cos, -1.0, 1.0, out=cos)
        sq = self.a.sqn[r0:r1, None] + self.b.sqn[None, :] - 2.0 * g
        np.maximum(sq, 0.0, out=sq)
        # with unit vectors u, u': ‖u − u'‖ = 2 sin(θ/2), ‖u + u'‖ = 2 cos(θ/2), so
        # θ = 2 arctan2(‖u − u'‖, ‖u + u'‖) (stable near 0 and π) and sin θ = ‖u − u'‖‖u + u'‖/2
        um = np.sqrt(np.maximum(2.0 - 2.0 * cos, 0.0))
        up = np.sqrt(np.maximum(2.0 + 2.0 * cos, 0.0))
        out[0] = self.H[r0:r1].reshape(-1)
        out[1] = g.reshape(-1)
        out[2] = cos.reshape(-1)
        out[3] = sq.reshape(-1)
        out[4] = nn.reshape(-1)
        np.multiply(um, up, out=out[5].reshape(r1 - r0, n))
        out[5] *= 0.5
        np.arctan2(um, up, out=out[6].reshape(r1 - r0, n))
        out[6] *= 2.0
        np.multiply(sq, -1.0 / self.s2, out=out[7].reshape(r1 - r0, n))
        np.exp(out[7], out=out[7])
        out[8] = self.P[r0:r1].reshape(-1)
        out[9] = self.D1[r0:r1].reshape(-1)
        if self.p > 10:
            k = (self.p - 10) // 2
            za, zb = self.a.z[r0:r1], self.b.z
            for c in range(k):
                np.multiply(za[:, c, None], zb[None, :, c], out=out[10 + c].reshape(r1 - r0, n))
                d = out[10 + k + c].reshape(r1 - r0, n)
                np.subtract(za[:, c, None], zb[None, :, c], out=d)
                np.abs(d, out=d)
        s = t0 - r0 * n
        return out[:, s:s + (t1 - t0)].T


def _l1(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``‖a − b‖₁`` for all row pairs (scipy's C ``cdist``, split in two threads)."""
    if A.shape[0] * B.shape[0] * A.shape[1] < 5e7:
        return cdist(A, B, "cityblock")
    from concurrent.futures import ThreadPoolExecutor

    half = A.shape[0] // 2
    with ThreadPoolExecutor(2) as ex:
        parts = list(ex.map(lambda s: cdist(A[s], B, "cityblock"),
                            [slice(0, half), slice(half, None)]))
    return np.vstack(parts)


def _build_bases(Xtr, Htr, Xte, Hte, variant):
    n = Xtr.shape[0]
    pca_mean = pca_V = None
    if variant == "v2":
        pca_mean, pca_V = _pca(Xtr, N_PCA)
    tr = _Side(Xtr, pca_mean, pca_V)
    G = _sym(Xtr @ Xtr.T)
    s2 = _mean_sqdist(Xtr)
    p = 10 + (2 * pca_V.shape[1] if variant == "v2" else 0)
    base_tr = _PairBase(np.ascontiguousarray(Htr), G, _sym(tr.U @ tr.U.T), _l1(Xtr, Xtr), tr,
                        tr, s2, n, p)
    base_te = None if Xte is None else _test_base(base_tr, Xte, Hte)
    return base_tr, base_te


def _test_base(base_tr: _PairBase, Xte: np.ndarray, Hte: np.ndarray) -> _PairBase:
    """Pairs (test row, training row), with the training side's PCA and RBF scale."""
    tr = base_tr.b
    te = _Side(Xte, tr.pca_mean, tr.pca_V)
    return _PairBase(np.ascontiguousarray(Hte), Xte @ tr.X.T, te.U @ tr.U.T, _l1(Xte, tr.X), te,
                     tr, base_tr.s2, base_tr.n_b, base_tr.p)


def _mean_sqdist(X: np.ndarray) -> float:
    """Mean squared distance over distinct pairs: (2n Σ‖x‖² − 2‖Σx‖²) / (n(n−1))."""
    n = X.shape[0]
    ssum = X.sum(axis=0)
    s2 = (2.0 * n * float(np.einsum("ij,ij->", X, X)) - 2.0 * float(ssum @ ssum)) / max(
        n * (n - 1), 1)
    if not s2 > 0:
        raise ValueError("X_train has identical rows only: the mean squared distance is 0")
    return s2


def pair_features(X_a, X_b, H_ab, variant: str = "v1", *, X_train=None) -> np.ndarray:
    """The pair features of FJLT-V1/V2 for all pairs ``(X_a[i], X_b[j])``, ``(m, n, p)``.

    Materialises every pair: meant for small inputs, tests and inspection. ``X_train``
    (default ``X_b``) fixes the RBF scale ``s²`` (mean squared distance of distinct training
    pairs) and the PCA fit; features are raw (not standardised). Column order:
    :data:`FEATURES_V1` / :data:`FEATURES_V2`.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(8, 6))
        >>> pair_features(X, X, X @ X.T, "v2").shape
        (8, 8, 20)
    """
    variant = _check_variant(variant)
    Xb = _flatten(X_b, "X_b")
    Xa = _flatten(X_a, "X_a")
    Xtr = Xb if X_train is None else _flatten(X_train, "X_train")
    H = as_float_array(H_ab, "H_ab", ndim=2)
    if H.shape != (Xa.shape[0], Xb.shape[0]):
        raise ValueError(f"H_ab has shape {H.shape}, expected {(Xa.shape[0], Xb.shape[0])}")
    pca = _pca(Xtr, N_PCA) if variant == "v2" else (None, None)
    p = 10 + (2 * pca[1].shape[1] if variant == "v2" else 0)
    side_a, side_b = _Side(Xa, *pca), _Side(Xb, *pca)
    pb = _PairBase(np.ascontiguousarray(H), Xa @ Xb.T, side_a.U @ side_b.U.T,
                   cdist(Xa, Xb, "cityblock"), side_a, side_b, _mean_sqdist(Xtr), Xb.shape[0], p)
    return pb.features(0, pb.n_pairs).reshape(Xa.shape[0], Xb.shape[0], p)


def _pair_T(lab: Labels, t0: int, t1: int, n: int) -> np.ndarray:
    i, j = np.divmod(np.arange(t0, t1), n)
    if lab.binary:
        return lab.Y[i] * lab.Y[j]
    return (lab.index[i] == lab.index[j]) - 1.0 / lab.n_classes


# ----------------------------------------------------------------------------- FJLT solvers
@dataclass
class PairRegression:
    """The fitted pair regression ``T_ij ≈ β₀ + Σ_k β_k (φ_k − μ_k)/s_k``.

    Attributes:
        coef: ``(1 + p,)`` intercept ``β₀`` then ``β`` for the standardised features (0 for a
            feature dropped because it is constant over the training pairs).
        mean, scale: training-pair mean and standard deviation of each feature.
        active: features used (non-constant).
        names: feature names.
        solver: ``"exact"`` or ``"fjlt"``; ``k``: sketch rows (``None`` for exact).
        rss: residual sum of squares ``Σ (T_ij − Z_ij)²`` over the n² training pairs.
        tss: ``Σ (T_ij − mean T)²``.
    """

    coef: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    active: np.ndarray
    names: tuple
    solver: str
    k: int | None = None
    rss: float = float("nan")
    tss: float = float("nan")
    info: dict = field(default_factory=dict)
    _base: object = field(default=None, repr=False, compare=False)

    def predict(self, phi: np.ndarray) -> np.ndarray:
        """``Z`` for raw features ``phi`` (``(..., p)``)."""
        w = np.where(self.active, self.coef[1:], 0.0) / np.where(self.active, self.scale, 1.0)
        return phi @ w + (self.coef[0] - float(self.mean @ w))

    def predict_pairs(self, X_test, H_test_train) -> np.ndarray:
        """``Z(x*, x_j)`` for new inputs against the training inputs of the fit, ``(b, n)``.

        Uses the training side of the fit (PCA, RBF scale, standardisation): each row depends
        on its own test input only.
        """
        if self._base is None:
            raise ValueError("this fit holds no training inputs (made by hand?)")
        tr = self._base.b
        Xte = _flatten(X_test, "X_test")
        if Xte.shape[1] != tr.X.shape[1]:
            raise ValueError(f"X_test has {Xte.shape[1]} features per input but X_train has "
                             f"{tr.X.shape[1]}")
        Ht = as_float_array(H_test_train, "H_test_train", ndim=2)
        if Ht.shape != (Xte.shape[0], tr.X.shape[0]):
            raise ValueError(f"H_test_train has shape {Ht.shape}, expected "
                             f"{(Xte.shape[0], tr.X.shape[0])}")
        base = _test_base(self._base, Xte, Ht)
        Z = np.empty(Ht.shape)
        zf = Z.reshape(-1)
        for t0, t1 in _chunks(base.n_pairs, base.p):
            zf[t0:t1] = self.predict(base.features(t0, t1))
        return Z


def _chunks(N: int, p: int):
    step = max(1, (1 << 23) // max(p + 2, 1))  # ~64 MiB of features per chunk
    for s in range(0, N, step):
        yield s, min(N, s + step)


def _stats(base: _PairBase, lab: Labels):
    """Mean and standard deviation of each feature and of ``T`` over all training pairs
    (Chan et al.'s pairwise merge of per-chunk moments: no cancellation)."""
    p = base.p
    cnt = 0
    mean = np.zeros(p + 1)
    m2 = np.zeros(p + 1)
    for t0, t1 in _chunks(base.n_pairs, p):
        F = np.empty((t1 - t0, p + 1))
        F[:, :p] = base.features(t0, t1)
        F[:, p] = _pair_T(lab, t0, t1, base.n_b)
        nb = t1 - t0
        mb = F.mean(axis=0)
        F -= mb
        m2b = np.einsum("ij,ij->j", F, F)
        tot = cnt + nb
        delta = mb - mean
        mean += delta * nb / tot
        m2 += m2b + delta ** 2 * cnt * nb / tot
        cnt = tot
    std = np.sqrt(m2 / cnt)
    return mean[:p], std[:p], mean[p], m2[p]


def _active(mean, std):
    return std > 1e-10 * np.maximum(np.abs(mean), 1e-300)


def _standardised(base, lab, t0, t1, mean, std, active):
    F = base.features(t0, t1)[:, active]
    F -= mean[active]
    F /= std[active]
    return F, _pair_T(lab, t0, t1, base.n_b)


def _solve_exact(base, lab, mean, std, active, tmean):
    """Stream the normal equations ``ΦᵀΦ β = ΦᵀT`` of the standardised features."""
    q = int(active.sum())
    A = np.zeros((q, q))
    r = np.zeros(q)
    N = base.n_pairs
    for t0, t1 in _chunks(N, base.p):
        F, T = _standardised(base, lab, t0, t1, mean, std, active)
        A += F.T @ F
        r += F.T @ (T - tmean)
    A /= N
    r /= N
    # the standardised normal matrix is a correlation matrix (unit diagonal): a minimum-norm
    # least-squares solve drops directions with eigenvalue < 1e-12 (exactly collinear features)
    beta, *_ = sla.lstsq(A, r, cond=1e-12, lapack_driver="gelsd")
    return np.concatenate([[tmean], beta]), {"normal_matrix_cond": float(np.linalg.cond(A))}


def _fwht(x: np.ndarray) -> np.ndarray:
    """Unnormalised Walsh-Hadamard transform (Sylvester order) along axis 0 of ``(L, c)``.

    ``H_L`` is a Kronecker product of small dense Hadamard matrices, applied axis by axis with
    matrix products (BLAS), which beats log₂L memory-bound butterfly passes in NumPy.
    """
    L, c = x.shape
    lg = L.bit_length() - 1
    if lg == 0:
        return x.copy()
    parts = [6] * (lg // 6) + ([lg % 6] if lg % 6 else [])
    y = np.ascontiguousarray(x.T)  # (c, L): every factor is then one (batched) matrix product
    done = 1
    for b in parts:
        d = 1 << b
        after = L // (done * d)
        Hd = _hadamard(d)
        if after == 1:
            y = y.reshape(-1, d) @ Hd  # Hd is symmetric
        else:
            y = np.matmul(Hd, y.reshape(-1, d, after))
        done *= d
    return y.reshape(c, L).T


_HADAMARD_CACHE: dict = {}


def _hadamard(d: int) -> np.ndarray:
    if d not in _HADAMARD_CACHE:
        _HADAMARD_CACHE[d] = sla.hadamard(d).astype(np.float64)
    return _HADAMARD_CACHE[d]


@dataclass
class _SketchPlan:
    """The random FJLT ``S = P · (H_N/√N) · D`` of Ailon & Chazelle (2009), ``k × N``.

    ``D``: random signs (drawn per block); ``H_N``: Walsh-Hadamard over the padded length
    ``N = 2^m``; ``P``: sparse Gaussian, ``s`` nonzeros per row at uniform positions, each
    ``g · √(N / (k s))`` with ``g ~ N(0, 1)`` (so ``E‖Sx‖² = ‖x‖²``).
    """

    N: int
    L: int
    k: int
    s: int
    rows: np.ndarray    # (k·s,) row of each nonzero of P
    pos: np.ndarray     # (k·s,) column of each nonzero (0 <= pos < N)
    val: np.ndarray     # (k·s,) value
    seed: int

    @classmethod
    def make(cls, n_rows: int, k: int, seed: int, L_max: int = 1 << 18, s: int | None = None):
        N = 1 << max(0, (n_rows - 1).bit_length())
        L = min(N, L_max)
        if s is None:
            s = int(min(N, max(1, math.ceil(math.log(N) ** 2)))) if N > 1 else 1
        rng = np.random.default_rng([seed, 2])
        rows = np.repeat(np.arange(k), s)
        pos = rng.integers(0, N, size=k * s)
        val = rng.standard_normal(k * s) * math.sqrt(N / (k * s))
        return cls(N, L, k, s, rows, pos, val, seed)

    def signs(self, block: int) -> np.ndarray:
        return np.random.default_rng([self.seed, 1, block]).choice(
            np.array([-1.0, 1.0]), size=self.L)

    def dense(self, n_rows: int) -> np.ndarray:
        """The explicit ``k × n_rows`` matrix (padding columns dropped): for tests only."""
        D = np.concatenate([self.signs(a) for a in range(self.N // self.L)])
        Hn = sla.hadamard(self.N).astype(np.float64) / math.sqrt(self.N)
        Pm = np.zeros((self.k, self.N))
        np.add.at(Pm, (self.rows, self.pos), self.val)
        return (Pm @ Hn @ np.diag(D))[:, :n_rows]

    def apply(self, row_source, n_rows: int, n_cols: int) -> np.ndarray:
        """``S X`` for the ``n_rows × n_cols`` matrix ``X`` given block by block by
        ``row_source(t0, t1)``; never holds more than one ``L × n_cols`` block.

        ``H_N = H_A ⊗ H_L`` (``A = N/L`` blocks), so ``(H_N D x)[a'L + j] =
        Σ_a H_A[a', a] (H_L D_a x_a)[j]`` and ``P H_N D x = Σ_a M_a (H_L D_a x_a)`` with
        ``M_a = Σ_a' H_A[a', a] P_a'`` (``H_A[a', a] = (−1)^popcount(a' & a)``): one sparse
        product per block with the same sparsity pattern and block-dependent signs.
        """
        A = self.N // self.L
        blk_of = self.pos // self.L
        j_of = self.pos % self.L
        order = np.lexsort((j_of, self.rows))
        rows, blk, jj, val = self.rows[order], blk_of[order], j_of[order], self.val[order]
        indptr = np.searchsorted(rows, np.arange(self.k + 1))
        out = np.zeros((self.k, n_cols))
        for a in range(A):
            t0 = a * self.L
            if t0 >= n_rows:
                break  # all-zero padding blocks contribute nothing
            t1 = min(n_rows, t0 + self.L)
            xa = np.zeros((self.L, n_cols))
            xa[: t1 - t0] = row_source(t0, t1)
            xa *= self.signs(a)[:, None]
            ua = _fwht(xa)
            sign = 1.0 - 2.0 * (np.bitwise_count(blk & a) & 1)
            Ma = sp.csr_matrix((val * sign, jj, indptr), shape=(self.k, self.L))
            out += Ma @ ua
        return out / math.sqrt(self.N)


def sketch_rows(p: int, eps: float, n_rows: int) -> int:
    """Sketch size ``k = ⌈d ln d / ε²⌉`` for ``d = p + 2`` columns (intercept, ``p``
    features, response), at least ``d + 1`` and at most the number of rows."""
    d = p + 2
    return int(min(n_rows, max(d + 1, math.ceil(d * math.log(d) / eps ** 2))))


def _solve_sketch(base, lab, mean, std, active, eps, seed):
    q = int(active.sum())
    N = base.n_pairs
    k = sketch_rows(q, eps, N)
    plan = _SketchPlan.make(N, k, seed)

    def rows(t0, t1):
        F, T = _standardised(base, lab, t0, t1, mean, std, active)
        return np.column_stack([np.ones(t1 - t0), F, T])

    SX = plan.apply(rows, N, q + 2)
    coef, *_ = sla.lstsq(SX[:, : q + 1], SX[:, q + 1], lapack_driver="gelsd")
    return coef, {"k": k, "nnz_per_row": plan.s, "padded_rows": plan.N, "block": plan.L}


def fjlt_estimate(X_train, y, X_test=None, H_train=None, H_test_train=None, variant: str = "v1",
                  solver: str = "exact", eps: float = 0.1, seed: int = 0, *,
                  return_fit: bool = False):
    """FJLT-V1 / FJLT-V2 estimates of ``y(x) y(x')`` by least squares over all n² pairs (§4).

    Regresses ``T_ij`` (``y_i y_j``; multi-class ``Y_i·Y_j`` with centred one-hot ``Y``) on
    the pair features ``φ(x_i, x_j)``: 10 for V1 (:data:`FEATURES_V1`), 20 for V2
    (:data:`FEATURES_V2`: V1 plus ``z ∘ z'`` and ``|z − z'|`` for the top-5 PCA coordinates
    ``z``, PCA fit on the training inputs). Both variants regress ``T``; they differ only by
    their features. Then ``Z(x, x') = φ(x, x')ᵀ w``.

    Conditioning: every feature is standardised with its mean and standard deviation over
    the n² training pairs, and an intercept is fitted (``Z = β₀ + Σ β_k φ̃_k``). A feature that
    is constant over the training pairs (e.g. ``‖x‖‖x'‖`` for inputs on a sphere) is dropped
    (its coefficient is 0). The RBF scale ``s²`` is the mean squared distance over distinct
    training pairs; a constant input vector has Pearson correlation 0 with everything.

    Solvers (they agree; see the tests):

    * ``"exact"``: streams the normal equations ``ΦᵀΦ``, ``ΦᵀT`` over blocks of pairs (about
      64 MiB of features at a time); the n²×p matrix ``Φ`` is never held. The p×p system is a
      correlation matrix, solved by minimum-norm least squares.
    * ``"fjlt"``: sketch-and-solve with the FJLT ``S = P H D`` (Ailon & Chazelle 2009): random
      signs ``D``, the Walsh-Hadamard transform ``H`` over the padded length ``N = 2^m ≥ n²``,
      and a sparse Gaussian ``P`` (``⌈ln² N⌉`` nonzeros per row) down to
      ``k = ⌈d ln d / eps²⌉`` rows, ``d = p + 2``. To avoid holding ``[1, Φ, T]`` (n²×(p+2)),
      ``H_N`` is factored as ``H_A ⊗ H_L`` (blocks of ``L = 2^18`` pairs): each block is
      transformed by ``H_L`` alone and folded into the sketch through ``Σ_a' H_A[a', a] P_a'``,
      which only flips the signs of ``P``'s nonzeros. This is the *same* transform as the
      global FJLT, not a block-diagonal approximation. Sketch-and-solve guarantees, with
      high probability, a residual within ``(1 + eps)`` of the least-squares residual,
      ``‖T − Z_fjlt‖ ≤ (1 + eps) ‖T − Z_exact‖``; since the exact residual is orthogonal to
      the column space, that bounds ``‖Z_fjlt − Z_exact‖ ≤ √(2 eps + eps²) ‖T − Z_exact‖``
      over the training pairs. What is typically measured is much smaller, about
      ``√(d / k)`` times ``‖T − Z_exact‖`` (the LANTK-HR chapter prints both).

    Args:
        X_train: ``(n, d)`` or ``(n, ...)`` training inputs (images are flattened).
        y: training labels (``±1``, class indices or one-hot).
        X_test: ``(b, ...)`` test inputs, or ``None``.
        H_train: ``(n, n)`` kernel on the training inputs (the feature ``K(x, x')``).
        H_test_train: ``(b, n)`` test–train kernel (needed with ``X_test``).
        variant: ``"v1"`` (10 features) or ``"v2"`` (20).
        solver: ``"exact"`` or ``"fjlt"``.
        eps: sketch accuracy (``solver="fjlt"``), in ``(0, 1]``; sets ``k``.
        seed: seed of the sketch.
        return_fit: also return the :class:`PairRegression`.

    Returns:
        ``(Z_train, Z_test)`` (``(n, n)``, ``(b, n)`` or ``None``), plus the fit if asked.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(30, 8)); y = np.where(X[:, 0] > 0, 1.0, -1.0)
        >>> H = X @ X.T
        >>> Z_tr, Z_te = fjlt_estimate(X, y, X[:4], H, H[:4], variant="v2")
        >>> Z_tr.shape, Z_te.shape, bool(np.allclose(Z_tr, Z_tr.T))
        ((30, 30), (4, 30), True)
    """
    variant = _check_variant(variant)
    solver = str(solver).lower()
    if solver not in ("exact", "fjlt"):
        raise ValueError(f"unknown solver {solver!r}; expected 'exact' or 'fjlt'")
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise ValueError(f"eps must be a number in (0, 1], got {eps!r}") from None
    if not 0.0 < eps <= 1.0:
        raise ValueError(f"eps must be in (0, 1], got {eps!r}")
    if H_train is None:
        raise ValueError("H_train (the kernel on the training inputs) is required")
    Xtr = _flatten(X_train, "X_train")
    H, Ht = check_kernel_pair(H_train, H_test_train)
    lab = encode_labels(y, "y")
    check_lengths("X_train", Xtr.shape[0], "y", len(lab))
    check_lengths("X_train", Xtr.shape[0], "H_train", H.shape[0])
    Xte = None
    if (X_test is None) != (Ht is None):
        raise ValueError("give both X_test and H_test_train, or neither")
    if X_test is not None:
        Xte = _flatten(X_test, "X_test")
        if Xte.shape[1] != Xtr.shape[1]:
            raise ValueError(f"X_test has {Xte.shape[1]} features per input but X_train has "
                             f"{Xtr.shape[1]}")
        check_lengths("X_test", Xte.shape[0], "H_test_train", Ht.shape[0])

    base_tr, _ = _build_bases(Xtr, H, None, None, variant)
    mean, std, tmean, tss = _stats(base_tr, lab)
    active = _active(mean, std)
    if solver == "exact":
        coef_a, info = _solve_exact(base_tr, lab, mean, std, active, tmean)
        k = None
    else:
        coef_a, info = _solve_sketch(base_tr, lab, mean, std, active, eps, seed)
        k = info["k"]
    coef = np.zeros(base_tr.p + 1)
    coef[0] = coef_a[0]
    coef[1:][active] = coef_a[1:]
    fit = PairRegression(coef=coef, mean=mean, scale=std, active=active,
                         names=_v2_names(base_tr.p),
                         solver=solver, k=k, tss=float(tss), info=info, _base=base_tr)

    n = Xtr.shape[0]
    Z_train = np.empty((n, n))
    zf = Z_train.reshape(-1)
    rss = 0.0
    for t0, t1 in _chunks(base_tr.n_pairs, base_tr.p):
        zf[t0:t1] = fit.predict(base_tr.features(t0, t1))
        rss += float(np.sum((_pair_T(lab, t0, t1, n) - zf[t0:t1]) ** 2))
    fit.rss = rss
    _sym(Z_train)  # exact symmetry (features are symmetric up to round-off)
    Z_test = None if Xte is None else fit.predict_pairs(Xte, Ht)
    if return_fit:
        return Z_train, Z_test, fit
    return Z_train, Z_test


def _v2_names(p: int) -> tuple:
    """Feature names for ``p`` columns (V2 has fewer than 20 when d < 5)."""
    k = (p - 10) // 2
    return FEATURES_V1 + tuple(f"pca_prod{i}" for i in range(k)) + tuple(
        f"pca_absdiff{i}" for i in range(k))
