"""Local elasticity of a kernel (spec §6).

A kernel is *locally elastic* when it is large for pairs of the same class and small for
pairs of different classes (He & Su 2020, "The Local Elasticity of Neural Networks"; Chen,
He & Su 2020, Section 5). Measured here on the normalised kernel
``K̃(x, x') = K(x, x') / √(K(x, x) K(x', x'))`` by the relative ratio

    ``R = mean_same K̃ / (mean_same K̃ + mean_diff K̃)``

over pairs of the same vs different classes: train–train pairs (the diagonal ``i = j``
excluded), or test–train pairs (then the self-kernels ``K(x*, x*)`` must be given). Higher is
more locally elastic; 1/2 means no preference.

The label-system experiment (spec §6): fine classes (e.g. CIFAR-10 cat, dog, automobile,
truck) are given binary labels in two ways, system A ({cat, dog} vs {automobile, truck}) and
system B ({cat, automobile} vs {dog, truck}). :func:`compare_label_systems` builds each
kernel under both labelings (a *kernel factory* ``(X, y) -> K`` may use the labels) and
reports the mean ``K̃`` of every pair of fine classes under A and under B. A label-agnostic
kernel (the NTK) gives identical tables; a label-aware kernel does not.
:func:`label_systems_over_training` follows the comparison over the epochs of two networks
trained under A and B (their empirical NTKs at each recorded epoch).

Kernel regression with a network's own kernel (``ntk_approx.py`` of the official code of
Chen, He & Su): :func:`kernel_method_comparison` scores several kernels (the empirical NTK at
initialisation and after training, the NTK, a LANTK) and the network's own outputs on the
same test points, with paired differences.

Example:
    >>> import numpy as np
    >>> K = np.array([[1.0, 0.9, 0.1], [0.9, 1.0, 0.2], [0.1, 0.2, 1.0]])
    >>> round(relative_ratio(K, np.array([0, 0, 1])), 4)      # 0.9 / (0.9 + 0.15)
    0.8571
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lantk._checks import (
    as_float_array,
    check_int,
    check_lengths,
    check_real,
    check_seed,
    check_square_symmetric,
)
from lantk._x64 import x64

__all__ = [
    "LabelSystemComparison",
    "LabelSystemDynamics",
    "binary_labels",
    "class_pair_similarity",
    "compare_label_systems",
    "comparison_from_kernels",
    "kernel_method_comparison",
    "label_systems_over_training",
    "normalize_kernel",
    "ratio_difference",
    "relative_ratio",
    "same_diff_means",
]


def _positive_diag(d: np.ndarray, name: str) -> np.ndarray:
    if np.any(d <= 0):
        raise ValueError(f"{name} must be positive (K(x, x) > 0) to normalise the kernel; "
                         f"got min {d.min():.3g}")
    return d


def normalize_kernel(K, diag_rows=None, diag_cols=None) -> np.ndarray:
    """``K̃ = K / √(K(x, x) K(x', x'))``.

    Args:
        K: ``(n, n)`` train–train kernel (its own diagonal is used), or ``(b, n)`` with both
            ``diag_rows`` (``K(x*, x*)``, ``(b,)``) and ``diag_cols`` (``K(x, x)``, ``(n,)``).

    Raises:
        ValueError: NaN/inf, shape mismatch, or a non-positive self-kernel.

    Example:
        >>> import numpy as np
        >>> normalize_kernel(np.array([[4.0, 2.0], [2.0, 1.0]])).tolist()
        [[1.0, 1.0], [1.0, 1.0]]
    """
    K = as_float_array(K, "K", ndim=2)
    if diag_rows is None and diag_cols is None:
        if K.shape[0] != K.shape[1]:
            raise ValueError(f"K has shape {K.shape}: a non-square (test–train) kernel needs "
                             f"diag_rows and diag_cols")
        d = _positive_diag(np.diag(K).copy(), "the diagonal of K")
        dr = dc = d
    else:
        if diag_rows is None or diag_cols is None:
            raise ValueError("give both diag_rows and diag_cols, or neither")
        dr = _positive_diag(as_float_array(diag_rows, "diag_rows", ndim=1), "diag_rows")
        dc = _positive_diag(as_float_array(diag_cols, "diag_cols", ndim=1), "diag_cols")
        check_lengths("K", K.shape[0], "diag_rows", len(dr))
        if K.shape[1] != len(dc):
            raise ValueError(f"length mismatch: K has {K.shape[1]} columns but diag_cols has "
                             f"{len(dc)}")
    return K / np.sqrt(dr)[:, None] / np.sqrt(dc)[None, :]


def _class_labels(y, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-d vector of class labels, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype.kind in "fc":
        as_float_array(arr, name)  # NaN/inf check
    return arr


def same_diff_means(K, y_rows, y_cols=None, *, diag_rows=None, diag_cols=None,
                    include_diagonal: bool = False):
    """``(mean_same K̃, mean_diff K̃)`` over same-class and different-class pairs.

    Train–train: ``K`` square, ``y_cols=None``; the diagonal pairs ``i = j`` are excluded
    (``include_diagonal=True`` keeps them, as the official code of Chen, He & Su does: each
    adds ``K̃(x, x) = 1`` to the same-class mean when ``K̃`` uses ``K``'s own diagonal);
    ``K̃`` uses ``K``'s own diagonal unless ``diag_rows`` and ``diag_cols`` are given (e.g. to
    normalise a label-aware kernel by the NTK's diagonal).
    Test–train: ``K`` is ``(b, n)``, ``y_rows`` the test labels, ``y_cols`` the training
    labels, and the self-kernels ``diag_rows`` (``K(x*, x*)``) and ``diag_cols`` are required.
    Labels may be any class values (``±1``, integers, strings).
    """
    yr = _class_labels(y_rows, "y_rows" if y_cols is not None else "y")
    if y_cols is None:
        Kf = as_float_array(K, "K", ndim=2)
        Kf = check_square_symmetric(Kf, "K")
        check_lengths("K", Kf.shape[0], "y", len(yr))
        Kn = normalize_kernel(Kf, diag_rows, diag_cols)
        same = yr[:, None] == yr[None, :]
        off = np.ones_like(same) if include_diagonal else ~np.eye(len(yr), dtype=bool)
        s_mask, d_mask = same & off, ~same
    else:
        if diag_rows is None or diag_cols is None:
            raise ValueError("a test–train kernel needs diag_rows (K(x*, x*)) and diag_cols "
                             "(K(x, x)) to be normalised")
        if include_diagonal:
            raise ValueError("include_diagonal applies to a train–train kernel only (a "
                             "test–train kernel has no pairs i = j)")
        yc = _class_labels(y_cols, "y_cols")
        Kn = normalize_kernel(K, diag_rows, diag_cols)
        check_lengths("K", Kn.shape[0], "y_rows", len(yr))
        if Kn.shape[1] != len(yc):
            raise ValueError(f"length mismatch: K has {Kn.shape[1]} columns but y_cols has "
                             f"{len(yc)}")
        s_mask = yr[:, None] == yc[None, :]
        d_mask = ~s_mask
    if not s_mask.any():
        raise ValueError("no pair of the same class: the relative ratio needs both kinds")
    if not d_mask.any():
        raise ValueError("a single class: no pair of different classes (the relative ratio "
                         "needs two classes)")
    return float(Kn[s_mask].mean()), float(Kn[d_mask].mean())


def relative_ratio(K, y_rows, y_cols=None, *, diag_rows=None, diag_cols=None,
                   include_diagonal: bool = False) -> float:
    """The relative ratio ``R = mean_same K̃ / (mean_same K̃ + mean_diff K̃)`` (spec §6).

    See :func:`same_diff_means` for the arguments (train–train, or test–train with the
    self-kernels). The book's convention excludes the pairs ``i = j``; the official code's
    is ``relative_ratio(K, y, include_diagonal=True)`` with ``K``'s own diagonal.

    Example:
        >>> import numpy as np
        >>> Kt = np.array([[2.0, 0.0], [0.5, 1.0]])   # 2 test vs 2 training points
        >>> # K̃ = [[1, 0], [0.5, 1]]: same-class mean 1, different-class mean 0.25
        >>> relative_ratio(Kt, [0, 1], [0, 1], diag_rows=[4.0, 1.0], diag_cols=[1.0, 1.0])
        0.8
    """
    s, d = same_diff_means(K, y_rows, y_cols, diag_rows=diag_rows, diag_cols=diag_cols,
                           include_diagonal=include_diagonal)
    if s + d == 0:
        raise ValueError("mean_same K̃ + mean_diff K̃ = 0: the ratio is undefined")
    return s / (s + d)


def _bootstrap_settings(n_boot, level, seed):
    """``(n_boot, level, seed)`` checked: a positive integer, a level in (0, 1), a seed."""
    level = check_real(level, "level")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    try:
        n_boot = check_int(n_boot, "n_boot")
    except ValueError:
        raise ValueError(f"n_boot must be positive (an integer number of bootstrap "
                         f"replicates), got {n_boot!r}") from None
    return n_boot, level, check_seed(seed, allow_generator=True)


def _bootstrap_weights(rng, n: int, n_boot: int) -> np.ndarray:
    """``(n_boot, n)`` multiplicities of a resample with replacement of ``n`` units."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)


def _percentile_interval(est: float, reps: np.ndarray, level: float) -> tuple[float, float]:
    reps = reps[np.isfinite(reps)]
    if len(reps) == 0:
        raise ValueError("no bootstrap replicate gave a finite value")
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(reps, [a, 1.0 - a])
    # the percentile interval of a skewed ratio can miss the full-sample estimate by a hair;
    # widen it to contain the estimate (conservative)
    return float(min(lo, est)), float(max(hi, est))


def ratio_difference(K_a, K_b, y_rows, y_cols, *, diag_a, diag_b, n_boot: int = 2000,
                     level: float = 0.95, seed: int = 0) -> dict:
    """``R(K_a) − R(K_b)`` on test–train pairs, with a paired two-way bootstrap interval.

    Both kernels are ``(b, n)`` test–train blocks on the same points; ``diag_a`` and
    ``diag_b`` are ``(diag_rows, diag_cols)`` pairs of self-kernels to normalise each by.
    The interval resamples the test points (rows) and the training points (columns)
    independently with replacement, the same resample for both kernels, and takes the
    percentile interval of the difference (widened, if need be, to contain the estimate).

    Returns:
        ``{"estimate", "low", "high", "r_a", "r_b", "n_boot", "level"}``.

    Example:
        >>> import numpy as np
        >>> y = np.array([1, 1, -1, -1]); K = np.where(np.outer(y, y) > 0, 0.9, 0.1)
        >>> d = (np.ones(4), np.ones(4))
        >>> out = ratio_difference(K, np.full((4, 4), 0.5), y, y, diag_a=d, diag_b=d)
        >>> round(out["estimate"], 2), round(out["low"], 2), round(out["high"], 2)
        (0.4, 0.4, 0.4)
    """
    n_boot, level, seed = _bootstrap_settings(n_boot, level, seed)
    for name, dg in (("diag_a", diag_a), ("diag_b", diag_b)):
        if isinstance(dg, np.ndarray) or not isinstance(dg, (tuple, list)) or len(dg) != 2:
            raise ValueError(f"{name} must be a pair (diag_rows, diag_cols) of self-kernels, "
                             f"got {type(dg).__name__}")
    yr, yc = _class_labels(y_rows, "y_rows"), _class_labels(y_cols, "y_cols")
    same = (yr[:, None] == yc[None, :]).astype(np.float64)
    diff = 1.0 - same
    r = {}
    Kns = []
    for key, K, dg in (("a", K_a, diag_a), ("b", K_b, diag_b)):
        r[key] = relative_ratio(K, yr, yc, diag_rows=dg[0], diag_cols=dg[1])
        Kns.append(normalize_kernel(K, dg[0], dg[1]))
    rng = np.random.default_rng(seed)
    Wr = _bootstrap_weights(rng, len(yr), n_boot)
    Wc = _bootstrap_weights(rng, len(yc), n_boot)

    def boot_r(Kn):
        def wmean(mask):
            # (Wr M) · Wc row by row: one matrix product (BLAS), not a three-operand einsum
            num = np.einsum("bj,bj->b", Wr @ (Kn * mask), Wc)
            den = np.einsum("bj,bj->b", Wr @ mask, Wc)
            with np.errstate(invalid="ignore", divide="ignore"):
                return num / den
        s, d = wmean(same), wmean(diff)
        with np.errstate(invalid="ignore", divide="ignore"):
            return s / (s + d)

    est = r["a"] - r["b"]
    reps = boot_r(Kns[0]) - boot_r(Kns[1])
    lo, hi = _percentile_interval(est, reps, level)
    return {"estimate": float(est), "low": lo, "high": hi, "r_a": float(r["a"]),
            "r_b": float(r["b"]), "n_boot": int(n_boot), "level": float(level)}


def class_pair_similarity(K, classes, diag=None):
    """Mean ``K̃`` over pairs drawn from each pair of (fine) classes, a ``C × C`` table.

    The diagonal pairs ``i = j`` are excluded. Returns ``(class_values, table)`` with the
    classes sorted. ``diag``: the positive self-kernels to normalise by (default: the
    diagonal of ``K``). A label-aware kernel ``K + λZ`` can have a non-positive diagonal
    (``Z(x, x)`` of an estimate may be negative); normalising it by the NTK's diagonal keeps
    the comparison about the off-diagonal structure.

    Example:
        >>> import numpy as np
        >>> K = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 1.0]])
        >>> cls, S = class_pair_similarity(K, ["a", "a", "b"])
        >>> cls.tolist(), S.round(2).tolist()
        (['a', 'b'], [[0.5, 0.1], [0.1, nan]])
    """
    K = check_square_symmetric(as_float_array(K, "K", ndim=2), "K")
    c = _class_labels(classes, "classes")
    check_lengths("K", K.shape[0], "classes", len(c))
    Kn = normalize_kernel(K, diag, diag)
    vals, idx = np.unique(c, return_inverse=True)
    C = len(vals)
    off = ~np.eye(len(c), dtype=bool)
    table = np.full((C, C), np.nan)
    for a in range(C):
        for b in range(C):
            m = (idx[:, None] == a) & (idx[None, :] == b) & off
            if m.any():
                table[a, b] = Kn[m].mean()
    return vals, table


def _weighted_class_tables(Kn, idx, C: int, W) -> np.ndarray:
    """Class-pair mean ``K̃`` tables ``(B, C, C)`` for point multiplicities ``W`` ``(B, n)``:
    the tables of the resampled points, over pairs of distinct original points (a point is
    never paired with itself or its copies). ``idx``: class index of each point."""
    Kn = np.array(Kn, dtype=np.float64)
    np.fill_diagonal(Kn, 0.0)
    idx = np.asarray(idx)
    W = np.asarray(W, dtype=np.float64)                                   # (B, n)
    onehot = (idx[None, :] == np.arange(C)[:, None]).astype(np.float64)   # (C, n)
    num = np.empty((W.shape[0], C, C))
    for a in range(C):
        # sum_{i in a, j} W[b,i] Kn[i,j] W[b,j], split by the class of j: one BLAS product
        # per class a, over the points of a only (no products with zero weights)
        ia = idx == a
        num[:, a, :] = ((W[:, ia] @ Kn[ia]) * W) @ onehot.T
    tot = W @ onehot.T                                                    # (B, C)
    den = tot[:, :, None] * tot[:, None, :]
    # a point is never paired with itself: the same-class cells lose sum_i W[b,i]^2
    den[:, np.arange(C), np.arange(C)] -= (W * W) @ onehot.T
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


@dataclass
class LabelSystemComparison:
    """Class-pair similarities of one kernel under label systems A and B.

    Attributes:
        classes: the fine classes (sorted).
        sim_a, sim_b: ``C × C`` mean ``K̃`` tables under A and B.
        labels_a, labels_b: the binary label of each fine class under A and B.
        normalized_a, normalized_b: the normalised kernels ``K̃`` behind the tables (kept by
            :func:`compare_label_systems`, needed by :meth:`follow_interval`).
        fine: the fine class of each point of those kernels.
    """

    classes: np.ndarray
    sim_a: np.ndarray
    sim_b: np.ndarray
    labels_a: dict
    labels_b: dict
    normalized_a: np.ndarray | None = None
    normalized_b: np.ndarray | None = None
    fine: np.ndarray | None = None

    def rows(self):
        """``[(class_i, class_j, sim_A, sim_B), ...]`` for ``i <= j``."""
        out = []
        for a in range(len(self.classes)):
            for b in range(a, len(self.classes)):
                out.append((self.classes[a], self.classes[b], float(self.sim_a[a, b]),
                            float(self.sim_b[a, b])))
        return out

    def max_change(self) -> float:
        """``max |sim_A − sim_B|`` over class pairs (0 for a label-agnostic kernel)."""
        return float(np.nanmax(np.abs(self.sim_a - self.sim_b)))

    def label_gap(self) -> tuple[float, float]:
        """``(gap_A, gap_B)``: under each system, the mean similarity of the pairs of distinct
        classes that share a binary label minus that of the pairs that do not. Positive when
        the kernel pulls together what the system labels alike; equal for a label-agnostic
        kernel only by coincidence of the classes (it does not see the labels).

        Example:
            >>> import numpy as np
            >>> S = np.array([[1.0, 0.5, 0.1], [0.5, 1.0, 0.2], [0.1, 0.2, 1.0]])
            >>> c = LabelSystemComparison(np.array([0, 1, 2]), S, S, {0: 1, 1: 1, 2: -1},
            ...                           {0: 1, 2: 1, 1: -1})
            >>> [round(g, 2) for g in c.label_gap()]   # A: 0.5 - 0.15; B: 0.1 - 0.35
            [0.35, -0.25]
        """
        return (float(self._gap(self.sim_a, self.labels_a)),
                float(self._gap(self.sim_b, self.labels_b)))

    def _alike(self, labels) -> np.ndarray:
        upper = np.triu_indices(len(self.classes), 1)   # pairs of distinct classes
        lab = np.array([labels[c] for c in self.classes])
        alike = (lab[:, None] == lab[None, :])[upper]
        if alike.all() or not alike.any():
            raise ValueError("the label gap needs class pairs both with and without a "
                             "shared label")
        return alike

    def _gap(self, sim, labels):
        """Label gap of table(s) ``sim`` (``(..., C, C)``) under the grouping ``labels``."""
        alike = self._alike(labels)
        upper = np.triu_indices(len(self.classes), 1)
        vals = np.asarray(sim)[..., upper[0], upper[1]]
        return vals[..., alike].mean(-1) - vals[..., ~alike].mean(-1)

    def _follow(self, sim_a, sim_b):
        return 0.5 * ((self._gap(sim_a, self.labels_a) - self._gap(sim_b, self.labels_a))
                      + (self._gap(sim_b, self.labels_b) - self._gap(sim_a, self.labels_b)))

    def follow_change(self) -> float:
        """How far the kernel follows the label system: the mean over the two systems of
        (its label gap under the system, built under that system) minus (the same gap, built
        under the other system),
        ``½[(gap_A(S_A) − gap_A(S_B)) + (gap_B(S_B) − gap_B(S_A))]``.

        Exactly 0 for a label-agnostic kernel (``S_A = S_B``), whatever the geometry of the
        classes; positive when building the kernel under a system pulls together the class
        pairs that system labels alike.

        Example:
            >>> import numpy as np
            >>> S = np.array([[1.0, 0.5, 0.1], [0.5, 1.0, 0.2], [0.1, 0.2, 1.0]])
            >>> A, B = {0: 1, 1: 1, 2: -1}, {0: 1, 2: 1, 1: -1}
            >>> LabelSystemComparison(np.array([0, 1, 2]), S, S, A, B).follow_change()
            0.0
        """
        return float(self._follow(self.sim_a, self.sim_b))

    def follow_interval(self, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
        """:meth:`follow_change` with a bootstrap interval over the points.

        Resamples the points (with replacement, the same resample under A and B) and
        recomputes the class-pair tables as weighted means over pairs of distinct points, so
        the interval is over the evaluation points, conditional on the kernels built (a
        trained network's seed is not resampled).

        Returns:
            ``{"estimate", "low", "high", "n_boot", "level"}``.
        """
        if self.normalized_a is None or self.normalized_b is None or self.fine is None:
            raise ValueError("the bootstrap needs the normalised kernels: build the comparison "
                             "with compare_label_systems")
        n_boot, level, seed = _bootstrap_settings(n_boot, level, seed)
        idx = np.searchsorted(self.classes, self.fine)
        C, n = len(self.classes), len(self.fine)
        W = _bootstrap_weights(np.random.default_rng(seed), n, n_boot)         # (B, n)
        reps = self._follow(_weighted_class_tables(self.normalized_a, idx, C, W),
                            _weighted_class_tables(self.normalized_b, idx, C, W))
        est = self.follow_change()
        lo, hi = _percentile_interval(est, np.asarray(reps), level)
        return {"estimate": est, "low": lo, "high": hi, "n_boot": int(n_boot),
                "level": float(level)}

    def __str__(self) -> str:
        lines = [f"{'pair':>24s} {'A':>8s} {'B':>8s}"]
        for ci, cj, a, b in self.rows():
            lines.append(f"{str(ci) + ' / ' + str(cj):>24s} {a:8.4f} {b:8.4f}")
        return "\n".join(lines)


def _binary_map(system, fine: np.ndarray, name: str) -> tuple[np.ndarray, dict]:
    vals = np.unique(fine)
    if callable(system) and not isinstance(system, Mapping):
        mapping = {v: system(v) for v in vals}
    else:
        if not isinstance(system, Mapping):
            raise ValueError(f"{name} must be a mapping (or callable) from fine class to ±1, "
                             f"got {type(system).__name__}")
        missing = [v.item() if hasattr(v, "item") else v for v in vals if v not in system]
        if missing:
            raise ValueError(f"{name} gives no label for class(es) {missing}")
        mapping = {v: system[v] for v in vals}
    labels = {float(v) for v in mapping.values()}
    if not labels <= {-1.0, 1.0} or len(labels) != 2:
        raise ValueError(f"{name} must map the fine classes onto both binary labels -1 and +1, "
                         f"got {sorted(labels)}")
    return np.array([float(mapping[v]) for v in fine]), mapping


@x64
def compare_label_systems(kernel_factory, X, fine_labels, system_a, system_b, diag=None):
    """Similarity of every pair of fine classes under label systems A and B (spec §6).

    Args:
        kernel_factory: ``(X, y) -> K`` (``n × n``) building a kernel from the inputs and the
            binary labels ``y`` of the current system; a label-agnostic kernel ignores ``y``.
            A mapping ``{name: factory}`` compares several kernels at once.
        X: the inputs, passed to the factory unchanged.
        fine_labels: ``(n,)`` fine class of each input (e.g. CIFAR-10 class indices).
        system_a, system_b: mapping (or callable) from fine class to ``±1``.
        diag: self-kernels to normalise by (see :func:`class_pair_similarity`); with a
            mapping of factories, also a mapping ``{name: diag}`` (names it lacks use their
            own kernel's diagonal). Default: each kernel's own diagonal.

    Returns:
        A :class:`LabelSystemComparison`, or ``{name: LabelSystemComparison}`` for a mapping.

    Example:
        >>> import numpy as np
        >>> from lantk.label_aware import lantk_kernel, oracle_Z
        >>> X = np.random.default_rng(0).normal(size=(12, 3))
        >>> fine = np.repeat([3, 5, 1, 9], 3)             # cat, dog, automobile, truck
        >>> A = {3: 1, 5: 1, 1: -1, 9: -1}; B = {3: 1, 1: 1, 5: -1, 9: -1}
        >>> rbf = lambda X, y: np.exp(-((X[:, None] - X[None]) ** 2).sum(-1))
        >>> la = lambda X, y: lantk_kernel(rbf(X, y), oracle_Z(y, y), 0.5)
        >>> out = compare_label_systems({"rbf": rbf, "label-aware": la}, X, fine, A, B)
        >>> out["rbf"].max_change() == 0.0, out["label-aware"].max_change() > 0.0
        (True, True)
    """
    if isinstance(kernel_factory, Mapping):
        diags = diag if isinstance(diag, Mapping) else dict.fromkeys(kernel_factory, diag)
        return {name: compare_label_systems(f, X, fine_labels, system_a, system_b,
                                            diag=diags.get(name))
                for name, f in kernel_factory.items()}
    if not callable(kernel_factory):
        raise ValueError(  # noqa: TRY004 (bad input is a ValueError throughout lantk)
            "kernel_factory must be a callable (X, y) -> K or a mapping of them")
    fine = _class_labels(fine_labels, "fine_labels")
    ya, _ = _binary_map(system_a, fine, "system_a")
    yb, _ = _binary_map(system_b, fine, "system_b")
    n = len(fine)
    built = {}
    for key, y in (("a", ya), ("b", yb)):
        K = np.asarray(kernel_factory(X, y), dtype=np.float64)
        if K.shape != (n, n):
            raise ValueError(f"kernel_factory returned shape {K.shape}, expected {(n, n)}")
        built[key] = K
    return comparison_from_kernels(built["a"], built["b"], fine, system_a, system_b, diag=diag)


def binary_labels(system, fine_labels) -> np.ndarray:
    """The ``±1`` label of each point under a label system (a mapping or callable from fine
    class to ``±1``), as float64: what a kernel built under that system is given.

    Example:
        >>> binary_labels({3: 1, 5: -1}, [3, 5, 5]).tolist()
        [1.0, -1.0, -1.0]
    """
    return _binary_map(system, _class_labels(fine_labels, "fine_labels"), "system")[0]


def comparison_from_kernels(K_a, K_b, fine_labels, system_a, system_b, diag=None):
    """A :class:`LabelSystemComparison` of two kernels already built, ``K_a`` under system A
    and ``K_b`` under system B, on the same points (``n × n`` each).

    What :func:`compare_label_systems` does once its factory has built the two kernels; use
    it when the kernels come from elsewhere (two networks trained under A and B, at one
    epoch of their training). ``diag``: the self-kernels to normalise both by (default: each
    kernel's own diagonal).

    Example:
        >>> import numpy as np
        >>> K = np.eye(4) + 0.5
        >>> c = comparison_from_kernels(K, K, [0, 0, 1, 1], {0: 1, 1: -1}, {0: -1, 1: 1})
        >>> c.max_change()
        0.0
    """
    fine = _class_labels(fine_labels, "fine_labels")
    _, map_a = _binary_map(system_a, fine, "system_a")
    _, map_b = _binary_map(system_b, fine, "system_b")
    n = len(fine)
    out, norm = {}, {}
    for key, K, name in (("a", K_a, "K_a"), ("b", K_b, "K_b")):
        K = as_float_array(K, name, ndim=2)
        if K.shape != (n, n):
            raise ValueError(f"{name} has shape {K.shape}, expected {(n, n)} (one row and "
                             f"column per point of fine_labels)")
        out[key] = class_pair_similarity(K, fine, diag)
        d = np.diag(K) if diag is None else as_float_array(diag, "diag", ndim=1)
        norm[key] = normalize_kernel(K, d, d)
    classes = out["a"][0]
    return LabelSystemComparison(classes=classes, sim_a=out["a"][1], sim_b=out["b"][1],
                                 labels_a=map_a, labels_b=map_b, normalized_a=norm["a"],
                                 normalized_b=norm["b"], fine=fine)


@dataclass
class LabelSystemDynamics:
    """Class-pair similarities and ``follow_change`` of a network's kernel over training.

    Attributes:
        epochs: the epochs recorded, ascending (0 = initialisation).
        comparisons: one :class:`LabelSystemComparison` per epoch: the kernel of the network
            trained under A against that of the network trained under B, at that epoch.
        follow: one :meth:`LabelSystemComparison.follow_interval` per epoch.
    """

    epochs: list
    comparisons: list
    follow: list

    def pairs(self) -> list:
        """The pairs of distinct fine classes ``[(c_i, c_j), ...]``, in the order of
        :meth:`similarities`."""
        cls = self.comparisons[0].classes
        return [(cls[a], cls[b]) for a in range(len(cls)) for b in range(a + 1, len(cls))]

    def similarities(self, system: str) -> np.ndarray:
        """``(epochs, pairs)`` mean ``K̃`` of each pair of distinct classes, for the kernel
        built under ``system`` (``"A"`` or ``"B"``)."""
        if system not in ("A", "B"):
            raise ValueError(f"system must be 'A' or 'B', got {system!r}")
        upper = np.triu_indices(len(self.comparisons[0].classes), 1)
        return np.array([(c.sim_a if system == "A" else c.sim_b)[upper] for c in self.comparisons])

    def alike(self, system: str) -> np.ndarray:
        """Whether each pair of :meth:`pairs` shares a binary label under ``system``."""
        c = self.comparisons[0]
        return c._alike(c.labels_a if system == "A" else c.labels_b)

    def first_following_epoch(self):
        """The first epoch whose ``follow_change`` interval lies wholly above zero, or
        ``None`` when none does.

        Example:
            >>> d = LabelSystemDynamics([0, 5, 10], [None] * 3, [
            ...     {"low": 0.0, "high": 0.0}, {"low": 0.01, "high": 0.2},
            ...     {"low": -0.01, "high": 0.3}])
            >>> d.first_following_epoch(), d.following_from()
            (5, None)
        """
        return next((int(e) for e, f in zip(self.epochs, self.follow) if f["low"] > 0), None)

    def following_from(self):
        """The first epoch from which *every* later recorded interval lies above zero, or
        ``None`` (the last epoch's interval contains zero or lies below it)."""
        out = None
        for e, f in zip(self.epochs, self.follow):
            if f["low"] > 0:
                out = int(e) if out is None else out
            else:
                out = None
        return out

    def to_dict(self) -> dict:
        """Per-epoch numbers for a results file: the epochs, the class pairs, each system's
        similarities ``(epochs, pairs)``, which pairs share a label under each system, the
        label gaps and the ``follow_change`` intervals."""
        pairs = self.pairs()
        return {
            "epochs": [int(e) for e in self.epochs],
            "pairs": [[_plain(a), _plain(b)] for a, b in pairs],
            "similarity_A": self.similarities("A").tolist(),
            "similarity_B": self.similarities("B").tolist(),
            "alike_A": self.alike("A").tolist(), "alike_B": self.alike("B").tolist(),
            "label_gap": [list(c.label_gap()) for c in self.comparisons],
            "follow_change": [dict(f) for f in self.follow],
            "first_following_epoch": self.first_following_epoch(),
            "following_from": self.following_from(),
        }


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def label_systems_over_training(kernels_a, kernels_b, fine_labels, system_a, system_b, *,
                                diag=None, n_boot: int = 2000, level: float = 0.95,
                                seed: int = 0) -> LabelSystemDynamics:
    """Follow the label-system comparison epoch by epoch.

    Args:
        kernels_a, kernels_b: ``{epoch: K}``: the empirical NTK (``n × n``, on the points of
            ``fine_labels``) of the network trained under system A, resp. B, recorded at the
            same epochs (e.g. :attr:`lantk.train.TrainResult.probe_ntk` of two runs).
        fine_labels, system_a, system_b, diag: as for :func:`compare_label_systems`.
        n_boot, level, seed: the bootstrap of each epoch's ``follow_change``
            (:meth:`LabelSystemComparison.follow_interval`; the same seed, so the same
            resamples, at every epoch).

    Returns:
        A :class:`LabelSystemDynamics`.

    Example:
        >>> import numpy as np
        >>> fine = np.repeat([0, 1, 2, 3], 3)
        >>> A = {0: 1, 1: 1, 2: -1, 3: -1}; B = {0: 1, 2: 1, 1: -1, 3: -1}
        >>> same = lambda s: np.array([[s[i] == s[j] for j in fine] for i in fine], float)
        >>> Ka = {0: np.eye(12) + 0.5, 1: np.eye(12) + 0.5 + 0.1 * same(A)}
        >>> Kb = {0: np.eye(12) + 0.5, 1: np.eye(12) + 0.5 + 0.1 * same(B)}
        >>> dyn = label_systems_over_training(Ka, Kb, fine, A, B, n_boot=50)
        >>> [round(f["estimate"], 4) for f in dyn.follow], dyn.first_following_epoch()
        ([0.0, 0.0938], 1)
    """
    ea, eb = sorted(kernels_a), sorted(kernels_b)
    if ea != eb:
        raise ValueError(f"kernels_a and kernels_b must be recorded at the same epochs, got "
                         f"{ea} and {eb}")
    if not ea:
        raise ValueError("no epoch recorded")
    comps = [comparison_from_kernels(kernels_a[e], kernels_b[e], fine_labels, system_a,
                                     system_b, diag=diag) for e in ea]
    follow = [c.follow_interval(n_boot=n_boot, level=level, seed=seed) for c in comps]
    return LabelSystemDynamics(epochs=list(ea), comparisons=comps, follow=follow)


def kernel_method_comparison(kernels, y_train, y_test, *, outputs=None, differences=(),
                             rho: float = 0.0, level: float = 0.95) -> dict:
    """Accuracy of kernel regression with several kernels (and of given predictors) on the
    same test points, with paired differences.

    Each kernel ``(K_train, K_test_train)`` predicts ``sign f`` with
    ``f = K(X*, X)(K + ρI)⁻¹ y`` (:func:`lantk.regression.kernel_regression`, float64;
    :func:`lantk.regression.predict_labels`). ``outputs`` adds predictors scored as they are
    (a trained network's test outputs). A difference ``(a, b)`` is the mean over the test
    points of ``correct_a − correct_b`` with its t-interval
    (:func:`lantk.experiments.paired_difference`): the interval is over the test points, for
    these kernels and this network.

    Args:
        kernels: ``{name: (K_train (n, n), K_test_train (b, n))}``.
        y_train, y_test: ``±1`` labels.
        outputs: ``{name: decision values (b,) or (b, 1)}``.
        differences: ``[(a, b), ...]`` names to compare.

    Returns:
        ``{"accuracy": {name: float}, "correct": {name: 0/1 int8 (b,)}, "jitter": {kernel:
        the diagonal shift the solve had to add, 0 when none}, "differences": [{"a", "b",
        "mean", "low", "high", "n", ...}, ...], "n_test": b}``.

    Example:
        >>> import numpy as np
        >>> X = np.array([[-2.0], [-1.0], [1.0], [2.0]]); y = np.array([-1.0, -1, 1, 1])
        >>> Xt = np.array([[-1.5], [0.5], [1.5]]); yt = np.array([-1.0, -1, 1])
        >>> rbf = lambda A, B: np.exp(-(A - B.T) ** 2)
        >>> out = kernel_method_comparison({"rbf": (rbf(X, X), rbf(Xt, X))}, y, yt,
        ...                                outputs={"sign": Xt[:, 0]},
        ...                                differences=[("sign", "rbf")])
        >>> out["accuracy"]["sign"], out["correct"]["rbf"].tolist()
        (0.6666666666666666, [1, 0, 1])
    """
    from lantk import regression
    from lantk.experiments import paired_difference

    yt = np.asarray(y_test, dtype=np.float64)
    correct, jitter = {}, {}
    for name, (K_tr, K_te) in dict(kernels).items():
        f, info = regression.kernel_regression(K_tr, K_te, y_train, rho=rho, return_info=True)
        if f.ndim != 1:
            raise ValueError("kernel_method_comparison is for binary ±1 labels")
        check_lengths(f"{name}'s test rows", len(f), "y_test", len(yt))
        correct[name] = (regression.predict_labels(f) == yt).astype(np.int8)
        jitter[name] = float(info.jitter)
    for name, out in dict(outputs or {}).items():
        f = as_float_array(out, name, ndim=(1, 2))
        if f.ndim == 2:
            if f.shape[1] != 1:
                raise ValueError(f"{name}: binary decision values must be (b,) or (b, 1), got "
                                 f"shape {f.shape}")
            f = f[:, 0]
        if name in correct:
            raise ValueError(f"{name!r} is both a kernel and an output")
        check_lengths(name, len(f), "y_test", len(yt))
        correct[name] = (regression.predict_labels(f) == yt).astype(np.int8)
    diffs = []
    for a, b in differences:
        for m in (a, b):
            if m not in correct:
                raise ValueError(f"unknown method {m!r} in differences; known: "
                                 f"{', '.join(correct)}")
        diffs.append({"a": a, "b": b, **paired_difference(correct[a], correct[b], level=level)})
    return {"accuracy": {k: float(v.mean()) for k, v in correct.items()}, "correct": correct,
            "jitter": jitter, "differences": diffs, "n_test": len(yt)}
