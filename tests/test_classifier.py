"""The scikit-learn estimator: estimator checks, Pipeline, GridSearchCV, agreement with the
functional API."""
import importlib.util
import warnings

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import lantk
from lantk.classifier import VARIANTS, LANTKClassifier, two_layer_relu_ntk
from lantk.label_aware import fjlt_estimate, kr_estimate, lantk_kernel
from lantk.regression import kernel_regression

HAS_NTH = importlib.util.find_spec("lantk.nth") is not None
CHECKED = [LANTKClassifier(variant=v) for v in VARIANTS if v != "nth"]
if HAS_NTH:
    CHECKED.append(LANTKClassifier(variant="nth", samples=10))


@parametrize_with_checks(CHECKED)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        # the checks use duplicate inputs: singular kernels get a jitter, with a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        check(estimator)


def _blobs(n=60, d=5, C=2, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(C, d))
    y = np.arange(n) % C
    X = centres[y] + rng.normal(size=(n, d))
    return X, y


def test_lazy_attribute_and_defaults():
    assert lantk.LANTKClassifier is LANTKClassifier
    clf = LANTKClassifier()
    assert clf.variant == "kr-v1" and clf.arch is None and clf.rho == 0.0


@pytest.mark.parametrize("variant", ["ntk", "kr-v1", "kr-v2", "fjlt-v1", "fjlt-v2"])
def test_matches_functional_api(variant):
    X, y = _blobs(n=50)
    Xtr, Xte, ytr = X[:40], X[40:], np.where(y[:40] == 1, 1.0, -1.0)
    clf = LANTKClassifier(variant=variant, c=0.2).fit(Xtr, y[:40])
    H, Ht = two_layer_relu_ntk(Xtr), two_layer_relu_ntk(Xte, Xtr)
    H = 0.5 * (H + H.T)
    if variant == "ntk":
        K, Kt = H, Ht
    else:
        kind, ver = variant.split("-")
        Z, Zt = (kr_estimate(H, Ht, ytr, ver) if kind == "kr"
                 else fjlt_estimate(Xtr, ytr, Xte, H, Ht, ver))
        K, Kt = lantk_kernel(H, Z, 0.2, H_test_train=Ht, Z_test=Zt)
    f = clf.decision_function(Xte)
    assert f.shape == (10,) and f.dtype == np.float64 and isinstance(f, np.ndarray)
    np.testing.assert_allclose(f, kernel_regression(K, Kt, ytr), rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(clf.predict(Xte), np.where(f > 0, 1, 0))


@pytest.mark.parametrize("variant", ["ntk", "kr-v2", "fjlt-v2"])
def test_multiclass(variant):
    X, y = _blobs(n=60, C=3)
    labels = np.array(["cat", "dog", "truck"])[y]
    clf = LANTKClassifier(variant=variant, c=0.1).fit(X[:45], labels[:45])
    f = clf.decision_function(X[45:])
    assert f.shape == (15, 3) and f.dtype == np.float64
    assert set(clf.predict(X[45:])) <= {"cat", "dog", "truck"}
    np.testing.assert_array_equal(clf.predict(X[45:]), clf.classes_[np.argmax(f, axis=1)])
    assert clf.score(X[45:], labels[45:]) > 0.8


def test_multiclass_kr_uses_YYt():
    X, y = _blobs(n=45, C=3)
    clf = LANTKClassifier(variant="kr-v1", c=0.3).fit(X[:36], y[:36])
    H, Ht = two_layer_relu_ntk(X[:36]), two_layer_relu_ntk(X[36:], X[:36])
    H = 0.5 * (H + H.T)
    Z, Zt = kr_estimate(H, Ht, y[:36], "v1")  # class indices: T = Y Yᵀ, centred one-hot
    K, Kt = lantk_kernel(H, Z, 0.3, H_test_train=Ht, Z_test=Zt)
    np.testing.assert_allclose(clf.decision_function(X[36:]), kernel_regression(K, Kt, y[:36]),
                               rtol=1e-7, atol=1e-9)


def test_pipeline_and_grid_search():
    X, y = _blobs(n=60, d=4, seed=3)
    pipe = make_pipeline(StandardScaler(), LANTKClassifier(variant="kr-v2"))
    pipe.fit(X[:45], y[:45])
    assert pipe.score(X[45:], y[45:]) > 0.8
    gs = GridSearchCV(pipe, {"lantkclassifier__c": [0.0, 0.1, 0.5],
                             "lantkclassifier__variant": ["kr-v1", "fjlt-v2"]}, cv=3)
    gs.fit(X, y)
    assert gs.best_params_["lantkclassifier__c"] in (0.0, 0.1, 0.5)
    assert gs.predict(X).shape == (60,)


def test_arch_as_callable_and_triple():
    X, y = _blobs(n=40)

    def rbf(x1, x2):  # plain (x1, x2) callable
        return np.exp(-0.1 * ((x1[:, None] - x2[None]) ** 2).sum(-1))

    f = LANTKClassifier(variant="kr-v1", arch=rbf, c=1.0).fit(X[:30], y[:30]).decision_function(
        X[30:])
    H, Ht = rbf(X[:30], X[:30]), rbf(X[30:], X[:30])
    ypm = np.where(y[:30] == 1, 1.0, -1.0)
    Z, Zt = kr_estimate(H, Ht, ypm)
    K, Kt = lantk_kernel(H, Z, 1.0, H_test_train=Ht, Z_test=Zt)
    np.testing.assert_allclose(f, kernel_regression(K, Kt, ypm), rtol=1e-8)

    def nt_style(x1, x2=None, get="ntk"):  # neural-tangents style kernel_fn
        assert get == "ntk"
        return rbf(x1, x1 if x2 is None else x2)

    f2 = LANTKClassifier(variant="kr-v1", arch=(None, None, nt_style), c=1.0).fit(
        X[:30], y[:30]).decision_function(X[30:])
    np.testing.assert_allclose(f2, f, rtol=1e-12)


def test_arch_triple_from_archs_matches_default():
    archs = pytest.importorskip("lantk.archs")
    X, y = _blobs(n=30)
    a = LANTKClassifier(variant="ntk").fit(X[:24], y[:24]).decision_function(X[24:])
    b = LANTKClassifier(variant="ntk", arch=archs.two_layer_relu()).fit(
        X[:24], y[:24]).decision_function(X[24:])
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_input_shape_reshapes_rows():
    seen = []

    def kfn(x1, x2):
        seen.append(x1.shape[1:])
        a, b = x1.reshape(len(x1), -1), x2.reshape(len(x2), -1)
        return two_layer_relu_ntk(a, b)

    X, y = _blobs(n=20, d=6)
    LANTKClassifier(arch=kfn, input_shape=(2, 3, 1)).fit(X, y).predict(X[:3])
    assert set(seen) == {(2, 3, 1)}
    with pytest.raises(ValueError, match="input_shape"):
        LANTKClassifier(arch=kfn, input_shape=(4, 4)).fit(X, y)


@pytest.mark.skipif(not HAS_NTH, reason="lantk.nth is not there")
def test_nth_variant_matches_nth_kernel():
    from lantk.nth import nth_kernel

    X, y = _blobs(n=30, d=4)
    ypm = np.where(y[:24] == 1, 1.0, -1.0)
    clf = LANTKClassifier(variant="nth", width=64, samples=40, seed=2).fit(X[:24], y[:24])
    K, Kt = nth_kernel(X[:24], ypm, X[24:], width=64, samples=40, seed=2)
    K = 0.5 * (K + K.T)
    np.testing.assert_allclose(clf.decision_function(X[24:]), kernel_regression(K, Kt, ypm),
                               rtol=1e-7, atol=1e-9)
    assert clf.lambda_ == 0.0


def test_bad_parameters():
    X, y = _blobs(n=20)
    with pytest.raises(ValueError, match="unknown variant 'kr-v3'"):
        LANTKClassifier(variant="kr-v3").fit(X, y)
    with pytest.raises(ValueError, match="c must be a finite number"):
        LANTKClassifier(c=np.nan).fit(X, y)
    with pytest.raises(ValueError, match="rho must be a finite number >= 0"):
        LANTKClassifier(rho=-1).fit(X, y)
    with pytest.raises(ValueError, match="one class"):
        LANTKClassifier().fit(X, np.zeros(20))
    with pytest.raises(ValueError, match="arch must be None"):
        LANTKClassifier(arch=3).fit(X, y)
    with pytest.raises(ValueError, match="arch must be None"):
        LANTKClassifier(variant="nth", arch=two_layer_relu_ntk).fit(X, y)
    with pytest.raises(ValueError, match="eps must be in"):
        LANTKClassifier(variant="fjlt-v1", solver="fjlt", eps=2.0).fit(X, y)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        LANTKClassifier().fit(Xn, y)


def test_module_docstring_examples_run():
    import doctest

    from lantk import classifier

    res = doctest.testmod(classifier)
    assert res.failed == 0 and res.attempted > 0


# --------------------------------------------------------------------------- scaling and input
def _digits_pair():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    keep = (y == 3) | (y == 5)
    return X[keep][:120] / 16, y[keep][:120]


def test_grid_search_over_c_computes_each_kernel_once_per_fold():
    from sklearn.model_selection import GridSearchCV

    from lantk import classifier as clf_mod

    calls = []

    def kernel(X1, X2):
        calls.append((len(X1), len(X2)))
        return clf_mod.two_layer_relu_ntk(X1, X2)

    X, y = _digits_pair()
    clf_mod._CACHE.clear()
    clf_mod._ENTRIES.reset()
    search = GridSearchCV(LANTKClassifier(variant="kr-v2", arch=kernel),
                          {"c": [0.03, 0.1, 0.3, 1.0, 3.0]}, cv=3, refit=False)
    search.fit(X, y)
    # the folds' blocks overlap: only unknown entries are computed, so the 15 fits together
    # compute no more entries than the full kernel has (not one kernel per fold and c)
    assert sum(a * b for a, b in calls) <= len(X) ** 2, calls
    assert len(calls) <= 6, calls
    assert clf_mod._ENTRIES.computed <= len(X) ** 2


def test_cached_blocks_do_not_change_the_result():
    from lantk import classifier as clf_mod

    X, y = _digits_pair()
    clf_mod._CACHE.clear()
    a = LANTKClassifier(variant="fjlt-v1", c=0.3).fit(X[:80], y[:80]).decision_function(X[80:90])
    b = LANTKClassifier(variant="fjlt-v1", c=0.3).fit(X[:80], y[:80]).decision_function(X[80:90])
    clf_mod._CACHE.clear()
    clf_mod._ENTRIES.reset()
    c = LANTKClassifier(variant="fjlt-v1", c=0.3).fit(X[:80], y[:80]).decision_function(X[80:90])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    # another c reuses the kernel and Z but gives another classifier
    d = LANTKClassifier(variant="fjlt-v1", c=1.0).fit(X[:80], y[:80]).decision_function(X[80:90])
    assert not np.allclose(a, d)


def test_inputs_far_outside_the_training_range_warn():
    X, y = _digits_pair()
    clf = LANTKClassifier(variant="kr-v1", c=0.3).fit(X, y)
    with pytest.warns(RuntimeWarning, match="Nadaraya-Watson weights sum to <= 0"):
        clf.predict(X[:40] * 100)


@pytest.mark.parametrize("c", [-1.0, float("inf")])
def test_negative_or_infinite_c_is_refused(c):
    X, y = _digits_pair()
    with pytest.raises(ValueError, match="c must be a finite number >= 0"):
        LANTKClassifier(variant="kr-v1", c=c).fit(X, y)


def test_a_huge_c_is_an_error_not_a_hang():
    X, y = _digits_pair()
    with pytest.raises(ValueError, match="lower c|not finite"):
        LANTKClassifier(variant="kr-v1", c=1e306).fit(X, y)
