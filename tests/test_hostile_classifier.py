"""Hostile inputs to :mod:`lantk.classifier`: each gives an error that names the argument and the
problem (issue: no bad input that gives a wrong number or a hang)."""

from __future__ import annotations

import numpy as np
import pytest

from lantk import archs
from lantk.classifier import LANTKClassifier as C

_rng = np.random.default_rng(0)
X = _rng.standard_normal((30, 4))
y = np.where(X[:, 0] > 0, 1.0, -1.0)
H = X @ X.T + np.eye(30)
Ht = H[:5]


@pytest.mark.parametrize("call, match", [
    (lambda: C(variant='foo').fit(X, y), "unknown variant 'foo'"),
    (lambda: C(c='a').fit(X, y), "c must be a real number"),
    (lambda: C(c=-1).fit(X, y), "c must be a finite number >= 0"),
    (lambda: C(rho=-1).fit(X, y), "rho must be a finite number >= 0"),
    (lambda: C(variant='nth', arch=archs.two_layer_relu(8)).fit(X, y), "arch must be None"),
    (lambda: C().fit(X, np.ones(30)), "at least two classes"),
    (lambda: C().fit(np.full((30, 4), np.nan), y), "NaN"),
    (lambda: C(input_shape=(3, 3)).fit(X, y), "input_shape \\(3, 3\\) does not match 4 features"),
    (lambda: C(arch=5).fit(X, y), "arch must be None, a kernel_fn"),
    (lambda: C().fit(X, y).predict(X[:, :2]), "X has 2 features"),
    (lambda: C(variant='nth', samples=0).fit(X, y), "samples must be a positive integer"),
    (lambda: C(variant='nth', width=0).fit(X, y), "width must be positive"),
    (lambda: C(variant='fjlt-v1', eps=0, solver='fjlt').fit(X, y), "eps must be in")
], ids=["variant", "c string", "c negative", "rho negative", "nth with arch", "one class", "NaN inputs", "input_shape", "arch", "predict features", "nth samples 0", "nth width 0", "fjlt eps 0"])
def test_hostile_input_is_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
