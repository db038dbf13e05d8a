"""Numeric core on rows of probabilities (points of the probability simplex).

Plain functions on arrays; the estimators in :mod:`skprob.calibration` and
:mod:`skprob.preprocessing` validate their input and call these.
"""

import warnings

import numpy as np
from scipy.special import entr, logsumexp

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


# ---------------------------------------------------------------------------
# CAN: classification with alternating normalization
# ---------------------------------------------------------------------------

__all__ += ["topk_uncertainty", "can_adjust"]

# Uncertain rows are corrected in chunks so that each (chunk, n_reference)
# temporary holds at most this many float64 values (32 MiB).
_CAN_CHUNK_VALUES = 2**22


def _check_can_rows(proba, name):
    """Rows of probabilities as float64 (validated; a float32 sum may be off 1e-4)."""
    proba = np.asarray(proba)
    if proba.dtype.kind not in "fiub":
        raise ValueError(f"{name} must be numeric; got dtype {proba.dtype}.")
    atol = 1e-6 if proba.dtype.itemsize >= 8 else 1e-4
    proba = check_proba_rows(proba, name=name, atol=atol)
    return proba.astype(np.float64, copy=False)


def _check_prior(prior, n_classes):
    """Class prior as float64 summing to one (its scale cancels in CAN anyway)."""
    prior = np.asarray(prior, dtype=np.float64)
    if prior.shape != (n_classes,):
        raise ValueError(
            f"prior has shape {prior.shape}; expected ({n_classes},), one value "
            "per class."
        )
    if not np.all(np.isfinite(prior)) or np.any(prior < 0) or prior.sum() == 0:
        raise ValueError(
            f"prior must be finite, non-negative and not all zero; got {prior!r}."
        )
    return prior / prior.sum()


def _check_can_options(threshold, top_k, n_iter, alpha):
    if not (isinstance(top_k, (int, np.integer)) and top_k >= 1):
        raise ValueError(f"top_k must be an integer >= 1; got {top_k!r}.")
    if not (isinstance(n_iter, (int, np.integer)) and n_iter >= 1):
        raise ValueError(f"n_iter must be an integer >= 1; got {n_iter!r}.")
    if not (np.isscalar(threshold) and 0 <= threshold <= 1):
        raise ValueError(f"threshold must be a number in [0, 1]; got {threshold!r}.")
    if not (np.isscalar(alpha) and np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a finite number > 0; got {alpha!r}.")


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
    >>> from skprob._simplex import topk_uncertainty
    >>> rows = [[0.4, 0.4, 0.1, 0.1], [0.97, 0.01, 0.01, 0.01]]
    >>> topk_uncertainty(rows, top_k=2).round(3)
    array([1.   , 0.082])
    """
    if kind not in ("renormalized", "paper"):
        raise ValueError(f'kind must be "renormalized" or "paper"; got {kind!r}.')
    if not (isinstance(top_k, (int, np.integer)) and top_k >= 1):
        raise ValueError(f"top_k must be an integer >= 1; got {top_k!r}.")
    return _topk_uncertainty(_check_can_rows(proba, "proba"), top_k, kind)


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


def can_adjust(
    proba,
    reference,
    prior,
    *,
    threshold=0.9,
    top_k=3,
    n_iter=1,
    alpha=1.0,
    reference_weight=None,
):
    """Correct uncertain rows of probabilities by alternating normalization (CAN).

    A row whose :func:`topk_uncertainty` is ``>= threshold`` is stacked under the
    ``reference`` rows, and the stack is alternated ``n_iter`` times: every entry
    is raised to ``alpha``, each column is divided by its mean and multiplied by
    the class prior (column step), and each row is divided by its sum (row
    step). The row's last version replaces it; the reference rows are
    discarded, so every uncertain row meets the same, original, reference rows.
    Rows below the threshold are returned unchanged.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Rows of probabilities (each sums to 1).
    reference : array-like of shape (n_reference, n_classes) or None
        Rows of confident probabilities, used as given. ``None`` uses the rows
        of ``proba`` whose uncertainty is below ``threshold`` (the transductive
        form of the original method).
    prior : array-like of shape (n_classes,)
        Class prior the column step aims at (rescaled to sum to 1; a zero
        prior removes its class from the corrected rows).
    threshold : float in [0, 1], default=0.9
        Rows with uncertainty ``>= threshold`` are corrected.
    top_k : int, default=3
        Probabilities used by the uncertainty (capped at ``n_classes``).
    n_iter : int, default=1
        Number of column-and-row steps.
    alpha : float > 0, default=1.0
        Power applied to the stack before each column step.
    reference_weight : array-like of shape (n_reference,), default=None
        Non-negative weights of the reference rows in the column means: a
        weight of 2 counts the row twice (the uncertain row counts once).
        ``None`` gives every reference row weight 1.

    Returns
    -------
    adjusted : ndarray of shape (n_samples, n_classes)
        Floating-point input keeps its dtype (computed in float64).

    Warns
    -----
    UserWarning
        When there are uncertain rows but no reference rows; ``proba`` is
        returned unchanged.

    See Also
    --------
    topk_uncertainty : The uncertainty that selects the rows.
    skprob.CANCalibrator : CAN around any classifier, with a reference set
        built from out-of-fold predictions.

    Notes
    -----
    For an uncertain row ``b`` and reference rows ``A`` (``n x m``), the stack
    after ``d`` steps is ``diag(x) B_d diag(y)`` stacked over ``b_d``, where
    ``B_d`` is the reference alone alternated ``d`` times (shared by all
    rows), and ``x`` (``n``) and ``y`` (``m``) depend on ``b``. With the
    reference weights ``v``, ``s = v @ B_d ** alpha``, ``w = (v * x ** alpha)
    @ B_d ** alpha`` and the column sums ``c = y ** alpha * w + b_d ** alpha``,
    one step is::

        b_{d+1} = rownorm(b_d ** alpha * prior / c)
        y_{d+1} = z = y ** alpha * s / c,    x_{d+1} = 1 / (B_{d+1} @ z)

    so a step for ``u`` rows costs two ``(u x m)(m x n)`` matrix products, and
    the first step, where ``x = y = 1`` and ``w = s``, costs ``O((u + n) m)``:
    ``n_iter=1`` is the closed form ``b ** alpha * prior / (s + b ** alpha)``,
    renormalised. ``b`` and ``y`` are kept in log space (``1e-300 ** alpha``
    does not underflow). A column with no mass in the stack stays zero (the
    column step's ``0 / 0`` is taken as 0); a row the column step empties
    (its classes all have zero prior) is returned unchanged.

    References
    ----------
    .. [1] M. Jia, A. Reiter, S.-N. Lim, Y. Artzi, C. Cardie, "When in Doubt:
       Improving Classification Performance with Alternating Normalization",
       Findings of EMNLP 2021, arXiv:2109.13449.

    Examples
    --------
    >>> from skprob import can_adjust
    >>> reference = [[0.9, 0.05, 0.05], [0.05, 0.9, 0.05]]
    >>> can_adjust([[0.4, 0.3, 0.3]], reference, [1, 1, 1]).round(3)
    array([[0.23 , 0.187, 0.583]])
    """
    rows = _check_can_rows(proba, "proba")
    n_classes = rows.shape[1]
    if reference is not None:
        reference = _check_can_rows(reference, "reference")
        if reference.shape[1] != n_classes:
            raise ValueError(
                f"reference has {reference.shape[1]} columns but proba has "
                f"{n_classes}; both need one column per class."
            )
    prior = _check_prior(prior, n_classes)
    _check_can_options(threshold, top_k, n_iter, alpha)
    if reference_weight is not None:
        if reference is None:
            raise ValueError("reference_weight needs reference rows; got None.")
        reference_weight = _check_reference_weight(reference_weight, len(reference))
        reference = reference[reference_weight > 0]
        reference_weight = reference_weight[reference_weight > 0]

    dtype = np.asarray(proba).dtype
    adjusted = np.array(proba, dtype=dtype if dtype.kind == "f" else np.float64)
    uncertain = _topk_uncertainty(rows, top_k) >= threshold
    if reference is None:
        reference = rows[~uncertain]
    if not uncertain.any():
        return adjusted
    if len(reference) == 0:
        warnings.warn(
            f"can_adjust has no reference rows; the {int(uncertain.sum())} "
            "uncertain rows are returned unchanged.",
            UserWarning,
            stacklevel=2,
        )
        return adjusted
    log_rows = _can_log_rows(
        rows[uncertain], reference, prior, n_iter, alpha, reference_weight
    )
    adjusted[uncertain] = np.exp(log_rows)
    return adjusted


def _check_reference_weight(weight, n_reference):
    weight = np.asarray(weight, dtype=np.float64)
    if weight.shape != (n_reference,):
        raise ValueError(
            f"reference_weight has shape {weight.shape}; expected "
            f"({n_reference},), one weight per reference row."
        )
    if not np.all(np.isfinite(weight)) or np.any(weight < 0):
        raise ValueError("reference_weight must be finite and non-negative.")
    return weight


def _safe_divide(numerator, denominator):
    """``numerator / denominator`` with ``x / 0 = 0`` (an empty column or row)."""
    shape = np.broadcast_shapes(np.shape(numerator), np.shape(denominator))
    return np.divide(numerator, denominator, out=np.zeros(shape), where=denominator > 0)


def _log_ratio(log_numerator, log_denominator):
    """``log(a / b)`` from logs, with ``0 / 0 = 0`` (log: ``-inf``)."""
    with np.errstate(invalid="ignore"):
        ratio = log_numerator - log_denominator
    empty = np.isneginf(log_numerator) | np.isneginf(log_denominator)
    return np.where(empty, -np.inf, ratio)


def _log(values):
    with np.errstate(divide="ignore"):
        return np.log(values)


def _reference_iterates(reference, weight, prior, n_iter, alpha):
    """The reference rows alternated alone (``B_d``), and their weighted powers.

    Parameters
    ----------
    reference : ndarray of shape (n_reference, n_classes)
    weight : ndarray of shape (n_reference,) or None
    prior : ndarray of shape (n_classes,)
    n_iter : int
    alpha : float

    Returns
    -------
    steps : list of n_iter tuples ``(B_d, P_d, log_scale_d, log_s_d)``
        ``V B_d ** alpha = P_d * exp(log_scale_d)``: each column is divided by
        its largest entry before the power, so that tiny columns (``1e-300 **
        alpha``) do not underflow; ``V = diag(weight)``. ``log_s_d`` is the log
        of the column sums of ``V B_d ** alpha``.
    """
    steps = []
    current = reference
    for d in range(n_iter):
        top = current.max(axis=0)  # zero for an empty column
        powered = _safe_divide(current, top)
        if alpha != 1:
            powered **= alpha
        weighted = powered if weight is None else powered * weight[:, None]
        mass = weighted.sum(axis=0)
        log_scale = alpha * _log(top)
        steps.append((current, weighted, log_scale, log_scale + _log(mass)))
        if d + 1 < n_iter:
            # the column step cancels the column scale
            current = powered * _safe_divide(prior, mass)
            current = _safe_divide(current, current.sum(axis=1, keepdims=True))
    return steps


def _can_log_rows(rows, reference, prior, n_iter, alpha, weight=None):
    """Log of the CAN-corrected ``rows`` (all of them; see :func:`can_adjust`).

    Parameters
    ----------
    rows : ndarray of shape (n_rows, n_classes)
        The uncertain rows, float64.
    reference : ndarray of shape (n_reference, n_classes)
        At least one row, float64.
    prior : ndarray of shape (n_classes,)
    n_iter : int
    alpha : float
    weight : ndarray of shape (n_reference,) or None
        Weights of the reference rows in the column sums.

    Returns
    -------
    log_rows : ndarray of shape (n_rows, n_classes)
        Normalised log probabilities (``-inf`` for zeros).
    """
    steps = _reference_iterates(reference, weight, prior, n_iter, alpha)
    log_prior = _log(prior)
    size = max(1, _CAN_CHUNK_VALUES // max(reference.shape[0], rows.shape[1]))
    out = np.empty_like(rows)
    for start in range(0, len(rows), size):
        chunk = slice(start, start + size)
        out[chunk] = _can_log_chunk(_log(rows[chunk]), steps, log_prior, alpha)
    return out


def _can_log_chunk(log_rows, steps, log_prior, alpha):
    """CAN steps for a chunk of rows in the factored form of :func:`can_adjust`."""
    original = log_rows
    log_y = 0.0  # y_0 = 1
    x, log_x_scale = None, 0.0  # x_0 = 1
    for d, (_, weighted, log_scale, log_mass) in enumerate(steps):
        if x is None:
            log_w = log_mass  # w_0 = s_0
        else:
            log_w = log_scale + log_x_scale + _log(x @ weighted)  # shape (u, m)
        log_rows = alpha * log_rows
        # log of the column sums of the stack: reference part and the row
        log_col = np.logaddexp(alpha * log_y + log_w, log_rows)
        log_rows = _log_ratio(log_rows + log_prior, log_col)  # column step
        with np.errstate(invalid="ignore"):
            log_rows = log_rows - logsumexp(log_rows, axis=1, keepdims=True)
        if d + 1 < len(steps):
            log_y = _log_ratio(alpha * log_y + log_mass, log_col)  # z
            bz = np.exp(log_y) @ steps[d + 1][0].T  # shape (u, n)
            x, log_x_scale = _reciprocal_power(bz, alpha)
    # a row whose classes all lost their mass (zero prior): keep it unchanged
    empty = np.isnan(log_rows).any(axis=1)
    log_rows[empty] = original[empty]
    return log_rows


def _reciprocal_power(bz, alpha):
    """``x ** alpha`` for ``x = 1 / bz``, scaled per row to avoid overflow.

    Returns ``(x ** alpha) / scale`` and ``log scale`` of shape (u, 1), where
    the scale is the largest ``x ** alpha`` of the row. A reference row with
    ``bz = 0`` has lost all its mass in the row step: its ``x`` is 0.
    """
    low = bz.min(axis=1, keepdims=True)
    if not np.all(low > 0):
        positive = np.where(bz > 0, bz, np.inf)
        low = positive.min(axis=1, keepdims=True)
        low[~np.isfinite(low)] = 1.0
    x = _safe_divide(low, bz) if not np.all(bz > 0) else low / bz
    if alpha != 1:
        x **= alpha
    return x, -alpha * np.log(low)
