"""The experiment protocol of the book (spec §7): methods compared on the same test points.

A *method* turns train/validation/test kernel blocks into test predictions. The label-aware
methods choose their strength ``c`` on the validation split (carved from the training set),
never on the test set. Differences between methods are reported as paired differences on the
same test points, with a confidence interval: :func:`paired_difference` for one class pair
(the test point is the unit, repeats over seeds averaged per point first) and
:func:`pooled_paired_difference` over several pairs (the pair is the unit).

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
from scipy import linalg as sla
from scipy import stats

from lantk import label_aware, regression
from lantk._checks import as_float_array, check_finite, check_int, check_real
from lantk._x64 import x64

__all__ = ["HR_METHODS", "KernelBlocks", "binary_pair_run", "closed_form_blocks", "evaluate_methods",
           "kernel_blocks", "multiclass_run", "two_layer_pair_run",
           "nth_correction_draws", "paired_difference", "pooled_paired_difference",
           "same_test_points", "two_layer_task", "unit_norm", "width_sweep"]

HR_METHODS = label_aware.HR_METHODS


@dataclass
class KernelBlocks:
    """The kernel on a task: train-train, validation-train and test-train blocks (float64)."""

    H: np.ndarray
    H_val: np.ndarray
    H_test: np.ndarray


@x64
def kernel_blocks(kernel_fn, task, get: str = "ntk", **kwargs):
    """Compute the three blocks of a task's kernel with :func:`lantk.kernels.kernel_matrix`:
    a :class:`KernelBlocks`, or a list of them (one per output) for a network with several
    outputs (e.g. ``archs.cnn([3, 4])``)."""
    from lantk.kernels import kernel_matrix

    def per_output(K):
        return K if isinstance(K, list) else [K]

    H = kernel_matrix(kernel_fn, task.X_train, None, get=get, **kwargs)
    H_test = per_output(kernel_matrix(kernel_fn, task.X_test, task.X_train, get=get, **kwargs))
    H_val = (per_output(kernel_matrix(kernel_fn, task.X_val, task.X_train, get=get, **kwargs))
             if len(task.X_val) else [np.zeros((0, len(task.X_train)))] * len(H_test))
    blocks = [KernelBlocks(np.asarray(a, np.float64), np.asarray(v, np.float64),
                           np.asarray(t, np.float64))
              for a, v, t in zip(per_output(H), H_val, H_test)]
    return blocks if isinstance(H, list) else blocks[0]


@x64
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


@x64
def width_sweep(task, widths, *, samples: int = 1000, t: float = np.inf, epochs: int = 50,
                batch_size: int = 50, lr: float = 1e-3, seed: int = 0, train_network: bool = True,
                rho: float = 0.0, inits=("standard",), nth_dtype: str = "float64") -> list:
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
        inits: the initialisations of LANTK-NTH (:func:`lantk.nth.nth_kernel`): method
            ``"nth"`` for ``"standard"`` (independent neurons, what the trained network
            uses), ``"nth-antisym"`` for ``"antisymmetric"``.
        nth_dtype: the type of the Monte Carlo contraction (:func:`lantk.nth.nth_kernel`'s
            ``dtype``; ``"float32"`` halves its time, with rounding far below its Monte Carlo
            error).

    Returns:
        A list of ``{"method": "nth" | "nth-antisym" | "network", "width", "accuracy",
        "correct", "seconds"}``.
    """
    from lantk import archs, nth, train

    if not task.binary:
        raise ValueError("width_sweep trains the one-output two-layer network: give a binary task")
    widths = [int(w) for w in widths]
    if not widths or min(widths) < 1:
        raise ValueError(f"widths must be positive integers, got {widths}")
    names = {"standard": "nth", "antisymmetric": "nth-antisym"}
    inits = [inits] if isinstance(inits, str) else list(inits)
    bad = [i for i in inits if i not in names]
    if bad or not inits:
        raise ValueError(f"inits must be a non-empty list of {sorted(names)}, got {inits!r}")
    # The correction of nth_kernel is exactly (1/width) times one Monte Carlo average that does
    # not depend on the width: compute it once per initialisation (width 1), rescale per width.
    H_tr, H_te = nth.two_layer_ntk(task.X_train), nth.two_layer_ntk(task.X_test, task.X_train)
    corrections, cost = {}, {}
    for init in inits:
        t0 = time.perf_counter()
        fit = label_aware.fit_Z("nth", H_tr, task.y_train, X=task.X_train, width=1, t=t,
                                samples=samples, seed=seed, init=init, X_test=task.X_test,
                                dtype=nth_dtype)
        corrections[init] = (fit.train, fit.predict(H_te, task.X_test))
        cost[init] = time.perf_counter() - t0
    out = []
    for w in widths:
        for init in inits:
            t0 = time.perf_counter()
            C_tr, C_te = corrections[init]
            f = regression.kernel_regression(H_tr + C_tr / w, H_te + C_te / w, task.y_train,
                                             rho=rho)
            correct = _correct(task.y_test, f)
            out.append({"method": names[init], "width": w, "accuracy": float(correct.mean()),
                        "correct": correct,
                        "seconds": time.perf_counter() - t0 + cost[init] / len(widths)})
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


def _predict(task, H, H_pred, Z_tr=None, Z_pred=None, c=0.0, rho=0.0):
    if Z_tr is None or c == 0:
        return regression.kernel_regression(H, H_pred, task.y_train, rho=rho)
    K_tr, K_pr = label_aware.lantk_kernel(H, Z_tr, c, H_test_train=H_pred, Z_test=Z_pred)
    return regression.kernel_regression(K_tr, K_pr, task.y_train, rho=rho)


def _correct(y, f):
    # one rule for f = 0 in the whole package: regression.predict_labels (+1)
    return (regression.predict_labels(f) == np.asarray(y)).astype(np.int8)


def _positive_definite(K) -> bool:
    """Whether the symmetric ``K`` is positive definite: its Cholesky factorisation succeeds."""
    try:
        sla.cholesky(K, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return False
    return True


def _select_c(task, blocks, Z_tr, Z_pred, c_grid, rho, fit_seconds, require_psd=False,
              spectrum=True):
    """Choose ``c`` on the validation rows of ``Z_pred`` (its first ``len(y_val)`` rows), then
    predict the test rows with it; ``seconds`` counts the fit of ``Z`` and this selection.

    One solve per ``c`` serves the validation and the test rows (the same coefficients). With
    ``require_psd`` only the strengths whose training block ``K + λZ`` is positive definite
    (its Cholesky factorisation succeeds) are candidates, the smallest ``c`` of the grid when
    none is; ties go to the smaller ``c``. The strengths at which ``K + λZ`` is positive
    definite form an interval ``[0, c*)`` when ``K`` is positive semi-definite
    (``K + λ₁Z = (1 − λ₁/λ₂) K + (λ₁/λ₂)(K + λ₂Z)``), so without ``spectrum`` the grid is
    walked upwards only until the first strength that fails, and no indefinite system is
    solved."""
    t0 = time.perf_counter()
    nv = len(task.y_val)
    H_pred = np.vstack([blocks.H_val, blocks.H_test])
    order = sorted(range(len(c_grid)), key=lambda i: c_grid[i])
    spectra, pd, val, test = [None] * len(c_grid), [False] * len(c_grid), {}, {}
    walk = bool(require_psd) and not spectrum
    for k, i in enumerate(order):
        K_tr, K_pr, *spec = label_aware.lantk_kernel(blocks.H, Z_tr, c_grid[i], H_test_train=H_pred,
                                                     Z_test=Z_pred, return_spectrum=spectrum)
        if walk:
            pd[i] = _positive_definite(K_tr)
            if not pd[i] and k > 0:
                break   # and every larger strength: not candidates, nothing to solve
        if spec:
            spectra[i] = spec[0].relative_min
        f, info = regression.kernel_regression(K_tr, K_pr, task.y_train, rho=rho,
                                               return_info=True)
        # positive definiteness of K + λZ itself (the solve's factor includes ρI)
        pd[i] = info.method == "cholesky" if rho == 0 else _positive_definite(K_tr)
        val[i] = float(np.mean(_correct(task.y_val, f[:nv])))
        test[i] = _correct(task.y_test, f[nv:])
    cand = [i for i in order if pd[i]] if require_psd else order
    cand = cand or order[:1]
    best_i = max(cand, key=lambda i: val[i])   # the first (smallest c) of the best
    correct = test[best_i]
    return {"c": float(c_grid[best_i]), "val_accuracy": val[best_i],
            "relative_min_eigenvalue": spectra if spectrum else None,
            "positive_definite": pd, "candidates": [float(c_grid[i]) for i in cand],
            "accuracy": float(correct.mean()), "correct": correct,
            "seconds": fit_seconds + time.perf_counter() - t0}


def evaluate_methods(task, blocks: KernelBlocks, methods=("ntk",) + HR_METHODS + ("oracle",),
                     c_grid=(0.03, 0.1, 0.3, 1.0, 3.0), oracle_c: float = 1.0, rho: float = 0.0,
                     psd=False, require_psd: bool = False, spectrum: bool = True) -> dict:
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
        psd: use the positive semi-definite part of each LANTK-HR estimate of ``Z``
            (:func:`lantk.label_aware.psd_projection`, the validation and test rows projected
            consistently), so that ``K + λZ`` is a kernel matrix; off by default (the paper's
            method uses ``Z`` as estimated). ``"both"``: each LANTK-HR method twice, as
            estimated (``"kr-v1"``) and repaired (``"kr-v1 psd"``), from one fit of ``Z``.
        require_psd: choose ``c`` only among the strengths of ``c_grid`` for which the
            training block ``K + λZ`` is positive definite (its Cholesky factorisation
            succeeds; the smallest ``c`` when none is): past that strength kernel regression with
            ``ρ = 0`` interpolates with an indefinite matrix, and its predictions collapse
            (the lantk_hr chapter). Off by default (the paper's method has no such rule).
        spectrum: record each ``c``'s ``"relative_min_eigenvalue"`` (an eigendecomposition
            per ``c``; ``False`` skips it: ``None`` is recorded, and ``"positive_definite"``,
            from the factorisation the solve needs anyway, still says where ``K + λZ`` is
            positive definite).

    Returns:
        ``{method: {"accuracy", "correct" (0/1 per test point), "c", "val_accuracy", "seconds"}}``;
        the LANTK-HR methods also carry ``"relative_min_eigenvalue"``, the smallest eigenvalue
        of the training block ``K + λZ`` over its largest in absolute value, for each ``c``
        of ``c_grid`` (negative: not positive semi-definite), ``"positive_definite"`` (per
        ``c``: whether the training block's Cholesky factorisation succeeded) and
        ``"candidates"``, the strengths the validation split chose among.
    """
    unknown = [m for m in methods if m not in ("ntk", "oracle") + HR_METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; available: ntk, {', '.join(HR_METHODS)}, oracle")
    if psd not in (False, True, "both"):
        raise ValueError(f"psd must be False, True or 'both', got {psd!r}")
    if any(m in HR_METHODS for m in methods) and len(task.y_val) == 0:
        raise ValueError("the LANTK-HR methods choose c on a validation split: build the task with n_val > 0")
    out = {}
    for m in methods:
        t0 = time.perf_counter()
        entry = {"c": 0.0, "val_accuracy": None}
        if m == "ntk":
            f = _predict(task, blocks.H, blocks.H_test, rho=rho)
        elif m == "oracle":
            fit = label_aware.fit_Z("oracle", blocks.H, task.y_train)
            Z_te = fit.predict(blocks.H_test, y_test=task.y_test)
            f = _predict(task, blocks.H, blocks.H_test, fit.train, Z_te, oracle_c, rho)
            entry["c"] = oracle_c
        else:
            # one fit for validation and test rows together: the fit on the training pairs is
            # shared, only the predicted rows differ
            fit = label_aware.fit_Z(m, blocks.H, task.y_train, X=_flat(task.X_train))
            Z_pred = fit.predict(np.vstack([blocks.H_val, blocks.H_test]),
                                 _flat(np.concatenate([task.X_val, task.X_test])))
            fit_seconds = time.perf_counter() - t0
            for project in (False, True):
                if psd != "both" and project != psd:
                    continue
                name = f"{m} psd" if project and psd == "both" else m
                Z_tr, Z_p = (label_aware.psd_projection(fit.train, Z_pred) if project
                             else (fit.train, Z_pred))
                out[name] = _select_c(task, blocks, Z_tr, Z_p, c_grid, rho, fit_seconds,
                                      require_psd=bool(require_psd), spectrum=bool(spectrum))
            continue
        correct = _correct(task.y_test, f)
        entry.update(accuracy=float(correct.mean()), correct=correct, seconds=time.perf_counter() - t0)
        out[m] = entry
    return out


def cross_fit_tasks(task, folds: int, seed: int | None = None) -> list:
    """``task`` and ``folds - 1`` more tasks on the same images, so that every image of the
    pool is a test point of exactly one fold (cross-fitting).

    The pool is the task's training, validation and test images, in that order (positions
    ``0 .. N-1``). Fold 0 is ``task`` itself. The pool's training and validation images (from
    the dataset's *training* split) are ordered by their dataset index and dealt, class by
    class in a random order drawn from ``seed``, into ``folds - 1`` chunks of nearly equal
    size; fold ``f >= 1`` tests on chunk ``f``, validates on as many images of each class as
    ``task`` does, drawn from the rest (from the task's own seed, so that seeds differ there as
    in fold 0), and trains on everything else, ``task``'s test images included. Every fold thus
    trains on about as many images as ``task`` when a chunk is about as large as its test
    split. The inputs are ``task``'s preprocessed arrays (standardised with fold 0's training
    statistics, a label-free choice shared by all folds).

    When ``task`` takes every training image of its classes (``n_train=None``), its pool does
    not depend on the task's seed, and neither do the chunks (they depend only on ``seed``): the
    folds' test points are then the same for every seed, in the same order (by dataset index
    within a chunk), and repeats over seeds can be paired point by point.

    Args:
        task: a :class:`lantk.data.Task` with a validation split when the methods need one.
        folds: ``1`` (``[task]``) or more.
        seed: the seed of the chunks (default: the task's own seed).

    Returns:
        A list of ``folds`` tasks. For folds ``>= 1`` the ``idx_*`` arrays hold *pool
        positions* (``config["indices"] == "pool"``); every task's ``config`` records
        ``fold`` and ``folds``.

    Example:
        >>> from lantk import data
        >>> t = data.binary_task("digits", classes=(3, 8), n_train=40, n_val=10, n_test=20)
        >>> fs = cross_fit_tasks(t, 3)
        >>> sorted(len(f.y_test) for f in fs), sum(len(f.y_test) for f in fs) == 70
        ([20, 24, 26], True)
    """
    folds = check_int(folds, "folds")
    first = dataclasses.replace(task, config={**task.config, "fold": 0, "folds": folds})
    if folds == 1:
        return [first]
    seed = int(task.config.get("seed", 0)) if seed is None else int(seed)
    X = np.concatenate([task.X_train, task.X_val, task.X_test])
    y = np.concatenate([task.y_train, task.y_val, task.y_test])
    n_tv = len(task.y_train) + len(task.y_val)
    ids = np.concatenate([task.idx_train, task.idx_val])   # dataset indices (training split)
    rng = np.random.default_rng(seed)
    chunks = [[] for _ in range(folds - 1)]
    classes = np.unique(y)
    for c in classes:
        pos = np.flatnonzero(y[:n_tv] == c)
        pos = pos[np.argsort(ids[pos], kind="stable")]
        if len(pos) < folds - 1:
            raise ValueError(f"folds={folds} needs at least {folds - 1} training images of "
                             f"every class, class {c} has {len(pos)}: take fewer folds")
        for k, part in enumerate(np.array_split(rng.permutation(pos), folds - 1)):
            chunks[k].extend(part.tolist())
    val_counts = {c: int(np.sum(task.y_val == c)) for c in classes}
    out = [first]
    for f, chunk in enumerate(chunks, start=1):
        test = np.array(sorted(chunk, key=lambda p: ids[p]), dtype=int)
        rest = np.setdiff1d(np.arange(len(y)), test)
        vrng = np.random.default_rng([int(task.config.get("seed", 0)), f])
        val = np.concatenate([vrng.permutation(rest[y[rest] == c])[:val_counts[c]]
                              for c in classes]).astype(int)
        train = np.setdiff1d(rest, val)
        if 2 * len(train) < len(task.y_train):
            suggest = 1 + max(1, round(n_tv / max(len(task.y_test), 1)))
            raise ValueError(f"folds={folds} leaves fold {f} {len(train)} training images against "
                             f"fold 0's {len(task.y_train)}: its test chunk ({len(test)} images) "
                             f"is too large. Take more folds, so that a chunk is about the size "
                             f"of the test split (here folds={suggest})")
        out.append(dataclasses.replace(
            task, X_train=X[train], y_train=y[train], X_val=X[val], y_val=y[val],
            X_test=X[test], y_test=y[test], idx_train=train, idx_val=val, idx_test=test,
            config={**task.config, "fold": f, "folds": folds, "indices": "pool"}))
    return out


def pool_positions(fold_task):
    """``(train, val, test)`` positions of a task of :func:`cross_fit_tasks` in its pool."""
    if fold_task.config.get("indices") == "pool":
        return fold_task.idx_train, fold_task.idx_val, fold_task.idx_test
    ntr, nv, nt = len(fold_task.y_train), len(fold_task.y_val), len(fold_task.y_test)
    return np.arange(ntr), np.arange(ntr, ntr + nv), np.arange(ntr + nv, ntr + nv + nt)


def binary_pair_run(dataset: str, classes, seed: int, *, n_train, n_val, n_test, kernel_arch,
                    methods, c_grid, kernel_dtype="float32", test_seed: int | None = None,
                    standardize: bool = False, network: dict | None = None, folds: int = 1,
                    require_psd: bool = False, spectrum: bool = True) -> dict:
    """One run of the generalisation protocol on a class pair: the task, the kernel blocks,
    the kernel methods and (with ``network``) a trained finite network on the same images.

    A job for :func:`lantk.parallel.map_jobs`: its arguments and its result pickle.

    Args:
        dataset, classes, seed, n_train, n_val, n_test, standardize: the task
            (:func:`lantk.data.binary_task`).
        kernel_arch: the architecture whose kernel is used (:func:`lantk.archs.build`).
        methods, c_grid: :func:`evaluate_methods`.
        kernel_dtype: the kernel entries' type (the regression runs in float64).
        test_seed: score the test images of this seed's task (:func:`same_test_points`);
            ``None``: this seed's own.
        network: keyword arguments of :func:`lantk.train.fit` plus ``"arch"`` (as
            ``kernel_arch``); it trains on the task's training images, stops on its
            validation split when ``patience`` is given, and is scored on its test images
            as method ``"cnn"``.
        folds: cross-fitting of the *kernel methods* (:func:`cross_fit_tasks`, chunks drawn
            from ``test_seed``): the kernel is computed once on all the task's images and every
            method runs on every fold, so that every image is a test point once; the network
            trains on fold 0 (the task as built) only. ``1``: the task alone. With several
            seeds (``test_seed`` other than ``seed``) it needs ``n_train=None``, so that the
            folds' test points are the same for every seed.
        require_psd, spectrum: :func:`evaluate_methods`' rule for ``c`` and whether it
            records each ``c``'s smallest eigenvalue.

    Returns:
        ``{"class_names", "n_train", "n_val", "n_test", "summary" (the task's),
        "results": {method: evaluate_methods entry, and "cnn" for the network},
        "network": {test_accuracy, epochs, best_epoch, stopping} or None, "seconds"}``.
        With ``folds > 1`` each kernel method's entry is fold 0's, plus ``"folds"`` (per
        fold: ``c``, ``accuracy``, ``correct``, ``n_train``), ``"cv_correct"`` (the folds'
        correctness, concatenated in fold order) and ``"cv_accuracy"``; ``"n_test_cv"`` counts
        the test points of all folds.
    """
    t0 = time.perf_counter()
    folds = check_int(folds, "folds")
    if folds > 1 and test_seed is not None and test_seed != seed and n_train is not None:
        raise ValueError("cross-fitting (folds > 1) over several seeds needs n_train=None (every "
                         "training image), so that every seed's folds test the same images")
    task = _pair_task(dataset, classes, seed, test_seed, n_train=n_train, n_val=n_val,
                      n_test=n_test, standardize=standardize)
    return _run_on_task(task, t0, kernel_arch, methods, c_grid, kernel_dtype, network,
                        folds=folds, fold_seed=seed if test_seed is None else test_seed,
                        require_psd=require_psd, spectrum=spectrum)


def multiclass_run(dataset: str, seed: int, *, n_train, n_val, n_test, standardize: bool = False,
                   kernel_arch=None, methods=(), c_grid=(0.03, 0.1, 0.3, 1.0, 3.0),
                   kernel_dtype="float32", network: dict | None = None,
                   require_psd: bool = False, spectrum: bool = True) -> dict:
    """:func:`binary_pair_run` on every class of ``dataset`` (:func:`lantk.data.multiclass_task`).
    Either part may be left out (``kernel_arch=None`` or ``network=None``), so the kernel
    methods and the network can be two jobs that run at once; the task is the same in both
    (it depends only on the arguments). The network's outputs are one per class.
    ``require_psd`` and ``spectrum`` are :func:`evaluate_methods`'. A ``kernel_arch`` with
    several outputs (``("cnn", {"depth": [3, 4]})``: one kernel per depth, their shared layers
    computed once) adds ``"outputs"``, the methods' results for each kernel in order
    (``"results"`` holds the first's)."""
    from lantk import data

    t0 = time.perf_counter()
    task = data.multiclass_task(dataset, n_train=n_train, n_val=n_val, n_test=n_test, seed=seed,
                                standardize=standardize)
    if network is not None:
        network = dict(network)
        arch = network["arch"]
        name, kw = (arch, {}) if isinstance(arch, str) else arch
        network["arch"] = (name, {**kw, "outputs": len(task.classes)})
    return _run_on_task(task, t0, kernel_arch, methods, c_grid, kernel_dtype, network,
                        require_psd=require_psd, spectrum=spectrum)


def _run_on_task(task, t0, kernel_arch, methods, c_grid, kernel_dtype, network, folds=1,
                 fold_seed=0, require_psd=False, spectrum=True) -> dict:
    from lantk import archs

    res, extra = {}, {}
    if kernel_arch is not None and folds == 1:
        blocks = kernel_blocks(archs.build(kernel_arch)[2], task, progress=False,
                               dtype=np.dtype(kernel_dtype))
        outputs = [evaluate_methods(task, b, methods, c_grid=c_grid, require_psd=require_psd,
                                    spectrum=spectrum)
                   for b in (blocks if isinstance(blocks, list) else [blocks])]
        res = dict(outputs[0])
        if isinstance(blocks, list):   # a network with several outputs: each one's results
            extra["outputs"] = outputs
    elif kernel_arch is not None:
        res = _cross_fitted_methods(task, archs.build(kernel_arch)[2], methods, c_grid,
                                    kernel_dtype, folds, fold_seed, require_psd, spectrum)
        extra["n_test_cv"] = int(len(next(iter(res.values()))["cv_correct"]))
        extra["folds"] = folds
    net_info = None
    if network is not None:
        from lantk import train

        kw = dict(network)
        arch = archs.build(kw.pop("arch"))
        stop = kw.get("patience") is not None
        net = train.fit(arch, task.X_train, task.y_train, task.X_test, task.y_test,
                        X_val=task.X_val if stop else None, y_val=task.y_val if stop else None,
                        progress=False, **kw)
        out = np.asarray(net.test_output)
        correct = (_correct(task.y_test, out[:, 0]) if task.binary else
                   (np.argmax(out, axis=1) == task.y_test).astype(np.int8))
        res["cnn"] = {"accuracy": net.final("test_acc"), "c": None, "correct": correct}
        net_info = dict(test_accuracy=net.final("test_acc"), epochs=len(net.history),
                        best_epoch=net.config.get("best_epoch"), stopping=net.config.get("stopping"),
                        history=net.history)
    return {"class_names": tuple(task.class_names), "n_train": len(task.y_train),
            "n_val": len(task.y_val), "n_test": len(task.y_test), "summary": task.summary(),
            "results": res, "network": net_info, "seconds": time.perf_counter() - t0, **extra}


@x64
def _cross_fitted_methods(task, kernel_fn, methods, c_grid, kernel_dtype, folds, fold_seed,
                          require_psd, spectrum):
    """:func:`evaluate_methods` on every fold of :func:`cross_fit_tasks`, from one kernel
    matrix on the pool (train, validation and test images of ``task``)."""
    from lantk.kernels import kernel_matrix, output_count

    tasks = cross_fit_tasks(task, folds, seed=fold_seed)
    pool = np.concatenate([task.X_train, task.X_val, task.X_test])
    outputs = output_count(kernel_fn, pool.shape[1:])
    if outputs is not None:
        raise ValueError("cross-fitting (folds > 1) takes an architecture with one output, got "
                         f"one with {outputs}")
    K = np.asarray(kernel_matrix(kernel_fn, pool, None, get="ntk", progress=False,
                                 dtype=np.dtype(kernel_dtype)), np.float64)
    per_fold = []
    # FJLT's L1 distances once over the pool, sliced by every fold (bit-identical)
    fjlt = any(m.startswith("fjlt") for m in methods)
    with label_aware.fjlt.shared_distances(_flat(pool) if fjlt else None):
        for ft in tasks:
            tr, va, te = pool_positions(ft)
            blocks = KernelBlocks(K[np.ix_(tr, tr)], K[np.ix_(va, tr)], K[np.ix_(te, tr)])
            per_fold.append(evaluate_methods(ft, blocks, methods, c_grid=c_grid,
                                             require_psd=require_psd, spectrum=spectrum))
    out = {}
    for m, first in per_fold[0].items():
        cv = np.concatenate([r[m]["correct"] for r in per_fold])
        out[m] = {**first,
                  "folds": [dict(c=r[m]["c"], accuracy=r[m]["accuracy"], correct=r[m]["correct"],
                                 n_train=len(ft.y_train)) for r, ft in zip(per_fold, tasks)],
                  "cv_correct": cv, "cv_accuracy": float(cv.mean())}
    return out


def two_layer_task(dataset: str, classes, seed: int, *, n_train, n_val, n_test,
                   test_seed: int | None = None):
    """The two-layer experiments' task: :func:`lantk.data.binary_task` (pixels in [-1, 1]),
    the test images of ``test_seed``'s task (:func:`same_test_points`), inputs flattened to
    unit norm (:func:`unit_norm`)."""
    return unit_norm(_pair_task(dataset, classes, seed, test_seed, n_train=n_train, n_val=n_val,
                                n_test=n_test))


def _pair_task(dataset, classes, seed, test_seed, **task_kw):
    """:func:`lantk.data.binary_task` of ``seed``, scored on the test images of ``test_seed``'s
    task (:func:`same_test_points`) when that is another seed."""
    from lantk import data

    def task_of(s):
        return data.binary_task(dataset, classes=tuple(classes), seed=s, **task_kw)

    task = task_of(seed)
    if test_seed is not None and test_seed != seed:
        task = same_test_points(task, task_of(test_seed))
    return task


def two_layer_pair_run(dataset: str, classes, seed: int, *, n_train, n_val, n_test, c_grid,
                       widths, samples: int, epochs: int, methods=("ntk",) + HR_METHODS + ("oracle",),
                       inits=("standard",), lr: float = 1e-3, psd=False,
                       test_seed: int | None = None, require_psd: bool = False,
                       spectrum: bool = True, nth_dtype: str = "float64") -> dict:
    """One run of the two-layer protocol on a class pair (a job for
    :func:`lantk.parallel.map_jobs`): the closed-form NTK and the kernel methods on it
    (:func:`evaluate_methods`, with ``psd``, ``require_psd`` and ``spectrum``), then
    LANTK-NTH (its contraction in ``nth_dtype``) and the network trained with
    Adam at ``lr`` at every width (:func:`width_sweep`), on :func:`two_layer_task`.

    Returns:
        ``{"class_names", "n_train", "n_test", "seconds", "results": [{"method", "width"
        (None for the kernel methods), "accuracy", "correct", "c", ...}]}``.
    """
    from lantk import archs

    t0 = time.perf_counter()
    task = two_layer_task(dataset, classes, seed, n_train=n_train, n_val=n_val, n_test=n_test,
                          test_seed=test_seed)
    blocks = closed_form_blocks(archs.two_layer_relu_kernel, task)
    res = [dict(method=m, width=None, **r) for m, r in
           evaluate_methods(task, blocks, methods, c_grid=c_grid, psd=psd,
                            require_psd=require_psd, spectrum=spectrum).items()]
    res += width_sweep(task, widths, samples=samples, epochs=epochs, lr=lr, seed=seed,
                       inits=inits, nth_dtype=nth_dtype)
    return {"class_names": tuple(task.class_names), "n_train": len(task.y_train),
            "n_test": len(task.y_test), "results": res, "seconds": time.perf_counter() - t0}


def same_test_points(task, reference):
    """``task`` with the test images of ``reference`` (same dataset and classes), preprocessed
    with ``task``'s own training statistics, so that several seeds score the same test points.

    A seed chooses the training, validation *and* test images of a task
    (:func:`lantk.data.binary_task`); repeating a method over seeds on the same test points
    needs the test split held fixed while the rest varies. The result's test rows are in
    ``reference``'s order, so correctness arrays of the seeds line up point by point.
    """
    from lantk import data

    if (task.dataset, tuple(task.classes)) != (reference.dataset, tuple(reference.classes)):
        raise ValueError(f"the reference task is {reference.dataset} {reference.classes}, this one "
                         f"{task.dataset} {task.classes}: test points can only be shared by tasks "
                         "on the same classes")
    std, flat = bool(task.config.get("standardize")), bool(task.config.get("flatten"))
    x_tr_all = data.load(task.dataset, "train")[0]
    _, stats = data.preprocess(x_tr_all[task.idx_train], standardize=std, flatten=flat)
    x_te_all = data.load(task.dataset, "test")[0]
    X_test, _ = data.preprocess(x_te_all[reference.idx_test], standardize=std, flatten=flat,
                                stats=stats)
    return dataclasses.replace(task, X_test=X_test, y_test=np.array(reference.y_test),
                               idx_test=np.array(reference.idx_test),
                               config={**task.config, "test_seed": reference.config.get("seed")})


def _repeats(x, name):
    x = as_float_array(x, name)
    check_finite(x, name)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"{name} must be 0/1 correctness shaped (test points,) or (repeats, test "
                         f"points), got shape {x.shape}")
    return x


def _check_level(level) -> float:
    level = check_real(level, "level")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be a confidence level in (0, 1), e.g. 0.95; got {level}")
    return level


def _t_interval(d, level):
    n = len(d)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * d.std(ddof=1) / np.sqrt(n)
    m = float(d.mean())
    return m, m - float(half), m + float(half)


def paired_difference(correct_a, correct_b, level: float = 0.95) -> dict:
    """Mean paired difference of two methods' 0/1 correctness on the same test points.

    ``correct_a`` and ``correct_b`` are shaped ``(test points,)`` or ``(repeats, test points)``:
    row ``r`` of both is repeat ``r`` (a seed: training images, network initialisation) scored
    on the *same* test points, in the same order. The test point is the unit: the differences
    are averaged over the repeats of each point first, then the t-interval of those per-point
    means is taken. Counting a point once per repeat as if the repeats were independent points
    would shrink the interval by up to ``√repeats`` without new test images.

    Returns:
        ``{"mean", "low", "high", "n" (test points), "repeats", "level"}``.

    Raises:
        ValueError: the shapes differ, are not 1-d or 2-d, or there are fewer than two points.
    """
    level = _check_level(level)
    a, b = _repeats(correct_a, "correct_a"), _repeats(correct_b, "correct_b")
    if a.shape != b.shape:
        raise ValueError(f"paired results need equal shapes (repeats, test points), got "
                         f"{np.shape(correct_a)} and {np.shape(correct_b)}")
    if a.shape[1] < 2:
        raise ValueError("need at least two paired test points")
    if a.shape[0] < 1:
        raise ValueError("need at least one repeat")
    m, lo, hi = _t_interval((a - b).mean(axis=0), level)
    return {"mean": m, "low": lo, "high": hi, "n": a.shape[1], "repeats": a.shape[0],
            "level": level}


def pooled_paired_difference(groups, level: float = 0.95) -> dict:
    """Paired difference pooled over groups of test points (class pairs), two-stage.

    ``groups`` is a list of ``(correct_a, correct_b)``, one per class pair, each as in
    :func:`paired_difference` (a pair may have its own number of test points and repeats).
    The estimate is the unweighted mean of the per-pair mean differences (every pair counts
    the same, as in an average over the pairs of a table). Its interval treats the class pair
    as the unit of replication of a claim about class pairs: the variance of the estimate is
    the spread of the per-pair means over the number of pairs, which holds both the
    between-pair variation and each pair's own test-point noise (a random-effects model
    estimated from the pair means), and the quantile is Student's with ``pairs − 1`` degrees
    of freedom. That variance can never truly be below the part the test points alone
    contribute, ``Σ se_p² / pairs²``; with few pairs its estimate can be (two pairs with the
    same mean give zero), so it is floored there (the ad hoc correction of the Hartung–Knapp
    interval in random-effects meta-analysis). Concatenating the points of all pairs instead
    would treat pairs of very different difficulty as one population of exchangeable points.

    With a single pair there is no between-pair variation to estimate: the result is that
    pair's :func:`paired_difference` (``"pairs": 1``).

    Returns:
        ``{"mean", "low", "high", "n" (test points, all pairs), "pairs", "level",
        "pair_means", "within_low", "within_high"}``; ``within_*`` is the stratified interval
        that holds the pairs fixed (only the test-point noise, normal quantile), for
        comparison.
    """
    level = _check_level(level)
    groups = list(groups)
    if not groups:
        raise ValueError("pooled_paired_difference needs at least one (correct_a, correct_b) group")
    per = [paired_difference(a, b, level) for a, b in groups]
    if len(per) == 1:
        return {**per[0], "pairs": 1, "pair_means": [per[0]["mean"]],
                "within_low": per[0]["low"], "within_high": per[0]["high"]}
    P = len(per)
    means = np.array([p["mean"] for p in per])
    se_p = np.array([(p["high"] - p["low"]) / 2 / stats.t.ppf(0.5 + level / 2, p["n"] - 1)
                     for p in per])
    var_within = float(np.sum(se_p**2)) / P**2
    var = max(float(means.var(ddof=1)) / P, var_within)
    m = float(means.mean())
    half = float(stats.t.ppf(0.5 + level / 2, P - 1) * np.sqrt(var))
    within = float(stats.norm.ppf(0.5 + level / 2) * np.sqrt(var_within))
    return {"mean": m, "low": m - half, "high": m + half, "n": int(sum(p["n"] for p in per)),
            "pairs": P, "level": level, "pair_means": means.tolist(),
            "within_low": m - within, "within_high": m + within}


@x64
def nth_correction_draws(X_train, y, X_test, *, width, samples: int, seeds) -> np.ndarray:
    """Independent Monte Carlo estimates of the LANTK-NTH correction ``K_t − K`` at ``t = ∞``.

    One estimate per seed (``label_aware.fit_Z("nth", ...)``, :func:`lantk.nth.nth_kernel` with
    ``samples`` neurons drawn from that seed), train rows then test rows: an array ``(len(seeds), n + b, n)``. The spread over
    seeds is the Monte Carlo error of one estimate, which should shrink as ``1/√samples``.
    """
    from lantk import nth

    seeds = [int(s) for s in seeds]
    if len(seeds) < 2:
        raise ValueError("give at least two seeds: the spread between them is the point")
    H = nth.two_layer_ntk(X_train)
    Ht = nth.two_layer_ntk(X_test, X_train)
    out = []
    for s in seeds:
        fit = label_aware.fit_Z("nth", H, y, X=X_train, width=width, samples=samples, seed=s,
                                X_test=X_test)
        out.append(np.vstack([fit.train, fit.predict(Ht, X_test)]))
    return np.stack(out)
