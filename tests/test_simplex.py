"""What rows of probabilities share: validation, entropy, top-k uncertainty."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import sparse
from test_can import literal_uncertainty, random_rows

from skprob import (
    can_adjust,
    entropy_invariant_scale,
    entropy_normalize,
    perturb_max_proba,
    topk_uncertainty,
)
from skprob._simplex import check_proba_rows, row_entropy


def test_row_entropy_matches_the_definition():
    P = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    expected = [
        np.log(2),
        0.0,
        -(0.2 * np.log(0.2) + 0.3 * np.log(0.3) + 0.5 * np.log(0.5)),
    ]
    assert_allclose(row_entropy(P), expected, rtol=1e-14)


@pytest.mark.parametrize(
    "proba, match",
    [
        (np.array([0.5, 0.5]), "2-D"),
        (np.array([[0.5, np.nan]]), "NaN or infinity .*row 0"),
        (np.array([[0.5, 0.5], [1.5, -0.5]]), "negative .*row 1"),
        (np.array([[0.5, 0.5], [0.0, 0.0]]), "Row 1 .* all zeros"),
        (np.array([[0.5, 0.6]]), "sum to 1; row 0"),
    ],
)
def test_bad_rows_are_named(proba, match):
    with pytest.raises(ValueError, match=match):
        check_proba_rows(proba)


_ROWS = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.4, 0.3, 0.3]])


@pytest.mark.parametrize(
    "call, P",
    [
        (check_proba_rows, _ROWS),
        (lambda P: entropy_normalize(P, 0.5), _ROWS),
        (lambda P: entropy_normalize(P, 0.5, input="logits"), _ROWS),
        (lambda P: perturb_max_proba(P, "normal"), _ROWS),
        (lambda P: can_adjust(P, [[0.9, 0.05, 0.05]], [1, 1, 1]), _ROWS),
        (lambda P: entropy_invariant_scale(P, 64), 1 + 100 * _ROWS),
    ],
    ids=["check_proba_rows", "proba", "logits", "perturb_max", "can", "scale"],
)
def test_numbers_as_strings_or_objects_and_complex_numbers(call, P):
    """The functions accept what the estimators' validation accepts."""
    expected = call(P)
    # numbers held as strings or Python objects are converted, as by check_array
    assert_array_equal(call(P.astype(str)), expected)
    assert_array_equal(call(P.astype(object)), expected)
    with pytest.raises(ValueError, match="must hold real numbers; got complex"):
        call(P.astype(np.complex128))  # no silently dropped imaginary part
    with pytest.raises(ValueError, match="not all numbers.*'a'"):
        call(np.array([["a", "b", "c"]]))


_REFERENCE = np.array([[0.9, 0.05, 0.05]])


def _first_row(S):
    """The first row of a sparse matrix, of its kind (scipy < 1.11 cannot
    slice a coo_array)."""
    return type(S)(S.toarray()[:1])


@pytest.mark.parametrize(
    "sparse_kind", [sparse.csr_matrix, sparse.csr_array, sparse.coo_array]
)
@pytest.mark.parametrize(
    "call, name",
    [
        (lambda S: check_proba_rows(S), "proba"),
        (lambda S: topk_uncertainty(S), "proba"),
        (lambda S: entropy_normalize(S, 0.5), "proba"),
        (lambda S: entropy_normalize(S, 0.5, input="logits"), "proba"),
        (lambda S: entropy_normalize(_ROWS, _first_row(S)), "target"),
        (lambda S: perturb_max_proba(S), "scores"),
        (lambda S: perturb_max_proba(S, "normal"), "scores"),
        (lambda S: can_adjust(S, _REFERENCE, [1, 1, 1]), "proba"),
        (lambda S: can_adjust(_ROWS, S, [1, 1, 1]), "reference"),
        (lambda S: can_adjust(_ROWS, _REFERENCE, _first_row(S)), "prior"),
        (
            lambda S: can_adjust(
                _ROWS, _ROWS, [1, 1, 1], reference_weight=_first_row(S)
            ),
            "reference_weight",
        ),
        (lambda S: entropy_invariant_scale(100 * S, 64), "n"),
        (lambda S: entropy_invariant_scale(10, 100 * S), "d"),
    ],
    ids=[
        "check_proba_rows", "topk", "proba", "logits", "target", "gumbel",
        "normal", "can proba", "can reference", "can prior", "can weight",
        "scale n", "scale d",
    ],
)  # fmt: skip
def test_sparse_input_is_refused_by_name(call, name, sparse_kind):
    """As the estimators do: sparse input is not supported, pass a dense array."""
    S = sparse_kind(_ROWS)
    with pytest.raises(
        ValueError,
        match=rf"^{name} is a scipy.sparse matrix; sparse input is not supported",
    ):
        call(S)


def test_normalize_rescales_counts():
    counts = np.array([[1.0, 3.0], [0.25, 0.75]])
    assert_allclose(check_proba_rows(counts, normalize=True), [[0.25, 0.75]] * 2)


# ---------------------------------------------------------------------------
# topk_uncertainty
# ---------------------------------------------------------------------------


def test_topk_uncertainty_hand_values():
    proba = np.array([[0.5, 0.3, 0.2, 0.0], [0.1, 0.6, 0.1, 0.2]])
    h3 = -(0.5 * np.log(0.5) + 0.3 * np.log(0.3) + 0.2 * np.log(0.2))
    top = np.array([0.6, 0.2, 0.1]) / 0.9
    h3b = -np.sum(top * np.log(top))
    assert_allclose(topk_uncertainty(proba), [h3 / np.log(3), h3b / np.log(3)])
    # top 2 renormalised: 0.5/0.8, 0.3/0.8
    p = np.array([0.625, 0.375])
    assert_allclose(
        topk_uncertainty(proba[:1], top_k=2), [-(p @ np.log(p)) / np.log(2)]
    )
    # "paper": the same terms, not renormalised, over log(n_classes)
    assert_allclose(topk_uncertainty(proba[:1], kind="paper"), [h3 / np.log(4)])


def test_topk_uncertainty_caps_k_and_stays_in_unit_interval():
    rng = np.random.RandomState(0)
    proba = random_rows(rng, 50, 4, 0.5)
    assert_allclose(topk_uncertainty(proba, top_k=10), topk_uncertainty(proba, top_k=4))
    expected = [literal_uncertainty(row, 3) for row in proba]
    assert_allclose(topk_uncertainty(proba), expected, rtol=1e-12)
    assert_allclose(topk_uncertainty([[0.25] * 4], top_k=4), [1.0])
    assert_array_equal(topk_uncertainty(np.eye(4)), np.zeros(4))
    for kind in ("renormalized", "paper"):
        u = topk_uncertainty(proba, kind=kind)
        assert np.all((u >= 0) & (u <= 1))
    # one class, or one probability kept: nothing to be uncertain about
    assert_array_equal(topk_uncertainty([[1.0], [1.0]]), [0.0, 0.0])
    assert_array_equal(topk_uncertainty(proba, top_k=1), np.zeros(50))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(proba=[[0.5, 0.6]]), "sum to 1"),
        (dict(proba=[[0.5, 0.5]], top_k=0), "top_k"),
        (dict(proba=[[0.5, 0.5]], kind="full"), "kind"),
    ],
)
def test_topk_uncertainty_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        topk_uncertainty(**kwargs)
