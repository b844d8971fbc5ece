"""KR-V1 / KR-V2: Nadaraya-Watson estimates of ``y(x) y(x')`` on the kernel value (spec §4)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from lantk._checks import Labels, check_kernel_pair, check_lengths, check_rho, encode_labels
from lantk.label_aware._common import _check_variant, _row_blocks
from lantk.regression import solve

__all__ = ["KRFit", "kr_estimate"]


def _label_weights(lab: Labels, H: np.ndarray, variant: str, rho: float) -> np.ndarray:
    """The vectors ``W`` with ``T = W Wᵀ``: ``y`` (V1) or ``α = (H + ρI)⁻¹ y`` (V2);
    ``(n,)`` or ``(n, C)``."""
    if variant == "v1":
        return lab.Y
    return solve(H, lab.Y, rho, name="H_train", stacklevel=5)


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


@dataclass(frozen=True)
class KRFit:
    """The fitted KR-V1/V2 estimate: ``Z(h) = num(h) / den(h)``, two quadratics in the kernel
    value ``h`` (coefficients of ``1, h, h²``) from the moments ``Σ H_ijᵖ T_ij`` and ``Σ H_ijᵖ``."""

    variant: str
    num: tuple
    den: tuple

    def __call__(self, Hm: np.ndarray, *, warn: bool = False, stacklevel: int = 2) -> np.ndarray:
        """``Z`` at the kernel values ``Hm`` (any 2-d block). With ``warn``, a
        ``RuntimeWarning`` when some values lie so far outside the training range that the
        Nadaraya-Watson weights sum to ``<= 0`` (then ``Z`` is unreliable there)."""
        Z = np.empty(Hm.shape)
        dmin = _nw_ratio(Hm, self.num, self.den, Z)
        if warn and dmin <= 1e-12 * abs(self.den[0]):
            warnings.warn(
                "some inputs' kernel values lie so far outside the training range that the "
                "Nadaraya-Watson weights sum to <= 0: Z is unreliable for them (are the inputs "
                "scaled like the training inputs?)", RuntimeWarning, stacklevel=stacklevel + 1)
        return Z


def kr_fit(H: np.ndarray, lab: Labels, variant: str, rho: float) -> KRFit:
    """:class:`KRFit` for validated inputs (``H`` symmetric float64, encoded labels)."""
    W = _label_weights(lab, H, variant, rho)
    sT, s = _moments(H, W)
    hmax, hmin = float(H.max()), float(H.min())
    sigma2 = (hmax - hmin) ** 2
    if sigma2 == 0.0:
        raise ValueError("H_train is constant (max H = min H), so σ² = 0 and the "
                         "Nadaraya-Watson weights vanish")
    num = (sigma2 * sT[0] - sT[2], 2.0 * sT[1], -sT[0])
    den = (sigma2 * s[0] - s[2], 2.0 * s[1], -s[0])
    return KRFit(variant, num, den)


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
    rho = check_rho(rho)
    H, Ht = check_kernel_pair(H_train, H_test_train)
    lab = encode_labels(y, "y")
    check_lengths("H_train", H.shape[0], "y", len(lab))
    fit = kr_fit(H, lab, variant, rho)
    return fit(H), None if Ht is None else fit(Ht, warn=True)
