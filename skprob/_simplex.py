"""What rows of probabilities share: validation, entropy, top-k uncertainty.

Plain functions on arrays. The features built on rows of probabilities live
next to the public module that uses them: entropy normalization
(:mod:`skprob._entropy`), perturb-max maps (:mod:`skprob._perturb_max`) and
CAN (:mod:`skprob._can`).
"""

from numbers import Integral

import numpy as np
from scipy.special import entr

from ._sklearn import Interval, StrOptions, validate_params
from ._validation import as_real_array

__all__ = [
    "check_logit_rows",
    "check_proba_rows",
    "row_entropy",
    "sum_tolerance",
    "topk_uncertainty",
]


def sum_tolerance(dtype):
    """Tolerance on the sums of rows of probabilities held in ``dtype``.

    A float64 row sums to one within about ``n_classes * eps``; a float32 row
    (or a smaller type) is off by up to about ``1e-5`` for a few hundred
    classes.
    """
    return 1e-6 if np.dtype(dtype).itemsize >= 8 else 1e-4


def _as_rows(values, name):
    """``values`` as a 2-D array of real numbers with at least one column."""
    rows = as_real_array(values, name)
    if rows.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_classes); got "
            f"shape {rows.shape}."
        )
    if rows.shape[1] == 0:
        raise ValueError(f"{name} has no columns; it needs at least one class.")
    return rows


def check_proba_rows(
    proba, *, name="proba", normalize=False, atol=None, check_sums=True
):
    """Validate rows of probabilities; say which row is wrong and why.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Floating-point rows.
    name : str, default="proba"
        Name of the argument, for the error messages.
    normalize : bool, default=False
        If True, rows that do not sum to one are divided by their sum (counts
        and unnormalised scores are accepted; an all-zero row is an error).
        If False, a row whose sum differs from one by more than ``atol`` is an
        error.
    atol : float, default=None
        Tolerance on the row sums; ``None`` uses :func:`sum_tolerance` of the
        input's dtype.
    check_sums : bool, default=True
        If False, the row sums are neither checked nor corrected (for callers
        that use each row only up to scale); all-zero rows are still an error.

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes)
        The input (or a rescaled copy when ``normalize`` changed a row).

    Raises
    ------
    ValueError
        For values that are not real numbers (complex, or strings and objects
        that are not numbers), a 1-D or empty array, NaN or infinite entries,
        negative entries, all-zero rows, or (``normalize=False``) rows that do
        not sum to one; the message names the first offending row.
    """
    proba = _as_rows(proba, name)
    # Whole-array checks first (two passes); the per-row search for the first
    # bad row only runs when one of them fails.
    if np.issubdtype(proba.dtype, np.floating):
        sums = proba @ np.ones(
            proba.shape[1], dtype=proba.dtype
        )  # fast for few columns
    else:
        sums = proba.sum(axis=1)
    if not np.isfinite(sums).all():
        bad = ~np.isfinite(proba).all(axis=1)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"{name} contains NaN or infinity (first in row {row}).")
    if proba.size and proba.min() < 0:
        bad = (proba < 0).any(axis=1)
        row = int(np.argmax(bad))
        # "Negative values in data" is scikit-learn's wording for this error
        raise ValueError(
            f"Negative values in data: {name} contains negative values (first "
            f"in row {row}: {float(proba[row].min())!r}); probabilities must be "
            "non-negative."
        )
    bad = sums == 0
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"Row {row} of {name} is all zeros; it is no distribution.")
    if not check_sums:
        return proba
    if atol is None:
        atol = sum_tolerance(proba.dtype)
    off = np.abs(sums - 1) > atol
    if off.any():
        if not normalize:
            row = int(np.argmax(off))
            raise ValueError(
                f"Rows of {name} must sum to 1; row {row} sums to {sums[row]!r}."
            )
        proba = proba / sums[:, None].astype(proba.dtype, copy=False)
    return proba


def row_entropy(proba):
    """Shannon entropy of each row, in nats, with ``0 log 0 = 0``.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Rows of probabilities (not validated).

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    return entr(proba).sum(axis=1)


def check_logit_rows(scores, *, name="scores"):
    """Validate rows of real scores (logits); say which row is wrong."""
    scores = _as_rows(scores, name)
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
    if not np.isfinite(scores).all():
        row = int(np.argmax(~np.isfinite(scores).all(axis=1)))
        raise ValueError(f"{name} contains NaN or infinity (first in row {row}).")
    return scores


@validate_params(
    {
        # sparse input passes to as_real_array, which says it is not supported
        "proba": ["array-like", "sparse matrix"],
        "top_k": [Interval(Integral, 1, None, closed="left")],
        "kind": [StrOptions({"renormalized", "paper"})],
    },
    prefer_skip_nested_validation=True,
)
def topk_uncertainty(proba, top_k=3, kind="renormalized"):
    """Uncertainty of each row from its ``top_k`` largest probabilities, in [0, 1].

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Rows of probabilities.
    top_k : int, default=3
        Number of largest probabilities used; capped at ``n_classes``.
    kind : {"renormalized", "paper"}, default="renormalized"
        "renormalized": the entropy of the ``k`` largest probabilities divided
        by their sum, over ``log k``; 1 when they are equal, 0 when one of them
        holds all their mass. "paper": the entropy terms ``-p log p`` of the
        ``k`` largest probabilities, not renormalised, over ``log n_classes``.

    Returns
    -------
    uncertainty : ndarray of shape (n_samples,)
        Zero for every row when the denominator is ``log 1`` (one class, or
        ``top_k=1`` with "renormalized").

    See Also
    --------
    can_adjust : Corrects the rows whose uncertainty reaches a threshold.

    Examples
    --------
    >>> from skprob import topk_uncertainty
    >>> rows = [[0.4, 0.4, 0.1, 0.1], [0.97, 0.01, 0.01, 0.01]]
    >>> topk_uncertainty(rows, top_k=2).round(3)
    array([1.   , 0.082])
    """
    proba = check_proba_rows(proba).astype(np.float64, copy=False)
    return _topk_uncertainty(proba, top_k, kind)


def _topk_uncertainty(proba, top_k, kind="renormalized"):
    """:func:`topk_uncertainty` of validated rows."""
    n_samples, n_classes = proba.shape
    k = min(int(top_k), n_classes)
    scale = np.log(k) if kind == "renormalized" else np.log(n_classes)
    if scale == 0 or n_samples == 0:
        return np.zeros(n_samples)
    top = np.partition(proba, n_classes - k, axis=1)[:, n_classes - k :]
    if kind == "renormalized":
        top = top / top.sum(axis=1, keepdims=True)
    return np.clip(row_entropy(top) / scale, 0.0, 1.0)
