"""AnalyticLogisticRegression and AnalyticSoftmaxClassifier."""

import pickle
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.linalg import LinAlgWarning
from sklearn.datasets import load_iris, make_classification
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skprob import AnalyticLogisticRegression, AnalyticSoftmaxClassifier

CLASSIFIERS = [AnalyticLogisticRegression, AnalyticSoftmaxClassifier]


def gaussian_data(n=600, d=8, n_classes=3, seed=0, offset=0.0, spread=1.0):
    rng = np.random.RandomState(seed)
    y = rng.randint(n_classes, size=n)
    centres = rng.normal(scale=spread, size=(n_classes, d))
    A = rng.normal(size=(d, d)) / np.sqrt(d)
    X = centres[y] + rng.normal(size=(n, d)) @ A + offset
    return X, y


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_softmax_equals_lda_lsqr(n_classes):
    X, y = gaussian_data(n_classes=n_classes)
    lda = LinearDiscriminantAnalysis(solver="lsqr").fit(X, y)
    clf = AnalyticSoftmaxClassifier(temperature=None).fit(X, y)
    assert clf.coef_.shape == (n_classes, X.shape[1])
    assert_allclose(clf.predict_proba(X), lda.predict_proba(X), rtol=1e-8, atol=1e-12)
    assert_array_equal(clf.predict(X), lda.predict(X))
    assert_allclose(clf.means_, lda.means_, rtol=1e-12)
    assert_allclose(clf.covariance_, lda.covariance_, rtol=1e-10)


def test_logistic_binary_has_sklearn_shapes():
    X, y = gaussian_data(n_classes=2)
    clf = AnalyticLogisticRegression(temperature=None).fit(X, y)
    lr = LogisticRegression().fit(X, y)
    assert clf.coef_.shape == lr.coef_.shape == (1, X.shape[1])
    assert clf.intercept_.shape == lr.intercept_.shape == (1,)
    scores = clf.decision_function(X)
    assert scores.shape == (len(X),)
    assert_allclose(scores, X @ clf.coef_[0] + clf.intercept_[0], rtol=1e-12)
    lda = LinearDiscriminantAnalysis(solver="lsqr").fit(X, y)
    assert_allclose(clf.coef_, lda.coef_, rtol=1e-8)
    assert_allclose(clf.intercept_, lda.intercept_, rtol=1e-8, atol=1e-10)
    assert_allclose(clf.predict_proba(X), lda.predict_proba(X), rtol=1e-8, atol=1e-12)


def test_binary_softmax_decision_is_the_log_odds():
    X, y = gaussian_data(n_classes=2)
    soft = AnalyticSoftmaxClassifier().fit(X, y)
    logistic = AnalyticLogisticRegression().fit(X, y)
    logits = X @ soft.coef_.T + soft.intercept_
    assert soft.coef_.shape == (2, X.shape[1])
    assert_allclose(soft.decision_function(X), logits[:, 1] - logits[:, 0], rtol=1e-10)
    assert_allclose(soft.decision_function(X), logistic.decision_function(X), rtol=1e-9)
    assert_allclose(soft.predict_proba(X), logistic.predict_proba(X), rtol=1e-9)


def test_multiclass_logistic_is_the_softmax_model():
    X, y = gaussian_data(n_classes=4)
    a = AnalyticLogisticRegression().fit(X, y)
    b = AnalyticSoftmaxClassifier().fit(X, y)
    assert_allclose(a.coef_, b.coef_)
    assert_allclose(a.predict_proba(X), b.predict_proba(X))


@pytest.mark.parametrize("Classifier", CLASSIFIERS)
@pytest.mark.parametrize("temperature", [None, 0.5])
def test_partial_fit_on_any_chunking_equals_fit(Classifier, temperature):
    X, y = gaussian_data(n=500, n_classes=4)
    whole = Classifier(temperature=temperature).fit(X, y)
    stream = Classifier(temperature=temperature)
    # a one-row chunk, a chunk without classes 0 and 3, uneven sizes
    order = np.argsort(y, kind="stable")
    X, y = X[order], y[order]
    bounds = [0, 1, 40, 41, 300, 500]
    for a, b in zip(bounds[:-1], bounds[1:]):
        stream.partial_fit(X[a:b], y[a:b], classes=np.arange(4))
    assert_allclose(stream.temperature_, whole.temperature_, rtol=1e-10)
    assert_allclose(stream.coef_, whole.coef_, rtol=1e-10, atol=1e-12)
    assert_allclose(stream.intercept_, whole.intercept_, rtol=1e-10, atol=1e-12)
    assert_allclose(stream.covariance_, whole.covariance_, rtol=1e-10, atol=1e-14)
    assert_allclose(stream.predict_proba(X), whole.predict_proba(X), rtol=1e-9)


@pytest.mark.parametrize("Classifier", CLASSIFIERS)
def test_partial_fit_with_auto_temperature(Classifier):
    """The model is fit's to rounding; only the temperature depends on the
    chunking (each chunk is scored by the model of the data seen so far), by
    little when chunks are not tiny; one chunk is exactly fit."""
    X, y = make_classification(
        n_samples=3000,
        n_features=60,
        n_informative=30,
        n_classes=6,
        n_clusters_per_class=1,
        random_state=0,
    )  # a temperature the rows pin down (its evidence is worth > 500 rows)
    if Classifier is AnalyticLogisticRegression:
        y = (y > 2).astype(int)
    whole = Classifier().fit(X, y)
    assert whole._temperature_evidence[0] > 500
    one = Classifier().partial_fit(X, y)
    assert one.temperature_ == whole.temperature_
    assert_allclose(one.coef_, whole.coef_, rtol=1e-12)
    order = np.random.RandomState(0).permutation(len(y))
    stream = Classifier()
    for rows in np.array_split(order, 5):
        stream.partial_fit(X[rows], y[rows], classes=np.unique(y))
    assert stream.temperature_ == pytest.approx(whole.temperature_, rel=0.05)
    ratio = stream.temperature_ / whole.temperature_
    assert_allclose(stream.coef_, ratio * whole.coef_, rtol=1e-9, atol=1e-12)


# a first chunk of a few rows has a singular pooled covariance in 5 features:
# its intermediate model warns by design (tested above); the final one does not
@pytest.mark.filterwarnings("ignore:The class means differ:scipy.linalg.LinAlgWarning")
@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    cuts=st.lists(st.integers(1, 239), max_size=4),
    temperature=st.sampled_from([0.7, None]),
    Classifier=st.sampled_from(CLASSIFIERS),
)
def test_property_partial_fit_in_any_order_and_chunking_equals_fit(
    seed, cuts, temperature, Classifier
):
    rng = np.random.RandomState(seed)
    y = rng.randint(3, size=240)  # well conditioned: unit within-class covariance
    X = rng.normal(size=(3, 5))[y] + rng.normal(size=(240, 5))
    whole = Classifier(temperature=temperature).fit(X, y)
    stream = Classifier(temperature=temperature)
    order = np.random.RandomState(seed).permutation(len(y))
    bounds = [0, *sorted(set(cuts)), len(y)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        rows = order[a:b]
        stream.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
    assert_allclose(stream.temperature_, whole.temperature_, rtol=1e-10)
    assert_allclose(stream.coef_, whole.coef_, rtol=1e-10, atol=1e-12)
    assert_allclose(stream.intercept_, whole.intercept_, rtol=1e-10, atol=1e-12)
    assert_allclose(stream.predict_proba(X), whole.predict_proba(X), rtol=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    k=st.integers(-480, 480),
    seed=st.integers(0, 2**16),
    shrinkage=st.sampled_from([None, "auto", 0.3]),
    Classifier=st.sampled_from(CLASSIFIERS),
)
def test_property_a_power_of_two_scale_changes_nothing(k, seed, shrinkage, Classifier):
    """Features of 2**480 (1e144) or 2**-480: the model of the unscaled data."""
    X, y = gaussian_data(n=200, d=4, n_classes=3, seed=seed)
    options = dict(temperature=None, shrinkage=shrinkage)
    base = Classifier(**options).fit(X, y)
    scaled = Classifier(**options).fit(np.ldexp(X, k), y)
    assert scaled.shrinkage_ == pytest.approx(base.shrinkage_, rel=1e-12)
    assert_allclose(
        scaled.predict_proba(np.ldexp(X, k)),
        base.predict_proba(X),
        rtol=1e-9,
        atol=1e-12,
    )
    assert_array_equal(scaled.predict(np.ldexp(X, k)), base.predict(X))


def test_partial_fit_discovers_classes_without_classes_argument():
    X, y = gaussian_data(n=300, n_classes=3)
    order = np.argsort(y, kind="stable")
    X, y = X[order], y[order]
    clf = AnalyticSoftmaxClassifier(temperature=None)
    # a stream sorted by label: one class first is a clear error, nothing kept
    with pytest.raises(ValueError, match="only one class.*pass classes="):
        clf.partial_fit(X[:100], y[:100])
    assert not hasattr(clf, "classes_") and not hasattr(clf, "n_features_in_")
    clf.partial_fit(X[50:150], y[50:150])
    assert_array_equal(clf.classes_, [0, 1])
    clf.partial_fit(X[150:], y[150:])
    clf.partial_fit(X[:50], y[:50])
    assert_array_equal(clf.classes_, [0, 1, 2])
    whole = AnalyticSoftmaxClassifier(temperature=None).fit(X, y)
    assert_allclose(
        clf.predict_proba(X), whole.predict_proba(X), rtol=1e-9, atol=1e-300
    )


def test_partial_fit_with_declared_classes_and_one_seen_gives_it_probability_one():
    X, y = gaussian_data(n=100, n_classes=2)
    for Classifier in CLASSIFIERS:
        clf = Classifier().partial_fit(X[y == 1], y[y == 1], classes=[0, 1, 2])
        proba = clf.predict_proba(X)
        assert proba.shape == (100, 3)
        assert_array_equal(proba, np.tile([0.0, 1.0, 0.0], (100, 1)))
        assert_array_equal(clf.predict(X), 1)
    clf = AnalyticLogisticRegression().partial_fit(X[y == 0], y[y == 0], classes=[0, 1])
    assert_array_equal(clf.predict_proba(X), np.tile([1.0, 0.0], (100, 1)))
    assert np.all(np.isfinite(clf.predict_log_proba(X)[:, 0]))


def test_partial_fit_rejects_unknown_labels_and_changed_classes():
    X, y = gaussian_data(n=100, n_classes=3)
    clf = AnalyticSoftmaxClassifier().partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(X[:5], np.full(5, 7))
    with pytest.raises(ValueError, match="differs from the classes"):
        clf.partial_fit(X, y, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="not in classes"):
        AnalyticSoftmaxClassifier().partial_fit(X, y, classes=[0, 1])


def test_declared_but_unseen_class_gets_probability_zero():
    X, y = gaussian_data(n=100, n_classes=2)
    clf = AnalyticSoftmaxClassifier().partial_fit(X, y, classes=[0, 1, 2])
    proba = clf.predict_proba(X)
    assert_array_equal(proba[:, 2], 0.0)
    assert_allclose(proba.sum(1), 1.0)
    assert np.all(np.isfinite(proba))


@pytest.mark.parametrize("Classifier", CLASSIFIERS)
def test_integer_weights_equal_repeated_rows(Classifier):
    X, y = gaussian_data(n=200)
    repeats = np.random.RandomState(0).randint(1, 4, size=len(y))
    weighted = Classifier().fit(X, y, sample_weight=repeats)
    repeated = Classifier().fit(np.repeat(X, repeats, 0), np.repeat(y, repeats))
    assert_allclose(weighted.temperature_, repeated.temperature_, rtol=1e-9)
    assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-8)


def test_zero_weights_equal_dropping_rows():
    X, y = gaussian_data(n=200)
    w = np.random.RandomState(0).uniform(0.5, 2, size=len(y))
    w[::4] = 0
    weighted = AnalyticSoftmaxClassifier().fit(X, y, sample_weight=w)
    dropped = AnalyticSoftmaxClassifier().fit(
        X[w > 0], y[w > 0], sample_weight=w[w > 0]
    )
    assert_allclose(weighted.predict_proba(X), dropped.predict_proba(X), rtol=1e-9)


def test_float32_stays_float32_without_a_float64_copy():
    X, y = make_classification(
        n_samples=400_000, n_features=40, n_informative=10, n_classes=3, random_state=0
    )
    X = X.astype(np.float32)
    AnalyticSoftmaxClassifier().fit(X[:1000], y[:1000])  # warm up imports
    tracemalloc.start()
    clf = AnalyticSoftmaxClassifier(random_state=0).fit(X, y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert clf.coef_.dtype == clf.intercept_.dtype == np.float32
    assert clf.predict_proba(X[:10]).dtype == np.float32
    assert peak < 0.5 * X.size * 8  # a float64 copy of X alone would be 1.0
    reference = AnalyticSoftmaxClassifier(random_state=0).fit(X.astype(np.float64), y)
    assert_allclose(
        clf.predict_proba(X[:500]), reference.predict_proba(X[:500]), rtol=1e-4
    )


@pytest.mark.parametrize(
    "make_singular",
    [
        lambda X: X[:20],  # fewer samples than features
        lambda X: np.hstack([X, np.zeros((len(X), 2))]),  # constant features
        lambda X: np.hstack([X, X[:, :3]]),  # duplicated features
    ],
    ids=["n<d", "constant", "duplicated"],
)
def test_singular_covariance_gives_finite_probabilities(make_singular):
    X, y = gaussian_data(n=200, d=30)
    X = make_singular(X)
    y = y[: len(X)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = AnalyticSoftmaxClassifier().fit(X, y)
    assert len(caught) <= 1
    proba = clf.predict_proba(X)
    assert np.all(np.isfinite(proba))
    assert_allclose(proba.sum(1), 1.0)
    assert np.all(np.isfinite(clf.predict_log_proba(X)))


def test_constant_and_duplicated_features_change_nothing():
    """The pseudo-inverse ignores exact redundancy: same predictions, no warning."""
    X, y = gaussian_data(n=300, d=6)
    padded = np.hstack([X, np.full((300, 1), 3.0), X[:, :2]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = AnalyticSoftmaxClassifier(temperature=None).fit(X, y)
        b = AnalyticSoftmaxClassifier(temperature=None).fit(padded, y)
    assert_allclose(b.predict_proba(padded), a.predict_proba(X), rtol=1e-7)


def test_warns_when_means_differ_where_the_covariance_is_zero():
    X, y = gaussian_data(n=200, d=4)
    X = np.hstack([X, y[:, None].astype(float)])  # constant within each class
    with pytest.warns(LinAlgWarning, match="shrinkage"):
        AnalyticSoftmaxClassifier().fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = AnalyticSoftmaxClassifier(shrinkage="auto").fit(X, y)
    assert clf.score(X, y) == 1.0  # shrinkage lets the perfect feature count


def test_large_offset_does_not_change_predictions():
    X, y = gaussian_data(n=300)
    a = AnalyticSoftmaxClassifier().fit(X, y)
    b = AnalyticSoftmaxClassifier().fit(X + 1e7, y)
    assert_allclose(b.predict_proba(X + 1e7), a.predict_proba(X), rtol=1e-5, atol=1e-7)
    assert_allclose(b.temperature_, a.temperature_, rtol=1e-6)


def test_predict_log_proba_is_finite_where_proba_underflows():
    X, y = gaussian_data(n=300, spread=30.0)
    clf = AnalyticLogisticRegression(temperature=None).fit(X, y)
    far = X * 50
    assert np.any(clf.predict_proba(far) == 0.0)
    log_proba = clf.predict_log_proba(far)
    assert np.all(np.isfinite(log_proba))
    with np.errstate(divide="ignore"):
        safe = clf.predict_proba(far) > 1e-300
        assert_allclose(
            log_proba[safe], np.log(clf.predict_proba(far))[safe], rtol=1e-10
        )


def test_binary_log_proba_is_finite_where_proba_underflows():
    X, y = gaussian_data(n=300, n_classes=2, spread=30.0)
    clf = AnalyticLogisticRegression(temperature=None).fit(X, y)
    assert np.all(np.isfinite(clf.predict_log_proba(X * 100)))


def test_temperature_scales_the_logits_only():
    X, y = gaussian_data()
    raw = AnalyticSoftmaxClassifier(temperature=None).fit(X, y)
    hot = AnalyticSoftmaxClassifier(temperature=0.25).fit(X, y)
    assert raw.temperature_ == 1.0 and hot.temperature_ == 0.25
    assert_allclose(hot.coef_, 0.25 * raw.coef_)
    assert_array_equal(hot.predict(X), raw.predict(X))


def test_auto_temperature_minimises_held_out_log_loss():
    """Few samples per feature: the raw closed form is overconfident."""
    X, y = make_classification(
        n_samples=3000,
        n_features=60,
        n_informative=20,
        n_classes=5,
        n_clusters_per_class=1,
        class_sep=1.0,
        random_state=0,
    )
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, train_size=300, random_state=0
    )
    raw = AnalyticSoftmaxClassifier(temperature=None).fit(X_train, y_train)
    auto = AnalyticSoftmaxClassifier().fit(X_train, y_train)

    def test_loss(T):
        log_proba = T * (X_test @ raw.coef_.T + raw.intercept_)
        log_proba -= np.logaddexp.reduce(log_proba, axis=1, keepdims=True)
        return -log_proba[np.arange(len(y_test)), y_test].mean()

    assert auto.temperature_ < 0.7
    grid = np.geomspace(0.01, 2, 200)
    best = grid[np.argmin([test_loss(T) for T in grid])]
    # the cross-fitted choice is close to the best temperature in hindsight
    assert test_loss(auto.temperature_) < min(test_loss(1.0), 1.1 * test_loss(best))


def test_auto_temperature_stays_finite_on_separable_data():
    X, y = gaussian_data(n=200, spread=100.0)
    clf = AnalyticSoftmaxClassifier().fit(X, y)
    assert clf.score(X, y) == 1.0
    # the loss is flat in T there; the prior on log(T) keeps T near 1
    assert 0.5 < clf.temperature_ < 100.0


def test_auto_temperature_stops_at_an_exact_root():
    """Held-out rows so far apart that their softmax is exactly one-hot.

    The log-loss term of the slope is then exactly 0 and the prior's root is
    T = 1 exactly; the solver must stop there, not bisect towards it.
    """
    X, y = gaussian_data(n=600, spread=1e4)
    clf = AnalyticSoftmaxClassifier().fit(X, y)
    assert clf.temperature_ == 1.0


def test_auto_temperature_falls_back_to_one_on_tiny_data():
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.2], [0.2, 0.9]])
    clf = AnalyticSoftmaxClassifier().fit(X, [0, 1, 1, 0])
    assert np.isfinite(clf.temperature_) and clf.temperature_ > 0


def test_priors_enter_the_decision_rule_only():
    X, y = gaussian_data()
    base = AnalyticSoftmaxClassifier(temperature=None).fit(X, y)
    priors = np.array([0.7, 0.2, 0.1])
    tilted = AnalyticSoftmaxClassifier(temperature=None, priors=priors).fit(X, y)
    uniform = AnalyticSoftmaxClassifier(temperature=None, priors="uniform").fit(X, y)
    assert_allclose(tilted.covariance_, base.covariance_)
    assert_allclose(tilted.coef_, base.coef_)
    shift = np.log(priors) - np.log(base.priors_)
    assert_allclose(tilted.intercept_ - base.intercept_, shift, rtol=1e-10)
    assert_allclose(uniform.priors_, 1 / 3)
    lda = LinearDiscriminantAnalysis(solver="lsqr", priors=priors).fit(X, y)
    assert not np.allclose(lda.covariance_, base.covariance_)  # LDA pools by priors


def test_priors_are_validated():
    X, y = gaussian_data()
    with pytest.raises(ValueError, match="one prior per class"):
        AnalyticSoftmaxClassifier(priors=[0.5, 0.5]).fit(X, y)
    with pytest.raises(ValueError, match="non-negative"):
        AnalyticSoftmaxClassifier(priors=[1.5, -0.25, -0.25]).fit(X, y)
    with pytest.warns(UserWarning, match="Renormalizing"):
        clf = AnalyticSoftmaxClassifier(priors=[1, 1, 2]).fit(X, y)
    assert_allclose(clf.priors_, [0.25, 0.25, 0.5])


def test_total_covariance_keeps_the_direction_and_tempers_the_odds():
    X, y = gaussian_data(n_classes=2)
    within = AnalyticLogisticRegression(temperature=None).fit(X, y)
    total = AnalyticLogisticRegression(temperature=None, covariance="total").fit(X, y)
    cosine = (within.coef_ @ total.coef_.T) / (
        np.linalg.norm(within.coef_) * np.linalg.norm(total.coef_)
    )
    assert_allclose(cosine, 1.0, rtol=1e-10)
    assert np.linalg.norm(total.coef_) < np.linalg.norm(within.coef_)


def test_shrinkage_auto_is_oas_from_the_statistics():
    """OAS of the within-class scatter in standardised units."""
    from sklearn.covariance import oas

    X, y = gaussian_data(n=60, d=20)
    clf = AnalyticSoftmaxClassifier(shrinkage="auto").fit(X, y)
    centred = (X - clf.means_[y]) / X.std(axis=0)
    assert_allclose(clf.shrinkage_, oas(centred, assume_centered=True)[1], rtol=1e-10)
    assert 0 < clf.shrinkage_ < 1


def test_string_labels_and_pandas_input():
    X, y = gaussian_data()
    names = np.array(["cat", "dog", "emu"])[y]
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    clf = AnalyticSoftmaxClassifier().fit(frame, pd.Series(names, dtype="category"))
    assert_array_equal(clf.classes_, ["cat", "dog", "emu"])
    assert_array_equal(clf.feature_names_in_, frame.columns)
    assert set(clf.predict(frame)) <= {"cat", "dog", "emu"}
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame.rename(columns={"f0": "other"}))


def test_one_class_is_a_clear_error():
    X, _ = gaussian_data(n=20)
    with pytest.raises(ValueError, match="at least 2 classes"):
        AnalyticSoftmaxClassifier().fit(X, np.zeros(20))


def test_nan_is_a_clear_error():
    X, y = gaussian_data(n=20)
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        AnalyticSoftmaxClassifier().fit(X, y)


def test_grid_search_and_pipeline():
    X, y = load_iris(return_X_y=True)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), AnalyticSoftmaxClassifier()),
        {"analyticsoftmaxclassifier__shrinkage": [None, "auto", 0.2]},
        cv=3,
    ).fit(X, y)
    assert search.best_score_ > 0.9


@pytest.mark.parametrize("Classifier", CLASSIFIERS)
def test_pickle_round_trip(Classifier):
    X, y = gaussian_data()
    clf = Classifier().fit(X, y)
    loaded = pickle.loads(pickle.dumps(clf))
    assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    loaded.partial_fit(X[:10], y[:10])  # the statistics travel with the model


@pytest.mark.parametrize("seed", range(5))
def test_weights_equal_repetition_on_rank_deficient_data(seed):
    """Fewer distinct rows than features: rounding must not decide the model."""
    rng = np.random.RandomState(seed)
    X = rng.uniform(size=(15, 30))
    y = np.arange(15) % 3
    repeats = rng.randint(1, 4, size=15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LinAlgWarning)
        weighted = AnalyticSoftmaxClassifier().fit(X, y, sample_weight=repeats)
        repeated = AnalyticSoftmaxClassifier().fit(
            np.repeat(X, repeats, 0), np.repeat(y, repeats)
        )
    assert_allclose(weighted.temperature_, repeated.temperature_, rtol=1e-7)
    X_new = rng.uniform(size=(20, 30))  # rows outside the training span
    assert_allclose(
        weighted.predict_proba(X_new),
        repeated.predict_proba(X_new),
        rtol=1e-6,
        atol=1e-9,
    )


# ---------------------------------------------------------------------------
# Defaults a user can trust: no training rows, invariance, edge cases
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("Classifier", CLASSIFIERS)
@pytest.mark.parametrize("n_classes", [2, 3, 10, 50])
@pytest.mark.parametrize("temperature", ["auto", None])
# one sample of each of 50 classes is the point: scikit-learn's guess that y
# "could represent a regression problem" does not apply
@pytest.mark.filterwarnings("ignore:The number of unique classes is greater than")
def test_one_sample_per_class(Classifier, n_classes, temperature):
    """No within-class variation at all: finite probabilities (the priors)."""
    X = np.random.RandomState(0).normal(size=(n_classes, 6))
    y = np.arange(n_classes)
    with pytest.warns(LinAlgWarning, match="pooled covariance is singular"):
        clf = Classifier(temperature=temperature).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (n_classes, n_classes) and np.all(np.isfinite(proba))
    assert_allclose(proba, np.full_like(proba, 1 / n_classes), rtol=1e-12)
    assert clf.temperature_ == 1.0


@pytest.mark.parametrize("temperature", ["auto", None])
# the first calls see fewer rows than features: the pooled covariance is
# singular, and saying so is the intended behaviour
@pytest.mark.filterwarnings("ignore:The class means differ:scipy.linalg.LinAlgWarning")
def test_online_partial_fit_one_row_per_call(temperature):
    X, y = gaussian_data(n=60, d=4, n_classes=3)
    clf = AnalyticSoftmaxClassifier(temperature=temperature)
    for i in range(len(y)):
        clf.partial_fit(X[i : i + 1], y[i : i + 1], classes=[0, 1, 2])
        assert np.all(np.isfinite(clf.predict_proba(X)))
    if temperature is None:
        whole = AnalyticSoftmaxClassifier(temperature=None).fit(X, y)
        assert_allclose(clf.predict_proba(X), whole.predict_proba(X), rtol=1e-9)


@pytest.mark.parametrize("temperature", ["auto", None])
def test_partial_fit_is_atomic(temperature):
    """A call that raises leaves the model exactly as it was."""
    X, y = gaussian_data(n=300, d=4, n_classes=3)
    clf = AnalyticSoftmaxClassifier(temperature=temperature)
    clf.partial_fit(X[:200], y[:200], classes=[0, 1, 2])
    before = pickle.dumps(clf)
    bad = X[200:].copy()
    bad[50, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.partial_fit(bad, y[200:])
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[200:, :3], y[200:])
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(X[200:], np.full(100, 7))
    assert pickle.dumps(clf) == before
    # a first call that raises leaves the model unfitted
    fresh = AnalyticSoftmaxClassifier()
    with pytest.raises(ValueError, match="sum to zero"):
        fresh.partial_fit(X, y, classes=[0, 1, 2], sample_weight=np.zeros(len(y)))
    assert vars(fresh) == vars(AnalyticSoftmaxClassifier())


def test_a_chunk_of_zero_weights_is_accepted_and_changes_nothing():
    X, y = gaussian_data(n=300, d=4, n_classes=3)
    clf = AnalyticSoftmaxClassifier(temperature=None).partial_fit(X[:200], y[:200])
    proba = clf.predict_proba(X)
    clf.partial_fit(X[200:], y[200:], sample_weight=np.zeros(100))
    assert_allclose(clf.predict_proba(X), proba, rtol=1e-12)


@pytest.mark.parametrize("feature", [0, 3])
@pytest.mark.parametrize("factor", [1e-12, 1e-6, 1e6, 1e12])
def test_rescaling_one_feature_changes_no_prediction(feature, factor):
    """Each feature is judged by its own magnitude (bytes next to fractions)."""
    X, y = gaussian_data(n=400, d=5, n_classes=3)
    base = AnalyticSoftmaxClassifier().fit(X, y)
    scaled_X = X.copy()
    scaled_X[:, feature] *= factor
    scaled = AnalyticSoftmaxClassifier().fit(scaled_X, y)
    assert_array_equal(scaled.predict(scaled_X), base.predict(X))
    assert_allclose(scaled.predict_proba(scaled_X), base.predict_proba(X), rtol=1e-6)
    assert scaled.temperature_ == pytest.approx(base.temperature_, rel=1e-8)


@pytest.mark.parametrize("Classifier", CLASSIFIERS)
def test_auto_temperature_does_not_depend_on_units_order_or_dtype(Classifier):
    X, y = gaussian_data(n=500, d=6, n_classes=2 if Classifier is CLASSIFIERS[0] else 4)
    X = X.astype(np.float32).astype(np.float64)  # exactly representable in float32
    base = Classifier().fit(X, y)
    units = 10.0 ** np.random.RandomState(1).uniform(-8, 8, size=6)
    order = np.random.RandomState(2).permutation(6)
    variants = {
        "units": Classifier().fit(X * units, y),
        "column order": Classifier().fit(X[:, order], y),
        "float32": Classifier().fit(X.astype(np.float32), y),
        "Fortran order": Classifier().fit(np.asfortranarray(X), y),
        "row order": Classifier().fit(X[::-1], y[::-1]),
    }
    for name, clf in variants.items():
        assert clf.temperature_ == pytest.approx(base.temperature_, rel=1e-6), name
    assert_allclose(
        variants["units"].predict_proba(X * units), base.predict_proba(X), rtol=1e-6
    )


def test_random_state_makes_the_sampled_temperature_reproducible():
    """Above held_out_size rows, a random sample of them is scored."""
    from skprob._discriminant import held_out_size

    X, y = gaussian_data(n=held_out_size(2, 3) + 3000, d=3, n_classes=2)
    first = AnalyticSoftmaxClassifier(random_state=0).fit(X, y).temperature_
    again = AnalyticSoftmaxClassifier(random_state=0).fit(X, y).temperature_
    other = AnalyticSoftmaxClassifier(random_state=1).fit(X, y).temperature_
    assert first == again
    assert first != other and other == pytest.approx(first, rel=0.05)
    rng = np.random.RandomState(5)
    assert AnalyticSoftmaxClassifier(random_state=rng).fit(X, y).temperature_ > 0
    # below it every row is scored: no randomness at all
    small = [
        AnalyticSoftmaxClassifier(random_state=seed).fit(X[:500], y[:500])
        for seed in (0, 1)
    ]
    assert small[0].temperature_ == small[1].temperature_


def test_huge_priors_are_normalised_without_overflow():
    X, y = gaussian_data()
    huge = AnalyticSoftmaxClassifier(priors=[1e308, 1e308, 1e308])
    with pytest.warns(UserWarning, match="Renormalizing"):
        huge.fit(X, y)
    uniform = AnalyticSoftmaxClassifier(priors="uniform").fit(X, y)
    assert_allclose(huge.predict_proba(X), uniform.predict_proba(X), rtol=1e-12)


@pytest.mark.parametrize("Classifier", CLASSIFIERS)
def test_fitted_model_holds_no_training_rows(Classifier):
    """Neither the float64 nor the float32 bytes of any training row, nor of
    any single training value, are in the pickle: it holds statistics only."""
    X, y = gaussian_data(n=400, d=6, n_classes=3)
    for dtype in (np.float64, np.float32):
        Xd = X.astype(dtype)
        clf = Classifier().fit(Xd[:300], y[:300])
        clf.partial_fit(Xd[300:], y[300:])
        blob = pickle.dumps(clf)
        assert not any(row.tobytes() in blob for row in Xd)
        assert not any(value.tobytes() in blob for value in Xd.ravel())
        sizes = [np.size(v) for v in vars(clf).values()]
        assert max(sizes) < 300  # nothing of the size of the data


# ---------------------------------------------------------------------------
# score_samples: the closed-form density and novelty scores
# ---------------------------------------------------------------------------


def _reference_scores(clf, X_train, y_train, X):
    """The three scores by scipy and numpy, from the training rows themselves."""
    from scipy.stats import multivariate_normal

    classes, counts = np.unique(y_train, return_counts=True)
    frequency = counts / counts.sum()
    means = np.array([X_train[y_train == c].mean(0) for c in classes])
    cov = clf.covariance_
    density = np.logaddexp.reduce(
        [
            np.log(f) + multivariate_normal(m, cov, allow_singular=True).logpdf(X)
            for f, m in zip(frequency, means)
        ],
        axis=0,
    )
    inv = np.linalg.pinv(cov)
    diff = X[:, None, :] - means[None]
    distance = np.einsum("nkd,de,nke->nk", diff, inv, diff)
    total = np.cov(X_train, rowvar=False, bias=True)
    if clf.shrinkage_:  # the total covariance of the model: shrunk within + between
        centre = frequency @ means
        between = ((means - centre) * frequency[:, None]).T @ (means - centre)
        total = cov + between
    centred = X - X_train.mean(0)
    background = np.einsum("nd,de,ne->n", centred, np.linalg.pinv(total), centred)
    return {
        "density": density,
        "mahalanobis": -distance.min(1),
        "relative": -(distance.min(1) - background),
    }


@pytest.mark.parametrize("shrinkage", [None, 0.3])
@pytest.mark.parametrize("Classifier", CLASSIFIERS)
def test_score_samples_equal_their_definitions(Classifier, shrinkage):
    X, y = gaussian_data(n=300, d=5, n_classes=3, offset=3.0)
    X_new = np.vstack([X[:20], X[:20] * 3 + 5])
    clf = Classifier(shrinkage=shrinkage).fit(X, y)
    expected = _reference_scores(clf, X, y, X_new)
    for kind in ("density", "mahalanobis", "relative"):
        scores = clf.set_params(novelty_score=kind).score_samples(X_new)
        assert scores.shape == (40,) and scores.dtype == np.float64
        assert_allclose(scores, expected[kind], rtol=1e-9, atol=1e-9, err_msg=kind)
    # rows far from the training data are less typical
    assert np.median(scores[:20]) > np.median(scores[20:])


def test_density_on_a_singular_covariance_is_the_density_on_its_support():
    X, y = gaussian_data(n=300, d=4, n_classes=3)
    X = np.hstack([X, 2 * X[:, :1] - X[:, 1:2]])  # a column in the span of two
    clf = AnalyticSoftmaxClassifier(novelty_score="density").fit(X, y)
    expected = _reference_scores(clf, X, y, X[:30])["density"]
    assert_allclose(clf.score_samples(X[:30]), expected, rtol=1e-8)


def test_score_samples_do_not_depend_on_units_or_temperature():
    X, y = gaussian_data(n=300, d=5, n_classes=3)
    units = 10.0 ** np.random.RandomState(0).uniform(-6, 6, size=5)
    for kind in ("mahalanobis", "relative"):
        base = AnalyticSoftmaxClassifier(novelty_score=kind).fit(X, y)
        scaled = AnalyticSoftmaxClassifier(novelty_score=kind, temperature=0.1)
        scaled.fit(X * units, y)
        assert_allclose(
            scaled.score_samples(X * units), base.score_samples(X), rtol=1e-7
        )


# 15 rows of 30 features: the pooled covariance is singular, as intended
@pytest.mark.filterwarnings("ignore:The class means differ:scipy.linalg.LinAlgWarning")
def test_copies_of_a_row_are_held_out_together_wherever_they_lie():
    """Identical rows at any positions in memory form one held-out group (a
    floating-point projection of a row may round differently by position)."""
    rng = np.random.RandomState(42)
    X = rng.rand(15, 30)
    y = rng.randint(0, 3, size=15)
    repeats = rng.randint(0, 5, size=15)
    Xr, yr = X.repeat(repeats, axis=0), y.repeat(repeats)
    weighted = AnalyticSoftmaxClassifier().fit(X, y, sample_weight=repeats)
    for order in (slice(None), slice(None, None, -1)):
        repeated = AnalyticSoftmaxClassifier().fit(Xr[order], yr[order])
        assert repeated.temperature_ == pytest.approx(weighted.temperature_, rel=1e-9)
