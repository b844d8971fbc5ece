"""The oracle ``y yᵀ`` and the label-aware kernel ``K + λZ`` (spec §3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lantk._checks import as_float_array, check_kernel_pair, check_square_symmetric, encode_labels

__all__ = ["KernelSpectrum", "kernel_spectrum", "lantk_kernel", "oracle_Z", "psd_projection",
           "scale_lambda"]


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

