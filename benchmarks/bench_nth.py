"""Benchmark of LANTK-NTH (``lantk.nth.nth_kernel``, spec §5) on the two-layer ReLU network.

1. The full-size run: 784-dimensional inputs (MNIST 0 vs 1 when ``LANTK_DATA_DIR`` is set,
   else random inputs in [-1, 1]), n = 1,000 training and b = 200 test points, 2,000 Monte
   Carlo neurons, at t = ∞ and at a finite t, for the f_0 = 0 formula (``init="antisymmetric"``).
   Goal: under 10 minutes on a 2-core CPU. Then the standard initialisation (``init="standard"``,
   the default: its symmetric part has rank up to n + 1 instead of 1, so the costliest term is
   about n times dearer) at ``--standard-n`` training points, its contraction in float64 and
   in float32 (``dtype``, what the chapters use), with the difference between the two.
2. The speed-up over the direct algorithm (``lantk.nth._direct_nth_oracle``: an n×n slice of
   ``E K⁽⁴⁾`` per pair, contracted in the eigenbasis of H) at n = b = 40, 400 neurons, with the
   largest difference between the two.

Run: ``python benchmarks/bench_nth.py`` (``--help`` for the sizes; ``--skip-direct`` drops 2).
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np

from lantk import data, nth


def inputs(n, b, seed=0):
    if os.environ.get("LANTK_DATA_DIR"):
        task = data.binary_task("mnist", (0, 1), n, b, seed=seed, flatten=True)
        return task.X_train, task.y_train, task.X_test, "MNIST 0 vs 1"
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n + b, 784))
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    return X[:n], y, X[n:], "random inputs in [-1, 1] (LANTK_DATA_DIR unset)"


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--b", type=int, default=200)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--width", type=float, default=1000.0)
    ap.add_argument("--direct-n", type=int, default=40)
    ap.add_argument("--direct-b", type=int, default=40)
    ap.add_argument("--direct-samples", type=int, default=400)
    ap.add_argument("--standard-n", type=int, default=200)
    ap.add_argument("--dtype-samples", type=int, default=300)
    ap.add_argument("--skip-direct", action="store_true")
    args = ap.parse_args()
    print(f"devices: {jax.devices()}, CPU cores: {os.cpu_count()}")

    X, y, X_te, what = inputs(args.n, args.b)
    print(f"\n== nth_kernel: {what}, n={len(X)}, b={len(X_te)}, d={X.shape[1]}, "
          f"samples={args.samples}, width={args.width:g}")
    H = nth.two_layer_ntk(X)
    lam_max = np.linalg.eigvalsh(H)[-1]
    for label, t in (("t = inf", np.inf), ("t = 10 n/lambda_max", 10 * len(X) / lam_max)):
        (K_tr, _), sec = timed(nth.nth_kernel, X, y, X_te, width=args.width, t=t,
                                  samples=args.samples, seed=0, progress=True,
                                  init="antisymmetric")
        rel = np.abs(K_tr - H).max() / np.abs(H).max()
        print(f"{label}: {sec:.1f} s (goal < 600 s); max |K_train - H| / max |H| = {rel:.2e}")

    ns = args.standard_n
    Xs, ys = X[:ns], y[:ns]
    for init in ("antisymmetric", "standard"):
        _, sec = timed(nth.nth_kernel, Xs, ys, X_te, width=args.width, t=np.inf,
                       samples=args.samples, seed=0, init=init)
        print(f"n={ns}, b={len(X_te)}, t = inf, init={init!r}: {sec:.1f} s")

    # the chapters' setting: the standard initialisation with the contraction in float32
    Hs = nth.two_layer_ntk(Xs)
    got = {}
    for dtype in ("float64", "float32"):
        (K_tr, _), sec = timed(nth.nth_kernel, Xs, ys, X_te, width=1.0, t=np.inf,
                               samples=args.dtype_samples, seed=0, dtype=dtype)
        got[dtype] = K_tr - Hs
        print(f"n={ns}, b={len(X_te)}, init='standard', {args.dtype_samples} neurons, "
              f"dtype={dtype}: {sec:.1f} s")
    rounding = np.abs(got["float32"] - got["float64"]).max() / np.abs(got["float64"]).max()
    print(f"float32 against float64, same neurons: max difference {rounding:.1e} of the "
          f"largest correction entry")

    if args.skip_direct:
        return
    n, b, s = args.direct_n, args.direct_b, args.direct_samples
    X, y, X_te, what = inputs(n, b)
    print(f"\n== direct algorithm vs nth_kernel: {what}, n={n}, b={b}, samples={s}, t = inf")
    # width only scales the correction; width = 1 makes it largest next to H, so that the
    # comparison below resolves differences in the correction itself
    kw = {"width": 1.0, "t": np.inf, "samples": s, "seed": 0}
    fast, cold = timed(nth.nth_kernel, X, y, X_te, init="antisymmetric", **kw)  # with JIT
    fast, warm = timed(nth.nth_kernel, X, y, X_te, init="antisymmetric", **kw)
    direct, sec_direct = timed(nth._direct_nth_oracle, X, y, X_te, **kw)
    base = (nth.two_layer_ntk(X), nth.two_layer_ntk(X_te, X))
    diff = max(np.abs(f - d).max() / np.abs(d - k).max() for f, d, k in zip(fast, direct, base))
    print(f"direct: {sec_direct:.1f} s; nth_kernel: {cold:.2f} s first call (with JIT "
          f"compilation), {warm:.3f} s after")
    print(f"speed-up: {sec_direct / cold:.0f}x (first call), {sec_direct / warm:.0f}x (after); "
          f"largest difference / largest correction: {diff:.1e}")
    N, B, S = args.n, args.b, args.samples
    scale = ((N + B) * N * (N**3 + N**2 * S)) / ((n + b) * n * (n**3 + n**2 * s))
    print(f"direct algorithm at the full size (n={N}, b={B}, samples={S}), extrapolated by its "
          f"O((n + b) n (n^3 + n^2 samples)) cost: ~{sec_direct * scale / 86400:.0f} days")


if __name__ == "__main__":
    main()
