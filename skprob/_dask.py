"""Optional Dask support: statistics per chunk with a tree reduction, and lazy
row-wise prediction.

Nothing here imports Dask at module import time: a Dask collection can only
reach these functions if the user already imported Dask.

:func:`map_rows` is the one way the estimators apply a row-wise method: the
rows are validated and passed on in memory, or mapped lazily over the row
blocks of a Dask collection. :func:`check_chunk` is the one validation of a
chunk of training data on a Dask worker.
"""

import re
import sys
from functools import partial

import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, column_or_1d, validate_data

from ._sklearn import _check_n_features, check_chunk_weight

__all__ = [
    "check_chunk",
    "check_dask_features",
    "is_dask_collection",
    "map_chunks",
    "map_row_blocks",
    "map_rows",
    "tree_reduce",
]

FLOAT_DTYPES = [np.float64, np.float32]

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


def _aligned_array(values, row_chunks, name):
    """``y`` or ``sample_weight`` as a Dask array with the given row chunks."""
    import dask.array as da

    if _is_frame(values):  # a Dask Series with a Dask array X
        values = values.to_dask_array(lengths=True)
    elif not is_dask_collection(values):
        values = np.asarray(values)
    if np.isnan(sum(row_chunks)) or np.isnan(values.shape[0]):
        raise ValueError(
            f"The row chunks of X or {name} have unknown sizes (a Dask array "
            "made from a DataFrame, or filtered), so the rows of X and "
            f"{name} cannot be matched: call X.compute_chunk_sizes() (and the "
            f"same on {name}), or pass a Dask DataFrame X with {name} as a "
            "Dask Series of the same partitions."
        )
    if values.shape[0] != sum(row_chunks):
        raise ValueError(
            f"{name} has {values.shape[0]} rows but X has {sum(row_chunks)}."
        )
    if is_dask_collection(values):
        return values.rechunk((row_chunks,))
    return da.from_array(values, chunks=(row_chunks,))


def _one_object(function, X, *columns, block_info=None):
    """Run ``function`` on one chunk; wrap the result in a 1 x 1 object array."""
    number = block_info[0]["chunk-location"][0] if block_info else 0
    result = np.empty((1, 1), dtype=object)
    result[0, 0] = function(X, *(column[:, 0] for column in columns), number=number)
    return result


def _one_object_series(function, *partitions, partition_info=None):
    """Run ``function`` on one partition; wrap the result in a pandas Series."""
    import pandas as pd

    number = partition_info["number"] if partition_info else 0
    return pd.Series([function(*partitions, number=number)], dtype=object)


def _with_missing(function, given, numbered, X, *present, number):
    """Call ``function(X, y, sample_weight)``, with None for what was not given."""
    present = iter(present)
    args = (X, *(next(present) if g else None for g in given))
    return function(*args, chunk=number) if numbered else function(*args)


def _leaf(part):
    """The per-chunk result inside its container (see :func:`map_chunks`)."""
    if isinstance(part, np.ndarray):
        return part.flat[0]
    if hasattr(part, "iloc"):
        return part.iloc[0]
    return part


def map_chunks(function, X, y, sample_weight=None, *, number=False):
    """Delayed ``function(X_chunk, y_chunk, weight_chunk)``, one per row chunk.

    ``X`` is a Dask array (rechunked to one column chunk) or a Dask DataFrame;
    ``y`` and ``sample_weight`` are Dask collections partitioned like ``X`` or,
    for a Dask array ``X``, in-memory arrays; either may be None (the function
    then gets None). Everything goes into one graph,
    so inputs that share a source (X and y read or generated together) share
    its tasks instead of computing them twice. With ``number=True`` the
    function also gets ``chunk=``, the chunk's position (0, 1, ...).

    Returns
    -------
    list of Delayed
        Reduce them with :func:`tree_reduce`.
    """
    given = [v is not None for v in (y, sample_weight)]
    extra = [v for v in (y, sample_weight) if v is not None]
    function = partial(_with_missing, function, given, number)

    if _is_frame(X):
        import pandas as pd

        names = [n for n, g in zip(["y", "sample_weight"], given) if g]
        for name, values in zip(names, extra):
            if not _is_frame(values) or values.npartitions != X.npartitions:
                raise ValueError(
                    f"With a Dask DataFrame X, {name} must be a Dask Series with "
                    f"the same number of partitions ({X.npartitions})."
                )
        results = X.map_partitions(
            partial(_one_object_series, function),
            *extra,
            meta=pd.Series(dtype=object),
            align_dataframes=False,
        )
        return list(results.to_delayed())

    import dask.array as da

    X = X.rechunk({1: -1})
    row_chunks = X.chunks[0]
    names = [n for n, g in zip(["y", "sample_weight"], given) if g]
    columns = [_aligned_array(v, row_chunks, n)[:, None] for v, n in zip(extra, names)]
    results = da.map_blocks(
        partial(_one_object, function),
        X,
        *columns,
        chunks=((1,) * len(row_chunks), (1,)),
        dtype=object,
        meta=np.empty((0, 0), dtype=object),
    )
    return list(results.to_delayed().ravel())


def tree_reduce(parts, combine, split_every=_SPLIT_EVERY):
    """Reduce delayed ``parts`` with ``combine(*group)`` in a tree; delayed result."""
    from dask import delayed

    parts = list(parts)
    reduce = partial(_combine_leaves, combine)
    while len(parts) > 1:
        parts = [
            delayed(reduce)(*parts[i : i + split_every])
            for i in range(0, len(parts), split_every)
        ]
    return delayed(_leaf)(parts[0])


def _combine_leaves(combine, *parts):
    return combine(*(_leaf(p) for p in parts))


def _apply_to_block(function, dtype, columns, block, block_info=None):
    try:
        if dtype is not None:
            block = check_array(block, dtype=dtype, ensure_min_samples=0)
        if columns is not None:  # estimators fitted on named columns see them
            import pandas as pd

            block = pd.DataFrame(block, columns=columns, copy=False)
        return function(block)
    except ValueError as error:
        # messages that name a row count it inside this block: say which block
        raise ValueError(_in_block(str(error), block_info)) from error


def _in_block(message, block_info):
    """A message about a block, with its row numbers counted from the start of X.

    Where the block's place in X is unknown (the partitions of a DataFrame),
    the block is named by its index and the numbers stay local.
    """
    info = (block_info or {}).get(0, {})
    location = info.get("array-location")
    if location and not any(np.isnan(bound) for bound in location[0]):
        start, stop = (int(bound) for bound in location[0])
        message = re.sub(
            r"\b([Rr]ow) (\d+)",
            lambda match: f"{match[1]} {int(match[2]) + start}",
            message,
        )
        return f"{message} [in the Dask block of rows {start} to {stop - 1} of X]"
    index = info.get("chunk-location", ("?",))[0]
    return (
        f"{message} [in Dask row block {index} of X, whose size is unknown: a "
        "row number here counts from the block's first row]"
    )


def map_row_blocks(function, X, *, n_outputs, dtype, meta_dtype=None, columns=None):
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
    columns : array-like of str, default=None
        If given, each block reaches ``function`` as a DataFrame with these
        column names.
    (``dtype=None``: blocks are not validated here; ``function`` does it.)

    Returns
    -------
    Dask array
        Rows never cross chunk boundaries; chunk sizes of a DataFrame's
        partitions are unknown until computed.
    """
    if _is_frame(X):
        X = X.to_dask_array()
    X = X.rechunk({1: -1})
    run = partial(_apply_to_block, function, dtype, columns)
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


def map_rows(estimator, function, X, *, n_outputs, out_dtype=None, validate=True):
    """``function`` applied to the rows of ``X``, lazily for Dask input.

    Parameters
    ----------
    estimator : fitted estimator
        Its ``n_features_in_`` and ``feature_names_in_`` are checked.
    function : callable
        Rows -> rows: ``(n, n_features)`` to ``(n, n_outputs)``, or to ``(n,)``
        with ``n_outputs=None``.
    X : array-like, DataFrame, or Dask array / DataFrame
    n_outputs : int or None
    out_dtype : dtype, default=None
        Dtype of the lazy result; default the float dtype of ``X``.
    validate : bool, default=True
        Validate the rows as float32 / float64 with ``validate_data`` (blocks
        with ``check_array``) before ``function``. False for a
        meta-estimator whose base estimator validates: ``X`` reaches
        ``function`` unchanged, Dask blocks as DataFrames with the feature
        names seen in fit (if any).

    Returns
    -------
    ndarray, or a lazy Dask array for Dask input
    """
    if is_dask_collection(X):
        check_dask_features(estimator, X, reset=False)
        return map_row_blocks(
            function,
            X,
            n_outputs=n_outputs,
            dtype=FLOAT_DTYPES if validate else None,
            meta_dtype=float_dtype(X) if out_dtype is None else out_dtype,
            columns=None if validate else getattr(estimator, "feature_names_in_", None),
        )
    if validate:
        X = validate_data(estimator, X, reset=False, dtype=FLOAT_DTYPES)
    return function(X)


def check_chunk(X, y, sample_weight, *, n_features=None):
    """Validate one chunk of training data (on a Dask worker, or in memory).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Checked as float32 / float64 with ``n_features`` columns, unless
        ``n_features`` is None (``X`` was validated already).
    y : array-like of shape (n_samples,) or None
        Class labels.
    sample_weight : array-like of shape (n_samples,) or None
        Non-negative weights.

    Returns
    -------
    X, y, sample_weight
        A chunk may be empty; an empty chunk's weights are ``zeros(0)``.
    """
    if n_features is not None:
        X = check_array(X, dtype=FLOAT_DTYPES, ensure_min_samples=0)
        if X.shape[1] != n_features:
            raise ValueError(
                f"X has {X.shape[1]} features, but the estimator expects {n_features}."
            )
    if y is not None:
        y = column_or_1d(np.asarray(y), warn=True)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}.")
        if len(y):
            check_classification_targets(y)
    if sample_weight is not None:
        sample_weight = check_chunk_weight(sample_weight, X) if len(X) else np.zeros(0)
    return X, y, sample_weight
