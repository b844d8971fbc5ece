"""Hostile inputs to :mod:`lantk.experiments`: each gives an error that names the argument and the
problem (issue: no bad input that gives a wrong number or a hang)."""

from __future__ import annotations

import numpy as np

from lantk import data as D, experiments as E
from _hostile import H, Ht, X, clear_error_test, y  # noqa: F401 (the shared problem)

task = D.binary_task('digits', (3, 5), n_train=40, n_val=10, n_test=20)


test_hostile_input_is_a_clear_error = clear_error_test({
    "paired lengths": (lambda: E.paired_difference(np.ones(5), np.ones(4)), "equal shapes"),
    "paired level": (lambda: E.paired_difference(np.ones(5), np.ones(5), level=1.5), "level must be a confidence level in \\(0, 1\\)"),
    "paired NaN": (lambda: E.paired_difference(np.array([1, np.nan, 0]), np.ones(3)), "correct_a contains NaN"),
    "pooled empty": (lambda: E.pooled_paired_difference([]), "at least one"),
    "pooled level": (lambda: E.pooled_paired_difference([(np.ones(3), np.ones(3))], level=0), "level must be"),
    "methods": (lambda: E.evaluate_methods(task, None, methods=('foo',)), "unknown methods \\['foo'\\]"),
    "psd": (lambda: E.evaluate_methods(task, None, psd='yes'), "psd must be False, True or 'both'"),
    "widths": (lambda: E.width_sweep(task, [0]), "widths must be positive integers"),
    "inits": (lambda: E.width_sweep(task, [8], inits=('foo',)), "inits must be a non-empty list"),
    "multi-class sweep": (lambda: E.width_sweep(D.multiclass_task('digits', n_train=40, n_test=20), [8]), "give a binary task"),
})
