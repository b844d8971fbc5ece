"""The experiment protocol of the book (spec §7): methods compared on the same test points.

A *method* turns train/validation/test kernel blocks into test predictions. The label-aware
methods choose their strength ``c`` on the validation split (carved from the training set),
never on the test set. Differences between methods are reported as paired differences on the
same test points, with a confidence interval.

Example:
    >>> import numpy as np
    >>> from lantk import experiments
    >>> a = np.array([1, 1, 0, 1]); b = np.array([1, 0, 0, 1])
    >>> experiments.paired_difference(a, b)["mean"]
    0.25
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
from scipy import stats

from lantk import label_aware, regression

__all__ = ["HR_METHODS", "KernelBlocks", "closed_form_blocks", "evaluate_methods", "kernel_blocks",
           "paired_difference", "unit_norm", "width_sweep"]

HR_METHODS = ("kr-v1", "kr-v2", "fjlt-v1", "fjlt-v2")


@dataclass
class KernelBlocks:
    """The kernel on a task: train-train, validation-train and test-train blocks (float64)."""

    H: np.ndarray
    H_val: np.ndarray
    H_test: np.ndarray


def kernel_blocks(kernel_fn, task, get: str = "ntk", **kwargs) -> KernelBlocks:
    """Compute the three blocks of a task's kernel with :func:`lantk.kernels.kernel_matrix`."""
    from lantk.kernels import kernel_matrix

    H = kernel_matrix(kernel_fn, task.X_train, None, get=get, **kwargs)
    H_val = (kernel_matrix(kernel_fn, task.X_val, task.X_train, get=get, **kwargs)
             if len(task.X_val) else np.zeros((0, len(task.X_train))))
    H_test = kernel_matrix(kernel_fn, task.X_test, task.X_train, get=get, **kwargs)
    return KernelBlocks(np.asarray(H, np.float64), np.asarray(H_val, np.float64),
                        np.asarray(H_test, np.float64))


def closed_form_blocks(kernel, task) -> KernelBlocks:
    """The three blocks of a kernel given as a NumPy function ``kernel(x1, x2)`` (``x2=None``
    for the symmetric train-train block), e.g. :func:`lantk.archs.two_layer_relu_kernel`."""
    H = np.asarray(kernel(task.X_train, None), np.float64)
    H_val = (np.asarray(kernel(task.X_val, task.X_train), np.float64) if len(task.X_val)
             else np.zeros((0, len(task.X_train))))
    return KernelBlocks(H, H_val, np.asarray(kernel(task.X_test, task.X_train), np.float64))


def unit_norm(task):
    """A copy of ``task`` with every input flattened and scaled to unit Euclidean norm (the
    two-layer ReLU experiments: ``w_r ~ N(0, I_d)`` then gives pre-activations of order one)."""
    def scale(X):
        X = np.asarray(X, np.float64)
        X = X.reshape(len(X), int(np.prod(X.shape[1:])))
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise ValueError("an input is identically zero and cannot be scaled to unit norm")
        return X / norms

    return dataclasses.replace(task, X_train=scale(task.X_train), X_val=scale(task.X_val),
                               X_test=scale(task.X_test),
                               config={**task.config, "unit_norm": True, "flatten": True})


def width_sweep(task, widths, *, samples: int = 1000, t: float = np.inf, epochs: int = 50,
                batch_size: int = 50, lr: float = 1e-3, seed: int = 0, train_network: bool = True,
                rho: float = 0.0) -> list:
    """LANTK-NTH and the trained two-layer ReLU network at each width (spec §2, §5).

    For every width ``m``: kernel regression with the LANTK-NTH kernel
    (:func:`lantk.nth.nth_kernel`, ``E K⁽⁴⁾`` from ``samples`` Monte Carlo neurons, correction
    ``∝ 1/m``) and, if ``train_network``, the network :func:`lantk.archs.two_layer_relu` of that
    width trained with :func:`lantk.train.fit` (Adam on the mean squared error) on the same
    training inputs. Inputs are used as given (see :func:`unit_norm`).

    Args:
        task: a *binary* :class:`lantk.data.Task` (the network has one output).
        widths: positive widths ``m``.
        samples, t: Monte Carlo neurons and training time of the NTH kernel.
        epochs, batch_size, lr: training of the finite network.
        seed: seed of the Monte Carlo neurons and of the network's initialisation.
        train_network: also train the finite networks.
        rho: ridge of the kernel regression.

    Returns:
        A list of ``{"method": "nth" | "network", "width", "accuracy", "correct", "seconds"}``.
    """
    from lantk import archs, nth, train

    if not task.binary:
        raise ValueError("width_sweep trains the one-output two-layer network: give a binary task")
    widths = [int(w) for w in widths]
    if not widths or min(widths) < 1:
        raise ValueError(f"widths must be positive integers, got {widths}")
    out = []
    for w in widths:
        t0 = time.perf_counter()
        K_tr, K_te = nth.nth_kernel(task.X_train, task.y_train, task.X_test, width=w, t=t,
                                    samples=samples, seed=seed)
        correct = _correct(task.y_test, regression.kernel_regression(K_tr, K_te, task.y_train, rho=rho))
        out.append({"method": "nth", "width": w, "accuracy": float(correct.mean()), "correct": correct,
                    "seconds": time.perf_counter() - t0})
        if train_network:
            t0 = time.perf_counter()
            net = train.fit(archs.two_layer_relu(w), task.X_train, task.y_train, task.X_test,
                            task.y_test, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                            progress=False)
            correct = _correct(task.y_test, net.test_output[:, 0])
            out.append({"method": "network", "width": w, "accuracy": float(correct.mean()),
                        "correct": correct, "seconds": time.perf_counter() - t0})
    return out


def _flat(x):
    return np.asarray(x, np.float64).reshape(len(x), -1)


def _estimate(method, task, H, H_pred, X_pred):
    if method in ("kr-v1", "kr-v2"):
        return label_aware.kr_estimate(H, H_pred, task.y_train, variant=method[-2:])
    if method in ("fjlt-v1", "fjlt-v2"):
        return label_aware.fjlt_estimate(_flat(task.X_train), task.y_train, _flat(X_pred), H, H_pred,
                                         variant=method[-2:], solver="exact")
    raise ValueError(f"unknown method {method!r}")


def _predict(task, H, H_pred, Z_tr=None, Z_pred=None, c=0.0, rho=0.0):
    if Z_tr is None or c == 0:
        return regression.kernel_regression(H, H_pred, task.y_train, rho=rho)
    K_tr, K_pr = label_aware.lantk_kernel(H, Z_tr, c, H_test_train=H_pred, Z_test=Z_pred)
    return regression.kernel_regression(K_tr, K_pr, task.y_train, rho=rho)


def _correct(y, f):
    # one rule for f = 0 in the whole package: regression.predict_labels (+1)
    return (regression.predict_labels(f) == np.asarray(y)).astype(np.int8)


def evaluate_methods(task, blocks: KernelBlocks, methods=("ntk",) + HR_METHODS + ("oracle",),
                     c_grid=(0.03, 0.1, 0.3, 1.0, 3.0), oracle_c: float = 1.0, rho: float = 0.0) -> dict:
    """Run kernel methods on one task and return per-method results.

    Binary tasks (``±1`` labels) predict ``sign f``; multi-class tasks (class indices
    ``0..C-1``) regress centred one-hot rows ``Y``, estimate ``T = Y Yᵀ`` and predict
    ``argmax f`` (spec §1, §4), and the oracle is ``Y_a Y_bᵀ``.

    Args:
        task: a :class:`lantk.data.Task` with a validation split (needed by the HR methods).
        blocks: the kernel on the task (:func:`kernel_blocks`).
        methods: any of ``"ntk"``, ``"kr-v1"``, ``"kr-v2"``, ``"fjlt-v1"``, ``"fjlt-v2"``,
            ``"oracle"`` (the upper bound ``K + λ y y'`` that uses the test labels).
        c_grid: strengths tried on the validation split for the HR methods.
        oracle_c: strength of the oracle term.
        rho: ridge of the kernel regression.

    Returns:
        ``{method: {"accuracy", "correct" (0/1 per test point), "c", "val_accuracy", "seconds"}}``.
    """
    unknown = [m for m in methods if m not in ("ntk", "oracle") + HR_METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; available: ntk, {', '.join(HR_METHODS)}, oracle")
    if any(m in HR_METHODS for m in methods) and len(task.y_val) == 0:
        raise ValueError("the LANTK-HR methods choose c on a validation split: build the task with n_val > 0")
    out = {}
    for m in methods:
        t0 = time.perf_counter()
        entry = {"c": 0.0, "val_accuracy": None}
        if m == "ntk":
            f = _predict(task, blocks.H, blocks.H_test, rho=rho)
        elif m == "oracle":
            Z_tr = label_aware.oracle_Z(task.y_train, task.y_train)
            Z_te = label_aware.oracle_Z(task.y_test, task.y_train)
            f = _predict(task, blocks.H, blocks.H_test, Z_tr, Z_te, oracle_c, rho)
            entry["c"] = oracle_c
        else:
            # one estimate for validation and test rows together: the fit on the training
            # pairs is shared, only the predicted rows differ
            nv = len(task.y_val)
            Z_tr, Z_pred = _estimate(m, task, blocks.H, np.vstack([blocks.H_val, blocks.H_test]),
                                     np.concatenate([task.X_val, task.X_test]))
            Z_va, Z_te = Z_pred[:nv], Z_pred[nv:]
            val = [float(np.mean(_correct(task.y_val, _predict(task, blocks.H, blocks.H_val, Z_tr, Z_va, c, rho))))
                   for c in c_grid]
            best = float(c_grid[int(np.argmax(val))])
            f = _predict(task, blocks.H, blocks.H_test, Z_tr, Z_te, best, rho)
            entry.update(c=best, val_accuracy=max(val))
        correct = _correct(task.y_test, f)
        entry.update(accuracy=float(correct.mean()), correct=correct, seconds=time.perf_counter() - t0)
        out[m] = entry
    return out


def paired_difference(correct_a, correct_b, level: float = 0.95) -> dict:
    """Mean paired difference of two methods' 0/1 correctness on the same test points.

    The interval is the t-interval of the per-point differences (each point counts once; pool
    points from several seeds or class pairs by concatenating them).

    Returns:
        ``{"mean", "low", "high", "n"}``.
    """
    a = np.asarray(correct_a, np.float64)
    b = np.asarray(correct_b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired results need equal 1-d shapes, got {a.shape} and {b.shape}")
    if len(a) < 2:
        raise ValueError("need at least two paired test points")
    d = a - b
    half = stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return {"mean": float(d.mean()), "low": float(d.mean() - half), "high": float(d.mean() + half),
            "n": len(d)}
