"""Mergeable per-class statistics, against slow references."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.covariance import oas

from skprob._stats import (
    class_statistics,
    merge_statistics,
    oas_shrinkage,
)


def reference_statistics(X, y, classes, w):
    """Per-class weights, means and pooled scatter, by the textbook loops."""
    weight = np.array([w[y == c].sum() for c in classes])
    mean = np.zeros((len(classes), X.shape[1]))
    scatter = np.zeros((X.shape[1], X.shape[1]))
    for k, c in enumerate(classes):
        rows = y == c
        if weight[k] == 0:
            continue
        mean[k] = (w[rows, None] * X[rows]).sum(0) / weight[k]
        centred = X[rows] - mean[k]
        scatter += (w[rows, None] * centred).T @ centred
    return weight, mean, scatter


def _moments(stats):
    return stats.weight, stats.mean, stats.scatter


def make_data(seed=0, n=300, d=6, n_classes=4, offset=0.0):
    rng = np.random.RandomState(seed)
    y = rng.randint(n_classes, size=n)
    X = rng.normal(size=(n, d)) + y[:, None] * 0.5 + offset
    w = rng.uniform(0.1, 3.0, size=n)
    return X, y, w


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_statistics_match_reference(offset):
    X, y, w = make_data(offset=offset)
    stats = class_statistics(X, y, sample_weight=w)
    weight, mean, scatter = stats.weight, stats.mean, stats.scatter
    ref = reference_statistics(X, y, np.unique(y), w)
    assert_allclose(weight, ref[0], rtol=1e-12)
    assert_allclose(mean, ref[1], rtol=1e-12)
    # the reference centres in float64 too; both are exact to ~eps * offset
    assert_allclose(scatter, ref[2], rtol=1e-9, atol=1e-12 * max(offset, 1) ** 2)


def test_large_offset_keeps_precision():
    """A naive X'X - n mu mu' would lose every digit at an offset of 1e8."""
    X, y, _ = make_data(d=3)
    centred = class_statistics(X, y).scatter
    shifted = class_statistics(X + 1e8, y).scatter
    assert_allclose(shifted, centred, rtol=1e-6)
    naive = (X + 1e8).T @ (X + 1e8) - sum(
        np.sum(y == c) * np.outer((X + 1e8)[y == c].mean(0), (X + 1e8)[y == c].mean(0))
        for c in np.unique(y)
    )
    assert not np.allclose(naive, centred, rtol=1e-2)  # why the merge matters


def test_blocks_inside_one_chunk(monkeypatch):
    """Blocking inside class_statistics is invisible in the result."""
    import skprob._stats as stats_module

    X, y, w = make_data(n=1000)
    whole = class_statistics(X, y, sample_weight=w)
    monkeypatch.setattr(stats_module, "_BLOCK_VALUES", 7 * X.shape[1])
    monkeypatch.setattr(stats_module, "_MAX_BLOCK_VALUES", 5 * X.shape[1])
    monkeypatch.setattr(stats_module, "_BLOCK_ROWS", 7)
    blocked = class_statistics(X, y, sample_weight=w)
    assert_allclose(blocked.weight, whole.weight, rtol=1e-12)
    assert_allclose(blocked.mean, whole.mean, rtol=1e-11, atol=1e-13)
    assert_allclose(blocked.scatter, whole.scatter, rtol=1e-11, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 120), max_size=6),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_merge_equals_whole_for_any_chunking(cuts, seed, data):
    X, y, w = make_data(seed=seed, n=120, d=4)
    whole = class_statistics(X, y, sample_weight=w)
    bounds = [0, *sorted(cuts), len(y)]
    chunks = [
        class_statistics(X[a:b], y[a:b], sample_weight=w[a:b])
        for a, b in zip(bounds[:-1], bounds[1:])
        if b > a
    ]
    # merging is associative and order-independent: merge in any order and grouping
    chunks = data.draw(st.permutations(chunks))
    split = data.draw(st.integers(1, len(chunks)))
    left = merge_statistics(*chunks[:split])
    merged = merge_statistics(left, *chunks[split:]) if split < len(chunks) else left
    assert_array_equal(merged.classes, whole.classes)
    assert_allclose(merged.weight, whole.weight, rtol=1e-12)
    assert_allclose(merged.mean, whole.mean, rtol=1e-10, atol=1e-12)
    assert_allclose(merged.scatter, whole.scatter, rtol=1e-10, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 120), max_size=5),
    seed=st.integers(0, 2**16),
    offset=st.sampled_from([0.0, 1e6]),
)
def test_diagonal_statistics_are_the_diagonal_of_the_scatter(cuts, seed, offset):
    """``diagonal=True`` keeps exactly the diagonal, through any merge."""
    X, y, w = make_data(seed=seed, n=120, d=5, offset=offset)
    full = class_statistics(X, y, sample_weight=w)
    bounds = [0, *sorted(cuts), len(y)]
    chunks = [
        class_statistics(X[a:b], y[a:b], sample_weight=w[a:b], diagonal=True)
        for a, b in zip(bounds[:-1], bounds[1:])
        if b > a
    ]
    merged = merge_statistics(*chunks)
    assert merged.diagonal and merged.scatter.shape == (5,)
    assert_allclose(merged.weight, full.weight, rtol=1e-12)
    assert_allclose(merged.mean, full.mean, rtol=1e-10, atol=1e-12)
    scale = max(offset, 1.0) ** 2 * 1e-12
    assert_allclose(merged.scatter, np.diagonal(full.scatter), rtol=1e-9, atol=scale)
    with pytest.raises(ValueError, match="full with diagonal"):
        merge_statistics(merged, full)


@st.composite
def merge_trees(draw, leaves):
    """A random binary tree over ``leaves`` (in a random order), as nested pairs."""
    leaves = draw(st.permutations(leaves))

    def build(items):
        if len(items) == 1:
            return items[0]
        cut = draw(st.integers(1, len(items) - 1))
        return (build(items[:cut]), build(items[cut:]))

    return build(list(leaves))


def merge_tree(tree):
    if isinstance(tree, tuple):
        return merge_statistics(merge_tree(tree[0]), merge_tree(tree[1]))
    return tree


@settings(max_examples=30, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 90), min_size=1, max_size=5),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_merge_in_any_tree_of_pairs_equals_the_whole(cuts, seed, data):
    """(a + b) + c == a + (b + c) == ..., for every bracketing and order."""
    X, y, w = make_data(seed=seed, n=90, d=3, n_classes=3)
    whole = class_statistics(X, y, sample_weight=w)
    bounds = [0, *sorted(set(cuts) - {0, 90}), 90]
    chunks = [
        class_statistics(X[a:b], y[a:b], sample_weight=w[a:b])
        for a, b in zip(bounds[:-1], bounds[1:])
    ]
    merged = merge_tree(data.draw(merge_trees(chunks)))
    assert_array_equal(merged.classes, whole.classes)
    assert_allclose(merged.weight, whole.weight, rtol=1e-12)
    assert_allclose(merged.mean, whole.mean, rtol=1e-10, atol=1e-12)
    assert_allclose(merged.scatter, whole.scatter, rtol=1e-10, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(k=st.integers(-500, 500), seed=st.integers(0, 2**16))
def test_statistics_scale_exactly_with_a_power_of_two(k, seed):
    """X * 2**k: means times 2**k and scatter times 4**k, bit for bit.

    Powers of two commute with rounding, so the statistics of rescaled data
    carry no new error, however large or small the scale (as long as the
    scatter itself is a normal double).
    """
    X, y, w = make_data(seed=seed, n=50, d=3)
    base = class_statistics(X, y, sample_weight=w)
    scaled = class_statistics(np.ldexp(X, k), y, sample_weight=w)
    assert_array_equal(scaled.weight, base.weight)
    assert_array_equal(scaled.mean, np.ldexp(base.mean, k))
    assert_array_equal(scaled.scatter, np.ldexp(base.scatter, 2 * k))


@pytest.mark.parametrize("k", [-520, -540, -600])
def test_underflowing_sums_of_squares_are_a_clear_error(k):
    """Squares below 2.2e-308 keep few digits: a model from them is noise."""
    X, y, _ = make_data(n=3000, d=3)
    with pytest.raises(ValueError, match="sums of squares of X underflow"):
        class_statistics(np.ldexp(X, k), y)
    class_statistics(np.ldexp(X, -500), y)  # 1e-150: still exact (see above)


def test_overflowing_sums_of_squares_are_a_clear_error():
    X, y, _ = make_data(n=3000, d=3)
    with pytest.raises(ValueError, match="sums of squares of X overflow"):
        class_statistics(np.ldexp(X, 515), y)
    # each half fits, their merge does not
    largest = max(np.diagonal(class_statistics(X[p::2], y[p::2]).scatter).max()
                  for p in (0, 1))  # fmt: skip
    scale = np.sqrt(1.2e308 / largest)
    halves = [class_statistics(X[p::2] * scale, y[p::2]) for p in (0, 1)]
    with pytest.raises(ValueError, match="overflow"):
        merge_statistics(*halves)


def test_merge_aligns_missing_classes():
    X, y, _ = make_data()
    first = class_statistics(X[y < 2], y[y < 2])
    second = class_statistics(X[y >= 2], y[y >= 2])
    merged = merge_statistics(second, first)
    whole = class_statistics(X, y)
    assert_array_equal(merged.classes, [0, 1, 2, 3])
    for a, b in zip(_moments(merged), _moments(whole)):
        assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_declared_classes_without_rows_have_zero_weight():
    X, y, _ = make_data()
    stats = class_statistics(X[y != 2], y[y != 2], classes=np.arange(5))
    assert_array_equal(stats.weight[[2, 4]], 0.0)


def test_zero_weights_equal_dropping_rows():
    X, y, w = make_data()
    w[::3] = 0.0
    weighted = class_statistics(X, y, sample_weight=w)
    dropped = class_statistics(X[w > 0], y[w > 0], sample_weight=w[w > 0])
    for a, b in zip(_moments(weighted), _moments(dropped)):
        assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_integer_weights_equal_repeated_rows():
    X, y, _ = make_data()
    repeats = np.random.RandomState(1).randint(1, 4, size=len(y))
    weighted = class_statistics(X, y, sample_weight=repeats.astype(float))
    repeated = class_statistics(np.repeat(X, repeats, 0), np.repeat(y, repeats))
    for a, b in zip(_moments(weighted), _moments(repeated)):
        assert_allclose(a, b, rtol=1e-11, atol=1e-11)
    assert_allclose(weighted.scatter, repeated.scatter, rtol=1e-11, atol=1e-11)


def test_oas_matches_scikit_learn():
    X, _, _ = make_data(n=40, d=10)
    expected = oas(X)[1]
    cov = np.cov(X, rowvar=False, bias=True)
    assert_allclose(oas_shrinkage(cov, len(X)), expected, rtol=1e-12)


@pytest.mark.parametrize("factor", [1e300, 1e-300])
def test_oas_does_not_depend_on_the_scale(factor):
    """Squares of a 1e300 covariance overflow, those of 1e-300 underflow."""
    X, _, _ = make_data(n=40, d=10)
    cov = np.cov(X, rowvar=False, bias=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or underflow warning either
        scaled = oas_shrinkage(cov * factor, len(X))
    assert_allclose(scaled, oas_shrinkage(cov, len(X)), rtol=1e-12)
