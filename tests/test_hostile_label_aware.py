"""Hostile inputs to :mod:`lantk.label_aware`: each gives an error that names the argument and the
problem (issue: no bad input that gives a wrong number or a hang)."""

from __future__ import annotations

import numpy as np
import pytest

from lantk import label_aware as L

_rng = np.random.default_rng(0)
X = _rng.standard_normal((30, 4))
y = np.where(X[:, 0] > 0, 1.0, -1.0)
H = X @ X.T + np.eye(30)
Ht = H[:5]


@pytest.mark.parametrize("call, match", [
    (lambda: L.kr_estimate(H, Ht, y, variant='v3'), "unknown variant 'v3'"),
    (lambda: L.kr_estimate(H, Ht), "y \\(the training labels\\) is required"),
    (lambda: L.kr_estimate(np.ones((30, 30)), None, y), "H_train is constant"),
    (lambda: L.fjlt_estimate(X, y, None, H, eps=0), "eps must be in \\(0, 1\\]"),
    (lambda: L.fjlt_estimate(X, y, None, H, eps=2), "eps must be in \\(0, 1\\]"),
    (lambda: L.fjlt_estimate(X, y, None, H, solver='qr'), "unknown solver 'qr'"),
    (lambda: L.fjlt_estimate(X, y), "H_train .* is required"),
    (lambda: L.fjlt_estimate(X, y, X[:3], H), "give both X_test and H_test_train"),
    (lambda: L.fjlt_estimate(X, y, X[:5, :2], H, Ht), "X_test has 2 features per input but X_train has 4"),
    (lambda: L.fjlt_estimate(np.ones((30, 4)), y, None, H), "identical rows only"),
    (lambda: L.lantk_kernel(H, np.outer(y, y), float('nan')), "c must be a finite number >= 0"),
    (lambda: L.lantk_kernel(H, np.outer(y, y) * 1e-300, 1e308), "not finite"),
    (lambda: L.lantk_kernel(H, np.outer(y, y), -5), "c must be a finite number >= 0"),
    (lambda: L.lantk_kernel(H, np.outer(y, y), 1, lam=-1), "lam must be a finite number >= 0"),
    (lambda: L.lantk_kernel(H, np.outer(y, y), 1, Ht), "give both H_test_train and Z_test"),
    (lambda: L.lantk_kernel(H, np.outer(y, y)[:5, :5], 1), "Z_train has shape \\(5, 5\\)"),
    (lambda: L.scale_lambda(H, np.zeros((30, 30)), 1), "identically zero"),
    (lambda: L.oracle_Z(np.eye(3)[[0, 1, 2]], np.eye(4)[[0, 1]]), "same classes"),
    (lambda: L.psd_projection(np.triu(np.ones((3, 3)))), "Z_train must be symmetric"),
    (lambda: L.psd_projection(np.eye(3), np.ones((2, 4))), "Z_test has 4 columns"),
    (lambda: L.pair_features(X, X, H[:5]), "H_ab has shape \\(5, 30\\)"),
    (lambda: L.kernel_spectrum(np.triu(np.ones((3, 3)))), "K must be symmetric")
], ids=["kr variant", "kr no labels", "kr constant H", "fjlt eps 0", "fjlt eps 2", "fjlt solver", "fjlt no H", "fjlt X_test alone", "fjlt X_test dims", "fjlt identical rows", "c NaN", "c overflowing", "c negative", "lam negative", "Z_test missing", "Z shape", "zero Z", "oracle classes", "psd asymmetric", "psd test columns", "pair_features H", "spectrum asymmetric"])
def test_hostile_input_is_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
