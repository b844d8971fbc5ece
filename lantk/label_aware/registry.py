"""One interface to every estimate of ``Z ≈ y yᵀ``: :func:`fit_Z` and :class:`ZFit`.

Each method of the book is one entry of :data:`ESTIMATORS`, a function that fits ``Z`` on the
training pairs and returns a :class:`ZFit`: its training block ``train`` and a ``predict``
for new rows. Every caller (``experiments``, the classifier, the chapters) goes through
:func:`fit_Z`, so a method is named and dispatched in one place.

=============  ====================================================  =========================
method         what ``Z`` is                                          needs
=============  ====================================================  =========================
``kr-v1``      Nadaraya-Watson on ``h = K(x, x')`` of ``y yᵀ``        ``H``, ``y``
``kr-v2``      the same of ``α αᵀ``, ``α = (H + ρI)⁻¹ y``              ``H``, ``y``
``fjlt-v1``    least squares on 10 pair features                      ``H``, ``y``, ``X``
``fjlt-v2``    least squares on 20 pair features (V1 + PCA)           ``H``, ``y``, ``X``
``nth``        the second-order NTH correction ``K_t − K``             ``y``, ``X`` (two-layer)
``oracle``     ``y yᵀ`` itself (uses the test labels: an upper bound) ``y`` (``y_test`` later)
=============  ====================================================  =========================

The LANTK-HR methods and the oracle enter the kernel as ``K + λZ`` with
``λ = c · mean|H| / mean|Z|`` (:func:`~lantk.label_aware.lantk_kernel`); the NTH correction
already carries its strength (``1/width``) and enters as ``K + Z`` (``ZFit.uses_c`` is
``False``). :meth:`ZFit.kernel` applies the right rule.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(30, 4)); y = np.where(X[:, 0] > 0, 1.0, -1.0)
    >>> H = X @ X.T + 1.0
    >>> fit = fit_Z("kr-v1", H, y)
    >>> fit.train.shape, fit.predict(H[:3]).shape
    ((30, 30), (3, 30))
    >>> K_tr, K_te = fit.kernel(0.5, H[:3])
    >>> K_tr.shape, K_te.shape
    ((30, 30), (3, 30))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lantk._checks import as_float_array, check_kernel_pair, check_lengths, check_rho, encode_labels
from lantk.label_aware._common import _flatten
from lantk.label_aware.fjlt import fjlt_estimate
from lantk.label_aware.kernel import lantk_kernel, oracle_Z, scale_lambda
from lantk.label_aware.kr import kr_fit

__all__ = ["ESTIMATORS", "HR_METHODS", "METHODS", "ZFit", "fit_Z"]

HR_METHODS = ("kr-v1", "kr-v2", "fjlt-v1", "fjlt-v2")
"""The LANTK-HR estimators (spec §4), in the paper's order."""


@dataclass
class ZFit:
    """A fitted estimate of ``Z ≈ y yᵀ`` (from :func:`fit_Z`).

    Attributes:
        method: the estimator's name (a key of :data:`ESTIMATORS`).
        train: ``(n, n)`` symmetric float64, ``Z`` on the training pairs.
        H: the ``(n, n)`` training kernel the fit used (the same array, not a copy).
        uses_c: ``True`` when the kernel is ``K + λZ`` with ``λ`` from ``c``
            (LANTK-HR, oracle); ``False`` when ``Z`` carries its own strength (``nth``:
            ``K + Z``).
        info: what the estimator reports (e.g. ``"regression"``, the FJLT
            :class:`~lantk.label_aware.PairRegression`; ``"options"``, the settings used).
    """

    method: str
    train: np.ndarray
    H: np.ndarray
    uses_c: bool = True
    info: dict = field(default_factory=dict)
    _predict: object = field(default=None, repr=False, compare=False)
    needs_x: bool = field(default=False, repr=False)

    @property
    def n(self) -> int:
        return self.train.shape[0]

    def predict(self, H_test_train, X_test=None, *, y_test=None) -> np.ndarray:
        """``Z(x*, x_j)`` for new inputs against the training inputs, ``(b, n)`` float64.

        Args:
            H_test_train: ``(b, n)`` kernel between the new and the training inputs.
            X_test: ``(b, ...)`` the new inputs (FJLT and NTH need them).
            y_test: the new inputs' labels (the oracle needs them, and only the oracle).
        """
        if H_test_train is None:
            raise ValueError("H_test_train is required")
        Ht = as_float_array(H_test_train, "H_test_train", ndim=2)
        if Ht.shape[1] != self.n:
            raise ValueError(f"H_test_train has {Ht.shape[1]} columns but the fit has {self.n} "
                             f"training inputs (H_test_train must be (b, n))")
        if self.needs_x:
            if X_test is None:
                raise ValueError(f"{self.method} needs X_test, the new inputs themselves")
            X_test = _flatten(X_test, "X_test")
            check_lengths("X_test", X_test.shape[0], "H_test_train", Ht.shape[0])
        if self.method == "oracle":
            if y_test is None:
                raise ValueError("the oracle is y yᵀ: it needs y_test, the test labels (an "
                                 "upper bound, not a method)")
            return self._predict(Ht, X_test, y_test)
        if y_test is not None:
            raise ValueError(f"y_test is only for the oracle; {self.method} does not use labels "
                             f"of the predicted inputs")
        return self._predict(Ht, X_test, None)

    def kernel(self, c: float, H_test_train=None, X_test=None, *, y_test=None,
               psd: bool = False, return_spectrum: bool = False):
        """The label-aware kernel of this fit: ``K + λZ`` (``λ`` from ``c``,
        :func:`~lantk.label_aware.lantk_kernel`) or, for ``uses_c=False``, ``K + Z``
        (``c`` is ignored). Returns what :func:`~lantk.label_aware.lantk_kernel` returns:
        the training block, and the test block when ``H_test_train`` is given."""
        Z_test = None
        if H_test_train is not None:
            Z_test = self.predict(H_test_train, X_test, y_test=y_test)
        lam = None if self.uses_c else 1.0
        return lantk_kernel(self.H, self.train, c, H_test_train, Z_test, lam=lam, psd=psd,
                            return_spectrum=return_spectrum)

    def weight(self, c: float) -> float:
        """The weight of ``Z`` in the kernel for strength ``c``: ``λ = c · mean|H| / mean|Z|``
        (:func:`~lantk.label_aware.scale_lambda`; 0 for ``c = 0``), or 1 when ``uses_c`` is
        ``False``."""
        if not self.uses_c:
            return 1.0
        return 0.0 if c == 0 else scale_lambda(self.H, self.train, c)


# What predicts new rows, per estimator: small top-level classes (a ZFit pickles).
@dataclass
class _KRRows:
    fit: object

    def __call__(self, Ht, Xt, yt):
        return self.fit(Ht, warn=True, stacklevel=3)


@dataclass
class _FJLTRows:
    regression: object

    def __call__(self, Ht, Xt, yt):
        return self.regression.predict_pairs(Xt, Ht)


@dataclass
class _OracleRows:
    y: object

    def __call__(self, Ht, Xt, yt):
        Z = oracle_Z(yt, self.y)
        check_lengths("y_test", Z.shape[0], "H_test_train", Ht.shape[0])
        return Z


@dataclass
class _NTHRows:
    X: np.ndarray
    y: object
    options: dict
    known: tuple = None  # (X_test, its rows) computed with the training block, if asked

    def __call__(self, Ht, Xt, yt):
        from lantk import nth

        if self.known is not None and np.array_equal(self.known[0], Xt):
            return self.known[1].copy()
        _, K_te = nth.nth_kernel(self.X, self.y, Xt, **self.options)
        return K_te - nth.two_layer_ntk(Xt, self.X)


def _options(method, options, allowed):
    extra = sorted(set(options) - set(allowed))
    if extra:
        raise TypeError(f"fit_Z({method!r}) got unexpected options {extra}; it takes "
                        f"{sorted(allowed) or 'none'}")
    return {k: options.get(k, v) for k, v in allowed.items()}


def _need_x(method, X, n):
    if X is None:
        raise ValueError(f"{method} needs X, the training inputs (it uses features of the inputs, "
                         f"not only the kernel)")
    X = _flatten(X, "X")
    check_lengths("X", X.shape[0], "H", n)
    return X


def _fit_kr(method, H, y, X, **options):
    opts = _options(method, options, {"rho": 0.0})
    rho = check_rho(opts["rho"])
    lab = encode_labels(y, "y")
    check_lengths("H", H.shape[0], "y", len(lab))
    kr = kr_fit(H, lab, method[-2:], rho)
    return ZFit(method, kr(H), H, info={"options": opts, "fit": kr}, _predict=_KRRows(kr))


def _fit_fjlt(method, H, y, X, **options):
    opts = _options(method, options, {"solver": "exact", "eps": 0.1, "seed": 0})
    X = _need_x(method, X, H.shape[0])
    Z, _, reg = fjlt_estimate(X, y, None, H, None, variant=method[-2:], return_fit=True, **opts)
    return ZFit(method, Z, H, info={"options": opts, "regression": reg}, needs_x=True,
                _predict=_FJLTRows(reg))


def _fit_oracle(method, H, y, X, **options):
    _options(method, options, {})
    Z = oracle_Z(y, y)
    check_lengths("H", H.shape[0], "y", Z.shape[0])
    return ZFit(method, Z, H, info={"options": {}}, _predict=_OracleRows(y))

def _fit_nth(method, H, y, X, **options):
    from lantk import nth

    opts = _options(method, options, {"width": 1024, "t": np.inf, "samples": 1000, "seed": 0,
                                      "init": "standard", "chunk": None, "progress": False,
                                      "dtype": "float64", "X_test": None})
    X_test = opts.pop("X_test")
    X = _need_x(method, X, H.shape[0])
    H_own = nth.two_layer_ntk(X)
    scale = max(float(np.max(np.abs(H_own))), np.finfo(np.float64).tiny)
    if not np.allclose(H, H_own, rtol=1e-7, atol=1e-9 * scale):
        raise ValueError("nth is the hierarchy of the two-layer ReLU network: H must be its NTK "
                         "on X (lantk.nth.two_layer_ntk(X))")
    rows = X[:1] if X_test is None else _flatten(X_test, "X_test")
    K, K_rows = nth.nth_kernel(X, y, rows, **opts)
    Z = K - H_own
    Z = 0.5 * (Z + Z.T)
    known = None if X_test is None else (rows, K_rows - nth.two_layer_ntk(rows, X))
    return ZFit(method, Z, H, uses_c=False, info={"options": opts}, needs_x=True,
                _predict=_NTHRows(X, y, opts, known))


ESTIMATORS: dict = {
    "kr-v1": _fit_kr, "kr-v2": _fit_kr,
    "fjlt-v1": _fit_fjlt, "fjlt-v2": _fit_fjlt,
    "nth": _fit_nth,
    "oracle": _fit_oracle,
}
"""Method name -> fit function ``(method, H, y, X, **options) -> ZFit``."""

METHODS = tuple(ESTIMATORS)
"""Every estimator :func:`fit_Z` knows."""


def fit_Z(method: str, H, y, X=None, **options) -> ZFit:
    """Fit the estimate ``method`` of ``Z ≈ y yᵀ`` on the training pairs.

    Args:
        method: one of :data:`METHODS` (``"kr-v1"``, ``"kr-v2"``, ``"fjlt-v1"``,
            ``"fjlt-v2"``, ``"nth"``, ``"oracle"``).
        H: ``(n, n)`` symmetric label-agnostic kernel on the training inputs (for ``"nth"``
            the two-layer ReLU NTK, :func:`lantk.nth.two_layer_ntk`).
        y: training labels (``±1``, class indices ``0..C-1`` or one-hot).
        X: ``(n, ...)`` training inputs (FJLT and NTH; images are flattened).
        **options: the estimator's settings. KR: ``rho`` (ridge of ``α`` in V2). FJLT:
            ``solver`` (``"exact"``/``"fjlt"``), ``eps``, ``seed``. NTH: ``width``, ``t``,
            ``samples``, ``seed``, ``init``, ``chunk``, ``progress``, ``dtype``
            (:func:`lantk.nth.nth_kernel`), and ``X_test``: inputs whose rows ``predict`` will
            be asked for, computed in the same pass as the training block (the training rows
            are part of every NTH contraction, so predicting them later costs that pass
            again). Unknown options are an error.

    Returns:
        A :class:`ZFit`.
    """
    if not isinstance(method, str) or method.lower() not in ESTIMATORS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    method = method.lower()
    H, _ = check_kernel_pair(H, None)
    return ESTIMATORS[method](method, H, y, X, **options)
