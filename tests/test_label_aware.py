"""LANTK-HR (spec §3-§4): oracle, KR-V1/V2, FJLT-V1/V2 (exact and sketch), K + λZ."""
import math

import numpy as np
import pytest
import scipy.linalg as sla

from lantk import label_aware
from lantk.label_aware import _sketch
from lantk.label_aware import (
    FEATURES_V1,
    FEATURES_V2,
    fjlt_estimate,
    kr_estimate,
    lantk_kernel,
    oracle_Z,
    pair_features,
    scale_lambda,
)


def _relu_ntk(A, B):
    """Two-layer ReLU NTK closed form (spec §2), for realistic test kernels."""
    na, nb = np.linalg.norm(A, axis=1), np.linalg.norm(B, axis=1)
    G = A @ B.T
    c = np.clip(G / np.outer(na, nb), -1, 1)
    th = np.arccos(c)
    return G * (np.pi - th) / (2 * np.pi) + np.outer(na, nb) * (np.sin(th) + (np.pi - th) * c) / (
        2 * np.pi)


def _data(n=20, b=6, d=7, seed=0, classes=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n + b, d))
    K = _relu_ntk(X, X)
    K = 0.5 * (K + K.T)
    score = X[:, 0] + 0.5 * X[:, 1]
    if classes == 2:
        y = np.where(score > 0, 1.0, -1.0)
    else:
        y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    return X[:n], X[n:], K[:n, :n], K[n:, :n], y[:n], y[n:]


# ----------------------------------------------------------------------------- oracle
def test_oracle_binary_and_multiclass():
    np.testing.assert_array_equal(oracle_Z([1, -1], [1, 1, -1]),
                                  [[1, 1, -1], [-1, -1, 1]])
    Z = oracle_Z(np.array([0, 2]), np.array([0, 1, 2, 2]))
    C = 3  # taken from both arguments
    expect = np.array([[1, 0, 0, 0], [0, 0, 1, 1]]) - 1 / C
    np.testing.assert_allclose(Z, expect)
    # the train-train oracle is Y Yᵀ: positive iff same class
    y = np.array([0, 1, 1, 2, 0])
    Zt = oracle_Z(y, y)
    assert np.all((Zt > 0) == (y[:, None] == y[None, :]))
    # test labels from fewer classes than the training labels
    assert oracle_Z(np.array([1, 1]), np.array([0, 1, 2])).shape == (2, 3)


# ----------------------------------------------------------------------------- KR-V1 / V2
def _nw_brute(H, T, h_matrix):
    """Nadaraya-Watson computed literally from the definition: a full O(n²) sum per pair."""
    s2 = (H.max() - H.min()) ** 2
    out = np.empty(h_matrix.shape)
    for a in range(h_matrix.shape[0]):
        for b in range(h_matrix.shape[1]):
            num = den = 0.0
            for i in range(H.shape[0]):
                for j in range(H.shape[1]):
                    w = s2 - (h_matrix[a, b] - H[i, j]) ** 2
                    num += w * T[i, j]
                    den += w
            out[a, b] = num / den
    return out


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("variant", ["v1", "v2"])
def test_kr_matches_brute_force(variant, classes):
    _Xtr, _Xte, H, Ht, y, _ = _data(n=9, b=3, d=12, classes=classes)
    Z, Zt = kr_estimate(H, Ht, y, variant=variant)
    Y = y[:, None] if classes == 2 else np.eye(classes)[y.astype(int)] - 1 / classes
    W = Y if variant == "v1" else np.linalg.solve(H, Y)  # α = H⁻¹ y (n×C for multi-class)
    T = W @ W.T  # y yᵀ, or α αᵀ summed over classes
    np.testing.assert_allclose(Z, _nw_brute(H, T, H), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(Zt, _nw_brute(H, T, Ht), rtol=1e-10, atol=1e-13)


def test_kr_properties():
    _Xtr, _Xte, H, Ht, y, _ = _data(n=30, b=5)
    for v in ("v1", "v2"):
        Z, Zt = kr_estimate(H, Ht, y, variant=v)
        assert Z.shape == (30, 30) and Zt.shape == (5, 30)
        np.testing.assert_array_equal(Z, Z.T)
        # Z depends on the pair only through h = K(x, x'): equal kernel values, equal Z
        _Z2, Zt2 = kr_estimate(H, H[:4], y, variant=v)
        np.testing.assert_allclose(Zt2, Z[:4], rtol=1e-13)
    assert kr_estimate(H, None, y)[1] is None


def test_kr_v2_ridge():
    _, _, H, _Ht, y, _ = _data(n=10, b=2, d=15)
    Z, _ = kr_estimate(H, None, y, variant="v2", rho=0.5)
    a = np.linalg.solve(H + 0.5 * np.eye(10), y)
    np.testing.assert_allclose(Z, _nw_brute(H, np.outer(a, a), H), rtol=1e-10)


def test_kr_multiclass_shapes():
    _, _, H, Ht, y, _ = _data(n=24, b=5, classes=4)
    for v in ("v1", "v2"):
        Z, Zt = kr_estimate(H, Ht, y.astype(int), variant=v)
        assert Z.shape == (24, 24) and Zt.shape == (5, 24)


# ----------------------------------------------------------------------------- λ and K + λZ
def test_scale_lambda_and_lantk_kernel():
    _, _, H, Ht, y, _yt = _data(n=15, b=4)
    Z, Zt = kr_estimate(H, Ht, y)
    lam = scale_lambda(H, Z, 0.7)
    assert lam == pytest.approx(0.7 * np.abs(H).mean() / np.abs(Z).mean())
    K, Kt = lantk_kernel(H, Z, 0.7, H_test_train=Ht, Z_test=Zt)
    np.testing.assert_allclose(K, H + lam * Z)
    np.testing.assert_allclose(Kt, Ht + lam * Zt)  # the same λ for the test block
    np.testing.assert_allclose(lantk_kernel(H, Z, 0.7), K)
    np.testing.assert_allclose(lantk_kernel(H, Z, 123.0, lam=2.0), H + 2.0 * Z)
    # the oracle kernel: with c, λ makes mean|λZ| = c · mean|H|
    Zo = oracle_Z(y, y)
    Ko = lantk_kernel(H, Zo, 1.0)
    assert np.abs(Ko - H).mean() == pytest.approx(np.abs(H).mean())
    np.testing.assert_allclose(lantk_kernel(H, Z, 0.0), H)


def test_lantk_kernel_bad_input():
    _, _, H, Ht, y, _ = _data(n=10, b=2)
    Z, Zt = kr_estimate(H, Ht, y)
    with pytest.raises(ValueError, match="give both H_test_train and Z_test"):
        lantk_kernel(H, Z, 1.0, H_test_train=Ht)
    with pytest.raises(ValueError, match="Z_train has shape"):
        lantk_kernel(H, Z[:5, :5], 1.0)
    with pytest.raises(ValueError, match="Z_test has shape"):
        lantk_kernel(H, Z, 1.0, H_test_train=Ht, Z_test=Zt[:, :3])
    with pytest.raises(ValueError, match="identically zero"):
        lantk_kernel(H, np.zeros_like(H), 1.0)
    with pytest.raises(ValueError, match="Z_train must be symmetric"):
        lantk_kernel(H, Z + np.triu(np.ones_like(Z), 1), 1.0)
    with pytest.raises(ValueError, match="contains NaN"):
        lantk_kernel(H, np.where(np.eye(10) > 0, np.nan, Z), 1.0)
    with pytest.raises(ValueError, match="c must be a finite number"):
        lantk_kernel(H, Z, np.inf)


# ----------------------------------------------------------------------------- FJLT features
def test_pair_features_follow_the_definitions():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(6, 9))
    H = _relu_ntk(X, X)
    F = pair_features(X, X, H, "v2")
    assert F.shape == (6, 6, 20) and len(FEATURES_V2) == 20 and len(FEATURES_V1) == 10
    # literal per-pair formulas
    n = len(X)
    s2 = np.mean([np.sum((X[i] - X[j]) ** 2) for i in range(n) for j in range(n) if i != j])
    Xc = X - X.mean(0)
    _, _, Vt = np.linalg.svd(Xc, full_matrices=False)
    z = Xc @ Vt[:5].T
    for i, j in [(0, 1), (2, 5), (3, 3)]:
        x, xp = X[i], X[j]
        cos = x @ xp / (np.linalg.norm(x) * np.linalg.norm(xp))
        ang = np.arccos(np.clip(cos, -1, 1))
        expect = [H[i, j], x @ xp, cos, np.sum((x - xp) ** 2),
                  np.linalg.norm(x) * np.linalg.norm(xp), np.sin(ang), ang,
                  np.exp(-np.sum((x - xp) ** 2) / s2), np.corrcoef(x, xp)[0, 1],
                  np.sum(np.abs(x - xp))]
        expect += list(np.abs(z[i] * z[j])) + list(np.abs(z[i] - z[j]))
        got = F[i, j].copy()
        got[10:15] = np.abs(got[10:15])  # PCA signs are arbitrary: z∘z' up to sign per axis
        np.testing.assert_allclose(got, expect, rtol=1e-7, atol=1e-7)


def _explicit_solution(X, y, H, variant, classes=2):
    """The same least squares on the materialised n²×p matrix, by numpy lstsq."""
    n = len(X)
    F = pair_features(X, X, H, variant).reshape(n * n, -1)
    Fs = (F - F.mean(0)) / F.std(0)
    A = np.column_stack([np.ones(n * n), Fs])
    if classes == 2:
        T = np.outer(y, y).ravel()
    else:
        Y = np.eye(classes)[y.astype(int)] - 1 / classes
        T = (Y @ Y.T).ravel()
    w, *_ = np.linalg.lstsq(A, T, rcond=None)
    return w, A, T


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("variant", ["v1", "v2"])
def test_fjlt_exact_matches_lstsq(variant, classes):
    Xtr, Xte, H, Ht, y, _ = _data(n=30, b=4, d=8, classes=classes)
    Z, Zt, fit = fjlt_estimate(Xtr, y, Xte, H, Ht, variant=variant, solver="exact",
                               return_fit=True)
    w, A, T = _explicit_solution(Xtr, y, H, variant, classes)
    np.testing.assert_allclose(fit.coef, w, rtol=1e-7, atol=1e-9 * np.abs(w).max())
    np.testing.assert_allclose(Z.ravel(), A @ w, rtol=1e-9, atol=1e-10)
    assert fit.rss == pytest.approx(np.sum((T - A @ w) ** 2), rel=1e-9)
    # test rows: the same linear function of the test pairs' features
    Ft = pair_features(Xte, Xtr, Ht, variant, X_train=Xtr).reshape(-1, A.shape[1] - 1)
    F = pair_features(Xtr, Xtr, H, variant).reshape(-1, A.shape[1] - 1)
    At = np.column_stack([np.ones(len(Ft)), (Ft - F.mean(0)) / F.std(0)])
    np.testing.assert_allclose(Zt.ravel(), At @ w, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(Z, Z.T)


def test_fjlt_images_are_flattened_and_test_rows_independent():
    rng = np.random.default_rng(4)
    Xi = rng.normal(size=(25, 3, 3, 2))
    Xf = Xi.reshape(25, -1)
    H = _relu_ntk(Xf, Xf)
    y = np.where(Xf[:, 0] > 0, 1.0, -1.0)
    a = fjlt_estimate(Xi[:20], y[:20], Xi[20:], H[:20, :20], H[20:, :20], variant="v2")
    b = fjlt_estimate(Xf[:20], y[:20], Xf[20:], H[:20, :20], H[20:, :20], variant="v2")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    # PCA and standardisation come from the training inputs only: one test row at a time
    # gives the same Z_test
    one = fjlt_estimate(Xi[:20], y[:20], Xi[22:23], H[:20, :20], H[22:23, :20], variant="v2")[1]
    np.testing.assert_allclose(one, a[1][2:3], rtol=1e-12)


def test_constant_feature_is_dropped():
    # inputs on the sphere: ‖x‖‖x'‖ is constant and ‖x − x'‖² = 2 − 2cos (collinear)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(25, 6))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    H = _relu_ntk(X, X)
    y = np.where(X[:, 0] > 0, 1.0, -1.0)
    Z, _, fit = fjlt_estimate(X, y, None, H, None, variant="v1", return_fit=True)
    assert not fit.active[FEATURES_V1.index("normprod")]
    assert fit.coef[1 + FEATURES_V1.index("normprod")] == 0.0
    assert np.all(np.isfinite(Z))


# ----------------------------------------------------------------------------- FJLT sketch
def test_fjlt_transform_equals_explicit_matrix():
    """The streamed P·H·D (Kronecker-factored Hadamard, blocks of L rows) equals the
    explicitly built k×N matrix applied to the whole column block."""
    rng = np.random.default_rng(6)
    for n_rows, L in [(300, 64), (512, 128), (37, 64)]:
        plan = _sketch._SketchPlan.make(n_rows, 25, seed=7, L_max=L)
        M = rng.normal(size=(n_rows, 4))
        S = plan.dense(n_rows)
        np.testing.assert_allclose(plan.apply(lambda a, b, M=M: M[a:b], n_rows, 4), S @ M,
                                   rtol=1e-11, atol=1e-11)
    # Hadamard matrix: orthogonal after 1/√N, entries ±1/√N
    plan = _sketch._SketchPlan.make(1000, 200, seed=1, L_max=256)
    x = rng.normal(size=(1000, 1))
    ratios = [np.linalg.norm(_sketch._SketchPlan.make(1000, 400, seed=s).apply(
        lambda a, b: x[a:b], 1000, 1)) / np.linalg.norm(x) for s in range(20)]
    assert abs(np.mean(ratios) - 1) < 0.05  # E‖Sx‖² = ‖x‖²


def test_fwht_matches_hadamard():
    rng = np.random.default_rng(8)
    for L in (1, 2, 8, 64, 128, 4096):
        x = rng.normal(size=(L, 3))
        np.testing.assert_allclose(_sketch._fwht(x), sla.hadamard(L) @ x, atol=1e-10)


@pytest.mark.parametrize("variant", ["v1", "v2"])
@pytest.mark.parametrize("eps", [0.3, 0.5])
def test_sketch_agrees_with_exact(variant, eps):
    Xtr, Xte, H, Ht, y, _ = _data(n=90, b=5, d=10, seed=2)
    Ze, Zte, fe = fjlt_estimate(Xtr, y, Xte, H, Ht, variant=variant, solver="exact",
                                return_fit=True)
    Zs, Zts, fs = fjlt_estimate(Xtr, y, Xte, H, Ht, variant=variant, solver="fjlt", eps=eps,
                                seed=3, return_fit=True)
    d = 2 + (10 if variant == "v1" else 20)
    assert fs.k == math.ceil(d * math.log(d) / eps ** 2) < 90 * 90
    resid = math.sqrt(fe.rss)
    # sketch-and-solve: the fitted values move by at most ~eps × the optimal residual ...
    assert np.linalg.norm(Zs - Ze) <= eps * resid
    # ... so the objective is within a factor 1 + eps² of the optimum
    assert fe.rss <= fs.rss <= (1 + eps ** 2) * fe.rss
    np.testing.assert_allclose(fs.rss, fe.rss + np.linalg.norm(Zs - Ze) ** 2, rtol=1e-8)
    # the coefficient vector: ‖Δw‖ ≤ ‖A Δw‖ / σ_min(A), A = [1, standardised features]
    w, A, _ = _explicit_solution(Xtr, y, H, variant)
    smin = np.linalg.svd(A, compute_uv=False)[-1]
    np.testing.assert_allclose(fe.coef, w, rtol=1e-7, atol=1e-9)
    assert np.linalg.norm(fs.coef - fe.coef) <= eps * resid / smin
    # the test block: ‖Z_test,sketch − Z_test,exact‖ ≤ ‖A_test‖₂ ‖Δw‖
    Ft = pair_features(Xte, Xtr, Ht, variant, X_train=Xtr).reshape(-1, A.shape[1] - 1)
    F = pair_features(Xtr, Xtr, H, variant).reshape(-1, A.shape[1] - 1)
    At = np.column_stack([np.ones(len(Ft)), (Ft - F.mean(0)) / F.std(0)])
    assert np.linalg.norm(Zts - Zte) <= np.linalg.norm(At, 2) * eps * resid / smin


def test_sketch_is_deterministic_given_seed():
    Xtr, _, H, _, y, _ = _data(n=30, d=5)
    a = fjlt_estimate(Xtr, y, None, H, None, solver="fjlt", eps=0.5, seed=1)[0]
    b = fjlt_estimate(Xtr, y, None, H, None, solver="fjlt", eps=0.5, seed=1)[0]
    c = fjlt_estimate(Xtr, y, None, H, None, solver="fjlt", eps=0.5, seed=2)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_fjlt_multiclass_shapes():
    Xtr, Xte, H, Ht, y, _ = _data(n=24, b=5, classes=3)
    for solver in ("exact", "fjlt"):
        Z, Zt = fjlt_estimate(Xtr, y.astype(int), Xte, H, Ht, variant="v2", solver=solver)
        assert Z.shape == (24, 24) and Zt.shape == (5, 24)


# ----------------------------------------------------------------------------- bad input
@pytest.fixture
def small():
    return _data(n=12, b=3)


def test_kr_bad_input(small):
    _Xtr, _Xte, H, Ht, y, _ = small
    with pytest.raises(ValueError, match="single class"):
        kr_estimate(H, Ht, np.ones(12))
    with pytest.raises(ValueError, match="binary labels -1/\\+1"):
        kr_estimate(H, Ht, np.r_[y[:-1], 0.5 * 0 - 3])
    with pytest.raises(ValueError, match="length mismatch: H_train has 12 rows but y has 10"):
        kr_estimate(H, Ht, y[:10])
    with pytest.raises(ValueError, match="square"):
        kr_estimate(H[:, :11], Ht, y)
    A = H.copy()
    A[2, 3] += 1.0
    with pytest.raises(ValueError, match="symmetric"):
        kr_estimate(A, Ht, y)
    with pytest.raises(ValueError, match="H_test_train has 11 columns"):
        kr_estimate(H, Ht[:, :11], y)
    Bad = Ht.copy()
    Bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="H_test_train contains inf"):
        kr_estimate(H, Bad, y)
    with pytest.raises(ValueError, match="unknown variant 'v3'"):
        kr_estimate(H, Ht, y, variant="v3")
    with pytest.raises(ValueError, match="constant"):
        kr_estimate(np.ones((12, 12)), None, y)
    with pytest.raises(ValueError, match="y contains NaN"):
        kr_estimate(H, Ht, np.r_[y[:-1], np.nan])


def test_fjlt_bad_input(small):
    Xtr, Xte, H, Ht, y, _ = small
    with pytest.raises(ValueError, match="length mismatch: X_train has 12 rows but y has 11"):
        fjlt_estimate(Xtr, y[:11], Xte, H, Ht)
    with pytest.raises(ValueError, match="length mismatch: X_train has 11 rows but H_train has 12"):
        fjlt_estimate(Xtr[:11], y[:11], Xte, H, Ht)
    with pytest.raises(ValueError, match="X_test has 6 features"):
        fjlt_estimate(Xtr, y, Xte[:, :6], H, Ht)
    with pytest.raises(ValueError, match="length mismatch: X_test has 2 rows"):
        fjlt_estimate(Xtr, y, Xte[:2], H, Ht)
    with pytest.raises(ValueError, match="give both X_test and H_test_train"):
        fjlt_estimate(Xtr, y, Xte, H, None)
    with pytest.raises(ValueError, match="X_train contains NaN"):
        fjlt_estimate(np.where(Xtr > 1, np.nan, Xtr), y, Xte, H, Ht)
    with pytest.raises(ValueError, match="single class"):
        fjlt_estimate(Xtr, -np.ones(12), Xte, H, Ht)
    with pytest.raises(ValueError, match="unknown solver"):
        fjlt_estimate(Xtr, y, Xte, H, Ht, solver="qr")
    with pytest.raises(ValueError, match="eps must be in"):
        fjlt_estimate(Xtr, y, Xte, H, Ht, solver="fjlt", eps=0.0)
    with pytest.raises(ValueError, match="H_train must be symmetric"):
        fjlt_estimate(Xtr, y, Xte, H + np.triu(np.ones_like(H), 1), Ht)
    with pytest.raises(ValueError, match="identical rows"):
        fjlt_estimate(np.ones_like(Xtr), y, None, H, None)


def test_module_docstring_examples_run():
    import doctest

    res = doctest.testmod(label_aware)
    assert res.failed == 0 and res.attempted > 0


# --------------------------------------------------------------------------- indefinite K + λZ
def _indefinite_case(n=12, seed=0):
    """A positive definite K (eigenvalues 0.05 .. 3) and a Z with the same eigenvectors whose
    eigenvalue −1 sits on K's smallest: at λ = 1, K + λZ has the eigenvalue 0.05 − 1 < 0, so
    it is provably indefinite."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    K = (Q * np.linspace(0.05, 3.0, n)) @ Q.T
    Z = (Q * np.linspace(-1.0, 2.0, n)) @ Q.T
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    y[:2] = [1.0, -1.0]
    return (K + K.T) / 2, (Z + Z.T) / 2, y, rng.standard_normal((5, n))


def test_indefinite_label_aware_kernel_is_measured_reported_and_repaired():
    from lantk import regression

    K, Z, y, Kt = _indefinite_case()
    K_la, spec = label_aware.lantk_kernel(K, Z, 0.0, lam=1.0, return_spectrum=True)
    assert spec.min < 0 and not spec.psd and spec.relative_min < 0
    np.testing.assert_allclose(spec.min, np.linalg.eigvalsh(K + Z)[0], rtol=1e-10)
    assert spec.lam == 1.0 and spec.condition >= 1

    # a singular indefinite matrix: the regression reports the jitter in its result
    ev, V = np.linalg.eigh(K_la)
    ev[np.argmin(np.abs(ev))] = 0.0
    S = (V * ev) @ V.T
    S = (S + S.T) / 2
    with pytest.warns(regression.SingularKernelWarning):
        f, info = regression.kernel_regression(S, Kt, y, return_info=True)
    assert info.regularised and info.jitter > 0 and f.shape == (5,)
    f2, info2 = regression.kernel_regression(K, Kt, y, return_info=True)
    assert not info2.regularised and info2.method == "cholesky"

    # the PSD option: the training block is a kernel matrix again
    Zt = np.random.default_rng(1).standard_normal((5, len(y)))
    K_p, K_pt, spec_p = label_aware.lantk_kernel(K, Z, 0.0, K[:5], Zt,
                                                 lam=1.0, psd=True, return_spectrum=True)
    ev = np.linalg.eigvalsh(K_p)
    assert ev[0] >= -1e-10 * ev[-1] and spec_p.psd
    # and the test rows are consistent with it: the joint train+test matrix of the feature
    # map is PSD (test rows of Z projected onto the kept eigenvectors)
    Zp, Zpt = label_aware.psd_projection(Z, Zt)
    s, V = np.linalg.eigh(Z)
    Vp = V[:, s > 1e-12 * np.abs(s).max()]
    np.testing.assert_allclose(Zpt, Zt @ Vp @ Vp.T, atol=1e-12)
    np.testing.assert_allclose(K_pt, K[:5] + Zpt, atol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    ({"c": -5.0}, "c must be a finite number >= 0"),
    ({"c": float("inf")}, "c must be a finite number >= 0"),
    ({"c": 0.0, "lam": -1.0}, "lam must be a finite number >= 0"),
    ({"c": 1e308}, "not finite|non-finite"),
])
def test_label_aware_strength_is_checked(kwargs, match):
    K, Z, _, _ = _indefinite_case()
    with pytest.raises(ValueError, match=match):
        label_aware.lantk_kernel(K * 10, Z, **kwargs)


def test_huge_kernels_give_an_error_not_a_hang():
    from lantk import regression

    K, Z, y, Kt = _indefinite_case()
    S = np.full((len(y), len(y)), 1.7e308)  # singular, and its mean |diagonal| overflows
    with pytest.raises(ValueError, match="too large to regularise"):
        regression.kernel_regression(S, Kt, y)


@pytest.mark.parametrize("variant", ["v1", "v2"])
def test_fjlt_distances_shared_over_a_pool_change_nothing(variant):
    """Inside fjlt.shared_distances the L1 distances of a fit on rows of the pool are sliced
    from one computation over the pool: the fit is bit-identical to one without it, rows
    outside the pool are computed as usual, and the pool ends with the block."""
    from scipy.spatial.distance import cdist

    from lantk.label_aware import fjlt

    rng = np.random.default_rng(3)
    pool = rng.normal(size=(40, 12))
    y = np.where(rng.normal(size=40) > 0, 1.0, -1.0)
    tr, te = rng.permutation(40)[:25], np.arange(40)[::7]
    H = pool @ pool.T
    outside = rng.normal(size=(3, 12))
    plain = fjlt.fjlt_estimate(pool[tr], y[tr], pool[te], H[np.ix_(tr, tr)], H[np.ix_(te, tr)],
                               variant=variant)
    with fjlt.shared_distances(pool):
        shared = fjlt.fjlt_estimate(pool[tr], y[tr], pool[te], H[np.ix_(tr, tr)],
                                    H[np.ix_(te, tr)], variant=variant)
        assert fjlt._POOL and fjlt._l1(pool[tr], pool[tr]).shape == (25, 25)
        assert fjlt._l1(pool[:0], pool[tr]).shape == (0, 25)
        np.testing.assert_array_equal(fjlt._l1(outside, pool[tr]),
                                      cdist(outside, pool[tr], "cityblock"))
    assert not fjlt._POOL
    for a, b in zip(plain, shared):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="X_pool"):
        with fjlt.shared_distances(np.ones(5)):
            pass
