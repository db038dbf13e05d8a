"""Numeric core on rows of probabilities (points of the probability simplex).

Plain functions on arrays; the estimators in :mod:`skprob.calibration` and
:mod:`skprob.preprocessing` validate their input and call these.
"""

import warnings

import numpy as np
from scipy import stats
from scipy.special import entr, expit, log_expit, log_ndtr, logsumexp, softmax
from sklearn.exceptions import ConvergenceWarning

from ._validation import as_real_array, check_prior

__all__ = [
    "check_proba_rows",
    "entropy_invariant_scale",
    "entropy_normalize",
    "perturb_max_proba",
    "row_entropy",
]


def check_proba_rows(
    proba, *, name="proba", normalize=False, atol=1e-6, check_sums=True
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
    atol : float, default=1e-6
        Tolerance on the row sums when ``normalize=False``.
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
    proba = as_real_array(proba, name)
    if proba.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_classes); got "
            f"shape {proba.shape}."
        )
    if proba.shape[1] == 0:
        raise ValueError(f"{name} has no columns; it needs at least one class.")
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
# Entropy normalization: p -> p**gamma / sum(p**gamma) with a target entropy
# ---------------------------------------------------------------------------

# Stands for log(0) in the solver: finite, so that 0 * log(0) stays 0 in the
# moment sums, and below -745 / exp(_S_RANGE[0]) so that exp(gamma * _LOG_ZERO)
# underflows for every gamma the solver uses.
_LOG_ZERO = -1e20
# Range of s = log(gamma). Rows are scaled so that |log p| <= 745 on the
# support, and then log k - H(gamma) <= (745 gamma)**2 / 8 < 1e-20 at
# gamma = exp(-30): the uniform limit to double precision. exp(705) is near the
# largest double, enough for entries that differ by one rounding step.
_S_RANGE = (-30.0, 705.0)
# Largest move of s in one step (a factor of e**6 on gamma).
_S_STEP = 6.0
# exp() of arguments below this (results below the smallest normal double) is
# slow in numpy's vectorised exp; they are clipped here and flushed to zero in
# the output.
_EXP_FLOOR = -708.0
# Rows of a chunk are solved together; about 2**16 entries keep the working
# arrays in cache.
_CHUNK_ENTRIES = 2**16


def _row_max(X):
    """Maximum of each row; a loop over columns is faster for narrow rows."""
    if X.shape[1] > 32:
        return X.max(axis=1)
    top = X[:, 0].copy()
    for j in range(1, X.shape[1]):
        np.maximum(top, X[:, j], out=top)
    return top


def _log_rows(X, logits):
    """Shifted logarithms of a chunk of rows, with support and tie counts.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_classes), float64
        Non-negative rows (``logits=False``) or finite logits.
    logits : bool

    Returns
    -------
    u : ndarray of shape (n_rows, n_classes)
        ``log(p / max p)`` (or ``z - max z``, scaled down by a power of two
        when it spans more than 745), so ``u <= 0`` with ``u == 0`` at the
        maxima; zeros of ``p`` become ``_LOG_ZERO``.
    log_support : ndarray of shape (n_rows,)
        ``log k`` for ``k`` non-zero entries: the entropy at ``gamma -> 0``.
    log_ties : ndarray of shape (n_rows,)
        ``log t`` for ``t`` entries tied at the maximum: the entropy at
        ``gamma -> inf``.
    """
    n, m = X.shape
    ones = np.ones(m)
    if logits:
        u = X - _row_max(X)[:, None]
        spread = -u.min()
        if spread > 745:
            # the same rows (gamma absorbs the factor), inside _S_RANGE
            u *= 2.0 ** -np.ceil(np.log2(spread / 745))
        log_support = np.full(n, np.log(m))
    else:
        p_max = _row_max(X)
        u = np.log(X)
        u -= np.log(p_max)[:, None]
        # entries below exp(_EXP_FLOOR) times the row's largest are zeros:
        # (documented): they sit at the edge of the double range
        u[u < _EXP_FLOOR] = _LOG_ZERO
        log_support = np.log((u > _LOG_ZERO) @ ones)
    ties = (u == 0) @ ones
    if not logits and (ties > 1).any():
        # log(p) - log(p_max) rounds to 0 for an entry a few rounding steps
        # below the maximum (0.01 and 0.010000000000000002): their ratio,
        # correctly rounded, stays below 1 and keeps them apart
        rows = np.flatnonzero(ties > 1)
        near = u[rows] == 0
        ratio = X[rows] / p_max[rows, None]
        u[rows] = np.where(near, np.log(np.where(near, ratio, 1.0)), u[rows])
        ties[rows] = (u[rows] == 0) @ ones
    log_ties = np.log(ties)
    return u, log_support, log_ties


def _entropy_moments(a, u, gamma, work):
    """Entropy of ``a / sum(a)`` and the moments of ``u`` that its derivatives need.

    ``a = exp(gamma * u)`` row by row. With ``q = a / Z``, ``mu = E_q[u]``,
    ``V = Var_q[u]`` and ``K = E_q[(u - mu)**3]``: ``H = log Z - gamma mu``,
    ``dH/ds = -gamma**2 V`` and ``d2H/ds2 = -2 gamma**2 V - gamma**3 K`` for
    ``s = log gamma`` (since ``d E_q[f] / d gamma = Cov_q(f, u)``).

    Parameters
    ----------
    a, u : ndarrays of shape (n_rows, n_classes)
    gamma : ndarray of shape (n_rows,)
    work : ndarray of shape (n_rows, n_classes)
        Scratch space.

    Returns
    -------
    H, V, K, Z : ndarrays of shape (n_rows,)
    """
    ones = np.ones(a.shape[1])
    Z = a @ ones
    au = np.multiply(a, u, out=work)
    S1 = au @ ones
    au *= u
    S2 = au @ ones
    au *= u
    S3 = au @ ones
    inv_Z = 1.0 / Z
    mu = S1 * inv_Z
    E2 = S2 * inv_Z
    # moments about the maximum (u = 0): no cancellation when q concentrates
    V = E2 - mu * mu
    K = S3 * inv_Z - mu * (3.0 * E2 - 2.0 * mu * mu)
    H = np.log(Z) - gamma * mu
    return H, V, K, Z


def _solve_chunk(X, target, logits, tol, max_iter, out):
    """Entropy-normalize one chunk of rows into ``out``; see `entropy_normalize`.

    Returns
    -------
    n_iter : ndarray of shape (n_rows,)
        Entropy evaluations per row (0 for rows answered by a limit).
    n_unreachable, n_unconverged : int
    """
    n, m = X.shape
    u, log_k, log_t = _log_rows(X, logits)
    n_iter = np.zeros(n, dtype=np.intp)

    # Limits: gamma -> 0 gives the uniform row on the support (entropy log k),
    # gamma -> inf the uniform row on the ties at the maximum (entropy log t).
    to_support = target >= log_k - tol
    to_ties = ~to_support & (target <= log_t + tol)
    unreachable = (target > log_k + tol) | (target < log_t - tol)
    if to_support.any():
        mask = u[to_support] > _LOG_ZERO
        out[to_support] = mask / np.exp(log_k[to_support])[:, None]
    if to_ties.any():
        mask = u[to_ties] == 0
        out[to_ties] = mask / np.exp(log_t[to_ties])[:, None]

    rows = np.flatnonzero(~(to_support | to_ties))
    if rows.size == 0:
        return n_iter, int(unreachable.sum()), 0
    if rows.size < n:
        u = u[rows]
    target, log_k, log_t = target[rows], log_k[rows], log_t[rows]
    gu = np.empty_like(u)  # gamma * u, clipped at _EXP_FLOOR
    a = np.empty_like(u)  # exp(gu); all normal doubles, no slow subnormals
    work = np.empty_like(u)
    # the zeros of p: exp(_EXP_FLOOR) times _LOG_ZERO is not negligible in the
    # moments, so those entries are multiplied by 0
    support = (u > _LOG_ZERO).astype(np.float64) if (u == _LOG_ZERO).any() else None

    # Newton-type steps in s = log gamma on the logit of the entropy's position
    # between its limits, y = log((H - log t) / (log k - H)), with the local
    # model y(s + d) = y + y' (exp(kappa d) - 1) / kappa, kappa = y'' / y'.
    # The model has both asymptotic forms of y: linear in s for small gamma
    # (log k - H ~ gamma**2, kappa = 0) and linear in gamma for large gamma
    # (H - log t ~ gamma exp(-gamma gap), kappa = 1). Each step stays inside a
    # bracket [s_lo, s_hi] of the root, moves at most _S_STEP, and becomes a
    # bisection when it leaves the bracket or |H - target| fell by less than
    # half. Start: gamma = 1, the input row.
    y_target = np.log(target - log_t) - np.log(log_k - target)
    s = np.zeros(rows.size)
    s_lo = np.full(rows.size, -np.inf)
    s_hi = np.full(rows.size, np.inf)
    f_prev = np.full(rows.size, np.inf)
    finished = np.zeros(rows.size, dtype=bool)
    unconverged = 0
    for it in range(1, max_iter + 1):
        r = rows.size
        gamma = np.exp(s)
        np.multiply(u, gamma[:, None], out=gu[:r])
        np.maximum(gu[:r], _EXP_FLOOR, out=gu[:r])
        a = np.exp(gu[:r], out=a[:r])
        if support is not None:
            a *= support
        H, V, K, Z = _entropy_moments(a, u, gamma, work[:r])
        f = H - target
        abs_f = np.abs(f)
        stop = abs_f <= tol
        high = f > 0  # entropy too high: gamma must grow
        np.copyto(s_lo, s, where=high)
        np.copyto(s_hi, s, where=~high)
        # y' = -gamma**2 V (A + B) / (A B) and kappa = y'' / y', A = H - log t,
        # B = log k - H (the algebra folds w = 1/A + 1/B into both)
        g2V = gamma * gamma * V
        A = H - log_t
        B = log_k - H
        AB = A * B
        newton = (np.log(A / B) - y_target) * AB / (g2V * (A + B))
        kappa = 2.0 + gamma * K / V - g2V * (A - B) / AB
        x = kappa * newton
        step = np.where(np.abs(x) > 1e-8, newton * np.log1p(x) / x, newton)
        s_new = s + np.clip(step, -_S_STEP, _S_STEP)
        inside = (s_new > s_lo) & (s_new < s_hi)  # False for NaN
        slow = abs_f > 0.5 * f_prev
        if not inside.all() or slow.any():
            bracketed = np.isfinite(s_lo) & np.isfinite(s_hi)
            fallback = np.where(
                bracketed,
                0.5 * (s_lo + s_hi),
                np.where(high, s + _S_STEP, s - _S_STEP),
            )
            s_new = np.where(inside & ~(slow & bracketed), s_new, fallback)
            s_new = np.clip(s_new, *_S_RANGE)
            # a bracket narrower than rounding, or the edge of _S_RANGE in the
            # direction of the root, cannot improve: stop there
            stop |= (s_new == s) | (s_hi - s_lo <= 1e-15 * np.maximum(np.abs(s), 1))
        f_prev = abs_f
        if it == max_iter:
            stop[:] = True
        stop &= ~finished
        if stop.any():
            done = np.flatnonzero(stop)
            q = a[done] / Z[done][:, None]
            q[gu[done] <= _EXP_FLOOR] = 0.0  # underflow, and the zeros of p
            out[rows[done]] = q
            n_iter[rows[done]] = it
            unconverged += int(np.count_nonzero(abs_f[done] > tol))
            finished |= stop
            # finished rows stay (frozen) until a quarter of the rows are
            # finished: dropping them copies the working arrays
            n_finished = np.count_nonzero(finished)
            if n_finished == r:
                break
            if 4 * n_finished >= r:
                keep = np.flatnonzero(~finished)
                rows, s_lo, s_hi = rows[keep], s_lo[keep], s_hi[keep]
                target, log_k, log_t = target[keep], log_k[keep], log_t[keep]
                y_target, f_prev = y_target[keep], f_prev[keep]
                u = u[keep]
                a = a[keep]  # only a buffer from here on
                if support is not None:
                    support = support[keep]
                s, s_new, finished = s[keep], s_new[keep], finished[keep]
        s = np.where(finished, s, s_new)
    return n_iter, int(unreachable.sum()), unconverged


def _check_logit_rows(scores, *, name="scores"):
    """Validate rows of real scores (logits); say which row is wrong."""
    scores = as_real_array(scores, name)
    if scores.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_classes); got "
            f"shape {scores.shape}."
        )
    if scores.shape[1] == 0:
        raise ValueError(f"{name} has no columns; it needs at least one class.")
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
    if not np.isfinite(scores).all():
        row = int(np.argmax(~np.isfinite(scores).all(axis=1)))
        raise ValueError(f"{name} contains NaN or infinity (first in row {row}).")
    return scores


def entropy_normalize(
    proba, target, *, input="proba", tol=1e-10, max_iter=100, return_n_iter=False
):
    """Raise each row to the power that gives it a target entropy.

    Row by row, finds ``gamma >= 0`` such that ``q = p**gamma / sum(p**gamma)``
    (or ``q = softmax(gamma * z)`` for logits) has Shannon entropy ``target``.
    The map keeps the order of the entries of each row and keeps zeros zero.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Rows of non-negative numbers (``input="proba"``; each row is used up to
        scale, so counts work) or of finite logits (``input="logits"``).
    target : float or array-like of shape (n_samples,)
        Target entropy in nats, one for all rows or one per row.
    input : {"proba", "logits"}, default="proba"
        What the rows hold.
    tol : float, default=1e-10
        Absolute tolerance on the entropy of every reachable row.
    max_iter : int, default=100
        Largest number of entropy evaluations per row. Typical rows need 3 to
        6; the bound only matters for targets closer than ``tol`` can express.
    return_n_iter : bool, default=False
        Also return the number of entropy evaluations used for each row.

    Returns
    -------
    proba_out : ndarray of shape (n_samples, n_classes)
        Rows summing to one, of the input's floating dtype (float32 stays
        float32: the solve runs in float64 and the result is rounded).
    n_iter : ndarray of shape (n_samples,) of int
        Only with ``return_n_iter=True``: entropy evaluations per row, 0 for
        rows answered by a limit (see Notes).

    Warns
    -----
    UserWarning
        Once per call, with a count, when some rows cannot reach their target.
    ConvergenceWarning
        When some reachable rows end more than ``tol`` from their target
        (``max_iter`` too small, or ``tol`` below what float64 resolves).

    See Also
    --------
    EntropyNormalizer : The transformer form, with a learned target.
    row_entropy : Entropy of each row.

    Notes
    -----
    With ``u = log p`` on the support (``k`` non-zero entries, ``t`` of them
    tied at the maximum), ``H(gamma)`` decreases from ``log k`` at
    ``gamma = 0`` to ``log t`` as ``gamma -> inf``, with
    ``dH/dgamma = -gamma Var_q[u] < 0``, so each target in ``(log t, log k)``
    has exactly one solution. Targets outside that range (above
    ``log(support size)``, one-hot or uniform rows, below what ties allow) are
    unreachable: those rows become the nearest limit, the uniform row on the
    support or on the ties at the maximum, and one warning gives their count.
    Targets within ``tol`` of a limit also get the limit row.

    All rows are solved at once, in cache-sized blocks, by a second-order
    Newton-type iteration in ``s = log gamma`` on
    ``y = log((H - log t) / (log k - H))``: the step solves the local model
    ``y(s + d) = y + y' (exp(kappa d) - 1) / kappa``, ``kappa = y'' / y'``,
    which is exact for both asymptotic regimes of ``y`` (linear in ``s`` as
    ``gamma -> 0``, linear in ``gamma`` as ``gamma -> inf``). The derivatives
    need the second and third central moments of ``log p`` under ``q``, from
    the same pass as ``H``. A bracket on ``s`` safeguards every step
    (bisection when a step leaves it or stalls), starting from ``gamma = 1``,
    the input row. Entropies come from ``log(p / max p)`` and the log-sum-exp
    (no overflow, no ``0 * log 0``), so entries of 1e-300 and rows of 10,000
    classes are handled to rounding; entries less than ``exp(-708)`` (about
    3e-308) times their row's largest, in the input or the result, count as
    zeros (they leave the support). Typical rows take 3 to 6 evaluations, each
    about half a softmax pass; ``benchmarks/bench_rows.py`` compares the time
    with one softmax over the same array.

    Examples
    --------
    >>> import numpy as np
    >>> from skprob import entropy_normalize
    >>> P = np.array([[0.7, 0.2, 0.1, 0.0], [0.5, 0.3, 0.1, 0.1]])
    >>> Q = entropy_normalize(P, 0.5)
    >>> print(np.round(-(Q * np.log(np.where(Q > 0, Q, 1))).sum(axis=1), 9), Q[0, 3])
    [0.5 0.5] 0.0
    """
    if input not in ("proba", "logits"):
        raise ValueError(f'input must be "proba" or "logits"; got {input!r}.')
    if not tol > 0:
        raise ValueError(f"tol must be positive; got {tol!r}.")
    if int(max_iter) != max_iter or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer; got {max_iter!r}.")
    logits = input == "logits"
    if logits:
        X = _check_logit_rows(proba, name="proba")
    else:
        X = check_proba_rows(proba, name="proba", check_sums=False)
    n = X.shape[0]
    target = as_real_array(target, "target").astype(np.float64, copy=False)
    if target.ndim > 1 or (target.ndim == 1 and target.shape[0] != n):
        raise ValueError(
            f"target must be a number or one per row ({n}); got shape {target.shape}."
        )
    if not (np.isfinite(target).all() and (target >= 0).all()):
        raise ValueError("target entropies must be finite and non-negative.")
    target = np.broadcast_to(target, (n,))
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    out = np.empty(X.shape, dtype=dtype)
    n_iter = np.zeros(n, dtype=np.intp)
    n_unreachable = n_unconverged = 0
    step = max(1, _CHUNK_ENTRIES // max(X.shape[1], 1))
    with np.errstate(all="ignore"):
        for start in range(0, n, step):
            chunk = slice(start, start + step)
            # float32 rows are solved in a float64 buffer, then rounded
            buffer = out[chunk] if dtype == np.float64 else np.empty(X[chunk].shape)
            n_iter[chunk], bad, slow = _solve_chunk(
                X[chunk].astype(np.float64, copy=False),
                target[chunk],
                logits,
                tol,
                int(max_iter),
                buffer,
            )
            if dtype != np.float64:
                out[chunk] = buffer
            n_unreachable += bad
            n_unconverged += slow
    if n_unreachable:
        warnings.warn(
            f"{n_unreachable} of {n} rows cannot reach their target entropy "
            "(above log(number of non-zero entries), or below log(number of "
            "entries tied at the maximum)); they were set to the nearest "
            "reachable row.",
            UserWarning,
            stacklevel=2,
        )
    if n_unconverged:
        warnings.warn(
            f"{n_unconverged} of {n} rows ended more than tol={tol:g} from their "
            f"target entropy after at most {max_iter} iterations; increase "
            "max_iter or tol.",
            ConvergenceWarning,
            stacklevel=2,
        )
    if return_n_iter:
        return out, n_iter
    return out


# ---------------------------------------------------------------------------
# Perturb-max probability maps: p_i = P[argmax(mu + eps) = i]
# ---------------------------------------------------------------------------

# Largest working array of the quadrature (float64 entries, about 2 MiB).
_PM_BLOCK_ENTRIES = 2**18
# Stands for mu_i - mu_i: F(x + _PM_SELF) == 1 drops the factor j = i.
_PM_SELF = 1e300
# The quadrature covers the interval where the integrand is above
# exp(-_PM_DROP) (about 1e-16) times its peak.
_PM_DROP = 37.0


class _Noise:
    """Log-cdf, log-density and its derivatives for one noise distribution.

    ``step`` is a length on the noise axis (about one standard deviation)
    that bounds the Newton moves of the mode search; ``start`` is where that
    search begins.
    """

    def __init__(self, logcdf, logpdf, dlogpdf, d2logpdf, step=1.0, start=0.0):
        self.logcdf = logcdf
        self.logpdf = logpdf
        self.dlogpdf = dlogpdf
        self.d2logpdf = d2logpdf
        self.step = step
        self.start = start


def _normal_noise():
    half_log_2pi = 0.5 * np.log(2 * np.pi)
    return _Noise(
        logcdf=log_ndtr,
        logpdf=lambda y: -0.5 * y * y - half_log_2pi,
        dlogpdf=lambda y: -y,
        d2logpdf=lambda y: np.full_like(y, -1.0),
    )


def _logistic_noise():
    return _Noise(
        logcdf=log_expit,
        logpdf=lambda y: log_expit(y) + log_expit(-y),
        dlogpdf=lambda y: -np.tanh(0.5 * y),
        d2logpdf=lambda y: -2.0 * expit(y) * expit(-y),
        step=1.8,
    )


def _frozen_noise(dist):
    """Hooks for a frozen scipy.stats distribution (derivatives by differences)."""
    iqr = float(dist.ppf(0.75) - dist.ppf(0.25))
    if not (np.isfinite(iqr) and iqr > 0):
        raise ValueError(f"noise {dist!r} has no finite, positive spread.")
    h1, h2 = 1e-5 * iqr, 1e-3 * iqr

    def dlogpdf(y):
        g = (dist.logpdf(y + h1) - dist.logpdf(y - h1)) / (2 * h1)
        return np.where(np.isfinite(g), g, 0.0)  # far tails: the factor is 0

    def d2logpdf(y):
        lp = dist.logpdf
        return (lp(y + h2) - 2 * lp(y) + lp(y - h2)) / (h2 * h2)

    return _Noise(
        logcdf=dist.logcdf,
        logpdf=dist.logpdf,
        dlogpdf=dlogpdf,
        d2logpdf=d2logpdf,
        step=iqr / 1.349,
        start=float(dist.median()),
    )


def _check_noise(noise):
    """The `_Noise` of a name or a frozen scipy.stats distribution; None for Gumbel."""
    if isinstance(noise, str):
        makers = {"normal": _normal_noise, "logistic": _logistic_noise}
        if noise == "gumbel":
            return None
        if noise not in makers:
            raise ValueError(
                'noise must be "gumbel", "normal", "logistic" or a frozen '
                f"scipy.stats continuous distribution; got {noise!r}."
            )
        return makers[noise]()
    dist = getattr(noise, "dist", None)
    if not isinstance(dist, stats.rv_continuous) or not hasattr(noise, "logcdf"):
        raise ValueError(
            'noise must be "gumbel", "normal", "logistic" or a frozen '
            f"scipy.stats continuous distribution such as scipy.stats.t(5); got "
            f"{noise!r}."
        )
    low, high = noise.support()
    if np.isfinite(low) or np.isfinite(high):
        raise ValueError(
            f"noise must have a density on the whole real line; {noise!r} is "
            f"supported on [{low}, {high}]."
        )
    return _frozen_noise(noise)


def _pm_modes(D, noise, max_iter=60):
    """Mode and curvature of ``x -> log f(x) + sum_j log F(x + D_j)``, per row of D.

    Safeguarded Newton on the derivative, which decreases for log-concave
    noise: ``L' = (log f)'(x) + sum_j r_j`` with ``r = f / F`` at
    ``x + D_j``, and ``L'' = (log f)''(x) + sum_j ((log f)' r - r**2)``.

    Returns
    -------
    x, curvature : ndarrays of shape (n_pairs,)
        The mode and ``-L''`` there (positive; a fallback of
        ``1 / noise.step**2`` where it is not).
    """
    n = D.shape[0]
    x = np.full(n, noise.start)
    curv = np.full(n, 1.0 / noise.step**2)
    lo = np.full(n, -np.inf)
    hi = np.full(n, np.inf)
    active = np.arange(n)
    for _ in range(max_iter):
        xa = x[active]
        Y = D[active] + xa[:, None]
        r = np.exp(noise.logpdf(Y) - noise.logcdf(Y))
        L1 = noise.dlogpdf(xa) + r.sum(axis=1)
        L2 = noise.d2logpdf(xa) + (noise.dlogpdf(Y) * r - r * r).sum(axis=1)
        up = L1 > 0  # the mode lies to the right
        lo[active] = np.where(up, xa, lo[active])
        hi[active] = np.where(up, hi[active], xa)
        step = np.where(L2 < 0, -L1 / L2, np.where(up, noise.step, -noise.step))
        step = np.clip(step, -16 * noise.step, 16 * noise.step)
        new = xa + step
        la, ha = lo[active], hi[active]
        outside = ~((new > la) & (new < ha))  # also NaN
        both = np.isfinite(la) & np.isfinite(ha)
        new = np.where(outside & both, 0.5 * (la + ha), new)
        good = L2 < 0
        curv[active] = np.where(good, -L2, curv[active])
        x[active] = new
        done = good & (np.abs(step) * np.sqrt(np.where(good, -L2, 1.0)) < 1e-7)
        done |= both & (ha - la <= 1e-13 * np.maximum(1, np.abs(xa)))
        active = active[~done]
        if active.size == 0:
            break
    return x, curv


def _pm_log_integrand(D, x, noise, slope=False):
    """``L(x) = log f(x) + sum_j log F(x + D_j)`` (and ``L'(x)``), per row of D."""
    Y = D + x[:, None]
    log_F = noise.logcdf(Y)
    L = noise.logpdf(x) + log_F.sum(axis=1)
    if not slope:
        return L
    r = np.exp(noise.logpdf(Y) - log_F)
    return L, noise.dlogpdf(x) + r.sum(axis=1)


def _pm_level_points(D, noise, x0, sigma, max_iter=40):
    """Where ``L`` has fallen by ``_PM_DROP`` below its mode, left and right.

    Newton on ``L(x) - level`` from the Gaussian guess ``x0 -+ sigma
    sqrt(2 _PM_DROP)``, kept on its side of the mode (``L`` is concave for
    log-concave noise, so Newton overshoots at most once). Accuracy of a
    fraction of ``sigma`` is enough: the points only bound the quadrature.

    Returns
    -------
    a, b : ndarrays of shape (n_pairs,)
    """
    n = D.shape[0]
    D2 = np.concatenate([D, D])
    centre = np.concatenate([x0, x0])
    width = np.concatenate([sigma, sigma])
    side = np.repeat([-1.0, 1.0], n)
    level = _pm_log_integrand(D, x0, noise)
    level = np.concatenate([level, level]) - _PM_DROP
    x = centre + side * width * np.sqrt(2 * _PM_DROP)
    active = np.arange(2 * n)
    for _ in range(max_iter):
        xa, ca = x[active], centre[active]
        L, L1 = _pm_log_integrand(D2[active], xa, noise, slope=True)
        new = xa - (L - level[active]) / L1
        wrong = ~(side[active] * (new - ca) > 0)  # also NaN
        new = np.where(wrong, 0.5 * (xa + ca), new)
        x[active] = new
        done = ~wrong & (np.abs(new - xa) < 1e-2 * width[active])
        active = active[~done]
        if active.size == 0:
            break
    return x[:n], x[n:]


def _pm_log_proba(D, noise, n_nodes):
    """Log of the perturb-max integral for each row of D (one (row, class) pair).

    ``p = int exp(L(x)) dx`` with ``L(x) = log f(x) + sum_j log F(x + D_j)``,
    by the trapezoidal rule in ``v`` for ``x = x0 + sigma sinh(v)`` (``x0``
    the mode of ``L``, ``sigma = (-L''(x0))**-1/2``) over the interval where
    ``L >= L(x0) - _PM_DROP``, summed in log space. The trapezoidal rule
    converges geometrically for integrands analytic in a strip and decaying
    at both ends; the sinh map keeps the number of nodes moderate for wide
    (logistic) and heavy (polynomial) tails.
    """
    x0, curv = _pm_modes(D, noise)
    sigma = 1.0 / np.sqrt(curv)
    a, b = _pm_level_points(D, noise, x0, sigma)
    v_a = np.arcsinh((a - x0) / sigma)
    v_b = np.arcsinh((b - x0) / sigma)
    h = (v_b - v_a) / (n_nodes - 1)
    log_weight = np.log(sigma * h)
    L = np.empty((D.shape[0], n_nodes))
    for k in range(n_nodes):
        v = v_a + k * h
        x = x0 + sigma * np.sinh(v)
        L[:, k] = _pm_log_integrand(D, x, noise) + np.log(np.cosh(v))
    # trapezoid: half weight at both ends (where L is ~1e-16 of its peak)
    L[:, [0, -1]] -= np.log(2)
    return log_weight + logsumexp(L, axis=1)


def perturb_max_proba(scores, noise="gumbel", *, scale=1.0, n_nodes=48):
    """Probability that each class wins the argmax of noisy scores.

    ``p_i = P[argmax_j (scores_j + scale * eps_j) = i]`` for i.i.d. noise
    ``eps`` with cdf ``F`` and density ``f``.

    Parameters
    ----------
    scores : array-like of shape (n_samples, n_classes)
        Finite real scores (logits, utilities).
    noise : {"gumbel", "normal", "logistic"} or frozen distribution, \
default="gumbel"
        The noise: a name or a frozen continuous `scipy.stats` distribution
        with a density on the whole real line (for example
        ``scipy.stats.t(5)``); its location does not matter. "gumbel" is the
        exact softmax; "normal" gives the independent multinomial probit.
    scale : float, default=1.0
        Multiplies the noise (a temperature): ``p`` depends on
        ``scores / scale``.
    n_nodes : int, default=48
        Quadrature nodes per class (not used for "gumbel"); see Notes for
        the error.

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes)
        Rows summing to one, in the input's floating dtype.

    See Also
    --------
    PerturbMaxTransformer : The transformer form.
    scipy.special.softmax : The Gumbel case.

    Notes
    -----
    With ``mu = scores / scale``,
    ``p_i = int_0^1 prod_{j != i} F(mu_i - mu_j + F^-1(t)) dt
    = int f(x) prod_{j != i} F(x + mu_i - mu_j) dx``.
    For Gumbel noise this is ``softmax(mu)`` [1]_. Otherwise each class's
    integral is computed on the noise axis, where the log-integrand ``L_i(x)``
    is concave for log-concave noise (normal, logistic, Gumbel): a
    safeguarded Newton search finds its mode and curvature, a second one the
    points where ``L_i`` has fallen by 37 (a factor of about 1e-16), and the
    trapezoidal rule in ``v`` with ``x = mode + width * sinh(v)`` covers that
    interval with ``n_nodes`` nodes, summed in log space. Each ``p_i`` thus
    keeps a small *relative* error, also for tail probabilities of 1e-20 or
    1e-200 that a rule on ``t in [0, 1]`` (equally spaced or Gauss-Legendre)
    cannot resolve; the rows are finally normalised to sum to one.

    Error with the default 48 nodes (relative, per ``p_i``, against adaptive
    ``scipy.integrate.quad``): normal noise, below 1e-12 for any spread of
    the scores (the integrand is close to Gaussian; 32 nodes give about
    1e-10); logistic noise, whose integrand for a class far below the top
    is a plateau of length ``gap / scale`` with exponential sides, about
    1e-11 for score gaps up to 5, 4e-9 at 10, 1e-5 at 20 and 3e-5 at 30
    (96 nodes: 3e-15, 4e-11, 8e-10); Gumbel given as a frozen distribution,
    about 1e-12. Heavy-tailed noise (Student t) is not log-concave and the
    rule fits it less well: for ``t(5)`` about 2e-10 when the scores span
    one noise scale, 6e-7 at three, but up to 8e-2 on classes of
    probability 1e-6 at a spread of ten; check such cases with a larger
    ``n_nodes``. ``tests/test_simplex.py`` checks these against quad and
    against Monte Carlo with 2e6 draws.

    The cost is ``O(n_samples n_classes**2 (n_nodes + ~15))`` evaluations of
    ``log F`` (the two Newton searches take a few steps each), about 40 ns
    each for the normal: about 0.2 ms per row at 10 classes, 20 ms at 100
    and 2 s at 1000 (measured by ``benchmarks/bench_rows.py`` on a shared
    2-core machine), in blocks of bounded memory. The practical limit is a
    few hundred classes; beyond that, prefer Gumbel noise (softmax,
    ``O(n_classes)``).

    References
    ----------
    .. [1] E. J. Gumbel (1954), "Statistical theory of extreme values and some
       practical applications"; D. McFadden (1974), conditional logit.

    Examples
    --------
    >>> import numpy as np
    >>> from skprob import perturb_max_proba
    >>> scores = np.array([[2.0, 1.0, 0.0]])
    >>> perturb_max_proba(scores, "normal").round(4)
    array([[0.7288, 0.2241, 0.0472]])
    """
    X = _check_logit_rows(scores, name="scores")
    if not (np.isscalar(scale) and np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number; got {scale!r}.")
    if int(n_nodes) != n_nodes or n_nodes < 2:
        raise ValueError(f"n_nodes must be an integer >= 2; got {n_nodes!r}.")
    hooks = _check_noise(noise)
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    mu = X.astype(np.float64) / scale
    if hooks is None:
        return softmax(mu, axis=1).astype(dtype, copy=False)
    n, m = mu.shape
    log_p = np.empty((n, m))
    # blocks of (row, class) pairs, each pair a row of n_classes differences
    pairs = max(1, _PM_BLOCK_ENTRIES // m)
    rows_per_block = max(1, pairs // m)
    with np.errstate(all="ignore"):
        for start in range(0, n, rows_per_block):
            block = mu[start : start + rows_per_block]
            # D[r, i, j] = mu_i - mu_j, with the j = i factor dropped
            D = block[:, :, None] - block[:, None, :]
            D[:, np.arange(m), np.arange(m)] = _PM_SELF
            D = D.reshape(-1, m)
            out = np.empty(D.shape[0])
            for s in range(0, D.shape[0], pairs):
                out[s : s + pairs] = _pm_log_proba(
                    D[s : s + pairs], hooks, int(n_nodes)
                )
            log_p[start : start + rows_per_block] = out.reshape(-1, m)
    return softmax(log_p, axis=1).astype(dtype, copy=False)


def entropy_invariant_scale(n, d, n_ref=512):
    """Softmax scale for ``n`` dot products of ``d``-dimensional vectors.

    ``log(n) / (log(n_ref) * sqrt(d))``: the usual attention scale
    ``1 / sqrt(d)`` at ``n = n_ref``, growing like ``log n`` so that the
    entropy of ``softmax(scale * q.k_j)`` over ``n`` items stays roughly the
    same as ``n`` changes.

    Parameters
    ----------
    n : int or array-like of int
        Number of items the softmax runs over (``n >= 1``).
    d : int or array-like of int
        Dimension of the vectors (``d >= 1``).
    n_ref : int, default=512
        The number of items at which the scale is ``1 / sqrt(d)``.

    Returns
    -------
    scale : float or ndarray
        Broadcast over ``n`` and ``d``.

    See Also
    --------
    entropy_normalize : Reach an exact entropy row by row instead.

    Notes
    -----
    Derivation: if one item's score beats the typical score by ``Delta``,
    the softmax weights are ``1 : ~(n - 1) exp(-scale Delta)``, so the
    entropy depends on ``n`` only through ``n exp(-scale Delta)``; keeping it
    fixed needs ``scale Delta = log n + const``, i.e. ``scale`` proportional
    to ``log n``. With ``Delta`` proportional to ``sqrt(d)`` after the usual
    ``1 / sqrt(d)`` (dot products of vectors with unit-variance entries), the
    constant that gives ``1 / sqrt(d)`` at ``n_ref`` is ``1 / log(n_ref)``.

    Examples
    --------
    >>> from skprob import entropy_invariant_scale
    >>> print(entropy_invariant_scale(512, 64), entropy_invariant_scale(4096, 64))
    0.125 0.16666666666666666
    """
    n = as_real_array(n, "n").astype(np.float64, copy=False)
    d = as_real_array(d, "d").astype(np.float64, copy=False)
    if not (np.isfinite(n).all() and np.isfinite(d).all()):
        # log(inf) / sqrt(inf) is NaN; an infinite number of items has no scale
        raise ValueError(
            f"n and d must be finite (no NaN or infinity); got n={n!r}, d={d!r}."
        )
    if not (np.all(n >= 1) and np.all(d >= 1)):
        raise ValueError(f"n and d must be at least 1; got n={n!r}, d={d!r}.")
    if not (np.isfinite(n_ref) and n_ref >= 2):
        raise ValueError(f"n_ref must be a finite number >= 2; got {n_ref!r}.")
    scale = np.log(n) / (np.log(n_ref) * np.sqrt(d))
    return scale[()] if scale.ndim == 0 else scale


# ---------------------------------------------------------------------------
# CAN: classification with alternating normalization
# ---------------------------------------------------------------------------

__all__ += ["topk_uncertainty", "can_adjust"]

# Uncertain rows are corrected in chunks so that each (chunk, n_reference)
# temporary holds at most this many float64 values (32 MiB).
_CAN_CHUNK_VALUES = 2**22


def _check_can_rows(proba, name):
    """Rows of probabilities as float64 (validated; a float32 sum may be off 1e-4)."""
    proba = as_real_array(proba, name)
    atol = 1e-6 if proba.dtype.itemsize >= 8 else 1e-4
    proba = check_proba_rows(proba, name=name, atol=atol)
    return proba.astype(np.float64, copy=False)


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
    prior = check_prior(prior, n_classes)
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
        _log(rows[uncertain]), reference, prior, n_iter, alpha, reference_weight
    )
    adjusted[uncertain] = np.exp(log_rows)
    return adjusted


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
    steps = _reference_iterates(reference, weight, prior, n_iter, alpha)
    log_prior = _log(prior)
    size = max(1, _CAN_CHUNK_VALUES // max(reference.shape[0], log_rows.shape[1]))
    out = np.empty_like(log_rows)
    for start in range(0, len(log_rows), size):
        chunk = slice(start, start + size)
        out[chunk] = _can_log_chunk(log_rows[chunk], steps, log_prior, alpha)
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
