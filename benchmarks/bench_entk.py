"""Benchmark of the empirical NTK (``lantk.empirical.empirical_ntk``) on a 2-core CPU.

The setting of the elasticity chapter's paper profile: the width-256 one-hidden-layer ReLU
network ``archs.fc(1, 256)`` on 3,072-dimensional inputs (CIFAR-10 images when
``LANTK_DATA_DIR`` has them, else Gaussian inputs), a probe of 400 inputs, float64, in
chunks of 256 (as ``train.fit`` records it). Compared with the textbook computation that
differentiates the *batch* function (``jax.jacrev`` of ``apply_fn(params, X)``, whose N
backward passes each run over all N inputs) followed by the same contraction. Both are timed
after compilation; the kernels must agree to 1e-10 (relative).

Run: ``python benchmarks/bench_entk.py`` (``--n`` probe size, ``--width``).
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from lantk import archs, data, empirical


def probe_inputs(n, seed=0):
    if os.environ.get("LANTK_DATA_DIR"):
        try:
            task = data.multiclass_task("cifar10", n_train=n, n_test=10, seed=seed, flatten=True,
                                        standardize=True)
            return task.X_train, "CIFAR-10 images"
        except (ValueError, FileNotFoundError) as e:
            why = f"CIFAR-10 not usable: {e}"
    else:
        why = "LANTK_DATA_DIR not set"
    return np.random.default_rng(seed).standard_normal((n, 3072)), f"Gaussian inputs ({why})"


def batch_jacobian_ntk(apply_fn, params, x):
    """Reference: Jacobian of the batch function, then lantk's own contraction (so the two
    timings differ only in how the Jacobian is taken), mean over outputs."""
    jac = jax.tree_util.tree_leaves(
        jax.jacrev(lambda p: apply_fn(p, x).reshape(x.shape[0], -1))(params))
    k = empirical._contract(jac, jac)
    return jnp.trace(k, axis1=2, axis2=3) / k.shape[2]


def timed(fn, *args):
    jax.block_until_ready(fn(*args))   # compile
    t = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return np.asarray(out), time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=400, help="probe inputs (default 400)")
    ap.add_argument("--width", type=int, default=256, help="hidden width (default 256)")
    ap.add_argument("--batch-size", type=int, default=256, help="chunk size (default 256)")
    a = ap.parse_args(argv)

    x, what = probe_inputs(a.n)
    x = jnp.asarray(x, jnp.float64)
    init_fn, apply_fn, _ = archs.fc(1, a.width)
    _, params = init_fn(jax.random.PRNGKey(0), x.shape)
    params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, jnp.float64), params)
    n_params = sum(p.size for p in jax.tree_util.tree_leaves(params))
    print(f"{what}: {a.n} probes x {x.shape[1]} dims; fc(1, {a.width}), {n_params:,} parameters, "
          f"float64, chunks of {a.batch_size}")

    k, t_lantk = timed(lambda p, z: empirical.empirical_ntk(apply_fn, p, z,
                                                             batch_size=a.batch_size), params, x)
    ref, t_ref = timed(jax.jit(lambda p, z: batch_jacobian_ntk(apply_fn, p, z)), params, x)
    rel = float(np.abs(k - ref).max() / np.abs(ref).max())
    print(f"empirical_ntk (per-example Jacobians): {t_lantk:.1f} s")
    print(f"batch-function Jacobian reference:     {t_ref:.1f} s  ({t_ref / t_lantk:.1f}x slower)")
    print(f"max relative difference: {rel:.1e}")
    if not rel < 1e-10:
        raise SystemExit(f"kernels disagree: {rel:.1e}")


if __name__ == "__main__":
    main()
