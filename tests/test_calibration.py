"""CANCalibrator: CAN around any classifier, against the row-by-row definition
of :mod:`tests.test_can`."""

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import config_context
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    LeaveOneGroupOut,
    StratifiedKFold,
    cross_val_predict,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.estimator_checks import (
    check_sample_weight_equivalence_on_dense_data,
)
from test_can import literal_can, literal_uncertainty

from skprob import AnalyticSoftmaxClassifier, CANCalibrator
from skprob._simplex import topk_uncertainty

# ---------------------------------------------------------------------------
# CANCalibrator
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=500,
        n_features=8,
        n_informative=6,
        n_classes=4,
        class_sep=0.7,
        weights=[0.4, 0.3, 0.2, 0.1],
        random_state=0,
    )
    return X[:400], X[400:], y[:400], y[400:]


def out_of_fold_reference(estimator, X, y, cv, threshold, top_k=3):
    """Confident rows of cross_val_predict, in the order of the test folds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # classes missing from a fold
        proba = cross_val_predict(estimator, X, y, cv=cv, method="predict_proba")
    order = np.concatenate([test for _, test in cv.split(X, y)])
    proba = proba[order]
    confident = [literal_uncertainty(row, top_k) < threshold for row in proba]
    return proba[confident]


@pytest.mark.parametrize("n_iter, alpha", [(1, 1.0), (2, 2.0)])
def test_calibrator_equals_the_definition(data, n_iter, alpha):
    X, X_test, y, _ = data
    base = AnalyticSoftmaxClassifier()
    clf = CANCalibrator(base, threshold=0.7, n_iter=n_iter, alpha=alpha).fit(X, y)
    reference = out_of_fold_reference(base, X, y, StratifiedKFold(5), 0.7)
    assert_allclose(clf.reference_, reference, rtol=1e-12)
    prior = np.bincount(y) / len(y)
    assert_allclose(clf.prior_, prior)
    proba = clone(base).fit(X, y).predict_proba(X_test)
    expected = literal_can(
        proba, reference, prior, threshold=0.7, n_iter=n_iter, alpha=alpha
    )
    got = clf.predict_proba(X_test)
    assert 10 < np.sum(np.any(got != proba, axis=1)) < len(proba)
    assert_allclose(got, expected, rtol=1e-10, atol=1e-15)
    assert_array_equal(clf.predict(X_test), clf.classes_[got.argmax(axis=1)])
    assert_allclose(clf.predict_log_proba(X_test), np.log(got), rtol=1e-12)
    assert clf.score(X_test, clf.predict(X_test)) == 1.0


def test_batch_and_both_references(data):
    X, X_test, y, _ = data
    options = dict(threshold=0.7, prior="uniform")
    fitted = CANCalibrator(**options).fit(X, y)
    proba = fitted.estimator_.predict_proba(X_test)
    confident = topk_uncertainty(proba) < 0.7
    prior = np.full(4, 0.25)

    batch = CANCalibrator(reference="batch", **options).fit(X, y)
    assert batch.reference_.shape == (0, 4)
    expected = literal_can(proba, proba[confident], prior, threshold=0.7)
    assert_allclose(batch.predict_proba(X_test), expected, rtol=1e-10)

    both = CANCalibrator(reference="both", **options).fit(X, y)
    union = np.vstack([fitted.reference_, proba[confident]])
    expected = literal_can(proba, union, prior, threshold=0.7)
    assert_allclose(both.predict_proba(X_test), expected, rtol=1e-10)


def test_frozen_estimator_is_not_refit(data):
    X, X_test, y, _ = data
    base = LogisticRegression().fit(X[:200], y[:200])
    coef = base.coef_.copy()
    clf = CANCalibrator(FrozenEstimator(base), threshold=0.7).fit(X[200:], y[200:])
    assert_array_equal(base.coef_, coef)
    calibration = base.predict_proba(X[200:])
    confident = topk_uncertainty(calibration) < 0.7
    assert_allclose(clf.reference_, calibration[confident])
    assert_allclose(clf.prior_, np.bincount(y[200:]) / 200)
    expected = literal_can(
        base.predict_proba(X_test), calibration[confident], clf.prior_, threshold=0.7
    )
    assert_allclose(clf.predict_proba(X_test), expected, rtol=1e-10)
    with pytest.raises(ValueError, match="does not know"):
        CANCalibrator(FrozenEstimator(base)).fit(X[:10], np.full(10, 7))


def test_frozen_estimator_with_sample_weight(data):
    X, _, y, _ = data
    base = LogisticRegression().fit(X[:200], y[:200])
    weight = np.linspace(0.5, 2.0, 200)
    expected = np.bincount(y[200:], weights=weight) / weight.sum()
    for routing in (False, True):
        with config_context(enable_metadata_routing=routing):
            clf = CANCalibrator(FrozenEstimator(base), threshold=0.7)
            clf.fit(X[200:], y[200:], sample_weight=weight)
        assert_allclose(clf.prior_, expected)
        confident = topk_uncertainty(base.predict_proba(X[200:])) < 0.7
        assert_allclose(clf.reference_weight_, weight[confident])
    with pytest.raises(ValueError, match="Negative values"):
        CANCalibrator().fit(X, y, sample_weight=-np.ones(len(y)))


def test_sample_weight_weights_prior_reference_and_estimator(data):
    X, _, y, _ = data
    weight = np.random.RandomState(0).randint(0, 4, size=len(y)).astype(float)
    clf = CANCalibrator(threshold=0.7).fit(X, y, sample_weight=weight)
    assert_allclose(clf.prior_, np.bincount(y, weights=weight) / weight.sum())
    direct = AnalyticSoftmaxClassifier().fit(X, y, sample_weight=weight)
    assert_allclose(clf.estimator_.coef_, direct.coef_)
    assert np.all(clf.reference_weight_ > 0)
    assert_array_equal(np.unique(clf.reference_weight_), [1.0, 2.0, 3.0])


def test_integer_weights_equal_repeated_rows(data):
    X, X_test, y, _ = data
    weight = np.random.RandomState(2).randint(0, 3, size=len(y))
    groups = np.arange(len(y)) % 3
    repeated = [np.repeat(a, weight, axis=0) for a in (X, y, groups)]
    options = dict(threshold=0.7, n_iter=2, alpha=1.5, reference="both")
    base = AnalyticSoftmaxClassifier(temperature=0.5)
    logo = LeaveOneGroupOut()
    by_weight = CANCalibrator(base, cv=list(logo.split(X, y, groups)), **options)
    by_weight.fit(X, y, sample_weight=weight)
    by_rows = CANCalibrator(base, cv=list(logo.split(*repeated)), **options)
    by_rows.fit(*repeated[:2])
    proba = by_weight.predict_proba(X_test)
    assert_allclose(proba, by_rows.predict_proba(X_test), rtol=1e-9)
    assert np.sum(np.any(proba != by_weight.estimator_.predict_proba(X_test), 1)) > 10


@pytest.mark.parametrize(
    "base, threshold",
    [(AnalyticSoftmaxClassifier(shrinkage="auto"), 0.99), (LogisticRegression(), 0.9)],
)
def test_sklearn_sample_weight_check_with_well_conditioned_bases(base, threshold):
    # the thresholds leave both reference rows and corrected rows in the check
    # (see EXPECTED_FAILED_CHECKS in test_common.py for the default instance)
    check_sample_weight_equivalence_on_dense_data(
        "CANCalibrator", CANCalibrator(base, threshold=threshold)
    )


def test_metadata_routing_of_sample_weight_and_groups(data):
    X, X_test, y, _ = data
    weight = np.random.RandomState(1).uniform(0.5, 2.0, size=len(y))
    groups = np.arange(len(y)) % 7
    with config_context(enable_metadata_routing=True):
        base = AnalyticSoftmaxClassifier().set_fit_request(sample_weight=True)
        clf = CANCalibrator(base, cv=GroupKFold(3), threshold=0.7)
        clf.fit(X, y, sample_weight=weight, groups=groups)
        direct = AnalyticSoftmaxClassifier().fit(X, y, sample_weight=weight)
        assert_allclose(clf.estimator_.coef_, direct.coef_)
        assert_allclose(clf.prior_, np.bincount(y, weights=weight) / weight.sum())
        # the folds come from the routed groups
        cv = GroupKFold(3)
        proba = np.concatenate(
            [
                clone(direct)
                .fit(X[train], y[train], sample_weight=weight[train])
                .predict_proba(X[test])
                for train, test in cv.split(X, y, groups)
            ]
        )
        confident = topk_uncertainty(proba) < 0.7
        assert_allclose(clf.reference_, proba[confident])
        # the default estimator requests sample_weight by itself
        default = CANCalibrator(threshold=0.7).fit(X, y, sample_weight=weight)
        assert_allclose(default.estimator_.coef_, direct.coef_)
    assert clf.predict(X_test).shape == (len(X_test),)


def test_sample_weight_for_an_estimator_without_it_warns(data):
    X, _, y, _ = data
    weight = np.ones(len(y))
    weight[y == 0] = 3
    with pytest.warns(UserWarning, match="does not accept sample_weight"):
        clf = CANCalibrator(make_pipeline(StandardScaler(), KNeighborsClassifier()))
        clf.fit(X, y, sample_weight=weight)
    assert_allclose(clf.prior_, np.bincount(y, weights=weight) / weight.sum())


def test_pipeline_grid_search_and_pandas(data):
    X, X_test, y, y_test = data
    columns = [f"f{i}" for i in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=columns)
    model = make_pipeline(
        StandardScaler(), CANCalibrator(AnalyticSoftmaxClassifier(), cv=3)
    )
    grid = {
        "cancalibrator__threshold": [0.5, 1.0],
        "cancalibrator__top_k": [2, 3],
        "cancalibrator__estimator__shrinkage": [None, "auto"],
    }
    search = GridSearchCV(model, grid, cv=3).fit(frame, y)
    assert set(search.best_params_) == set(grid)
    assert 0.5 < search.score(pd.DataFrame(X_test, columns=columns), y_test) <= 1

    wrapped = CANCalibrator(make_pipeline(StandardScaler(), LogisticRegression()))
    wrapped.fit(frame, y)
    assert_array_equal(wrapped.feature_names_in_, columns)
    assert wrapped.n_features_in_ == X.shape[1]


def test_string_labels_and_two_classes(data):
    X, X_test, y, _ = data
    labels = np.array(["cat", "dog"])[(y > 1).astype(int)]
    clf = CANCalibrator(threshold=0.5, top_k=3).fit(X, labels)  # top_k -> 2
    assert_array_equal(clf.classes_, ["cat", "dog"])
    proba = clf.estimator_.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    expected = literal_can(proba, clf.reference_, clf.prior_, threshold=0.5)
    assert_allclose(clf.predict_proba(X_test), expected, rtol=1e-10)
    assert np.any(expected != proba)
    assert set(clf.predict(X_test)) <= {"cat", "dog"}


def test_no_confident_reference_rows(data):
    X, X_test, y, _ = data
    with pytest.warns(UserWarning, match="reference set is empty"):
        clf = CANCalibrator(threshold=0.0).fit(X, y)
    base = clf.estimator_.predict_proba(X_test)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_array_equal(clf.predict_proba(X_test), base)
    batch = CANCalibrator(threshold=0.0, reference="batch").fit(X, y)
    with pytest.warns(UserWarning, match="no row with uncertainty below"):
        assert_array_equal(batch.predict_proba(X_test), base)


class TableClassifier(LogisticRegression):
    """Probabilities looked up by the integer in column 0 (for exact edge cases)."""

    table = np.array(
        [
            [0.90, 0.10, 0.00],  # confident, no mass on class 2
            [0.05, 0.95, 0.00],
            [0.40, 0.35, 0.25],  # uncertain, some mass on class 2
            [0.50, 0.50, 0.00],  # uncertain, none on class 2
        ]
    )

    def fit(self, X, y, sample_weight=None):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return self.table[np.asarray(X)[:, 0].astype(int)]


def test_class_with_zero_reference_mass_warns_and_stays_finite():
    X = np.array([[0], [1], [0], [1], [2], [3]] * 3, dtype=float)
    y = np.array([0, 1, 0, 1, 2, 2] * 3)
    with pytest.warns(UserWarning, match=r"Classes \[2\] have no probability mass"):
        clf = CANCalibrator(FrozenEstimator(TableClassifier().fit(X, y))).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = clf.predict_proba(np.array([[2.0], [3.0]]))
        log_proba = clf.predict_log_proba(np.array([[2.0], [3.0]]))
    expected = literal_can(TableClassifier.table[2:], clf.reference_, clf.prior_)
    assert_allclose(got, expected, rtol=1e-10)
    assert got[0].argmax() == 2 and got[1, 2] == 0 and np.isfinite(got).all()
    assert_allclose(np.exp(log_proba), got, rtol=1e-12)
    assert log_proba[1, 2] == -np.inf


def test_base_estimator_without_predict_proba(data):
    X, _, y, _ = data
    with pytest.raises(ValueError, match="predict_proba"):
        CANCalibrator(SVC()).fit(X, y)


def test_class_absent_from_a_training_fold(data):
    X, X_test, y, _ = data
    y = y.copy()
    y[0] = 4  # a class with one sample: absent from one fold's training part
    base = LogisticRegression()
    cv = StratifiedKFold(5)
    with pytest.warns(UserWarning, match="least populated class"):
        clf = CANCalibrator(base, cv=cv, threshold=0.7).fit(X, y)
    assert_array_equal(clf.classes_, [0, 1, 2, 3, 4])
    with pytest.warns(UserWarning, match="least populated class"):  # cv.split
        reference = out_of_fold_reference(base, X, y, cv, 0.7)
    assert_allclose(clf.reference_, reference, rtol=1e-10)
    assert np.any(clf.reference_[:, 4] == 0)  # the fold that never saw class 4
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(X_test), 5) and np.isfinite(proba).all()


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(threshold=2.0), "threshold"),
        (dict(top_k=0), "top_k"),
        (dict(reference="train"), "reference"),
        (dict(prior=[0.5, 0.5]), "prior has shape"),
    ],
)
def test_calibrator_rejects_bad_parameters(data, params, match):
    X, _, y, _ = data
    with pytest.raises(ValueError, match=match):
        CANCalibrator(**params).fit(X, y)


def test_float32_probabilities_stay_float32(data):
    X, X_test, y, _ = data
    clf = CANCalibrator(threshold=0.7).fit(X.astype(np.float32), y)
    proba = clf.predict_proba(X_test.astype(np.float32))
    assert proba.dtype == np.float32
    assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)


def test_log_proba_stays_finite_where_the_base_probabilities_underflow():
    """exp of logits 1e3 apart is 0, but the base log-probabilities are finite."""
    rng = np.random.RandomState(0)
    y = np.repeat([0, 1, 2], 50)
    X = rng.normal(size=(150, 2)) + 40.0 * y[:, None]
    clf = CANCalibrator(cv=3, threshold=0.5).fit(X, y)
    base = clf.estimator_
    # points between classes 0 and 1 where the two are nearly tied
    low, high = 0.0, 40.0
    for _ in range(60):
        middle = (low + high) / 2
        log_p = base.predict_log_proba([[middle, middle]])[0]
        low, high = (middle, high) if log_p[0] > log_p[1] else (low, middle)
    X_new = np.vstack([X[::10], [[low, low], [low - 1e-3, low]]])
    assert (base.predict_proba(X_new) == 0).any()
    log_proba = clf.predict_log_proba(X_new)
    assert np.isfinite(log_proba).all()
    uncertain = topk_uncertainty(base.predict_proba(X_new)) >= 0.5
    assert uncertain.sum() == 2
    # unchanged rows: the base model's own log-probabilities
    assert_array_equal(log_proba[~uncertain], base.predict_log_proba(X_new)[~uncertain])
    assert_allclose(np.exp(log_proba), clf.predict_proba(X_new), rtol=1e-12)
    # corrected rows: CAN of the base log-probabilities
    reference = clf.reference_
    expected = literal_can(
        base.predict_proba(X_new)[uncertain], reference, clf.prior_, threshold=0.5
    )
    assert_allclose(np.exp(log_proba[uncertain]), expected, rtol=1e-9, atol=1e-300)
