"""CAN (classification with alternating normalization) on rows of probabilities.

:func:`can_adjust` and :class:`skprob.CANCalibrator` both go through
:func:`correct_uncertain`: which rows are uncertain, which rows serve as the
reference, what is said when there are none, and the vectorised correction.
"""

import warnings
from numbers import Integral, Real

import numpy as np

from ._simplex import _topk_uncertainty, check_proba_rows
from ._sklearn import Interval, validate_params
from ._validation import as_real_array, check_prior

__all__ = ["CAN_CONSTRAINTS", "can_adjust", "correct_uncertain"]

# Parameters shared by can_adjust and CANCalibrator.
CAN_CONSTRAINTS = {
    "threshold": [Interval(Real, 0, 1, closed="both")],
    "top_k": [Interval(Integral, 1, None, closed="left")],
    "n_iter": [Interval(Integral, 1, None, closed="left")],
    "alpha": [Interval(Real, 0, None, closed="neither")],
}

# Uncertain rows are corrected in chunks so that each (chunk, n_reference)
# temporary holds at most this many float64 values (32 MiB).
_CAN_CHUNK_VALUES = 2**22
# An entry of a scaled matrix product at least this large is exact to
# rounding (the terms lost to underflow are below 1e-307 each); a smaller one
# is summed again in log space (see _log_matmul).
_TRUST = 1e-250


def _check_rows(proba, name):
    """Validated rows of probabilities, as float64."""
    return check_proba_rows(proba, name=name).astype(np.float64, copy=False)


@validate_params(
    {
        # sparse input passes to as_real_array, which says it is not supported
        "proba": ["array-like", "sparse matrix"],
        "reference": ["array-like", "sparse matrix", None],
        "prior": ["array-like", "sparse matrix"],
        **CAN_CONSTRAINTS,
        "reference_weight": ["array-like", "sparse matrix", None],
    },
    prefer_skip_nested_validation=True,
)
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
    renormalised. ``b``, ``x``, ``y`` and ``B_d`` are kept in logs: entries
    of ``1e-300 ** alpha`` do not underflow, nor do those of ``B_d``, which
    fall like ``p ** (alpha ** d)``. Each matrix product is taken on factors
    scaled by their largest entries, and the entries this cannot resolve
    (under ``1e-250`` times those largest entries, as when a large
    ``alpha ** n_iter`` makes the rows steep) are summed again in log space,
    so the result holds to rounding for any ``alpha`` and ``n_iter``. A
    column with no mass in the stack stays zero (the
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
    rows = _check_rows(proba, "proba")
    n_classes = rows.shape[1]
    if reference is not None:
        reference = _check_rows(reference, "reference")
        if reference.shape[1] != n_classes:
            raise ValueError(
                f"reference has {reference.shape[1]} columns but proba has "
                f"{n_classes}; both need one column per class."
            )
    prior = check_prior(prior, n_classes)
    if reference_weight is not None:
        if reference is None:
            raise ValueError("reference_weight needs reference rows; got None.")
        reference_weight = _check_reference_weight(reference_weight, len(reference))
        reference = reference[reference_weight > 0]
        reference_weight = reference_weight[reference_weight > 0]

    dtype = np.asarray(proba).dtype
    adjusted = np.array(proba, dtype=dtype if dtype.kind == "f" else np.float64)
    uncertain, corrected = correct_uncertain(
        rows,
        prior,
        reference=reference,
        reference_weight=reference_weight,
        batch=reference is None,
        threshold=threshold,
        top_k=top_k,
        n_iter=n_iter,
        alpha=alpha,
    )
    if corrected is not None:
        adjusted[uncertain] = np.exp(corrected)
    return adjusted


def correct_uncertain(
    rows,
    prior,
    *,
    reference,
    reference_weight,
    batch,
    threshold,
    top_k,
    n_iter,
    alpha,
    log_rows=None,
    warn=True,
):
    """CAN for the uncertain rows among ``rows``: which, against what, and how.

    Parameters
    ----------
    rows : ndarray of shape (n_samples, n_classes), float64
        Validated rows of probabilities.
    prior : ndarray of shape (n_classes,)
    reference : ndarray of shape (n_reference, n_classes) or None
        Confident rows given in advance (may be empty).
    reference_weight : ndarray of shape (n_reference,) or None
        Their weights; None means 1 each.
    batch : bool
        Also use the confident rows of ``rows`` (weight 1) as reference rows.
    threshold, top_k, n_iter, alpha
        As in :func:`can_adjust`.
    log_rows : ndarray of shape (n_samples, n_classes), default=None
        The logs of ``rows`` when known more precisely (a classifier's own
        ``predict_log_proba``); default ``log(rows)``.
    warn : bool, default=True
        Warn when uncertain rows stay unchanged for lack of reference rows.

    Returns
    -------
    uncertain : ndarray of shape (n_samples,), bool
        The rows with uncertainty ``>= threshold``.
    corrected : ndarray of shape (n_uncertain, n_classes) or None
        Logs of the corrected uncertain rows (``-inf`` for zeros); None when
        there is nothing to correct or no reference row to correct against.
    """
    uncertain = _topk_uncertainty(rows, top_k) >= threshold
    if not uncertain.any():
        return uncertain, None
    if batch:
        confident = rows[~uncertain]
        if reference is None or len(reference) == 0:
            reference, reference_weight = confident, None
        else:
            if reference_weight is None:
                reference_weight = np.ones(len(reference))
            reference = np.vstack([reference, confident])
            reference_weight = np.concatenate(
                [reference_weight, np.ones(len(confident))]
            )
    if reference is None or len(reference) == 0:
        if warn:
            warnings.warn(
                "There are no reference rows (no row with uncertainty below "
                f"threshold={threshold}); the {int(uncertain.sum())} uncertain "
                "rows are returned unchanged.",
                UserWarning,
                stacklevel=4,
            )
        return uncertain, None
    log_uncertain = _log(rows[uncertain]) if log_rows is None else log_rows[uncertain]
    corrected = _can_log_rows(
        log_uncertain, reference, prior, n_iter, alpha, reference_weight
    )
    return uncertain, corrected


def _check_reference_weight(weight, n_reference):
    weight = as_real_array(weight, "reference_weight").astype(np.float64, copy=False)
    if weight.shape != (n_reference,):
        raise ValueError(
            f"reference_weight has shape {weight.shape}; expected "
            f"({n_reference},), one weight per reference row."
        )
    if not np.all(np.isfinite(weight)) or np.any(weight < 0):
        raise ValueError("reference_weight must be finite and non-negative.")
    return weight


def _log_ratio(log_numerator, log_denominator):
    """``log(a / b)`` from logs, with ``0 / 0 = 0`` (log: ``-inf``)."""
    with np.errstate(invalid="ignore"):
        ratio = log_numerator - log_denominator
    empty = np.isneginf(log_numerator) | np.isneginf(log_denominator)
    return np.where(empty, -np.inf, ratio)


def _log(values):
    with np.errstate(divide="ignore"):
        return np.log(values)


def _finite_or_zero(values):
    """``values`` with the non-finite entries (maxima of empty lines) set to 0."""
    return np.where(np.isfinite(values), values, 0.0)


def _log_sum_exp(log_values, axis):
    """``log(sum(exp(log_values)))`` along ``axis`` (kept); ``-inf`` for no mass."""
    top = _finite_or_zero(log_values.max(axis=axis, keepdims=True))
    with np.errstate(divide="ignore"):
        return top + np.log(np.exp(log_values - top).sum(axis=axis, keepdims=True))


def _log_normalize(log_values):
    """Rows of logs minus their log-sum-exp: NaN for a row with no mass."""
    with np.errstate(invalid="ignore"):
        return log_values - _log_sum_exp(log_values, axis=1)


class _LogFactor:
    """The right factor ``exp(log_b)`` of :func:`_log_matmul`, scaled once.

    ``scaled = exp(log_b - shift)``, each column divided by its largest entry
    (``shift``, 0 for an empty column), so that it is shared by every chunk of
    rows.
    """

    def __init__(self, log_b):
        self.log_b = log_b
        self.shift = _finite_or_zero(log_b.max(axis=0, keepdims=True))
        self.scaled = np.exp(log_b - self.shift)


def _log_matmul(log_a, factor):
    """``log(exp(log_a) @ exp(factor.log_b))`` without overflow or underflow.

    The rows of ``exp(log_a)`` and the columns of ``exp(log_b)`` are divided by
    their largest entries, so that one matrix product gives every entry whose
    terms are not all far below those largest entries. Terms lost to underflow
    are below the smallest normal double each, so an entry of the scaled
    product of at least ``_TRUST`` is exact to rounding; smaller entries (the
    largest terms of the row and of the column are in different places, as in
    the steep rows of a large ``alpha ** n_iter``) are summed again in log
    space, ``log-sum-exp(log_a[i] + log_b[:, j])``.

    Parameters
    ----------
    log_a : ndarray of shape (n_rows, n_inner)
    factor : _LogFactor of ``log_b`` of shape (n_inner, n_columns)

    Returns
    -------
    ndarray of shape (n_rows, n_columns)
        ``-inf`` where there is no mass.
    """
    top = log_a.max(axis=1, keepdims=True)
    shift = _finite_or_zero(top)
    scaled = np.subtract(log_a, shift)
    product = np.exp(scaled, out=scaled) @ factor.scaled
    out = _log(product)
    out += shift + factor.shift
    redo = product < _TRUST
    # an empty row or column has exactly no mass
    redo &= top > -np.inf
    redo &= factor.log_b.max(axis=0, keepdims=True) > -np.inf
    if redo.any():
        rows, columns = np.nonzero(redo)
        size = max(1, _CAN_CHUNK_VALUES // max(1, log_a.shape[1]))
        for start in range(0, len(rows), size):
            i, j = rows[start : start + size], columns[start : start + size]
            terms = log_a[i] + factor.log_b[:, j].T  # shape (pairs, n_inner)
            out[i, j] = _log_sum_exp(terms, axis=1)[:, 0]
    return out


class _ReferenceStep:
    """The reference rows alternated alone ``d`` times, for one CAN step.

    ``B_d`` is held in logs (``-inf`` for zeros): its entries fall like
    ``p ** (alpha ** d)`` and leave the double range.

    Attributes
    ----------
    powered : _LogFactor
        Of ``alpha log B_d``, the right factor of ``w``.
    rows : _LogFactor
        Of ``log B_d``, transposed: the right factor of ``B_d z``.
    log_s : ndarray of shape (n_classes,)
        ``log s_d``, the logs of the column sums of ``V B_d ** alpha``.
    """

    def __init__(self, log_B, log_weight, alpha):
        powered = alpha * log_B
        self.powered = _LogFactor(powered)
        self.rows = _LogFactor(log_B.T)
        self.log_s = _log_sum_exp(powered + log_weight[:, None], axis=0)[0]


def _reference_iterates(reference, weight, prior, n_iter, alpha):
    """The reference rows alternated alone (``B_d``), in logs.

    Parameters
    ----------
    reference : ndarray of shape (n_reference, n_classes)
    weight : ndarray of shape (n_reference,) or None
    prior : ndarray of shape (n_classes,)
    n_iter : int
    alpha : float

    Returns
    -------
    steps : list of n_iter _ReferenceStep
    log_weight : ndarray of shape (n_reference,)
    """
    log_weight = np.zeros(len(reference)) if weight is None else _log(weight)
    log_prior = _log(prior)
    log_B = _log(reference)
    steps = []
    for d in range(n_iter):
        steps.append(_ReferenceStep(log_B, log_weight, alpha))
        if d + 1 < n_iter:
            # column step, then row step; a row emptied by it stays empty
            log_B = alpha * log_B + _log_ratio(log_prior, steps[-1].log_s)
            log_B = _log_normalize(log_B)
            log_B[np.isnan(log_B)] = -np.inf
    return steps, log_weight


def _can_log_rows(log_rows, reference, prior, n_iter, alpha, weight=None):
    """Log of the CAN-corrected rows (all of them; see :func:`can_adjust`).

    Parameters
    ----------
    log_rows : ndarray of shape (n_rows, n_classes)
        Logs of the uncertain rows, float64 (a classifier's own log
        probabilities stay finite where its probabilities underflow to 0).
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
    steps, log_weight = _reference_iterates(reference, weight, prior, n_iter, alpha)
    log_prior = _log(prior)
    size = max(1, _CAN_CHUNK_VALUES // max(reference.shape[0], log_rows.shape[1]))
    out = np.empty_like(log_rows)
    for start in range(0, len(log_rows), size):
        chunk = slice(start, start + size)
        out[chunk] = _can_log_chunk(
            log_rows[chunk], steps, log_weight, log_prior, alpha
        )
    return out


def _can_log_chunk(log_rows, steps, log_weight, log_prior, alpha):
    """CAN steps for a chunk of rows in the factored form of :func:`can_adjust`.

    Everything is in logs: ``log b``, ``log y`` (shape (u, m)) and
    ``log(V x ** alpha)`` (shape (u, n)); ``w`` and ``B_{d+1} z`` come from
    :func:`_log_matmul`.
    """
    original = log_rows
    log_y = 0.0  # y_0 = 1
    log_x = None  # x_0 = 1
    for d, step in enumerate(steps):
        if log_x is None:
            log_w = step.log_s  # w_0 = s_0
        else:
            log_w = _log_matmul(log_x, step.powered)
        log_rows = alpha * log_rows
        # log of the column sums of the stack: reference part and the row
        log_col = np.logaddexp(alpha * log_y + log_w, log_rows)
        log_rows = _log_normalize(_log_ratio(log_rows + log_prior, log_col))
        if d + 1 < len(steps):
            log_y = _log_ratio(alpha * log_y + step.log_s, log_col)  # z
            # log(V x ** alpha) for x = 1 / (B_{d+1} z), shape (u, n)
            log_x = _log_matmul(log_y, steps[d + 1].rows)
            gone = log_x == -np.inf  # a reference row with no mass in the stack
            log_x *= -alpha
            with np.errstate(invalid="ignore"):  # inf - inf where gone
                log_x += log_weight
            if gone.any():
                log_x[gone] = -np.inf  # keeps x = 0
    # a row whose classes all lost their mass (zero prior): keep it unchanged
    empty = np.isnan(log_rows).any(axis=1)
    log_rows[empty] = original[empty]
    return log_rows
