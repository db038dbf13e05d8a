"""Perturb-max probability maps against quadrature and Monte Carlo."""

import warnings
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import stats
from scipy.integrate import quad
from scipy.special import softmax

from skprob import PerturbMaxTransformer, perturb_max_proba


def reference_perturb_max(mu, dist):
    """p_i by adaptive quad of f(x) prod_{j != i} F(x + mu_i - mu_j), class by class."""
    p = []
    for i in range(len(mu)):
        others = np.delete(mu[i] - mu, i)

        def integrand(x):
            return np.exp(dist.logpdf(x) + dist.logcdf(x + others).sum())

        p.append(quad(integrand, -np.inf, np.inf, epsabs=0, epsrel=1e-13, limit=500)[0])
    return np.array(p) / np.sum(p)


@pytest.mark.parametrize(
    "noise, dist", [("normal", stats.norm()), ("logistic", stats.logistic())]
)
@pytest.mark.parametrize("spread", [1.0, 4.0, 10.0])
def test_perturb_max_matches_quad(noise, dist, spread):
    rng = np.random.RandomState(int(spread))
    mu = rng.normal(scale=spread, size=6)
    expected = reference_perturb_max(mu, dist)
    assert expected.min() < 1e-3 or spread == 1.0
    assert_allclose(perturb_max_proba(mu[None], noise)[0], expected, rtol=1e-9)
    assert_allclose(perturb_max_proba(mu[None], dist)[0], expected, rtol=1e-7)


def test_perturb_max_tail_probabilities_keep_relative_accuracy():
    mu = np.array([0.0, -4.0, -9.0, -15.0])  # smallest p below 1e-20
    expected = reference_perturb_max(mu, stats.norm())
    assert expected.min() < 1e-20
    assert_allclose(perturb_max_proba(mu[None], "normal")[0], expected, rtol=1e-10)


def test_gumbel_is_softmax():
    rng = np.random.RandomState(0)
    S = rng.normal(scale=5, size=(20, 8))
    assert_allclose(
        perturb_max_proba(S, "gumbel", scale=2.0), softmax(S / 2, axis=1), rtol=1e-15
    )
    # the generic quadrature path on a frozen Gumbel distribution
    assert_allclose(
        perturb_max_proba(S[:4], stats.gumbel_r()), softmax(S[:4], axis=1), rtol=1e-11
    )


@pytest.mark.parametrize(
    "noise, sampler",
    [
        ("normal", lambda rng, size: rng.standard_normal(size)),
        ("logistic", lambda rng, size: rng.logistic(size=size)),
        (stats.t(5), lambda rng, size: rng.standard_t(5, size=size)),
        (stats.laplace(), lambda rng, size: rng.laplace(size=size)),
    ],
)
def test_perturb_max_matches_monte_carlo(noise, sampler):
    scores = np.array([1.0, 0.3, 0.0, -1.5])
    n_draws = 2_000_000
    rng = np.random.default_rng(0)
    wins = np.zeros(4)
    for _ in range(4):  # 4 x 500,000 draws, vectorised
        eps = sampler(rng, (n_draws // 4, 4))
        wins += np.bincount(np.argmax(scores + 0.8 * eps, axis=1), minlength=4)
    p_hat = wins / n_draws
    p = perturb_max_proba(scores[None], noise, scale=0.8)[0]
    standard_error = np.sqrt(p * (1 - p) / n_draws)
    assert (np.abs(p - p_hat) <= 4 * standard_error).all(), (p, p_hat)


@st.composite
def score_rows(draw):
    n = draw(st.integers(1, 3))
    m = draw(st.integers(2, 7))
    value = st.floats(-20, 20, allow_nan=False)
    return np.array(
        draw(st.lists(st.lists(value, min_size=m, max_size=m), min_size=n, max_size=n))
    )


@settings(max_examples=40, deadline=None)
@given(
    score_rows(), st.sampled_from(["normal", "logistic", "gumbel"]), st.floats(-50, 50)
)
def test_perturb_max_properties(S, noise, shift):
    P = perturb_max_proba(S, noise)
    assert np.isfinite(P).all() and (P >= 0).all()
    assert_allclose(P.sum(axis=1), 1, rtol=1e-12)
    # two quadratures on nodes moved by rounding: each within the documented
    # error, which for logistic noise reaches 3e-5 at score gaps of 30
    rtol = 1e-4 if noise == "logistic" else 1e-6
    assert_allclose(perturb_max_proba(S + shift, noise), P, rtol=rtol, atol=1e-300)
    for s, p in zip(S, P):
        order = np.argsort(-s, kind="stable")
        gaps = np.diff(p[order])
        # order kept, up to the quadrature's relative error between near-ties
        # (for logistic noise 4e-9 at score gaps of 10, 1e-5 at 20)
        assert (gaps <= (rtol if noise == "logistic" else 1e-8) * p[order][1:]).all()
    if noise == "gumbel":
        assert_allclose(P, softmax(S, axis=1), rtol=1e-14)


@settings(max_examples=30, deadline=None)
@given(score_rows(), st.sampled_from(["normal", "logistic"]), st.data())
def test_perturb_max_is_equivariant_to_permutations_and_scale(S, noise, data):
    """Classes are exchangeable, and the noise scale divides the scores."""
    P = perturb_max_proba(S, noise, scale=2.0)
    permutation = np.array(data.draw(st.permutations(range(S.shape[1]))))
    # up to the quadrature error (a permutation moves the Newton iterates and
    # so the nodes by rounding steps): for logistic noise up to 1e-5 at the
    # score gaps of 20 drawn here, below 1e-12 for normal noise
    assert_allclose(
        perturb_max_proba(S[:, permutation], noise, scale=2.0),
        P[:, permutation],
        rtol=1e-4 if noise == "logistic" else 1e-9,
        atol=1e-300,
    )
    assert_allclose(perturb_max_proba(S / 2.0, noise), P, rtol=1e-12, atol=1e-300)


def test_perturb_max_float32_and_errors():
    S = np.array([[1.0, 0.0, -1.0]], dtype=np.float32)
    assert perturb_max_proba(S, "normal").dtype == np.float32
    with pytest.raises(ValueError, match="'noise' parameter"):
        perturb_max_proba(S, "cauchy")
    with pytest.raises(ValueError, match="whole real line"):
        perturb_max_proba(S, stats.uniform())
    for scale in (0.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="'scale' parameter"):
            perturb_max_proba(S, scale=scale)
    for n_nodes in (np.nan, np.inf, 1):
        with pytest.raises(ValueError, match="'n_nodes' parameter"):
            perturb_max_proba(S, "normal", n_nodes=n_nodes)
    with pytest.raises(ValueError, match="n_nodes"):
        perturb_max_proba(S, "normal", n_nodes=1)
    with pytest.raises(ValueError, match="NaN or infinity .*row 1"):
        perturb_max_proba([[0.0, 1.0], [np.nan, 0.0]], "normal")


# ---------------------------------------------------------------------------
# scores / scale over the whole float range
# ---------------------------------------------------------------------------

NOISES = {"gumbel": "gumbel", "normal": "normal", "logistic": "logistic"}
NOISES["t5"] = stats.t(5)


def exact_gaps(row, scale):
    """``(row_i - max row) / scale`` in exact rational arithmetic, as floats.

    Gaps beyond 1e300 noise scales are -1e300 (their class never wins).
    """
    top = max(Fraction(v) for v in row)
    gaps = [(Fraction(v) - top) / Fraction(scale) for v in row]
    return np.array([float(max(g, Fraction(-1e300))) for g in gaps])


def softmax_mp(gaps_row):
    """Gumbel probabilities (softmax) of exact rational gaps in 50 digits."""
    mpmath.mp.dps = 50
    values = [mpmath.mpf(g.numerator) / g.denominator for g in gaps_row]
    weights = [mpmath.exp(v) for v in values]
    total = sum(weights)
    return np.array([float(w / total) for w in weights])


@pytest.mark.parametrize("noise", NOISES.values(), ids=NOISES.keys())
@pytest.mark.parametrize(
    "scores, scale, expected",
    [
        ([[1e10, 0.0]], 1e-300, [1.0, 0.0]),
        ([[1e10, 0.0, 0.0]], 1e-300, [1.0, 0.0, 0.0]),
        ([[0.0, 1e10, 0.0, 1e10]], 1e-300, [0.0, 0.5, 0.0, 0.5]),
        ([[-1e308, 1e308, 1e308]], 1.0, [0.0, 0.5, 0.5]),
        ([[1e308, -1e308, 1e308]], 1e-10, [0.5, 0.0, 0.5]),
        ([[1.0, 2.0, 3.0]], 5e-324, [0.0, 0.0, 1.0]),
    ],
)
def test_overflowing_scores_over_scale_give_the_one_hot_limit(
    noise, scores, scale, expected
):
    """Noise negligible against the gaps: the maximum wins, ties share equally."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = perturb_max_proba(scores, noise, scale=scale)
        from_transformer = PerturbMaxTransformer(noise, scale=scale).fit_transform(
            np.array(scores)
        )
    assert_allclose(got[0], expected, atol=1e-300)
    assert_allclose(from_transformer[0], expected, atol=1e-300)


def test_only_the_differences_of_the_scores_enter():
    """Scores 1e300 and the next double below, at scale 1e284: the difference,
    exact in floating point, is 1.487 scales; dividing each score by the scale
    first rounds it to 2."""
    row = [1e300, np.nextafter(1e300, 0)]
    d = (Fraction(row[0]) - Fraction(row[1])) / Fraction(1e284)
    assert 1.48 < d < 1.49
    expected = softmax_mp([Fraction(0), -d])
    assert_allclose(
        perturb_max_proba([row], "gumbel", scale=1e284)[0], expected, rtol=1e-14
    )
    # two classes under normal noise: P[e_1 - e_0 < d] = Phi(d / sqrt 2)
    win = float(mpmath.ncdf(mpmath.mpf(d.numerator) / d.denominator / mpmath.sqrt(2)))
    assert_allclose(
        perturb_max_proba([row], "normal", scale=1e284)[0],
        [win, 1 - win],
        rtol=1e-12,
    )


# a score anywhere in the float range, or near another score of the row
_MAGNITUDES = st.builds(
    lambda v, e: v * 10.0**e, st.floats(-10, 10), st.integers(-300, 297)
)


@st.composite
def wide_score_rows(draw):
    m = draw(st.integers(2, 5))
    row = [draw(st.one_of(_MAGNITUDES, st.floats(-1e308, 1e308)))]
    for _ in range(m - 1):
        near = row[draw(st.integers(0, len(row) - 1))]
        row.append(
            draw(
                st.one_of(
                    _MAGNITUDES,
                    st.just(near),  # a tie
                    # a few scales away from another score
                    st.floats(-5, 5).map(lambda t, near=near: near + t * abs(near)),
                    st.integers(-4, 4).map(
                        lambda k, near=near: (
                            float(np.nextafter(near, np.inf * k)) if k else near
                        )
                    ),
                )
            )
        )
    return np.array(row)


@settings(max_examples=80, deadline=None)
@given(
    wide_score_rows(),
    st.builds(lambda v, e: v * 10.0**e, st.floats(1, 10), st.integers(-300, 300)),
    st.sampled_from(["gumbel", "normal", "logistic"]),
)
def test_property_scores_and_scale_spanning_the_float_range(row, scale, noise):
    """Against the map of the exact (rational) gaps to the maximum."""
    assume(np.isfinite(row).all())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = perturb_max_proba(row[None], noise, scale=scale)[0]
    assert np.isfinite(got).all() and (got >= 0).all()
    assert_allclose(got.sum(), 1.0, rtol=1e-12)
    # the quadrature's relative error (see test_perturb_max_properties)
    rtol = {"gumbel": 1e-12, "normal": 1e-6, "logistic": 1e-4}[noise]
    tied = row == row.max()
    assert_allclose(got[tied], got[tied][0], rtol=rtol)  # ties share equally
    order = np.argsort(-row, kind="stable")
    assert (np.diff(got[order]) <= max(rtol, 1e-8) * got[order][1:]).all()
    if noise == "gumbel":
        top = max(Fraction(v) for v in row)
        gaps = [(Fraction(v) - top) / Fraction(scale) for v in row]
        gaps = [max(g, Fraction(-(10**6))) for g in gaps]  # exp(-1e6) is 0 anyway
        assert_allclose(got, softmax_mp(gaps), rtol=1e-12, atol=1e-300)
    else:
        # the same map on moderate scores: the exact gaps, at scale 1
        expected = perturb_max_proba(exact_gaps(row, scale)[None], noise)[0]
        assert_allclose(got, expected, rtol=rtol, atol=1e-300)
