"""LANTK-NTH (spec §5): ground truth by nested autodiff, the two-layer fast path, N_t."""

from decimal import Decimal, getcontext

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from lantk import nth
from lantk.archs import two_layer_relu_kernel


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
@pytest.mark.usefixtures("x64")  # the test's own float64 tanh network
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
    K_tr, K_te = nth.nth_kernel(X, y, X_te, width=width, t=t, samples=samples, seed=seed,
                                init="antisymmetric")
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
    K_tr, K_te = nth.nth_kernel(X, y, X_te, init="antisymmetric", **kw)
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


@pytest.mark.parametrize("init", ["standard", "antisymmetric"])
def test_float32_contraction_is_far_below_the_monte_carlo_error(init):
    """dtype="float32" rounds each chunk's products only: against float64 with the same
    neurons, the correction differs by about float32's precision, while two seeds (the Monte
    Carlo error) differ by orders of magnitude more; the outputs are float64 either way."""
    rng = np.random.default_rng(5)
    n, b, d = 40, 7, 12
    X, X_te = rng.standard_normal((n, d)), rng.standard_normal((b, d))
    y = np.where(rng.standard_normal(n) > 0, 1.0, -1.0)
    H, H_te = nth.two_layer_ntk(X), nth.two_layer_ntk(X_te, X)
    kw = dict(width=1, t=np.inf, samples=64, init=init, chunk=16)
    K64 = nth.nth_kernel(X, y, X_te, seed=0, **kw)
    K32 = nth.nth_kernel(X, y, X_te, seed=0, dtype="float32", **kw)
    other = nth.nth_kernel(X, y, X_te, seed=1, **kw)
    for i, base in enumerate((H, H_te)):
        assert K32[i].dtype == np.float64
        C64, C32, Co = K64[i] - base, K32[i] - base, other[i] - base
        scale = np.abs(C64).max()
        rounding = np.abs(C32 - C64).max() / scale
        monte_carlo = np.abs(Co - C64).max() / scale
        assert 0 < rounding < 1e-5
        assert monte_carlo > 1e3 * rounding


def test_multiclass_sums_over_classes():
    X, _, X_te = _problem(n=12, b=3, seed=7)
    classes = np.arange(12) % 3
    Y = np.eye(3)[classes] - 1 / 3  # centred one-hot (spec §1)
    kw = {"width": 20, "t": 5.0, "samples": 30, "seed": 1}
    K = nth.nth_kernel(X, classes, X_te, init="antisymmetric", **kw)
    for a, b in zip(K, nth.nth_kernel(X, Y, X_te, init="antisymmetric", **kw)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(nth.nth_kernel(X, classes, X_te, **kw), nth.nth_kernel(X, Y, X_te, **kw)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(K, nth._direct_nth_oracle(X, classes, X_te, **kw)):  # the f_0 = 0 formula
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
@pytest.mark.usefixtures("x64")  # jax.jacrev of the network, in float64
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
    ({"X_train": np.full((4, 3), np.inf)}, "X_train contains inf"),
    ({"width": 0}, "width"),
    ({"width": np.inf}, "width"),
    ({"samples": 0}, "samples"),
    ({"samples": 2.5}, "samples"),
    ({"t": -1.0}, "t must"),
    ({"t": np.nan}, "t must"),
    ({"init": "symmetric"}, "init must"),
    ({"init": None}, "init must"),
    ({"dtype": "float16"}, "dtype must"),
    ({"dtype": "int32"}, "dtype must"),
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


# ----------------------------------------------------------------------------- standard init
def _plain_N(H, T, t):
    """N_t[T] = P[(PᵀTP)_ij g_ij]Pᵀ with the plain formula of spec §5 for g."""
    n = len(H)
    lam, P = np.linalg.eigh(H)
    li, lj = lam[:, None], lam[None, :]
    if np.isinf(t):
        g = 1 / (li * (li + lj))
    else:
        g = (-np.expm1(-t / n * li) / li - (-np.expm1(-t / n * (li + lj))) / (li + lj)) / lj
    return P @ ((P.T @ T @ P) * g) @ P.T


def _plain_M(H, t):
    """H⁻¹(I − e^{−tH/n}) by scipy's matrix exponential."""
    from scipy.linalg import expm

    n = len(H)
    if np.isinf(t):
        return np.linalg.inv(H)
    return np.linalg.solve(H, np.eye(n) - expm(-t * H / n))


def test_k3f_contract_equals_autodiff():
    """Per neuron, K3(a, b, i) f(x_k) by nested autodiff of the one-neuron network = the formula;
    for a wider network the formula is the sum of its neurons' (the same-neuron part)."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((6, 4))
    n = 4
    M = rng.standard_normal((n, n))
    p = nth.two_layer_init(3, d=4, width=5, a_dist="normal")
    total = 0.0
    for r in range(5):
        q = {"W": p["W"][r:r + 1], "a": p["a"][r:r + 1]}
        K3, _ = nth.higher_order_kernels(nth.two_layer_apply, q, X)
        f = np.asarray(nth.two_layer_apply(q, X[:n]))
        ref = np.einsum("abi,k,ik->ab", K3[:, :n, :n], f, M)
        got = nth.two_layer_k3f_contract(q, X, X[:n], M)
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())
        total = total + ref
    np.testing.assert_allclose(nth.two_layer_k3f_contract(p, X, X[:n], M, chunk=2), total / 25,
                               rtol=1e-10, atol=1e-12 * np.abs(total).max())


@pytest.mark.parametrize("t", [np.inf, 2.5])
def test_standard_nth_kernel_equals_autodiff_per_neuron(t):
    """nth_kernel(init="standard") = H + (1/(samples·width)) Σ_r [⟨K4_r, N_t[yyᵀ + Σ_0]⟩
    − ⟨K3_r f_rᵀ, M_t⟩] with K3_r, K4_r, f_r by autodiff of the one-neuron network of each Monte
    Carlo neuron; N_t, M_t, Σ_0 from the plain formulas."""
    X, y, X_te = _problem(n=5, b=2, d=4, seed=9)
    samples, width, seed = 6, 40.0, 4
    K_tr, K_te = nth.nth_kernel(X, y, X_te, width=width, t=t, samples=samples, seed=seed)
    H = nth.two_layer_ntk(X)
    S0 = two_layer_relu_kernel(X, None, "nngp")
    N, M = _plain_N(H, np.outer(y, y) + S0, t), _plain_M(H, t)
    allx, n = np.concatenate([X, X_te]), len(X)
    p = nth.two_layer_init(seed, X.shape[1], samples)
    corr = 0.0
    for r in range(samples):
        q = {"W": p["W"][r:r + 1], "a": p["a"][r:r + 1]}
        K3, K4 = nth.higher_order_kernels(nth.two_layer_apply, q, allx)
        f = np.asarray(nth.two_layer_apply(q, X))
        corr = corr + np.einsum("abij,ij->ab", K4[:, :n, :n, :n], N) \
            - np.einsum("abi,k,ik->ab", K3[:, :n, :n], f, M)
    corr = corr / (samples * width)
    ref_tr, ref_te = H + corr[:n], nth.two_layer_ntk(X_te, X) + corr[n:]
    np.testing.assert_allclose(K_tr, ref_tr, rtol=1e-9, atol=1e-11 * np.abs(ref_tr).max())
    np.testing.assert_allclose(K_te, ref_te, rtol=1e-9, atol=1e-11 * np.abs(ref_te).max())
    anti = nth.nth_kernel(X, y, X_te, width=width, t=t, samples=samples, seed=seed,
                          init="antisymmetric")
    assert np.abs(K_tr - anti[0]).max() > 0.1 * np.abs(anti[0] - H).max()  # the terms matter


@pytest.mark.usefixtures("x64")  # nested autodiff in float64
def test_init_expectations_match_finite_networks_statistically():
    """Over many initialisations of a width-3 network (a ~ N(0, 1)): E f_0 f_0ᵀ = Σ_0 (NNGP), and
    E ⟨K3_0(a, b, ·) f_0ᵀ, M⟩ by nested autodiff of the whole network = the per-neuron formula
    (many Monte Carlo neurons) / width."""
    rng = np.random.default_rng(10)
    d, m, n, draws = 3, 3, 3, 4000
    X = rng.standard_normal((n, d))
    M = rng.standard_normal((n, n))
    Ws = rng.standard_normal((draws, m, d))
    As = rng.standard_normal((draws, m))

    def k3f(W, a):
        theta = jnp.concatenate([W.ravel(), a])

        def out(th):
            return nth.two_layer_apply({"W": th[:m * d].reshape(m, d), "a": th[m * d:]}, X)

        J = lambda th: jax.jacrev(out)(th)
        K2 = lambda th: J(th) @ J(th).T
        K3 = jnp.stack([jax.jvp(K2, (theta,), (v,))[1] for v in J(theta)], axis=-1)
        return jnp.einsum("abi,k,ik->ab", K3, out(theta), M), jnp.outer(out(theta), out(theta))

    vals, ff = jax.jit(jax.vmap(k3f))(jnp.asarray(Ws), jnp.asarray(As))
    vals, ff = np.asarray(vals), np.asarray(ff)
    S0 = two_layer_relu_kernel(X, None, "nngp")
    se = ff.std(0) / np.sqrt(draws)
    assert np.all(np.abs(ff.mean(0) - S0) < 4.5 * se)
    big = nth.two_layer_init(0, d, 400_000)
    expect = nth.two_layer_k3f_contract(big, X, X, M) * 400_000 / m  # E[a² φ M σ] / width
    se = vals.std(0) / np.sqrt(draws)
    z = (vals.mean(0) - expect) / se
    assert np.all(np.abs(z) < 4.5), z
    assert np.abs(expect).max() > 6 * se.max()  # resolved: not zero within the noise


# ----------------------------------------------------------------------------- trained networks
def test_trained_drift_matches_scipy_gradient_flow():
    """The RK4 flows of trained_drift = scipy's DOP853 on the same networks: to round-off for the
    gated network (a polynomial vector field), to the accuracy the ReLU kinks allow for the ReLU
    network; at t → 0 the two drifts agree (no pattern has flipped yet)."""
    X, y, _ = _problem(n=5, b=1, d=3, seed=11)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    m, t, n = 8, 3.0, len(X)
    D, D_ae, r = nth.trained_drift(X, y, m, draws=1, t=t, seed=5, step=0.05)
    W0, a0 = nth._draw_networks(np.random.default_rng(5), 1, 3, m, "standard")
    e0 = (X @ W0[0].T > 0).astype(float)

    def unpack(z):
        return z[:m * 3].reshape(m, 3), z[m * 3:]

    def parts(z, gated):
        W, a = unpack(z)
        S = X @ W.T
        e = e0 if gated else (S > 0).astype(float)
        return W, a, e * S, e

    def rhs(z, gated):
        W, a, sig, e = parts(z, gated)
        res = sig @ a / np.sqrt(m) - y
        dW = -a[:, None] * ((e * res[:, None]).T @ X) / (n * np.sqrt(m))
        return np.concatenate([dW.ravel(), -(sig.T @ res) / (n * np.sqrt(m))])

    def ntk(z, gated):
        W, a, sig, e = parts(z, gated)
        return (sig @ sig.T + ((e * a**2) @ e.T) * (X @ X.T)) / m

    z0 = np.concatenate([W0[0].ravel(), a0[0]])
    for gated, got, tol in ((True, D_ae[0], 1e-7), (False, D[0], 1e-2)):
        sol = solve_ivp(lambda _, z: rhs(z, gated), (0, t), z0, method="DOP853", rtol=1e-12,
                        atol=1e-14)
        ref = ntk(sol.y[:, -1], gated) - ntk(z0, gated)
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * np.abs(ref).max())
    W, a, sig, _ = parts(sol.y[:, -1], False)
    np.testing.assert_allclose(r[0], sig @ a / np.sqrt(m) - y, rtol=1e-2, atol=1e-3)
    D, D_ae, _ = nth.trained_drift(X, y, 64, draws=3, t=1e-3, seed=1)
    np.testing.assert_allclose(D_ae, D, rtol=1e-9, atol=1e-12)
    assert np.abs(D).max() > 0


def test_drift_experiment_tiny():
    """Gated networks follow the prediction of their initialisation; the f_0 = 0 formula misses
    the standard initialisation's drift."""
    X, y, _ = _problem(n=6, b=1, d=4, seed=12)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    lam_max = np.linalg.eigvalsh(nth.two_layer_ntk(X))[-1]
    rows = nth.drift_experiment(X, y, [1024], draws=12, t=10 * 6 / lam_max,
                                inits=("antisymmetric",), samples=50_000, seed=0)
    (row,) = rows
    assert row["init"] == "antisymmetric" and row["width"] == 1024 and row["draws"] == 12
    assert row["ae_low"] < 1 < row["ae_high"] and row["ae_high"] - row["ae_low"] < 0.1
    assert row["f0zero_slope"] == row["ae_slope"]
    (row,) = nth.drift_experiment(X, y, [128], draws=40, t=10 * 6 / lam_max,
                                  inits="standard", samples=50_000, seed=0)
    assert row["ae_low"] < 1 < row["ae_high"]
    assert row["f0zero_high"] < 1  # the f_0 = 0 formula misses the standard init's drift
    with pytest.raises(ValueError, match="init must"):
        nth.drift_experiment(X, y, [8], draws=2, t=1.0, inits=("gaussian",))
    with pytest.raises(ValueError, match="width"):
        nth.trained_drift(X, y, 7, draws=2, t=1.0, init="antisymmetric")
    with pytest.raises(ValueError, match="t must"):
        nth.trained_drift(X, y, 8, draws=2, t=np.inf)
