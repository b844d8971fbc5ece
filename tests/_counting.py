"""A kernel that counts the tiles it computes (shared by the kernel_matrix cache tests and the
tile-store tests)."""

import jax
import numpy as np


class Counting:
    """An RBF kernel run through a host callback, so that every tile it computes is counted
    (a jitted Python function runs only when traced). Raises after ``fail_after`` tiles (a
    run killed half-way)."""

    spec = "test:rbf-counting"

    def __init__(self, fail_after=None):
        self.calls, self.fail_after = 0, fail_after

    def _tile(self, a, b):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("simulated interruption")
        return np.exp(-0.5 * ((a[:, None] - b[None]) ** 2).sum(-1))

    def __call__(self, x1, x2=None, get="ntk"):
        x2 = x1 if x2 is None else x2
        shape = jax.ShapeDtypeStruct((len(x1), len(x2)), x1.dtype)
        return jax.pure_callback(self._tile, shape, x1, x2)
