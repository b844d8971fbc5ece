"""Hostile inputs to lantk.train: every bad argument fails before the first epoch, with a
message naming it (issue #13)."""

import jax
import numpy as np
import pytest

from lantk import archs, train

RNG = np.random.default_rng(0)
X = RNG.standard_normal((12, 6)).astype(np.float32)
Y = np.where(X[:, 0] > 0, 1.0, -1.0)
Y[:2] = [1.0, -1.0]
ARCH = archs.fc(1, width=4)


def _fit(**change):
    kw = {"arch": ARCH, "X_train": X, "y_train": Y, "epochs": 1, "progress": False}
    kw.update(change)
    return train.fit(kw.pop("arch"), kw.pop("X_train"), kw.pop("y_train"), **kw)


@pytest.mark.parametrize("change, match", [
    ({"y_train": np.array(list("ab" * 6))}, "y_train must be numeric"),  # was ufunc 'remainder'
    ({"y_train": Y[:5]}, "X_train has 12 rows but y_train has 5 labels"),
    ({"y_train": Y[:, None]}, "y_train must be a 1-d vector of labels"),
    ({"y_train": np.ones(12)}, "y_train has a single class"),
    ({"y_train": Y * np.nan}, "y_train contains NaN"),
    ({"y_train": Y * 0.5}, "y_train must hold ±1 \\(binary\\) or integer class indices"),
    ({"y_train": np.arange(12) - 3}, "y_train must be binary labels -1/\\+1"),
    ({"X_train": X * np.nan}, "X_train contains NaN or inf"),
    ({"X_train": X[:, 0]}, "X_train must have a batch axis and features"),
    ({"X_train": X[:0], "y_train": Y[:0]}, "X_train is empty"),
    ({"X_train": np.ones((12, 0))}, "X_train has no features"),
    ({"X_train": [["a"] * 6] * 12}, "X_train must be a numeric array"),
    ({"arch": (1, 2)}, "arch must be an \\(init_fn, apply_fn, kernel_fn\\) triple"),
    ({"arch": "fc"}, "arch must be an"),
    ({"epochs": 2.5}, "epochs must be a positive integer"),
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"epochs": True}, "epochs must be a positive integer"),
    ({"batch_size": -4}, "batch_size must be a positive integer"),
    ({"lr": np.nan}, "lr must be a positive finite number"),
    ({"lr": -1.0}, "lr must be a positive finite number"),
    ({"lr": np.inf}, "lr must be a positive finite number"),
    ({"lr": "fast"}, "lr must be a positive number"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"seed": 1.5}, "seed must be a non-negative integer"),
    ({"seed": "0"}, "seed must be a non-negative integer"),
    ({"X_test": X[:, :3], "y_test": Y}, "X_test has inputs of shape \\(3,\\), X_train \\(6,\\)"),
    ({"X_test": X, "y_test": Y[:5]}, "X_test has 12 rows but y_test has shape \\(5,\\)"),
    ({"X_test": X * np.nan, "y_test": Y}, "X_test contains NaN"),
    ({"X_test": X[:0], "y_test": Y[:0]}, "X_test is empty"),
    ({"X_test": X, "y_test": Y * 3}, "y_test must hold ±1"),
    ({"X_test": X, "y_test": np.array(list("ab" * 6))}, "y_test must be numeric"),
    ({"X_test": X}, "X_test and y_test go together"),
    ({"X_val": X, "y_val": Y[:3]}, "X_val has 12 rows but y_val"),
    ({"patience": 0, "X_val": X, "y_val": Y}, "patience must be a positive integer"),
    ({"patience": 2}, "patience needs a validation split"),
    ({"eval_every": 0}, "eval_every must be a positive integer"),
    ({"probe": X[:, :3], "probe_epochs": (0,)}, "probe has inputs of shape \\(3,\\)"),
    ({"probe": X * np.nan, "probe_epochs": (0,)}, "probe contains NaN"),
    ({"probe": X[:0], "probe_epochs": (0,)}, "probe is empty"),
    ({"probe": X, "probe_epochs": (-1,)}, "probe_epochs must hold integer epochs"),
    ({"probe": X, "probe_epochs": (0.5,)}, "probe_epochs must hold integer epochs"),
    ({"probe": X, "probe_epochs": (2,)}, "probe_epochs \\[2\\] go beyond epochs = 1"),
    ({"probe": X, "probe_epochs": 1}, "probe_epochs must be a sequence"),
    ({"probe_epochs": (0,)}, "probe_epochs are given but probe is None"),
    ({"probe": X, "probe_epochs": (0,), "probe_batch_size": 0},
     "probe_batch_size must be a positive integer"),
])
def test_fit_bad_arguments(change, match):
    with pytest.raises(ValueError, match=match):
        _fit(**change)


def test_fit_output_count_must_match_the_labels():
    with pytest.raises(ValueError, match="the network has 1 outputs but the labels need 3"):
        _fit(y_train=np.arange(12) % 3)


def test_fit_accepts_integral_floats_and_ranges():
    r = _fit(epochs=2.0, probe=X[:3], probe_epochs=range(0, 3))
    assert len(r.history) == 2 and sorted(r.probe_ntk) == [0, 1, 2]


def test_predict():
    init_fn, apply_fn, _ = ARCH
    params = init_fn(jax.random.PRNGKey(0), X.shape)[1]
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        train.predict(apply_fn, params, X, batch_size=0)
    with pytest.raises(ValueError, match="x contains NaN"):
        train.predict(apply_fn, params, X * np.nan)
    with pytest.raises(ValueError, match="x must have a batch axis"):
        train.predict(apply_fn, params, X[0])
    assert train.predict(apply_fn, params, X[:0]).shape == (0, 1)   # no inputs, no outputs
