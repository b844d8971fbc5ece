"""Finite networks trained with optax: the baseline the kernels are compared with.

The same architecture description that gives a kernel (``lantk.stax`` / ``lantk.archs``)
gives the finite network: its ``init_fn`` draws the weights, its ``apply_fn`` evaluates it.
Training minimises the mean squared error (spec §7) with Adam; binary tasks regress the
``±1`` labels with a scalar output, multi-class tasks regress centred one-hot targets with
one output per class. Training runs in float32 for speed (the kernels and the regression
path stay in float64); it is deterministic for a seed on the CPU.

Example:
    >>> from lantk import archs, data, train
    >>> t = data.binary_task("digits", (3, 8), n_train=40, n_test=20, flatten=True)
    >>> res = train.fit(archs.fc(depth=1, width=64), t.X_train, t.y_train, t.X_test, t.y_test,
    ...                 epochs=2, progress=False)
    >>> len(res.history)
    2
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lantk._checks import no_progress
from lantk.regression import predict_labels

__all__ = ["TrainResult", "fit", "predict"]


@dataclass
class TrainResult:
    """What :func:`fit` returns.

    Attributes:
        params: the trained weights.
        history: one dict per epoch: ``epoch``, ``loss``, ``train_acc``, ``test_acc``, ``seconds``.
        probe_ntk: ``{epoch: empirical NTK on the probe inputs}`` (epoch 0 = initialisation).
        test_output: the trained network's outputs on ``X_test`` (``None`` without a test set).
        config: the training configuration (for results files).
    """

    params: object
    history: list = field(default_factory=list)
    probe_ntk: dict = field(default_factory=dict)
    test_output: np.ndarray | None = None
    config: dict = field(default_factory=dict)

    def final(self, key: str = "test_acc") -> float:
        return float(self.history[-1][key])


def _targets(y: np.ndarray):
    """±1 labels -> (targets (n,1), binary=True); integer labels -> (centred one-hot, False)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-d, got shape {y.shape}")
    vals = set(np.unique(y).tolist())
    if vals <= {-1.0, 1.0}:
        if len(vals) != 2:
            raise ValueError("binary labels must contain both -1 and +1")
        return y.astype(np.float32)[:, None], True
    if not np.all(np.equal(np.mod(y, 1), 0)) or y.min() < 0:
        raise ValueError("labels must be ±1 (binary) or class indices 0..C-1 (multi-class)")
    C = int(y.max()) + 1
    Y = np.full((len(y), C), -1.0 / C, dtype=np.float32)
    Y[np.arange(len(y)), y.astype(int)] += 1.0
    return Y, False


def _accuracy(out: np.ndarray, y: np.ndarray, binary: bool) -> float:
    if binary:
        return float(np.mean(predict_labels(out[:, 0]) == y))  # f = 0 counts as +1
    return float(np.mean(np.argmax(out, axis=1) == y))


def predict(apply_fn, params, x, batch_size: int = 512) -> np.ndarray:
    """Network outputs on ``x`` in batches, as a float64 NumPy array."""
    f = jax.jit(apply_fn)
    outs = [np.asarray(f(params, jnp.asarray(x[i:i + batch_size], jnp.float32)))
            for i in range(0, len(x), batch_size)]
    return np.concatenate(outs).astype(np.float64)


def fit(arch, X_train, y_train, X_test=None, y_test=None, *, epochs: int = 10,
        batch_size: int = 128, lr: float = 3e-4, seed: int = 0, probe=None,
        probe_epochs=(), probe_batch_size: int | None = 256,
        progress: bool = True) -> TrainResult:
    """Train a finite network with MSE loss and Adam.

    Args:
        arch: ``(init_fn, apply_fn, kernel_fn)`` from ``lantk.stax`` / ``lantk.archs``. Its
            output width must be 1 for binary labels and C for C classes.
        X_train, y_train: inputs and labels (``±1`` or ``0..C-1``).
        X_test, y_test: optional evaluation set, scored after every epoch.
        epochs, batch_size, lr: Adam on minibatches reshuffled every epoch.
        seed: seeds both the initial weights and the minibatch order.
        probe: optional inputs on which to record the empirical NTK.
        probe_epochs: epochs after which to record it (0 = at initialisation).
        probe_batch_size: the probe's Jacobians are held this many inputs at a time (see
            :func:`lantk.empirical.empirical_ntk`); ``None``: all at once (faster, but the
            memory grows with probe size x parameter count).
        progress: a tqdm bar over epochs.

    Returns:
        :class:`TrainResult`.
    """
    from tqdm import tqdm

    init_fn, apply_fn, _ = arch
    X_train = np.asarray(X_train, dtype=np.float32)
    if not np.all(np.isfinite(X_train)):
        raise ValueError("X_train contains NaN or inf")
    if len(X_train) != len(y_train):
        raise ValueError(f"X_train has {len(X_train)} rows but y_train has {len(y_train)} labels")
    if epochs < 1 or batch_size < 1:
        raise ValueError("epochs and batch_size must be >= 1")
    Y, binary = _targets(y_train)
    key = jax.random.PRNGKey(seed)
    out_shape, params = init_fn(key, (-1,) + X_train.shape[1:])
    if out_shape[-1] != Y.shape[1]:
        raise ValueError(f"the network has {out_shape[-1]} outputs but the labels need {Y.shape[1]}")
    params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, jnp.float32), params)
    opt = optax.adam(lr)
    opt_state = opt.init(params)

    def loss_fn(p, xb, yb):
        return 0.5 * jnp.mean(jnp.sum((apply_fn(p, xb) - yb) ** 2, axis=-1))

    @jax.jit
    def step(p, s, xb, yb):
        loss, g = jax.value_and_grad(loss_fn)(p, xb, yb)
        updates, s = opt.update(g, s, p)
        return optax.apply_updates(p, updates), s, loss

    result = TrainResult(params=params, config={
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "optimizer": "adam", "loss": "mse",
        "n_train": len(X_train), "dtype": "float32"})

    def record_probe(epoch, p):
        if probe is not None and epoch in set(probe_epochs):
            from lantk.empirical import empirical_ntk

            p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), p)
            result.probe_ntk[epoch] = np.asarray(
                empirical_ntk(apply_fn, p64, jnp.asarray(probe, jnp.float64),
                              batch_size=probe_batch_size))

    record_probe(0, params)
    rng = np.random.default_rng(seed)
    n = len(X_train)
    for epoch in tqdm(range(1, epochs + 1), desc="training", disable=no_progress(progress)):
        t0 = time.perf_counter()
        order = rng.permutation(n)
        losses = []
        for i in range(0, n, batch_size):
            b = order[i:i + batch_size]
            params, opt_state, loss = step(params, opt_state, X_train[b], Y[b])
            losses.append(float(loss) * len(b))
        entry = {"epoch": epoch, "loss": sum(losses) / n,
                     "train_acc": _accuracy(predict(apply_fn, params, X_train), np.asarray(y_train), binary)}
        if X_test is not None:
            result.test_output = predict(apply_fn, params, X_test)
            entry["test_acc"] = _accuracy(result.test_output, np.asarray(y_test), binary)
        entry["seconds"] = time.perf_counter() - t0
        result.history.append(entry)
        record_probe(epoch, params)
    result.params = params
    return result
