"""Hostile inputs to :mod:`lantk.label_aware`: each gives an error that names the argument and the
problem (issue: no bad input that gives a wrong number or a hang)."""

from __future__ import annotations

import numpy as np

from lantk import label_aware as L
from _hostile import H, Ht, X, clear_error_test, y  # noqa: F401 (the shared problem)


test_hostile_input_is_a_clear_error = clear_error_test({
    "kr variant": (lambda: L.kr_estimate(H, Ht, y, variant='v3'), "unknown variant 'v3'"),
    "kr no labels": (lambda: L.kr_estimate(H, Ht), "y \\(the training labels\\) is required"),
    "kr constant H": (lambda: L.kr_estimate(np.ones((30, 30)), None, y), "H_train is constant"),
    "fjlt eps 0": (lambda: L.fjlt_estimate(X, y, None, H, eps=0), "eps must be in \\(0, 1\\]"),
    "fjlt eps 2": (lambda: L.fjlt_estimate(X, y, None, H, eps=2), "eps must be in \\(0, 1\\]"),
    "fjlt solver": (lambda: L.fjlt_estimate(X, y, None, H, solver='qr'), "unknown solver 'qr'"),
    "fjlt no H": (lambda: L.fjlt_estimate(X, y), "H_train .* is required"),
    "fjlt X_test alone": (lambda: L.fjlt_estimate(X, y, X[:3], H), "give both X_test and H_test_train"),
    "fjlt X_test dims": (lambda: L.fjlt_estimate(X, y, X[:5, :2], H, Ht), "X_test has 2 features per input but X_train has 4"),
    "fjlt identical rows": (lambda: L.fjlt_estimate(np.ones((30, 4)), y, None, H), "identical rows only"),
    "c NaN": (lambda: L.lantk_kernel(H, np.outer(y, y), float('nan')), "c must be a finite number >= 0"),
    "c overflowing": (lambda: L.lantk_kernel(H, np.outer(y, y) * 1e-300, 1e308), "not finite"),
    "c negative": (lambda: L.lantk_kernel(H, np.outer(y, y), -5), "c must be a finite number >= 0"),
    "lam negative": (lambda: L.lantk_kernel(H, np.outer(y, y), 1, lam=-1), "lam must be a finite number >= 0"),
    "Z_test missing": (lambda: L.lantk_kernel(H, np.outer(y, y), 1, Ht), "give both H_test_train and Z_test"),
    "Z shape": (lambda: L.lantk_kernel(H, np.outer(y, y)[:5, :5], 1), "Z_train has shape \\(5, 5\\)"),
    "zero Z": (lambda: L.scale_lambda(H, np.zeros((30, 30)), 1), "identically zero"),
    "oracle classes": (lambda: L.oracle_Z(np.eye(3)[[0, 1, 2]], np.eye(4)[[0, 1]]), "same classes"),
    "psd asymmetric": (lambda: L.psd_projection(np.triu(np.ones((3, 3)))), "Z_train must be symmetric"),
    "psd test columns": (lambda: L.psd_projection(np.eye(3), np.ones((2, 4))), "Z_test has 4 columns"),
    "pair_features H": (lambda: L.pair_features(X, X, H[:5]), "H_ab has shape \\(5, 30\\)"),
    "spectrum asymmetric": (lambda: L.kernel_spectrum(np.triu(np.ones((3, 3)))), "K must be symmetric"),
})
