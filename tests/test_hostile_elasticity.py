"""Hostile inputs to lantk.elasticity: kernels, labels and bootstrap settings (issue #13)."""

import numpy as np
import pytest

from lantk import elasticity as el

K = np.array([[1.0, 0.6, 0.1, 0.2], [0.6, 1.0, 0.3, 0.1], [0.1, 0.3, 1.0, 0.5],
              [0.2, 0.1, 0.5, 1.0]])
Y = np.array([1, 1, -1, -1])
D = (np.ones(4), np.ones(4))


@pytest.mark.parametrize("args, kwargs, match", [
    ((K * np.nan,), {}, "K contains NaN"),
    ((np.ones(4),), {}, "K must be 2-d"),
    ((K[:3],), {}, "a non-square \\(test–train\\) kernel needs diag_rows and diag_cols"),
    ((-K,), {}, "the diagonal of K must be positive"),
    ((K,), {"diag_rows": np.ones(4)}, "give both diag_rows and diag_cols"),
    ((K,), {"diag_rows": np.ones(3), "diag_cols": np.ones(4)}, "K has 4 rows but diag_rows has 3"),
    ((K,), {"diag_rows": np.ones(4), "diag_cols": np.ones(5)}, "diag_cols has 5"),
    ((K,), {"diag_rows": np.zeros(4), "diag_cols": np.ones(4)}, "diag_rows must be positive"),
    ((K,), {"diag_rows": [[1.0]] * 4, "diag_cols": np.ones(4)}, "diag_rows must be 1-d"),
    (([["a"]],), {}, "K must be a numeric array"),
])
def test_normalize_kernel(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        el.normalize_kernel(*args, **kwargs)


@pytest.mark.parametrize("args, kwargs, match", [
    ((K, Y[:3]), {}, "length mismatch: K has 4 rows but y has 3"),
    ((K, Y[:, None]), {}, "y must be a 1-d vector of class labels"),
    ((K, Y[:0]), {}, "y is empty"),
    ((K, Y * np.nan), {}, "y contains NaN"),
    ((K, np.ones(4)), {}, "a single class"),
    ((K + np.triu(np.ones((4, 4)), 1), Y), {}, "K must be symmetric"),
    ((K[:2], Y[:2], Y), {}, "a test–train kernel needs diag_rows"),
    ((K[:2], Y[:2], Y), {"diag_rows": np.ones(2), "diag_cols": np.ones(4),
                         "include_diagonal": True}, "train–train kernel only"),
    ((K[:2], Y[:3], Y), {"diag_rows": np.ones(2), "diag_cols": np.ones(4)},
     "K has 2 rows but y_rows has 3"),
    ((K[:2], Y[:2], Y[:3]), {"diag_rows": np.ones(2), "diag_cols": np.ones(4)},
     "K has 4 columns but y_cols has 3"),
])
def test_relative_ratio(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        el.relative_ratio(*args, **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_boot": 0}, "n_boot must be positive"),
    ({"n_boot": 2.5}, "n_boot must be positive"),      # was: 'float' object is not iterable
    ({"n_boot": "100"}, "n_boot must be positive"),
    ({"level": 1.0}, "level must be in \\(0, 1\\)"),
    ({"level": np.nan}, "level must be a finite number"),
    ({"level": "95%"}, "level must be a real number"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"diag_a": np.ones(4)}, "diag_a must be a pair \\(diag_rows, diag_cols\\)"),
    ({"diag_b": (np.ones(4),)}, "diag_b must be a pair"),
])
def test_ratio_difference(kwargs, match):
    kw = {"diag_a": D, "diag_b": D, "n_boot": 10}
    kw.update(kwargs)
    with pytest.raises(ValueError, match=match):
        el.ratio_difference(K, K, Y, Y, **kw)


def test_class_pair_similarity():
    with pytest.raises(ValueError, match="K has 4 rows but classes has 2"):
        el.class_pair_similarity(K, Y[:2])
    with pytest.raises(ValueError, match="K has 4 rows but diag_rows has 3"):
        el.class_pair_similarity(K, Y, diag=np.ones(3))
    with pytest.raises(ValueError, match="classes contains NaN"):
        el.class_pair_similarity(K, Y * np.nan)


FINE = np.array([0, 1, 2, 3])
A = {0: 1, 1: 1, 2: -1, 3: -1}
B = {0: 1, 2: 1, 1: -1, 3: -1}


def _rbf(X, y):
    return np.exp(-((X[:, None] - X[None]) ** 2).sum(-1))


def test_compare_label_systems():
    X = np.random.default_rng(0).standard_normal((4, 2))
    with pytest.raises(ValueError, match="system_a gives no label for class\\(es\\) \\[2, 3\\]"):
        el.compare_label_systems(_rbf, X, FINE, {0: 1, 1: -1}, B)
    with pytest.raises(ValueError, match="system_b must map the fine classes onto both"):
        el.compare_label_systems(_rbf, X, FINE, A, dict.fromkeys(range(4), 1))
    with pytest.raises(ValueError, match="system_a must be a mapping \\(or callable\\)"):
        el.compare_label_systems(_rbf, X, FINE, [1, 1, -1, -1], B)
    with pytest.raises(ValueError, match="kernel_factory must be a callable"):
        el.compare_label_systems(None, X, FINE, A, B)
    with pytest.raises(ValueError, match="kernel_factory returned shape"):
        el.compare_label_systems(lambda X, y: np.eye(3), X, FINE, A, B)
    with pytest.raises(ValueError, match="K(_a)? contains NaN"):
        el.compare_label_systems(lambda X, y: _rbf(X, y) * np.nan, X, FINE, A, B)
    with pytest.raises(ValueError, match="fine_labels is empty"):
        el.compare_label_systems(_rbf, X, FINE[:0], A, B)
    cmp = el.compare_label_systems(_rbf, X, FINE, A, B)
    for kwargs, match in (({"n_boot": 1.5}, "n_boot must be positive"),
                          ({"n_boot": 0}, "n_boot must be positive"),
                          ({"level": 0.0}, "level must be in"),
                          ({"seed": "x"}, "seed must be")):
        with pytest.raises(ValueError, match=match):
            cmp.follow_interval(**kwargs)
