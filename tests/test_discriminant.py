"""The closed-form solve (shrinkage, pseudo-inverse, whitening), against
textbook formulas."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from test_stats import make_data, reference_statistics

from skprob._discriminant import (
    discriminant_solution,
    held_out_logits,
    held_out_rows,
    temperature_evidence,
    temperature_from_evidence,
)
from skprob._stats import class_statistics


def _moments(stats):
    return stats.weight, stats.mean, stats.scatter


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


def test_a_feature_of_any_scale_counts_and_a_constant_one_does_not():
    """Each feature is judged by itself: a feature 1e-20 times smaller than the
    others keeps its weight; a feature with one value in every row (at any
    offset) gets none."""
    X, y, w = make_data()
    rng = np.random.RandomState(3)
    tiny = (rng.normal(size=(len(y), 1)) + y[:, None]) * 1e-20
    base = discriminant_solution(*_moments(class_statistics(X, y, sample_weight=w)))
    padded = discriminant_solution(
        *_moments(class_statistics(np.hstack([X, tiny]), y, sample_weight=w))
    )
    scaled = discriminant_solution(
        *_moments(class_statistics(np.hstack([X, tiny * 1e20]), y, sample_weight=w))
    )
    assert_allclose(padded.coef[:, -1] * 1e-20, scaled.coef[:, -1], rtol=1e-8)
    assert_allclose(padded.coef[:, :-1], scaled.coef[:, :-1], rtol=1e-8)
    for value in (0.1, 1e8 + 0.1, -3e-200):
        constant = np.hstack([X, np.full((len(y), 1), value)])
        solution = discriminant_solution(
            *_moments(class_statistics(constant, y, sample_weight=w))
        )
        assert_array_equal(solution.coef[:, -1], 0.0)
        assert_allclose(solution.coef[:, :-1], base.coef, rtol=1e-10)
        assert solution.null_fraction == 0.0


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
    solution = discriminant_solution(*_moments(stats))
    assert solution.intercept[1] == -np.inf
    assert_array_equal(solution.coef[1], 0.0)
    assert np.all(np.isfinite(np.delete(solution.intercept, 1)))


# ---------------------------------------------------------------------------
# The temperature: exact leave-one-out logits, and the MAP temperature
# ---------------------------------------------------------------------------


def _refit_logits(X, y, w, row, classes, **options):
    """Logits of ``X[row]`` by the model refitted without it (and its copies)."""
    same = np.all(X == X[row], axis=1) & (y == y[row])
    keep = ~same
    stats = class_statistics(X[keep], y[keep], classes=classes, sample_weight=w[keep])
    solution = discriminant_solution(*_moments(stats), **options)
    return solution.coef @ X[row] + solution.intercept


def _same_softmax(a, b):
    """Logits equal up to a constant (the softmax ignores it); -inf where absent."""
    finite = np.isfinite(b)
    assert_array_equal(np.isfinite(a), finite)
    assert_allclose(a[finite] - a[finite].max(), b[finite] - b[finite].max(), atol=1e-9)


@pytest.mark.parametrize("covariance", ["within", "total"])
@pytest.mark.parametrize("duplicates", [False, True])
def test_held_out_logits_equal_refitting_without_each_row(covariance, duplicates):
    """Sherman-Morrison in whitened coordinates is the refit, row by row."""
    X, y, w = make_data(n=50, d=4, n_classes=3)
    if duplicates:  # three copies of row 0: held out together
        X = np.vstack([X, X[[0, 0]]])
        y, w = np.append(y, y[[0, 0]]), np.append(w, [0.5, 2.0])
    classes = np.arange(4)  # class 3 declared, never seen
    stats = class_statistics(X, y, classes=classes, sample_weight=w)
    solution = discriminant_solution(*_moments(stats), covariance=covariance)
    rows = held_out_rows(X, y, w, size=1000, seed=0)
    logits, target, weight, _ = held_out_logits(
        solution, classes, stats.weight, stats.mean, rows, covariance=covariance
    )
    assert len(target) == len(X) and np.all(np.isneginf(logits[:, 3]))
    for i in range(len(X)):
        row = np.flatnonzero(np.all(X == rows.X[i], axis=1))[0]
        expected = _refit_logits(X, y, w, row, classes, covariance=covariance)
        _same_softmax(logits[i], expected)


def test_held_out_logits_with_fixed_priors_and_shrinkage():
    """Fixed priors stay fixed; with shrinkage the held-out model keeps the
    full model's intensity and target: (n/n') (Sigma_a - (1 - a) A v v' / n)."""
    X, y, w = make_data(n=40, d=3, n_classes=3)
    classes = np.arange(3)
    stats = class_statistics(X, y, sample_weight=w)
    priors = np.array([0.2, 0.3, 0.5])
    shrinkage = 0.3
    solution = discriminant_solution(
        *_moments(stats), priors=priors, shrinkage=shrinkage
    )
    rows = held_out_rows(X, y, w, size=1000, seed=0)
    logits, target, _, _ = held_out_logits(
        solution, classes, stats.weight, stats.mean, rows, priors=priors
    )
    n = w.sum()
    for i in range(len(target)):
        x, c, wi = rows.X[i], target[i], rows.weight[i]
        N = stats.weight.copy()
        means = stats.mean.copy()
        v = x - means[c]
        a = wi * N[c] / (N[c] - wi)
        means[c] = means[c] - wi * v / (N[c] - wi)
        sigma = (n / (n - wi)) * (
            solution.covariance - (1 - shrinkage) * a * np.outer(v, v) / n
        )
        diff = x - means
        quadratic = np.einsum("kd,kd->k", diff @ np.linalg.inv(sigma), diff)
        _same_softmax(logits[i], np.log(priors) - quadratic / 2)


def test_held_out_logits_of_a_row_that_alone_spans_a_direction():
    """Fewer rows than features: each row spans its own direction, which the
    held-out model (pseudo-inverse) drops."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(12, 20))
    y = np.arange(12) % 3
    classes = np.arange(3)
    stats = class_statistics(X, y)
    solution = discriminant_solution(*_moments(stats))
    rows = held_out_rows(X, y, None, size=100, seed=0)
    logits, target, _, _ = held_out_logits(
        solution, classes, stats.weight, stats.mean, rows
    )
    assert len(target) == 12 and np.all(np.isfinite(logits))
    W = solution.whitening
    for i in range(12):
        x = rows.X[i]
        keep = ~np.all(X == x, axis=1)
        held = class_statistics(X[keep], y[keep], classes=classes)
        # the held-out covariance in the full model's whitened coordinates
        reduced = W.T @ (held.scatter / held.weight.sum()) @ W
        values, vectors = np.linalg.eigh(reduced)
        kept = values > 1e-8 * values.max()
        pinv = (vectors[:, kept] / values[kept]) @ vectors[:, kept].T
        diff = (x - held.mean) @ W
        quadratic = np.einsum("kr,rs,ks->k", diff, pinv, diff)
        weight = held.weight
        _same_softmax(logits[i], np.log(weight / weight.sum()) - quadratic / 2)


def test_rows_whose_class_has_no_other_weight_are_not_scored():
    X = np.arange(8.0).reshape(4, 2) ** 1.5
    y = np.array([0, 1, 2, 2])
    stats = class_statistics(X, y)
    solution = discriminant_solution(*_moments(stats))
    rows = held_out_rows(X, y, None, size=10, seed=0)
    logits, target, _, _ = held_out_logits(
        solution, np.arange(3), stats.weight, stats.mean, rows
    )
    assert_array_equal(target, [2, 2])
    assert np.all(np.isfinite(logits))


def _map_log_temperature(logits, target, weight):
    """Brute force: minimise the penalised held-out log-loss over log T."""
    from scipy.optimize import minimize_scalar
    from scipy.special import logsumexp

    def loss(u):
        z = np.exp(u) * logits
        return weight @ (logsumexp(z, axis=1) - z[np.arange(len(z)), target]) + u**2 / 2

    return minimize_scalar(loss, bounds=(-9, 9), method="bounded",
                           options={"xatol": 1e-10}).x  # fmt: skip


@pytest.mark.parametrize("sharpness", [0.1, 1.0, 10.0])
def test_temperature_is_the_penalised_held_out_optimum(sharpness):
    rng = np.random.RandomState(0)
    logits = sharpness * rng.normal(size=(300, 5))
    target = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)
    weight = rng.uniform(0.5, 2.0, size=300)
    evidence = temperature_evidence(logits, target, weight)
    expected = _map_log_temperature(logits, target, weight)
    assert np.log(temperature_from_evidence(evidence)) == pytest.approx(
        expected, abs=1e-6
    )
    # evidence of two halves adds up to nearly the whole (quadratic expansion)
    halves = temperature_evidence(
        logits[:150], target[:150], weight[:150]
    ) + temperature_evidence(logits[150:], target[150:], weight[150:])
    assert np.log(temperature_from_evidence(halves)) == pytest.approx(
        expected, abs=0.02
    )
    # a scale stands for that many times the rows
    doubled = temperature_evidence(logits, target, weight, scale=2.0)
    expected2 = _map_log_temperature(logits, target, 2 * weight)
    assert np.log(temperature_from_evidence(doubled)) == pytest.approx(
        expected2, abs=1e-6
    )


def test_separable_rows_keep_a_finite_temperature():
    logits = np.array([[5.0, -5.0], [-5.0, 5.0]] * 50)
    target = np.tile([0, 1], 50)
    T = temperature_from_evidence(temperature_evidence(logits, target, np.ones(100)))
    assert 1.0 < T < 1e4 and np.isfinite(T)
    assert temperature_from_evidence(np.zeros(2)) == 1.0
