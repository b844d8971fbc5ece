"""Hostile inputs to :mod:`lantk.kernels`: each gives an error that names the argument and the
problem (issue: no bad input that gives a wrong number or a hang)."""

from __future__ import annotations

import numpy as np
import pytest

from lantk import kernels as K, stax

kfn = stax.serial(stax.Dense(8), stax.Relu(), stax.Dense(1))[2]

_rng = np.random.default_rng(0)
X = _rng.standard_normal((30, 4))
y = np.where(X[:, 0] > 0, 1.0, -1.0)
H = X @ X.T + np.eye(30)
Ht = H[:5]


@pytest.mark.parametrize("call, match", [
    (lambda: K.kernel_matrix(lambda a, b=None, get='ntk': np.full((len(a), len(a if b is None else b)), np.nan), X, progress=False), "NaN or infinite ntk entries"),
    (lambda: K.kernel_matrix(kfn, X * 1e160, progress=False), "NaN or infinite"),
    (lambda: K.kernel_matrix(kfn, np.ones(5), progress=False), "x1 must have shape \\(n, \\*features\\)"),
    (lambda: K.kernel_matrix(3, X, progress=False), "kernel_fn must be a kernel function"),
    (lambda: K.kernel_matrix(kfn, X, get='foo', progress=False), "unknown get='foo'"),
    (lambda: K.kernel_matrix(kfn, X, tile=0, progress=False), "tile must be a positive integer"),
    (lambda: K.kernel_matrix(kfn, X, X[:, :2], progress=False), "same feature shape")
], ids=["NaN from kernel_fn", "huge inputs", "1-d inputs", "not callable", "get", "tile 0", "feature shapes"])
def test_hostile_input_is_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
