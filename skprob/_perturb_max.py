"""Perturb-max probability maps: ``p_i = P[argmax(mu + eps) = i]``.

Gumbel noise gives the softmax exactly; other noises (normal, logistic, any
frozen ``scipy.stats`` distribution on the real line) use a quadrature on the
noise axis. :class:`skprob.PerturbMaxTransformer` validates its input and
calls :func:`perturb_max_proba`.
"""

from numbers import Integral, Real

import numpy as np
from scipy import stats
from scipy.special import expit, log_expit, log_ndtr, logsumexp, softmax

from ._simplex import check_logit_rows
from ._sklearn import HasMethods, Interval, StrOptions, validate_params

__all__ = ["NOISE_CONSTRAINTS", "perturb_max_proba"]

# Parameters shared by perturb_max_proba and PerturbMaxTransformer.
NOISE_CONSTRAINTS = {
    "noise": [
        StrOptions({"gumbel", "normal", "logistic"}),
        HasMethods(["logcdf", "logpdf", "ppf"]),
    ],
    "scale": [Interval(Real, 0, None, closed="neither")],
    "n_nodes": [Interval(Integral, 2, None, closed="left")],
}

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


@validate_params(
    # sparse input passes to as_real_array, which says it is not supported
    {"scores": ["array-like", "sparse matrix"], **NOISE_CONSTRAINTS},
    prefer_skip_nested_validation=True,
)
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
    Only the gaps ``mu_i - mu_j``, taken as ``(scores_i - scores_j) /
    scale``, enter: they hold to rounding for scores of any size, and gaps
    beyond the double range (``scores / scale`` overflowing) give the one-hot
    limit, shared equally by ties at the maximum.
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
    ``log F`` (the two Newton searches take a few steps each), in blocks of
    bounded memory; ``benchmarks/bench_rows.py`` measures it. The quadratic
    growth in the number of classes sets the practical limit at a few hundred
    classes; beyond that, prefer Gumbel noise (softmax, ``O(n_classes)``).

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
    X = check_logit_rows(scores, name="scores")
    hooks = _check_noise(noise)
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    X = X.astype(np.float64, copy=False)
    # Only differences of scores enter, divided by scale: taken in that order,
    # they stay exact to rounding for scores of any size, scores / scale that
    # overflow give the one-hot limit (equal shares for ties at the maximum),
    # and adding a constant to a row changes nothing.
    if hooks is None:
        with np.errstate(over="ignore"):
            mu = (X - X.max(axis=1, keepdims=True)) / scale  # <= 0, 0 at the max
        return softmax(mu, axis=1).astype(dtype, copy=False)
    n, m = X.shape
    log_p = np.empty((n, m))
    # blocks of (row, class) pairs, each pair a row of n_classes differences
    pairs = max(1, _PM_BLOCK_ENTRIES // m)
    rows_per_block = max(1, pairs // m)
    with np.errstate(all="ignore"):
        for start in range(0, n, rows_per_block):
            block = X[start : start + rows_per_block]
            # D[r, i, j] = mu_i - mu_j, with the j = i factor dropped; beyond
            # _PM_SELF, F(x + D) is 0 or 1 to double precision
            D = (block[:, :, None] - block[:, None, :]) / scale
            np.clip(D, -_PM_SELF, _PM_SELF, out=D)
            D[:, np.arange(m), np.arange(m)] = _PM_SELF
            D = D.reshape(-1, m)
            out = np.empty(D.shape[0])
            for s in range(0, D.shape[0], pairs):
                out[s : s + pairs] = _pm_log_proba(
                    D[s : s + pairs], hooks, int(n_nodes)
                )
            log_p[start : start + rows_per_block] = out.reshape(-1, m)
    return softmax(log_p, axis=1).astype(dtype, copy=False)
