"""EntropyNormalizer and PerturbMaxTransformer."""

import warnings
from fractions import Fraction

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose
from scipy import stats
from scipy.special import softmax
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError

from skprob import (
    EntropyNormalizer,
    PerturbMaxTransformer,
    entropy_normalize,
    perturb_max_proba,
)
from skprob._simplex import row_entropy


def proba_rows(n=200, m=5, seed=0):
    rng = np.random.RandomState(seed)
    return rng.dirichlet(np.full(m, 0.7), size=n)


def test_learned_target_is_the_weighted_mean_entropy():
    P = proba_rows()
    weights = np.random.RandomState(1).uniform(size=len(P))
    normalizer = EntropyNormalizer().fit(P, sample_weight=weights)
    expected = np.average(row_entropy(P), weights=weights)
    assert normalizer.target_entropy_ == pytest.approx(expected, rel=1e-12)
    Q = normalizer.transform(proba_rows(seed=2))
    assert_allclose(row_entropy(Q), expected, atol=1e-10)
    assert normalizer.n_iter_ >= 1


def exact_weighted_mean(values, weights):
    """sum(w v) / sum(w) in exact rational arithmetic (no overflow)."""
    total = sum(Fraction(w) for w in weights)
    return float(
        sum(Fraction(w) * Fraction(v) for w, v in zip(weights, values)) / total
    )


@pytest.mark.parametrize(
    "weights",
    [
        [1e308, 1.0, 1e308, 2.0],  # the sum overflows
        [1e308, 1e308, 1e308, 1e308],
        [1.7e308, 0.0, 1e-300, 5e-324],
        [5e-324, 0.0, 5e-324, 1e-320],  # subnormal weights
    ],
)
def test_learned_target_with_weights_of_any_finite_size(weights):
    P = proba_rows(n=4, m=3)
    normalizer = EntropyNormalizer().fit(P, sample_weight=weights)
    expected = exact_weighted_mean(row_entropy(P), weights)
    assert normalizer.target_entropy_ == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("target", [None, 0.5])
@pytest.mark.parametrize(
    "weights, match",
    [
        ([1.0, -0.5, 1.0, 1.0], "Negative values .*sample_weight"),
        ([1.0, -1e-300, 1.0, 1.0], "Negative values .*sample_weight"),
        ([0.0, 0.0, 0.0, 0.0], "weight.*zero"),
        ([1.0, np.inf, 1.0, 1.0], "sample_weight contains infinity"),
    ],
)
def test_bad_sample_weight_is_a_clear_error(target, weights, match):
    P = proba_rows(n=4, m=3)
    with pytest.raises(ValueError, match=match):
        EntropyNormalizer(target).fit(P, sample_weight=weights)
    with pytest.raises(ValueError, match=match):
        EntropyNormalizer(target).fit_transform(P, sample_weight=weights)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.just(0.0),
            st.builds(
                lambda v, e: v * 10.0**e, st.floats(1.0, 1.79), st.integers(-320, 308)
            ),
        ),
        min_size=6,
        max_size=6,
    )
)
def test_property_learned_target_is_the_exact_weighted_mean(weights):
    assume(max(weights) > 0)
    P = proba_rows(n=6, m=4, seed=3)
    normalizer = EntropyNormalizer(unit="bits").fit(P, sample_weight=weights)
    expected = exact_weighted_mean(row_entropy(P), weights) / np.log(2)
    # subnormal weights carry few digits relative to the largest weight
    assert normalizer.target_entropy_ == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("unit, nats", [("nats", 1.0), ("bits", np.log(2))])
def test_units(unit, nats):
    P = proba_rows()
    Q = EntropyNormalizer(0.6, unit=unit).fit_transform(P)
    assert_allclose(row_entropy(Q), 0.6 * nats, atol=1e-10)
    relative = EntropyNormalizer(unit="relative").fit(P)
    assert relative.target_entropy_ == pytest.approx(
        row_entropy(P).mean() / np.log(5), rel=1e-12
    )
    Q = EntropyNormalizer(0.25, unit="relative").fit(P).transform(P)
    assert_allclose(row_entropy(Q), 0.25 * np.log(5), atol=1e-10)


def test_fit_transform_equals_fit_then_transform_and_the_function():
    P = proba_rows()
    normalizer = EntropyNormalizer(0.8)
    Q = normalizer.fit_transform(P)
    assert_allclose(Q, normalizer.transform(P), rtol=1e-15)
    assert_allclose(Q, entropy_normalize(P, 0.8), rtol=1e-15)


# one row of these counts has its two largest counts tied: its entropy cannot
# go below log(2) > 0.5, and the warning says so (tested in test_entropy.py)
@pytest.mark.filterwarnings("ignore:1 of 30 rows cannot reach their target entropy")
def test_counts_ints_and_float32():
    counts = np.random.RandomState(0).randint(1, 20, size=(30, 4))
    Q = EntropyNormalizer(0.5).fit(counts).transform(counts)
    P = counts / counts.sum(axis=1, keepdims=True)
    assert_allclose(Q, entropy_normalize(P, 0.5))
    P32 = P.astype(np.float32)
    Q32 = EntropyNormalizer(0.5).fit_transform(P32)
    assert Q32.dtype == np.float32
    # solved in float64 from the float32 rows, then rounded
    assert_allclose(Q32, entropy_normalize(P32.astype(np.float64), 0.5), rtol=1e-6)


def test_logits_input():
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    Z = model.decision_function(X)
    normalizer = EntropyNormalizer(input="logits").fit(Z)
    assert normalizer.target_entropy_ == pytest.approx(
        row_entropy(softmax(Z, axis=1)).mean()
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        Q = normalizer.transform(Z)
    assert_allclose(
        Q, entropy_normalize(softmax(Z, axis=1), normalizer.target_entropy_)
    )


def test_in_a_pipeline_after_predict_proba():
    X, y = load_iris(return_X_y=True)
    proba = LogisticRegression(max_iter=1000).fit(X, y).predict_proba(X)
    pipe = make_pipeline(EntropyNormalizer(0.3), PerturbMaxTransformer("normal"))
    out = pipe.fit_transform(proba)
    assert out.shape == proba.shape
    assert_allclose(out.sum(axis=1), 1)


@pytest.mark.parametrize(
    "X, match",
    [
        ([[0.5, 0.5], [0.2, -0.1]], "negative values .*row 1"),
        ([[0.5, 0.5], [0.0, 0.0], [0.0, 0.0]], "Row 1 of X is all zeros"),
        ([[0.5, np.nan]], "NaN"),
    ],
)
def test_bad_rows_are_named(X, match):
    normalizer = EntropyNormalizer(0.5).fit([[0.7, 0.3]])  # a reachable row
    with pytest.raises(ValueError, match=match):
        normalizer.transform(X)
    with pytest.raises(ValueError, match=match):
        EntropyNormalizer().fit(X)


def test_sample_weight_as_a_series():
    P = proba_rows(n=12, m=2)
    weights = pd.Series(np.arange(1, 13, dtype=float))
    normalizer = EntropyNormalizer().fit(pd.DataFrame(P), sample_weight=weights)
    expected = np.average(row_entropy(P), weights=weights)
    assert normalizer.target_entropy_ == pytest.approx(expected)


@pytest.mark.parametrize(
    "transformer",
    [EntropyNormalizer(0.5), PerturbMaxTransformer("normal")],
    ids=["EntropyNormalizer", "PerturbMaxTransformer"],
)
@pytest.mark.parametrize("container", ["pandas", "polars"])
def test_column_names_and_set_output(transformer, container):
    P = proba_rows(n=20, m=3)
    columns = ["setosa", "versicolor", "virginica"]
    frame = pd.DataFrame(P, columns=columns)
    transformer = transformer.set_output(transform=container).fit(frame)
    out = transformer.transform(frame)
    expected_type = pd.DataFrame if container == "pandas" else pl.DataFrame
    assert isinstance(out, expected_type)
    assert list(out.columns) == columns
    assert list(transformer.get_feature_names_out()) == columns
    # the same transformer fitted and applied without column names
    plain = clone(transformer).set_output(transform="default").fit(P)
    assert_allclose(np.asarray(out), plain.transform(P))


def test_perturb_max_transformer_calls_the_function():
    S = np.random.RandomState(0).normal(size=(10, 4))
    for noise in ["gumbel", "normal", stats.t(4)]:
        out = PerturbMaxTransformer(noise, scale=0.5, n_nodes=40).fit_transform(S)
        assert_allclose(out, perturb_max_proba(S, noise, scale=0.5, n_nodes=40))
    assert_allclose(PerturbMaxTransformer().fit_transform(S), softmax(S, axis=1))


def test_perturb_max_transformer_checks_its_parameters():
    S = np.zeros((2, 3))
    with pytest.raises(InvalidParameterError, match="noise"):
        PerturbMaxTransformer("cauchy").fit(S)
    with pytest.raises(InvalidParameterError, match="scale"):
        PerturbMaxTransformer(scale=-1.0).fit(S)
    with pytest.raises(ValueError, match="whole real line"):
        PerturbMaxTransformer(stats.expon()).fit(S).transform(S)
    with pytest.raises(ValueError, match="3 features"):
        PerturbMaxTransformer().fit(S).transform(np.zeros((2, 4)))


@pytest.mark.parametrize(
    "transformer, name",
    [
        *[(EntropyNormalizer(max_iter=v), "max_iter") for v in (np.nan, np.inf)],
        *[(EntropyNormalizer(max_iter=v), "max_iter") for v in ("100", [100], 0)],
        *[(EntropyNormalizer(tol=v), "tol") for v in (np.nan, np.inf, 0.0)],
        *[(EntropyNormalizer(v), "target_entropy") for v in (np.nan, np.inf, -1)],
        *[(PerturbMaxTransformer(n_nodes=v), "n_nodes") for v in (np.nan, np.inf)],
        *[(PerturbMaxTransformer(n_nodes=v), "n_nodes") for v in ("48", [48], 1)],
        *[(PerturbMaxTransformer(scale=v), "scale") for v in (np.nan, np.inf, 0)],
    ],
    ids=repr,
)
def test_numeric_parameters_must_be_finite_numbers(transformer, name):
    with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter"):
        transformer.fit(proba_rows(n=5, m=3))


@settings(max_examples=40, deadline=None)
@given(
    rows=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=2, max_side=8),
        elements=st.floats(0.0, 1.0),
    ),
    fraction=st.floats(0.0, 1.0),
    unit=st.sampled_from(["nats", "bits", "relative"]),
    logits=st.booleans(),
)
def test_property_the_target_is_reached_whenever_it_is_reachable(
    rows, fraction, unit, logits
):
    rows[:, 0] += 0.5  # no all-zero row
    n_classes = rows.shape[1]
    nats = {"nats": 1.0, "bits": np.log(2), "relative": np.log(n_classes)}[unit]
    target = fraction * np.log(n_classes) / nats
    X = 4.0 * rows if logits else rows
    model = EntropyNormalizer(target, unit=unit, input="logits" if logits else "proba")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unreachable rows
        Q = model.fit_transform(X)
    assert_allclose(Q.sum(axis=1), 1.0, rtol=1e-12)
    # entries below exp(-708) times their row's largest count as zeros
    # (documented; subnormals among them)
    with np.errstate(divide="ignore"):
        kept = np.log(X) - np.log(X.max(axis=1, keepdims=True)) >= -708.0
    support = np.full(len(X), n_classes) if logits else np.sum(kept, axis=1)
    ties = np.count_nonzero(X == X.max(axis=1, keepdims=True), axis=1)
    reachable = (np.log(ties) < target * nats) & (target * nats < np.log(support))
    H = row_entropy(Q)
    assert_allclose(H[reachable], target * nats, atol=1e-9)
    # the others get the nearest limit
    assert (
        np.abs(H - np.clip(target * nats, np.log(ties), np.log(support))) < 1e-9
    ).all()
