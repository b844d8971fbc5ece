"""``import lantk`` leaves JAX's configuration alone, and lantk still computes in float64.

lantk's JAX entry points switch 64-bit mode on for the calling thread while they run
(lantk/_x64.py); these tests run with x64 *off* globally (nothing in the test session turns it
on) and check that the results are float64 and identical to those computed with x64 on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lantk
from lantk import archs, elasticity, experiments, kernels, label_aware, nth, regression
from lantk._x64 import local_x64, x64, x64_enabled
from lantk.empirical import empirical_ntk

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def x64_off_globally():
    """Every test here starts and ends with JAX's 64-bit mode off."""
    if jax.config.jax_enable_x64:
        pytest.fail("JAX's 64-bit mode is on globally in this test session (JAX_ENABLE_X64, or "
                    "some test or import switched it on): lantk must not need it")
    yield
    assert not jax.config.jax_enable_x64, "a lantk call left JAX's 64-bit mode on"


def _user_rbf(x1, x2=None, get="ntk"):
    """A kernel as a user writes it: plain jnp, no dtype of its own."""
    x2 = x1 if x2 is None else x2
    return jnp.exp(-0.5 * ((x1[:, None] - x2[None]) ** 2).sum(-1))


def _numpy_rbf(x1, x2):
    return np.exp(-0.5 * ((x1[:, None] - x2[None]) ** 2).sum(-1))


FRESH = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    assert jnp.ones(3).dtype == jnp.float32
    import lantk
    from lantk import (archs, classifier, claims, data, elasticity, empirical, experiments,
                       kernels, label_aware, nth, regression, results, runner, stax, train)
    assert jnp.ones(3).dtype == jnp.float32, jnp.ones(3).dtype
    assert not jax.config.jax_enable_x64
    _, _, kernel_fn = archs.fc(1)
    k = kernel_fn(np.eye(3), None, "ntk")
    assert k.dtype == jnp.float64, k.dtype
    assert jnp.ones(3).dtype == jnp.float32            # still off after a lantk call
    lantk.enable_x64()
    assert jax.config.jax_enable_x64 and jnp.ones(3).dtype == jnp.float64
    lantk.enable_x64(False)
    assert jnp.ones(3).dtype == jnp.float32
    print("OK")
    """
)


def test_import_lantk_leaves_jax_in_32_bit_mode():
    """In a fresh interpreter: importing lantk and every module of it keeps ``jnp.ones(3)``
    float32; ``lantk.enable_x64()`` is the explicit, global opt-in."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-c", FRESH], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("OK")


def test_local_context_and_decorator_restore_the_setting():
    assert not x64_enabled()
    with local_x64():
        assert x64_enabled() and jnp.ones(2).dtype == jnp.float64
    assert not x64_enabled() and jnp.ones(2).dtype == jnp.float32

    @x64
    def boom():
        assert x64_enabled()
        raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        boom()
    assert not x64_enabled()
    assert boom.__name__ == "boom"


def test_regression_path_is_float64():
    X = RNG.standard_normal((12, 3))
    y = np.where(X[:, 0] > 0, 1.0, -1.0)
    H = _numpy_rbf(X, X) + 1e-3 * np.eye(12)
    Ht = _numpy_rbf(X[:4] + 0.1, X)
    H32, Ht32 = jnp.asarray(H, jnp.float32), jnp.asarray(Ht, jnp.float32)  # JAX float32 inputs
    f = regression.kernel_regression(H32, Ht32, y)
    assert isinstance(f, np.ndarray) and f.dtype == np.float64
    np.testing.assert_allclose(
        f, Ht.astype(np.float32).astype(np.float64)
        @ np.linalg.solve(H.astype(np.float32).astype(np.float64), y), rtol=1e-9)
    Z_tr, Z_te = label_aware.kr_estimate(H, Ht, y)
    assert Z_tr.dtype == Z_te.dtype == np.float64
    K_tr, K_te = label_aware.lantk_kernel(H, Z_tr, 0.1, H_test_train=Ht, Z_test=Z_te)
    assert K_tr.dtype == K_te.dtype == np.float64


def test_kernel_matrix_runs_a_users_jnp_kernel_in_float64():
    x1, x2 = RNG.standard_normal((11, 4)), RNG.standard_normal((7, 4))
    k = kernels.kernel_matrix(_user_rbf, x1, x2, tile=4, dtype=np.float64, progress=False)
    assert k.dtype == np.float64
    np.testing.assert_allclose(k, _numpy_rbf(x1, x2), rtol=1e-13, atol=1e-15)
    k_sym = kernels.kernel_matrix(_user_rbf, x1, progress=False)   # float64 is the default
    assert k_sym.dtype == np.float64
    np.testing.assert_allclose(k_sym, _numpy_rbf(x1, x1), rtol=1e-13, atol=1e-15)
    k32 = kernels.kernel_matrix(_user_rbf, x1, x2, tile=4, dtype=np.float32, progress=False)
    assert k32.dtype == np.float32
    np.testing.assert_allclose(k32, k, rtol=1e-5)


def test_stax_kernels_init_and_apply_keep_float64():
    x = RNG.standard_normal((4, 6, 6, 2))
    init_fn, apply_fn, kernel_fn = archs.cnn(1, width=8)
    k = kernel_fn(x, None, ("nngp", "ntk"))
    assert k.ntk.dtype == k.nngp.dtype == jnp.float64
    assert kernel_fn(x.astype(np.float32), None, "ntk").dtype == jnp.float32
    assert kernel_fn(np.ones((2, 6, 6, 2), np.int32), None, "ntk").dtype == jnp.float64
    _, params = init_fn(jax.random.PRNGKey(0), x.shape)
    assert all(p.dtype == jnp.float64 for p in jax.tree_util.tree_leaves(params))
    out = apply_fn(params, x)
    assert out.dtype == jnp.float64
    K_m = empirical_ntk(apply_fn, params, x)
    assert K_m.dtype == jnp.float64
    with local_x64():  # the same computations with x64 on, as `import lantk` used to set it
        k_on = kernel_fn(x, None, ("nngp", "ntk"))
        _, params_on = init_fn(jax.random.PRNGKey(0), x.shape)
        out_on = apply_fn(params_on, x)
        K_m_on = empirical_ntk(apply_fn, params_on, x)
    np.testing.assert_array_equal(np.asarray(k.ntk), np.asarray(k_on.ntk))
    np.testing.assert_array_equal(np.asarray(k.nngp), np.asarray(k_on.nngp))
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(params_on)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(out), np.asarray(out_on))
    np.testing.assert_array_equal(np.asarray(K_m), np.asarray(K_m_on))


def test_stax_kernel_under_a_users_float32_jit():
    """A user's own ``jax.jit`` (x64 off) around a lantk kernel: float32, as JAX gives it."""
    x = RNG.standard_normal((3, 5)).astype(np.float32)
    _, _, kernel_fn = archs.fc(2)
    jitted = jax.jit(lambda a: kernel_fn(a, None, "ntk"))
    k32 = jitted(x)
    assert k32.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(k32), np.asarray(kernel_fn(x.astype(np.float64), None, "ntk")),
                               rtol=1e-5)


def test_nth_kernels_are_float64_and_unchanged():
    X, X_te = RNG.standard_normal((10, 4)), RNG.standard_normal((3, 4))
    y = np.where(X[:, 0] > 0, 1.0, -1.0)
    K_tr, K_te = nth.nth_kernel(X, y, X_te, width=50, samples=64, seed=1)
    assert K_tr.dtype == K_te.dtype == np.float64
    with local_x64():
        on_tr, on_te = nth.nth_kernel(X, y, X_te, width=50, samples=64, seed=1)
    np.testing.assert_array_equal(K_tr, on_tr)
    np.testing.assert_array_equal(K_te, on_te)
    p = nth.two_layer_init(0, d=4, width=3)
    K3, K4 = nth.higher_order_kernels(nth.two_layer_apply, p, X[:3])
    assert K3.dtype == K4.dtype == np.float64
    assert nth.two_layer_apply(p, X).dtype == jnp.float64


def test_entry_points_that_call_user_jax_code():
    """Functions that take a user's kernel run it with x64 on, as `import lantk` did."""
    X = RNG.standard_normal((8, 3))
    fine = np.repeat([0, 1, 2, 3], 2)
    system = {0: 1, 1: 1, 2: -1, 3: -1}
    seen = []

    def factory(X, y):
        K = _user_rbf(jnp.asarray(X))
        seen.append(K.dtype)
        return K

    elasticity.compare_label_systems(factory, X, fine, system, {0: 1, 2: 1, 1: -1, 3: -1})
    assert seen == [jnp.float64, jnp.float64]

    class Task:
        X_train, X_val, X_test = X, X[:0], X[:3]

    blocks = experiments.closed_form_blocks(lambda a, b: _user_rbf(jnp.asarray(a), b), Task)
    assert blocks.H.dtype == np.float64
    np.testing.assert_allclose(blocks.H, _numpy_rbf(X, X), rtol=1e-13)

    clf = lantk.LANTKClassifier(variant="ntk", arch=lambda a, b: _user_rbf(jnp.asarray(a), b),
                                rho=1e-6)
    y = np.where(X[:, 0] > 0, 1, 0)
    f = clf.fit(X, y).decision_function(X[:3])
    with local_x64():
        f_on = clf.fit(X, y).decision_function(X[:3])
    np.testing.assert_array_equal(f, f_on)


def test_other_threads_get_float64_too():
    """JAX's x64 context is per thread: a lantk call in a worker thread switches it on there."""
    x = RNG.standard_normal((3, 4))
    _, _, kernel_fn = archs.fc(1)
    with ThreadPoolExecutor(1) as ex:
        k = ex.submit(lambda: kernel_fn(x, None, "ntk")).result()
        m = ex.submit(lambda: kernels.kernel_matrix(_user_rbf, x, progress=False)).result()
    assert k.dtype == jnp.float64 and m.dtype == np.float64
    np.testing.assert_allclose(m, _numpy_rbf(x, x), rtol=1e-13)
