"""FJLT-V1 / FJLT-V2: least squares of ``y_i y_j`` on features of the pair (spec §4)."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
from scipy.spatial.distance import cdist, pdist, squareform

from lantk._checks import Labels, as_float_array, check_kernel_pair, check_lengths, encode_labels
from lantk.label_aware._common import _check_variant, _flatten, _sym
from lantk.label_aware._sketch import _SketchPlan, sketch_rows

__all__ = ["FEATURES_V1", "FEATURES_V2", "PairRegression", "fjlt_estimate", "pair_features",
           "shared_distances"]

FEATURES_V1 = ("K", "dot", "cos", "sqdist", "normprod", "sin", "angle", "rbf", "pearson", "l1")
"""The 10 pair features of FJLT-V1 (spec §4), in column order: ``K(x,x')``, ``xᵀx'``,
``cos ∠``, ``‖x − x'‖²``, ``‖x‖‖x'‖``, ``sin ∠``, ``∠``, ``exp(−‖x − x'‖²/s²)``, the Pearson
correlation of the two pixel vectors, ``‖x − x'‖₁``."""
N_PCA = 5
FEATURES_V2 = FEATURES_V1 + tuple(f"pca_prod{k}" for k in range(N_PCA)) + tuple(
    f"pca_absdiff{k}" for k in range(N_PCA))
"""FJLT-V2: the V1 features plus ``z ∘ z'`` and ``|z − z'|`` for the top-5 PCA coordinates
``z`` (fit on the training inputs)."""


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
    """``‖a − b‖₁`` for all row pairs (scipy's C ``cdist``/``pdist``, in two threads).

    ``B is A`` (the training pairs) computes each unordered pair once. The last few results
    are kept, keyed by the arrays' contents: FJLT-V1 and FJLT-V2 on the same inputs (as
    :func:`lantk.experiments.evaluate_methods` runs them) share the distances. Inside
    :func:`shared_distances`, rows of its pool are looked up instead."""
    if _POOL:
        found = _POOL[-1].lookup(A, B)
        if found is not None:
            return found
    key = (A.shape, B.shape, B is A, _digest(A), None if B is A else _digest(B))
    if key in _L1_MEMO:
        return _L1_MEMO[key]
    out = _l1_sym(A) if B is A else _l1_cross(A, B)
    out.setflags(write=False)
    if len(_L1_MEMO) >= 4:
        _L1_MEMO.pop(next(iter(_L1_MEMO)))
    _L1_MEMO[key] = out
    return out


_L1_MEMO: dict = {}


class _Pool:
    """The L1 distances between all rows of a pool, and each row's position (by content)."""

    def __init__(self, X: np.ndarray):
        self.D = _l1_sym(X)
        self.D.setflags(write=False)
        self.rows = {}
        for i, r in enumerate(X):
            self.rows.setdefault(_digest(r), i)

    def positions(self, A: np.ndarray):
        pos = [self.rows.get(_digest(r)) for r in A]
        return None if any(p is None for p in pos) else np.asarray(pos, np.intp)

    def lookup(self, A: np.ndarray, B: np.ndarray):
        ia = self.positions(A)
        ib = ia if B is A or ia is None else self.positions(B)
        if ia is None or ib is None:
            return None
        out = self.D[np.ix_(ia, ib)]
        out.setflags(write=False)
        return out


_POOL: list = []


@contextlib.contextmanager
def shared_distances(X_pool):
    """Within the ``with`` block, the L1 distances FJLT-V1/V2 need between rows of ``X_pool``
    (``(N, d)``, the inputs exactly as the fits will see them, flattened float64) are sliced
    from one computation over the pool instead of computed per fit: for cross-fitting, where
    every fold's training and test inputs are rows of one pool
    (:func:`lantk.experiments.binary_pair_run` with ``folds``). The slices are bit-identical
    to what the fits would compute (the same C loop per pair; the tests check it); inputs
    that are not rows of the pool are computed as usual. ``None``: no pool (a no-op)."""
    if X_pool is None:
        yield
        return
    _POOL.append(_Pool(np.ascontiguousarray(as_float_array(X_pool, "X_pool", ndim=2))))
    try:
        yield
    finally:
        _POOL.pop()


def _digest(X: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(X).view(np.uint8), digest_size=16).digest()


def _l1_cross(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    if A.shape[0] * B.shape[0] * A.shape[1] < 5e7:
        return cdist(A, B, "cityblock")
    from concurrent.futures import ThreadPoolExecutor

    half = A.shape[0] // 2
    with ThreadPoolExecutor(2) as ex:
        parts = list(ex.map(lambda s: cdist(A[s], B, "cityblock"),
                            [slice(0, half), slice(half, None)]))
    return np.vstack(parts)


def _l1_sym(A: np.ndarray) -> np.ndarray:
    """Symmetric ``‖a_i − a_j‖₁``: the two diagonal blocks of the row halves in one thread,
    the off-diagonal block in the other (each about a quarter of the n² pairs)."""
    n = A.shape[0]
    if n * n * A.shape[1] < 1e8:
        return squareform(pdist(A, "cityblock"))
    from concurrent.futures import ThreadPoolExecutor

    h = n - int(round(n / np.sqrt(2.0)))   # n1²/2 + n2²/2 ≈ n1·n2 with n1 = h
    A1, A2 = A[:h], A[h:]
    with ThreadPoolExecutor(2) as ex:
        diag = ex.submit(lambda: (squareform(pdist(A1, "cityblock")),
                                  squareform(pdist(A2, "cityblock"))))
        off = ex.submit(cdist, A1, A2, "cityblock")
        (D11, D22), D12 = diag.result(), off.result()
    return np.block([[D11, D12], [D12.T, D22]])


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
