"""lantk.stax's Gelu, Sigmoid_like, Sin, Cos, Rbf and Sign: apply_fn against NumPy, the closed
kernel maps against Gaussian quadrature, the kernels of Dense -> layer -> Dense against Monte
Carlo over wide finite networks, float32, argument checks, and the diagonal and full
(pixel-pair) modes of convolutional networks."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from lantk import empirical, stax

RNG = np.random.default_rng(0)
XV = RNG.standard_normal((4, 5))  # vectors
XI = RNG.standard_normal((3, 5, 4, 2))  # images

SIGMOID_SCALE = 2.4020563531719796


def _np_gelu(x):
    return x * 0.5 * (1 + special.erf(x / math.sqrt(2)))


def _np_gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


# name -> (layer builder, the same function in NumPy)
LAYERS = {
    "gelu": (lambda: stax.Gelu(), _np_gelu),
    "gelu_tanh": (lambda: stax.Gelu(approximate=True), _np_gelu_tanh),
    "sigmoid_like": (lambda: stax.Sigmoid_like(),
                     lambda x: 0.5 * special.erf(x / SIGMOID_SCALE) + 0.5),
    "sin": (lambda: stax.Sin(a=1.2, b=0.8, c=0.3), lambda x: 1.2 * np.sin(0.8 * x + 0.3)),
    "cos": (lambda: stax.Cos(a=0.9, b=1.1, c=-0.4), lambda x: 0.9 * np.cos(1.1 * x - 0.4)),
    "rbf": (lambda: stax.Rbf(gamma=0.7),
            lambda x: math.sqrt(2) * np.sin(math.sqrt(1.4) * x + math.pi / 4)),
    "sign": (lambda: stax.Sign(), np.sign),
}
# the kernels of the tanh approximation are those of the exact Gelu (tested separately)
SMOOTH = [n for n in LAYERS if n not in ("sign", "gelu_tanh")]
W1, B1, W2, B2 = 1.3, 0.2, 1.1, 0.3


def _k(kernel_fn, x, x2=None, **kw):
    out = kernel_fn(x, x2, ("nngp", "ntk"), **kw)
    return np.asarray(out.nngp), np.asarray(out.ntk)


# ------------------------------------------------------------------------------------------
# apply_fn, specs
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(LAYERS))
def test_apply_fn_is_the_numpy_function(name):
    build, ref = LAYERS[name]
    init_fn, apply_fn, kernel_fn = build()
    x = np.concatenate([np.linspace(-4, 4, 41), [0.0], RNG.standard_normal(20) * 3])
    assert init_fn(None, (3, 7)) == ((3, 7), ())
    np.testing.assert_allclose(np.asarray(apply_fn((), x)), ref(x), rtol=1e-12, atol=1e-14)
    rebuilt = eval(kernel_fn.spec, vars(stax))  # the spec rebuilds the layer
    assert rebuilt[2].spec == kernel_fn.spec


def test_specs_are_neural_tangents_expressions():
    assert stax.Gelu()[2].spec == "Gelu(approximate=False)"
    assert stax.Gelu(True)[2].spec == "Gelu(approximate=True)"
    assert stax.Sigmoid_like()[2].spec == "Sigmoid_like()"
    assert stax.Sin()[2].spec == "Sin(a=1.0, b=1.0, c=0.0)"
    assert stax.Cos(2, 3, 1)[2].spec == "Cos(a=2.0, b=3.0, c=1.0)"
    assert stax.Rbf()[2].spec == "Rbf(gamma=1.0)"
    assert stax.Sign()[2].spec == "Sign()"


def test_sigmoid_like_is_close_to_the_logistic_sigmoid():
    x = np.linspace(-5, 5, 2001)
    out = np.asarray(stax.Sigmoid_like()[1]((), x))
    assert np.max(np.abs(out - 1 / (1 + np.exp(-x)))) < 0.01


# ------------------------------------------------------------------------------------------
# closed forms against Gaussian quadrature
# ------------------------------------------------------------------------------------------
def _input_cov(x):
    """The covariance of Dense(W1, B1)'s outputs (NTK parameterisation)."""
    return W1 ** 2 * x @ x.T / x.shape[1] + B1 ** 2


def _gauss_pairs(cov, f, g, n=80):
    """E f(u) g(v) for each pair (i, j) of a covariance matrix, by Gauss-Hermite quadrature
    (u = sqrt(q_i) z1, v = (k z1 + sqrt(q_i q_j - k^2) z2) / sqrt(q_i))."""
    z, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / math.sqrt(2 * math.pi)
    z1, z2 = z[:, None], z[None, :]
    ww = w[:, None] * w[None, :]
    out = np.empty_like(cov)
    for i in range(cov.shape[0]):
        for j in range(cov.shape[1]):
            qi, qj, k = cov[i, i], cov[j, j], cov[i, j]
            u = math.sqrt(qi) * z1 + 0 * z2
            v = (k * z1 + math.sqrt(max(qi * qj - k * k, 0.0)) * z2) / math.sqrt(qi)
            out[i, j] = np.sum(ww * f(u) * g(v))
    return out


@pytest.mark.parametrize("name", SMOOTH)
def test_closed_forms_match_gaussian_quadrature(x64, name):
    """Dense -> layer: the NNGP is E f(u) f(v) and the NTK is cov * E f'(u) f'(v) (the first
    Dense's NTK is its NNGP), with f' from jax.grad; off-diagonal and diagonal entries (the
    variances take the layers' separate diagonal maps)."""
    build, ref = LAYERS[name]
    layer = build()
    x = np.concatenate([XV, -XV[:1]])  # includes a strongly anti-correlated pair
    cov = _input_cov(x)
    nngp, ntk = _k(stax.serial(stax.Dense(3, W_std=W1, b_std=B1), layer)[2], x)
    fn = lambda t: np.asarray(layer[1]((), jnp.asarray(t)))
    dfn = jax.vmap(jax.grad(lambda t: layer[1]((), t)))
    df = lambda t: np.asarray(dfn(jnp.asarray(t).ravel())).reshape(np.shape(t))
    np.testing.assert_allclose(nngp, _gauss_pairs(cov, fn, fn), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ntk, cov * _gauss_pairs(cov, df, df), rtol=1e-9, atol=1e-12)


def test_sign_kernel_matches_sampling_and_its_exact_values():
    x = np.concatenate([XV, -XV[:1]])
    _, _, kernel_fn = stax.serial(stax.Dense(3, W_std=W1, b_std=0.0), stax.Sign())
    nngp, ntk = _k(kernel_fn, x)
    cov = W1 ** 2 * x @ x.T / x.shape[1]
    z = np.random.default_rng(1).standard_normal((2_000_000, 2))
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            qi, qj, k = cov[i, i], cov[j, j], cov[i, j]
            u = math.sqrt(qi) * z[:, 0]
            v = (k * z[:, 0] + math.sqrt(max(qi * qj - k * k, 0.0)) * z[:, 1]) / math.sqrt(qi)
            assert abs(np.mean(np.sign(u) * np.sign(v)) - nngp[i, j]) < 4e-3  # 5 s.e.
    np.testing.assert_array_equal(np.diag(nngp), 1.0)
    assert nngp[0, -1] == -1.0  # x and -x
    np.testing.assert_array_equal(ntk, 0.0)  # sign' = 0 almost everywhere
    # a zero-variance input (x = 0, no bias) has sign 0
    x0 = np.concatenate([XV[:2], np.zeros((1, 5))])
    k0 = np.asarray(kernel_fn(x0, None, "nngp"))
    np.testing.assert_array_equal(k0[2], 0.0)
    np.testing.assert_array_equal(np.asarray(kernel_fn(x0, None, "cov1")), [1.0, 1.0, 0.0])


def test_gelu_tanh_approximation_changes_apply_only():
    nngp, ntk = _k(stax.serial(stax.Dense(3, W1, B1), stax.Gelu(), stax.Dense(1))[2], XV)
    nngp_t, ntk_t = _k(stax.serial(stax.Dense(3, W1, B1), stax.Gelu(True),
                                   stax.Dense(1))[2], XV)
    np.testing.assert_array_equal(nngp_t, nngp)
    np.testing.assert_array_equal(ntk_t, ntk)
    x = np.linspace(-3, 3, 61)
    gap = np.abs(np.asarray(stax.Gelu(True)[1]((), x)) - np.asarray(stax.Gelu()[1]((), x)))
    assert 1e-4 < gap.max() < 1e-3


def test_rbf_nngp_is_the_gaussian_kernel_of_its_input():
    gamma = 0.7
    nngp = np.asarray(stax.serial(stax.Dense(3, W1, B1), stax.Rbf(gamma))[2](XV, None, "nngp"))
    cov = _input_cov(XV)
    q = np.diag(cov)
    np.testing.assert_allclose(nngp, np.exp(-gamma * (q[:, None] + q[None, :] - 2 * cov)),
                               rtol=1e-13)
    np.testing.assert_array_equal(np.diag(nngp), 1.0)


def test_sigmoid_like_is_the_scaled_erf():
    a = _k(stax.serial(stax.Dense(3, W1, B1), stax.Sigmoid_like(), stax.Dense(1))[2], XV)
    b = _k(stax.serial(stax.Dense(3, W1, B1), stax.Erf(0.5, 1 / SIGMOID_SCALE, 0.5),
                       stax.Dense(1))[2], XV)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


# ------------------------------------------------------------------------------------------
# Monte Carlo over wide finite networks
# ------------------------------------------------------------------------------------------
def _mlp(layer, width, out):
    return stax.serial(stax.Dense(width, W_std=W1, b_std=B1), layer,
                       stax.Dense(out, W_std=W2, b_std=B2))


def _monte_carlo_nngp(init_fn, apply_fn, x, out, draws, seed):
    """Mean and standard error over ``draws`` random networks (PRNGKey(seed)) of the
    outputs' empirical covariance ``f f^T / out``."""

    def one(key):
        _, params = init_fn(key, x.shape)
        f = apply_fn(params, x)
        return f @ f.T / out

    samples = np.asarray(jax.vmap(one)(jax.random.split(jax.random.PRNGKey(seed), draws)))
    return samples.mean(0), samples.std(0) / math.sqrt(draws)


@pytest.mark.parametrize("name", list(LAYERS))
def test_dense_layer_dense_nngp_matches_monte_carlo(x64, name):
    """Dense(512) -> layer -> Dense(32): every pre-activation of the hidden layer is exactly
    Gaussian with the input covariance, so f f^T / 32 is an unbiased estimate of the NNGP at
    any width; over 60 draws (fixed seed) the mean is within 5 standard errors (estimated
    from the draws) plus 0.5% of the largest entry."""
    draws, out = 60, 32
    init_fn, apply_fn, kernel_fn = _mlp(LAYERS[name][0](), 512, out)
    nngp = np.asarray(kernel_fn(XV, None, "nngp"))
    mean, se = _monte_carlo_nngp(init_fn, apply_fn, XV, out, draws, seed=3)
    assert np.all(np.abs(mean - nngp) <= 5 * se + 0.005 * np.abs(nngp).max()), (mean, nngp)


@pytest.mark.parametrize("name", list(LAYERS))
def test_dense_layer_dense_ntk_matches_empirical_ntk(x64, name):
    """The empirical NTK of Dense(256) -> layer -> Dense(1) is, for the same reason, an
    unbiased estimate of the NTK (the readout weight is independent of the hidden layer):
    the mean over 8 draws is within 5 standard errors plus 0.5% of the largest entry."""
    draws = 8
    init_fn, apply_fn, kernel_fn = _mlp(LAYERS[name][0](), 256, 1)
    ntk = np.asarray(kernel_fn(XV, None, "ntk"))
    samples = []
    for key in jax.random.split(jax.random.PRNGKey(4), draws):
        _, params = init_fn(key, XV.shape)
        samples.append(np.asarray(empirical.empirical_ntk(apply_fn, params, XV)))
    samples = np.stack(samples)
    mean, se = samples.mean(0), samples.std(0) / math.sqrt(draws)
    assert np.all(np.abs(mean - ntk) <= 5 * se + 0.005 * np.abs(ntk).max()), (mean, ntk)


def test_sign_then_pooling_then_nonlinearity_matches_monte_carlo(x64):
    """Conv -> Sign -> GlobalAvgPool -> Dense -> Relu: the Relu's input variance is the mean
    over pixel pairs of Sign's covariance between pixels of one image, 1 - 2 theta / pi
    (neural-tangents 0.6.5 takes it as 1 for every pair; its NNGP here is several times the
    Monte Carlo value). Finite-width bias O(1/width): 4 standard errors plus 8%."""
    c, draws, out = 64, 100, 16
    x = XI[:, :4, :4]
    init_fn, apply_fn, kernel_fn = stax.serial(
        stax.Conv(c, (3, 3), padding="SAME", b_std=0.2), stax.Sign(), stax.GlobalAvgPool(),
        stax.Dense(c, W_std=1.5), stax.Relu(), stax.Dense(out))
    nngp = np.asarray(kernel_fn(x, None, "nngp"))
    mean, se = _monte_carlo_nngp(init_fn, apply_fn, x, out, draws, seed=5)
    assert np.all(np.abs(mean - nngp) <= 4 * se + 0.08 * np.abs(nngp).max()), (mean, nngp)


# ------------------------------------------------------------------------------------------
# float32
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(LAYERS))
def test_float32_in_float32_out(name):
    layer = LAYERS[name][0]()
    x32 = XV.astype(np.float32)
    assert layer[1]((), x32).dtype == np.float32
    _, _, kernel_fn = stax.serial(stax.Dense(3, W1, B1), layer, stax.Dense(1, W2, B2))
    k32 = kernel_fn(x32, None, ("nngp", "ntk", "cov1"))
    k64 = kernel_fn(XV, None, ("nngp", "ntk", "cov1"))
    for a, b in zip(k32, k64):
        assert a.dtype == np.float32
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-6)


def _all_layers_conv(pool=None):
    """Conv -> layer (-> pool) for each layer (Sign first: it zeroes the NTK before it)."""
    layers = []
    for name in ("sign", "gelu", "sigmoid_like", "sin", "cos", "rbf"):
        layers += [stax.Conv(3, (2, 2), padding="SAME", b_std=0.2), LAYERS[name][0]()]
        layers += [] if pool is None else [pool]
    return layers


def test_float32_conv_network_in_the_full_mode():
    """A full-mode network with every layer (and poolings between them): float32 in, float32
    out, close to float64; and in float64 each input's variances (cov1, propagated by the
    layers' self maps, cross-pixel entries included) equal the diagonal of the NNGP Gram
    matrix (propagated by the pair maps) through the poolings and later nonlinearities."""
    _, _, kernel_fn = stax.serial(*_all_layers_conv(stax.AvgPool((2, 2), (1, 1), "SAME")),
                                  stax.GlobalAvgPool(), stax.Dense(1))
    x = XI[:, :3, :3]
    get = ("nngp", "ntk", "cov1")
    k32, k64 = kernel_fn(x.astype(np.float32), None, get), kernel_fn(x, None, get)
    for a, b in zip(k32, k64):
        assert a.dtype == np.float32
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(k64.cov1), np.diag(np.asarray(k64.nngp)),
                               rtol=1e-12)


# ------------------------------------------------------------------------------------------
# bad arguments
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("build, match", [
    (lambda: stax.Rbf(0.0), "Rbf: gamma must be positive"),
    (lambda: stax.Rbf(-1), "Rbf: gamma must be positive"),
    (lambda: stax.Rbf(float("nan")), "Rbf: gamma must be a finite number"),
    (lambda: stax.Rbf("1"), "Rbf: gamma must be a real number"),
    (lambda: stax.Sin(a=float("inf")), "Sin: a must be a finite number"),
    (lambda: stax.Sin(b=None), "Sin: b must be a real number"),
    (lambda: stax.Sin(c=float("nan")), "Sin: c must be a finite number"),
    (lambda: stax.Cos(a="2"), "Cos: a must be a real number"),
    (lambda: stax.Cos(b=float("-inf")), "Cos: b must be a finite number"),
    (lambda: stax.Cos(c=[0.1]), "Cos: c must be a real number"),
    (lambda: stax.Gelu("yes"), "Gelu: approximate must be True or False"),
    (lambda: stax.Gelu(approximate=None), "Gelu: approximate must be True or False"),
])
def test_bad_arguments_raise_value_error(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("name", list(LAYERS))
def test_input_must_be_gaussian_and_there_are_no_parameters(name):
    layer = LAYERS[name][0]()
    _, _, kernel_fn = stax.serial(stax.Dense(3), stax.Relu(), layer)
    with pytest.raises(ValueError, match="must be Gaussian"):
        kernel_fn(XV)
    with pytest.raises(ValueError, match="has no parameters"):
        layer[1]((np.ones(2),), XV)


# ------------------------------------------------------------------------------------------
# convolutional networks: the diagonal and the full (pixel-pair) mode
# ------------------------------------------------------------------------------------------
def test_conv_network_is_the_same_in_both_modes():
    """Conv -> layer -> ... -> Flatten -> Dense runs in the diagonal mode; forcing all pixel
    pairs (diagonal_spatial=False) gives the same kernels (the same-pixel entries are computed
    by the same maps, the cross-pixel ones are not read)."""
    _, _, kernel_fn = stax.serial(*_all_layers_conv(), stax.Flatten(), stax.Dense(1, b_std=0.1))
    x, x2 = XI[:, :4, :3], XI[:2, :4, :3] + 0.1
    assert not np.all(_k(kernel_fn, x, x2)[1] == 0)
    for a, b in zip(_k(kernel_fn, x, x2), _k(kernel_fn, x, x2, diagonal_spatial=False)):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)
