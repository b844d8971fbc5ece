"""Benchmark of LANTK-HR (``lantk.label_aware``, spec §4) on a 2-core CPU.

1. ``kr_estimate`` V1 and V2 with n = 10,000 training and b = 2,000 test points, given the
   kernel blocks (the two-layer ReLU NTK in closed form on 784-dimensional inputs: MNIST, even
   vs odd digits, when ``LANTK_DATA_DIR`` is set, else random inputs in [-1, 1]). Goal: both together under
   30 s. V1 is O(n² + b·n); V2 adds one Cholesky solve (O(n³/3)).
2. ``fjlt_estimate`` V2 with n = 2,000 training and b = 500 test points, with the exact
   solver (streamed normal equations) and with the FJLT sketch. Goal: under 60 s each. Also
   prints how closely the sketch agrees with the exact solution.

The kernel matrices are computed before the clock starts (they are inputs of the functions).

Run: ``python benchmarks/bench_hr.py`` (``--help`` for the sizes; ``--skip-kr`` /
``--skip-fjlt`` run one part only).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from lantk import data, label_aware
from lantk.nth import two_layer_ntk


def inputs(n, b, seed=0):
    """MNIST (even vs odd digits, balanced over the ten digits) when ``LANTK_DATA_DIR`` has it,
    else random inputs in [-1, 1] with a linear labelling."""
    if os.environ.get("LANTK_DATA_DIR"):
        try:
            task = data.multiclass_task("mnist", n_train=n, n_test=b, seed=seed, flatten=True)
            y = np.where(task.y_train % 2 == 0, 1.0, -1.0)
            return task.X_train, y, task.X_test, "MNIST even vs odd digits"
        except (ValueError, FileNotFoundError) as e:  # e.g. too few images for the sizes
            why = f"MNIST not usable: {e}"
    else:
        why = "LANTK_DATA_DIR unset"
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n + b, 784))
    y = np.where(X[:n, :392].sum(1) > X[:n, 392:].sum(1), 1.0, -1.0)
    return X[:n], y, X[n:], f"random inputs in [-1, 1] ({why})"


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def bench_kr(n, b, goal):
    X, y, Xt, what = inputs(n, b)
    print(f"== kr_estimate: n = {n:,} train, b = {b:,} test, {what}")
    (H, t_h) = timed(two_layer_ntk, X)
    Ht = two_layer_ntk(Xt, X)
    print(f"   (kernel blocks, not timed: {t_h:.1f} s for H)")
    total = 0.0
    for v in ("v1", "v2"):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            (Z, Zt), t = timed(label_aware.kr_estimate, H, Ht, y, variant=v)
        total += t
        note = f"  [{len(w)} warning(s): {str(w[0].message)[:80]}...]" if w else ""
        print(f"   KR-{v.upper()}: {t:6.2f} s   mean|Z_train| = {np.abs(Z).mean():.3g}{note}")
        del Z, Zt
    print(f"   together: {total:.2f} s (goal < {goal:.0f} s: {'met' if total < goal else 'MISSED'})")


def bench_fjlt(n, b, eps, goal):
    X, y, Xt, what = inputs(n, b, seed=1)
    print(f"== fjlt_estimate V2: n = {n:,} train ({n * n:,} pairs), b = {b:,} test, {what}")
    H, Ht = two_layer_ntk(X), two_layer_ntk(Xt, X)
    res = {}
    for solver in ("exact", "fjlt"):
        (Z, Zt, fit), t = timed(label_aware.fjlt_estimate, X, y, Xt, H, Ht, variant="v2",
                                solver=solver, eps=eps, return_fit=True)
        res[solver] = (Z, Zt, fit)
        extra = f", k = {fit.k:,} sketch rows (eps = {eps})" if fit.k else ""
        print(f"   {solver:5s}: {t:6.2f} s   R² = {1 - fit.rss / fit.tss:.4f}{extra} "
              f"(goal < {goal:.0f} s: {'met' if t < goal else 'MISSED'})")
    (Ze, Zte, fe), (Zs, Zts, fs) = res["exact"], res["fjlt"]
    resid = np.sqrt(fe.rss)
    print(f"   sketch vs exact: ‖ΔZ_train‖ / ‖T − Z_exact‖ = {np.linalg.norm(Zs - Ze) / resid:.4f} "
          f"(bound ≈ eps = {eps}); RSS ratio = {fs.rss / fe.rss:.5f} (≤ 1 + eps² = {1 + eps**2:.4f})"
          f"; rel. ‖Δcoef‖ = {np.linalg.norm(fs.coef - fe.coef) / np.linalg.norm(fe.coef):.3f}"
          f"; rel. ‖ΔZ_test‖ = {np.linalg.norm(Zts - Zte) / np.linalg.norm(Zte):.3f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kr-n", type=int, default=10_000, help="KR training points (10,000)")
    p.add_argument("--kr-b", type=int, default=2_000, help="KR test points (2,000)")
    p.add_argument("--fjlt-n", type=int, default=2_000, help="FJLT training points (2,000)")
    p.add_argument("--fjlt-b", type=int, default=500, help="FJLT test points (500)")
    p.add_argument("--eps", type=float, default=0.1, help="FJLT sketch accuracy (0.1)")
    p.add_argument("--skip-kr", action="store_true")
    p.add_argument("--skip-fjlt", action="store_true")
    a = p.parse_args(argv)
    print(f"cores: {os.cpu_count()}")
    if not a.skip_kr:
        bench_kr(a.kr_n, a.kr_b, goal=30.0)
    if not a.skip_fjlt:
        bench_fjlt(a.fjlt_n, a.fjlt_b, a.eps, goal=60.0)


if __name__ == "__main__":
    main()
