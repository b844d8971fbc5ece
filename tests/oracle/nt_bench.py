"""Oracle timing: neural-tangents 0.6.5 kernel throughput (for benchmarks/bench_cntk.py).

Usage (with the side environment's interpreter)::

    python nt_bench.py IN.npz OUT.json

IN.npz: ``spec`` (a lantk ``kernel_fn.spec``), ``x1``, ``x2`` (float32 arrays), ``batch``
(``nt.batch`` batch size), ``get``, ``repeats``. Computes the kernel in float32 (x64 off) with
``nt.batch(kernel_fn, batch_size)`` under ``jit``, as neural-tangents' documentation
recommends; writes timings (the first call includes compilation) and the kernel.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _nt import eval_spec, import_nt


def main(inp: str, out: str) -> None:
    jax, nt, stax = import_nt(x64=False)
    import numpy as np

    d = np.load(inp)
    spec, get = str(d["spec"]), str(d["get"])
    x1 = jax.numpy.asarray(d["x1"], np.float32)
    x2 = jax.numpy.asarray(d["x2"], np.float32)
    batch, repeats = int(d["batch"]), int(d["repeats"])
    _, _, kernel_fn = eval_spec(spec, stax)
    kfn = nt.batch(jax.jit(kernel_fn, static_argnames="get"), batch_size=batch,
                   store_on_device=False)
    times = []
    for _ in range(1 + repeats):
        t = time.perf_counter()
        k = np.asarray(kfn(x1, x2, get))
        times.append(time.perf_counter() - t)
    np.save(out + ".kernel.npy", k)
    entries = x1.shape[0] * x2.shape[0]
    best = min(times[1:]) if repeats else times[0]
    res = {"first_s": times[0], "times_s": times[1:], "best_s": best, "entries": entries,
           "entries_per_s": entries / best, "jax": jax.__version__,
           "devices": [str(dv) for dv in jax.devices()]}
    with open(out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
