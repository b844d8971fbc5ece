"""Finite networks trained with optax: the baseline the kernels are compared with.

The same architecture description that gives a kernel (``lantk.stax`` / ``lantk.archs``)
gives the finite network: its ``init_fn`` draws the weights, its ``apply_fn`` evaluates it.
Training minimises the mean squared error (spec §7) with Adam; binary tasks regress the
``±1`` labels with a scalar output, multi-class tasks regress centred one-hot targets with
one output per class. Training runs in float32 for speed (the kernels and the regression
path stay in float64; the NTK probes are float64, computed with JAX's 64-bit mode on whatever
the global setting); it is deterministic for a seed on the CPU.

Example:
    >>> from lantk import archs, data, train
    >>> t = data.binary_task("digits", (3, 8), n_train=40, n_test=20, flatten=True)
    >>> res = train.fit(archs.fc(depth=1, width=64), t.X_train, t.y_train, t.X_test, t.y_test,
    ...                 epochs=2, progress=False)
    >>> len(res.history)
    2
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lantk._checks import check_int, check_seed, encode_labels, no_progress, pad_rows
from lantk._x64 import x64
from lantk.regression import predict_labels

__all__ = ["TrainResult", "fit", "predict"]


@dataclass
class TrainResult:
    """What :func:`fit` returns.

    Attributes:
        params: the trained weights.
        history: one dict per epoch: ``epoch``, ``loss``, ``seconds``, ``val_acc`` (with a
            validation split); ``train_acc`` and ``test_acc`` in the last entry (of the weights
            kept) and every ``eval_every`` epochs.
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


def _targets(y: np.ndarray, name: str = "y_train"):
    """±1 labels -> (targets (n,1), binary=True); integer labels -> (centred one-hot, False),
    through the package's one label encoder (:func:`lantk._checks.encode_labels`)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-d vector of labels (±1 or class indices 0..C-1), "
                         f"got shape {y.shape}")
    lab = encode_labels(y, name)
    return lab.Y.reshape(len(y), -1).astype(np.float32), lab.binary


def _half_mse(out, Y, w=None):
    """The training loss: half the squared error summed over outputs, averaged over examples
    (with weights ``w``: over the examples of weight 1, those of weight 0 being padding)."""
    err = jnp.sum((out - Y) ** 2, axis=-1)
    return 0.5 * (jnp.mean(err) if w is None else jnp.sum(w * err) / jnp.sum(w))


def _accuracy(out: np.ndarray, y: np.ndarray, binary: bool) -> float:
    if binary:
        return float(np.mean(predict_labels(out[:, 0]) == y))  # f = 0 counts as +1
    return float(np.mean(np.argmax(out, axis=1) == y))


@x64
def predict(apply_fn, params, x, batch_size: int = 512) -> np.ndarray:
    """Network outputs on ``x`` in batches, as a float64 NumPy array (``(0, O)`` for no
    inputs)."""
    batch_size = check_int(batch_size, "batch_size")
    x = _inputs(x, "x")
    if len(x) == 0:
        out = jax.eval_shape(apply_fn, params, jax.ShapeDtypeStruct((1,) + x.shape[1:],
                                                                    jnp.float32))
        return np.zeros((0,) + tuple(out.shape[1:]))
    f = _jitted(apply_fn)
    outs = []
    for i in range(0, len(x), batch_size):
        chunk = x[i:i + batch_size]
        # a short last chunk is padded (copies of its last input) to a multiple of 16, so
        # that splits of similar sizes share their compiled programs (JAX's compilation
        # cache); the padded rows' outputs are dropped
        rows = min(batch_size, -(-len(chunk) // 16) * 16)
        outs.append(np.asarray(f(params, jnp.asarray(pad_rows(chunk, rows))))[:len(chunk)])
    return np.concatenate(outs).astype(np.float64)


_JITTED: collections.OrderedDict = collections.OrderedDict()   # id -> (apply_fn, jitted)


def _jitted(apply_fn):
    """``jax.jit(apply_fn)``, kept for the few networks used last: ``fit`` predicts on the
    validation split every epoch with the same network."""
    hit = _JITTED.get(id(apply_fn))
    if hit is not None and hit[0] is apply_fn:
        _JITTED.move_to_end(id(apply_fn))
        return hit[1]
    f = jax.jit(apply_fn)
    _JITTED[id(apply_fn)] = (apply_fn, f)   # holding apply_fn keeps its id unique
    while len(_JITTED) > 8:
        _JITTED.popitem(last=False)
    return f


def _padded_rows(m: int) -> int:
    """Rows of the training arrays as the compiled steps see them: ``m`` rounded up to a
    multiple of 256 (a power of two below 256), so that training sets of similar sizes share
    their compiled programs."""
    return max(1 << (m - 1).bit_length(), 1) if m <= 256 else -(-m // 256) * 256


def _inputs(X, name: str, dtype=np.float32) -> np.ndarray:
    """Inputs ``(n, ...)`` as a finite ``dtype`` array with a batch axis and features."""
    try:
        X = np.asarray(X, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a numeric array ({e})") from None
    if X.ndim < 2:
        raise ValueError(f"{name} must have a batch axis and features, shape (n, d) or "
                         f"(n, H, W, C); got shape {X.shape}")
    if 0 in X.shape[1:]:
        raise ValueError(f"{name} has no features (shape {X.shape})")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or inf")
    return X


def _probe(probe, probe_epochs, shape: tuple, epochs: int):
    """The probe inputs (float64, same input shape as X_train) and the set of epochs at
    which to record the empirical NTK, each an integer in ``[0, epochs]``."""
    try:
        wanted = [check_int(e, "probe_epochs", minimum=0) for e in probe_epochs]
    except TypeError:
        raise ValueError(f"probe_epochs must be a sequence of epochs, got {probe_epochs!r}") \
            from None
    except ValueError:
        raise ValueError(f"probe_epochs must hold integer epochs in [0, epochs], got "
                         f"{probe_epochs!r}") from None
    if any(e > epochs for e in wanted):
        raise ValueError(f"probe_epochs {sorted(wanted)} go beyond epochs = {epochs}")
    if probe is None:
        if wanted:
            raise ValueError("probe_epochs are given but probe is None: pass the probe inputs "
                             "on which to record the empirical NTK")
        return None, frozenset()
    p = _inputs(probe, "probe", np.float64)
    if p.shape[1:] != shape:
        raise ValueError(f"probe has inputs of shape {p.shape[1:]}, X_train {shape}")
    if len(p) == 0:
        raise ValueError("probe is empty")
    return p, frozenset(wanted)


def _eval_set(X, y, name: str, shape: tuple, binary: bool, n_outputs: int):
    """An evaluation split checked before any training: same input shape, finite, labels
    matching the training labels' kind."""
    if X is None and y is None:
        return None, None
    if X is None or y is None:
        raise ValueError(f"X_{name} and y_{name} go together: got only one of them")
    X = _inputs(X, f"X_{name}")
    if X.shape[1:] != shape:
        raise ValueError(f"X_{name} has inputs of shape {X.shape[1:]}, X_train {shape}")
    if len(X) == 0:
        raise ValueError(f"X_{name} is empty")
    y = np.asarray(y)
    if y.shape != (len(X),):
        raise ValueError(f"X_{name} has {len(X)} rows but y_{name} has shape {y.shape}")
    if y.dtype.kind not in "biuf":
        raise ValueError(f"y_{name} must be numeric (±1 or class indices), got dtype {y.dtype}")
    ok = (np.all(np.isin(y, (-1.0, 1.0))) if binary
          else np.all((np.mod(y, 1) == 0) & (y >= 0) & (y < n_outputs)))
    if not ok:
        kind = "±1" if binary else f"class indices 0..{n_outputs - 1}"
        raise ValueError(f"y_{name} must hold {kind}, like y_train")
    return X, y


AUGMENTATIONS = (None, "flip", "flip+shift")
"""The training-image augmentations :func:`fit` offers."""
MONITORS = ("accuracy", "loss")
"""What :func:`fit`'s stopping rule can watch on the validation split."""

SHIFT = 4
"""Largest translation (pixels, each spatial axis) of ``augment="flip+shift"``."""


def _augment(xb, key, augment):
    """Random left-right flips (and shifts) of a minibatch ``(B, H, W, C)``, traced."""
    if augment is None:
        return xb
    kf, ks = jax.random.split(key)
    flip = jax.random.bernoulli(kf, 0.5, (xb.shape[0],))
    xb = jnp.where(flip[:, None, None, None], xb[:, :, ::-1, :], xb)
    if augment == "flip+shift":
        h, w = xb.shape[1], xb.shape[2]
        padded = jnp.pad(xb, ((0, 0), (SHIFT, SHIFT), (SHIFT, SHIFT), (0, 0)))
        offsets = jax.random.randint(ks, (xb.shape[0], 2), 0, 2 * SHIFT + 1)
        crop = lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, img.shape[-1]))
        xb = jax.vmap(crop)(padded, offsets)
    return xb


@x64
def fit(arch, X_train, y_train, X_test=None, y_test=None, *, epochs: int = 10,
        batch_size: int = 128, lr: float = 3e-4, seed: int = 0, probe=None,
        probe_epochs=(), probe_batch_size: int | None = 256, X_val=None, y_val=None,
        patience: int | None = None, eval_every: int | None = None,
        augment: str | None = None, lr_decays: int = 0, decay_factor: float = 0.2,
        monitor: str = "accuracy", progress: bool = True) -> TrainResult:
    """Train a finite network with MSE loss and Adam.

    The training data are copied to the device once; each epoch's permutation is drawn on
    the device, each compiled step gathers its minibatch there, and the losses are summed
    there, so the steps are dispatched without waiting and the host waits for the device
    once per epoch, not once per step. (Not ``lax.scan`` over the minibatches: on the CPU,
    XLA runs the convolutions inside a loop body about 40x slower — measured 30 s against
    0.8 s for an epoch of ``paper_cnn(1)`` on 256 images, ``benchmarks/bench_train.py``.) Accuracies are computed only when needed: on
    the validation split every epoch when one is given, on the training and test sets after
    the last epoch (and every ``eval_every`` epochs if asked).

    **Stopping rule.** Without a validation split, training runs ``epochs`` epochs. With one
    (``X_val``, ``y_val``), the weights of the epoch with the best validation score
    (``monitor``: the accuracy, or the mean squared error the network is trained on; the
    earliest among ties) are kept, and training stops once ``patience`` epochs in a row
    brought no improvement (``patience=None``: run all ``epochs``, still keep the best).
    With ``lr_decays = k > 0`` the first ``k`` such plateaus do not stop training: each
    multiplies the learning rate by ``decay_factor`` and restarts the count (a
    reduce-on-plateau schedule); the ``k + 1``-th stops it.
    ``config["stopping"]`` states the rule used, ``config["best_epoch"]`` the epoch kept.

    Args:
        arch: ``(init_fn, apply_fn, kernel_fn)`` from ``lantk.stax`` / ``lantk.archs``. Its
            output width must be 1 for binary labels and C for C classes.
        X_train, y_train: inputs and labels (``±1`` or ``0..C-1``).
        X_test, y_test: optional test set, scored with the final (kept) weights.
        epochs, batch_size, lr: Adam on minibatches reshuffled every epoch; ``epochs`` is
            the maximum when a validation split stops training earlier.
        seed: seeds both the initial weights and the minibatch order.
        probe: optional inputs on which to record the empirical NTK.
        probe_epochs: epochs after which to record it (0 = at initialisation).
        probe_batch_size: the probe's Jacobians are held this many inputs at a time (see
            :func:`lantk.empirical.empirical_ntk`); ``None``: all at once (faster, but the
            memory grows with probe size x parameter count).
        X_val, y_val: optional validation split for the stopping rule.
        patience: epochs without a better validation accuracy before stopping.
        eval_every: also score the training and test sets every this many epochs.
        augment: ``None`` (the images as given), ``"flip"`` (each training image of each
            minibatch mirrored left-right with probability 1/2) or ``"flip+shift"`` (also
            translated by up to :data:`SHIFT` pixels along each spatial axis, the uncovered
            border filled with zeros, i.e. the mean of standardised pixels). Drawn on the
            device, inside the compiled step, from ``seed``; images ``(N, H, W, C)`` only.
            Validation, test and probe images are never augmented.
        lr_decays: plateaus of ``patience`` epochs that lower the learning rate instead of
            stopping (needs a validation split and ``patience``).
        decay_factor: the factor, in ``(0, 1)``, applied to the learning rate at each of them.
        monitor: ``"accuracy"`` (default) or ``"loss"``: what "best on the validation split"
            means. The loss is the smoother of the two on a small split (an accuracy on 100
            images moves in steps of 1 %).
        progress: a tqdm bar over epochs.

    Returns:
        :class:`TrainResult`.

    Raises:
        ValueError: bad input (named), or a loss that became NaN or infinite (the learning
            rate is too large for this network).
    """
    from tqdm import tqdm

    if isinstance(arch, (str, bytes)) or not hasattr(arch, "__len__") or len(arch) != 3 or \
            not (callable(arch[0]) and callable(arch[1])):
        raise ValueError("arch must be an (init_fn, apply_fn, kernel_fn) triple from lantk.stax "
                         f"or lantk.archs, got {type(arch).__name__}")
    init_fn, apply_fn, _ = arch
    X_train = _inputs(X_train, "X_train")
    if len(X_train) == 0:
        raise ValueError("X_train is empty")
    y_train = np.asarray(y_train)
    if y_train.dtype.kind not in "biuf":
        raise ValueError(f"y_train must be numeric (±1 or class indices 0..C-1), got dtype "
                         f"{y_train.dtype}")
    if len(X_train) != len(y_train):
        raise ValueError(f"X_train has {len(X_train)} rows but y_train has {len(y_train)} labels")
    epochs = check_int(epochs, "epochs")
    batch_size = check_int(batch_size, "batch_size")
    if patience is not None:
        patience = check_int(patience, "patience")
        if X_val is None:
            raise ValueError("patience needs a validation split (X_val, y_val)")
    if eval_every is not None:
        eval_every = check_int(eval_every, "eval_every")
    lr_decays = check_int(lr_decays, "lr_decays", minimum=0)
    if lr_decays and not patience:
        raise ValueError("lr_decays needs a validation split and a patience (the plateaus it "
                         "counts)")
    try:
        decay_factor = float(decay_factor)
    except (TypeError, ValueError):
        raise ValueError(f"decay_factor must be a number in (0, 1), got {decay_factor!r}") from None
    if not 0 < decay_factor < 1:
        raise ValueError(f"decay_factor must be in (0, 1), got {decay_factor}")
    if monitor not in MONITORS:
        raise ValueError(f"monitor must be one of {MONITORS}, got {monitor!r}")
    try:
        lr = float(lr)
    except (TypeError, ValueError):
        raise ValueError(f"lr must be a positive number, got {lr!r}") from None
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr}")
    seed = check_seed(seed)
    if augment not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {augment!r}")
    if augment is not None and X_train.ndim != 4:
        raise ValueError(f"augment={augment!r} needs images (N, H, W, C), got X_train of "
                         f"shape {X_train.shape}")
    probe, probe_epochs = _probe(probe, probe_epochs, X_train.shape[1:], epochs)
    probe_batch_size = check_int(probe_batch_size, "probe_batch_size", allow_none=True)
    Y, binary = _targets(y_train)
    X_test, y_test = _eval_set(X_test, y_test, "test", X_train.shape[1:], binary, Y.shape[1])
    X_val, y_val = _eval_set(X_val, y_val, "val", X_train.shape[1:], binary, Y.shape[1])
    if X_val is not None:   # the validation targets, encoded as the training targets
        Y_val = encode_labels(y_val, "y_val", require_two_classes=False, multiclass=not binary,
                              n_classes=None if binary else Y.shape[1]).Y.reshape(len(y_val), -1)
    key = jax.random.PRNGKey(seed)
    out_shape, params = init_fn(key, (-1,) + X_train.shape[1:])
    if out_shape[-1] != Y.shape[1]:
        raise ValueError(f"the network has {out_shape[-1]} outputs but the labels need {Y.shape[1]}")
    params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, jnp.float32), params)
    # the learning rate is a hyperparameter of the optimiser state, so lowering it between
    # epochs (lr_decays) changes no compiled program
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=lr)
    opt_state = opt.init(params)

    n = len(X_train)
    bs = min(batch_size, n)
    n_full, rest = divmod(n, bs)
    # on the device once, padded with rows that no minibatch draws, so that the compiled
    # steps depend on the rows only through _padded_rows (training sets of similar sizes,
    # e.g. the class pairs of a chapter, then share them through JAX's compilation cache)
    n_pad = _padded_rows(n_full * bs + (bs if rest else 0))
    X_dev, Y_dev = jnp.asarray(pad_rows(X_train, n_pad)), jnp.asarray(pad_rows(Y, n_pad))

    def loss_fn(p, xb, yb, k, w):
        return _half_mse(apply_fn(p, _augment(xb, k, augment)), yb, w)

    @jax.jit
    def step(p, s, total, Xd, Yd, order, start, count, k):
        # count < bs: the last, partial minibatch (the rest of the order is padding)
        idx = jax.lax.dynamic_slice_in_dim(order, start, bs)
        w = (jnp.arange(bs) < count).astype(jnp.float32)
        loss, g = jax.value_and_grad(loss_fn)(p, Xd[idx], Yd[idx], k, w)
        updates, s = opt.update(g, s, p)
        return optax.apply_updates(p, updates), s, total + loss * count

    permutation = jax.jit(lambda k: jnp.pad(jax.random.permutation(k, n), (0, n_pad - n)))
    step_keys = jax.jit(lambda k: jax.random.split(jax.random.fold_in(k, 1), n_full + 1))
    full, part = jnp.float32(bs), jnp.float32(rest)

    def run_epoch(p, s, k):
        order = permutation(k)
        ks = step_keys(k)
        total = jnp.zeros((), jnp.float32)
        for b in range(n_full):  # dispatched asynchronously: no host sync in this loop
            p, s, total = step(p, s, total, X_dev, Y_dev, order, b * bs, full, ks[b])
        if rest:
            p, s, total = step(p, s, total, X_dev, Y_dev, order, n_full * bs, part, ks[n_full])
        return p, s, total / n

    result = TrainResult(params=params, config={
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "optimizer": "adam",
        "loss": "mse", "n_train": n, "dtype": "float32", "augment": augment,
        "lr_decays": lr_decays, "decay_factor": decay_factor, "lr_decayed_at": [],
        "monitor": monitor,
        "stopping": (f"best validation {monitor}, patience {patience}, at most {epochs} epochs"
                     + (f", the learning rate times {decay_factor} at each of the first "
                        f"{lr_decays} plateaus" if lr_decays else "")
                     if X_val is not None and patience else
                     f"best validation {monitor} over {epochs} epochs" if X_val is not None
                     else f"fixed: {epochs} epochs")})

    def record_probe(epoch, p):
        if probe is not None and epoch in probe_epochs:
            from lantk.empirical import empirical_ntk

            p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), p)
            result.probe_ntk[epoch] = np.asarray(
                empirical_ntk(apply_fn, p64, jnp.asarray(probe, jnp.float64),
                              batch_size=probe_batch_size))

    record_probe(0, params)
    best = (-np.inf, 0, params, None)  # (validation score, epoch, weights, accuracy)
    since_best = 0
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), epochs)
    for epoch in tqdm(range(1, epochs + 1), desc="training", disable=no_progress(progress)):
        t0 = time.perf_counter()
        params, opt_state, loss = run_epoch(params, opt_state, keys[epoch - 1])
        loss = float(loss)  # the one host synchronisation of the epoch
        if not np.isfinite(loss):
            raise ValueError(f"training diverged: the loss is {loss} after epoch {epoch} "
                             f"(lr={lr}); lower the learning rate")
        entry = {"epoch": epoch, "loss": loss}
        if X_val is not None:
            out_val = predict(apply_fn, params, X_val)
            entry["val_acc"] = _accuracy(out_val, y_val, binary)
            entry["val_loss"] = float(_half_mse(out_val, Y_val))
            score = entry["val_acc"] if monitor == "accuracy" else -entry["val_loss"]
            if score > best[0]:
                best, since_best = (score, epoch, params, entry["val_acc"]), 0
            else:
                since_best += 1
        if eval_every and epoch % eval_every == 0 and epoch != epochs:
            entry["train_acc"] = _accuracy(predict(apply_fn, params, X_train), y_train, binary)
            if X_test is not None:
                entry["test_acc"] = _accuracy(predict(apply_fn, params, X_test), y_test, binary)
        entry["seconds"] = time.perf_counter() - t0
        result.history.append(entry)
        record_probe(epoch, params)
        if patience and since_best >= patience:
            if len(result.config["lr_decayed_at"]) >= lr_decays:
                break
            result.config["lr_decayed_at"].append(epoch)
            opt_state.hyperparams["learning_rate"] = jnp.asarray(
                opt_state.hyperparams["learning_rate"] * decay_factor,
                opt_state.hyperparams["learning_rate"].dtype)
            since_best = 0
    if X_val is not None:
        params = best[2]
        result.config["best_epoch"] = best[1]
        result.config["best_val_acc"] = best[3]
    result.config["epochs_run"] = len(result.history)
    last = result.history[-1]
    last["train_acc"] = _accuracy(predict(apply_fn, params, X_train), y_train, binary)
    if X_test is not None:
        result.test_output = predict(apply_fn, params, X_test)
        last["test_acc"] = _accuracy(result.test_output, y_test, binary)
    result.params = params
    return result
