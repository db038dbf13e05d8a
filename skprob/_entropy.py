"""Entropy normalization of rows: ``p -> p**gamma / sum(p**gamma)`` with a target
entropy, and the entropy-invariant softmax scale.

Plain functions on arrays; :class:`skprob.EntropyNormalizer` validates its
input and calls :func:`entropy_normalize`.
"""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ._simplex import check_logit_rows, check_proba_rows
from ._sklearn import Interval, StrOptions, validate_params
from ._validation import as_real_array

__all__ = ["SOLVER_CONSTRAINTS", "entropy_invariant_scale", "entropy_normalize"]

# Parameters of the solver, shared by entropy_normalize and EntropyNormalizer.
SOLVER_CONSTRAINTS = {
    "input": [StrOptions({"proba", "logits"})],
    "tol": [Interval(Real, 0, None, closed="neither")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
}

# Stands for log(0) in the solver: finite, so that 0 * log(0) stays 0 in the
# moment sums, and below -745 / exp(_S_RANGE[0]) so that exp(gamma * _LOG_ZERO)
# underflows for every gamma the solver uses.
_LOG_ZERO = -1e20
# Range of s = log(gamma) on the solver's rows u: |u| <= 745 on the support
# (log p; logits are scaled to a spread below 1), and then
# log k - H(gamma) <= (745 gamma)**2 / 8 < 1e-20 at gamma = exp(-30): the
# uniform limit to double precision. exp(705) is near the largest double,
# enough for entries that differ by one rounding step.
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


def _row_extreme(X, ufunc=np.maximum):
    """Maximum (or, with ``np.minimum``, minimum) of each row.

    A loop over columns is faster than ``X.max(axis=1)`` for narrow rows.
    """
    if X.shape[1] > 32:
        return ufunc.reduce(X, axis=1)
    top = X[:, 0].copy()
    for j in range(1, X.shape[1]):
        ufunc(top, X[:, j], out=top)
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
        ``log(p / max p)``, or ``(z - max z) / c`` with ``c`` the power of two
        that puts the row's spread ``max z - min z`` in ``[0.5, 1)``; so
        ``u <= 0`` with ``u == 0`` at the maxima; zeros of ``p`` become
        ``_LOG_ZERO``.
    log_support : ndarray of shape (n_rows,)
        ``log k`` for ``k`` non-zero entries: the entropy at ``gamma -> 0``.
    log_ties : ndarray of shape (n_rows,)
        ``log t`` for ``t`` entries tied at the maximum: the entropy at
        ``gamma -> inf``.
    log_scale : ndarray of shape (n_rows,)
        ``log c`` (0 for probabilities): ``gamma = c`` on ``u`` is the input
        row.
    """
    n, m = X.shape
    ones = np.ones(m)
    if logits:
        # softmax(gamma z) = softmax(gamma c u): gamma absorbs the scale c of
        # each row, so that rows of any spread, from subnormal to beyond the
        # largest double, are solved alike and independently
        top = _row_extreme(X)
        half_spread = 0.5 * top - 0.5 * _row_extreme(X, np.minimum)
        exponent = np.frexp(half_spread)[1] + 1  # c = 2**exponent
        u = X - top[:, None]
        shift = exponent.copy()
        wide = np.isinf(2.0 * half_spread)  # z - max z overflows: halve first
        if wide.any():
            u[wide] = 0.5 * X[wide] - 0.5 * top[wide, None]
            shift[wide] -= 1
        u = np.ldexp(u, -shift[:, None], out=u)  # exact: a power of two
        log_scale = exponent * np.log(2.0)
        log_support = np.full(n, np.log(m))
    else:
        p_max = _row_extreme(X)
        u = np.log(X)
        u -= np.log(p_max)[:, None]
        # entries below exp(_EXP_FLOOR) times the row's largest are zeros:
        # (documented): they sit at the edge of the double range
        u[u < _EXP_FLOOR] = _LOG_ZERO
        log_support = np.log((u > _LOG_ZERO) @ ones)
        log_scale = np.zeros(n)
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
    return u, log_support, log_ties, log_scale


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
    u, log_k, log_t, s_input = _log_rows(X, logits)
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
    s_input = s_input[rows]
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
    # half. Start: the input row (gamma = 1 on log p, the row's scale on
    # logits), with the spread of the logits kept between about 0.5 and 745,
    # as on log p: further out every entry but the maxima is below
    # exp(_EXP_FLOOR), where H has no slope to follow, or the row is uniform
    # to rounding.
    y_target = np.log(target - log_t) - np.log(log_k - target)
    s = np.clip(s_input, 0.0, np.log(745.0))
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
        # for every row, whatever the others do (rows are solved alone): a
        # bracket narrower than rounding, or the edge of _S_RANGE in the
        # direction of the root, cannot improve: stop there
        s_new = np.clip(s_new, *_S_RANGE)
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


@validate_params(
    {
        # sparse input passes to as_real_array, which says it is not supported
        "proba": ["array-like", "sparse matrix"],
        "target": [Real, "array-like", "sparse matrix"],
        **SOLVER_CONSTRAINTS,
        "return_n_iter": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
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
    (bisection when a step leaves it or stalls), starting from the input row
    (``gamma = 1``; on logits, with the row's spread brought into
    ``[0.5, 745]``). Entropies come from ``log(p / max p)`` and the
    log-sum-exp (no overflow, no ``0 * log 0``), so entries of 1e-300 and rows
    of 10,000 classes are handled to rounding; entries less than
    ``exp(-708)`` (about 3e-308) times their row's largest, in the input or
    the result, count as zeros (they leave the support). Each row of logits
    is solved as ``(z - max z) / c``, with ``c`` the power of two that puts
    its spread ``max z - min z`` in ``[0.5, 1)`` (``gamma`` absorbs ``c``):
    every row is solved alone, whatever its spread, from subnormal numbers to
    beyond the largest double. Typical rows take 3 to 6 evaluations, each
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
    logits = input == "logits"
    if logits:
        X = check_logit_rows(proba, name="proba")
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
            stacklevel=3,
        )
    if n_unconverged:
        warnings.warn(
            f"{n_unconverged} of {n} rows ended more than tol={tol:g} from their "
            f"target entropy after at most {max_iter} iterations; increase "
            "max_iter or tol.",
            ConvergenceWarning,
            stacklevel=3,
        )
    if return_n_iter:
        return out, n_iter
    return out


@validate_params(
    {
        "n": [Real, "array-like", "sparse matrix"],
        "d": [Real, "array-like", "sparse matrix"],
        "n_ref": [Interval(Real, 2, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
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
    scale = np.log(n) / (np.log(n_ref) * np.sqrt(d))
    return scale[()] if scale.ndim == 0 else scale
