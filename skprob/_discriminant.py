"""The closed-form discriminant: shrinkage, pseudo-inverse and temperature.

Given the pooled statistics of :mod:`skprob._stats`, :func:`discriminant_solution`
solves the Gaussian shared-covariance model in closed form, and
:func:`cross_fitted_temperature` chooses the scalar on its logits. Plain
functions on arrays; the analytic classifiers in :mod:`skprob.linear_model`
store what they return.

The notation follows the write-up: ``mu`` class means, ``Sigma`` the pooled
covariance, ``delta`` class means minus the overall mean.
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

from ._stats import shrunk_covariance

__all__ = [
    "DEFAULT_TOL",
    "NULL_FRACTION_WARNING",
    "DiscriminantSolution",
    "cross_fitted_temperature",
    "discriminant_solution",
]

# Bounds on the temperature: beyond them the log-loss is flat to many digits.
_TEMPERATURE_RANGE = (1e-4, 1e4)

# Default relative eigenvalue cut-off of the pseudo-inverse: eigenvalues this
# small are rounding noise of an exactly singular covariance (about
# n_features * eps * max eigenvalue and a little more after a long sum), not
# data; they would give rows outside the training span arbitrary logits.
DEFAULT_TOL = 1e-10
# Subset solves (cross-fitting) drop directions where the subset has less than
# this share of the full data's variance; random probes detect them.
_SUBSET_RCOND = 1e-8
# A feature whose spread (standard deviation over all samples) is below this
# share of the largest feature's is constant for the model.
_NEGLIGIBLE_SPREAD = 1e-12
_N_PROBES = 4


@dataclass
class DiscriminantSolution:
    """Closed-form linear discriminant in the softmax form.

    ``logit_k(x) = coef[k] @ x + intercept[k]``; classes without weight get
    ``coef[k] = 0`` and ``intercept[k] = -inf`` (probability exactly zero).
    """

    coef: np.ndarray  # (n_classes, n_features)
    intercept: np.ndarray  # (n_classes,)
    covariance: np.ndarray  # (n_features, n_features), after shrinkage
    shrinkage: float
    whitening: (
        np.ndarray
    )  # (n_features, rank): Lambda^-1/2 V' of the kept part, transposed
    null_fraction: float  # share of the class-mean spread outside that range


def discriminant_solution(
    weight,
    mean,
    scatter,
    *,
    priors=None,
    shrinkage=None,
    covariance="within",
    tol=None,
    whitening=None,
):
    """Solve the analytic softmax model from pooled statistics.

    With ``Sigma`` the pooled covariance, ``m`` the overall mean and
    ``delta_k = mu_k - m``, the Gaussian shared-covariance model gives
    ``logit_k(x) = delta_k' Sigma^+ (x - m) - delta_k' Sigma^+ delta_k / 2 + log p_k``
    (the write-up's ``w_k = Sigma^-1 mu_k`` shifted by a term common to all
    classes, which the softmax ignores; centring keeps the intercepts exact for
    data far from the origin).

    The features are first standardised by their spread ``D`` (standard
    deviation over all samples, within plus between classes), so nothing below
    depends on their units; features with a spread below
    ``_NEGLIGIBLE_SPREAD`` times the largest are constant. ``Sigma^+`` is the
    pseudo-inverse of the standardised covariance ``R = D^-1 Sigma D^-1`` from
    a symmetric eigendecomposition: the whitening ``Lambda^-1/2 V'`` on the
    eigenvalues above ``tol * max(Lambda)``; a singular covariance thus gives
    the minimum-norm solution in standardised units.

    Parameters
    ----------
    weight : ndarray of shape (n_classes,)
    mean : ndarray of shape (n_classes, n_features)
    scatter : ndarray of shape (n_features, n_features)
        Pooled within-class scatter.
    priors : ndarray of shape (n_classes,), default=None
        Class priors of the decision rule; default the weighted frequencies.
    shrinkage : None, "auto" or float in [0, 1], default=None
        ``R <- (1 - a) R + a tr(R)/d I`` on the standardised covariance;
        "auto" picks ``a`` by OAS.
    covariance : {"within", "total"}, default="within"
        "total" adds the between-class scatter (the covariance of all samples).
    tol : float, default=None
        Relative eigenvalue cut-off; default ``DEFAULT_TOL`` (1e-10).
    whitening : ndarray of shape (n_features, rank), default=None
        The whitening ``V Lambda^-1/2`` of a related covariance (the full
        data's, when solving for a subset of the rows): solve by Cholesky in
        those coordinates, where this covariance is close to the identity,
        instead of by an eigendecomposition. The range of a subset's within
        scatter lies inside the full data's (every within-class difference of
        a subset is one of the full data's), so nothing is lost.

    Returns
    -------
    DiscriminantSolution
    """
    n_classes, n_features = mean.shape
    total = weight.sum()
    frequency = weight / total
    present = weight > 0
    centre = frequency @ mean
    delta = np.where(present[:, None], mean - centre, 0.0)

    within = scatter / total
    between = (delta * frequency[:, None]).T @ delta
    sigma = within + between if covariance == "total" else within
    # Standardise by each feature's spread over all samples (within plus
    # between classes): the solve, the cut-off and the shrinkage then do not
    # depend on the features' units. Features whose spread is negligible next
    # to the largest are constant for the model.
    spread = np.sqrt(np.maximum(np.diagonal(within) + np.diagonal(between), 0.0))
    significant = spread > _NEGLIGIBLE_SPREAD * spread.max(initial=0.0)
    scale = np.where(significant, spread, 1.0)
    delta_s = np.where(significant, delta / scale, 0.0)
    standard = sigma / np.outer(scale, scale)
    standard[~significant] = 0.0
    standard[:, ~significant] = 0.0
    kept = np.ix_(significant, significant)
    standard[kept], shrinkage = shrunk_covariance(standard[kept], shrinkage, total)
    sigma = standard * np.outer(scale, scale)  # the covariance used, original units

    if tol is None:
        tol = DEFAULT_TOL
    if whitening is None:
        coef, quadratic, whitening, null_fraction = _pinv_solve(standard, delta_s, tol)
        coef = coef / scale
        whitening = whitening / scale[:, None]
    else:
        coef, quadratic = _whitened_solve(sigma, delta_s * scale, whitening)
        null_fraction = 0.0

    if priors is None:
        priors = frequency
    with np.errstate(divide="ignore"):
        intercept = np.log(priors) - 0.5 * quadratic - coef @ centre
    coef[~present] = 0.0
    intercept[~present] = -np.inf
    return DiscriminantSolution(
        coef, intercept, sigma, shrinkage, whitening, null_fraction
    )


def _pinv_solve(sigma, delta, tol):
    """``Sigma^+ delta_k`` through the whitening ``Lambda^-1/2 V'`` (eigh).

    Returns the coefficients, the quadratic terms ``delta_k' Sigma^+ delta_k``,
    the whitening ``V Lambda^-1/2`` of the kept eigenpairs, and the share of
    ``delta`` in the discarded eigenvectors (the numerical null space).
    """
    eigenvalues, vectors = np.linalg.eigh(sigma)
    keep = eigenvalues > tol * max(eigenvalues[-1], 0.0)
    kept = vectors[:, keep]
    root = np.sqrt(eigenvalues[keep])
    whitened = (delta @ kept) / root
    coef = (whitened / root) @ kept.T
    quadratic = np.einsum("kr,kr->k", whitened, whitened)
    spread = np.linalg.norm(delta)
    null_fraction = 0.0
    if spread > 0 and not keep.all():
        null_fraction = float(np.linalg.norm(delta @ vectors[:, ~keep]) / spread)
    return coef, quadratic, kept / root, null_fraction


def _whitened_solve(sigma, delta, whitening):
    """``Sigma^+ delta_k`` in coordinates that whiten a related covariance.

    There ``Sigma`` is close to the identity, so a direct solve is well
    conditioned. A subset of the rows may still lack some direction: the same
    solve applied to a few fixed random probes measures ``||Sigma^-1||`` (a
    random vector has a part along every direction), and if it exceeds
    ``1 / _SUBSET_RCOND`` the pseudo-inverse drops the directions where the
    subset has less than ``_SUBSET_RCOND`` of the related covariance's variance.
    """
    reduced = whitening.T @ sigma @ whitening
    delta_w = delta @ whitening
    rank = len(reduced)
    probes = np.random.default_rng(0).standard_normal((rank, _N_PROBES))
    try:
        solved = np.linalg.solve(reduced, np.hstack([delta_w.T, probes]))
        amplification = np.linalg.norm(solved[:, -_N_PROBES:], axis=0).max()
        if not amplification < np.sqrt(rank) / _SUBSET_RCOND:
            raise np.linalg.LinAlgError("ill-conditioned")
    except np.linalg.LinAlgError:
        solved, quadratic, _, _ = _pinv_solve(reduced, delta_w, _SUBSET_RCOND)
    else:
        solved = solved[:, : len(delta)].T
        quadratic = np.einsum("kr,kr->k", solved, delta_w)
    return solved @ whitening.T, quadratic


# Warn when more than this share of the class-mean spread is dropped by the
# pseudo-inverse (rounding-level components never reach it).
NULL_FRACTION_WARNING = 1e-6


def cross_fitted_temperature(stats, whitening, fold_priors, options):
    """Temperature that minimises the cross-fitted log-loss of the closed form.

    Each fold's model is solved from the other folds' merged statistics (by
    Cholesky, in the coordinates that whiten the full covariance), and scores the
    fold's rows of the hashed sample kept in the statistics. Classes missing
    from a fold's training part are left out of its softmax, and rows of those
    classes are not scored. Returns 1.0 when no fold can be scored.
    """
    sample = stats.sample
    rows_X = sample.X.astype(np.float64, copy=False)
    fold = stats.fold_of(sample.key)
    target = np.searchsorted(stats.classes, sample.y)
    logits, labels, weights = [], [], []
    for f in range(stats.n_folds):
        rows = np.flatnonzero(fold == f)
        weight, mean, scatter = stats.pooled(exclude_fold=f)
        if len(rows) == 0 or np.count_nonzero(weight) < 2:
            continue
        model = discriminant_solution(
            weight,
            mean,
            scatter,
            priors=fold_priors(weight),
            whitening=whitening,
            **options,
        )
        scores = rows_X[rows] @ model.coef.T + model.intercept
        scored = np.isfinite(scores[np.arange(len(rows)), target[rows]])
        logits.append(scores[scored])
        labels.append(target[rows][scored])
        weights.append(sample.weight[rows][scored])
    if not logits or len(np.unique(np.concatenate(labels))) < 2:
        return 1.0
    return _optimal_temperature(
        np.concatenate(logits), np.concatenate(labels), np.concatenate(weights)
    )


def _optimal_temperature(logits, target, weight):
    """Maximum a posteriori temperature of held-out logits.

    Minimises ``sum_i w_i [logsumexp(T z_i) - T z_{i, y_i}] + (log T)^2 / 2``:
    the weighted held-out log-loss plus a standard normal prior on ``log T``
    worth one unit of weight, which keeps ``T`` finite (and near 1) when the
    held-out rows are perfectly separated. In ``u = log T`` the derivative
    ``f(u) = T sum_i w_i (E_p[z_i] - z_{i, y_i}) + u`` changes sign once; its
    root is found by Newton's method safeguarded by bisection on a bracket.
    """
    finite = np.isfinite(logits)
    values = np.where(finite, logits, 0.0)  # -inf: classes absent from a model
    # centre each row on its finite mean: same softmax, smaller moments
    values -= np.where(finite, values, 0.0).sum(1, keepdims=True) / finite.sum(
        1, keepdims=True
    )
    values = np.where(finite, values, 0.0)
    squares = values**2
    observed = values[np.arange(len(target)), target]
    shifted = np.where(finite, values, -np.inf)

    def slope(u):
        """f(u) and f'(u) = T g + T^2 sum_i w_i Var_p[z_i] + 1."""
        t = np.exp(u)
        proba = softmax(t * shifted, axis=1)
        expected = np.einsum("ik,ik->i", proba, values)
        variance = np.einsum("ik,ik->i", proba, squares) - expected**2
        gradient = t * (weight @ (expected - observed))
        return gradient + u, gradient + t * t * (weight @ variance) + 1.0

    low, high = np.log(_TEMPERATURE_RANGE)
    u = 0.0  # the plain closed form; the root lies inside the range in practice
    for _ in range(200):
        value, derivative = slope(u)
        if value == 0:  # e.g. separated rows: softmax one-hot, the prior alone
            break
        if value < 0:
            low = u
        else:
            high = u
        step = value / derivative if derivative > 0 else np.inf
        if low < u - step < high:
            u -= step
        else:  # Newton leaves the bracket: bisect it
            step = u - (low + high) / 2
            u = (low + high) / 2
        if abs(step) < 1e-13 or high - low < 1e-13:
            break
    return float(np.exp(u))
