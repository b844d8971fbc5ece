"""regression.solve's iterative path: Jacobi-preconditioned CG and MINRES, on arrays and on
memory-mapped matrices (a tile store's), the "auto" rule, and its errors."""

import numpy as np
import pytest

from lantk import regression
from lantk.regression import ConvergenceError, solve


def _kernel(n=300, d=10, seed=0):
    """An RBF + linear kernel on random inputs (positive semi-definite, condition number
    large without a ridge)."""
    X = np.random.default_rng(seed).normal(size=(n, d))
    sq = (X**2).sum(1)
    return np.exp(-0.5 * (sq[:, None] + sq[None] - 2 * X @ X.T) / d) + X @ X.T / d


def _dense(H, B, rho):
    return np.linalg.solve(H + rho * np.eye(len(H)), B)


@pytest.mark.parametrize("k", [None, 3])
def test_cg_agrees_with_cholesky_on_a_well_conditioned_kernel(k):
    H = _kernel()
    rho = 1e-2 * float(np.mean(np.diag(H)))
    rng = np.random.default_rng(1)
    B = rng.normal(size=(300,) if k is None else (300, k))
    want, dense_info = solve(H, B, rho, method="cholesky", return_info=True)
    got, info = solve(H, B, rho, method="cg", tol=1e-12, return_info=True)
    assert dense_info.method == "cholesky" and info.method == "cg"
    assert got.shape == B.shape and got.dtype == np.float64
    # cond(H + rho I) is ~1e4 here: a 1e-12 residual bounds the error by ~1e-8
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)
    assert 1 < info.iterations < 300 and info.residual <= 1e-11
    assert np.isnan(info.rcond) and info.jitter == 0.0


def test_cg_on_a_memmap_streams_row_blocks(tmp_path, monkeypatch):
    H = _kernel(200)
    np.save(tmp_path / "H.npy", H)
    Hm = np.load(tmp_path / "H.npy", mmap_mode="r")
    y = np.sign(np.random.default_rng(2).normal(size=200))
    seen = []
    real = np.asarray

    def spy(a, *args, **kw):  # record the row blocks the products read from the memmap
        if isinstance(a, np.memmap) and a.ndim == 2 and a.shape[1] == 200:
            seen.append(a.shape[0])
        return real(a, *args, **kw)

    monkeypatch.setattr(regression, "_STREAM_ELEMENTS", 200 * 7)  # rows of 7
    monkeypatch.setattr(regression, "_SQUARE", 50)  # the symmetry check's 50x50 blocks
    monkeypatch.setattr(regression.np, "asarray", spy)
    got = solve(Hm, y, 0.1, method="cg", tol=1e-12)
    monkeypatch.undo()
    assert seen and max(seen) == 7  # never more than one block of rows at a time
    np.testing.assert_allclose(got, _dense(H, y, 0.1), rtol=1e-8, atol=1e-10)


def test_solve_a_kernel_from_the_tile_store(tmp_path):
    import jax.numpy as jnp

    from lantk.kernels import kernel_matrix

    def rbf(x1, x2=None, get="ntk"):
        x2 = x1 if x2 is None else x2
        return jnp.exp(-0.5 * ((x1[:, None] - x2[None]) ** 2).sum(-1))

    x = np.random.default_rng(0).normal(size=(60, 4))
    H = kernel_matrix(rbf, x, tile=16, store=tmp_path / "k", key="rbf", progress=False)
    assert isinstance(H, np.memmap)
    y = np.where(x[:, 0] > 0, 1.0, -1.0)
    np.testing.assert_allclose(solve(H, y, 0.05, method="cg", tol=1e-12),
                               solve(np.array(H), y, 0.05, method="cholesky"),
                               rtol=1e-8, atol=1e-10)


def test_minres_solves_an_indefinite_matrix_and_cg_refuses_it():
    rng = np.random.default_rng(3)
    Q, _ = np.linalg.qr(rng.normal(size=(80, 80)))
    eig = np.concatenate([np.linspace(1, 3, 60), -np.linspace(1, 2, 20)])
    A = (Q * eig) @ Q.T
    A = 0.5 * (A + A.T)
    A[0, 0] = -abs(A[0, 0]) - 1  # a negative diagonal entry proves it indefinite
    b = rng.normal(size=80)
    with pytest.raises(ValueError, match="non-positive diagonal entry .* use method='minres'"):
        solve(A, b, method="cg")
    x, info = solve(A, b, method="minres", tol=1e-12, return_info=True)
    assert info.method == "minres"
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-8, atol=1e-9)


def test_auto_chooses_by_memory(monkeypatch):
    H, b = _kernel(100), np.ones(100)
    rho = 0.05
    monkeypatch.setattr(regression, "host_available_bytes", lambda: 10**12)
    assert solve(H, b, rho, return_info=True)[1].method == "cholesky"
    monkeypatch.setattr(regression, "host_available_bytes", lambda: None)  # unknown: dense
    assert solve(H, b, rho, return_info=True)[1].method == "cholesky"
    # two float64 copies of 100x100 are 160 kB: less than that available -> iterative
    monkeypatch.setattr(regression, "host_available_bytes", lambda: 150_000)
    x, info = solve(H, b, rho, return_info=True)
    assert info.method == "cg"
    np.testing.assert_allclose(x, _dense(H, b, rho), rtol=1e-7, atol=1e-9)
    Hneg = H.copy()
    Hneg[5, 5] = -1.0  # indefinite: auto takes MINRES
    Hneg_x, info = solve(Hneg, b, rho, return_info=True)
    assert info.method == "minres"
    np.testing.assert_allclose(Hneg_x, _dense(Hneg, b, rho), rtol=1e-6, atol=1e-8)


def test_non_convergence_names_the_residual():
    H = _kernel(300)
    with pytest.raises(ConvergenceError, match=r"after 3 iterations the relative residual is "
                                               r"[0-9.e-]+, above tol=1e-10"):
        solve(H, np.ones(300), 0.0, method="cg", maxiter=3)


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "lu"}, "method must be one of 'auto', 'cholesky', 'cg', 'minres', got 'lu'"),
    ({"method": "CG"}, "method must be one of"),
    ({"method": None}, "method must be one of"),
    ({"method": "cg", "tol": 0}, "tol must be positive"),
    ({"method": "cg", "tol": -1e-3}, "tol must be positive"),
    ({"method": "cg", "tol": 1.0}, "tol must be below 1"),
    ({"method": "cg", "tol": float("nan")}, "tol must be a finite number"),
    ({"method": "cg", "tol": "1e-8"}, "tol must be a real number"),
    ({"method": "cg", "maxiter": 0}, "maxiter must be a positive integer"),
    ({"method": "cg", "maxiter": 2.5}, "maxiter must be"),
    ({"method": "cg", "maxiter": True}, "maxiter must be"),
])
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        solve(np.eye(3), np.ones(3), **kwargs)


def test_iterative_input_checks():
    H = _kernel(50)
    bad = H.copy()
    bad[3, 7] += 1e-3
    with pytest.raises(ValueError, match="H must be symmetric"):
        solve(bad, np.ones(50), method="cg")
    bad = H.copy()
    bad[10, 10] = np.nan
    with pytest.raises(ValueError, match="H contains NaN"):
        solve(bad, np.ones(50), method="minres")
    with pytest.raises(ValueError, match="H must be a square matrix"):
        solve(H[:, :10], np.ones(50), method="cg")
    with pytest.raises(ValueError, match="H has 50 rows but B has 4"):
        solve(H, np.ones(4), method="cg")
