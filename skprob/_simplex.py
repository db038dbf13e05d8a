"""Numeric core on rows of probabilities (points of the probability simplex).

Plain functions on arrays; the estimators in :mod:`skprob.calibration` and
:mod:`skprob.preprocessing` validate their input and call these.
"""

import numpy as np
from scipy.special import entr

__all__ = ["check_proba_rows", "row_entropy"]


def check_proba_rows(proba, *, name="proba", normalize=False, atol=1e-6):
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
    atol : float, default=1e-6
        Tolerance on the row sums when ``normalize=False``.

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes)
        The input (or a rescaled copy when ``normalize`` changed a row).

    Raises
    ------
    ValueError
        For a 1-D or empty array, NaN or infinite entries, negative entries,
        all-zero rows, or (``normalize=False``) rows that do not sum to one;
        the message names the first offending row.
    """
    proba = np.asarray(proba)
    if proba.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_classes); got "
            f"shape {proba.shape}."
        )
    if proba.shape[1] == 0:
        raise ValueError(f"{name} has no columns; it needs at least one class.")
    bad = ~np.isfinite(proba).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{name} contains NaN or infinity (first in row {row}).")
    bad = (proba < 0).any(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"{name} contains negative values (first in row {row}: "
            f"{proba[row].min()!r}); probabilities must be non-negative."
        )
    sums = proba.sum(axis=1)
    bad = sums == 0
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"Row {row} of {name} is all zeros; it is no distribution.")
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
