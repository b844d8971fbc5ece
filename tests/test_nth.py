"""LANTK-NTH (spec §5): ground truth by nested autodiff, the two-layer fast path, N_t."""

from decimal import Decimal, getcontext

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from lantk import nth


def _problem(n=8, b=3, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X_te = rng.standard_normal((b, d))
    y = np.where(rng.standard_normal(n) > 0, 1.0, -1.0)
    y[:2] = (1.0, -1.0)
    return X, y, X_te


def _tanh_mlp(d, widths=(4, 3), seed=0):
    keys = jax.random.split(jax.random.PRNGKey(seed), len(widths) + 1)
    sizes = (d, *widths, 1)
    params = [jax.random.normal(k, (i, o), dtype=jnp.float64) / np.sqrt(i)
              for k, i, o in zip(keys, sizes[:-1], sizes[1:])]

    def apply_fn(p, x):
        for w in p[:-1]:
            x = jnp.tanh(x @ w)
        return x @ p[-1]  # (N, 1)

    return params, apply_fn


# ----------------------------------------------------------------------------- ground truth
def test_higher_order_kernels_match_finite_differences():
    """K3 = ∇K2·∇f and K4 = ∇K3·∇f as directional derivatives, on a smooth (tanh) network."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2))
    params, apply_fn = _tanh_mlp(2)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    J = lambda th: jax.jacrev(lambda t: apply_fn(unravel(t), x).reshape(-1))(th)
    K2 = lambda th: J(th) @ J(th).T
    K3, K4 = nth.higher_order_kernels(apply_fn, params, x)
    J0, h = J(flat), 1e-5
    fd3 = np.stack([(K2(flat + h * v) - K2(flat - h * v)) / (2 * h) for v in J0], axis=-1)
    np.testing.assert_allclose(K3, fd3, rtol=1e-7, atol=1e-8 * np.abs(K3).max())

    @jax.jit
    def K3_at(th):  # K3 at other weights, ∇f(x_i) re-evaluated there too
        return jnp.stack([jax.jvp(K2, (th,), (v,))[1] for v in J(th)], axis=-1)

    fd4 = np.stack([(K3_at(flat + h * v) - K3_at(flat - h * v)) / (2 * h) for v in J0], axis=-1)
    np.testing.assert_allclose(K4, fd4, rtol=1e-7, atol=1e-8 * np.abs(K4).max())


def test_higher_order_kernels_index_sets_and_symmetry():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 3))
    p = nth.two_layer_init(0, d=3, width=6, a_dist="normal")
    K3, K4 = nth.higher_order_kernels(nth.two_layer_apply, p, x)
    assert K3.shape == (5, 5, 5) and K4.shape == (5, 5, 5, 5)
    idx = ([0, 4], [1], [2, 3, 0], [4, 1])
    k3, k4 = nth.higher_order_kernels(nth.two_layer_apply, p, x, indices=idx)
    np.testing.assert_allclose(k3, K3[np.ix_(*idx[:3])], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(k4, K4[np.ix_(*idx)], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(K3, K3.transpose(1, 0, 2), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(K4, K4.transpose(1, 0, 2, 3), rtol=1e-13, atol=1e-13)
    # spec §5: K4(a, b, i, j) is not symmetric in (i, j)
    assert np.abs(K4 - K4.transpose(0, 1, 3, 2)).max() > 1e-3 * np.abs(K4).max()
    with pytest.raises(ValueError):
        nth.higher_order_kernels(nth.two_layer_apply, p, x, indices=([0], [1], [9], [0]))


# ----------------------------------------------------------------------------- fast path
@pytest.mark.parametrize("a_dist", ["normal", "rademacher"])
def test_fast_contraction_equals_autodiff(a_dist):
    """Σ_ij K4(a, b, i, j) N_ij by the per-neuron formula = nested autodiff, same weights."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((7, 4))
    n = 5
    p = nth.two_layer_init(4, d=4, width=6, a_dist=a_dist)
    _, K4 = nth.higher_order_kernels(nth.two_layer_apply, p, X)
    N = rng.standard_normal((n, n))  # not symmetric
    ref = np.einsum("abij,ij->ab", K4[:, :n, :n, :n], N)
    for chunk in (None, 1, 4):  # 4 does not divide 6: a zero-padded chunk
        got = nth.two_layer_k4_contract(p, X, X[:n], N, chunk=chunk)
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize("t", [np.inf, 0.7, 40.0])
def test_nth_kernel_equals_autodiff_on_sampled_weights(t):
    """nth_kernel = H + (samples/width) ⟨K4_net, N_t⟩ with K4_net by autodiff of the network
    made of the same Monte Carlo neurons (two_layer_init(seed, d, samples))."""
    X, y, X_te = _problem(n=5, b=2, d=4)
    samples, width, seed = 7, 50.0, 11
    K_tr, K_te = nth.nth_kernel(X, y, X_te, width=width, t=t, samples=samples, seed=seed)
    p = nth.two_layer_init(seed, X.shape[1], samples)
    allx = np.concatenate([X, X_te])
    n = len(X)
    _, K4 = nth.higher_order_kernels(nth.two_layer_apply, p, allx)
    H = nth.two_layer_ntk(X)
    N = nth.N_t(H, y, t)
    corr = samples / width * np.einsum("abij,ij->ab", K4[:, :n, :n, :n], N)
    ref_tr, ref_te = H + corr[:n], nth.two_layer_ntk(X_te, X) + corr[n:]
    np.testing.assert_allclose(K_tr, ref_tr, rtol=1e-10, atol=1e-12 * np.abs(ref_tr).max())
    np.testing.assert_allclose(K_te, ref_te, rtol=1e-10, atol=1e-12 * np.abs(ref_te).max())
    assert np.abs(K_tr - H).max() > 1e-6 * np.abs(H).max()  # the correction is really there


@pytest.mark.parametrize("t", [np.inf, 3.0])
def test_nth_kernel_equals_direct_oracle(t):
    X, y, X_te = _problem(n=12, b=4, d=6, seed=5)
    kw = {"width": 30, "t": t, "samples": 40, "seed": 2}
    K_tr, K_te = nth.nth_kernel(X, y, X_te, **kw)
    O_tr, O_te = nth._direct_nth_oracle(X, y, X_te, **kw)
    np.testing.assert_allclose(K_tr, O_tr, rtol=1e-9, atol=1e-11 * np.abs(O_tr).max())
    np.testing.assert_allclose(K_te, O_te, rtol=1e-9, atol=1e-11 * np.abs(O_te).max())


def test_t0_gives_ntk_and_images_are_flattened():
    X, y, X_te = _problem(n=8, b=3, d=4)
    K_tr, K_te = nth.nth_kernel(X, y, X_te, width=10, t=0, samples=20)
    np.testing.assert_array_equal(K_tr, nth.two_layer_ntk(X))
    np.testing.assert_array_equal(K_te, nth.two_layer_ntk(X_te, X))
    img = nth.nth_kernel(X.reshape(8, 2, 2, 1), y, X_te.reshape(3, 2, 2, 1), width=10, samples=20)
    flat = nth.nth_kernel(X, y, X_te, width=10, samples=20)
    for a, b in zip(img, flat):
        np.testing.assert_array_equal(a, b)


def test_correction_scales_as_one_over_width():
    X, y, X_te = _problem()
    H, H_te = nth.two_layer_ntk(X), nth.two_layer_ntk(X_te, X)
    K1 = nth.nth_kernel(X, y, X_te, width=10, t=2.0, samples=50, seed=3)
    K2 = nth.nth_kernel(X, y, X_te, width=40, t=2.0, samples=50, seed=3)
    np.testing.assert_allclose(K1[0] - H, 4 * (K2[0] - H), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(K1[1] - H_te, 4 * (K2[1] - H_te), rtol=1e-12, atol=1e-13)


def test_multiclass_sums_over_classes():
    X, _, X_te = _problem(n=12, b=3, seed=7)
    classes = np.arange(12) % 3
    Y = np.eye(3)[classes] - 1 / 3  # centred one-hot (spec §1)
    kw = {"width": 20, "t": 5.0, "samples": 30, "seed": 1}
    K = nth.nth_kernel(X, classes, X_te, **kw)
    for a, b in zip(K, nth.nth_kernel(X, Y, X_te, **kw)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(K, nth._direct_nth_oracle(X, classes, X_te, **kw)):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    H = nth.two_layer_ntk(X)
    lam, P = np.linalg.eigh(H)
    np.testing.assert_allclose(nth.N_t(H, classes, 5.0),
                               sum(nth._N_from_eig(lam, P, Y[:, [c]], 5.0) for c in range(3)),
                               rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- N_t
def _random_H(n=6, seed=0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.geomspace(0.05, 40.0, n)  # eigenvalues over three decades
    y = np.where(rng.standard_normal(n) > 0, 1.0, -1.0)
    return (Q * lam) @ Q.T, y


def test_N_t_equals_integrated_truncated_dynamics():
    """Integrate dr/dt = −Hr/n (r_0 = −y), dR/dt = r, dN/dt = r Rᵀ/n² numerically."""
    H, y = _random_H()
    n = len(y)

    def rhs(t, z):
        r, R = z[:n], z[n:2 * n]
        return np.concatenate([-H @ r / n, r, np.outer(r, R).ravel() / n**2])

    lam = np.linalg.eigvalsh(H)
    ts = np.array([0.01, 0.3, 2.0, 15.0, 100.0]) * n / lam.max()
    t_end = 40 * n / lam.min()  # e^{−40}: converged
    sol = solve_ivp(rhs, (0, t_end), np.concatenate([-y, np.zeros(n + n * n)]), method="DOP853",
                    t_eval=np.append(ts, t_end), rtol=1e-12, atol=1e-16)
    assert sol.success
    for k, t in enumerate(ts):
        num = sol.y[2 * n:, k].reshape(n, n)
        np.testing.assert_allclose(nth.N_t(H, y, t), num, rtol=1e-8, atol=1e-10 * np.abs(num).max())
    num_inf = sol.y[2 * n:, -1].reshape(n, n)
    np.testing.assert_allclose(nth.N_t(H, y, t_end), num_inf, rtol=1e-8,
                               atol=1e-10 * np.abs(num_inf).max())
    np.testing.assert_allclose(nth.N_t(H, y, np.inf), num_inf, rtol=1e-8,
                               atol=1e-10 * np.abs(num_inf).max())
    assert not np.allclose(nth.N_t(H, y, ts[2]), nth.N_t(H, y, np.inf), rtol=1e-3)


def test_N_t_symmetric_part():
    H, y = _random_H(n=7, seed=3)
    n = len(y)
    alpha = np.linalg.solve(H, y)
    N = nth.N_t(H, y, np.inf)
    np.testing.assert_allclose((N + N.T) / 2, np.outer(alpha, alpha) / 2, rtol=1e-10,
                               atol=1e-12 * np.abs(N).max())
    assert np.abs(N - N.T).max() > 1e-3 * np.abs(N).max()  # N itself is not symmetric
    # at every t: N_t + N_tᵀ = R_t R_tᵀ / n², R_t = −n ∫_0^{t/n} e^{−sH} y ds
    lam, P = np.linalg.eigh(H)
    for t in (0.5, 7.0, 300.0):
        R = -P @ (n * -np.expm1(-t * lam / n) / lam * (P.T @ y))
        N = nth.N_t(H, y, t)
        np.testing.assert_allclose(N + N.T, np.outer(R, R) / n**2, rtol=1e-10,
                                   atol=1e-13 * np.abs(N).max())
    assert np.all(nth.N_t(H, y, 0.0) == 0)


def test_N_t_weights_to_round_off_over_many_scales():
    """The entries g_ij of N_t in the eigenbasis, against 60-digit decimal arithmetic."""
    getcontext().prec = 60

    def exact(li, lj, tau):
        li, lj, tau = Decimal(li), Decimal(lj), Decimal(tau)
        return ((1 - (-tau * li).exp()) / li - (1 - (-tau * (li + lj)).exp()) / (li + lj)) / lj

    rng = np.random.default_rng(0)
    lam = np.concatenate([10 ** rng.uniform(-9, 6, 25), [1.0, 1 + 1e-7]])
    for t in (1e-6, 1e-2, 1.0, 37.0, 1e4, 1e9):
        g = nth._nth_weights(lam, t, 10)
        ref = np.array([[float(exact(a, b, t / 10)) for b in lam] for a in lam])
        np.testing.assert_allclose(g, ref, rtol=1e-14)
    np.testing.assert_allclose(nth._nth_weights(lam, np.inf, 10),
                               1 / (lam[:, None] * (lam[:, None] + lam)), rtol=1e-15)


def test_singular_H_warns_and_stays_finite():
    X, y, X_te = _problem(n=6, b=2)
    X = np.concatenate([X, X[:1]])  # duplicate point: H singular
    y = np.append(y, y[0])
    with pytest.warns(RuntimeWarning, match="singular"):
        K_tr, K_te = nth.nth_kernel(X, y, X_te, width=10, samples=10)
    assert np.all(np.isfinite(K_tr)) and np.all(np.isfinite(K_te))


# ----------------------------------------------------------------------------- NTK closed form
def test_two_layer_ntk_closed_form():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((6, 5))
    K = nth.two_layer_ntk(X)
    np.testing.assert_allclose(np.diag(K), np.sum(X**2, 1), rtol=1e-14)  # θ = 0
    e = np.eye(2)
    np.testing.assert_allclose(nth.two_layer_ntk(e)[0, 1], 1 / (2 * np.pi), rtol=1e-14)
    np.testing.assert_allclose(nth.two_layer_ntk(X[:2], X), K[:2], rtol=1e-14)
    # nearly parallel pairs: against the same formula in 60-digit decimal arithmetic
    getcontext().prec = 60
    x0 = X[0]
    for eps in (1e-3, 1e-6, 1e-9, 0.0):
        x1 = x0 + eps * X[1]
        a, b = [Decimal(float(v)) for v in x0], [Decimal(float(v)) for v in x1]
        dot, s0, s1 = (sum(p * q for p, q in zip(u, w)) for u, w in ((a, b), (a, a), (b, b)))
        cross = (s0 * s1 - dot * dot).sqrt()
        theta = float(np.arctan2(float(cross), float(dot)))  # tiny θ: float arctan2 is exact
        ref = (2 * dot * (Decimal(np.pi) - Decimal(theta)) + cross) / (2 * Decimal(np.pi))
        got = nth.two_layer_ntk(x0[None], x1[None])[0, 0]
        np.testing.assert_allclose(got, float(ref), rtol=1e-14)
    # the finite network's empirical NTK (autodiff) converges to it
    p = nth.two_layer_init(0, 5, 40_000, a_dist="normal")
    J = jax.jacrev(lambda q: nth.two_layer_apply(q, X))(p)
    Jf = np.concatenate([np.asarray(J["W"]).reshape(6, -1), np.asarray(J["a"])], axis=1)
    np.testing.assert_allclose(Jf @ Jf.T, K, rtol=0.05, atol=0.05 * np.abs(K).max())


def test_two_layer_ntk_agrees_with_archs():
    archs = pytest.importorskip("lantk.archs")
    X = np.random.default_rng(5).standard_normal((5, 4))
    K, mine = np.asarray(archs.two_layer_relu()[2](X, None, "ntk")), nth.two_layer_ntk(X)
    off = ~np.eye(5, dtype=bool)
    np.testing.assert_allclose(K[off], mine[off], rtol=1e-12)
    # θ = 0: a formula in xᵀx' keeps about half the digits there (√eps); lantk.nth is exact
    np.testing.assert_allclose(np.diag(K), np.diag(mine), rtol=1e-7)
    X_te = np.random.default_rng(6).standard_normal((3, 4))
    np.testing.assert_allclose(np.asarray(archs.two_layer_relu()[2](X_te, X, "ntk")),
                               nth.two_layer_ntk(X_te, X), rtol=1e-12)


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize("change, match", [
    ({"y": np.array([1.0, 0.0, 1.0, -1.0])}, "binary labels"),
    ({"y": np.array([1.0, -1.0, 1.0])}, "length mismatch"),
    ({"y": np.ones((4, 2, 1))}, "shape"),
    ({"y": np.full((4, 2), np.nan)}, "NaN"),
    ({"y": np.array([0.5, -1.0, 1.0, -1.0])}, "integer"),
    ({"X_train": np.ones(4)}, "shape"),
    ({"X_test": np.ones((2, 5))}, "features"),
    ({"X_train": np.full((4, 3), np.inf)}, "NaN or inf"),
    ({"width": 0}, "width"),
    ({"width": np.inf}, "width"),
    ({"samples": 0}, "samples"),
    ({"samples": 2.5}, "samples"),
    ({"t": -1.0}, "t must"),
    ({"t": np.nan}, "t must"),
])
def test_nth_kernel_validates_inputs(change, match):
    rng = np.random.default_rng(0)
    kw = {"X_train": rng.standard_normal((4, 3)), "y": np.array([1.0, -1.0, 1.0, -1.0]),
          "X_test": rng.standard_normal((2, 3)), "width": 10, "samples": 5}
    kw.update(change)
    with pytest.raises(ValueError, match=match):
        nth.nth_kernel(kw.pop("X_train"), kw.pop("y"), kw.pop("X_test"), **kw)


def test_N_t_validates_inputs():
    H, y = _random_H(n=3)
    with pytest.raises(ValueError):
        nth.N_t(H[:2], y)
    with pytest.raises(ValueError):
        nth.N_t(H, y, t=-2)
    with pytest.raises(ValueError):
        nth.N_t(H, np.array([1.0, 2.0, -1.0]))
