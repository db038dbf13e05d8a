"""GaussianDistance: fitted Gaussians, metrics, shrinkage, low-rank route, pandas."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import linalg
from sklearn.covariance import OAS, shrunk_covariance

from skprob import (
    GaussianDistance,
    gaussian_bhattacharyya_distance,
    gaussian_hellinger_distance,
    gaussian_kl_divergence,
    gaussian_wasserstein_distance,
)

METRICS = ["kl", "reverse_kl", "jeffreys", "bhattacharyya", "hellinger", "wasserstein"]


def reference_metric(metric, m1, s1, m2, s2):
    """The metric from the public functions, Gaussian 1 being the reference."""
    kl = gaussian_kl_divergence
    return {
        "kl": lambda: kl(m1, s1, m2, s2),
        "reverse_kl": lambda: kl(m2, s2, m1, s1),
        "jeffreys": lambda: kl(m1, s1, m2, s2) + kl(m2, s2, m1, s1),
        "bhattacharyya": lambda: gaussian_bhattacharyya_distance(m1, s1, m2, s2),
        "hellinger": lambda: gaussian_hellinger_distance(m1, s1, m2, s2),
        "wasserstein": lambda: gaussian_wasserstein_distance(m1, s1, m2, s2),
    }[metric]()


def weighted_gaussian(X, w):
    """Textbook weighted mean and maximum-likelihood covariance."""
    mean = np.average(X, axis=0, weights=w)
    centred = X - mean
    return mean, (w[:, None] * centred).T @ centred / w.sum()


def make_data(seed=0, n=200, d=4):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + 3.0
    Z = 1.3 * rng.normal(size=(n // 2, d)) @ rng.normal(size=(d, d)) + 2.5
    return X, Z, rng.uniform(0.2, 3.0, size=n)


def test_fit_gives_the_weighted_maximum_likelihood_gaussian():
    X, _, w = make_data()
    gd = GaussianDistance().fit(X, sample_weight=w)
    mean, cov = weighted_gaussian(X, w)
    assert_allclose(gd.location_, mean, rtol=1e-12)
    assert_allclose(gd.covariance_, cov, rtol=1e-10)
    assert gd.shrinkage_ == 0.0
    assert_allclose(
        GaussianDistance().fit(X).covariance_, np.cov(X, rowvar=False, ddof=0)
    )


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_distance_is_the_metric_between_fitted_gaussians(metric, covariance_type):
    X, Z, w = make_data()
    gd = GaussianDistance(metric, covariance_type=covariance_type)
    gd.fit(X, sample_weight=w)
    (m1, s1), (m2, s2) = weighted_gaussian(X, w), weighted_gaussian(Z, np.ones(100))
    if covariance_type == "diag":
        s1, s2 = np.diag(s1), np.diag(s2)
    expected = reference_metric(metric, m1, s1, m2, s2)
    assert_allclose(gd.distance(Z), expected, rtol=1e-9)
    assert_allclose(gd.score(Z), -expected, rtol=1e-9)
    assert isinstance(gd.distance(Z), float)


@pytest.mark.parametrize("metric", METRICS)
def test_class_distances(metric):
    X, _, w = make_data(n=300)
    y = np.array(["cat", "dog", "eel"])[np.arange(300) % 3]
    X[y == "dog"] += 1.0
    X[y == "eel"] *= 1.5
    gd = GaussianDistance(metric).fit(X, y, sample_weight=w)
    assert list(gd.classes_) == ["cat", "dog", "eel"]
    assert gd.means_.shape == (3, 4) and gd.covariances_.shape == (3, 4, 4)
    gaussians = [weighted_gaussian(X[y == c], w[y == c]) for c in gd.classes_]
    for i, (m1, s1) in enumerate(gaussians):
        assert_allclose(gd.means_[i], m1, rtol=1e-12)
        assert_allclose(gd.covariances_[i], s1, rtol=1e-10)
        for j, (m2, s2) in enumerate(gaussians):
            expected = 0.0 if i == j else reference_metric(metric, m1, s1, m2, s2)
            assert_allclose(gd.class_distances_[i, j], expected, rtol=1e-9)
    # the reference Gaussian is that of all rows
    mean, cov = weighted_gaussian(X, w)
    assert_allclose(gd.location_, mean, rtol=1e-12)
    assert_allclose(gd.covariance_, cov, rtol=1e-10)


def test_oas_shrinkage_matches_scikit_learn():
    X, Z, _ = make_data(n=30, d=10)
    gd = GaussianDistance(shrinkage="auto").fit(X)
    oas = OAS().fit(X)
    assert_allclose(gd.covariance_, oas.covariance_, rtol=1e-10)
    assert_allclose(gd.shrinkage_, oas.shrinkage_, rtol=1e-10)
    fixed = GaussianDistance(shrinkage=0.3).fit(X)
    assert_allclose(
        fixed.covariance_, shrunk_covariance(np.cov(X.T, ddof=0), 0.3), rtol=1e-12
    )
    variances = GaussianDistance(covariance_type="diag", shrinkage=0.3).fit(X)
    v = X.var(axis=0)
    assert_allclose(variances.covariance_, 0.7 * v + 0.3 * v.mean(), rtol=1e-12)


def test_diagonal_fit_never_forms_a_full_covariance():
    """covariance_type="diag" costs O(n d): no d x d array at d = 4,000."""
    import tracemalloc

    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 4000)) * rng.uniform(0.5, 2, size=4000)
    y = np.arange(60) % 3
    tracemalloc.start()
    gd = GaussianDistance(covariance_type="diag").fit(X, y)
    distance = gd.distance(X[:30] + 0.1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4000**2 * 8 / 10  # a tenth of one d x d float64 array
    assert_allclose(gd.covariance_, X.var(axis=0), rtol=1e-12)
    assert_allclose(gd.covariances_[1], X[y == 1].var(axis=0), rtol=1e-12)
    # W2 between diagonal Gaussians: |m1 - m2|^2 + sum (sqrt(v1) - sqrt(v2))^2
    new = X[:30] + 0.1
    expected = np.sqrt(
        np.sum((X.mean(0) - new.mean(0)) ** 2)
        + np.sum((np.sqrt(X.var(0)) - np.sqrt(new.var(0))) ** 2)
    )
    assert_allclose(distance, expected, rtol=1e-9)


def test_few_samples_kl_is_infinite_without_shrinkage_and_finite_with_it():
    rng = np.random.RandomState(0)
    X, Z = rng.normal(size=(8, 12)), rng.normal(size=(9, 12))
    assert GaussianDistance("kl").fit(X).distance(Z) == np.inf
    assert GaussianDistance("hellinger").fit(X).distance(Z) == 1.0
    assert np.isfinite(GaussianDistance("kl", shrinkage="auto").fit(X).distance(Z))
    assert GaussianDistance("kl").fit(X).distance(X) == 0.0


@pytest.mark.parametrize("n_ref, n_new", [(6, 9), (6, 80), (80, 9), (80, 80)])
def test_low_rank_route_matches_the_general_route(n_ref, n_new):
    rng = np.random.RandomState(0)
    d = 40
    X = rng.normal(size=(n_ref, d)) + 1.0
    Z = 1.2 * rng.normal(size=(n_new, d))
    w = rng.uniform(0.5, 2.0, size=n_ref)
    w[0] = 0.0  # a row without weight is no row at all
    gd = GaussianDistance().fit(X, sample_weight=w)
    (m1, s1), (m2, s2) = weighted_gaussian(X, w), weighted_gaussian(Z, np.ones(n_new))
    expected = gaussian_wasserstein_distance(m1, s1, m2, s2)
    assert_allclose(gd.distance(Z), expected, rtol=1e-8)
    # and against the FID packages' sqrtm formula on these singular covariances
    covmean = np.real(linalg.sqrtm(s1 @ s2))
    frechet = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert_allclose(gd.distance(Z) ** 2, frechet, rtol=1e-5)


def test_integer_weights_repeat_rows_and_zero_weights_drop_them():
    X, Z, _ = make_data(n=40)
    counts = np.arange(40) % 3
    gd = GaussianDistance("bhattacharyya").fit(X, sample_weight=counts)
    repeated = GaussianDistance("bhattacharyya").fit(np.repeat(X, counts, axis=0))
    assert_allclose(gd.covariance_, repeated.covariance_, rtol=1e-10)
    assert_allclose(gd.distance(Z), repeated.distance(Z), rtol=1e-10)
    assert_allclose(
        gd.distance(Z, sample_weight=counts[:20]),
        gd.distance(np.repeat(Z, counts[:20], axis=0)),
        rtol=1e-10,
    )


def test_float32_input():
    X, Z, _ = make_data()
    gd64 = GaussianDistance().fit(X)
    gd32 = GaussianDistance().fit(X.astype(np.float32))
    assert_allclose(gd32.distance(Z.astype(np.float32)), gd64.distance(Z), rtol=1e-5)


def test_pandas_columns_are_aligned_by_name():
    X, Z, _ = make_data()
    columns = ["a", "b", "c", "d"]
    gd = GaussianDistance().fit(pd.DataFrame(X, columns=columns))
    shuffled = pd.DataFrame(Z, columns=columns)[["c", "a", "d", "b"]]
    assert_allclose(
        gd.distance(shuffled), gd.distance(pd.DataFrame(Z, columns=columns))
    )
    assert_allclose(gd.distance(shuffled), GaussianDistance().fit(X).distance(Z))
    with pytest.raises(ValueError, match=r"missing columns seen in fit: \['d'\]"):
        gd.distance(shuffled[["c", "a", "b"]])
    extra = shuffled.assign(e=1.0)
    with pytest.raises(ValueError, match=r"columns not seen in fit: \['e'\]"):
        gd.distance(extra)


def test_polars_columns_are_aligned_by_name():
    pl = pytest.importorskip("polars", reason="polars is an optional input type")
    X, Z, _ = make_data()
    columns = ["a", "b", "c", "d"]
    gd = GaussianDistance().fit(pl.DataFrame(X, schema=columns))
    shuffled = pl.DataFrame(Z, schema=columns).select(["d", "c", "b", "a"])
    assert_allclose(gd.distance(shuffled), GaussianDistance().fit(X).distance(Z))


def test_errors():
    X, _, _ = make_data(n=20)
    # scikit-learn >= 1.9 rejects all-zero weights itself; before, fit does
    with pytest.raises(ValueError, match="non-zero|weights of the data sum to zero"):
        GaussianDistance().fit(X, sample_weight=np.zeros(20))
    y = np.arange(20) % 2
    weights = np.where(y == 1, 0.0, 1.0)
    with pytest.raises(ValueError, match="class np.int64\\(1\\)|class 1"):
        GaussianDistance().fit(X, y, sample_weight=weights)
    with pytest.raises(ValueError, match="X has 3 features"):
        GaussianDistance().fit(X).distance(X[:, :3])


def test_fitted_low_rank_reference_holds_no_training_rows():
    """Fewer rows than dimensions: the model keeps a root of the covariance."""
    import pickle

    rng = np.random.RandomState(0)
    X = rng.normal(size=(20, 50))
    model = GaussianDistance().fit(X)
    blob = pickle.dumps(model)
    assert not any(row.tobytes() in blob for row in X)
    assert not any((row - X.mean(0)).tobytes() in blob for row in X)
    X_new = rng.normal(size=(15, 50)) + 0.3
    general = (
        GaussianDistance().fit(np.vstack([X] * 3)).distance(np.vstack([X_new] * 4))
    )
    assert model.distance(X_new) == pytest.approx(general, rel=1e-9)
