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


@pytest.mark.usefixtures("x64")  # the reference parameters cast to float64 with jnp
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


def test_compiled_epoch_is_the_minibatch_loop(task):
    """One epoch as one compiled program does exactly what a Python loop of Adam steps over
    the same permutation does (a last, smaller minibatch included)."""
    import jax
    import jax.numpy as jnp
    import optax

    arch = archs.fc(depth=1, width=16)
    n, bs, lr, seed = 50, 16, 1e-2, 2  # 3 full minibatches and one of 2
    X, y = task.X_train[:n], task.y_train[:n]
    r = train.fit(arch, X, y, epochs=1, batch_size=bs, lr=lr, seed=seed, progress=False)

    _, p = arch[0](jax.random.PRNGKey(seed), (-1, X.shape[1]))
    p = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), p)
    opt = optax.adam(lr)
    s = opt.init(p)
    order = np.asarray(jax.random.permutation(jax.random.split(jax.random.PRNGKey(seed + 1), 1)[0], n))
    Y = jnp.asarray(y, jnp.float32)[:, None]
    total = 0.0
    for i in range(0, n, bs):
        b = order[i:i + bs]
        loss, g = jax.value_and_grad(
            lambda q: 0.5 * jnp.mean(jnp.sum((arch[1](q, jnp.asarray(X[b])) - Y[b]) ** 2, -1)))(p)
        u, s = opt.update(g, s, p)
        p = optax.apply_updates(p, u)
        total += float(loss) * len(b)
    for a, b in zip(jax.tree_util.tree_leaves(r.params), jax.tree_util.tree_leaves(p)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-6)
    assert abs(r.history[0]["loss"] - total / n) < 1e-5


def test_validation_split_keeps_the_best_epoch_and_stops(task):
    kw = {"batch_size": 16, "lr": 3e-2, "seed": 0, "progress": False}
    X, y = task.X_train, task.y_train
    r = train.fit(archs.fc(depth=1, width=32), X[:40], y[:40], task.X_test, task.y_test,
                  X_val=X[40:], y_val=y[40:], epochs=60, patience=3, **kw)
    best = max(h["val_acc"] for h in r.history)
    first_best = next(h["epoch"] for h in r.history if h["val_acc"] == best)
    assert r.config["best_epoch"] == first_best and r.config["best_val_acc"] == best
    # it stopped three epochs after the last improvement, long before 60
    assert r.config["epochs_run"] == first_best + 3 < 60
    assert "patience 3" in r.config["stopping"]
    # the weights kept are those of the best epoch: their validation accuracy is the best one
    val = np.mean(train.predict(archs.fc(depth=1, width=32)[1], r.params, X[40:])[:, 0]
                  * y[40:] > 0)
    assert abs(val - best) < 1e-12


def test_monitor_loss_keeps_the_epoch_of_the_lowest_validation_loss(task):
    kw = {"batch_size": 16, "lr": 3e-2, "seed": 0, "progress": False}
    X, y = task.X_train, task.y_train
    arch = archs.fc(depth=1, width=32)
    r = train.fit(arch, X[:40], y[:40], X_val=X[40:], y_val=y[40:], epochs=30, patience=4,
                  monitor="loss", **kw)
    losses = [h["val_loss"] for h in r.history]
    best = int(np.argmin(losses)) + 1
    assert r.config["best_epoch"] == best and r.config["epochs_run"] == best + 4
    assert "best validation loss" in r.config["stopping"]
    # the kept weights have that loss, computed here from their outputs and the ±1 labels
    out = train.predict(arch[1], r.params, X[40:])[:, 0]
    assert abs(0.5 * np.mean((out - y[40:]) ** 2) - min(losses)) < 1e-9
    assert r.config["best_val_acc"] == r.history[best - 1]["val_acc"]


def test_lr_decays_lower_the_rate_on_plateaus_instead_of_stopping(task):
    kw = {"batch_size": 16, "lr": 3e-2, "seed": 0, "progress": False}
    X, y = task.X_train, task.y_train
    common = dict(X_val=X[40:], y_val=y[40:], epochs=60, patience=3, **kw)
    plain = train.fit(archs.fc(depth=1, width=32), X[:40], y[:40], **common)
    r = train.fit(archs.fc(depth=1, width=32), X[:40], y[:40], lr_decays=2, decay_factor=0.5,
                  **common)
    at = r.config["lr_decayed_at"]
    # the same run up to the first plateau, which now lowers the rate instead of stopping
    assert at and at[0] == plain.config["epochs_run"]
    assert [h["loss"] for h in r.history[:at[0]]] == [h["loss"] for h in plain.history]
    assert len(at) <= 2 and r.config["epochs_run"] > plain.config["epochs_run"]
    if len(at) == 2 and r.config["epochs_run"] < 60:   # stopped by the third plateau
        best = r.config["best_epoch"]
        assert r.config["epochs_run"] == max(at[1], best) + 3
    assert "times 0.5 at each of the first 2 plateaus" in r.config["stopping"]


@pytest.mark.parametrize("kwargs, match", [
    ({"lr_decays": 1}, "lr_decays needs a validation split"),
    ({"lr_decays": -1}, "lr_decays must be"),
    ({"decay_factor": 1.5}, r"decay_factor must be in \(0, 1\)"),
    ({"monitor": "auc"}, "monitor must be one of"),
    ({"epochs": 2.5}, "epochs must be a positive integer"),
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"lr": float("nan")}, "lr must be a positive finite number"),
    ({"lr": -1.0}, "lr must be a positive finite number"),
    ({"lr": "fast"}, "lr must be a positive number"),
    ({"patience": 2}, "patience needs a validation split"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"augment": "rotate"}, "augment must be one of"),
    ({"augment": "flip"}, r"needs images \(N, H, W, C\)"),  # the digits here are flat
])
def test_bad_training_settings_are_named(task, kwargs, match):
    with pytest.raises(ValueError, match=match):
        train.fit(archs.fc(depth=1, width=8), task.X_train, task.y_train, **{"epochs": 1, **kwargs},
                  progress=False)


def test_bad_evaluation_sets_fail_before_training(task):
    arch = archs.fc(depth=1, width=8)
    X, y, Xt, yt = task.X_train, task.y_train, task.X_test, task.y_test
    with pytest.raises(ValueError, match="y_train must be numeric"):
        train.fit(arch, X, np.where(y > 0, "a", "b"), epochs=1, progress=False)
    with pytest.raises(ValueError, match="X_test has inputs of shape \\(30,\\), X_train \\(64,\\)"):
        train.fit(arch, X, y, Xt[:, :30], yt, epochs=1, progress=False)
    with pytest.raises(ValueError, match="X_test has 40 rows but y_test has shape \\(5,\\)"):
        train.fit(arch, X, y, Xt, yt[:5], epochs=1, progress=False)
    bad = Xt.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="X_test contains NaN"):
        train.fit(arch, X, y, bad, yt, epochs=1, progress=False)
    with pytest.raises(ValueError, match="y_test must hold ±1"):
        train.fit(arch, X, y, Xt, yt * 2, epochs=1, progress=False)
    with pytest.raises(ValueError, match="go together"):
        train.fit(arch, X, y, Xt, None, epochs=1, progress=False)


def test_a_diverging_loss_is_an_error(task):
    X = task.X_train * 1e25  # finite inputs whose squared outputs overflow float32
    with pytest.raises(ValueError, match="training diverged"):
        train.fit(archs.fc(depth=2, width=64), X, task.y_train, epochs=1, progress=False)


def test_augment_flips_and_shifts_each_image_and_nothing_else():
    """Each augmented image is its input, possibly mirrored left-right, translated by at most
    SHIFT pixels with zeros filled in; both flips and several shifts occur in a batch."""
    import jax

    rng = np.random.default_rng(0)
    xb = rng.standard_normal((48, 6, 5, 2)).astype(np.float32) + 3.0  # no zeros inside
    key = jax.random.PRNGKey(1)
    assert train._augment(xb, key, None) is xb
    flipped = np.asarray(train._augment(xb, key, "flip"))
    same = [np.array_equal(o, x) for o, x in zip(flipped, xb)]
    mirror = [np.array_equal(o, x[:, ::-1]) for o, x in zip(flipped, xb)]
    assert all(a or b for a, b in zip(same, mirror))
    assert 10 < sum(mirror) < 38  # about half, out of 48
    s = train.SHIFT
    shifted = np.asarray(train._augment(xb, key, "flip+shift"))
    seen = set()
    for o, x in zip(shifted, xb):
        matches = []
        for m, img in ((0, x), (1, x[:, ::-1])):
            pad = np.pad(img, ((s, s), (s, s), (0, 0)))
            for dy in range(2 * s + 1):
                for dx in range(2 * s + 1):
                    if np.array_equal(o, pad[dy:dy + 6, dx:dx + 5]):
                        matches.append((m, dy, dx))
        assert matches, "an augmented image is no flip/shift of its input"
        seen.update(matches)
    assert len({(dy, dx) for _, dy, dx in seen}) > 10


def test_fit_with_augmentation_learns_and_records_it():
    task = data.binary_task("digits", classes=(0, 1), n_train=64, n_test=40, seed=0)
    X = task.X_train.reshape(-1, 8, 8, 1)
    Xt = task.X_test.reshape(-1, 8, 8, 1)
    arch = archs.cnn(1, "flatten", width=8)
    kw = dict(epochs=6, batch_size=16, lr=1e-2, seed=0, progress=False)
    r = train.fit(arch, X, task.y_train, Xt, task.y_test, augment="flip+shift", **kw)
    assert r.config["augment"] == "flip+shift"
    assert r.history[-1]["loss"] < r.history[0]["loss"]
    r0 = train.fit(arch, X, task.y_train, Xt, task.y_test, **kw)
    assert r0.config["augment"] is None
    assert r0.history[0]["loss"] != r.history[0]["loss"]  # the minibatches differed


def test_compiled_programs_see_padded_sizes_and_predict_drops_the_padding(task):
    """Training sets of similar sizes share the compiled step (rows padded to _padded_rows,
    never drawn), and predict pads its last chunk without changing any real row's output."""
    import jax

    for m in (1, 5, 16, 200, 256, 257, 944, 979, 1024, 4000):
        p = train._padded_rows(m)
        assert p >= m and (p & (p - 1) == 0 if m <= 256 else p % 256 == 0)
    assert train._padded_rows(912 + 32) == train._padded_rows(947 + 32) == 1024
    arch = archs.fc(depth=1, width=8)
    _, params = arch[0](jax.random.PRNGKey(0), (-1, task.X_train.shape[1]))
    x = task.X_train[:37]
    want = np.asarray(jax.jit(arch[1])(params, np.asarray(x, np.float32)))
    for bs in (16, 37, 512):
        np.testing.assert_allclose(train.predict(arch[1], params, x, batch_size=bs), want,
                                   rtol=1e-6, atol=1e-6)
