"""Closed-form distances between Gaussians, against independent references."""

import functools
import warnings

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose
from scipy import linalg, sparse

from skprob import (
    _gaussian_factor,
    gaussian_bhattacharyya_distance,
    gaussian_hellinger_distance,
    gaussian_kl_divergence,
    gaussian_wasserstein_distance,
)
from skprob._gaussian import wasserstein_from_rows

DISTANCES = {
    "kl": gaussian_kl_divergence,
    "bhattacharyya": gaussian_bhattacharyya_distance,
    "hellinger": gaussian_hellinger_distance,
    "wasserstein": gaussian_wasserstein_distance,
}


def random_covariance(d, condition, rng):
    """``Q diag(logspace(0, -log10(condition))) Q'`` with a random rotation."""
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    s = (q * np.logspace(0, -np.log10(condition), d)) @ q.T
    return (s + s.T) / 2


def random_spd(d, rng, ridge=0.1):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + ridge * np.eye(d)


# --------------------------------------------------------------------------
# 50-digit references (mpmath), from the definitions
# --------------------------------------------------------------------------


def _mp(a):
    return mpmath.matrix(np.asarray(a).tolist())


def _mp_delta(m1, m2):
    return mpmath.matrix([mpmath.mpf(a) - mpmath.mpf(b) for a, b in zip(m1, m2)])


def _mp_symmetric_sqrt(s):
    w, v = mpmath.eigsy(s)
    root = mpmath.diag([mpmath.sqrt(max(x, 0)) for x in w])
    return v * root * v.T


def mp_wasserstein2(m1, s1, m2, s2):
    """|delta|^2 + tr S1 + tr S2 - 2 tr((S1^1/2 S2 S1^1/2)^1/2)."""
    s1, s2, delta = _mp(s1), _mp(s2), _mp_delta(m1, m2)
    root = _mp_symmetric_sqrt(s1)
    middle = root * s2 * root
    w, _ = mpmath.eigsy((middle + middle.T) / 2)
    cross = mpmath.fsum(mpmath.sqrt(max(x, 0)) for x in w)
    traces = mpmath.fsum(s1[i, i] + s2[i, i] for i in range(s1.rows))
    return mpmath.fsum(x * x for x in delta) + traces - 2 * cross


def mp_kl(m1, s1, m2, s2):
    n = len(m1)
    s1, s2, delta = _mp(s1), _mp(s2), _mp_delta(m1, m2)
    trace = mpmath.fsum(mpmath.lu_solve(s2, s1.column(i))[i] for i in range(n))
    quadratic = mpmath.fsum(a * b for a, b in zip(delta, mpmath.lu_solve(s2, delta)))
    return (quadratic + trace - n - mpmath.log(mpmath.det(s1) / mpmath.det(s2))) / 2


def mp_bhattacharyya(m1, s1, m2, s2):
    s1, s2, delta = _mp(s1), _mp(s2), _mp_delta(m1, m2)
    s = (s1 + s2) / 2
    quadratic = mpmath.fsum(a * b for a, b in zip(delta, mpmath.lu_solve(s, delta)))
    log_ratio = mpmath.log(mpmath.det(s) / mpmath.sqrt(mpmath.det(s1) * mpmath.det(s2)))
    return quadratic / 8 + log_ratio / 2


@functools.lru_cache(maxsize=None)
def reference_case(d, condition):
    """A pair of Gaussians and their 50-digit distances (computed once)."""
    rng = np.random.RandomState(d + int(np.log10(condition)))
    s1, s2 = (random_covariance(d, condition, rng) for _ in range(2))
    m1, m2 = rng.normal(size=(2, d))
    with mpmath.workdps(50):
        exact = {
            "wasserstein": mp_wasserstein2(m1, s1, m2, s2),
            "kl": mp_kl(m1, s1, m2, s2),
            "bhattacharyya": mp_bhattacharyya(m1, s1, m2, s2),
        }
        exact["hellinger"] = mpmath.sqrt(-mpmath.expm1(-exact["bhattacharyya"]))
        exact["wasserstein"] = mpmath.sqrt(exact["wasserstein"])
    return (m1, s1, m2, s2), {k: float(v) for k, v in exact.items()}


@pytest.mark.parametrize("metric", sorted(DISTANCES))
@pytest.mark.parametrize(
    "d, condition, rtol",
    [(2, 10, 1e-10), (8, 10, 1e-10), (32, 10, 1e-10)]
    + [(2, 1e8, 1e-6), (8, 1e8, 1e-6), (32, 1e8, 1e-6)],
)
def test_matches_50_digit_reference(metric, d, condition, rtol):
    args, exact = reference_case(d, condition)
    assert_allclose(DISTANCES[metric](*args), exact[metric], rtol=rtol)


def test_diagonal_matches_50_digit_reference():
    rng = np.random.RandomState(1)
    m1, m2 = rng.normal(size=(2, 8))
    v1, v2 = np.logspace(0, -8, 8), rng.permutation(np.logspace(0, -8, 8))
    with mpmath.workdps(50):
        mp = [mpmath.mpf(float(x)) for x in np.concatenate([m1, m2, v1, v2])]
        a, b, p, q = (mp[8 * i : 8 * i + 8] for i in range(4))
        kl = mpmath.fsum(
            ((x - y) ** 2 / s + r / s - 1 - mpmath.log(r / s)) / 2
            for x, y, r, s in zip(a, b, p, q)
        )
        bd = mpmath.fsum(
            (x - y) ** 2 / (4 * (r + s))
            + mpmath.log((r + s) / 2 / mpmath.sqrt(r * s)) / 2
            for x, y, r, s in zip(a, b, p, q)
        )
        w2 = mpmath.fsum(
            (x - y) ** 2 + (mpmath.sqrt(r) - mpmath.sqrt(s)) ** 2
            for x, y, r, s in zip(a, b, p, q)
        )
    assert_allclose(gaussian_kl_divergence(m1, v1, m2, v2), float(kl), rtol=1e-13)
    assert_allclose(
        gaussian_bhattacharyya_distance(m1, v1, m2, v2), float(bd), rtol=1e-13
    )
    assert_allclose(
        gaussian_wasserstein_distance(m1, v1, m2, v2, squared=True),
        float(w2),
        rtol=1e-13,
    )


# --------------------------------------------------------------------------
# Other implementations and known values
# --------------------------------------------------------------------------


def frechet_sqrtm(m1, s1, m2, s2):
    """The FID packages' formula: sqrtm of the non-symmetric S1 S2."""
    covmean = linalg.sqrtm(s1 @ s2)
    return np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * np.real(covmean))


@pytest.mark.parametrize("d", [3, 20])
def test_wasserstein_agrees_with_sqrtm_frechet(d):
    rng = np.random.RandomState(d)
    m1, m2 = rng.normal(size=(2, d))
    s1, s2 = random_spd(d, rng), random_spd(d, rng)
    ours = gaussian_wasserstein_distance(m1, s1, m2, s2, squared=True)
    assert_allclose(ours, frechet_sqrtm(m1, s1, m2, s2), rtol=1e-9)


@pytest.mark.parametrize("d", [3, 20])
def test_wasserstein_agrees_with_pot(d):
    ot_gaussian = pytest.importorskip(
        "ot.gaussian", reason="POT is an optional cross-check, not a dependency"
    )
    rng = np.random.RandomState(d)
    m1, m2 = rng.normal(size=(2, d))
    s1, s2 = random_spd(d, rng), random_spd(d, rng)
    theirs = ot_gaussian.bures_wasserstein_distance(m1, m2, s1, s2)
    assert_allclose(gaussian_wasserstein_distance(m1, s1, m2, s2), theirs, rtol=1e-9)


@pytest.mark.parametrize("d", [1, 4, 40])
def test_identical_gaussians_are_at_distance_zero(d):
    rng = np.random.RandomState(0)
    mean, cov = rng.normal(size=d), random_spd(d, rng)
    for function in DISTANCES.values():
        assert function(mean, cov, mean, cov) == 0.0
        assert function(mean, np.diag(cov), mean, np.diag(cov)) == 0.0


def test_commuting_covariances():
    """Shared eigenvectors: W2^2 = |delta|^2 + ||S1^1/2 - S2^1/2||_F^2."""
    rng = np.random.RandomState(0)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    a, b = rng.uniform(0.1, 4.0, size=(2, 6))
    s1, s2 = (q * a) @ q.T, (q * b) @ q.T
    r1, r2 = (q * np.sqrt(a)) @ q.T, (q * np.sqrt(b)) @ q.T
    m1, m2 = rng.normal(size=(2, 6))
    expected = np.sum((m1 - m2) ** 2) + np.sum((r1 - r2) ** 2)
    assert_allclose(
        gaussian_wasserstein_distance(m1, s1, m2, s2, squared=True),
        expected,
        rtol=1e-12,
    )


def test_kl_to_standard_normal():
    """KL(N(mu, S) || N(0, I)) = (tr S + |mu|^2 - d - log det S) / 2."""
    rng = np.random.RandomState(0)
    d = 5
    mean, cov = rng.normal(size=d), random_spd(d, rng)
    expected = 0.5 * (np.trace(cov) + mean @ mean - d - np.linalg.slogdet(cov)[1])
    ours = gaussian_kl_divergence(mean, cov, np.zeros(d), np.eye(d))
    assert_allclose(ours, expected, rtol=1e-12)
    assert_allclose(
        gaussian_kl_divergence(mean, np.diag(cov), np.zeros(d), np.ones(d)),
        0.5 * (np.trace(cov) + mean @ mean - d - np.log(np.diag(cov)).sum()),
        rtol=1e-12,
    )


def test_one_dimension_closed_forms():
    """N(a, s^2) against N(b, t^2): the textbook scalar formulas."""
    a, s, b, t = 0.3, 1.7, -1.1, 0.6
    kl = np.log(t / s) + (s**2 + (a - b) ** 2) / (2 * t**2) - 0.5
    bd = (a - b) ** 2 / (4 * (s**2 + t**2)) + 0.5 * np.log((s**2 + t**2) / (2 * s * t))
    w2 = (a - b) ** 2 + (s - t) ** 2
    args = ([a], [s**2], [b], [t**2])
    assert_allclose(gaussian_kl_divergence(*args), kl, rtol=1e-14)
    assert_allclose(gaussian_bhattacharyya_distance(*args), bd, rtol=1e-14)
    assert_allclose(gaussian_hellinger_distance(*args), np.sqrt(1 - np.exp(-bd)))
    assert_allclose(gaussian_wasserstein_distance(*args, squared=True), w2)


# --------------------------------------------------------------------------
# Shapes and broadcasting
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "v1, v2", [(1e-20, 1.0), (1e-200, 1e200), (1.0, 1e-20), (0.7, 1.3)]
)
def test_diagonal_kl_for_variances_far_apart(v1, v2):
    """u = v1/v2 - 1 rounds to -1 for v1 < eps v2: log1p(u) would be -inf."""
    expected = 0.5 * (v1 / v2 - 1 - (np.log(v1) - np.log(v2)))
    got = gaussian_kl_divergence([0.0, 0.0], [v1, v1], [0.0, 0.0], [v2, v2])
    assert_allclose(got, 2 * expected, rtol=1e-13)
    full = gaussian_kl_divergence([0.0], [[v1]], [0.0], [[v2]])
    assert_allclose(full, expected, rtol=1e-13)


@pytest.mark.parametrize("v1, v2", [(1.0, 5e-324), (1e-200, 1e200), (1e300, 1e-300)])
def test_diagonal_bhattacharyya_for_variances_beyond_the_float_range_apart(v1, v2):
    """x**2 = (v1 - v2)**2 / (4 v1 v2) overflows although the distance is finite."""
    expected = 0.5 * (np.log((v1 + v2) / 2) - 0.5 * (np.log(v1) + np.log(v2)))
    for a, b in ((v1, v2), (v2, v1)):
        got = gaussian_bhattacharyya_distance([0.0], [a], [0.0], [b])
        assert_allclose(got, expected, rtol=1e-13)
        full = gaussian_bhattacharyya_distance([0.0], [[a]], [0.0], [[b]])
        assert_allclose(full, expected, rtol=1e-13)


def test_diagonal_kl_beyond_the_float_range_is_inf_not_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = gaussian_kl_divergence([0.0], [1e200], [0.0], [1e-200])
    assert got == np.inf


@pytest.mark.parametrize("metric", sorted(DISTANCES))
@pytest.mark.parametrize("diagonal", [False, True])
def test_pairwise_matrix_in_one_call(metric, diagonal):
    rng = np.random.RandomState(0)
    n_a, n_b, d = 4, 3, 5
    means_a, means_b = rng.normal(size=(n_a, d)), rng.normal(size=(n_b, d))
    covs_a = np.stack([random_spd(d, rng) for _ in range(n_a)])
    covs_b = np.stack([random_spd(d, rng) for _ in range(n_b)])
    if diagonal:
        covs_a, covs_b = rng.uniform(0.2, 2, (n_a, d)), rng.uniform(0.2, 2, (n_b, d))
    function = DISTANCES[metric]
    matrix = function(means_a[:, None], covs_a[:, None], means_b[None], covs_b[None])
    assert matrix.shape == (n_a, n_b)
    loop = [
        [function(means_a[i], covs_a[i], means_b[j], covs_b[j]) for j in range(n_b)]
        for i in range(n_a)
    ]
    assert_allclose(matrix, loop, rtol=1e-12)


def test_blocks_give_the_same_result(monkeypatch):
    rng = np.random.RandomState(0)
    means = rng.normal(size=(7, 3))
    covs = np.stack([random_spd(3, rng) for _ in range(7)])
    variances = rng.uniform(0.2, 2, (7, 3))
    args = (means[:, None], covs[:, None], means[None], covs[None])
    diag_args = (means[:, None], variances[:, None], means[None], variances[None])
    whole = {k: (f(*args), f(*diag_args)) for k, f in DISTANCES.items()}
    monkeypatch.setattr(
        _gaussian_factor, "_BLOCK_VALUES", 10
    )  # one or two pairs a block
    for key, function in DISTANCES.items():
        assert_allclose(function(*args), whole[key][0], rtol=1e-13)
        assert_allclose(function(*diag_args), whole[key][1], rtol=1e-13)


def test_float32_input_is_computed_in_float64():
    rng = np.random.RandomState(0)
    m1, m2 = rng.normal(size=(2, 6)).astype(np.float32)
    s1, s2 = (random_spd(6, rng).astype(np.float32) for _ in range(2))
    for function in DISTANCES.values():
        ours = function(m1, s1, m2, s2)
        assert ours.dtype == np.float64
        exact = function(*(a.astype(np.float64) for a in (m1, s1, m2, s2)))
        assert_allclose(ours, exact, rtol=1e-14)


def test_shared_covariance_and_mixed_types():
    rng = np.random.RandomState(0)
    means = rng.normal(size=(4, 3))
    cov = random_spd(3, rng)
    variances = rng.uniform(0.5, 2, 3)
    shared = gaussian_kl_divergence(means, cov[None], np.zeros(3), variances)
    loop = [
        gaussian_kl_divergence(m, cov, np.zeros(3), np.diag(variances)) for m in means
    ]
    assert shared.shape == (4,)
    assert_allclose(shared, loop, rtol=1e-13)
    assert isinstance(gaussian_kl_divergence(means[0], cov, means[1], cov), float)


@pytest.mark.parametrize(
    "args, match",
    [
        (([0, 0], np.eye(3), [0, 0], np.eye(2)), "cov1 has shape"),
        (([0, 0], np.eye(2), [0, 0, 0], np.eye(3)), "different dimensions"),
        (
            (np.zeros((3, 2)), np.ones((3, 2)), np.zeros((4, 2)), np.ones((4, 2))),
            "do not broadcast",
        ),
        (([0, 0], [[1, 0.5], [0, 1]], [0, 0], np.eye(2)), r"cov1 is not symmetric"),
        (
            (
                [0, 0],
                np.eye(2),
                np.zeros((2, 2)),
                np.stack([np.eye(2), [[1, 2], [2, 1]]]),
            ),
            r"cov2\[1\] is not positive semi-definite",
        ),
        (([0, 0], [1, -1], [0, 0], [1, 1]), "negative variance"),
        (([0, np.nan], np.eye(2), [0, 0], np.eye(2)), "mean1 contains NaN"),
        (([0, 0], np.eye(2), [0, 0], [["a", "b"]]), "real numbers"),
        ((0.0, 1.0, 0.0, 1.0), "at least one axis"),
    ],
)
def test_bad_input_is_a_clear_error(args, match):
    with pytest.raises(ValueError, match=match):
        gaussian_wasserstein_distance(*args)


@pytest.mark.parametrize("function", DISTANCES.values())
def test_numbers_as_strings_or_objects_and_complex_numbers(function):
    rng = np.random.RandomState(0)
    m1, m2 = rng.normal(size=(2, 3))
    s1, s2 = random_spd(3, rng), random_spd(3, rng)
    expected = function(m1, s1, m2, s2)
    assert function(m1.astype(str), s1.astype(str), m2, s2) == expected
    assert function(m1, s1, m2.astype(object), s2.astype(object)) == expected
    with pytest.raises(ValueError, match="cov2 must hold real numbers; got complex"):
        function(m1, s1, m2, s2.astype(np.complex128))


# --------------------------------------------------------------------------
# Singular (positive semi-definite) covariances
# --------------------------------------------------------------------------


def low_rank(d, rank, rng):
    rows = rng.normal(size=(rank + 1, d))
    return np.cov(rows, rowvar=False)  # rank `rank`, tiny round-off eigenvalues


def clamped_wasserstein2(m1, s1, m2, s2):
    """Reference: symmetric square roots from clamped eigendecompositions."""

    def root(s):
        w, v = np.linalg.eigh(s)
        return (v * np.sqrt(np.maximum(w, 0))) @ v.T

    r = root(s1)
    cross = np.sqrt(np.maximum(np.linalg.eigvalsh(r @ s2 @ r), 0)).sum()
    return np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * cross


@pytest.mark.parametrize("ranks", [(3, 20), (20, 3), (4, 6)])
def test_wasserstein_singular_is_finite_and_exact(ranks):
    rng = np.random.RandomState(0)
    d = 20
    s1 = low_rank(d, ranks[0], rng) if ranks[0] < d else random_spd(d, rng)
    s2 = low_rank(d, ranks[1], rng) if ranks[1] < d else random_spd(d, rng)
    m1, m2 = rng.normal(size=(2, d))
    ours = gaussian_wasserstein_distance(m1, s1, m2, s2, squared=True)
    assert_allclose(ours, clamped_wasserstein2(m1, s1, m2, s2), rtol=1e-7)
    with mpmath.workdps(50):
        exact = float(mp_wasserstein2(m1, s1, m2, s2))
    assert_allclose(ours, exact, rtol=1e-7)


@pytest.mark.parametrize("scale", [1e150, 1e-150])
@pytest.mark.parametrize("ranks", [(5, 5), (2, 5), (2, 3)])
def test_wasserstein_at_extreme_scales(scale, ranks):
    """W2 scales with the data, though the squares of 1e300 covariances do not fit."""
    rng = np.random.RandomState(1)
    d = 5
    s1, s2 = (low_rank(d, r, rng) if r < d else random_spd(d, rng) for r in ranks)
    m1, m2 = rng.normal(size=(2, d))
    clean = gaussian_wasserstein_distance(m1, s1, m2, s2)
    scaled = gaussian_wasserstein_distance(
        m1 * scale, s1 * scale**2, m2 * scale, s2 * scale**2
    )
    assert_allclose(scaled, clean * scale, rtol=1e-8)  # singular: rank cut-offs
    batch = gaussian_wasserstein_distance(
        np.stack([m1, m1 * scale]),
        np.stack([s1, s1 * scale**2]),
        np.stack([m2, m2 * scale]),
        np.stack([s2, s2 * scale**2]),
    )
    assert_allclose(batch, [clean, clean * scale], rtol=1e-8)


@pytest.mark.parametrize("scale", [2.0**-1060, 2.0**-700, 2.0**1000])
def test_singular_covariances_at_extreme_scales(scale):
    """The rank tolerance d * eps * max(diag) underflowed for 1e-317 matrices."""
    m = np.zeros(2)
    a, b = np.ones((2, 2)), np.full((2, 2), 4.0)  # rank 1, exact at any scale
    for name, function in DISTANCES.items():
        assert function(m, a * scale, m, a * scale) == 0.0, name
        expected = function(m, a, m, b)
        if name == "wasserstein":
            expected *= np.sqrt(scale)
        assert_allclose(function(m, a * scale, m, b * scale), expected, rtol=1e-12)


def test_singular_covariances_whose_cholesky_succeeds_by_rounding():
    """2 * ones: sqrt(2)**2 rounds above 2 and Cholesky gives L_22 = 2e-8."""
    m = np.zeros(2)
    a, b = np.full((2, 2), 2.0), np.ones((2, 2))
    assert np.linalg.cholesky(a)[1, 1] > 0  # numpy calls it definite
    # on the common line the variances are 4 and 2
    kl = 0.5 * (2.0 - 1.0 - np.log(2.0))
    assert_allclose(gaussian_kl_divergence(m, a, m, b), kl, rtol=1e-12)
    bd = 0.5 * np.log(1.5 / np.sqrt(2.0))
    assert_allclose(gaussian_bhattacharyya_distance(m, a, m, b), bd, rtol=1e-12)
    assert_allclose(gaussian_bhattacharyya_distance(m, b, m, a), bd, rtol=1e-12)
    # and in a batch beside definite matrices
    batch = gaussian_kl_divergence(m[None], np.stack([a, np.eye(2)]), m, b)
    assert_allclose(batch, [kl, np.inf])


def test_supports_that_differ():
    rng = np.random.RandomState(0)
    d = 6
    s1, s2 = low_rank(d, 3, rng), low_rank(d, 3, rng)
    full = random_spd(d, rng)
    m = rng.normal(size=d)
    for a, b in [(s1, s2), (s1, full), (full, s1)]:
        assert gaussian_kl_divergence(m, a, m, b) == np.inf
        assert gaussian_bhattacharyya_distance(m, a, m, b) == np.inf
        assert gaussian_hellinger_distance(m, a, m, b) == 1.0
        assert np.isfinite(gaussian_wasserstein_distance(m, a, m, b))
    # same covariance but a mean difference off its range: parallel subspaces
    w, v = np.linalg.eigh(s1)
    off = v[:, 0]  # a null direction of s1
    assert gaussian_kl_divergence(m, s1, m + off, s1) == np.inf
    assert gaussian_hellinger_distance(m, s1, m + off, s1) == 1.0
    # diagonal: a zero variance in one Gaussian only, or both with other means
    assert gaussian_kl_divergence([0, 0], [1, 0], [0, 0], [1, 1]) == np.inf
    assert gaussian_bhattacharyya_distance([0, 0], [1, 0], [0, 1], [2, 0]) == np.inf


def test_common_subspace_gives_the_distances_on_it():
    """Gaussians on one r-dim subspace: the distances of their r-dim coordinates."""
    rng = np.random.RandomState(0)
    d, r = 7, 3
    basis, _ = np.linalg.qr(rng.normal(size=(d, r)))
    a1, a2 = random_spd(r, rng), random_spd(r, rng)
    c1, c2 = rng.normal(size=(2, r))
    offset = rng.normal(size=d)
    embedded = (
        basis @ c1 + offset,
        basis @ a1 @ basis.T,
        basis @ c2 + offset,
        basis @ a2 @ basis.T,
    )
    for key, function in DISTANCES.items():
        assert_allclose(function(*embedded), function(c1, a1, c2, a2), rtol=1e-9)
    # diagonal: zero variances in the same coordinates, equal means there
    v1, v2 = np.array([1.0, 0.0, 2.0]), np.array([3.0, 0.0, 0.5])
    for key, function in DISTANCES.items():
        assert_allclose(
            function([1.0, 5.0, 0.0], v1, [0.0, 5.0, 1.0], v2),
            function([1.0, 0.0], v1[[0, 2]], [0.0, 1.0], v2[[0, 2]]),
            rtol=1e-13,
        )


def test_round_off_negative_eigenvalues_are_clamped():
    rng = np.random.RandomState(0)
    s = low_rank(5, 2, rng)
    w, v = np.linalg.eigh(s)
    w[0] = -1e-15 * w[-1]  # below zero by round-off only
    s = (v * w) @ v.T
    s = (s + s.T) / 2
    assert np.isfinite(gaussian_wasserstein_distance(np.zeros(5), s, np.ones(5), s))
    assert gaussian_hellinger_distance(np.zeros(5), s, np.zeros(5), s) == 0.0


@pytest.mark.parametrize("shift", [0.5, 3.0, 30.0, 1e4])
def test_shift_along_a_singular_support_is_on_it(shift):
    """|delta|^2 - |inside|^2 cancelled: shifts beyond ~sqrt(d) sds were "off"."""
    cov = np.full((2, 2), 0.5)  # variance 1 along u = (1, 1)/sqrt(2), 0 across
    mean2 = shift * np.ones(2) / np.sqrt(2)
    # the reduced problem: N(0, 1) and N(shift, 1) on the line
    kl, bd = shift**2 / 2, shift**2 / 8
    args = (np.zeros(2), cov, mean2, cov)
    assert_allclose(gaussian_kl_divergence(*args), kl, rtol=1e-12)
    assert_allclose(gaussian_bhattacharyya_distance(*args), bd, rtol=1e-12)
    assert_allclose(gaussian_hellinger_distance(*args), np.sqrt(-np.expm1(-bd)))
    # and with a variance of 10 across the line: the same, plus nothing
    assert_allclose(
        gaussian_kl_divergence(
            np.zeros(3),
            linalg.block_diag(cov, 10.0),
            np.r_[mean2, 0],
            linalg.block_diag(cov, 10.0),
        ),
        kl,
        rtol=1e-12,
    )


def test_rank_is_decided_alike_for_covariances_on_one_line():
    """0.55 v v' passed numpy's Cholesky by rounding (rank 2), 0.75 v v' did not."""
    angle = np.deg2rad(53.0)
    v = np.array([np.cos(angle), np.sin(angle)])
    a, b = 0.75 * np.outer(v, v), 0.55 * np.outer(v, v)
    m = np.zeros(2)
    # the reduced problem: N(0, 0.75) and N(0, 0.55) on the line (textbook)
    ratio = 0.75 / 0.55
    kl = 0.5 * (ratio - 1.0 - np.log(ratio))
    bd = 0.5 * np.log((0.75 + 0.55) / 2 / np.sqrt(0.75 * 0.55))
    assert_allclose(gaussian_kl_divergence(m, a, m, b), kl, rtol=1e-10)
    assert_allclose(
        gaussian_kl_divergence(m, b, m, a),
        0.5 * (1 / ratio - 1 + np.log(ratio)),
        rtol=1e-10,
    )
    assert_allclose(gaussian_bhattacharyya_distance(m, a, m, b), bd, rtol=1e-10)
    assert_allclose(gaussian_bhattacharyya_distance(m, b, m, a), bd, rtol=1e-10)


def test_rank_of_rank_one_matrices_on_many_lines():
    """Every rank-one c v v' gets rank 1, whatever the line and the scale."""
    rng = np.random.RandomState(0)
    m = np.zeros(2)
    for _ in range(300):
        angle = rng.uniform(0, np.pi)
        v = np.array([np.cos(angle), np.sin(angle)])
        c1, c2 = 10 ** rng.uniform(-3, 3, size=2)
        ratio = c1 / c2
        kl = gaussian_kl_divergence(m, c1 * np.outer(v, v), m, c2 * np.outer(v, v))
        assert_allclose(kl, 0.5 * (ratio - 1.0 - np.log(ratio)), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize(
    "function", [gaussian_wasserstein_distance, wasserstein_from_rows]
)
@pytest.mark.parametrize(
    "mean_scale, deviation_scale",
    [(1e155, 1.0), (1e155, 1e150), (1e200, 1e120), (1e-160, 1e-150), (1e-200, 1e-150)],
)
def test_wasserstein_between_means_far_beyond_the_square_root_of_the_range(
    function, mean_scale, deviation_scale
):
    """|delta|^2 overflowed (underflowed) before its square root."""
    rng = np.random.RandomState(0)
    m1, m2 = rng.normal(size=(2, 3)) * mean_scale
    x1, x2 = rng.normal(size=(2, 2, 3)) * deviation_scale
    # two rows each: rank-one covariances S = F'F
    rows1, rows2 = ((x - x.mean(0)) / np.sqrt(2) for x in (x1, x2))
    s1, s2 = rows1.T @ rows1, rows2.T @ rows2
    with mpmath.workdps(50):
        exact = float(mpmath.sqrt(mp_wasserstein2(m1, s1, m2, s2)))
    if function is wasserstein_from_rows:
        got = function(m1, s1, rows1, m2, s2, rows2)
    else:
        got = function(m1, s1, m2, s2)
    assert_allclose(got, exact, rtol=1e-7)


def test_wasserstein_far_apart_diagonal_and_squared():
    m1, m2 = np.zeros(2), np.array([3e155, 4e155])
    for cov in (np.ones(2), np.eye(2)):
        assert_allclose(gaussian_wasserstein_distance(m1, cov, m2, cov), 5e155)
        # W2^2 = 2.5e311 is beyond the float range: inf is its value
        assert gaussian_wasserstein_distance(m1, cov, m2, cov, squared=True) == np.inf
    tiny = np.array([3e-170, 4e-170])
    assert_allclose(
        gaussian_wasserstein_distance(m1, np.zeros(2), tiny, np.zeros(2)), 5e-170
    )
    # the largest variances there are: W2^2 = 2 (sqrt(1e308) - sqrt(.9e308))^2
    big, less = np.full(2, 1e308), np.full(2, 0.9e308)
    expected = 2 * (np.sqrt(1e308) - np.sqrt(0.9e308)) ** 2
    for a, b in ((big, less), (np.diag(big), np.diag(less))):
        got = gaussian_wasserstein_distance(m1, a, m1, b, squared=True)
        assert_allclose(got, expected, rtol=1e-10)


@pytest.mark.parametrize("function", DISTANCES.values())
def test_no_dimension_is_a_clear_error(function):
    for cov in (np.zeros((0, 0)), np.zeros(0)):
        with pytest.raises(ValueError, match=r"no coordinates.*d = 0"):
            function(np.zeros(0), cov, np.zeros(0), cov)


@pytest.mark.parametrize("function", DISTANCES.values())
@pytest.mark.parametrize("position", range(4))
def test_sparse_input_is_a_clear_error(function, position):
    args = [np.zeros(2), np.eye(2), np.zeros(2), np.eye(2)]
    args[position] = sparse.csr_matrix(np.atleast_2d(args[position]))
    name = ["mean1", "cov1", "mean2", "cov2"][position]
    with pytest.raises(
        ValueError,
        match=f"{name} is a scipy.sparse matrix; sparse input is not supported",
    ):
        function(*args)


def test_point_masses():
    # apart by 1e-170: a square would underflow to 0
    for cov in ([0.0], [[0.0]]):
        assert gaussian_kl_divergence([0.0], cov, [1e-170], cov) == np.inf
        assert gaussian_bhattacharyya_distance([1e-170], cov, [0.0], cov) == np.inf
    zero = np.zeros((2, 2))
    assert gaussian_kl_divergence([1, 2], zero, [1, 2], zero) == 0.0
    assert gaussian_kl_divergence([1, 2], zero, [1, 3], zero) == np.inf
    assert gaussian_wasserstein_distance([1, 2], zero, [4, 6], zero) == 5.0


# --------------------------------------------------------------------------
# W2 from sample factors
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n1, n2", [(5, 8), (5, 40), (40, 8), (40, 40)])
def test_wasserstein_from_rows_matches_general_route(n1, n2):
    rng = np.random.RandomState(0)
    d = 30
    x1, x2 = rng.normal(size=(n1, d)), 1.5 * rng.normal(size=(n2, d)) + 0.2
    rows1 = (x1 - x1.mean(0)) / np.sqrt(n1)
    rows2 = (x2 - x2.mean(0)) / np.sqrt(n2)
    s1, s2 = rows1.T @ rows1, rows2.T @ rows2
    general = gaussian_wasserstein_distance(x1.mean(0), s1, x2.mean(0), s2)
    for r1, r2 in [(rows1, rows2), (rows1, None), (None, rows2)]:
        ours = wasserstein_from_rows(x1.mean(0), s1, r1, x2.mean(0), s2, r2)
        assert_allclose(ours, general, rtol=1e-8)


# --------------------------------------------------------------------------
# Properties (hypothesis)
# --------------------------------------------------------------------------


@st.composite
def gaussians(draw, d=None, singular=True):
    """A mean and a full PSD covariance (possibly singular), or variances."""
    if d is None:
        d = draw(st.integers(1, 4))
    mean = draw(arrays(np.float64, d, elements=st.floats(-3, 3)))
    if draw(st.booleans()):
        low = 0.0 if singular else 0.05
        return mean, draw(arrays(np.float64, d, elements=st.floats(low, 3)))
    k = draw(st.integers(1 if singular else d, d + 1))
    a = draw(arrays(np.float64, (d, k), elements=st.floats(-2, 2)))
    ridge = 0.0 if singular else 0.05
    return mean, a @ a.T + ridge * np.eye(d)


def _full(g):
    mean, cov = g
    return (mean, np.diag(cov)) if cov.ndim == 1 else g


@settings(max_examples=60, deadline=None)
@given(gaussians())
def test_distance_to_itself_is_zero(g):
    for function in DISTANCES.values():
        assert function(*g, *g) == 0.0


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4).flatmap(lambda d: st.tuples(gaussians(d), gaussians(d))))
def test_symmetry_and_kl_non_negative(pair):
    p, q = pair
    for key in ("bhattacharyya", "hellinger", "wasserstein"):
        forward, backward = DISTANCES[key](*p, *q), DISTANCES[key](*q, *p)
        assert_allclose(forward, backward, rtol=1e-8, atol=1e-7)
    assert gaussian_kl_divergence(*p, *q) >= 0
    assert 0 <= gaussian_hellinger_distance(*p, *q) <= 1


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 4).flatmap(
        lambda d: st.tuples(gaussians(d), gaussians(d), gaussians(d))
    )
)
def test_triangle_inequality(triple):
    a, b, c = (_full(g) for g in triple)
    for function in (gaussian_wasserstein_distance, gaussian_hellinger_distance):
        ab, bc, ac = function(*a, *b), function(*b, *c), function(*a, *c)
        assert ac <= ab + bc + 1e-6


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 4).flatmap(
        lambda d: st.tuples(
            gaussians(d), gaussians(d), arrays(np.float64, d, elements=st.floats(-5, 5))
        )
    )
)
def test_wasserstein_translation_law(case):
    (m1, s1), (m2, s2), shift = case
    if s1.ndim != s2.ndim:
        s1, s2 = _full((m1, s1))[1], _full((m2, s2))[1]
    w2 = gaussian_wasserstein_distance(m1, s1, m2, s2, squared=True)
    moved = gaussian_wasserstein_distance(m1 + shift, s1, m2 + shift, s2, squared=True)
    centred = gaussian_wasserstein_distance(0 * m1, s1, 0 * m2, s2, squared=True)
    assert_allclose(moved, w2, rtol=1e-9, atol=1e-9)
    assert_allclose(w2, np.sum((m1 - m2) ** 2) + centred, rtol=1e-9, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 4).flatmap(
        lambda d: st.tuples(
            gaussians(d, singular=False),
            gaussians(d, singular=False),
            arrays(np.float64, (d, d), elements=st.floats(-0.3, 0.3)),
            arrays(np.float64, d, elements=st.floats(-5, 5)),
        )
    )
)
def test_kl_invariant_under_invertible_affine_map(case):
    p, q, perturbation, shift = case
    (m1, s1), (m2, s2) = _full(p), _full(q)
    a = np.eye(len(m1)) * 1.5 + perturbation  # well conditioned by construction
    kl = gaussian_kl_divergence(m1, s1, m2, s2)
    mapped = gaussian_kl_divergence(
        a @ m1 + shift, a @ s1 @ a.T, a @ m2 + shift, a @ s2 @ a.T
    )
    assert_allclose(mapped, kl, rtol=1e-7, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 4).flatmap(
        lambda d: st.tuples(
            gaussians(d, singular=False),
            gaussians(d, singular=False),
            arrays(np.float64, (d, d), elements=st.floats(-0.3, 0.3)),
            arrays(np.float64, d, elements=st.floats(-5, 5)),
        )
    )
)
def test_bhattacharyya_and_hellinger_invariant_under_invertible_affine_map(case):
    p, q, perturbation, shift = case
    (m1, s1), (m2, s2) = _full(p), _full(q)
    a = np.eye(len(m1)) * 1.5 + perturbation  # well conditioned by construction
    mapped = (a @ m1 + shift, a @ s1 @ a.T, a @ m2 + shift, a @ s2 @ a.T)
    for function in (gaussian_bhattacharyya_distance, gaussian_hellinger_distance):
        assert_allclose(
            function(*mapped), function(m1, s1, m2, s2), rtol=1e-7, atol=1e-9
        )


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 4).flatmap(
        lambda d: st.tuples(
            gaussians(d),
            gaussians(d),
            arrays(np.float64, (d, d), elements=st.floats(-1, 1)),
            st.floats(0.01, 100.0),
        )
    )
)
def test_wasserstein_scales_with_a_similarity(case):
    """W2(c Q P) = c W2(P): rotations (and reflections) keep it, scaling scales it."""
    p, q, a, c = case
    (m1, s1), (m2, s2) = _full(p), _full(q)
    rotation, _ = np.linalg.qr(a + 3 * np.eye(len(m1)))  # orthogonal
    r = c * rotation
    mapped = gaussian_wasserstein_distance(
        r @ m1, r @ s1 @ r.T, r @ m2, r @ s2 @ r.T, squared=True
    )
    w2 = gaussian_wasserstein_distance(m1, s1, m2, s2, squared=True)
    # the trace formula cancels: accurate to eps * (tr S1 + tr S2), absolutely
    floor = 1e-9 * (1 + np.trace(s1) + np.trace(s2))
    assert_allclose(mapped, c * c * w2, rtol=1e-7, atol=c * c * floor)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4).flatmap(lambda d: st.tuples(gaussians(d), gaussians(d))))
def test_diagonal_covariances_equal_their_full_matrices(pair):
    (m1, s1), (m2, s2) = pair
    if s1.ndim != 1 or s2.ndim != 1:
        s1, s2 = (np.abs(np.diagonal(s)) if s.ndim == 2 else s for s in (s1, s2))
    for name, function in DISTANCES.items():
        diagonal = function(m1, s1, m2, s2)
        full = function(m1, np.diag(s1), m2, np.diag(s2))
        assert_allclose(diagonal, full, rtol=1e-8, atol=1e-9, err_msg=name)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 3).flatmap(
        lambda d: st.tuples(
            st.lists(gaussians(d, singular=False), min_size=1, max_size=3),
            st.lists(gaussians(d, singular=False), min_size=1, max_size=3),
        )
    )
)
def test_one_broadcast_call_equals_a_loop_over_pairs(families):
    first, second = ([_full(g) for g in family] for family in families)
    m1, s1 = (np.stack(a) for a in zip(*first))
    m2, s2 = (np.stack(a) for a in zip(*second))
    for name, function in DISTANCES.items():
        matrix = function(m1[:, None], s1[:, None], m2[None], s2[None])
        loop = [[function(*a, *b) for b in second] for a in first]
        assert_allclose(matrix, loop, rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize(
    "delta, variance",
    [(1.22364911e-160, 1.4975e-320), (1e154, 1e300), (3e-170, 2e-310)],
)
def test_diagonal_quadratic_term_neither_underflows_nor_overflows(delta, variance):
    """delta^2 / v is taken as (delta / sqrt(v))^2: subnormal or huge squares of
    delta whose quotient is representable give the 1-D textbook values."""
    import mpmath

    mpmath.mp.dps = 40
    q = mpmath.mpf(delta) ** 2 / mpmath.mpf(variance)
    kl = gaussian_kl_divergence([0.0], [variance], [delta], [variance])
    assert kl == pytest.approx(float(q / 2), rel=1e-12)
    bd = gaussian_bhattacharyya_distance([0.0], [variance], [delta], [variance])
    assert bd == pytest.approx(float(q / 8), rel=1e-12)
    full = gaussian_kl_divergence([0.0], [[variance]], [delta], [[variance]])
    assert kl == pytest.approx(full, rel=1e-9)
