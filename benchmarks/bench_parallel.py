"""Independent training runs: one process on every core against one single-threaded worker
per core (``lantk.parallel.map_jobs``).

Each job trains ``paper_cnn(1)`` (Adam, minibatches of 32, float32) for a few epochs on
CIFAR-shaped inputs (the real CIFAR-10 when ``LANTK_DATA_DIR`` has it) and reports the
seconds of its epochs after the first (the first compiles). The script runs the same jobs
twice, ``workers=0`` (one after the other in this process, XLA using every core) and with one
worker per core, and prints the images per second of both and their ratio. Run:
``python benchmarks/bench_parallel.py`` (``--help`` for sizes).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def train_job(n: int, epochs: int, seed: int, augment=None, n_val: int = 0) -> dict:
    """Train paper_cnn(1) on ``n`` images for ``epochs`` epochs (with ``augment`` and, when
    ``n_val``, the validation loss monitored on ``n_val`` more images, as the generalisation
    chapter does); the steady epochs' seconds."""
    from lantk import archs, data, train

    if data.available("cifar10"):
        X, y = data.load("cifar10", "train")
        keep = np.flatnonzero((y == 3) | (y == 5))[:n + n_val]
        X = (X[keep].astype(np.float32) / 127.5 - 1.0)
        y = np.where(y[keep] == 3, 1.0, -1.0)
    else:
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n + n_val, 32, 32, 3)).astype(np.float32)
        y = np.sign(rng.standard_normal(n + n_val))
    val = dict(X_val=X[n:], y_val=y[n:], patience=epochs, monitor="loss") if n_val else {}
    net = train.fit(archs.paper_cnn(1), X[:n], y[:n], epochs=epochs, batch_size=32, lr=1e-3,
                    seed=seed, progress=False, augment=augment, **val)
    return {"seconds": [h["seconds"] for h in net.history[1:]], "n": n}


def main():
    from lantk import parallel

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=512, help="training images per job")
    ap.add_argument("--epochs", type=int, default=4, help="epochs per job (the first compiles)")
    ap.add_argument("--jobs", type=int, default=None, help="jobs (default: 2 per core)")
    ap.add_argument("--augment", default=None, help='e.g. "flip+shift" (default: none)')
    ap.add_argument("--val", type=int, default=0, help="validation images (loss monitored)")
    args = ap.parse_args()
    workers = len(parallel.cores())
    n_jobs = args.jobs or 2 * max(workers, 1)
    jobs = [dict(n=args.images, epochs=args.epochs, seed=s, augment=args.augment, n_val=args.val)
            for s in range(n_jobs)]
    rates = {}
    for w in (0, workers):
        t0 = time.perf_counter()
        out = parallel.map_jobs(train_job, jobs, workers=w)
        wall = time.perf_counter() - t0
        per_job = [r["n"] * len(r["seconds"]) / sum(r["seconds"]) for r in out]
        # steady images/s of the whole machine: every job's rate, times the jobs at once
        rates[w] = float(np.mean(per_job)) * max(w, 1)
        print(f"{parallel.describe(w, n_jobs)}: {rates[w]:.0f} images/s in the steady epochs "
              f"({np.mean(per_job):.0f} per job), {wall:.0f} s for {n_jobs} jobs incl. compiling",
              flush=True)
    if workers:
        print(f"ratio: {rates[workers] / rates[0]:.2f}x with one single-threaded worker per core")


if __name__ == "__main__":
    main()
