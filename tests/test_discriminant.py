"""The closed-form solve (shrinkage, pseudo-inverse, whitening), against
textbook formulas."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from test_stats import make_data, reference_statistics

from skprob._discriminant import _whitened_solve, discriminant_solution
from skprob._stats import class_statistics


def softmax_rows(Z):
    Z = Z - Z.max(1, keepdims=True)
    E = np.exp(Z)
    return E / E.sum(1, keepdims=True)


def test_solution_is_the_textbook_formula():
    """w_k = Sigma^-1 mu_k, b_k = log p_k - mu_k' Sigma^-1 mu_k / 2 (up to a shift)."""
    X, y, w = make_data()
    weight, mean, scatter = reference_statistics(X, y, np.unique(y), w)
    sigma = scatter / weight.sum()
    coef = np.linalg.solve(sigma, mean.T).T
    intercept = np.log(weight / weight.sum()) - 0.5 * np.sum(coef * mean, axis=1)
    solution = discriminant_solution(weight, mean, scatter)
    assert_allclose(
        softmax_rows(X @ solution.coef.T + solution.intercept),
        softmax_rows(X @ coef.T + intercept),
        rtol=1e-10,
    )
    # the shift is common to all classes
    assert_allclose(np.diff(solution.coef, axis=0), np.diff(coef, axis=0), rtol=1e-10)


def test_singular_covariance_gives_the_pseudo_inverse_solution():
    """Minimum norm in standardised units: D^-1 pinv(D^-1 Sigma D^-1) D^-1 delta."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 50)) * rng.uniform(0.1, 10, size=50)  # n < d
    y = np.arange(30) % 3
    weight, mean, scatter = reference_statistics(X, y, np.arange(3), np.ones(30))
    sigma = scatter / 30
    spread = X.std(axis=0)  # each feature's spread over all samples
    standard = sigma / np.outer(spread, spread)
    centre = weight @ mean / 30
    expected = (
        (mean - centre) / spread @ np.linalg.pinv(standard, hermitian=True) / spread
    )
    solution = discriminant_solution(weight, mean, scatter)
    assert_allclose(solution.coef, expected, rtol=1e-7, atol=1e-9)
    assert solution.null_fraction > 0.1  # the means differ in the null space
    assert np.all(np.isfinite(solution.intercept))


def test_solution_does_not_depend_on_the_units():
    """Rescaled features give the same logits, even for a singular covariance."""
    rng = np.random.RandomState(1)
    X = rng.normal(size=(40, 60))
    y = np.arange(40) % 4
    units = 10.0 ** rng.uniform(-5, 5, size=60)  # within the 1e12 spread ratio
    for data in (X, X[:, :10]):  # singular and regular covariance
        a = discriminant_solution(
            *reference_statistics(data, y, np.arange(4), np.ones(40))
        )
        scaled = data * units[: data.shape[1]]
        b = discriminant_solution(
            *reference_statistics(scaled, y, np.arange(4), np.ones(40))
        )
        assert_allclose(
            scaled @ b.coef.T + b.intercept, data @ a.coef.T + a.intercept, rtol=1e-7
        )


def test_negligible_features_are_constant():
    """A feature 1e-20 times smaller than the others gets no weight."""
    X, y, w = make_data()
    tiny = (
        np.random.RandomState(3).normal(size=(len(y), 1)) * 1e-20 + y[:, None] * 1e-20
    )
    base = discriminant_solution(*reference_statistics(X, y, np.unique(y), w))
    padded = discriminant_solution(
        *reference_statistics(np.hstack([X, tiny]), y, np.unique(y), w)
    )
    assert_array_equal(padded.coef[:, -1], 0.0)
    assert_allclose(padded.coef[:, :-1], base.coef, rtol=1e-10)
    assert padded.null_fraction == 0.0


def test_whitened_subset_solve_equals_the_eigendecomposition():
    X, y, w = make_data(n=200, d=8)
    X = np.hstack([X, X[:, :2], np.zeros((200, 1))])  # duplicated and constant
    full = discriminant_solution(*reference_statistics(X, y, np.unique(y), w))
    assert full.whitening.shape[1] == 8  # rank
    subset = slice(0, 150)
    stats = reference_statistics(X[subset], y[subset], np.unique(y), w[subset])
    direct = discriminant_solution(*stats)
    fast = discriminant_solution(*stats, whitening=full.whitening)
    assert_allclose(fast.coef, direct.coef, rtol=1e-8, atol=1e-10)
    assert_allclose(fast.intercept, direct.intercept, rtol=1e-8, atol=1e-10)


def test_subset_missing_a_direction_still_solves_consistent_systems():
    """A subset with fewer rows than the full data's rank: the whitened solve
    falls back to a pseudo-inverse and stays a generalised inverse."""

    rng = np.random.RandomState(0)
    X = rng.normal(size=(20, 30))  # within-class rank 17 over 3 classes
    y = np.arange(20) % 3
    full = discriminant_solution(*reference_statistics(X, y, np.arange(3), np.ones(20)))
    _, _, scatter = reference_statistics(X[:12], y[:12], np.arange(3), np.ones(12))
    sigma = scatter / 12  # rank 9 < 17
    delta = rng.normal(size=(3, 30)) @ sigma  # right-hand sides in its range
    coef, quadratic = _whitened_solve(sigma, delta, full.whitening)
    assert np.all(np.isfinite(coef))
    assert_allclose(coef @ sigma, delta, rtol=1e-7, atol=1e-9 * np.abs(delta).max())
    assert_allclose(quadratic, np.sum(coef * delta, axis=1), rtol=1e-10)


@pytest.mark.parametrize("shrinkage", [0.0, 0.3, 1.0])
def test_shrunk_covariance(shrinkage):
    """Shrinkage of the standardised covariance towards its mean variance."""
    X, y, w = make_data()
    weight, mean, scatter = reference_statistics(X, y, np.unique(y), w)
    sigma = scatter / weight.sum()
    centred = X - (w @ X) / w.sum()
    spread = np.sqrt(w @ centred**2 / w.sum())
    standard = sigma / np.outer(spread, spread)
    shrunk = (1 - shrinkage) * standard + shrinkage * np.trace(standard) / 6 * np.eye(6)
    solution = discriminant_solution(weight, mean, scatter, shrinkage=shrinkage)
    assert_allclose(solution.covariance, shrunk * np.outer(spread, spread), rtol=1e-10)


def test_total_covariance_adds_between_class_scatter():
    X, y, w = make_data()
    weight, mean, scatter = reference_statistics(X, y, np.unique(y), w)
    solution = discriminant_solution(weight, mean, scatter, covariance="total")
    centred = X - (w @ X) / w.sum()
    assert_allclose(
        solution.covariance, (w[:, None] * centred).T @ centred / w.sum(), rtol=1e-10
    )


def test_class_without_weight_has_zero_probability():
    X, y, _ = make_data()
    stats = class_statistics(X[y != 1], y[y != 1], classes=np.arange(4))
    solution = discriminant_solution(*stats.pooled())
    assert solution.intercept[1] == -np.inf
    assert_array_equal(solution.coef[1], 0.0)
    assert np.all(np.isfinite(np.delete(solution.intercept, 1)))
