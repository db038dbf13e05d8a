"""Gaussians on a lower-dimensional subspace: properties against the reduced problem.

A k-dimensional Gaussian mapped into d dimensions by an orthonormal map ``Q``
(``mu = offset + Q c``, ``Sigma = Q A Q'``) has a singular covariance when
k < d. Every distance here is invariant under that map, so the d-dimensional
value must equal the k-dimensional one, computed directly by the textbook
formulas below (numpy ``solve`` / ``slogdet`` / ``eigh``: independent of the
library's factorisations). Shifts off the subspace make KL and Bhattacharyya
infinite and add their square to W2^2.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from skprob import (
    GaussianDistance,
    gaussian_bhattacharyya_distance,
    gaussian_hellinger_distance,
    gaussian_kl_divergence,
    gaussian_wasserstein_distance,
)

# --------------------------------------------------------------------------
# The reduced (k-dimensional, full-rank) problem, by the textbook formulas
# --------------------------------------------------------------------------


def reduced_kl(c1, a1, c2, a2):
    k = len(c1)
    if k == 0:
        return 0.0
    delta = c1 - c2
    trace = np.trace(np.linalg.solve(a2, a1))
    quadratic = delta @ np.linalg.solve(a2, delta)
    logdet = np.linalg.slogdet(a2)[1] - np.linalg.slogdet(a1)[1]
    return 0.5 * (trace + quadratic - k + logdet)


def reduced_bhattacharyya(c1, a1, c2, a2):
    if len(c1) == 0:
        return 0.0
    delta = c1 - c2
    average = (a1 + a2) / 2
    logdets = [np.linalg.slogdet(a)[1] for a in (average, a1, a2)]
    quadratic = delta @ np.linalg.solve(average, delta)
    return quadratic / 8 + 0.5 * (logdets[0] - 0.5 * (logdets[1] + logdets[2]))


def _symmetric_sqrt(a):
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.maximum(w, 0.0))) @ v.T


def reduced_wasserstein2(c1, a1, c2, a2):
    """|delta|^2 + tr A1 + tr A2 - 2 tr((A1^1/2 A2 A1^1/2)^1/2)."""
    if len(c1) == 0:
        return float(np.sum((c1 - c2) ** 2))
    root = _symmetric_sqrt(a1)
    middle = root @ a2 @ root
    cross = np.sqrt(np.maximum(np.linalg.eigvalsh((middle + middle.T) / 2), 0)).sum()
    spread = max(np.trace(a1) + np.trace(a2) - 2 * cross, 0.0)
    return float(np.sum((c1 - c2) ** 2) + spread)


# --------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------


def orthonormal(d, k, rng):
    """A random d x k matrix with orthonormal columns (a rotation's first k)."""
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return (q * np.sign(np.diag(r)))[:, :k]


def spd(k, log_condition, rng):
    """``V diag(logspace(0, -log_condition)) V'``, a random rotation ``V``."""
    v = orthonormal(k, k, rng)
    return (v * np.logspace(0, -log_condition, k)) @ v.T


@st.composite
def embedded_pairs(draw, max_d=6, min_codim=0):
    """Two Gaussians on one k-dim affine subspace of R^d: reduced and embedded.

    Covariances of condition up to 1e6 whose scales differ by up to 1e3 (or
    proportional ones: the same shape at another scale), means shifted along
    the subspace by up to 1e3 standard deviations, the subspace through an
    offset of up to 100.
    """
    d = draw(st.integers(1 + min_codim, max_d))
    k = draw(st.integers(0, d - min_codim))
    rng = np.random.RandomState(draw(st.integers(0, 2**32 - 1)))
    basis = orthonormal(d, k, rng)
    a1 = spd(k, draw(st.floats(0, 6)), rng)
    scale = 10 ** draw(st.floats(-3, 3))
    if draw(st.booleans()):
        a2 = scale * a1  # the same shape at another scale: one subspace, same rank
    else:
        a2 = scale * spd(k, draw(st.floats(0, 6)), rng)
    a1, a2 = (a1 + a1.T) / 2, (a2 + a2.T) / 2
    c1 = rng.normal(size=k)
    direction = rng.normal(size=k)
    length = np.sqrt(direction @ a1 @ direction)
    sds = draw(st.sampled_from([0.0, 0.1, 1.0]) | st.floats(1.0, 1e3))
    c2 = c1 + (sds * direction / length if length > 0 else 0.0)
    offset = rng.normal(size=d) * 10 ** draw(st.floats(-1, 2))
    reduced = (c1, a1, c2, a2)
    embedded = (
        offset + basis @ c1,
        basis @ a1 @ basis.T,
        offset + basis @ c2,
        basis @ a2 @ basis.T,
    )
    return reduced, embedded, basis, rng


def _check(embedded, reduced):
    """The embedded distances equal the reduced ones."""
    kl = gaussian_kl_divergence(*embedded)
    assert np.isfinite(kl)
    assert_allclose(kl, reduced_kl(*reduced), rtol=1e-6, atol=1e-9)
    bd = gaussian_bhattacharyya_distance(*embedded)
    expected_bd = reduced_bhattacharyya(*reduced)
    assert_allclose(bd, expected_bd, rtol=1e-6, atol=1e-9)
    # squared: sqrt(1 - exp(-BD)) would turn round-off of BD = 0 into 1e-8
    assert_allclose(
        gaussian_hellinger_distance(*embedded) ** 2,
        -np.expm1(-expected_bd),
        rtol=1e-6,
        atol=1e-9,
    )
    c1, a1, c2, a2 = reduced
    w2 = gaussian_wasserstein_distance(*embedded, squared=True)
    # the trace formula cancels: accurate to eps * (tr S1 + tr S2), absolutely
    floor = 1e-9 * (np.trace(a1) + np.trace(a2))
    assert_allclose(w2, reduced_wasserstein2(*reduced), rtol=1e-6, atol=floor)


@settings(max_examples=150, deadline=None)
@given(embedded_pairs())
def test_embedded_gaussians_give_the_distances_of_the_reduced_problem(case):
    reduced, embedded, _, _ = case
    _check(embedded, reduced)
    # and the other way round (KL is not symmetric)
    c1, a1, c2, a2 = reduced
    m1, s1, m2, s2 = embedded
    _check((m2, s2, m1, s1), (c2, a2, c1, a1))


@settings(max_examples=40, deadline=None)
@given(embedded_pairs(max_d=4), st.sampled_from([1e-150, 1e-100, 1e100, 1e150]))
def test_embedded_gaussians_at_extreme_scales(case, scale):
    """KL and Bhattacharyya are scale-invariant, W2 scales with the data."""
    reduced, embedded, _, _ = case
    m1, s1, m2, s2 = embedded
    scaled = (m1 * scale, s1 * scale**2, m2 * scale, s2 * scale**2)
    assert_allclose(
        gaussian_kl_divergence(*scaled), reduced_kl(*reduced), rtol=1e-6, atol=1e-9
    )
    assert_allclose(
        gaussian_bhattacharyya_distance(*scaled),
        reduced_bhattacharyya(*reduced),
        rtol=1e-6,
        atol=1e-9,
    )
    c1, a1, c2, a2 = reduced
    floor = 1e-9 * (np.trace(a1) + np.trace(a2))
    assert_allclose(
        gaussian_wasserstein_distance(*scaled, squared=True) / scale**2,
        reduced_wasserstein2(*reduced),
        rtol=1e-6,
        atol=floor,
    )


@settings(max_examples=60, deadline=None)
@given(embedded_pairs(min_codim=1), st.floats(-4, 1))
def test_a_shift_off_the_subspace_separates_the_supports(case, log_size):
    """Off the subspace by 1e-4 of (sd + |delta|) or more (and round-off of mu).

    KL and Bhattacharyya are inf (Hellinger 1): the Gaussians are mutually
    singular. W2 adds the squared shift (Pythagoras: it is orthogonal to the
    subspace and to both covariances' ranges).
    """
    reduced, embedded, basis, rng = case
    m1, s1, m2, s2 = embedded
    across = rng.normal(size=len(m1))
    across -= basis @ (basis.T @ across)
    across /= np.linalg.norm(across)
    sd = np.sqrt(max(np.max(np.diag(s1)), np.max(np.diag(s2)), 1e-300))
    size = 10**log_size * (sd + np.linalg.norm(m1 - m2)) + 1e-6 * (1 + max(abs(m2)))
    moved = m2 + size * across
    for args in ((m1, s1, moved, s2), (moved, s2, m1, s1)):
        assert gaussian_kl_divergence(*args) == np.inf
        assert gaussian_bhattacharyya_distance(*args) == np.inf
        assert gaussian_hellinger_distance(*args) == 1.0
    w2 = gaussian_wasserstein_distance(m1, s1, moved, s2, squared=True)
    expected = reduced_wasserstein2(*reduced) + size**2
    floor = 1e-9 * (np.trace(s1) + np.trace(s2)) + 1e-12 * expected
    assert_allclose(w2, expected, rtol=1e-6, atol=floor)


@settings(max_examples=40, deadline=None)
@given(embedded_pairs(min_codim=1))
def test_gaussians_on_different_subspaces_are_mutually_singular(case):
    """The second Gaussian's subspace turned by at least 1e-3 rad."""
    reduced, embedded, basis, rng = case
    m1, s1, m2, s2 = embedded
    if basis.shape[1] == 0:
        return  # a point: nothing to turn
    across = rng.normal(size=len(m1))
    across -= basis @ (basis.T @ across)
    across /= np.linalg.norm(across)
    angle = 10 ** rng.uniform(-3, 0)
    # rotate the first basis vector towards `across` (a plane rotation)
    u = basis[:, 0]
    rotation = (
        np.eye(len(m1))
        + (np.cos(angle) - 1) * (np.outer(u, u) + np.outer(across, across))
        + np.sin(angle) * (np.outer(across, u) - np.outer(u, across))
    )
    turned = rotation @ s2 @ rotation.T
    turned = (turned + turned.T) / 2
    for args in ((m1, s1, m1, turned), (m1, turned, m1, s1)):
        assert gaussian_kl_divergence(*args) == np.inf
        assert gaussian_bhattacharyya_distance(*args) == np.inf
        assert np.isfinite(gaussian_wasserstein_distance(*args))


# --------------------------------------------------------------------------
# Duplicated and collinear features through GaussianDistance
# --------------------------------------------------------------------------


@st.composite
def linear_features(draw):
    """k-dim data and an injective linear map to d > k features.

    ``"duplicate"``: some columns repeated; ``"scaled"``: repeated times a
    factor of 0.1 to 10 (one feature in two units); ``"collinear"``: a
    random d x k map. The data's covariances stay well conditioned (below
    about 1e8 after the map), so that the reduced values are known to 1e-6.
    """
    k = draw(st.integers(1, 3))
    d = draw(st.integers(k + 1, k + 3))
    kind = draw(st.sampled_from(["duplicate", "scaled", "collinear"]))
    rng = np.random.RandomState(draw(st.integers(0, 2**32 - 1)))
    if kind == "collinear":
        features = rng.normal(size=(d, k))
    else:
        picks = np.r_[np.arange(k), rng.randint(0, k, size=d - k)]
        features = np.eye(k)[rng.permutation(picks)]
        if kind == "scaled":
            features *= 10 ** rng.uniform(-1, 1, size=(d, 1))
    n = draw(st.integers(k + 10, 60))
    mixing = spd(k, draw(st.floats(0, 1)), rng)
    X = rng.normal(size=(n, k)) @ mixing + rng.normal(size=k) * 3
    direction = rng.normal(size=k)
    spread = np.cov(X, rowvar=False, ddof=0).reshape(k, k)
    direction /= np.sqrt(direction @ spread @ direction)
    sds = draw(st.sampled_from([0.0, 1.0]) | st.floats(0.1, 100.0))
    Z = rng.normal(size=(n, k)) @ mixing * 10 ** draw(st.floats(-1, 1))
    Z += X.mean(axis=0) + sds * direction
    y = np.arange(n) % draw(st.integers(1, 3))
    return X, Z, y, features


@settings(max_examples=60, deadline=None)
@given(linear_features(), st.sampled_from(["kl", "reverse_kl", "bhattacharyya"]))
def test_duplicated_and_collinear_features_give_the_reduced_distance(case, metric):
    """KL and Bhattacharyya are invariant under injective linear maps."""
    X, Z, y, features = case
    reduced = GaussianDistance(metric).fit(X)
    mapped = GaussianDistance(metric).fit(X @ features.T)
    expected = reduced.distance(Z)
    assert_allclose(mapped.distance(Z @ features.T), expected, rtol=1e-6, atol=1e-9)
    if len(np.unique(y)) > 1:
        classes = GaussianDistance(metric).fit(X, y).class_distances_
        mapped = GaussianDistance(metric).fit(X @ features.T, y).class_distances_
        assert_allclose(mapped, classes, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("metric", ["kl", "bhattacharyya", "hellinger"])
def test_classes_on_one_line(metric):
    """Twenty classes on a line through the plane: 400 finite, reduced values."""
    rng = np.random.RandomState(0)
    y = np.repeat(np.arange(20), 50)
    t = rng.normal(size=len(y)) * rng.uniform(0.5, 2, 20)[y] + rng.uniform(-3, 3, 20)[y]
    for angle in rng.uniform(0, np.pi, size=5):
        v = np.array([np.cos(angle), np.sin(angle)])
        line = GaussianDistance(metric).fit(t[:, None], y).class_distances_
        plane = GaussianDistance(metric).fit(np.outer(t, v), y).class_distances_
        assert_allclose(plane, line, rtol=1e-7, atol=1e-12)
