"""The estimator registry: ``label_aware.fit_Z`` -> ``ZFit`` agrees with each estimator's own
function, applies the right kernel rule, rejects bad input, and is what every caller uses."""

from __future__ import annotations

import ast
import pathlib
import pickle
import warnings

import numpy as np
import pytest

from lantk import classifier, experiments, label_aware, nth
from lantk.label_aware import fit_Z

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((36, 6))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Xt = rng.standard_normal((7, 6))
    Xt /= np.linalg.norm(Xt, axis=1, keepdims=True)
    y = np.where(X[:, 0] + 0.3 * X[:, 1] > 0, 1.0, -1.0)
    yt = np.where(Xt[:, 0] + 0.3 * Xt[:, 1] > 0, 1.0, -1.0)
    H, Ht = nth.two_layer_ntk(X), nth.two_layer_ntk(Xt, X)
    return X, y, Xt, yt, H, Ht


def test_registry_lists_the_six_estimators():
    assert label_aware.METHODS == ("kr-v1", "kr-v2", "fjlt-v1", "fjlt-v2", "nth", "oracle")
    assert set(label_aware.ESTIMATORS) == set(label_aware.METHODS)
    # one list of the LANTK-HR names, one of the classifier's variants
    assert experiments.HR_METHODS is label_aware.HR_METHODS
    assert classifier.VARIANTS == ("ntk", "kr-v1", "kr-v2", "fjlt-v1", "fjlt-v2", "nth")


@pytest.mark.parametrize("method", ["kr-v1", "kr-v2"])
def test_kr_fit_is_kr_estimate(problem, method):
    X, y, Xt, yt, H, Ht = problem
    fit = fit_Z(method, H, y)
    Z_tr, Z_te = label_aware.kr_estimate(H, Ht, y, variant=method[-2:])
    np.testing.assert_array_equal(fit.train, Z_tr)
    np.testing.assert_array_equal(fit.predict(Ht), Z_te)
    assert fit.uses_c and fit.train.dtype == np.float64


@pytest.mark.parametrize("method", ["fjlt-v1", "fjlt-v2"])
@pytest.mark.parametrize("solver", ["exact", "fjlt"])
def test_fjlt_fit_is_fjlt_estimate(problem, method, solver):
    X, y, Xt, yt, H, Ht = problem
    fit = fit_Z(method, H, y, X=X, solver=solver, eps=0.5, seed=2)
    Z_tr, Z_te = label_aware.fjlt_estimate(X, y, Xt, H, Ht, variant=method[-2:], solver=solver,
                                           eps=0.5, seed=2)
    np.testing.assert_allclose(fit.train, Z_tr, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fit.predict(Ht, Xt), Z_te, rtol=1e-12, atol=1e-12)
    assert isinstance(fit.info["regression"], label_aware.PairRegression)


def test_oracle_fit_needs_the_test_labels(problem):
    X, y, Xt, yt, H, Ht = problem
    fit = fit_Z("oracle", H, y)
    np.testing.assert_array_equal(fit.train, np.outer(y, y))
    np.testing.assert_array_equal(fit.predict(Ht, y_test=yt), np.outer(yt, y))
    with pytest.raises(ValueError, match="y_test"):
        fit.predict(Ht)
    with pytest.raises(ValueError, match="y_test"):
        fit.predict(Ht, y_test=yt[:3])


def test_nth_fit_is_the_nth_kernel_minus_the_ntk(problem):
    X, y, Xt, yt, H, Ht = problem
    opts = dict(width=50, samples=64, seed=1)
    fit = fit_Z("nth", H, y, X=X, **opts)
    K_tr, K_te = nth.nth_kernel(X, y, Xt, **opts)
    np.testing.assert_allclose(fit.train, K_tr - H, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fit.predict(Ht, Xt), K_te - Ht, rtol=1e-9, atol=1e-12)
    assert not fit.uses_c
    # K + Z, whatever c says: the strength is the width's
    K1, Kt1 = fit.kernel(0.0, Ht, Xt)
    K2, _ = fit.kernel(5.0, Ht, Xt)
    np.testing.assert_allclose(K1, K_tr, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(Kt1, K_te, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(K1, K2)
    # the correction is O(1/width): a ten times wider network moves ten times less
    wide = fit_Z("nth", H, y, X=X, **{**opts, "width": 500})
    np.testing.assert_allclose(wide.train * 10, fit.train, rtol=1e-9, atol=1e-12)


def test_nth_refuses_a_kernel_that_is_not_the_two_layer_ntk(problem):
    X, y, Xt, yt, H, Ht = problem
    with pytest.raises(ValueError, match="two-layer ReLU"):
        fit_Z("nth", X @ X.T, y, X=X, samples=8)


@pytest.mark.parametrize("method", ["kr-v2", "fjlt-v1", "oracle"])
def test_kernel_is_lantk_kernel_of_the_fit(problem, method):
    X, y, Xt, yt, H, Ht = problem
    fit = fit_Z(method, H, y, X=X)
    extra = {"y_test": yt} if method == "oracle" else {}
    K_tr, K_te = fit.kernel(0.3, Ht, Xt, **extra)
    ref = label_aware.lantk_kernel(H, fit.train, 0.3, H_test_train=Ht,
                                   Z_test=fit.predict(Ht, Xt, **extra))
    np.testing.assert_array_equal(K_tr, ref[0])
    np.testing.assert_array_equal(K_te, ref[1])
    lam = label_aware.scale_lambda(H, fit.train, 0.3)
    np.testing.assert_allclose(K_tr, H + lam * fit.train)


def test_zfit_pickles(problem):
    X, y, Xt, yt, H, Ht = problem
    for method in label_aware.METHODS:
        opts = {"samples": 8} if method == "nth" else {}
        fit = fit_Z(method, H, y, X=X, **opts)
        back = pickle.loads(pickle.dumps(fit))
        extra = {"y_test": yt} if method == "oracle" else {}
        np.testing.assert_array_equal(back.train, fit.train)
        np.testing.assert_allclose(back.predict(Ht, Xt, **extra), fit.predict(Ht, Xt, **extra))


def test_kr_prediction_far_outside_the_training_range_warns(problem):
    X, y, Xt, yt, H, Ht = problem
    fit = fit_Z("kr-v1", H, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit.predict(Ht)                      # inside the range: silent
    with pytest.warns(RuntimeWarning, match="Nadaraya-Watson weights sum to <= 0"):
        fit.predict(Ht * 100)


@pytest.mark.parametrize("call, match", [
    (lambda p: fit_Z("kr-v3", p[4], p[1]), "unknown method 'kr-v3'"),
    (lambda p: fit_Z(None, p[4], p[1]), "unknown method None"),
    (lambda p: fit_Z("fjlt-v1", p[4], p[1]), "fjlt-v1 needs X"),
    (lambda p: fit_Z("nth", p[4], p[1]), "nth needs X"),
    (lambda p: fit_Z("fjlt-v1", p[4], p[1], X=p[0][:5]), "length mismatch"),
    (lambda p: fit_Z("kr-v1", p[4], p[1][:5]), "length mismatch"),
    (lambda p: fit_Z("kr-v1", p[4][:, :5], p[1]), "square"),
    (lambda p: fit_Z("kr-v2", p[4], p[1], rho=-1), "rho must be"),
    (lambda p: fit_Z("kr-v1", p[4], np.zeros(36)), "single class"),
    (lambda p: fit_Z("fjlt-v2", p[4], p[1], X=p[0]).predict(p[5]), "needs X_test"),
    (lambda p: fit_Z("kr-v1", p[4], p[1]).predict(p[5][:, :4]), "columns"),
    (lambda p: fit_Z("kr-v1", p[4], p[1]).predict(None), "H_test_train is required"),
    (lambda p: fit_Z("kr-v1", p[4], p[1]).predict(p[5], y_test=p[3]), "only for the oracle"),
    (lambda p: fit_Z("fjlt-v1", p[4], p[1], X=p[0]).predict(p[5], p[2][:3]), "length mismatch"),
    (lambda p: fit_Z("kr-v1", p[4], p[1]).kernel(-1.0), "c must be a finite number >= 0"),
])
def test_bad_input_is_a_clear_error(problem, call, match):
    with pytest.raises(ValueError, match=match):
        call(problem)


def test_unknown_options_are_named(problem):
    X, y, Xt, yt, H, Ht = problem
    with pytest.raises(TypeError, match=r"unexpected options \['solver'\]"):
        fit_Z("kr-v1", H, y, solver="fjlt")
    with pytest.raises(TypeError, match=r"unexpected options \['rho'\]"):
        fit_Z("oracle", H, y, rho=0.1)


def _private_imports(path):
    """``(module, name)`` for each ``from lantk.M import _name`` in ``path`` where ``M`` is a
    public module (private modules such as ``lantk._checks`` and the private package
    ``lantk._stax`` are shared on purpose)."""
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lantk"):
            parts = node.module.split(".")
            if any(p.startswith("_") for p in parts[1:]):
                continue
            pkg = ROOT.joinpath(*parts)
            out += [(node.module, a.name) for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                    and not (pkg / f"{a.name}.py").exists()  # a private module: shared
                    and not (pkg / a.name / "__init__.py").exists()]  # or package
    return out


def test_no_module_imports_another_modules_private_helpers():
    bad = {}
    for path in sorted((ROOT / "lantk").rglob("*.py")):
        hits = _private_imports(path)
        if hits:
            bad[str(path.relative_to(ROOT))] = hits
    assert bad == {}


def test_no_module_calls_another_modules_private_helpers():
    """Nor through the module object (``data._check_dataset(...)``)."""
    import re

    modules = sorted(p.stem for p in (ROOT / "lantk").glob("*.py") if not p.stem.startswith("_"))
    modules.append("label_aware")
    bad = {}
    for path in sorted((ROOT / "lantk").rglob("*.py")):
        own = path.stem if path.parent.name == "lantk" else path.parent.name
        pattern = r"\b(" + "|".join(m for m in modules if m != own) + r")\._[a-z]\w*"
        hits = sorted({m.group(0) for m in re.finditer(pattern, path.read_text())})
        if hits:
            bad[str(path.relative_to(ROOT))] = hits
    assert bad == {}


def test_the_chapters_and_callers_estimate_Z_through_the_registry():
    """No chapter or module dispatches on the estimator names itself: the estimator functions
    are called only by the registry (and shown by name in the docs)."""
    callers = [p for p in [*(ROOT / "lantk").rglob("*.py"), *(ROOT / "book").glob("*.md")]
               if "label_aware" not in p.parts]
    offenders = [str(p.relative_to(ROOT)) for p in callers
                 if any(f"{f}(" in p.read_text() for f in ("kr_estimate", "fjlt_estimate",
                                                           "_kr_coefficients", "_nw_ratio"))]
    assert offenders == []


def test_nth_rows_asked_for_at_fit_time_are_computed_in_the_same_pass(problem, monkeypatch):
    X, y, Xt, yt, H, Ht = problem
    opts = dict(width=50, samples=32, seed=4)
    later = fit_Z("nth", H, y, X=X, **opts).predict(Ht, Xt)
    calls = []
    real = nth.nth_kernel
    monkeypatch.setattr(nth, "nth_kernel", lambda *a, **k: calls.append(1) or real(*a, **k))
    fit = fit_Z("nth", H, y, X=X, X_test=Xt, **opts)
    np.testing.assert_allclose(fit.predict(Ht, Xt), later, rtol=1e-9, atol=1e-12)
    assert len(calls) == 1                       # the fit's pass, nothing more
    fit.predict(Ht[:3], Xt[:3])                  # other rows: a pass of their own
    assert len(calls) == 2
