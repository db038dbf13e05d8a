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
@pytest.mark.parametrize("temperature", ["auto", None, 0.5])
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


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    cuts=st.lists(st.integers(1, 239), max_size=4),
    temperature=st.sampled_from(["auto", None]),
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
    clf = AnalyticSoftmaxClassifier()
    clf.partial_fit(X[:100], y[:100])
    assert_array_equal(clf.classes_, [0])
    clf.partial_fit(X[100:], y[100:])
    assert_array_equal(clf.classes_, [0, 1, 2])
    whole = AnalyticSoftmaxClassifier().fit(X, y)
    assert_allclose(clf.predict_proba(X), whole.predict_proba(X), rtol=1e-9)


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
    clf = AnalyticSoftmaxClassifier().fit(X, y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert clf.coef_.dtype == clf.intercept_.dtype == np.float32
    assert clf.predict_proba(X[:10]).dtype == np.float32
    assert peak < 0.5 * X.size * 8  # a float64 copy of X alone would be 1.0
    reference = AnalyticSoftmaxClassifier().fit(X.astype(np.float64), y)
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
