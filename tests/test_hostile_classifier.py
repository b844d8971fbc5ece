"""Hostile inputs to :mod:`lantk.classifier`: each gives an error that names the argument and the
problem (issue: no bad input that gives a wrong number or a hang)."""

from __future__ import annotations

import numpy as np

from lantk import archs
from lantk.classifier import LANTKClassifier as C
from _hostile import H, Ht, X, clear_error_test, y  # noqa: F401 (the shared problem)


test_hostile_input_is_a_clear_error = clear_error_test({
    "variant": (lambda: C(variant='foo').fit(X, y), "unknown variant 'foo'"),
    "c string": (lambda: C(c='a').fit(X, y), "c must be a real number"),
    "c negative": (lambda: C(c=-1).fit(X, y), "c must be a finite number >= 0"),
    "rho negative": (lambda: C(rho=-1).fit(X, y), "rho must be a finite number >= 0"),
    "nth with arch": (lambda: C(variant='nth', arch=archs.two_layer_relu(8)).fit(X, y), "arch must be None"),
    "one class": (lambda: C().fit(X, np.ones(30)), "at least two classes"),
    "NaN inputs": (lambda: C().fit(np.full((30, 4), np.nan), y), "NaN"),
    "input_shape": (lambda: C(input_shape=(3, 3)).fit(X, y), "input_shape \\(3, 3\\) does not match 4 features"),
    "arch": (lambda: C(arch=5).fit(X, y), "arch must be None, a kernel_fn"),
    "predict features": (lambda: C().fit(X, y).predict(X[:, :2]), "X has 2 features"),
    "nth samples 0": (lambda: C(variant='nth', samples=0).fit(X, y), "samples must be a positive integer"),
    "nth width 0": (lambda: C(variant='nth', width=0).fit(X, y), "width must be positive"),
    "fjlt eps 0": (lambda: C(variant='fjlt-v1', eps=0, solver='fjlt').fit(X, y), "eps must be in"),
})
