"""Hostile inputs to :mod:`lantk.data`: each gives an error that names the argument and the
problem (issue: no bad input that gives a wrong number or a hang)."""

from __future__ import annotations

import numpy as np
import pytest

from lantk import data as D, profiles as P

_rng = np.random.default_rng(0)
X = _rng.standard_normal((30, 4))
y = np.where(X[:, 0] > 0, 1.0, -1.0)
H = X @ X.T + np.eye(30)
Ht = H[:5]


@pytest.mark.parametrize("call, match", [
    (lambda: D.binary_task('imagenet', (3, 5)), "unknown dataset 'imagenet'"),
    (lambda: D.binary_task('digits', (3, 3)), "classes must be distinct"),
    (lambda: D.binary_task('digits', (3, 5, 7)), "exactly two classes"),
    (lambda: D.binary_task('digits', (3, 11)), "unknown class 11"),
    (lambda: D.binary_task('digits', (3, 5), n_train=10, n_val=-1), "n_val must be an integer >= 0"),
    (lambda: D.binary_task('digits', (3, 5), n_train=3.5), "n_train must be an integer"),
    (lambda: D.binary_task('digits', (3, 5), n_train=10, seed=-1), "seed must be an integer >= 0"),
    (lambda: D.binary_task('digits', (3, 5), n_train=10**6), "only 136 are available"),
    (lambda: D.one_hot_centred(np.array([0.5, 1.0])), "integer class indices"),
    (lambda: P.NTK.resolve('fast'), "unknown profile 'fast'"),
    (lambda: P.NTK.resolve('smoke', foo=1), "NTK has no setting foo")
], ids=["dataset", "same classes", "three classes", "class 11", "n_val negative", "n_train fractional", "seed negative", "too many images", "labels for one_hot", "profile", "setting"])
def test_hostile_input_is_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
