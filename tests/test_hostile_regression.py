"""Hostile inputs to :mod:`lantk.regression`: each gives an error that names the argument and the
problem (issue: no bad input that gives a wrong number or a hang)."""

from __future__ import annotations

import numpy as np
import pytest

from lantk import regression as R

_rng = np.random.default_rng(0)
X = _rng.standard_normal((30, 4))
y = np.where(X[:, 0] > 0, 1.0, -1.0)
H = X @ X.T + np.eye(30)
Ht = H[:5]


@pytest.mark.parametrize("call, match", [
    (lambda: R.solve(H[:, :5], y), "H must be a square matrix"),
    (lambda: R.solve(H, np.full(30, np.nan)), "B contains NaN"),
    (lambda: R.solve(H, y[:4]), "H has 30 rows but B has 4"),
    (lambda: R.solve(H, y, rho=np.inf), "rho must be a finite number >= 0"),
    (lambda: R.solve(H, y, rho='a'), "rho must be a real number"),
    (lambda: R.kernel_regression(H + np.triu(np.ones((30, 30)), 1), Ht, y), "H_train must be symmetric"),
    (lambda: R.kernel_regression(H, None, y), "H_test_train is required"),
    (lambda: R.kernel_regression(H, Ht, np.r_[np.zeros(10), np.ones(10), -np.ones(10)]), "got values \\{-1, 0, 1\\}"),
    (lambda: R.kernel_regression(H, Ht, y * 0.5), "non-integer values"),
    (lambda: R.kernel_regression(np.full((30, 30), np.inf), Ht, y), "H_train contains inf"),
    (lambda: R.accuracy(y[:3], np.ones(5)), "y_true has 3 rows but f has 5"),
    (lambda: R.predict_labels(np.array([np.nan, 1.0])), "f contains NaN")
], ids=["solve nonsquare", "solve nan B", "solve short B", "solve rho inf", "solve rho str", "asymmetric H", "no test block", "labels -1/0/1", "labels 0.5", "inf H", "accuracy lengths", "NaN decision"])
def test_hostile_input_is_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
