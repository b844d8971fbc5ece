"""Training throughput of the finite CNN (``archs.paper_cnn(k)``) against its FLOP bound.

``train.fit`` keeps the data on the device and syncs with the host once per epoch. This
script times epochs of Adam on the mean squared error, float32, on CIFAR-shaped inputs (the
real CIFAR-10 when ``LANTK_DATA_DIR`` has it), and compares the images per second with what
the machine's arithmetic allows:

* the convolution FLOPs of one training step per image, counted from the architecture
  (``2 · H_out · W_out · 9 · C_in · C_out`` per 3×3 convolution for the forward pass; the
  backward pass costs about twice that: gradients with respect to inputs and weights), and
  XLA's own count of the compiled step (``cost_analysis``) as a cross-check;
* the machine's float32 matrix-multiply rate, measured (a large ``jnp.dot``): the rate a
  well-blocked convolution could reach at best.

The ratio achieved / bound says how far training is from the hardware. Run:
``python benchmarks/bench_train.py`` (``--help`` for sizes).
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from lantk import archs, data, train


def conv_flops_per_image(k: int, hw: int = 32, c_in: int = 3, taps: int = 9) -> float:
    """Forward FLOPs of the convolutions of ``paper_cnn(k)`` for one ``hw × hw × c_in`` image."""
    layers = [(16, 1)]
    for c, s in ((16 * k, 1), (32 * k, 2), (64 * k, 2)):
        layers += [(c, s), (c, 1)]
    flops, size, cin = 0.0, hw, c_in
    for c, s in layers:
        size = -(-size // s)  # SAME padding
        flops += 2.0 * size * size * taps * cin * c
        cin = c
    flops += 2.0 * size * size * cin  # the Dense readout
    return flops


def matmul_rate(n: int = 2048, repeats: int = 5) -> float:
    """Measured float32 matrix-multiply FLOP/s of this machine (best of ``repeats``)."""
    a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n)), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best


def images(n: int):
    if os.environ.get("LANTK_DATA_DIR"):
        try:
            t = data.binary_task("cifar10", classes=("cat", "dog"), n_train=n, n_test=2, seed=0)
            return t.X_train, t.y_train, "CIFAR-10 cat vs dog"
        except (ValueError, FileNotFoundError) as e:
            print(f"CIFAR-10 not usable ({e}); random inputs")
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (n, 32, 32, 3)).astype(np.float32)
    return X, np.where(rng.random(n) < 0.5, 1.0, -1.0), "random 32x32x3 inputs"


def xla_flops_per_image(k: int, batch: int) -> float | None:
    init_fn, apply_fn, _ = archs.paper_cnn(k)
    _, p = init_fn(jax.random.PRNGKey(0), (-1, 32, 32, 3))
    x = jnp.zeros((batch, 32, 32, 3), jnp.float32)
    y = jnp.zeros((batch, 1), jnp.float32)

    def step(p):
        return jax.grad(lambda q: 0.5 * jnp.mean((apply_fn(q, x) - y) ** 2))(p)

    try:
        cost = jax.jit(step).lower(p).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        return float(cost["flops"]) / batch
    except Exception:  # noqa: BLE001 - not every backend reports a cost
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--k", type=int, nargs="+", default=[1, 4], help="width multipliers")
    ap.add_argument("--n", type=int, default=960, help="training images (balanced cat/dog: the shared CIFAR-10 holds 484 dogs)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
    args = ap.parse_args()

    X, y, what = images(args.n)
    peak = matmul_rate()
    print(f"machine: {os.cpu_count()} CPU cores, JAX {jax.__version__} on "
          f"{jax.devices()[0].platform}; float32 matmul {peak / 1e9:.1f} GFLOP/s (measured)")
    print(f"data: {what}, {len(X)} images, minibatches of {args.batch_size}, float32")
    for k in args.k:
        arch = archs.paper_cnn(k)
        fwd = conv_flops_per_image(k)
        per_image = 3.0 * fwd  # forward + backward (inputs and weights)
        xla = xla_flops_per_image(k, args.batch_size)
        res = train.fit(arch, X, y, epochs=1 + args.epochs, batch_size=args.batch_size,
                        lr=1e-3, seed=0, progress=False)
        secs = [h["seconds"] for h in res.history[1:]]  # the first epoch compiles
        rate = len(X) / float(np.median(secs))
        bound = peak / per_image
        xla_txt = f"; XLA counts {xla / 1e6:.1f} MFLOP" if xla else ""
        print(f"paper_cnn({k}): {per_image / 1e6:.1f} MFLOP per image and step (conv "
              f"forward {fwd / 1e6:.1f} x 3){xla_txt}")
        print(f"  {rate:,.0f} images/s (median of {len(secs)} epochs, "
              f"{min(secs):.2f}-{max(secs):.2f} s each); FLOP bound {bound:,.0f} images/s; "
              f"achieved {rate / bound:.1%} of the bound")


if __name__ == "__main__":
    main()
