import numpy as np
import pytest

from lantk import archs, data, train


@pytest.fixture(scope="module")
def task():
    return data.binary_task("digits", classes=(0, 1), n_train=64, n_test=40, seed=0, flatten=True)


def test_training_learns_and_is_deterministic(task):
    kw = {"epochs": 8, "batch_size": 16, "lr": 3e-3, "seed": 3, "progress": False}
    r1 = train.fit(archs.fc(depth=1, width=128), task.X_train, task.y_train, task.X_test, task.y_test, **kw)
    r2 = train.fit(archs.fc(depth=1, width=128), task.X_train, task.y_train, task.X_test, task.y_test, **kw)
    assert [h["loss"] for h in r1.history] == [h["loss"] for h in r2.history]
    np.testing.assert_array_equal(r1.test_output, r2.test_output)
    assert r1.history[-1]["loss"] < 0.5 * r1.history[0]["loss"]
    assert r1.final("test_acc") >= 0.9          # 0 vs 1 digits are easy
    r3 = train.fit(archs.fc(depth=1, width=128), task.X_train, task.y_train, **{**kw, "seed": 4})
    assert r3.history[0]["loss"] != r1.history[0]["loss"]


def test_probe_ntk_at_init_matches_empirical(task):
    import jax
    import jax.numpy as jnp

    from lantk.empirical import empirical_ntk

    arch = archs.fc(depth=1, width=32)
    probe = task.X_test[:5]
    r = train.fit(arch, task.X_train, task.y_train, epochs=1, seed=0, probe=probe, probe_epochs=(0, 1),
                  progress=False)
    assert set(r.probe_ntk) == {0, 1}
    _, params = arch[0](jax.random.PRNGKey(0), (-1, probe.shape[1]))
    params = jax.tree_util.tree_map(lambda p: jnp.asarray(jnp.asarray(p, jnp.float32), jnp.float64), params)
    np.testing.assert_allclose(r.probe_ntk[0], np.asarray(empirical_ntk(arch[1], params, probe)), rtol=1e-10)
    assert not np.allclose(r.probe_ntk[0], r.probe_ntk[1])   # the kernel moves during training


def test_multiclass_needs_matching_outputs(task):
    t = data.multiclass_task("digits", classes=(0, 1, 2), n_train=30, n_test=9, flatten=True)
    with pytest.raises(ValueError, match="1 outputs but the labels need 3"):
        train.fit(archs.fc(depth=1, width=16), t.X_train, t.y_train, epochs=1, progress=False)


def test_bad_input(task):
    X = task.X_train.copy()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train.fit(archs.fc(depth=1, width=8), X, task.y_train, epochs=1, progress=False)
    with pytest.raises(ValueError, match="rows but y_train has"):
        train.fit(archs.fc(depth=1, width=8), task.X_train, task.y_train[:-1], epochs=1, progress=False)
    with pytest.raises(ValueError, match="both -1 and \\+1"):
        train.fit(archs.fc(depth=1, width=8), task.X_train, np.ones(len(task.y_train)), epochs=1, progress=False)


def test_multiclass_learns_centred_one_hot_targets_with_argmax_accuracy():
    """Integer labels 0..C-1: the targets are the centred one-hot rows of spec §1 (the same
    as data.one_hot_centred), the loss is their MSE and accuracy is the argmax's."""
    t = data.multiclass_task("digits", classes=(0, 1, 2), n_train=60, n_test=30, seed=1)
    Y, binary = train._targets(t.y_train)
    assert not binary
    np.testing.assert_allclose(Y, data.one_hot_centred(t.y_train, 3), rtol=1e-7)
    arch = archs.cnn(1, width=16, outputs=3, readout_W_std=0.1)
    r = train.fit(arch, t.X_train, t.y_train, t.X_test, t.y_test, epochs=10, batch_size=16, lr=1e-2,
                  seed=0, progress=False)
    # small readout: outputs start near 0, so the first loss is near 0.5 * mean |Y_i|^2 = 1/3
    assert abs(r.history[0]["loss"] - 0.5 * (1 - 1 / 3)) < 0.1
    assert r.history[-1]["loss"] < 0.7 * r.history[0]["loss"]
    assert r.test_output.shape == (30, 3)
    acc = float(np.mean(np.argmax(r.test_output, axis=1) == t.y_test))
    assert r.final("test_acc") == acc >= 0.8
    pred = train.predict(arch[1], r.params, t.X_test)
    np.testing.assert_allclose(pred, r.test_output, rtol=1e-6)
