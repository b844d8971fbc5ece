"""LANTK-NTH: the neural tangent hierarchy solved to second order (spec §5).

At finite width ``m`` the tangent kernel moves during training. Its motion is governed by a
hierarchy of higher-order kernels (Huang & Yau 2020, "Dynamics of deep neural networks and
neural tangent hierarchy"):

    K⁽²⁾ = K_NTK,   K⁽ʳ⁺¹⁾(x_1..x_{r+1}) = ⟨∇_θ K⁽ʳ⁾(x_1..x_r), ∇_θ f(x_{r+1})⟩,
    d/dt K⁽ʳ⁾_t(x_1..x_r) = −(1/n) Σ_i K⁽ʳ⁺¹⁾_t(x_1..x_r, x_i) (f_t(x_i) − y_i).

Freezing ``K⁽⁴⁾`` at initialisation, taking the residuals from the NTK dynamics
(``r_t = −e^{−tH/n} y`` when ``f_0 = 0``) and averaging over the initialisation
(``E K⁽³⁾_0 = 0``) gives the label-aware kernel of Chen, He & Su (NeurIPS 2020), "Label-aware
neural tangent kernel":

    E K⁽²⁾_t(a, b) = K(a, b) + ⟨E K⁽⁴⁾(a, b, ·, ·), N_t⟩,   N_t = (1/n²) ∫_0^t r_s R_sᵀ ds,

with ``R_s = ∫_0^s r_u du`` and one n×n matrix ``N_t`` (:func:`N_t`) for all pairs ``(a, b)``.
That is the expected drift for an antisymmetric initialisation (``f_0 = 0``). For the standard
one (``r_t = e^{−tH/n}(f_0 − y)``) two terms of the same order ``1/m`` join it:
``⟨E K⁽⁴⁾, N_t[Σ_0]⟩`` with ``Σ_0 = E f_0 f_0ᵀ`` and ``−⟨E[K⁽³⁾_0 f_0ᵀ], H⁻¹(I − e^{−tH/n})⟩``
(:func:`nth_kernel`, ``init=``). :func:`trained_drift` and :func:`drift_experiment` measure
the mean drift of trained networks against these predictions.

Contents:

* :func:`higher_order_kernels` -- ``K⁽³⁾`` and ``K⁽⁴⁾`` of any network ``apply_fn(params, x)``
  by nested automatic differentiation: the ground truth.
* :func:`two_layer_init`, :func:`two_layer_apply`, :func:`two_layer_ntk` -- the two-layer
  ReLU network of spec §2 (both layers trained, no bias) and its NTK in closed form.
* :func:`two_layer_k4_contract` -- ``Σ_ij K⁽⁴⁾(a, b, i, j) N_ij`` of the two-layer network at
  given weights for all pairs at once, without forming ``K⁽⁴⁾``.
* :func:`two_layer_k3f_contract` -- the same-neuron part of ``⟨K⁽³⁾(a, b, ·) f(·)ᵀ, M⟩``,
  whose mean is the standard initialisation's extra first-order term.
* :func:`N_t` and :func:`nth_kernel` -- the LANTK-NTH kernel (``init="standard"`` or
  ``"antisymmetric"``).
* :func:`trained_drift`, :func:`drift_experiment` -- RK4 gradient flow of many two-layer
  networks and the slope of their mean kernel drift on the prediction.

The two-layer ``K⁽⁴⁾`` per neuron. For ``f(x) = m^{-1/2} Σ_r a_r σ(w_rᵀx)``, ``σ = relu``,
write ``σ_k = σ(w_rᵀx_k)``, ``e_k = σ'(w_rᵀx_k) = 1[w_rᵀx_k > 0]`` (``σ'' = 0``) and
``g_kl = x_kᵀx_l``. Differentiating three times,

    K⁽⁴⁾(x_1, x_2, x_3, x_4) = m⁻² Σ_r [ (2 e_1 e_2 g_12 σ_3 + e_1 e_3 σ_2 g_13 + e_2 e_3 σ_1 g_23) σ_4
                                        + a_r² e_1 e_2 e_3 e_4 (2 g_12 g_34 + g_13 g_24 + g_23 g_14) ],

so ``E K⁽⁴⁾ = K̄⁽⁴⁾/m`` with ``K̄⁽⁴⁾`` the expectation of one neuron's bracket. Contracted with
``N`` over ``(x_3, x_4) = (x_i, x_j)`` each term is a product of matrices per neuron; the last
one needs only the symmetric part, and ``N_t + N_tᵀ = R_t R_tᵀ/n²`` has rank one at every ``t``
(``α αᵀ`` at ``t = ∞``), so the whole contraction costs ``O((n + b) · n)`` per neuron.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, X_te = rng.standard_normal((20, 5)), rng.standard_normal((4, 5))
    >>> y = np.sign(X[:, 0])
    >>> K_tr, K_te = nth_kernel(X, y, X_te, width=100, samples=200, seed=0)
    >>> K_tr.shape, K_te.shape
    ((20, 20), (4, 20))
    >>> np.allclose(nth_kernel(X, y, X_te, width=100, t=0, samples=10)[0], two_layer_ntk(X))
    True
"""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from lantk._checks import (
    as_float_array,
    check_float_dtype,
    check_int,
    check_widths,
    flat_inputs,
    check_kernel_pair,
    check_lengths,
    check_real,
    check_seed,
    encode_labels,
    no_progress,
)
from lantk._x64 import x64
from lantk.archs import two_layer_relu_kernel

__all__ = [
    "INITS",
    "N_t",
    "higher_order_kernels",
    "nth_kernel",
    "two_layer_apply",
    "two_layer_init",
    "two_layer_k3f_contract",
    "two_layer_k4_contract",
    "two_layer_ntk",
    "drift_experiment",
    "trained_drift",
]

_EPS = np.finfo(np.float64).eps
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)
_GL_NODES, _GL_WEIGHTS = (_GL_NODES + 1) / 2, _GL_WEIGHTS / 2  # Gauss-Legendre on [0, 1]
_CHUNK_ELEMENTS = 1 << 23  # float64 elements of the largest per-chunk buffer (64 MiB)
_MAX_CHUNK = 256           # neurons per chunk at most (progress-bar granularity)


# ----------------------------------------------------------------------------- ground truth
@x64
def higher_order_kernels(apply_fn, params, x, indices=None):
    """``K⁽³⁾`` and ``K⁽⁴⁾`` of a network at given weights, by nested automatic differentiation.

    ``K⁽²⁾(a, b) = ⟨∇_θ f(x_a), ∇_θ f(x_b)⟩`` and ``K⁽ʳ⁺¹⁾(x_1..x_{r+1}) = ⟨∇_θ K⁽ʳ⁾(x_1..x_r),
    ∇_θ f(x_{r+1})⟩`` (spec §5), the derivative of ``K⁽ʳ⁾`` taken as a function of all the
    parameters, so ``K⁽⁴⁾`` contains second derivatives of ``f``. Derivatives are JAX's
    (``relu'' = 0``, ``relu'(0) = 0``). Cost grows like ``len(x)⁴`` forward-mode passes: for
    small sets only.

    Args:
        apply_fn: ``apply_fn(params, x) -> outputs`` of shape ``(N,)`` or ``(N, 1)``, as in
            neural-tangents' ``stax``.
        params: the weights, any pytree of arrays.
        x: inputs, leading axis ``N``.
        indices: optional ``(I1, I2, I3, I4)``, integer index arrays into ``x``; then
            ``K3[p, q, r] = K⁽³⁾(x[I1[p]], x[I2[q]], x[I3[r]])`` and likewise ``K4`` over all four.
            ``None`` uses every point for every slot.

    Returns:
        ``(K3, K4)``, NumPy arrays of shapes ``(|I1|, |I2|, |I3|)`` and ``(|I1|, |I2|, |I3|, |I4|)``.

    Example:
        >>> p = two_layer_init(0, d=3, width=4)
        >>> x = np.eye(3)
        >>> K3, K4 = higher_order_kernels(two_layer_apply, p, x)
        >>> K3.shape, K4.shape
        ((3, 3, 3), (3, 3, 3, 3))
    """
    if not callable(apply_fn):
        raise ValueError(f"apply_fn must be a callable apply_fn(params, x), got "
                         f"{type(apply_fn).__name__}")
    host = as_float_array(x, "x")  # numeric and finite (x itself keeps its dtype)
    if host.ndim < 1 or host.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch (N, ...), got shape {host.shape}")
    if not jax.tree_util.tree_leaves(params):
        raise ValueError("params has no leaves: nothing to differentiate")
    x = jnp.asarray(x)
    N = x.shape[0]
    if indices is None:
        indices = (np.arange(N),) * 4
    if isinstance(indices, (str, bytes)) or not hasattr(indices, "__len__") or \
            len(indices) != 4:
        raise ValueError("indices must be four index arrays (I1, I2, I3, I4)")
    idx = [_index_array(i, N, f"indices[{k}]") for k, i in enumerate(indices)]
    flat, unravel = ravel_pytree(params)

    def outputs(theta, xs):
        out = jnp.asarray(apply_fn(unravel(theta), xs))
        if out.size != xs.shape[0]:
            raise ValueError(f"apply_fn must return one scalar output per example, got shape "
                             f"{out.shape} for {xs.shape[0]} examples")
        return out.reshape(-1)

    def jac(theta, xs):  # (len(xs), n_params)
        return jax.jacrev(outputs)(theta, xs)

    x1, x2, x3, x4 = (x[i] for i in idx)

    def k2(theta):
        return jac(theta, x1) @ jac(theta, x2).T

    def k3(theta):
        along = jax.vmap(lambda v: jax.jvp(k2, (theta,), (v,))[1], out_axes=-1)
        return along(jac(theta, x3))

    @jax.jit
    def k3_k4(theta):
        along = jax.vmap(lambda v: jax.jvp(k3, (theta,), (v,))[1], out_axes=-1)
        return k3(theta), along(jac(theta, x4))

    K3, K4 = k3_k4(flat)
    return np.asarray(K3), np.asarray(K4)


def _index_array(i, N: int, name: str) -> np.ndarray:
    arr = np.asarray(i).reshape(-1)
    if arr.size and not (np.issubdtype(arr.dtype, np.integer) or (
            np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr))
            and np.all(arr == np.round(arr)))):
        raise ValueError(f"{name} must hold integer indices, got {arr[:5]!r}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= N):
        raise ValueError(f"{name} must lie in [0, {N}), got values in [{arr.min()}, {arr.max()}]")
    return arr


# ----------------------------------------------------------------------------- two-layer network
def two_layer_init(seed, d: int, width: int, a_dist: str = "rademacher") -> dict:
    """Weights of the two-layer ReLU network of spec §2: ``w_r ~ N(0, I_d)``, ``E a_r² = 1``.

    Args:
        seed: an integer seed or a ``numpy.random.Generator``.
        d: input dimension.
        width: number of neurons ``m``.
        a_dist: ``"rademacher"`` (``a_r = ±1``; the default, used by :func:`nth_kernel`: then
            ``a_r² = 1`` exactly and only the ``w_r`` are random) or ``"normal"`` (``N(0, 1)``).

    Returns:
        ``{"W": (width, d), "a": (width,)}`` float64 NumPy arrays.
    """
    seed = check_seed(seed, allow_generator=True)
    d, width = check_int(d, "d"), check_int(width, "width")
    if not isinstance(a_dist, str) or a_dist not in ("rademacher", "normal"):
        raise ValueError(f"a_dist must be 'rademacher' or 'normal', got {a_dist!r}")
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((width, d))
    if a_dist == "rademacher":
        a = rng.choice(np.array([-1.0, 1.0]), size=width)
    elif a_dist == "normal":
        a = rng.standard_normal(width)
    else:
        raise ValueError(f"a_dist must be 'rademacher' or 'normal', got {a_dist!r}")
    return {"W": W, "a": a}


@x64
def two_layer_apply(params, x):
    """``f(x) = m^{-1/2} Σ_r a_r relu(w_rᵀx)`` for the rows of ``x`` (shape ``(N, d)``)."""
    if not isinstance(params, dict) or "W" not in params or "a" not in params:
        raise ValueError("params must be a dict {'W': (m, d), 'a': (m,)} as two_layer_init "
                         f"gives, got {type(params).__name__}")
    W, a = params["W"], params["a"]
    if jnp.ndim(W) != 2 or jnp.shape(a) != (jnp.shape(W)[0],) or jnp.ndim(x) != 2 or \
            jnp.shape(x)[1] != jnp.shape(W)[1]:
        raise ValueError(f"two_layer_apply needs params['W'] (m, d), params['a'] (m,) and x "
                         f"(N, d); got shapes {jnp.shape(W)}, {jnp.shape(a)} and {jnp.shape(x)}")
    return jax.nn.relu(jnp.asarray(x) @ W.T) @ a / jnp.sqrt(W.shape[0])


def two_layer_ntk(X1, X2=None) -> np.ndarray:
    """Closed-form NTK of the two-layer ReLU network (spec §2), both layers trained:
    :func:`lantk.archs.two_layer_relu_kernel` with ``get="ntk"`` (full float64 accuracy near
    ``θ = 0``). ``X2=None`` means ``X2 = X1``.

    Example:
        >>> float(two_layer_ntk(np.array([[1.0, 0.0]]))[0, 0])  # xᵀx/2 + ‖x‖²/2
        1.0
    """
    return two_layer_relu_kernel(X1, X2, "ntk")


def _chunk_contribution(W, a2, Xp, Gp, GN, N, V, gamma, M):
    """One chunk of neurons' ``Σ_r [Σ_ij k4_r(a, b, i, j) N_ij − a_r² Σ_ik φ_r(a, b, i) M_ik σ_r(k)]``
    (unscaled), shape ``(P, n)``.

    Rows ``a`` run over ``Xp`` (whose first ``n`` rows are the training set), columns ``b`` and
    the contracted ``i, j`` over the training set. ``Gp = Xp X_trainᵀ``, ``GN = G_train ∘ N``,
    ``N + Nᵀ = V diag(gamma) Vᵀ``. ``φ_r(a, b, i) σ_r(k)`` is one neuron's ``K⁽³⁾(a, b, i) f(x_k)``
    (module docstring); it has the structure of the ``σ_4`` part of ``k4_r``, so the two share
    ``Ns``. ``M = 0`` gives the ``K⁽⁴⁾`` contraction alone, to the bit. Neurons with ``w_r = 0``
    contribute exactly zero.
    """
    n, R = V.shape
    k = W.shape[0]
    S = Xp @ W.T                                   # (P, k) pre-activations
    eP = (S > 0).astype(S.dtype)                   # relu'
    sP = jnp.maximum(S, 0.0)                       # relu
    e, s = eP[:n], sP[:n]
    Ns = N @ s - (M @ s) * a2[None, :]             # (n, k): Σ_j (N_ij − a² M_ij) σ_j
    q = jnp.sum(s * Ns, axis=0)                    # σᵀ N σ
    c = jnp.sum(e * (GN @ e), axis=0)              # Σ_ij e_i e_j g_ij N_ij
    # 2 e_a e_b g_ab σ_i σ_j  and  2 a² e_a e_b e_i e_j g_ab g_ij
    out = 2.0 * Gp * ((eP * (q + a2 * c)) @ e.T)
    # e_a e_i σ_b g_ai σ_j  and  e_b e_i σ_a g_bi σ_j:  h_r(a) = Σ_ij g_ai e_i N_ij σ_j
    h = Gp @ (e * Ns)                              # (P, k)
    out = out + (eP * h) @ s.T + sP @ (e * h[:n]).T
    # a² e_a e_b e_i e_j (g_ai g_bj + g_bi g_aj): only N + Nᵀ = V diag(γ) Vᵀ enters
    Z = (Gp @ (e[:, :, None] * V[:, None, :]).reshape(n, k * R)).reshape(-1, k, R)
    Z = Z * eP[:, :, None]
    Zw = Z * (a2[:, None] * gamma[None, :])
    return out + Zw.reshape(-1, k * R) @ Z[:n].reshape(n, k * R).T


@jax.jit
def _accumulate(acc, W, a2, Xp, Gp, GN, N, V, gamma, M):
    return acc + _chunk_contribution(W, a2, Xp, Gp, GN, N, V, gamma, M).astype(acc.dtype)


def _contract(W, a, X_pairs, X_train, N, V, gamma, chunk=None, progress=False, M=None,
              dtype=np.float64):
    """``Σ_r [Σ_ij k4_r(a, b, i, j) N_ij − a_r² Σ_ik φ_r(a, b, i) M_ik σ_r(k)]`` over the neurons
    ``(W, a)`` (no ``1/m²``); ``M=None`` drops the second sum.

    Rows ``a`` run over ``X_train`` then ``X_pairs``: shape ``(n + P, n)``. Each chunk of
    neurons is computed in ``dtype`` and added to a float64 sum."""
    Xp = np.concatenate([X_train, X_pairs], axis=0)
    n = X_train.shape[0]
    m, R = W.shape[0], V.shape[1]
    if chunk is None:
        chunk = _CHUNK_ELEMENTS // ((Xp.shape[0] + n) * R)
        chunk = int(min(max(chunk, 1), _MAX_CHUNK, m))
    chunk = max(int(chunk), 1)
    G_train = X_train @ X_train.T
    if M is None:
        M = np.zeros_like(N)
    args = [jnp.asarray(v, dtype) for v in (Xp, Xp @ X_train.T, G_train * N, N, V, gamma, M)]
    acc = jnp.zeros((Xp.shape[0], n), jnp.float64)
    starts = range(0, m, chunk)
    if not no_progress(progress):
        from tqdm import tqdm

        starts = tqdm(starts, desc="K4 contraction, neuron chunks", unit="chunk")
    a2 = np.asarray(a, dtype=np.float64) ** 2
    for s0 in starts:
        Wc, a2c = W[s0:s0 + chunk], a2[s0:s0 + chunk]
        if Wc.shape[0] < chunk:  # pad with w = 0 neurons, which contribute exactly zero
            pad = chunk - Wc.shape[0]
            Wc = np.concatenate([Wc, np.zeros((pad, W.shape[1]))])
            a2c = np.concatenate([a2c, np.zeros(pad)])
        acc = _accumulate(acc, jnp.asarray(Wc, dtype), jnp.asarray(a2c, dtype), *args)
        if progress:  # let the bar show compute, not JAX's asynchronous dispatch
            acc.block_until_ready()
    return np.asarray(acc)


@x64
def two_layer_k4_contract(params, X_pairs, X_train, N, *, chunk: int | None = None,
                          progress: bool = False) -> np.ndarray:
    """``C[a, b] = Σ_ij K⁽⁴⁾(x_a, x_b, x_i, x_j) N_ij`` of the two-layer ReLU network at ``params``.

    ``K⁽⁴⁾`` is the width-``m`` network's own (with its ``1/m²``; see the module docstring), the
    same as :func:`higher_order_kernels` gives for :func:`two_layer_apply`; it is never formed.
    Work is ``O(m · (P + n) · n · (d + R))`` in chunks of neurons, ``R`` the rank of ``N + Nᵀ``
    (``n`` for a general ``N``, found by an eigendecomposition; :func:`nth_kernel` knows the
    rank-``C`` factor of ``N_t + N_tᵀ`` and does not need it).

    Args:
        params: ``{"W": (m, d), "a": (m,)}``.
        X_pairs: ``(P, d)``, the first argument ``x_a`` of ``K⁽⁴⁾``.
        X_train: ``(n, d)``, the second argument ``x_b`` and the contracted ``x_i, x_j``.
        N: ``(n, n)``, any matrix (``N_ij`` weighs ``K⁽⁴⁾(·, ·, x_i, x_j)``).
        chunk: neurons per step (default: bounded by memory).
        progress: show a tqdm bar over neuron chunks.

    Returns:
        ``(P, n)`` float64 array.
    """
    W, a, X_pairs, X_train, N = _contract_args(params, X_pairs, X_train, N, "N")
    chunk = check_int(chunk, "chunk", allow_none=True)
    gamma, V = np.linalg.eigh(N + N.T)
    C = _contract(W, a, X_pairs, X_train, N, V, gamma, chunk, progress)
    return C[X_train.shape[0]:] / W.shape[0] ** 2


def _contract_args(params, X_pairs, X_train, N, N_name):
    """``(W, a, X_pairs, X_train, N)`` as float64 arrays, checked against each other."""
    if not isinstance(params, dict) or "W" not in params or "a" not in params:
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(f"params must be a dict {{'W': (m, d), 'a': (m,)}} as two_layer_init "
                         f"gives, got {got}")
    W = as_float_array(params["W"], "params['W']", ndim=2)
    a = as_float_array(params["a"], "params['a']", ndim=1)
    if len(a) != W.shape[0] or W.shape[0] == 0:
        raise ValueError(f"params['W'] has shape {W.shape} and params['a'] {a.shape}: they need "
                         f"the same number m > 0 of neurons")
    d = W.shape[1]
    X_pairs = as_float_array(X_pairs, "X_pairs", ndim=2)
    X_train = as_float_array(X_train, "X_train", ndim=2)
    for name, X in (("X_pairs", X_pairs), ("X_train", X_train)):
        if X.shape[1] != d:
            raise ValueError(f"{name} has {X.shape[1]} features but params['W'] is for d = {d}")
    n = X_train.shape[0]
    if n == 0:
        raise ValueError("X_train is empty")
    N = as_float_array(N, N_name, ndim=2)
    if N.shape != (n, n):
        raise ValueError(f"{N_name} has shape {N.shape}, expected ({n}, {n}) (one row and "
                         f"column per training point)")
    return W, a, X_pairs, X_train, N


@x64
def two_layer_k3f_contract(params, X_pairs, X_train, M, *, chunk: int | None = None) -> np.ndarray:
    """``C[a, b] = m⁻² Σ_r a_r² Σ_ik φ_r(a, b, i) M_ik σ_r(x_k)``: the same-neuron part of
    ``Σ_ik K⁽³⁾(x_a, x_b, x_i) f(x_k) M_ik`` of the two-layer network at ``params``.

    ``K⁽³⁾(a, b, i) = m^{-3/2} Σ_r a_r φ_r(a, b, i)`` with
    ``φ_r = 2 e_a e_b g_ab σ_i + e_a e_i σ_b g_ai + e_b e_i σ_a g_bi`` and
    ``f(x_k) = m^{-1/2} Σ_r a_r σ_r(x_k)``, so ``K⁽³⁾ f`` is a double sum over neurons ``r, r'``;
    its terms with ``r ≠ r'`` have mean zero over a symmetric initialisation (``a → −a``), and
    this function returns the rest, whose mean is ``E[K⁽³⁾_0(a, b, i) f_0(x_k)]`` contracted
    with ``M``. For a one-neuron network (``width = 1``) it is the whole product, which is how
    the tests check it against :func:`higher_order_kernels`.

    Args:
        params: ``{"W": (m, d), "a": (m,)}``.
        X_pairs: ``(P, d)``, the first argument ``x_a``.
        X_train: ``(n, d)``, the second argument ``x_b``, the contracted ``x_i`` and ``x_k``.
        M: ``(n, n)``; ``M_ik`` weighs ``K⁽³⁾(·, ·, x_i) f(x_k)``.
        chunk: neurons per step (default: bounded by memory).

    Returns:
        ``(P, n)`` float64 array.
    """
    W, a, X_pairs, X_train, M = _contract_args(params, X_pairs, X_train, M, "M")
    chunk = check_int(chunk, "chunk", allow_none=True)
    n = X_train.shape[0]
    zero = np.zeros((n, n))
    C = _contract(W, a, X_pairs, X_train, zero, np.zeros((n, 1)), np.zeros(1), chunk, M=M)
    return -C[n:] / W.shape[0] ** 2


# ----------------------------------------------------------------------------- N_t
def _phi(z):
    """``(1 − e^{−z})/z``, ``1`` at ``z = 0``."""
    z = np.asarray(z, dtype=np.float64)
    safe = np.where(z == 0.0, 1.0, z)
    return np.where(z == 0.0, 1.0, -np.expm1(-safe) / safe)


def _nth_weights(lam, t: float, n: int) -> np.ndarray:
    """``g_ij`` with ``N_t = P [(U Uᵀ)_ij g_ij] Pᵀ`` (spec §5), evaluated without cancellation.

    ``g_ij = (1/λ_j) ((1 − e^{−τλ_i})/λ_i − (1 − e^{−τ(λ_i+λ_j)})/(λ_i + λ_j))
           = ∫_0^τ e^{−sλ_i} (1 − e^{−sλ_j})/λ_j ds``,  ``τ = t/n``.
    With ``x = τλ_i``, ``y = τλ_j``: for ``x ≥ 1`` use ``(φ(x) − e^{−x} φ(y)) τ² / (x + y)``;
    for ``x < 1 ≤ y`` the formula above; for ``x, y < 1`` the integral
    ``τ² ∫_0^1 s e^{−xs} φ(ys) ds`` by 16-point Gauss–Legendre (exact to round-off there).
    """
    li, lj = np.meshgrid(lam, lam, indexing="ij")
    if math.isinf(t):
        return 1.0 / (li * (li + lj))
    g = np.zeros_like(li)
    if t == 0:
        return g
    tau = t / n
    x, y = tau * li, tau * lj
    A = x >= 1.0
    B = ~A & (y >= 1.0)
    C = ~A & ~B
    xa, ya, la, lb = x[A], y[A], li[A], lj[A]
    g[A] = (-np.expm1(-xa) / la - np.exp(-xa) * tau * _phi(ya)) / (la + lb)
    g[B] = tau * (_phi(x[B]) - _phi(x[B] + y[B])) / lj[B]
    xc, yc = x[C][:, None], y[C][:, None]
    s = _GL_NODES[None, :]
    g[C] = tau * tau * ((s * np.exp(-xc * s) * _phi(yc * s)) @ _GL_WEIGHTS)
    return g


def _eig_train(H):
    """Eigendecomposition of ``H``; a tiny jitter (with a warning) when it is numerically singular."""
    lam, P = np.linalg.eigh(H)
    n = len(lam)
    floor = n * _EPS * max(abs(lam).max(), 1e-300)
    if lam.min() < floor:
        warnings.warn(f"H is numerically singular (smallest eigenvalue {lam.min():.3g}); adding a "
                      f"jitter of {floor - lam.min():.3g} to its eigenvalues for N_t", RuntimeWarning,
                      stacklevel=3)
        lam = lam + (floor - lam.min())
    return lam, P


def _labels(y, n):
    """Labels as an ``(n, C)`` matrix: ``±1`` as one column, classes as centred one-hot rows."""
    lab = encode_labels(y, "y")
    check_lengths("y", len(lab), "the training set", n)
    return lab.Y.reshape(n, -1)


def _time(t) -> float:
    t = check_real(t, "t", allow_inf=True)
    if math.isnan(t) or t < 0:
        raise ValueError(f"t must be >= 0 (np.inf for the end of training), got {t}")
    return t


def _N_from_eig(lam, P, Y, t):
    U = P.T @ Y
    return P @ ((U @ U.T) * _nth_weights(lam, t, len(lam))) @ P.T


def _R_from_eig(lam, P, Y, t):
    """``−R_t / n = P [(1 − e^{−tλ/n})/λ ∘ Pᵀy]`` (``α = H⁻¹y`` at ``t = ∞``): ``N_t + N_tᵀ`` is its
    outer square."""
    if math.isinf(t):
        w = 1.0 / lam
    else:
        tau = t / len(lam)
        w = tau * _phi(tau * lam)
    return P @ (w[:, None] * (P.T @ Y))


def N_t(H, y, t=np.inf) -> np.ndarray:
    """The matrix ``N_t`` of spec §5, ``E K⁽²⁾_t(a, b) = K(a, b) + ⟨E K⁽⁴⁾(a, b, ·, ·), N_t⟩``.

    ``N_t = (1/n²) ∫_0^t r_s R_sᵀ ds`` with ``r_s = −e^{−sH/n} y``, ``R_s = ∫_0^s r_u du``; in the
    eigenbasis ``H = P Λ Pᵀ``, ``u = Pᵀy``:
    ``N_t = P [u_i u_j / λ_j ((1 − e^{−tλ_i/n})/λ_i − (1 − e^{−t(λ_i+λ_j)/n})/(λ_i + λ_j))] Pᵀ``,
    ``N_∞ = P [u_i u_j / (λ_i (λ_i + λ_j))] Pᵀ``. Row index ``i`` pairs with the third argument
    of ``K⁽⁴⁾``, ``j`` with the fourth. For several classes (spec §1) they are summed.

    Since ``dR_s/ds = r_s``, the symmetric part is exact and of rank one at every ``t``:
    ``N_t + N_tᵀ = (1/n²) ∫_0^t d(R_s R_sᵀ) = R_t R_tᵀ / n²``; at ``t = ∞``, ``R_∞/n = −α`` with
    ``α = H⁻¹y``, so the symmetric part of ``N_∞`` is ``α αᵀ/2`` (spec §5).

    Args:
        H: ``(n, n)`` kernel on the training set (symmetric positive definite).
        y: labels ``±1`` of shape ``(n,)``; or classes (``0..C-1``, or ``(n, C)`` one-hot),
            used as centred one-hot rows ``Y``, with ``u_i u_j`` read as ``(PᵀY YᵀP)_ij``.
        t: training time ``≥ 0``; ``np.inf`` (default) for the end of training.

    Example:
        >>> H = np.array([[2.0, 0.5], [0.5, 1.0]]); y = np.array([1.0, -1.0])
        >>> a = np.linalg.solve(H, y); N = N_t(H, y)
        >>> np.allclose(N + N.T, np.outer(a, a))
        True
    """
    H, _ = check_kernel_pair(H, name_train="H")
    Y = _labels(y, H.shape[0])
    lam, P = _eig_train(H)
    return _N_from_eig(lam, P, Y, _time(t))


# ----------------------------------------------------------------------------- the kernel
def _inputs(X, name):
    return flat_inputs(X, name, rows="n")


INITS = ("standard", "antisymmetric")


def _check_init(init):
    if not isinstance(init, str) or init not in INITS:
        raise ValueError(f"init must be 'standard' (f_0 != 0, the default) or 'antisymmetric' "
                         f"(f_0 = 0), got {init!r}")
    return init


def _nngp_factor(X_train):
    """``L`` with ``L Lᵀ = Σ_0 = E f_0(X) f_0(X)ᵀ`` (the output covariance at initialisation,
    :func:`lantk.archs.two_layer_relu_kernel` with ``get="nngp"``); eigenvalues below round-off
    (relative ``n · eps``) are dropped."""
    S0 = two_layer_relu_kernel(X_train, None, "nngp")
    mu, Q = np.linalg.eigh((S0 + S0.T) / 2)
    keep = mu > len(mu) * _EPS * max(mu.max(), 1e-300)
    return Q[:, keep] * np.sqrt(mu[keep])


def _M_from_eig(lam, P, t):
    """``M_t = (1/n) ∫_0^t e^{−sH/n} ds = H⁻¹(I − e^{−tH/n})`` (``H⁻¹`` at ``t = ∞``)."""
    if math.isinf(t):
        w = 1.0 / lam
    else:
        tau = t / len(lam)
        w = tau * _phi(tau * lam)
    return (P * w) @ P.T


@x64
def nth_kernel(X_train, y, X_test, *, width, t=np.inf, samples, seed=0, chunk=None,
               progress=False, init="standard", dtype="float64"):
    """LANTK-NTH kernel of the two-layer ReLU network (spec §2, §5): its expected value at time ``t``.

    With ``init="antisymmetric"`` (neurons in pairs ``(w, a)``, ``(w, −a)``: ``f_0 = 0`` and
    ``K⁽³⁾_0 = 0``) it is ``K_t(a, b) = K(a, b) + ⟨E K⁽⁴⁾(a, b, ·, ·), N_t[y yᵀ]⟩``; with
    ``init="standard"`` (independent neurons, ``f_0 ≠ 0``; the default, what trained networks
    use) the two further terms of the same order ``1/width``:

        K_t(a, b) = K(a, b) + ⟨E K⁽⁴⁾(a, b, ·, ·), N_t[y yᵀ + Σ_0]⟩
                            − ⟨E[K⁽³⁾_0(a, b, ·) f_0ᵀ], H⁻¹(I − e^{−tH/n})⟩,

    ``Σ_0 = E f_0 f_0ᵀ`` the output covariance at initialisation (NNGP) and ``N_t[T]`` the matrix
    of :func:`N_t` with ``y yᵀ`` replaced by ``T`` (see the chapter "LANTK-NTH" for the
    derivation). ``K`` is the closed-form NTK (:func:`two_layer_ntk`), ``N_t`` comes from one
    eigendecomposition of ``H = K(X_train, X_train)``, and both expectations are ``1/width``
    times a mean over ``samples`` Monte Carlo neurons (``w_r ~ N(0, I_d)``, ``a_r = ±1``;
    :func:`two_layer_init` with ``seed``), contracted neuron chunk by neuron chunk without
    forming ``K⁽⁴⁾`` (:func:`two_layer_k4_contract`, :func:`two_layer_k3f_contract`). The
    costliest term needs only the symmetric part ``N_t + N_tᵀ``, of rank ``C`` for
    ``"antisymmetric"`` and up to ``n + C`` for ``"standard"``: the work is
    ``O(samples · (n + b) · (n · (R + 1) + d))`` with that rank ``R``.

    Args:
        X_train: ``(n, d)`` training inputs (images are flattened).
        y: ``(n,)`` labels ``±1``; or classes (``0..C-1``, or an ``(n, C)`` one-hot matrix),
            used as centred one-hot rows, the classes summed (for ``"standard"`` each class as
            its own scalar network, with its own ``f_0``).
        X_test: ``(b, d)`` test inputs.
        width: the network width ``m > 0``; the correction scales as ``1/width``.
        t: training time ``≥ 0`` (``0`` gives the NTK, ``np.inf`` the end of training).
        samples: Monte Carlo neurons for the expectation over initialisation.
        seed: seed of the Monte Carlo neurons.
        chunk: neurons per step (default: bounded by memory).
        progress: show a tqdm bar over neuron chunks.
        init: ``"standard"`` or ``"antisymmetric"``, the initialisation the expectation is over.
        dtype: ``"float64"`` (default) or ``"float32"``: the type in which each chunk of
            neurons' contraction is computed (the chunks are summed in float64, and everything
            else, ``N_t`` included, stays float64). float32 halves the time on a CPU (its matrix
            products run at about twice the rate); its rounding, about ``1e-6`` of the
            correction, is far below the Monte Carlo error of any practical ``samples``
            (``~ 1/sqrt(samples)``; the tests bound the difference).

    Returns:
        ``(K_train, K_test)``, float64 arrays of shapes ``(n, n)`` and ``(b, n)``.
    """
    init = _check_init(init)
    dtype = check_float_dtype(dtype)
    X_train = _inputs(X_train, "X_train")
    X_test = _inputs(X_test, "X_test")
    n, d = X_train.shape
    if n == 0:
        raise ValueError("X_train is empty")
    if X_test.shape[1] != d:
        raise ValueError(f"X_test has {X_test.shape[1]} features, X_train {d}")
    Y = _labels(y, n)
    t = _time(t)
    width = check_real(width, "width", positive=True)
    samples = check_int(samples, "samples")
    seed = check_seed(seed, allow_generator=True)
    chunk = check_int(chunk, "chunk", allow_none=True)

    H = two_layer_ntk(X_train)
    K_test = two_layer_ntk(X_test, X_train)
    if t == 0:
        return H, K_test
    lam, P = _eig_train(H)
    M = None
    if init == "standard":
        C = Y.shape[1]
        Y = np.concatenate([Y, np.tile(_nngp_factor(X_train), (1, C))], axis=1)
        M = C * _M_from_eig(lam, P, t)
    N = _N_from_eig(lam, P, Y, t)
    V = _R_from_eig(lam, P, Y, t)  # N + Nᵀ = V Vᵀ
    gamma = np.ones(V.shape[1])
    params = two_layer_init(seed, d, samples)
    C = _contract(params["W"], params["a"], X_test, X_train, N, V, gamma, chunk, progress, M=M,
                  dtype=dtype)
    C = C / (samples * width)  # (1/width) · (1/samples) Σ_r (k4_r N − a_r² φ_r M σ_r)
    return H + C[:n], K_test + C[n:]


# ----------------------------------------------------------------------------- trained networks
def _draw_networks(rng, draws, d, width, init):
    """``draws`` initialisations of the width-``width`` network: ``w_r ~ N(0, I_d)``,
    ``a_r ~ N(0, 1)``; ``"antisymmetric"`` draws ``width/2`` neurons and appends them with
    ``a → −a`` (so ``f_0 = 0``)."""
    if init == "standard":
        return rng.standard_normal((draws, width, d)), rng.standard_normal((draws, width))
    half = width // 2
    W, a = rng.standard_normal((draws, half, d)), rng.standard_normal((draws, half))
    return np.concatenate([W, W], axis=1), np.concatenate([a, -a], axis=1)


def _flow_drift(W, a, X, y, dt, steps):
    """RK4 gradient flow of ``(1/2n) Σ (f − y)²`` for ``steps`` steps of ``dt``, vmapped over the
    leading (draw) axis of ``W``, ``a``, for two models from the same weights: the ReLU network,
    and the gated network ``f(x_i) = m^{-1/2} Σ_r a_r e_ir w_rᵀx_i`` whose activation patterns
    ``e_ir`` stay at their values at initialisation (the same function and NTK at ``t = 0``; no
    pattern ever flips, so its hierarchy is exactly the one with ``relu'' = 0``). Returns both
    NTKs' drifts ``K_t − K_0`` on ``X`` and the ReLU network's final residuals."""
    n = X.shape[0]
    G = X @ X.T
    E0 = (jnp.einsum("id,kmd->kmi", X, W) > 0).astype(X.dtype)  # (draws, m, n) patterns at t = 0

    def parts(theta, e0):
        Wd, ad = theta
        S = X @ Wd.T
        e = (S > 0).astype(S.dtype) if e0 is None else e0
        return e * S, e

    def velocity(theta, e0):
        (Wd, ad), (sig, e) = theta, parts(theta, e0)
        r = sig @ ad / jnp.sqrt(Wd.shape[0]) - y
        c = 1.0 / (n * jnp.sqrt(Wd.shape[0]))
        return (-c * ad[:, None] * ((e * r[:, None]).T @ X), -c * (sig.T @ r))

    def ntk(theta, e0):
        (Wd, ad), (sig, e) = theta, parts(theta, e0)
        return (sig @ sig.T + ((e * ad**2) @ e.T) * G) / Wd.shape[0]

    def axpy(theta, k, h):
        return tuple(p + h * q for p, q in zip(theta, k))

    def flow(theta, e0):
        def rk4(th, _):
            k1 = velocity(th, e0)
            k2 = velocity(axpy(th, k1, dt / 2), e0)
            k3 = velocity(axpy(th, k2, dt / 2), e0)
            k4 = velocity(axpy(th, k3, dt), e0)
            return axpy(th, tuple((p + 2 * q + 2 * u + v) / 6
                                  for p, q, u, v in zip(k1, k2, k3, k4)), dt), None

        return jax.lax.scan(rk4, theta, None, length=steps)[0]

    def one(Wd, ad, e0):
        e0 = e0.T  # (n, m)
        K0 = ntk((Wd, ad), None)
        relu_t, gated_t = flow((Wd, ad), None), flow((Wd, ad), e0)
        sig, _ = parts(relu_t, None)
        r = sig @ relu_t[1] / jnp.sqrt(Wd.shape[0]) - y
        return ntk(relu_t, None) - K0, ntk(gated_t, e0) - K0, r

    return jax.vmap(one)(W, a, E0)


_flow_drift = jax.jit(_flow_drift, static_argnames="steps")


@x64
def trained_drift(X, y, width, *, draws, t, init="standard", seed=0, step=0.5, batch=64):
    """The empirical NTK's drift ``K_t(X, X) − K_0(X, X)`` of ``draws`` trained two-layer networks.

    Each network (spec §2, NTK parameterisation, both layers trained, ``w_r ~ N(0, I_d)``,
    ``a_r ~ N(0, 1)``; ``"antisymmetric"``: ``width/2`` such neurons and their copies with
    ``a → −a``) follows the gradient flow of ``(1/2n) Σ_i (f(x_i) − y_i)²`` up to time ``t``,
    integrated by the classical Runge–Kutta method (RK4) in JAX with the fixed step
    ``dt = step · n / λ_max(H)`` (shortened to land on ``t``), ``H`` the NTK on ``X``.

    Args:
        X: ``(n, d)`` training inputs. y: ``(n,)`` labels ``±1``.
        width: the number of neurons ``m`` (even for ``"antisymmetric"``).
        draws: number of independent initialisations.
        t: training time ``> 0``, in the units of :func:`N_t`.
        init: ``"standard"`` or ``"antisymmetric"``.
        seed: seed of the initialisations.
        step: the RK4 step in units of ``n / λ_max(H)`` (RK4 is stable to about 2.8; at 0.5 its
            error, about ``step⁴/120`` relative per unit time, stays far below the drift).
        batch: networks integrated at once.

    Returns:
        ``(drift, drift_ae, residual)``: ``drift`` ``(draws, n, n)`` is the drift of the
        network's empirical NTK; ``drift_ae`` that of the gated network trained the same way from the same weights: every
        neuron's activation pattern ``1[w_rᵀx_i > 0]`` on ``X`` held at its initial value (its
        NTK is a polynomial in the weights whose hierarchy is exactly the one with
        ``relu'' = 0``, the derivatives almost everywhere of spec §5: what :func:`nth_kernel`
        predicts; the ReLU network differs from it only by activation patterns that flip
        during training); ``residual``
        ``(draws, n)`` the training residuals ``f_t(X) − y`` at the end.
    """
    init = _check_init(init)
    X = _inputs(X, "X")
    n, d = X.shape
    Y = _labels(y, n)
    if Y.shape[1] != 1:
        raise ValueError("y must be binary labels ±1 for trained_drift (one output)")
    t = _time(t)
    if not (t > 0 and math.isfinite(t)):
        raise ValueError(f"t must be a finite training time > 0, got {t}")
    try:
        m = check_int(width, "width")
    except ValueError:
        m = None
    if m is None or (init == "antisymmetric" and m % 2):
        raise ValueError(f"width must be a positive integer (even for 'antisymmetric'), got "
                         f"{width!r}")
    width = m
    draws = check_int(draws, "draws")
    step = check_real(step, "step", positive=True)
    batch = check_int(batch, "batch")
    seed = check_seed(seed)
    lam_max = np.linalg.eigvalsh(two_layer_ntk(X))[-1]
    steps = max(int(math.ceil(t * lam_max / (n * step))), 1)
    dt = t / steps
    rng = np.random.default_rng(seed)
    W, a = _draw_networks(rng, int(draws), d, int(width), init)
    Xj, yj = jnp.asarray(X), jnp.asarray(Y[:, 0])
    out = []
    for s0 in range(0, int(draws), int(batch)):
        out.append([np.asarray(v) for v in _flow_drift(
            jnp.asarray(W[s0:s0 + batch]), jnp.asarray(a[s0:s0 + batch]), Xj, yj, dt, steps)])
    return tuple(np.concatenate(v) for v in zip(*out))


def _slope_interval(drift, pred, level=0.95):
    """Per-draw least-squares slopes ``⟨D_k, P⟩ / ⟨P, P⟩`` and their mean with a t interval."""
    from scipy import stats

    s = np.einsum("kij,ij->k", drift, pred) / np.sum(pred * pred)
    mean = float(s.mean())
    if len(s) < 2:
        return mean, -math.inf, math.inf
    half = float(stats.t.ppf(0.5 + level / 2, len(s) - 1) * s.std(ddof=1) / np.sqrt(len(s)))
    return mean, mean - half, mean + half


@x64
def drift_experiment(X, y, widths, *, draws, t, inits=INITS, samples=200_000, seed=0,
                     step=0.5, level=0.95):
    """Predicted against measured mean drift of the tangent kernel of trained two-layer networks.

    For each initialisation and width ``m``, :func:`trained_drift` trains ``draws`` networks for
    time ``t``; the prediction is the drift of :func:`nth_kernel` for that initialisation
    (``samples`` Monte Carlo neurons). The summary is the slope of measured on predicted drift
    over the ``n × n`` training pairs, ``β = ⟨D̄, P⟩ / ⟨P, P⟩``: the mean of the per-network
    slopes ``⟨D_k, P⟩ / ⟨P, P⟩``, with a t interval at ``level`` over the ``draws`` networks
    (``β = 1``: the prediction is the mean drift). For ``"standard"`` it also gives the slope
    against the ``f_0 = 0`` formula (``"antisymmetric"``'s), the one that misses two terms.

    Args:
        X, y: ``(n, d)`` inputs and ``±1`` labels. widths: the widths ``m``.
        draws: networks per initialisation and width. t: training time ``> 0``.
        inits: which initialisations. samples: Monte Carlo neurons of the prediction.
        seed: seed (each init and width draws its own networks from it). step: RK4 step, as in
            :func:`trained_drift`. level: coverage of the intervals.

    Returns:
        A list of dicts, one per ``(init, width)``, with ``init, width, draws``; the slope and
        interval ``ae_slope, ae_low, ae_high`` of the drift along the hierarchy (activation
        patterns held: ``drift_ae`` of :func:`trained_drift`) and ``full_slope, full_low,
        full_high`` of the network's own drift, both against this initialisation's prediction;
        ``f0zero_slope, f0zero_low, f0zero_high``: the ``drift_ae`` slope against the ``f_0 = 0``
        formula; ``pred_rms`` and ``drift_rms`` (root mean squares of the predicted and of the
        mean measured drift) and ``residual_rms`` (of ``f_t − y``).
    """
    X = _inputs(X, "X")
    inits = [_check_init(i) for i in ([inits] if isinstance(inits, str) else inits)]
    if not inits:
        raise ValueError("inits must name at least one initialisation")
    widths = check_widths(widths)
    if not widths:
        raise ValueError("widths must name at least one width")
    draws = check_int(draws, "draws")
    samples = check_int(samples, "samples")
    seed = check_seed(seed)
    level = check_real(level, "level")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    H = two_layer_ntk(X)
    pred = {i: nth_kernel(X, y, X[:1], width=1.0, t=t, samples=samples, seed=seed + 1,
                          init=i)[0] - H for i in set(inits) | {"antisymmetric"}}
    rows = []
    for k, init in enumerate(inits):
        for j, m in enumerate(widths):
            D, D_ae, r = trained_drift(X, y, m, draws=draws, t=t, init=init,
                                       seed=(seed, k, j), step=step)
            P, P0 = pred[init] / m, pred["antisymmetric"] / m
            row = dict(init=init, width=m, draws=int(draws))
            for name, drift, p in (("ae", D_ae, P), ("full", D, P), ("f0zero", D_ae, P0)):
                row[f"{name}_slope"], row[f"{name}_low"], row[f"{name}_high"] = \
                    _slope_interval(drift, p, level)
            row.update(pred_rms=float(np.sqrt(np.mean(P**2))),
                       drift_rms=float(np.sqrt(np.mean(D_ae.mean(0) ** 2))),
                       residual_rms=float(np.sqrt(np.mean(r**2))))
            rows.append(row)
    return rows


# ----------------------------------------------------------------------------- direct oracle
def _k4_slice(W, a2, X, xa, xb):
    """``Σ_r k4_r(xa, xb, x_i, x_j)`` over the neurons (no ``1/m²``), an ``(n, n)`` matrix."""
    S, Sa, Sb = X @ W.T, W @ xa, W @ xb  # (n, m), (m,), (m,)
    e, s = (S > 0).astype(float), np.maximum(S, 0)
    ea, eb, sa, sb = (Sa > 0), (Sb > 0), np.maximum(Sa, 0), np.maximum(Sb, 0)
    ga, gb, gab = X @ xa, X @ xb, xa @ xb
    # B_r(i) = 2 e_a e_b g_ab σ_i + e_a e_i σ_b g_ai + e_b e_i σ_a g_bi, then Σ_r B_r(i) σ_r(j)
    B = 2 * gab * (ea * eb) * s + e * (ea * sb) * ga[:, None] + e * (eb * sa) * gb[:, None]
    w = a2 * ea * eb
    geom = 2 * gab * (X @ X.T) + np.outer(ga, gb) + np.outer(gb, ga)
    return B @ s.T + ((e * w) @ e.T) * geom


def _direct_nth_oracle(X_train, y, X_test, *, width, t=np.inf, samples, seed=0):
    """The direct algorithm, for tests and the benchmark: ``O(b · n · (n³ + n² · samples))``.

    For every pair ``(a, b)`` it builds the ``n × n`` slice ``E K⁽⁴⁾(a, b, ·, ·)`` (same Monte
    Carlo neurons as :func:`nth_kernel`) and contracts it in the eigenbasis of ``H``: at
    ``t = ∞`` as ``αᵀ K⁽⁴⁾ α − yᵀ Q y``, ``Q = P[(Pᵀ K⁽⁴⁾ P Λ⁻¹)_ij / (λ_i + λ_j)]Pᵀ`` (spec §5);
    at finite ``t`` as ``Σ_ij (Pᵀ K⁽⁴⁾ P)_ij (U Uᵀ)_ij g_ij`` with ``g`` the plain formula of
    spec §5. Returns ``(K_train, K_test)`` like :func:`nth_kernel`.
    """
    X_train, X_test = _inputs(X_train, "X_train"), _inputs(X_test, "X_test")
    n, d = X_train.shape
    Y, t = _labels(y, n), _time(t)
    H, K_test = two_layer_ntk(X_train), two_layer_ntk(X_test, X_train)
    lam, P = np.linalg.eigh(H)
    U = P.T @ Y
    li, lj = lam[:, None], lam[None, :]
    if not math.isinf(t):
        tau = t / n
        g = (-np.expm1(-tau * li) / li - (-np.expm1(-tau * (li + lj))) / (li + lj)) / lj
    alpha = np.linalg.solve(H, Y)
    p = two_layer_init(seed, d, samples)
    W, a2 = p["W"], p["a"] ** 2
    scale = 1.0 / (samples * width)

    def corr(xa, xb):
        K4 = _k4_slice(W, a2, X_train, xa, xb) * scale
        M = P.T @ K4 @ P
        if math.isinf(t):
            Q = P @ ((M / lj) / (li + lj)) @ P.T
            return np.sum(alpha * (K4 @ alpha)) - np.sum(Y * (Q @ Y))
        return np.sum(M * (U @ U.T) * g)

    K_tr = H + np.array([[corr(xa, xb) for xb in X_train] for xa in X_train])
    K_te = K_test + np.array([[corr(xa, xb) for xb in X_train] for xa in X_test])
    return K_tr, K_te
