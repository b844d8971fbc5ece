"""Hostile inputs to :mod:`lantk.regression`: each gives an error that names the argument and the
problem (issue: no bad input that gives a wrong number or a hang)."""

from __future__ import annotations

import numpy as np

from lantk import regression as R
from _hostile import H, Ht, X, clear_error_test, y  # noqa: F401 (the shared problem)


test_hostile_input_is_a_clear_error = clear_error_test({
    "solve nonsquare": (lambda: R.solve(H[:, :5], y), "H must be a square matrix"),
    "solve nan B": (lambda: R.solve(H, np.full(30, np.nan)), "B contains NaN"),
    "solve short B": (lambda: R.solve(H, y[:4]), "H has 30 rows but B has 4"),
    "solve rho inf": (lambda: R.solve(H, y, rho=np.inf), "rho must be a finite number >= 0"),
    "solve rho str": (lambda: R.solve(H, y, rho='a'), "rho must be a real number"),
    "asymmetric H": (lambda: R.kernel_regression(H + np.triu(np.ones((30, 30)), 1), Ht, y), "H_train must be symmetric"),
    "no test block": (lambda: R.kernel_regression(H, None, y), "H_test_train is required"),
    "labels -1/0/1": (lambda: R.kernel_regression(H, Ht, np.r_[np.zeros(10), np.ones(10), -np.ones(10)]), "got values \\{-1, 0, 1\\}"),
    "labels 0.5": (lambda: R.kernel_regression(H, Ht, y * 0.5), "non-integer values"),
    "inf H": (lambda: R.kernel_regression(np.full((30, 30), np.inf), Ht, y), "H_train contains inf"),
    "accuracy lengths": (lambda: R.accuracy(y[:3], np.ones(5)), "y_true has 3 rows but f has 5"),
    "NaN decision": (lambda: R.predict_labels(np.array([np.nan, 1.0])), "f contains NaN"),
})
