"""Benchmark: the CNTK of ``paper_cnn(1)`` on CIFAR-shaped inputs (32x32x3), float32, CPU.

Measures, on the same machine and in one run:

* neural-tangents 0.6.5 (in the pinned side environment, see tests/oracle/venv.py) with
  ``nt.batch(jit(kernel_fn), batch_size=BATCH)`` on an N x N kernel (default 200 x 200, batch
  50), and lantk's ``kernel_fn`` on the same inputs, tiled the same way; reports entries per
  second for both and the ratio (warm: compilation excluded; the first, compiling, call is
  reported separately), and the largest difference between the two kernels;
* lantk alone on a LARGE x LARGE kernel with :func:`lantk.kernels.kernel_matrix` (default
  1,000 x 1,000, automatic tiles; ``--large 0`` skips it).

Usage::

    python benchmarks/bench_cntk.py [--n 200] [--batch 50] [--large 1000] [--skip-nt]
                                    [--json results.json]

Not a test: it takes a minute or two (neural-tangents' part dominates).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "oracle"))

import jax
import jax.numpy as jnp

import lantk
from lantk import archs

lantk.enable_x64()  # this script's own jnp code ran in x64 mode when `import lantk` switched it on


def cifar_like(n: int, seed: int) -> np.ndarray:
    """Random CIFAR-shaped inputs, standardised per channel as real CIFAR would be."""
    return np.random.default_rng(seed).standard_normal((n, 32, 32, 3)).astype(np.float32)


_JITTED = {}


def lantk_tiled(kernel_fn, x1, x2, batch: int, get: str = "ntk"):
    """The kernel in batch x batch tiles with one jitted kernel_fn (like nt.batch)."""
    key = (id(kernel_fn), get)
    if key not in _JITTED:
        _JITTED[key] = jax.jit(lambda a, b: kernel_fn(a, b, get))
    f = _JITTED[key]
    n1, n2 = len(x1), len(x2)
    out = np.empty((n1, n2), np.float32)
    for i in range(0, n1, batch):
        a = jnp.asarray(x1[i:i + batch])
        for j in range(0, n2, batch):
            out[i:i + batch, j:j + batch] = np.asarray(f(a, jnp.asarray(x2[j:j + batch])))
    return out


def _timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def time_lantk(kernel_fn, x1, x2, batch, repeats):
    t = time.perf_counter()
    k = lantk_tiled(kernel_fn, x1, x2, batch)
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        k = lantk_tiled(kernel_fn, x1, x2, batch)
        times.append(time.perf_counter() - t)
    return k, first, min(times)


def time_nt(spec, x1, x2, batch, repeats):
    import venv as oracle_venv

    py = oracle_venv.ensure()
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.npz", Path(tmp) / "out.json"
        np.savez(inp, spec=spec, x1=x1, x2=x2, batch=batch, get="ntk", repeats=repeats)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
        env["JAX_PLATFORMS"] = "cpu"
        r = subprocess.run([str(py), str(ROOT / "tests" / "oracle" / "nt_bench.py"), str(inp),
                            str(out)], capture_output=True, text=True, env=env, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"neural-tangents benchmark failed:\n{r.stderr[-4000:]}")
        res = json.loads(out.read_text())
        res["kernel"] = np.load(str(out) + ".kernel.npy")
    return res


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=200, help="N for the N x N comparison (200)")
    p.add_argument("--batch", type=int, default=50, help="tile / nt.batch size (50)")
    p.add_argument("--large", type=int, default=1000,
                   help="lantk-only LARGE x LARGE run (1000; 0 skips)")
    p.add_argument("--large-batch", type=int, default=0,
                   help="tile side for the large run (0: kernel_matrix chooses)")
    p.add_argument("--repeats", type=int, default=2, help="warm repetitions (best is kept)")
    p.add_argument("--skip-nt", action="store_true", help="do not run neural-tangents")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)

    _, _, kernel_fn = archs.paper_cnn(1)
    x = cifar_like(args.n, 0)
    entries = args.n * args.n
    res = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
           "jax": jax.__version__, "spec": kernel_fn.spec, "n": args.n, "batch": args.batch,
           "dtype": "float32"}
    print(f"paper_cnn(1) CNTK, {args.n}x{args.n} CIFAR-shaped float32 inputs, tiles of "
          f"{args.batch}, {os.cpu_count()} CPUs, jax {jax.__version__}")

    k_lantk, first, best = time_lantk(kernel_fn, x, x, args.batch, args.repeats)
    res["lantk"] = {"first_s": first, "best_s": best, "entries_per_s": entries / best}
    print(f"lantk:            {best:8.2f} s  {entries / best:10.0f} entries/s   "
          f"(first call incl. compile {first:.2f} s)")

    from lantk.kernels import kernel_matrix

    def km():
        return kernel_matrix(kernel_fn, x, dtype=np.float32, progress=False)

    t = time.perf_counter()
    km()
    km_first = time.perf_counter() - t
    km_best = min(_timed(km) for _ in range(args.repeats))
    res["lantk_kernel_matrix"] = {"first_s": km_first, "best_s": km_best,
                                  "entries_per_s": entries / km_best}
    print(f"lantk kernel_matrix (automatic tiles, triangle mirrored): {km_best:8.2f} s  "
          f"{entries / km_best:10.0f} entries/s   (first call incl. compile {km_first:.2f} s)")

    if not args.skip_nt:
        nt = time_nt(kernel_fn.spec, x, x, args.batch, args.repeats)
        k_nt = nt.pop("kernel")
        rel = float(np.max(np.abs(k_lantk - k_nt)) / np.max(np.abs(k_nt)))
        res["neural_tangents"] = nt
        res["ratio"] = res["lantk"]["entries_per_s"] / nt["entries_per_s"]
        res["max_rel_diff"] = rel
        print(f"neural-tangents:  {nt['best_s']:8.2f} s  {nt['entries_per_s']:10.0f} entries/s   "
              f"(first call incl. compile {nt['first_s']:.2f} s)")
        res["ratio_kernel_matrix"] = nt["best_s"] / km_best
        print(f"ratio lantk kernel_matrix / neural-tangents: {res['ratio_kernel_matrix']:.2f}x")
        print(f"ratio lantk / neural-tangents (same tiles): {res['ratio']:.2f}x   "
              f"max |difference| / max |K|: {rel:.1e}")

    if args.large:
        from lantk.kernels import kernel_matrix

        xl = cifar_like(args.large, 1)
        t = time.perf_counter()
        kernel_matrix(kernel_fn, xl, dtype=np.float32, progress=False,
                      tile=args.large_batch or None)
        dt = time.perf_counter() - t
        n2 = args.large * args.large
        res["lantk_large"] = {"n": args.large, "tile": args.large_batch or "auto", "seconds": dt,
                              "entries_per_s": n2 / dt}
        print(f"lantk.kernels.kernel_matrix {args.large}x{args.large} (tiles: "
              f"{args.large_batch or 'automatic'}, upper triangle computed and mirrored, incl. "
              f"compile): {dt:8.2f} s  {n2 / dt:10.0f} entries/s")

    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
