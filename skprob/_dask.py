"""Optional Dask support: statistics per chunk with a tree reduction, and lazy
row-wise prediction.

Nothing here imports Dask at module import time: a Dask collection can only
reach these functions if the user already imported Dask.
"""

import sys
from functools import partial

import numpy as np
from sklearn.utils.validation import _check_n_features, check_array

__all__ = [
    "is_dask_collection",
    "check_dask_features",
    "chunk_triples",
    "tree_reduce",
    "map_row_blocks",
]

# Chunks merged per node of the reduction tree.
_SPLIT_EVERY = 8


def is_dask_collection(obj):
    """True for a Dask array, DataFrame or Series (without importing Dask)."""
    dask = sys.modules.get("dask")
    return dask is not None and dask.is_dask_collection(obj)


def _is_frame(X):
    """A Dask DataFrame or Series (partitioned by index divisions)."""
    return hasattr(X, "divisions")


def _column_names(X):
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    names = np.asarray(list(columns), dtype=object)
    if len(names) == 0 or not all(isinstance(name, str) for name in names):
        return None
    return names


def check_dask_features(estimator, X, *, reset):
    """Set or check ``n_features_in_`` and ``feature_names_in_`` for Dask input.

    Only metadata is read; nothing is computed.
    """
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2-D Dask array or a Dask DataFrame; got {X.ndim} dimensions."
        )
    _check_n_features(estimator, X, reset=reset)
    names = _column_names(X)
    if reset:
        if names is None:
            if hasattr(estimator, "feature_names_in_"):
                del estimator.feature_names_in_
        else:
            estimator.feature_names_in_ = names
        return
    fitted = getattr(estimator, "feature_names_in_", None)
    if fitted is not None and names is not None and not np.array_equal(fitted, names):
        raise ValueError(
            "The feature names should match those that were passed during fit: "
            f"expected {list(fitted)}, got {list(names)}."
        )


def float_dtype(X):
    """float32 if every column of ``X`` is float32, else float64."""
    dtypes = getattr(X, "dtypes", None)
    dtypes = [X.dtype] if dtypes is None else list(dtypes)
    return np.float32 if all(d == np.float32 for d in dtypes) else np.float64


def _as_array_blocks(X):
    """Row blocks of a Dask array (one column chunk) or a Dask DataFrame."""
    if _is_frame(X):
        return list(X.to_delayed()), None
    X = X.rechunk({1: -1})
    return list(X.to_delayed()[:, 0]), X.chunks[0]


def _aligned_blocks(values, X, row_chunks, name):
    """Delayed blocks of ``y`` or ``sample_weight`` aligned with the rows of X."""
    import dask.array as da

    if is_dask_collection(values):
        if row_chunks is None:  # X is a DataFrame: values must be partitioned alike
            if not _is_frame(values) or values.npartitions != X.npartitions:
                raise ValueError(
                    f"{name} must be a Dask Series (or DataFrame column) with the "
                    f"same partitions as X: X has {X.npartitions} partitions."
                )
            if (
                X.known_divisions
                and values.known_divisions
                and tuple(X.divisions) != tuple(values.divisions)
            ):
                raise ValueError(f"The partitions of {name} and X do not line up.")
            return list(values.to_delayed())
        if _is_frame(values):  # a Dask Series with a Dask array X
            values = values.to_dask_array(lengths=True)
        if values.shape[0] != sum(row_chunks):
            raise ValueError(
                f"{name} has {values.shape[0]} rows but X has {sum(row_chunks)}."
            )
        return list(values.rechunk((row_chunks,)).to_delayed())
    values = np.asarray(values)
    if row_chunks is None:
        raise ValueError(f"With a Dask DataFrame X, {name} must be a Dask Series.")
    if len(values) != sum(row_chunks):
        raise ValueError(f"{name} has {len(values)} rows but X has {sum(row_chunks)}.")
    return list(da.from_array(values, chunks=(row_chunks,)).to_delayed())


def chunk_triples(X, y, sample_weight=None):
    """Aligned delayed ``(X_block, y_block, weight_block)`` triples.

    ``X`` is a Dask array (rechunked to one column chunk) or a Dask DataFrame;
    ``y`` and ``sample_weight`` are Dask collections partitioned like ``X`` or,
    for a Dask array ``X``, in-memory arrays.
    """
    blocks, row_chunks = _as_array_blocks(X)
    labels = _aligned_blocks(y, X, row_chunks, "y")
    weights = (
        [None] * len(blocks)
        if sample_weight is None
        else _aligned_blocks(sample_weight, X, row_chunks, "sample_weight")
    )
    return list(zip(blocks, labels, weights))


def tree_reduce(parts, combine, split_every=_SPLIT_EVERY):
    """Reduce delayed ``parts`` with ``combine(*group)`` in a tree; delayed result."""
    from dask import delayed

    parts = list(parts)
    while len(parts) > 1:
        parts = [
            delayed(combine)(*parts[i : i + split_every])
            for i in range(0, len(parts), split_every)
        ]
    return parts[0]


def _apply_to_block(function, dtype, block):
    block = check_array(block, dtype=dtype, ensure_min_samples=0)
    return function(block)


def map_row_blocks(function, X, *, n_outputs, dtype, meta_dtype=None):
    """Lazily apply ``function`` (rows -> rows) to every row block of ``X``.

    Parameters
    ----------
    function : callable
        Takes a validated 2-D ndarray block; returns ``(rows, n_outputs)`` or,
        with ``n_outputs=None``, ``(rows,)``.
    X : Dask array or Dask DataFrame
    n_outputs : int or None
    dtype : dtype or list of dtypes
        Accepted input dtypes (``check_array``'s ``dtype``).
    meta_dtype : dtype
        Dtype of the output.

    Returns
    -------
    Dask array
        Rows never cross chunk boundaries; chunk sizes of a DataFrame's
        partitions are unknown until computed.
    """
    if _is_frame(X):
        X = X.to_dask_array()
    X = X.rechunk({1: -1})
    run = partial(_apply_to_block, function, dtype)
    meta_dtype = np.dtype(meta_dtype if meta_dtype is not None else np.float64)
    if n_outputs is None:
        return X.map_blocks(
            run, drop_axis=1, dtype=meta_dtype, meta=np.empty((0,), meta_dtype)
        )
    return X.map_blocks(
        run,
        chunks=(X.chunks[0], (n_outputs,)),
        dtype=meta_dtype,
        meta=np.empty((0, 0), meta_dtype),
    )
