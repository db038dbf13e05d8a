"""Closed-form distances between Gaussians with diagonal covariances.

Elementwise kernels over the coordinates, with exact zeros and infinities:
KL divergence, Bhattacharyya distance and W2 from the variances (or standard
deviations) and the difference of the means. ``_gaussian`` evaluates them for
the pairs whose covariances are both diagonal.
"""

import numpy as np

from ._gaussian_factor import (
    _degenerate,
    _degenerate_terms,
    _pair_exponent,
    _vector_exponent,
)

# --------------------------------------------------------------------------


# The kernels below own ``delta`` (a fresh difference of means) and work in
# place on it and on their other temporaries: these are the largest arrays of a
# pairwise call.


def _far_apart(v1, v2, below, above):
    """Whether some coordinate has variances ``v1 < below v2`` or ``v1 > above v2``.

    Decided from each coordinate's extreme variances over the Gaussians (the
    arrays broadcast against the pairs), not pair by pair.
    """
    d = np.shape(v1)[-1]
    v1, v2 = np.reshape(v1, (-1, d)), np.reshape(v2, (-1, d))
    low1, high1 = v1.min(axis=0, initial=np.inf), v1.max(axis=0, initial=0.0)
    low2, high2 = v2.min(axis=0, initial=np.inf), v2.max(axis=0, initial=0.0)
    return bool(np.any(low1 < below * high2) or np.any(high1 > above * low2))


_TINY = np.finfo(np.float64).tiny


def _quadratic(delta, variance, deviation):
    """``delta^2 / variance`` elementwise, using ``delta`` as scratch space.

    Where ``delta^2`` is subnormal or overflows (or the variance overflows)
    but the quotient need not, it is ``(delta / deviation)^2`` instead, with
    ``deviation = sqrt(variance)`` computed without overflow by the caller.
    """
    squared = np.square(delta)
    fine = (squared >= _TINY) & np.isfinite(squared) & np.isfinite(variance)
    np.divide(squared, variance, out=squared)
    if not fine.all():
        ratio = np.square(np.divide(delta, deviation, out=delta), out=delta)
        squared = np.where(fine, squared, ratio)
    return squared


def _kl_diagonal(v1, v2, delta, eps):
    # beyond the float range a distance is inf, as it should be: no warnings
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        degenerate = _degenerate(v1, v2, delta, eps)
        quadratic = _quadratic(delta, v2, np.sqrt(v2))
        # u - log(1 + u), u = v1/v2 - 1 from the exact difference: log1p(u)
        # keeps its digits near u = 0 (close variances)
        terms = np.subtract(v1, v2)
        terms /= v2
        log_ratio = np.log1p(terms)
        if _far_apart(v1, v2, 1e-6, 1e300):
            # variances 1e6 and more apart: 1 + u has lost six digits (it
            # rounds to 0 for v1 < eps v2, and log1p gives -inf), or u
            # overflowed; the logs of the variances themselves are exact there
            far = (terms < -0.5) | (terms == np.inf)
            log_ratio[far] = (np.log(v1) - np.log(v2) + np.zeros_like(terms))[far]
        terms -= log_ratio
        del log_ratio  # its memory serves the next temporary
        terms += quadratic
        terms = _degenerate_terms(degenerate, terms)
    return np.maximum(0.5 * terms.sum(axis=-1), 0.0)


def _bhattacharyya_diagonal(v1, v2, delta, eps):
    # beyond the float range a distance is inf, as it should be: no warnings
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        degenerate = _degenerate(v1, v2, delta, eps)
        quadratic = _quadratic(
            delta, 4.0 * (v1 + v2), 2.0 * np.hypot(np.sqrt(v1), np.sqrt(v2))
        )
        # 1/2 log(vbar / sqrt(v1 v2)) = 1/4 log1p(x^2), x = (v1 - v2) / (2 sqrt(v1 v2))
        # (square roots first: v1 v2 may underflow when each v does not)
        x = np.subtract(v1, v2)
        x /= 2.0 * np.sqrt(v1) * np.sqrt(v2)
        far = None
        if _far_apart(v1, v2, 1e-300, 1e300) or _far_apart(v2, v1, 1e-300, 1e300):
            # x**2 ~ v1 / (4 v2) overflows for variances beyond the float range
            # apart; there log1p(x**2) = 2 log|x| to the last digit
            far = np.abs(x) > 1e150
            log_x = np.log(np.abs(x[far]))
        terms = np.log1p(np.square(x, out=x), out=x)
        if far is not None:
            terms[far] = 2.0 * log_x
        terms *= 0.25
        terms += quadratic
        terms = _degenerate_terms(degenerate, terms)
    return np.maximum(terms.sum(axis=-1), 0.0)


def _wasserstein_diagonal(deviation1, deviation2, delta, eps):
    """W2 (not squared) from standard deviations: ``|delta|^2 + |s1 - s2|^2``."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        spread = np.subtract(deviation1, deviation2)
        value = np.einsum("...k,...k->...", delta, delta) + np.einsum(
            "...k,...k->...", spread, spread
        )
    # squares beyond the float range (or below its normal numbers) lose the
    # distance: those pairs again, in units of a power of two near their scale
    root = np.sqrt(value)
    redo = ~((value > 2.0**-900) & (value < 2.0**900))
    if redo.any():
        shape = value.shape + delta.shape[-1:]
        root[redo] = _scaled_norm(
            *(np.broadcast_to(a, shape)[redo] for a in (delta, spread))
        )
    return root


def _scaled_norm(*rows):
    """``sqrt(sum of squares)`` of the rows of the arrays, without over/underflow."""
    exponent = _pair_exponent(*(_vector_exponent(r) for r in rows), moderate=0)
    total = np.zeros(len(exponent))
    for r in rows:
        scaled = np.ldexp(r, -exponent[:, None])
        total += np.einsum("bk,bk->b", scaled, scaled)
    with np.errstate(over="ignore", invalid="ignore"):
        norm = np.ldexp(np.sqrt(total), exponent)
    return np.where(np.isfinite(total), norm, np.inf)
