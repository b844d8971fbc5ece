"""Hostile inputs to :mod:`lantk.kernels`: each gives an error that names the argument and the
problem (issue: no bad input that gives a wrong number or a hang)."""

from __future__ import annotations

import numpy as np

from lantk import kernels as K, stax
from _hostile import H, Ht, X, clear_error_test, y  # noqa: F401 (the shared problem)

kfn = stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(1))[2]


test_hostile_input_is_a_clear_error = clear_error_test({
    "NaN from kernel_fn": (lambda: K.kernel_matrix(lambda a, b=None, get='ntk': np.full((len(a), len(a if b is None else b)), np.nan), X, progress=False), "NaN or infinite ntk entries"),
    "huge inputs": (lambda: K.kernel_matrix(kfn, X * 1e160, progress=False), "NaN or infinite"),
    "1-d inputs": (lambda: K.kernel_matrix(kfn, np.ones(5), progress=False), "x1 must have shape \\(n, \\*features\\)"),
    "not callable": (lambda: K.kernel_matrix(3, X, progress=False), "kernel_fn must be a kernel function"),
    "get": (lambda: K.kernel_matrix(kfn, X, get='foo', progress=False), "unknown get='foo'"),
    "tile 0": (lambda: K.kernel_matrix(kfn, X, tile=0, progress=False), "tile must be a positive integer"),
    "feature shapes": (lambda: K.kernel_matrix(kfn, X, X[:, :2], progress=False), "same feature shape"),
})
