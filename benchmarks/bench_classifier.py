"""Cost of a grid search over ``c`` with ``LANTKClassifier`` against one fit.

The classifier keeps the kernel entries it computed (keyed on the kernel and the bytes of
each input row) and the ``Z`` of recent fits, so the fits of ``GridSearchCV`` compute each
entry of the kernel about once, whatever ``c`` is and however the folds overlap. This script times, for the CNTK of ``archs.paper_cnn(1)`` on CIFAR-10
cat vs dog (random CIFAR-shaped inputs without ``LANTK_DATA_DIR``):

* one fit and predict on all training images (cache cleared first);
* ``GridSearchCV`` over five values of ``c`` with 3 folds and the refit (cache cleared
  first), against the same search with the cache switched off (every fit recomputes).

Goal (issue #13): the grid search costs well under twice one fit. Run:
``python benchmarks/bench_classifier.py [--n 300]``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from sklearn.model_selection import GridSearchCV

from lantk import LANTKClassifier, archs, data
from lantk import classifier as clf_mod


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300, help="training images")
    ap.add_argument("--variant", default="kr-v2")
    args = ap.parse_args()
    if os.environ.get("LANTK_DATA_DIR"):
        t = data.binary_task("cifar10", classes=("cat", "dog"), n_train=args.n, n_test=100)
        X, y, Xt, what = t.X_train, t.y_train, t.X_test, "CIFAR-10 cat vs dog"
    else:
        rng = np.random.default_rng(0)
        X, Xt = rng.uniform(-1, 1, (args.n, 32, 32, 3)), rng.uniform(-1, 1, (100, 32, 32, 3))
        y, what = np.where(rng.random(args.n) < 0.5, 1.0, -1.0), "random CIFAR-shaped inputs"
    shape = X.shape[1:]
    X, Xt = X.reshape(len(X), -1), Xt.reshape(len(Xt), -1)
    est = LANTKClassifier(variant=args.variant, arch=archs.paper_cnn(1), input_shape=shape)
    grid = {"c": [0.03, 0.1, 0.3, 1.0, 3.0]}

    clf_mod._CACHE.clear()
    clf_mod._ENTRIES.reset()
    t0 = time.perf_counter()
    est.fit(X, y).predict(Xt)
    one = time.perf_counter() - t0

    clf_mod._CACHE.clear()
    clf_mod._ENTRIES.reset()
    t0 = time.perf_counter()
    GridSearchCV(est, grid, cv=3).fit(X, y).predict(Xt)
    cached = time.perf_counter() - t0

    saved = clf_mod._CACHE.max_bytes
    clf_mod._CACHE.clear()
    clf_mod._ENTRIES.reset()
    clf_mod._CACHE.max_bytes = 0  # nothing is kept: every fit computes its kernel
    t0 = time.perf_counter()
    GridSearchCV(est, grid, cv=3).fit(X, y).predict(Xt)
    uncached = time.perf_counter() - t0
    clf_mod._CACHE.max_bytes = saved

    print(f"{what}: {len(X)} training, {len(Xt)} test images; CNTK of paper_cnn(1); "
          f"{args.variant}; {os.cpu_count()} CPU cores")
    print(f"one fit + predict: {one:.1f} s")
    print(f"GridSearchCV, 5 values of c x 3 folds + refit: {cached:.1f} s with the block cache "
          f"({cached / one:.2f}x one fit), {uncached:.1f} s without ({uncached / one:.2f}x)")


if __name__ == "__main__":
    main()
