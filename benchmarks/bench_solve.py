"""Dense Cholesky against Jacobi-preconditioned CG for ``(H + ρI)⁻¹ y`` as ``n`` grows.

For each ``n`` the script builds the two-layer ReLU NTK (closed form) of ``n`` random
unit-norm inputs in 20 dimensions and solves ``(H + ρI) α = y`` for a ±1 ``y`` with
``regression.solve(..., method="cholesky")`` and ``method="cg"`` (``tol=1e-10``), for two
ridges: ``ρ = 1e-2 · mean diag`` (well conditioned) and ``ρ = 1e-4 · mean diag``. It prints
the seconds of each, CG's iterations, the relative difference of the two solutions, and for
each ρ the smallest ``n`` at which CG was faster (the crossover). CG also solves from a
memory map (the tile store's ``.npy``) at the largest ``n``, read from the page cache.

Run: ``python benchmarks/bench_solve.py [--n 2000 4000 8000]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from lantk.regression import solve


def relu_ntk(X: np.ndarray) -> np.ndarray:
    """NTK of a two-layer ReLU network on the rows of ``X`` (Cho & Saul; Jacot et al.)."""
    dot = X @ X.T
    norms = np.sqrt(np.diag(dot))
    cos = np.clip(dot / np.outer(norms, norms), -1.0, 1.0)
    theta = np.arccos(cos)
    nngp = np.outer(norms, norms) * (np.sin(theta) + (np.pi - theta) * cos) / (2 * np.pi)
    return dot * (np.pi - theta) / (2 * np.pi) + nngp


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[2000, 4000, 8000])
    ap.add_argument("--tol", type=float, default=1e-10)
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPU(s); tol={args.tol:g}")
    print(f"{'n':>6} {'rho/mean diag':>13} {'cholesky s':>10} {'cg s':>8} {'cg iters':>8} "
          f"{'rel diff':>9}")
    faster: dict[float, list[int]] = {}
    for n in args.n:
        rng = np.random.default_rng(0)
        X = rng.normal(size=(n, 20))
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        H = relu_ntk(X)
        y = np.where(X[:, 0] > 0, 1.0, -1.0)
        scale = float(np.mean(np.diag(H)))
        for ratio in (1e-2, 1e-4):
            rho = ratio * scale
            dense, t_dense = timed(lambda: solve(H, y, rho, method="cholesky"))
            (cg, info), t_cg = timed(lambda: solve(H, y, rho, method="cg", tol=args.tol,
                                                    maxiter=20 * n, return_info=True))
            diff = float(np.linalg.norm(cg - dense) / np.linalg.norm(dense))
            print(f"{n:>6} {ratio:>13g} {t_dense:>10.2f} {t_cg:>8.2f} {info.iterations:>8} "
                  f"{diff:>9.1e}", flush=True)
            if t_cg < t_dense:
                faster.setdefault(ratio, []).append(n)
        if n == max(args.n):
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "H.npy")
                np.save(path, H)
                Hm = np.load(path, mmap_mode="r")
                _, t_mm = timed(lambda: solve(Hm, y, 1e-2 * scale, method="cg", tol=args.tol))
                print(f"{n:>6} {1e-2:>13g} {'':>10} {t_mm:>8.2f}  (CG on a memmap)")
                del Hm
    for ratio in (1e-2, 1e-4):
        ns = faster.get(ratio)
        print(f"crossover at rho = {ratio:g} mean diag: "
              + (f"CG faster from n = {min(ns)}" if ns else
                 f"Cholesky faster at every n up to {max(args.n)}"))


if __name__ == "__main__":
    main()
