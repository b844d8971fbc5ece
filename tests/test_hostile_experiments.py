"""Hostile inputs to :mod:`lantk.experiments`: each gives an error that names the argument and the
problem (issue: no bad input that gives a wrong number or a hang)."""

from __future__ import annotations

import numpy as np
import pytest

from lantk import data as D, experiments as E

task = D.binary_task('digits', (3, 5), n_train=40, n_val=10, n_test=20)

_rng = np.random.default_rng(0)
X = _rng.standard_normal((30, 4))
y = np.where(X[:, 0] > 0, 1.0, -1.0)
H = X @ X.T + np.eye(30)
Ht = H[:5]


@pytest.mark.parametrize("call, match", [
    (lambda: E.paired_difference(np.ones(5), np.ones(4)), "equal shapes"),
    (lambda: E.paired_difference(np.ones(5), np.ones(5), level=1.5), "level must be a confidence level in \\(0, 1\\)"),
    (lambda: E.paired_difference(np.array([1, np.nan, 0]), np.ones(3)), "correct_a contains NaN"),
    (lambda: E.pooled_paired_difference([]), "at least one"),
    (lambda: E.pooled_paired_difference([(np.ones(3), np.ones(3))], level=0), "level must be"),
    (lambda: E.evaluate_methods(task, None, methods=('foo',)), "unknown methods \\['foo'\\]"),
    (lambda: E.evaluate_methods(task, None, psd='yes'), "psd must be False, True or 'both'"),
    (lambda: E.width_sweep(task, [0]), "widths must be positive integers"),
    (lambda: E.width_sweep(task, [8], inits=('foo',)), "inits must be a non-empty list"),
    (lambda: E.width_sweep(D.multiclass_task('digits', n_train=40, n_test=20), [8]), "give a binary task")
], ids=["paired lengths", "paired level", "paired NaN", "pooled empty", "pooled level", "methods", "psd", "widths", "inits", "multi-class sweep"])
def test_hostile_input_is_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
