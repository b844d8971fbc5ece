"""Benchmark: the CNTK-GAP (``archs.cnn(depth, "gap")``: ``[Conv(3x3, SAME), Relu] * depth``,
``GlobalAvgPool``, ``Dense``) on CIFAR-shaped inputs (32x32x3), float32, CPU, against
neural-tangents 0.6.5 and against the machine's own limits.

Its kernel needs every pixel-pair covariance: ``P^2 = 1,048,576`` pairs per kernel entry on
32x32 images, so it costs about a million times a fully connected kernel. Measured in one run:

* lantk's ``kernel_fn`` (jitted) on ``N x N`` entries (default 8 x 8: x1 and x2 two different
  sets of N images): entries per second (warm; the first, compiling, call is reported
  separately);
* neural-tangents 0.6.5 (in the pinned side environment, ``nt.batch(jit(kernel_fn))``, through
  ``bench_cntk.time_nt``) on the first ``NT_N x NT_N`` of those entries (default 4 x 4: it
  runs at about 1-2 entries per second), lantk on the same inputs, the ratio, and the largest
  difference between the two kernels;
* :func:`lantk.kernels.kernel_matrix` on the ``2N x 2N`` symmetric matrix of all ``2N`` images
  (tiles of ``N``, the upper triangle of tiles computed and mirrored);
* the float32 kernel against the float64 one (the accuracy of float32);
* the work per entry, counted analytically (:func:`work_per_entry`), and the rates it implies,
  against the machine's measured float32 matrix-multiply rate (``bench_train.matmul_rate``)
  and memory-copy bandwidth (:func:`copy_bandwidth`).

Usage::

    python benchmarks/bench_gap.py [--n 8] [--nt-n 4] [--depth 3] [--repeats 3] [--skip-nt]
                                   [--skip-km] [--json F]

About 1-2 minutes by default (neural-tangents' part is about half of it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from bench_cntk import cifar_like, time_nt  # noqa: E402  (also puts tests/oracle on the path)
from bench_train import matmul_rate  # noqa: E402

from lantk import archs  # noqa: E402
from lantk.kernels import kernel_matrix  # noqa: E402


def work_per_entry(hw: int = 32, channels: int = 3, depth: int = 3, f: int = 3) -> dict:
    """Floating-point work and memory traffic of one CNTK-GAP kernel entry (NTK and NNGP),
    counted from the algorithm, per pixel pair (``P^2 = hw^4`` pairs):

    * input covariance ``x1[p] . x2[q] / C``: ``2 C`` flops;
    * each ``f x f`` SAME convolution, as two separable ``f``-tap passes (the pixel offset
      ``q - p`` is preserved, so both pixel indices shift together): ``2 (f - 1)`` adds, a
      division by ``f^2`` and the ``W_std^2`` scaling per array; the NNGP, and from the second
      layer on also the NTK (``Θ' = w2 box(Θ) + K'``: one more multiply-add);
    * each ReLU (arc-cosine map): ``q1 q2``, ``c^2``, their difference and a square root,
      the angle ``arctan2(sqrt(q1 q2 - c^2), c)`` (range reduction, one division, a degree-9
      odd polynomial: 17 flops), ``dot_sigma = 1/2 - theta / (2 pi)`` (2),
      ``K' = root / (2 pi) + dot_sigma c`` (3) and ``Θ dot_sigma`` (1): 27 flops, of which 2 are
      a square root and a division;
    * the global average pool: one add per array.

    Comparisons, selects, min/max and the masks of the padded taps are not counted (they
    are about 20 more vector operations per pair and ReLU). Bytes: what a layer-by-layer
    evaluation must move through memory, float32: each layer reads and writes the NNGP and
    NTK arrays once (16 bytes per pair per layer, NNGP only for the first layer's NTK-free
    input: 8), the minimum for an implementation that stores each layer's pixel-pair state
    (lantk's fast path keeps it in cache instead; see the README).
    """
    pairs = float(hw) ** 4
    conv_nngp = 2 * (f - 1) + 2
    conv_ntk = 2 * (f - 1) + 1 + 2
    relu = 27
    flops = 2 * channels + conv_nngp + relu  # first layer: no NTK to convolve yet
    flops += (depth - 1) * (conv_nngp + conv_ntk + relu) + 2
    bytes_ = 8 + 16 * depth
    return {"pairs": pairs, "flops_per_pair": flops, "flops": flops * pairs,
            "sqrt_div_per_pair": 2 * depth, "bytes_per_pair": bytes_, "bytes": bytes_ * pairs}


def copy_bandwidth(mib: int = 256, repeats: int = 5) -> float:
    """Measured memory bandwidth (bytes/s): ``np.copyto`` between two preallocated ``mib`` MiB
    float32 arrays (one read and one write per element), best of ``repeats``. (A jitted
    ``x + 1`` reads as ~10x less here: each call's fresh output buffer is page-faulted in.)"""
    n = mib * 2 ** 20 // 4
    src = np.ones(n, np.float32)
    dst = np.zeros_like(src)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * 4 * n / best


def _best(f, repeats):
    t0 = time.perf_counter()
    out = np.asarray(f())
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = np.asarray(f())
        times.append(time.perf_counter() - t0)
    return out, first, min(times), times


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=8, help="N for the N x N comparison (8)")
    p.add_argument("--depth", type=int, default=3, help="number of Conv+Relu blocks (3)")
    p.add_argument("--repeats", type=int, default=3, help="warm repetitions (best is kept)")
    p.add_argument("--nt-n", type=int, default=4,
                   help="neural-tangents runs on the first NT_N x NT_N of the entries (4)")
    p.add_argument("--skip-nt", action="store_true", help="do not run neural-tangents")
    p.add_argument("--skip-km", action="store_true", help="do not run kernel_matrix")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)

    _, _, kernel_fn = archs.cnn(args.depth, "gap")
    x = cifar_like(2 * args.n, 0)
    x1, x2 = x[:args.n], x[args.n:]
    entries = args.n * args.n
    work = work_per_entry(depth=args.depth)
    res = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
           "jax": jax.__version__, "spec": kernel_fn.spec, "n": args.n, "dtype": "float32",
           "work_per_entry": work}
    print(f"CNTK-GAP depth {args.depth}, {args.n}x{args.n} entries of 32x32x3 float32 inputs, "
          f"{os.cpu_count()} CPUs, jax {jax.__version__}")

    peak_flops = matmul_rate()
    peak_bw = copy_bandwidth()
    res["peak"] = {"matmul_flops_per_s": peak_flops, "copy_bytes_per_s": peak_bw}
    print(f"machine: float32 matmul {peak_flops / 1e9:.1f} GFLOP/s, memory copy "
          f"{peak_bw / 1e9:.1f} GB/s (measured now)")
    print(f"work per entry: {work['pairs']:.0f} pixel pairs x {work['flops_per_pair']} flops "
          f"= {work['flops'] / 1e6:.0f} MFLOP ({work['sqrt_div_per_pair']} sqrt/div per pair); "
          f"layer-by-layer state traffic {work['bytes'] / 1e6:.0f} MB")

    f = jax.jit(lambda a, b: kernel_fn(a, b, "ntk"))
    a, b = jnp.asarray(x1), jnp.asarray(x2)
    k32, first, best, times = _best(lambda: f(a, b), args.repeats)
    rate = entries / best
    gflops = rate * work["flops"] / 1e9
    gbs = rate * work["bytes"] / 1e9
    res["lantk"] = {"first_s": first, "times_s": times, "best_s": best, "entries_per_s": rate,
                    "gflop_per_s": gflops, "flops_fraction_of_matmul": gflops * 1e9 / peak_flops,
                    "equiv_gb_per_s": gbs, "bytes_fraction_of_copy": gbs * 1e9 / peak_bw}
    print(f"lantk kernel_fn:  {best:7.2f} s  {rate:8.2f} entries/s   (first call incl. compile "
          f"{first:.1f} s; runs {', '.join(f'{entries / t:.1f}' for t in times)} entries/s)")
    print(f"  achieved {gflops:.1f} GFLOP/s = {100 * gflops * 1e9 / peak_flops:.1f} % of the "
          f"matmul rate; layer-by-layer traffic equivalent {gbs:.1f} GB/s = "
          f"{100 * gbs * 1e9 / peak_bw:.0f} % of the copy bandwidth")

    k64 = np.asarray(kernel_fn(np.asarray(x1, np.float64), np.asarray(x2, np.float64), "ntk"))
    rel64 = float(np.max(np.abs(k32 - k64) / np.abs(k64)))
    res["max_rel_diff_float32_vs_float64"] = rel64
    print(f"float32 vs float64: max relative difference {rel64:.1e}")

    if not args.skip_km:
        def km():
            return kernel_matrix(kernel_fn, x, dtype=np.float32, tile=args.n, progress=False)

        _, km_first, km_best, km_times = _best(km, 1)
        n2 = (2 * args.n) ** 2
        res["lantk_kernel_matrix"] = {"n": 2 * args.n, "tile": args.n, "first_s": km_first,
                                      "best_s": km_best, "entries_per_s": n2 / km_best}
        print(f"lantk kernel_matrix {2 * args.n}x{2 * args.n} (tiles of {args.n}, upper "
              f"triangle mirrored): {km_best:7.2f} s  {n2 / km_best:8.2f} entries/s   "
              f"(first call incl. compile {km_first:.1f} s)")

    if not args.skip_nt:
        m = min(args.nt_n, args.n)
        a_nt, b_nt = jnp.asarray(x1[:m]), jnp.asarray(x2[:m])
        k_same, _, best_same, _ = _best(lambda: f(a_nt, b_nt), args.repeats)
        rate_same = m * m / best_same
        nt = time_nt(kernel_fn.spec, x1[:m], x2[:m], m, 1)
        k_nt = nt.pop("kernel")
        rel = float(np.max(np.abs(k_same - k_nt)) / np.max(np.abs(k_nt)))
        res["neural_tangents"] = nt
        res["lantk_same_inputs"] = {"n": m, "best_s": best_same, "entries_per_s": rate_same}
        res["ratio"] = rate_same / nt["entries_per_s"]
        res["ratio_lantk_n"] = rate / nt["entries_per_s"]
        res["max_rel_diff_nt"] = rel
        print(f"neural-tangents {m}x{m}:  {nt['best_s']:7.2f} s  {nt['entries_per_s']:8.2f} "
              f"entries/s   (first call incl. compile {nt['first_s']:.1f} s)")
        print(f"lantk {m}x{m} (same inputs): {best_same:7.2f} s  {rate_same:8.2f} entries/s")
        print(f"ratio lantk / neural-tangents: {res['ratio']:.1f}x on the same {m}x{m} inputs, "
              f"{res['ratio_lantk_n']:.1f}x with lantk's {args.n}x{args.n} (goal >= 10x); "
              f"max |difference| / max |K|: {rel:.1e}")

    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
