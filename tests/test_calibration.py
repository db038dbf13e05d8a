"""CAN: the numeric core (topk_uncertainty, can_adjust) and CANCalibrator.

The reference for every numeric result is the definition applied literally,
one uncertain row at a time: stack it under the reference rows, raise to
``alpha``, divide each column by its mean and multiply by the prior, divide
each row by its sum, ``n_iter`` times, keep the last row.
"""

import warnings

import mpmath
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
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

import skprob._simplex as simplex
from skprob import AnalyticSoftmaxClassifier, CANCalibrator, can_adjust
from skprob._simplex import topk_uncertainty

# ---------------------------------------------------------------------------
# the definition, literally
# ---------------------------------------------------------------------------


def literal_uncertainty(row, top_k):
    """Entropy of the top-k probabilities renormalised, over log k (by sorting)."""
    top = np.sort(row)[::-1][: min(top_k, len(row))]
    if len(top) < 2:
        return 0.0
    top = top / top.sum()
    terms = [-p * np.log(p) for p in top if p > 0]
    return sum(terms) / np.log(len(top))


def literal_can(
    proba, reference, prior, *, threshold=0.9, top_k=3, n_iter=1, alpha=1.0,
    weight=None,
):  # fmt: skip
    """CAN one row at a time; ``0 / 0`` is taken as 0 in both steps.

    Integer ``weight`` repeats reference rows (a weight of k counts k times).
    """
    reference = np.asarray(reference, dtype=float)
    if weight is not None:
        reference = np.repeat(reference, weight, axis=0)
    out = np.array(proba, dtype=float)
    for i, row in enumerate(out):
        if literal_uncertainty(row, top_k) < threshold:
            continue
        stack = np.vstack([reference, row])
        for _ in range(n_iter):
            stack = stack**alpha
            mean = stack.mean(axis=0)
            stack = np.divide(
                stack, mean, out=np.zeros_like(stack), where=mean > 0
            ) * np.asarray(prior)
            total = stack.sum(axis=1, keepdims=True)
            stack = np.divide(stack, total, out=np.zeros_like(stack), where=total > 0)
        out[i] = stack[-1]
    return out


def literal_row_mp(row, reference, prior, *, n_iter, alpha):
    """One row corrected by the definition in 50-digit arithmetic (no underflow)."""
    mpmath.mp.dps = 50
    stack = [[mpmath.mpf(float(v)) for v in r] for r in [*reference, row]]
    q = [mpmath.mpf(float(v)) for v in prior]
    for _ in range(n_iter):
        stack = [[v**alpha for v in r] for r in stack]
        for j in range(len(q)):
            mean = sum(r[j] for r in stack) / len(stack)
            for r in stack:
                r[j] = r[j] / mean * q[j] if mean > 0 else mpmath.mpf(0)
        stack = [[v / sum(r) for v in r] for r in stack]
    return np.array([float(v) for v in stack[-1]])


def random_rows(rng, n_rows, n_classes, concentration):
    return rng.dirichlet(np.full(n_classes, concentration), size=n_rows)


# ---------------------------------------------------------------------------
# topk_uncertainty
# ---------------------------------------------------------------------------


def test_topk_uncertainty_hand_values():
    proba = np.array([[0.5, 0.3, 0.2, 0.0], [0.1, 0.6, 0.1, 0.2]])
    h3 = -(0.5 * np.log(0.5) + 0.3 * np.log(0.3) + 0.2 * np.log(0.2))
    top = np.array([0.6, 0.2, 0.1]) / 0.9
    h3b = -np.sum(top * np.log(top))
    assert_allclose(topk_uncertainty(proba), [h3 / np.log(3), h3b / np.log(3)])
    # top 2 renormalised: 0.5/0.8, 0.3/0.8
    p = np.array([0.625, 0.375])
    assert_allclose(
        topk_uncertainty(proba[:1], top_k=2), [-(p @ np.log(p)) / np.log(2)]
    )
    # "paper": the same terms, not renormalised, over log(n_classes)
    assert_allclose(topk_uncertainty(proba[:1], kind="paper"), [h3 / np.log(4)])


def test_topk_uncertainty_caps_k_and_stays_in_unit_interval():
    rng = np.random.RandomState(0)
    proba = random_rows(rng, 50, 4, 0.5)
    assert_allclose(topk_uncertainty(proba, top_k=10), topk_uncertainty(proba, top_k=4))
    expected = [literal_uncertainty(row, 3) for row in proba]
    assert_allclose(topk_uncertainty(proba), expected, rtol=1e-12)
    assert_allclose(topk_uncertainty([[0.25] * 4], top_k=4), [1.0])
    assert_array_equal(topk_uncertainty(np.eye(4)), np.zeros(4))
    for kind in ("renormalized", "paper"):
        u = topk_uncertainty(proba, kind=kind)
        assert np.all((u >= 0) & (u <= 1))
    # one class, or one probability kept: nothing to be uncertain about
    assert_array_equal(topk_uncertainty([[1.0], [1.0]]), [0.0, 0.0])
    assert_array_equal(topk_uncertainty(proba, top_k=1), np.zeros(50))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(proba=[[0.5, 0.6]]), "sum to 1"),
        (dict(proba=[[0.5, 0.5]], top_k=0), "top_k"),
        (dict(proba=[[0.5, 0.5]], kind="full"), "kind"),
    ],
)
def test_topk_uncertainty_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        topk_uncertainty(**kwargs)


# ---------------------------------------------------------------------------
# can_adjust against the row-by-row definition
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_iter", [1, 3, 5])
@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_can_adjust_equals_row_by_row_definition(alpha, n_iter):
    rng = np.random.RandomState(0)
    proba = np.vstack([random_rows(rng, 30, 7, 1.0), random_rows(rng, 30, 7, 0.1)])
    reference = random_rows(rng, 40, 7, 0.2)
    prior = rng.dirichlet(np.full(7, 3.0))
    options = dict(threshold=0.6, top_k=3, n_iter=n_iter, alpha=alpha)
    got = can_adjust(proba, reference, prior, **options)
    expected = literal_can(proba, reference, prior, **options)
    assert 10 < np.sum(np.any(expected != proba, axis=1)) < 60  # both kinds of row
    assert_allclose(got, expected, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("n_iter, alpha", [(1, 1.0), (3, 2.0)])
def test_reference_weight_counts_rows(n_iter, alpha):
    rng = np.random.RandomState(1)
    proba = random_rows(rng, 30, 5, 1.0)
    reference = random_rows(rng, 12, 5, 0.3)
    weight = rng.randint(0, 4, size=12)
    prior = np.full(5, 0.2)
    options = dict(threshold=0.5, n_iter=n_iter, alpha=alpha)
    got = can_adjust(proba, reference, prior, reference_weight=weight, **options)
    expected = literal_can(proba, reference, prior, weight=weight, **options)
    assert_allclose(got, expected, rtol=1e-10, atol=1e-15)


def test_chunks_give_the_same_rows(monkeypatch):
    rng = np.random.RandomState(2)
    proba = random_rows(rng, 57, 6, 1.0)
    reference = random_rows(rng, 30, 6, 0.2)
    prior = np.full(6, 1 / 6)
    options = dict(threshold=0.3, n_iter=3, alpha=1.5)
    whole = can_adjust(proba, reference, prior, **options)
    monkeypatch.setattr(simplex, "_CAN_CHUNK_VALUES", 64)  # 2 rows per chunk
    assert_allclose(can_adjust(proba, reference, prior, **options), whole, rtol=1e-13)


def test_one_iteration_is_the_closed_form():
    rng = np.random.RandomState(3)
    proba = random_rows(rng, 20, 5, 2.0)
    reference = random_rows(rng, 15, 5, 0.2)
    prior = rng.dirichlet(np.ones(5))
    for alpha in (1.0, 2.5):
        # b ** alpha * prior / (colsum(A ** alpha) + b ** alpha), renormalised
        expected = proba**alpha * prior / ((reference**alpha).sum(0) + proba**alpha)
        expected /= expected.sum(axis=1, keepdims=True)
        got = can_adjust(proba, reference, prior, threshold=0.0, alpha=alpha)
        assert_allclose(got, expected, rtol=1e-12)


def test_reference_none_uses_the_confident_rows_of_proba():
    rng = np.random.RandomState(4)
    proba = np.vstack([random_rows(rng, 30, 5, 0.1), random_rows(rng, 20, 5, 3.0)])
    prior = np.full(5, 0.2)
    confident = topk_uncertainty(proba) < 0.8
    assert 0 < confident.sum() < len(proba)
    assert_allclose(
        can_adjust(proba, None, prior, threshold=0.8),
        can_adjust(proba, proba[confident], prior, threshold=0.8),
    )


def test_float32_stays_float32():
    rng = np.random.RandomState(5)
    proba = random_rows(rng, 20, 4, 1.0)
    reference = random_rows(rng, 10, 4, 0.2)
    got = can_adjust(proba.astype(np.float32), reference, np.full(4, 0.25))
    assert got.dtype == np.float32
    expected = can_adjust(proba.astype(np.float32).astype(float), reference, [1] * 4)
    assert_allclose(got, expected, rtol=1e-6)


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------


def _rows(n_rows, n_classes):
    """Rows of positive probabilities spanning a few orders of magnitude."""
    return hnp.arrays(
        np.float64,
        (n_rows, n_classes),
        elements=st.floats(1e-6, 1.0, allow_subnormal=False),
    ).map(lambda a: a / a.sum(axis=1, keepdims=True))


@st.composite
def can_problems(draw):
    n_classes = draw(st.integers(2, 6))
    proba = draw(_rows(draw(st.integers(1, 8)), n_classes))
    reference = draw(_rows(draw(st.integers(1, 8)), n_classes))
    prior = draw(hnp.arrays(np.float64, n_classes, elements=st.floats(0.01, 1.0)))
    options = dict(
        threshold=draw(st.floats(0.0, 1.0)),
        top_k=draw(st.integers(1, 4)),
        n_iter=draw(st.integers(1, 4)),
        alpha=draw(st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0])),
    )
    return proba, reference, prior, options


@settings(max_examples=60, deadline=None)
@given(can_problems())
def test_property_vectorised_equals_row_by_row(problem):
    proba, reference, prior, options = problem
    got = can_adjust(proba, reference, prior, **options)
    expected = literal_can(proba, reference, prior / prior.sum(), **options)
    assert_allclose(got, expected, rtol=1e-9, atol=1e-13)


@settings(max_examples=60, deadline=None)
@given(can_problems())
def test_property_confident_rows_untouched_and_rows_are_distributions(problem):
    proba, reference, prior, options = problem
    got = can_adjust(proba, reference, prior, **options)
    confident = topk_uncertainty(proba, top_k=options["top_k"]) < options["threshold"]
    assert_array_equal(got[confident], proba[confident])
    assert np.all(np.isfinite(got)) and np.all(got >= 0)
    assert_allclose(got.sum(axis=1), 1.0, rtol=1e-12)
    # only the scale of the prior cancels
    assert_allclose(can_adjust(proba, reference, 7.0 * prior, **options), got)


@settings(max_examples=40, deadline=None)
@given(can_problems(), st.data())
def test_property_classes_are_exchangeable_and_rows_independent(problem, data):
    """Permuting the classes permutes the result; each row ignores the others."""
    proba, reference, prior, options = problem
    got = can_adjust(proba, reference, prior, **options)
    permutation = np.array(data.draw(st.permutations(range(proba.shape[1]))))
    assert_allclose(
        can_adjust(
            proba[:, permutation], reference[:, permutation], prior[permutation],
            **options,
        ),
        got[:, permutation],
        rtol=1e-10,
        atol=1e-14,
    )  # fmt: skip
    rows = data.draw(st.lists(st.integers(0, len(proba) - 1), min_size=1))
    assert_allclose(
        can_adjust(proba[rows], reference, prior, **options),
        got[rows],
        rtol=1e-12,
        atol=1e-15,
    )


@settings(max_examples=40, deadline=None)
@given(can_problems(), st.data())
def test_property_integer_reference_weights_repeat_rows(problem, data):
    proba, reference, prior, options = problem
    weight = np.array(
        data.draw(st.lists(st.integers(0, 3), min_size=len(reference),
                           max_size=len(reference)))
    )  # fmt: skip
    if weight.sum() == 0:
        weight[0] = 1
    weighted = can_adjust(proba, reference, prior, reference_weight=weight, **options)
    repeated = can_adjust(proba, np.repeat(reference, weight, axis=0), prior, **options)
    assert_allclose(weighted, repeated, rtol=1e-10, atol=1e-14)


# ---------------------------------------------------------------------------
# hard but valid input
# ---------------------------------------------------------------------------


def test_no_reference_rows_warns_and_returns_proba():
    proba = np.array([[0.4, 0.3, 0.3], [0.98, 0.01, 0.01]])
    with pytest.warns(UserWarning, match="no reference rows"):
        got = can_adjust(proba, np.empty((0, 3)), [1, 1, 1])
    assert_array_equal(got, proba)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing uncertain: nothing to say
        assert_array_equal(
            can_adjust(proba[1:], np.empty((0, 3)), [1, 1, 1]), proba[1:]
        )


def test_class_with_zero_reference_mass():
    reference = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]])
    proba = np.array([[0.4, 0.35, 0.25], [0.5, 0.5, 0.0]])
    prior = np.full(3, 1 / 3)
    for n_iter, alpha in [(1, 1.0), (3, 2.0)]:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no division by zero, no NaN
            got = can_adjust(proba, reference, prior, n_iter=n_iter, alpha=alpha)
        expected = literal_can(proba, reference, prior, n_iter=n_iter, alpha=alpha)
        assert_allclose(got, expected, rtol=1e-10, atol=1e-15)
        # a row with mass in the empty column moves there; the column step
        # leaves the empty column of a row without mass in it at zero
        assert got[0].argmax() == 2
        assert got[1, 2] == 0 and np.isfinite(got).all()


@pytest.mark.parametrize("n_iter, alpha", [(1, 2.0), (3, 2.0), (5, 2.0), (3, 0.5)])
def test_tiny_probabilities_match_high_precision(n_iter, alpha):
    rng = np.random.RandomState(6)
    reference = random_rows(rng, 8, 5, 1.0)
    reference[:, 3] = 1e-300 * rng.rand(8)  # squares underflow in float64
    reference /= reference.sum(axis=1, keepdims=True)
    row = np.array([0.3, 0.3, 0.2, 1e-300, 0.2])
    prior = np.array([0.1, 0.2, 0.3, 0.2, 0.2])
    got = can_adjust(
        row[None], reference, prior, threshold=0, n_iter=n_iter, alpha=alpha
    )
    expected = literal_row_mp(row, reference, prior, n_iter=n_iter, alpha=alpha)
    assert_allclose(got[0], expected, rtol=1e-10)


def test_one_hot_rows_and_zero_prior():
    reference = np.eye(3)[[0, 1, 1, 2]]
    proba = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    prior = np.array([0.5, 0.5, 0.0])
    for n_iter, alpha in [(1, 1.0), (4, 2.0)]:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = can_adjust(
                proba, reference, prior, threshold=0, n_iter=n_iter, alpha=alpha
            )
        expected = literal_can(
            proba, reference, prior, threshold=0, n_iter=n_iter, alpha=alpha
        )
        assert_allclose(got, expected, atol=1e-15)
        assert_array_equal(got[:, 2], 0)  # a zero prior removes the class
    # a row whose only class has zero prior cannot be renormalised: unchanged
    lone = np.array([[0.0, 0.0, 1.0]])
    assert_array_equal(can_adjust(lone, reference, prior, threshold=0), lone)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (([[0.5, -0.5]], [[0.5, 0.5]], [1, 1]), {}, "negative"),
        (([[0.5, np.nan]], [[0.5, 0.5]], [1, 1]), {}, "NaN"),
        (([[0.5, 0.5]], [[0.5, 0.4]], [1, 1]), {}, "reference must sum"),
        (([[0.5, 0.5]], [[0.2, 0.3, 0.5]], [1, 1]), {}, "3 columns"),
        (([[0.5, 0.5]], [[0.5, 0.5]], [1, 1, 1]), {}, "prior has shape"),
        (([[0.5, 0.5]], [[0.5, 0.5]], [1, -1]), {}, "prior must be"),
        (([[0.5, 0.5]], [[0.5, 0.5]], [1, 1]), dict(threshold=1.5), "threshold"),
        (([[0.5, 0.5]], [[0.5, 0.5]], [1, 1]), dict(alpha=0), "alpha"),
        (([[0.5, 0.5]], [[0.5, 0.5]], [1, 1]), dict(n_iter=0), "n_iter"),
        (([[0.5, 0.5]], [[0.5, 0.5]], [1, 1]), dict(top_k=2.5), "top_k"),
        (
            ([[0.5, 0.5]], [[0.5, 0.5]], [1, 1]),
            dict(reference_weight=[1, 2]),
            "reference_weight has shape",
        ),
        (([[0.5, 0.5]], None, [1, 1]), dict(reference_weight=[1]), "needs reference"),
    ],
)
def test_can_adjust_rejects_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        can_adjust(*args, **kwargs)


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
