"""CAN's numeric core: can_adjust against the row-by-row definition.

The reference for every numeric result is the definition applied literally,
one uncertain row at a time: stack it under the reference rows, raise to
``alpha``, divide each column by its mean and multiply by the prior, divide
each row by its sum, ``n_iter`` times, keep the last row.
"""

import warnings

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_iris
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

import skprob._can as can_module
from skprob import CANCalibrator, can_adjust
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
    monkeypatch.setattr(can_module, "_CAN_CHUNK_VALUES", 64)  # 2 rows per chunk
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


# alpha and n_iter over the range tuned in practice (alpha up to 9, up to 4
# iterations), where the stack's rows become steep: entries of the
# reference alternated alone fall like p ** (alpha ** d), far out of the
# double range
ALPHAS = st.one_of(
    st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 7.0, 9.0]), st.floats(0.1, 9.0)
)


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
        alpha=draw(ALPHAS),
    )
    return proba, reference, prior, options


@settings(max_examples=150, deadline=None)
@given(can_problems())
def test_property_vectorised_equals_row_by_row(problem):
    """Against the literal definition in float64, accurate here: every column
    of the stack keeps a mass of at least its prior after each step (entries
    of at least 1e-6, priors of at least 0.01), so what underflows is
    negligible in the column and row sums."""
    proba, reference, prior, options = problem
    got = can_adjust(proba, reference, prior, **options)
    expected = literal_can(proba, reference, prior / prior.sum(), **options)
    assert_allclose(got, expected, rtol=1e-9, atol=1e-13)


@st.composite
def steep_can_problems(draw):
    """One row and a few reference rows with entries from 1e-300 to 1."""
    n_classes = draw(st.integers(2, 4))
    entry = st.builds(
        lambda v, e: v * 10.0**e,
        st.floats(0.1, 1.0),
        st.sampled_from([0, 0, 0, -1, -3, -30, -300]),
    )

    def row():
        values = np.array(draw(st.lists(entry, min_size=n_classes, max_size=n_classes)))
        return values / values.sum()

    proba = row()
    reference = np.array([row() for _ in range(draw(st.integers(1, 4)))])
    prior = np.array(
        draw(st.lists(st.floats(0.05, 1.0), min_size=n_classes, max_size=n_classes))
    )
    return proba, reference, prior / prior.sum(), draw(st.integers(1, 4)), draw(ALPHAS)


@settings(max_examples=60, deadline=None)
@given(steep_can_problems())
def test_property_steep_rows_match_high_precision(problem):
    """alpha ** n_iter up to 9 ** 4 and entries of 1e-300, against 50 digits."""
    row, reference, prior, n_iter, alpha = problem
    got = can_adjust(
        row[None], reference, prior, threshold=0, n_iter=n_iter, alpha=alpha
    )[0]
    expected = literal_row_mp(row, reference, prior, n_iter=n_iter, alpha=alpha)
    assert np.isfinite(got).all()
    # relative errors grow like alpha ** n_iter from rounding of the input
    # scale; entries below the smallest normal double are compared absolutely
    assert_allclose(got, expected, rtol=1e-9, atol=1e-300)


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


@pytest.mark.parametrize(
    "row, reference, n_iter, alpha",
    [
        # at alpha ** (n_iter - 1) = 343 the entries of the reference
        # alternated alone fall to 1e-1502, and x ** alpha to 1e-419
        ([0.44, 0.09, 0.47], [[0.2, 0.58, 0.22], [0.09, 0.76, 0.15]], 4, 7.0),
        ([0.44, 0.09, 0.47], [[0.2, 0.58, 0.22], [0.09, 0.76, 0.15]], 3, 9.0),
        ([0.3, 0.3, 0.4], [[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]], 4, 9.0),
        ([0.25, 0.25, 0.2, 0.3], [[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1],
                                  [0.2, 0.2, 0.5, 0.1]], 4, 5.0),
    ],
)  # fmt: skip
def test_large_alpha_times_n_iter_match_high_precision(row, reference, n_iter, alpha):
    row, reference = np.array(row), np.array(reference)
    prior = np.full(len(row), 1 / len(row))
    options = dict(threshold=0, n_iter=n_iter, alpha=alpha)
    got = can_adjust(row[None], reference, prior, **options)[0]
    expected = literal_row_mp(row, reference, prior, n_iter=n_iter, alpha=alpha)
    assert_allclose(got, expected, rtol=1e-9, atol=1e-300)
    # the literal definition in float64 agrees: its columns keep their mass
    literal = literal_can(row[None], reference, prior, **options)[0]
    assert_allclose(got, literal, rtol=1e-9, atol=1e-300)


@pytest.mark.parametrize("n_iter", [1, 2, 3, 4])
@pytest.mark.parametrize("alpha", range(1, 10))
def test_grid_of_alpha_and_n_iter_equals_row_by_row_definition(alpha, n_iter):
    """The range tuned in practice, many rows per call, few reference rows
    (so that the uncertain row dominates some columns of the stack)."""
    rng = np.random.RandomState(10 * alpha + n_iter)
    proba = random_rows(rng, 100, 4, 1.0)
    reference = random_rows(rng, 5, 4, 1.0)
    prior = rng.dirichlet(np.full(4, 5.0))
    options = dict(threshold=0, n_iter=n_iter, alpha=float(alpha))
    got = can_adjust(proba, reference, prior, **options)
    expected = literal_can(proba, reference, prior, **options)
    assert_allclose(got, expected, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("n_iter, alpha", [(4, 7.0), (4, 9.0), (3, 9.0)])
def test_calibrator_with_large_alpha_times_n_iter_equals_the_definition(n_iter, alpha):
    """CANCalibrator goes through correct_uncertain: a frozen classifier and a
    calibration set of 50 rows give 20 to 30 reference rows."""
    X, y = load_iris(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(y))
    X, y = X[order], y[order]
    base = LogisticRegression(C=0.05, max_iter=1000).fit(X[:100], y[:100])
    for threshold in [0.5, 0.7]:
        model = CANCalibrator(
            FrozenEstimator(base), threshold=threshold, n_iter=n_iter, alpha=alpha
        ).fit(X[100:], y[100:])
        expected = literal_can(
            base.predict_proba(X), model.reference_, model.prior_,
            threshold=threshold, n_iter=n_iter, alpha=alpha,
            weight=model.reference_weight_.astype(int),
        )  # fmt: skip
        assert_allclose(model.predict_proba(X), expected, rtol=1e-9, atol=1e-13)
        with np.errstate(divide="ignore"):
            log_expected = np.log(expected)
        assert_allclose(
            model.predict_log_proba(X)[expected > 1e-300],
            log_expected[expected > 1e-300],
            rtol=1e-9,
        )


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
        (([[0.5, 0.5]], [[0.5, 0.5]], [1, 1]), dict(n_iter=np.nan), "'n_iter'"),
        (([[0.5, 0.5]], [[0.5, 0.5]], [1, 1]), dict(n_iter=np.inf), "'n_iter'"),
        (([[0.5, 0.5]], [[0.5, 0.5]], [1, 1]), dict(n_iter="2"), "'n_iter'"),
        (([[0.5, 0.5]], [[0.5, 0.5]], [1, 1]), dict(alpha=np.nan), "'alpha'"),
        (([[0.5, 0.5]], [[0.5, 0.5]], [1, 1]), dict(alpha=np.inf), "'alpha'"),
        (([[0.5, 0.5]], [[0.5, 0.5]], [1, 1]), dict(top_k=np.inf), "'top_k'"),
        (([[0.5, 0.5]], [[0.5, 0.5]], [1, 1]), dict(threshold=np.nan), "'threshold'"),
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
