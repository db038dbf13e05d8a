"""Entropy normalization and the entropy-invariant softmax scale."""

import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.optimize import brentq
from scipy.special import logsumexp, softmax
from sklearn.exceptions import ConvergenceWarning

from skprob import entropy_invariant_scale, entropy_normalize
from skprob._simplex import row_entropy


def reference_entropy_normalize(p, target):
    """One row, the slow obviously-correct way: brentq on H(gamma)."""
    support = p > 0
    log_p = np.log(p[support])

    def row(gamma):
        q = np.zeros_like(p)
        q[support] = np.exp(gamma * log_p - logsumexp(gamma * log_p))
        return q

    def gap(log_gamma):
        return row_entropy(row(np.exp(log_gamma))[None])[0] - target

    log_gamma = brentq(gap, -30, 30, xtol=1e-14, rtol=1e-14)
    return row(np.exp(log_gamma))


def is_power_of(Q, P):
    """Whether each row of Q is P**gamma / sum(P**gamma) for one gamma >= 0."""
    for q, p in zip(Q, P):
        assert (q[p == 0] == 0).all()
        # compare where q is a normal double (tiny entries may underflow to 0)
        seen = q > 1e-290
        i, j = np.argmax(p), np.argmin(np.where(seen, p, np.inf))
        if p[i] == p[j]:
            continue
        gamma = np.log(q[i] / q[j]) / np.log(p[i] / p[j])
        expected = gamma * (np.log(p[seen]) - np.log(p[i]))
        assert_allclose(np.log(q[seen]) - np.log(q[i]), expected, atol=1e-8)


def dirichlet_rows(n, m, alpha, seed=0):
    """Dirichlet rows with exact zeros, 1e-300 entries and ties mixed in."""
    rng = np.random.RandomState(seed)
    P = rng.dirichlet(np.full(m, alpha), size=n)
    u = rng.uniform(size=P.shape)
    P[u < 0.05] = 0.0
    P[(u >= 0.05) & (u < 0.08)] = 1e-300
    tied = rng.uniform(size=n) < 0.2
    P[tied, 1] = P[tied, 0]
    P[P.sum(axis=1) == 0, 0] = 1.0
    return P / P.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("alpha", [0.1, 1.0])
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_entropy_normalize_matches_brentq(alpha, fraction):
    rng = np.random.RandomState(0)
    P = rng.dirichlet(np.full(6, alpha), size=40)
    target = fraction * np.log(6)
    Q, n_iter = entropy_normalize(P, target, return_n_iter=True)
    expected = np.array([reference_entropy_normalize(p, target) for p in P])
    assert_allclose(Q, expected, rtol=1e-7, atol=1e-12)
    assert_allclose(row_entropy(Q), target, atol=1e-10)
    assert n_iter.max() <= 12


@pytest.mark.parametrize("m", [10, 1000])
def test_hard_rows_reach_the_target_in_order(m):
    P = dirichlet_rows(300, m, alpha=0.05)
    for fraction in [0.1, 0.5]:
        target = fraction * np.log(m)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a few unreachable rows
            Q = entropy_normalize(P, target)
        assert np.isfinite(Q).all()
        assert_allclose(Q.sum(axis=1), 1, rtol=1e-12)
        support = np.count_nonzero(P, axis=1)
        ties = np.count_nonzero(P == P.max(axis=1, keepdims=True), axis=1)
        reachable = (target < np.log(support)) & (target > np.log(ties))
        assert reachable.mean() > 0.9
        H = row_entropy(Q)
        assert np.abs(H - target)[reachable].max() <= 1e-9
        is_power_of(Q[reachable], P[reachable])
        order = np.argsort(-P, axis=1, kind="stable")
        assert (np.diff(np.take_along_axis(Q, order, axis=1), axis=1) <= 0).all()


def test_tiny_entries_and_many_classes():
    rng = np.random.RandomState(0)
    P = rng.uniform(size=(3, 10_000)) * 10.0 ** rng.randint(-300, 0, size=(3, 10_000))
    P[:, :5] = [1e-300, 5e-324, 0.0, 0.5, 0.25]
    Q = entropy_normalize(P, [1.0, 3.0, 5.0])
    assert_allclose(row_entropy(Q), [1.0, 3.0, 5.0], atol=1e-10)
    assert (Q[:, 2] == 0).all() and np.isfinite(Q).all()
    assert (Q[:, 3] >= Q[:, 4]).all() and (Q[:, 4] >= Q[:, 0]).all()


def test_entries_one_rounding_step_apart_are_no_tie():
    """log(0.010000000000000002) - log(0.01) rounds to 0; they are not tied."""
    P = np.array([[0.01, np.nextafter(0.01, 1)], [0.3, np.nextafter(0.3, 0)]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reachable: no warning
        Q = entropy_normalize(P, 0.3)
        one_hot = entropy_normalize(P, 0.0)
    assert_allclose(row_entropy(Q), 0.3, atol=1e-10)
    assert (Q[:, 0] < Q[:, 1]).tolist() == [True, False]  # the order is kept
    assert_array_equal(one_hot, [[0.0, 1.0], [1.0, 0.0]])


def test_unreachable_rows_get_the_nearest_limit_and_one_warning():
    P = np.array(
        [
            [1.0, 0.0, 0.0, 0.0],  # one-hot: entropy 0 whatever gamma
            [0.25, 0.25, 0.25, 0.25],  # uniform: log 4 whatever gamma
            [0.5, 0.3, 0.2, 0.0],  # support 3: at most log 3
            [0.4, 0.4, 0.2, 0.0],  # two tied maxima: at least log 2
            [0.7, 0.2, 0.1, 0.0],  # reachable
        ]
    )
    with pytest.warns(UserWarning, match="^4 of 5 rows cannot reach") as record:
        Q = entropy_normalize(P, [0.5, 0.5, 1.2, 0.5, 0.5])
    assert len(record) == 1
    assert_allclose(Q[0], [1, 0, 0, 0])
    assert_allclose(Q[1], 0.25)
    assert_allclose(Q[2], [1 / 3, 1 / 3, 1 / 3, 0])
    assert_allclose(Q[3], [0.5, 0.5, 0, 0])
    assert_allclose(row_entropy(Q[4:]), 0.5, atol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # at a limit exactly: no warning
        entropy_normalize(P[:2], [0.0, np.log(4)])


def test_logits_are_temperature_scaling():
    rng = np.random.RandomState(0)
    Z = rng.normal(scale=3, size=(50, 7))
    Z[0] = [1e-300, 0, 0, -5, 2, 2, 1]  # ties and a denormal
    target = rng.uniform(0.3, 1.5, size=50)
    target[0] = 1.0  # above log 2, which the two tied maxima allow
    Q = entropy_normalize(Z, target, input="logits")
    assert_allclose(row_entropy(Q), target, atol=1e-10)
    assert_allclose(Q, entropy_normalize(softmax(Z, axis=1), target), atol=1e-9)
    # softmax(gamma z): log q is affine in z with a common slope per row
    log_q = np.log(Q)
    slope = (log_q[:, 1] - log_q[:, 3]) / (Z[:, 1] - Z[:, 3])
    assert_allclose(log_q - log_q[:, :1], slope[:, None] * (Z - Z[:, :1]), atol=1e-7)
    huge = np.array([[1e300, -1e300, 0.0]])
    assert_allclose(row_entropy(entropy_normalize(huge, 0.5, input="logits")), 0.5)


def reference_logits(z, target):
    """One row of logits: brentq on the entropy of softmax(gamma z)."""
    return reference_entropy_normalize(softmax(np.asarray(z, dtype=float)), target)


# softmax(gamma c z) = softmax(gamma z) at the solution: rows that are
# multiples of one row all have its answer
_BASE = np.array([0.0, -1.0, -2.0, -3.5, 0.5])


@pytest.mark.parametrize(
    "factor", [5e-324 / 0.5, 1e-300, 1e-250, 1e-200, 1e-20, 1.0, 1e20, 1e200, 1e300]
)
def test_logit_rows_of_any_spread_are_solved_alone(factor):
    """One row of extreme spread in a block does not move the others."""
    rng = np.random.RandomState(0)
    Z = rng.normal(scale=2, size=(5, 5))
    Z[2] = _BASE * factor  # spread 4 * factor, in the same block
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every row converges
        Q = entropy_normalize(Z, 0.8, input="logits")
        alone = [entropy_normalize(z[None], 0.8, input="logits")[0] for z in Z]
    # (to the tolerance of the solve, see the property test below)
    assert_allclose(Q, alone, rtol=1e-7, atol=1e-9)
    expected = [reference_logits(z, 0.8) for z in np.vstack([Z[:2], _BASE, Z[3:]])]
    assert_allclose(Q, expected, rtol=1e-7, atol=1e-12)


def test_logits_spanning_more_than_the_float_range_keep_their_order():
    """z - max z overflows for [1e308, -1e308, 0]; the row is 1e308 [1, -1, 0]."""
    Z = np.array([[1e308, -1e308, 0.0], [-1.7e308, 1.7e308, 1e307], [0.3, 0.2, 0.1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Q = entropy_normalize(Z, 0.5, input="logits")
    expected = [
        reference_logits([1.0, -1.0, 0.0], 0.5),
        reference_logits([-1.7, 1.7, 0.1], 0.5),
        reference_logits(Z[2], 0.5),
    ]
    assert_allclose(Q, expected, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("spread", [5e-324, 1e-300, 1e-250, 1e-200, 1e-100])
def test_logits_of_tiny_spread_converge(spread):
    z = np.array([[0.0, 1.0, 2.0, 3.0]]) * spread
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning
        Q, n_iter = entropy_normalize(z, 0.8, input="logits", return_n_iter=True)
    assert_allclose(Q[0], reference_logits([0.0, 1.0, 2.0, 3.0], 0.8), rtol=1e-7)
    assert n_iter[0] <= 12


def test_float32_and_counts():
    counts = np.array([[3, 1, 0, 6], [10, 10, 5, 1]])
    Q = entropy_normalize(counts, 0.8)
    assert Q.dtype == np.float64
    assert_allclose(Q, entropy_normalize(counts / counts.sum(1, keepdims=True), 0.8))
    Q32 = entropy_normalize(counts.astype(np.float32), 0.8)
    assert Q32.dtype == np.float32
    assert_allclose(Q32, Q, rtol=1e-6)


def test_convergence_warning_and_iteration_counts():
    P = dirichlet_rows(20, 5, alpha=1.0)
    with pytest.warns(ConvergenceWarning, match="rows ended more than tol"):
        entropy_normalize(P, 0.7, max_iter=1)
    _, n_iter = entropy_normalize(np.eye(3), 0.0, return_n_iter=True)
    assert (n_iter == 0).all()  # one-hot rows at their limit need no iteration


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"proba": [[0.5, -0.5]]}, "negative .*row 0"),
        ({"proba": [[0.5, 0.5], [0, 0]]}, "Row 1 .* all zeros"),
        ({"proba": [[0.5, np.inf]]}, "NaN or infinity .*row 0"),
        ({"proba": [[0.5, np.nan]], "input": "logits"}, "NaN or infinity .*row 0"),
        ({"target": [0.5, 0.5, 0.5]}, "one per row"),
        ({"target": -1.0}, "non-negative"),
        ({"input": "scores"}, "'input' parameter"),
        ({"tol": 0.0}, "'tol' parameter"),
        ({"max_iter": np.nan}, "'max_iter' parameter"),
        ({"max_iter": np.inf}, "'max_iter' parameter"),
    ],
)
def test_entropy_normalize_rejects_bad_input(kwargs, match):
    args = {"proba": [[0.5, 0.5], [0.9, 0.1]], "target": 0.5, **kwargs}
    with pytest.raises(ValueError, match=match):
        entropy_normalize(args.pop("proba"), args.pop("target"), **args)


@st.composite
def proba_rows(draw):
    n = draw(st.integers(1, 6))
    m = draw(st.integers(2, 12))
    exponents = st.sampled_from([0, 0, 0, -5, -30, -300])
    entry = st.one_of(
        st.just(0.0),
        st.builds(lambda v, e: v * 10.0**e, st.floats(0.01, 1.0), exponents),
    )
    P = np.array(
        draw(st.lists(st.lists(entry, min_size=m, max_size=m), min_size=n, max_size=n))
    )
    P[:, 0] += draw(st.floats(0.01, 1.0))  # no all-zero row
    if draw(st.booleans()):
        P[:, 1] = P[:, 0]  # ties at the maximum
    fraction = draw(st.floats(0.0, 1.0))
    return P, fraction * np.log(m)


@settings(max_examples=150, deadline=None)
@given(proba_rows())
def test_entropy_normalize_properties(case):
    P, target = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        Q = entropy_normalize(P, target)
    assert np.isfinite(Q).all()
    assert_allclose(Q.sum(axis=1), 1, rtol=1e-12)
    assert_array_equal(Q[P == 0], 0)  # zeros stay zero
    order = np.argsort(-P, axis=1, kind="stable")
    assert (np.diff(np.take_along_axis(Q, order, axis=1), axis=1) <= 0).all()
    support = np.count_nonzero(P, axis=1)
    ties = np.count_nonzero(P == P.max(axis=1, keepdims=True), axis=1)
    H = row_entropy(Q)
    low, high = np.log(ties), np.log(support)
    assert (np.abs(H - np.clip(target, low, high)) <= 1e-9).all()


@st.composite
def logit_rows(draw):
    n = draw(st.integers(1, 5))
    m = draw(st.integers(2, 10))
    # a grid of eighths: distinct logits stay distinct after softmax, and
    # exact ties happen
    value = st.integers(-240, 240).map(lambda v: v / 8)
    Z = np.array(
        draw(st.lists(st.lists(value, min_size=m, max_size=m), min_size=n, max_size=n))
    )
    return Z, draw(st.floats(0.0, 1.0)) * np.log(m)


@settings(max_examples=60, deadline=None)
@given(logit_rows(), st.floats(-1e3, 1e3))
def test_entropy_normalize_logits_properties(case, shift):
    """Temperature scaling: shift-invariant, order-keeping, on target."""
    Z, target = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        Q = entropy_normalize(Z, target, input="logits")
        shifted = entropy_normalize(Z + shift, target, input="logits")
        via_proba = entropy_normalize(softmax(Z, axis=1), target)
    assert np.isfinite(Q).all() and (Q >= 0).all()
    assert_allclose(Q.sum(axis=1), 1, rtol=1e-12)
    # adding a constant to a row of logits changes nothing
    assert_allclose(shifted, Q, rtol=1e-7, atol=1e-12)
    # softmax(gamma z) = p**gamma / sum(p**gamma) for p = softmax(z)
    assert_allclose(via_proba, Q, rtol=1e-6, atol=1e-12)
    order = np.argsort(-Z, axis=1, kind="stable")
    assert (np.diff(np.take_along_axis(Q, order, axis=1), axis=1) <= 1e-15).all()
    ties = np.count_nonzero(Z == Z.max(axis=1, keepdims=True), axis=1)
    H = row_entropy(Q)
    reachable = (target < np.log(Z.shape[1])) & (target > np.log(ties))
    assert (np.abs(H - target)[reachable] <= 1e-9).all()


@st.composite
def wild_logit_rows(draw):
    """Rows of logits on the grid of eighths, each times its own 10 ** e: in one
    block, spreads from 1e-250 to 1e300."""
    Z, target = draw(logit_rows())
    exponents = draw(st.lists(st.integers(-250, 298), min_size=len(Z), max_size=len(Z)))
    return Z, np.array(exponents), target


@settings(max_examples=60, deadline=None)
@given(wild_logit_rows())
def test_entropy_normalize_logits_rows_of_wild_spreads(case):
    """Each row as if alone, and as its moderate multiple (the same softmax
    after the solve)."""
    Z, exponents, target = case
    wild = Z * 10.0 ** exponents[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unreachable rows
        Q = entropy_normalize(wild, target, input="logits")
        alone = [entropy_normalize(z[None], target, input="logits")[0] for z in wild]
        moderate = entropy_normalize(Z, target, input="logits")
    assert np.isfinite(Q).all()
    # each solved to tol: rounding (a matrix-vector product over a block
    # rounds differently from one over one row) may end a row one step
    # earlier or later, within tol of the target; near a limit (targets within
    # 1e-9 of log t) that leaves tiny entries free by far more than 1e-12
    assert_allclose(Q, alone, rtol=1e-7, atol=1e-9)
    assert_allclose(Q, moderate, rtol=1e-7, atol=1e-9)
    ties = np.count_nonzero(Z == Z.max(axis=1, keepdims=True), axis=1)
    H = row_entropy(Q)
    reachable = (target < np.log(Z.shape[1])) & (target > np.log(ties))
    assert (np.abs(H - target)[reachable] <= 1e-9).all()


@settings(max_examples=60, deadline=None)
@given(proba_rows(), st.integers(-60, 60))
def test_entropy_normalize_uses_rows_up_to_scale(case, k):
    """Counts, percentages, any positive multiple: the same distributions."""
    P, target = case
    assume(P[P > 0].min() * 10.0**k > 1e-290)  # no entry pushed into underflow
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        Q = entropy_normalize(P, target)
        scaled = entropy_normalize(P * 10.0**k, target)
    assert_allclose(scaled, Q, rtol=1e-7, atol=1e-300)


def test_entropy_invariant_scale_formula():
    assert entropy_invariant_scale(512, 64) == pytest.approx(1 / 8, rel=1e-15)
    n = np.array([2, 100, 10_000])
    assert_allclose(
        entropy_invariant_scale(n, 16, n_ref=100), np.log(n) / (np.log(100) * 4)
    )
    with pytest.raises(ValueError, match="at least 1"):
        entropy_invariant_scale(0, 4)


@pytest.mark.parametrize(
    "args", [(np.nan, 4), (np.inf, 4), ([2, np.inf], 4), (10, np.inf)]
)
def test_entropy_invariant_scale_needs_finite_numbers(args):
    with pytest.raises(ValueError, match="finite"):
        entropy_invariant_scale(*args)


@pytest.mark.parametrize("n_ref", [np.inf, np.nan, 1, "512", [512]])
def test_entropy_invariant_scale_rejects_bad_n_ref(n_ref):
    with pytest.raises(ValueError, match="'n_ref' parameter"):
        entropy_invariant_scale(10, 4, n_ref=n_ref)


def mean_attention_entropy(n, d, scale, rng, trials=10):
    """Mean entropy of softmax(scale * q.k_j) over n keys, one of them q itself.

    Query and keys are random directions of norm sqrt(d), the typical norm of
    vectors with unit-variance entries; one key matches the query.
    """
    out = []
    for _ in range(trials):
        V = rng.normal(size=(n + 1, d))
        V *= np.sqrt(d) / np.linalg.norm(V, axis=1, keepdims=True)
        q, K = V[0], V[1:]
        K[0] = q
        out.append(row_entropy(softmax(scale * (K @ q))[None])[0])
    return np.mean(out)


def test_entropy_invariant_scale_keeps_attention_entropy_flat_in_n():
    rng = np.random.RandomState(0)
    d = 64
    sizes = [64, 512, 4096, 8192]
    fixed = [mean_attention_entropy(n, d, 1 / np.sqrt(d), rng) for n in sizes]
    invariant = [
        mean_attention_entropy(n, d, entropy_invariant_scale(n, d), rng) for n in sizes
    ]
    assert np.ptp(fixed) > 5.0  # 1/sqrt(d): from a peaked to a nearly flat softmax
    assert np.ptp(invariant) < 0.1 * np.ptp(fixed)
