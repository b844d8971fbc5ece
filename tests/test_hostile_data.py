"""Hostile inputs to :mod:`lantk.data`: each gives an error that names the argument and the
problem (issue: no bad input that gives a wrong number or a hang)."""

from __future__ import annotations

import numpy as np

from lantk import data as D, profiles as P
from _hostile import H, Ht, X, clear_error_test, y  # noqa: F401 (the shared problem)


test_hostile_input_is_a_clear_error = clear_error_test({
    "dataset": (lambda: D.binary_task('imagenet', (3, 5)), "unknown dataset 'imagenet'"),
    "same classes": (lambda: D.binary_task('digits', (3, 3)), "classes must be distinct"),
    "three classes": (lambda: D.binary_task('digits', (3, 5, 7)), "exactly two classes"),
    "class 11": (lambda: D.binary_task('digits', (3, 11)), "unknown class 11"),
    "n_val negative": (lambda: D.binary_task('digits', (3, 5), n_train=10, n_val=-1), "n_val must be an integer >= 0"),
    "n_train fractional": (lambda: D.binary_task('digits', (3, 5), n_train=3.5), "n_train must be an integer"),
    "seed negative": (lambda: D.binary_task('digits', (3, 5), n_train=10, seed=-1), "seed must be an integer >= 0"),
    "too many images": (lambda: D.binary_task('digits', (3, 5), n_train=10**6), "only 136 are available"),
    "labels for one_hot": (lambda: D.one_hot_centred(np.array([0.5, 1.0])), "integer class indices"),
    "profile": (lambda: P.NTK.resolve('fast'), "unknown profile 'fast'"),
    "setting": (lambda: P.NTK.resolve('smoke', foo=1), "NTK has no setting foo"),
})
