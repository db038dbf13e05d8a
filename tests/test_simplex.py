"""Numeric core on probability rows."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

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


def test_normalize_rescales_counts():
    counts = np.array([[1.0, 3.0], [0.25, 0.75]])
    assert_allclose(check_proba_rows(counts, normalize=True), [[0.25, 0.75]] * 2)
