"""A scikit-learn classifier: kernel regression with the NTK or a label-aware NTK.

:class:`LANTKClassifier` fits kernel regression (spec §1) with one of

* ``"ntk"`` -- the label-agnostic kernel ``K`` alone;
* ``"kr-v1"``, ``"kr-v2"``, ``"fjlt-v1"``, ``"fjlt-v2"`` -- LANTK-HR, ``K + λZ`` with ``Z``
  from :mod:`lantk.label_aware` and ``λ = c · mean|H| / mean|Z|`` (spec §3-§4);
* ``"nth"`` -- LANTK-NTH, the second-order neural tangent hierarchy of the two-layer ReLU
  network (spec §5, :func:`lantk.nth.nth_kernel`); its strength is set by ``width``
  (the correction scales as ``1/width``), not by ``c``.

Chen, He & Su (2020), "Label-Aware Neural Tangent Kernel: Toward Better Generalization and
Local Elasticity", NeurIPS 2020.

Binary problems regress ``±1`` (``classes_[1]`` is ``+1``) and ``decision_function`` has
shape ``(n_samples,)``; multi-class problems regress centred one-hot rows (label-aware
variants use ``T = Y Yᵀ``) and ``decision_function`` has shape ``(n_samples, n_classes)``.
Outputs are float64 NumPy arrays.

Example:
    >>> import numpy as np
    >>> from lantk import LANTKClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 4)); y = np.where(X[:, 0] + X[:, 1] > 0, "a", "b")
    >>> clf = LANTKClassifier(variant="kr-v2", c=0.5).fit(X[:40], y[:40])
    >>> clf.predict(X[40:43]).tolist(), clf.decision_function(X[40:43]).shape
    (['b', 'a', 'a'], (3,))
"""

from __future__ import annotations

import inspect

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from lantk import label_aware
from lantk._checks import Labels, check_rho, encode_labels
from lantk._x64 import x64
from lantk.nth import two_layer_ntk
from lantk.regression import predict_labels, solve

__all__ = ["VARIANTS", "LANTKClassifier", "two_layer_relu_ntk"]

VARIANTS = ("ntk",) + tuple(m for m in label_aware.METHODS if m != "oracle")
"""``"ntk"`` and every estimator of :func:`lantk.label_aware.fit_Z` but the oracle (which needs
the test labels)."""

two_layer_relu_ntk = two_layer_ntk
"""The classifier's default kernel: :func:`lantk.nth.two_layer_ntk` (the one closed form,
:func:`lantk.archs.two_layer_relu_kernel`), under its historical name here."""


class _BlockCache:
    """Kernel blocks (and label-aware estimates) of recent fits, keyed on the kernel and the
    bytes of the inputs, so that the fits of a grid search over ``c`` (cloned estimators, the
    same folds) compute each kernel once. Least recently used entries go first once the
    cache holds more than ``max_bytes``."""

    def __init__(self, max_bytes: int = 1 << 29):
        import collections

        self.max_bytes = max_bytes
        self._d: collections.OrderedDict = collections.OrderedDict()
        self.hits = self.misses = 0

    @staticmethod
    def digest(*arrays) -> str:
        import hashlib

        h = hashlib.sha1()
        for a in arrays:
            a = np.ascontiguousarray(a)
            h.update(str((a.shape, a.dtype.str)).encode())
            h.update(a.data)
        return h.hexdigest()

    def get(self, key, compute):
        if key in self._d:
            self._d.move_to_end(key)
            self.hits += 1
            return self._d[key][0]
        self.misses += 1
        value = compute()
        size = sum(getattr(getattr(v, "train", v), "nbytes", 0)  # a ZFit counts its Z
                   for v in (value if isinstance(value, tuple) else (value,)))
        if size <= self.max_bytes:
            self._d[key] = (value, size)
            while sum(v[1] for v in self._d.values()) > self.max_bytes:
                self._d.popitem(last=False)
        return value

    def clear(self) -> None:
        self._d.clear()
        self.hits = self.misses = 0


_CACHE = _BlockCache()


class _EntryCache:
    """Kernel entries already computed, keyed on the bytes of each input row, for one kernel.

    A grid search's folds ask for overlapping blocks (fold 2's training block is mostly fold
    1's training block and fold 1's test-train block, mirrored): only the rectangle of rows
    and columns with an entry not yet known is computed, so the folds and the refit together
    compute each entry of the full kernel about once. Holds at most ``max_rows`` distinct
    rows (then it starts over)."""

    def __init__(self, max_rows: int = 6000):
        self.max_rows = max_rows
        self.kernel_key = None
        self.reset()

    def reset(self) -> None:
        self.index: dict = {}
        self.K = np.full((0, 0), np.nan)
        self.computed = 0

    def _rows(self, X) -> np.ndarray:
        ids = []
        for row in np.ascontiguousarray(X):
            d = row.tobytes()
            if d not in self.index:
                self.index[d] = len(self.index)
            ids.append(self.index[d])
        m = len(self.index)
        if m > self.K.shape[0]:
            grown = np.full((max(m, 2 * self.K.shape[0]),) * 2, np.nan)
            grown[:self.K.shape[0], :self.K.shape[0]] = self.K
            self.K = grown
        return np.asarray(ids, dtype=np.intp)

    def block(self, kernel_key, compute, X1, X2, keep=None) -> np.ndarray:
        """``K(X1, X2)`` from known entries, computing ``compute(A, B)`` only for the rows
        and columns with unknown ones (``K`` is symmetric: ``K(b, a)`` fills ``K(a, b)``)."""
        if kernel_key != self.kernel_key or len(self.index) + len(X1) + len(X2) > self.max_rows:
            self.reset()
            self.kernel_key = kernel_key
            self.keep = keep  # the kernel function stays alive, so an id() key stays unique
        r, c = self._rows(X1), self._rows(X2)
        sub = self.K[np.ix_(r, c)]
        miss = np.isnan(sub)
        if miss.any():
            rows = np.flatnonzero(miss.any(axis=1))
            cols = np.flatnonzero(miss[rows].any(axis=0))
            same = X2 is X1 and np.array_equal(rows, cols)
            A = X1[rows]
            vals = compute(A, A if same else X2[cols])
            self.computed += vals.size
            self.K[np.ix_(r[rows], c[cols])] = vals
            self.K[np.ix_(c[cols], r[rows])] = vals.T
            sub = self.K[np.ix_(r, c)]
        return sub.copy()


_ENTRIES = _EntryCache()


def _kernel_key(arch):
    """What identifies the kernel of ``arch`` across cloned estimators: a lantk ``stax``
    kernel's ``spec`` (a stable description of the architecture), else the function object."""
    if arch is None:
        return ("two-layer relu ntk",), None
    fn = arch[2] if isinstance(arch, (tuple, list)) and len(arch) == 3 else arch
    spec = getattr(fn, "spec", None)
    if isinstance(spec, str):
        return ("stax", spec), fn
    return ("callable", id(fn)), fn  # fn is kept alive in the cache entry: its id is stable


def _kernel_callable(arch):
    """``arch`` as a function ``(X1, X2) -> K`` (float64 NumPy). A lantk ``stax`` kernel
    (one with a ``spec``) is computed in tiles by :func:`lantk.kernels.kernel_matrix`, so a
    CIFAR-scale CNN kernel fits in memory."""
    if arch is None:
        return two_layer_ntk
    if isinstance(arch, (tuple, list)):
        if len(arch) != 3 or not callable(arch[2]):
            raise ValueError("arch must be None, a kernel_fn, or an (init_fn, apply_fn, "
                             "kernel_fn) triple")
        fn = arch[2]
    elif callable(arch):
        fn = arch
    else:
        raise ValueError(  # noqa: TRY004 (bad input is a ValueError throughout lantk)
            f"arch must be None, a kernel_fn, or an (init_fn, apply_fn, kernel_fn) triple; got "
            f"{type(arch).__name__}")
    if isinstance(getattr(fn, "spec", None), str):
        from lantk.kernels import kernel_matrix

        def tiled(X1, X2):
            return np.asarray(kernel_matrix(fn, X1, None if X2 is X1 else X2, get="ntk",
                                            progress=False), dtype=np.float64)

        return tiled
    try:
        takes_get = "get" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        takes_get = True

    def kernel(X1, X2):
        out = fn(X1, X2, get="ntk") if takes_get else fn(X1, X2)
        out = getattr(out, "ntk", out)
        return np.asarray(out, dtype=np.float64)

    return kernel


class LANTKClassifier(ClassifierMixin, BaseEstimator):
    """Kernel-regression classifier with the NTK or a label-aware NTK (LANTK).

    Args:
        variant: ``"ntk"``, ``"kr-v1"``, ``"kr-v2"``, ``"fjlt-v1"``, ``"fjlt-v2"`` or
            ``"nth"``.
        arch: the label-agnostic kernel. ``None``: the two-layer ReLU NTK in closed form
            (spec §2). Or a ``kernel_fn(x1, x2, get="ntk")`` / ``kernel_fn(x1, x2)``
            callable, or an ``(init_fn, apply_fn, kernel_fn)`` triple such as
            ``lantk.archs.paper_cnn()``. Not used by ``"nth"`` (two-layer ReLU only).
        c: strength of the label-aware term, ``λ = c · mean|H| / mean|Z|`` (spec §3);
            choose it by cross-validation (e.g. ``GridSearchCV``). ``Z`` is not positive
            semi-definite, so a large ``c`` can make ``K + λZ`` indefinite and (with ``ρ = 0``)
            nearly singular, and the interpolating fit unstable; the default 0.1 is a
            cautious start. Ignored by ``"ntk"`` and ``"nth"``.
        rho: ridge ``ρ >= 0`` of the kernel regression (0 = the paper's setting; a
            numerically singular kernel gets a jitter with a warning).
        solver, eps: FJLT variants: ``"exact"`` (streamed normal equations) or ``"fjlt"``
            (sketch-and-solve with accuracy ``eps``).
        width, t, samples: ``"nth"``: network width (the correction scales as ``1/width``),
            training time (``np.inf`` = end of training), Monte Carlo neurons.
        seed: seed of the FJLT sketch and of the NTH Monte Carlo neurons.
        input_shape: reshape each row of ``X`` to this shape before calling ``arch`` (e.g.
            ``(8, 8, 1)`` for a CNN kernel on flattened 8×8 images); ``None`` keeps rows.

    Attributes:
        classes_: the class labels; ``n_features_in_``: the number of features.
        lambda_: the ``λ`` used (0 for ``"ntk"`` and ``"nth"``).
        dual_coef_: ``(K_LA + ρI)⁻¹ y``, ``(n,)`` binary or ``(n, C)`` multi-class.

    Example:
        >>> import numpy as np
        >>> from sklearn.model_selection import GridSearchCV
        >>> rng = np.random.default_rng(1)
        >>> X = rng.normal(size=(40, 3)); y = (X[:, 0] > 0).astype(int)
        >>> gs = GridSearchCV(LANTKClassifier(variant="kr-v1"), {"c": [0.1, 1.0]}, cv=3)
        >>> gs.fit(X, y).best_params_["c"] in (0.1, 1.0)
        True
    """

    def __init__(self, variant="kr-v1", arch=None, c=0.1, rho=0.0, solver="exact", eps=0.1,
                 width=1024, t=np.inf, samples=1000, seed=0, input_shape=None):
        self.variant = variant
        self.arch = arch
        self.c = c
        self.rho = rho
        self.solver = solver
        self.eps = eps
        self.width = width
        self.t = t
        self.samples = samples
        self.seed = seed
        self.input_shape = input_shape

    # ------------------------------------------------------------------ helpers
    def _check_params(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; expected one of "
                             f"{', '.join(VARIANTS)}")
        try:
            c = float(self.c)
        except (TypeError, ValueError):
            raise ValueError(f"c must be a real number, got {self.c!r}") from None
        if not np.isfinite(c) or c < 0:
            raise ValueError(f"c must be a finite number >= 0 (the weight of the label-aware "
                             f"term), got {self.c!r}")
        if self.variant == "nth" and self.arch is not None:
            raise ValueError("variant 'nth' is the two-layer ReLU hierarchy: arch must be None")
        return c, check_rho(self.rho)

    def _inputs(self, X):
        if self.input_shape is None:
            return X
        shape = tuple(int(s) for s in self.input_shape)
        if int(np.prod(shape)) != X.shape[1]:
            raise ValueError(f"input_shape {shape} does not match {X.shape[1]} features")
        return X.reshape((X.shape[0],) + shape)

    def _kernel(self, X1, X2):
        key, fn = _kernel_key(self.arch)
        if _CACHE.max_bytes == 0:  # caching switched off
            return self._compute_kernel(X1, X2)
        return _ENTRIES.block((key, self.input_shape), self._compute_kernel, X1, X2, keep=fn)

    def _compute_kernel(self, X1, X2):
        A = self._inputs(X1)
        K = _kernel_callable(self.arch)(A, A if X2 is X1 else self._inputs(X2))
        if K.shape != (X1.shape[0], X2.shape[0]):
            raise ValueError(f"the kernel returned shape {K.shape}, expected "
                             f"{(X1.shape[0], X2.shape[0])}")
        if not np.all(np.isfinite(K)):
            raise ValueError("the kernel returned NaN or inf values")
        return K

    def _labels(self, idx: np.ndarray) -> Labels:
        if len(self.classes_) == 2:
            return encode_labels(np.where(idx == 1, 1.0, -1.0), "y")
        return encode_labels(idx, "y", n_classes=len(self.classes_), multiclass=True)

    # ------------------------------------------------------------------ API
    @x64
    def fit(self, X, y):
        """Fit on ``X`` ``(n_samples, n_features)`` and class labels ``y``; returns ``self``."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        c, rho = self._check_params()
        self.classes_, idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"LANTKClassifier needs samples of at least two classes; got one "
                             f"class ({self.classes_[0]!r})")
        self._lab = self._labels(idx)
        self.X_fit_ = X
        self._zfit, self._weight = None, 0.0
        H = self._kernel(X, X)
        K = H = 0.5 * (H + H.T)
        if self.variant != "ntk":
            self._zfit = self._fit_Z_cached(H, X, rho)
            self._weight = self._zfit.weight(c)   # λ; 1 for nth (its strength is the width's)
            if self._weight:
                K = label_aware.lantk_kernel(H, self._zfit.train, c, lam=self._weight)
        self.lambda_ = self._weight if self._zfit is not None and self._zfit.uses_c else 0.0
        self.dual_coef_ = solve(K, self._lab.Y, rho, name="the kernel matrix", stacklevel=3)
        return self

    def _options(self):
        if self.variant == "nth":
            return {"width": self.width, "t": self.t, "samples": self.samples, "seed": self.seed}
        if self.variant.startswith("fjlt"):
            return {"solver": self.solver, "eps": self.eps, "seed": self.seed}
        return {}

    def _fit_Z_cached(self, H, X, rho):
        """The :class:`~lantk.label_aware.ZFit` of this variant, computed once per kernel, data,
        labels and estimator settings: it does not depend on ``c``."""
        opts = self._options()
        if self.variant.startswith("kr"):
            opts["rho"] = rho
        key = ("Z", _kernel_key(self.arch)[0], self.input_shape, self.variant,
               tuple(sorted(opts.items())), _BlockCache.digest(X, self._lab.Y))
        return _CACHE.get(key, lambda: label_aware.fit_Z(self.variant, H, self._lab.Y, X=X,
                                                         **opts))

    @x64
    def decision_function(self, X):
        """Kernel-regression outputs: ``(n_samples,)`` (binary; positive means
        ``classes_[1]``) or ``(n_samples, n_classes)``, float64."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        K = self._kernel(X, self.X_fit_)
        if self._weight:
            # kr: warns when X's kernel values are far outside the training range
            K = K + self._weight * self._zfit.predict(K, X)
        return np.asarray(K @ self.dual_coef_, dtype=np.float64)

    def predict(self, X):
        """Predicted class labels: ``sign`` of the decision (binary; ``f = 0`` gives the
        positive class ``classes_[1]``, as :func:`lantk.regression.predict_labels` gives +1) or
        its ``argmax``."""
        f = self.decision_function(X)
        if f.ndim == 1:
            return self.classes_[(predict_labels(f) > 0).astype(int)]
        return self.classes_[np.argmax(f, axis=1)]
