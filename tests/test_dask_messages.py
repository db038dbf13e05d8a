"""Error messages on Dask input: which block, which row, and what to do.

A Dask block is validated on its own; a row number in its message is then
counted from the start of X, as in memory, and the block is named. Run with the
synchronous scheduler: the messages are the same on a cluster
(tests/test_dask.py checks that errors reach the caller there).
"""

import numpy as np
import pandas as pd
import pytest

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
dask = pytest.importorskip("dask")

from skprob import (  # noqa: E402
    AnalyticLogisticRegression,
    AnalyticSoftmaxClassifier,
    EntropyNormalizer,
    PerturbMaxTransformer,
)


@pytest.fixture(autouse=True)
def synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def proba_rows(n=200, m=4, seed=0):
    return np.random.RandomState(seed).dirichlet(np.ones(m), size=n)


@pytest.mark.parametrize(
    "row, edit, message",
    [
        (75, lambda r: r.__setitem__(2, -0.1), r"negative values \(first in row 75"),
        (120, lambda r: r.__setitem__(slice(None), 0.0), r"Row 120 of X is all zeros"),
    ],
)
def test_a_bad_row_in_a_later_block_is_named_with_its_block(row, edit, message):
    P = proba_rows()
    bad = P.copy()
    edit(bad[row])
    model = EntropyNormalizer().fit(P)
    start = row // 50 * 50
    lazy = model.transform(da.from_array(bad, chunks=(50, 4)))
    block = rf"\[in the Dask block of rows {start} to {start + 49} of X\]"
    # the row is counted from the start of X, as in memory
    with pytest.raises(ValueError, match=f"{message}.*{block}"):
        lazy.compute()
    with pytest.raises(ValueError, match=message):
        model.transform(bad)


def test_nan_in_a_block_names_the_block():
    P = proba_rows()
    bad = P.copy()
    bad[130, 1] = np.nan
    for model in [EntropyNormalizer(), PerturbMaxTransformer("normal")]:
        lazy = model.fit(P).transform(da.from_array(bad, chunks=(50, 4)))
        with pytest.raises(ValueError, match=r"NaN.*Dask block of rows 100 to 149"):
            lazy.compute()


def test_blocks_of_unknown_size_are_named_by_their_index():
    """A Dask DataFrame's partitions have unknown lengths until computed."""
    bad = proba_rows()
    bad[120] = 0.0
    frame = dd.from_pandas(pd.DataFrame(bad), npartitions=4)
    lazy = EntropyNormalizer().fit(proba_rows()).transform(frame)
    with pytest.raises(
        ValueError,
        match=r"Row 20 of X is all zeros.*\[in Dask row block 2 of X, whose size "
        r"is unknown: a row number here counts from the block's first row\]",
    ):
        lazy.compute()


def classification_data(n=200, seed=0):
    rng = np.random.RandomState(seed)
    y = rng.randint(3, size=n)
    return rng.normal(size=(n, 3)) + y[:, None], y


@pytest.mark.parametrize(
    "Classifier", [AnalyticSoftmaxClassifier, AnalyticLogisticRegression]
)
@pytest.mark.parametrize("unknown", ["X", "y", "both"])
def test_unknown_chunk_sizes_are_a_clear_error(Classifier, unknown):
    """X from DataFrame.to_dask_array() (row chunks of unknown size) and a Dask
    array y cannot be matched row by row; the message says why and what to do."""
    X, y = classification_data()
    frame_X = dd.from_pandas(pd.DataFrame(X), npartitions=4).to_dask_array()
    frame_y = dd.from_pandas(pd.Series(y), npartitions=4).to_dask_array()
    dX = frame_X if unknown in ("X", "both") else da.from_array(X, chunks=(50, 3))
    dy = frame_y if unknown in ("y", "both") else da.from_array(y, chunks=50)
    with pytest.raises(
        ValueError,
        match=r"row chunks of X or y have unknown sizes.*compute_chunk_sizes\(\)",
    ):
        Classifier().fit(dX, dy)
    # the remedy the message names works
    fitted = Classifier().fit(dX.compute_chunk_sizes(), dy.compute_chunk_sizes())
    expected = Classifier().fit(X, y)
    np.testing.assert_allclose(fitted.coef_, expected.coef_, rtol=1e-10)


def test_unknown_chunk_sizes_of_sample_weight_are_named():
    X, y = classification_data()
    weight = np.random.RandomState(1).uniform(0.5, 2, size=len(y))
    frame_weight = dd.from_pandas(pd.Series(weight), npartitions=4).to_dask_array()
    with pytest.raises(ValueError, match=r"X or sample_weight have unknown sizes"):
        AnalyticSoftmaxClassifier().fit(
            da.from_array(X, chunks=(50, 3)),
            da.from_array(y, chunks=50),
            sample_weight=frame_weight,
        )
