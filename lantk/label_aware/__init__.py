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
* :func:`fit_Z` -> :class:`ZFit` -- every estimator (``kr-v1``, ``kr-v2``, ``fjlt-v1``,
  ``fjlt-v2``, ``nth``, ``oracle``) behind one call: ``.train``, ``.predict(H_test_train,
  X_test)``, ``.kernel(c, ...)``; what the book's chapters, :mod:`lantk.experiments` and
  :class:`lantk.LANTKClassifier` use.

Modules: :mod:`~lantk.label_aware.kernel` (oracle, ``λ``, ``K + λZ``, spectra),
:mod:`~lantk.label_aware.kr`, :mod:`~lantk.label_aware.fjlt` (pair features and the pair
regression; its sketch in ``_sketch``), :mod:`~lantk.label_aware.registry`.

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


from lantk.label_aware._sketch import sketch_rows
from lantk.label_aware.fjlt import (
    FEATURES_V1,
    FEATURES_V2,
    N_PCA,
    PairRegression,
    fjlt_estimate,
    pair_features,
)
from lantk.label_aware.kernel import (
    KernelSpectrum,
    kernel_spectrum,
    lantk_kernel,
    oracle_Z,
    psd_projection,
    scale_lambda,
)
from lantk.label_aware.kr import KRFit, kr_estimate
from lantk.label_aware.registry import ESTIMATORS, HR_METHODS, METHODS, ZFit, fit_Z

__all__ = [
    "ESTIMATORS",
    "FEATURES_V1",
    "FEATURES_V2",
    "HR_METHODS",
    "KRFit",
    "KernelSpectrum",
    "METHODS",
    "N_PCA",
    "PairRegression",
    "ZFit",
    "fit_Z",
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
