"""The closed-form discriminant: shrinkage, pseudo-inverse and temperature.

Given the pooled statistics of :mod:`skprob._stats`, :func:`discriminant_solution`
solves the Gaussian shared-covariance model in closed form, and
:func:`held_out_logits` with :func:`temperature_evidence` choose the scalar on
its logits by exact leave-one-out cross-fitting. Plain functions on arrays;
the analytic classifiers in :mod:`skprob.linear_model` store what they return.

The notation follows the write-up: ``mu`` class means, ``Sigma`` the pooled
covariance, ``delta`` class means minus the overall mean.
"""

from dataclasses import dataclass

import numpy as np
from scipy import linalg
from scipy.special import softmax

from ._stats import shrunk_covariance

__all__ = [
    "DEFAULT_TOL",
    "NULL_FRACTION_WARNING",
    "DiscriminantSolution",
    "HeldOutRows",
    "discriminant_solution",
    "held_out_logits",
    "held_out_rows",
    "held_out_size",
    "temperature_drift",
    "temperature_evidence",
    "temperature_from_evidence",
]

# Default relative eigenvalue cut-off of the pseudo-inverse: eigenvalues this
# small are rounding noise of an exactly singular covariance (about
# n_features * eps * max eigenvalue and a little more after a long sum), not
# data; they would give rows outside the training span arbitrary logits.
DEFAULT_TOL = 1e-10
# Warn when more than this share of the class-mean spread is dropped by the
# pseudo-inverse (rounding-level components never reach it).
NULL_FRACTION_WARNING = 1e-6
# A held-out model whose covariance keeps less than this share of the full
# model's variance in some direction (a row that alone spans it) drops that
# direction (pseudo-inverse), as the full model drops its null space.
_HELD_OUT_RCOND = 1e-8
# Bounds on the temperature: beyond them the log-loss is flat to many digits.
_TEMPERATURE_RANGE = (1e-4, 1e4)
# How many rows the temperature scores. One scalar is pinned down by a few
# thousand rows (its standard error on sentence embeddings is about 2% at
# 2,048 rows); beyond that, rows cost time only. The scoring takes about
# d (d/2 + K) flops per row for d features and K classes: rows are sampled
# down to _HELD_OUT_FLOPS of it, but never below _MIN_HELD_OUT_ROWS nor
# above _MAX_HELD_OUT_ROWS; and the held-out logits, rows x classes, to
# _HELD_OUT_VALUES (but never below _FEWEST_HELD_OUT_ROWS).
_HELD_OUT_FLOPS = 2**28
_MIN_HELD_OUT_ROWS = 2048
_MAX_HELD_OUT_ROWS = 16384
_HELD_OUT_VALUES = 2**20
_FEWEST_HELD_OUT_ROWS = 256


@dataclass
class DiscriminantSolution:
    """Closed-form linear discriminant in the softmax form.

    ``logit_k(x) = coef[k] @ x + intercept[k]``; classes without weight get
    ``coef[k] = 0`` and ``intercept[k] = -inf`` (probability exactly zero).
    With ``z = whitening' (x - centre)`` and ``m_k = whitening' (mu_k - centre)``
    the logits are ``m_k' z - |m_k|^2 / 2 + log p_k``, that is
    ``-|z - m_k|^2 / 2 + log p_k`` up to a term common to all classes.
    """

    coef: np.ndarray  # (n_classes, n_features)
    intercept: np.ndarray  # (n_classes,)
    covariance: np.ndarray  # (n_features, n_features), after shrinkage
    shrinkage: float
    whitening: np.ndarray  # (n_features, rank): V Lambda^-1/2 / D of the kept part
    centre: np.ndarray  # (n_features,): weighted mean of all samples
    null_fraction: float  # share of the class-mean spread outside the kept range
    log_pdet: float  # log pseudo-determinant of covariance (on its support)
    scale: np.ndarray  # (n_features,): the spreads D (1 for constant features)
    significant: np.ndarray  # (n_features,): the features that are not constant
    cholesky: np.ndarray | None  # lower factor of the standardised covariance of
    # the significant features, when it has full rank

    def whiten(self, X):
        """``W'(x - centre)`` for the rows ``x`` of ``X``, up to a rotation.

        With a covariance of full rank, a triangular solve with its Cholesky
        factor (half the work of the product with ``whitening``) gives the
        same coordinates up to an orthogonal rotation, which no inner product
        of whitened vectors sees.
        """
        if self.cholesky is None:
            return (X - self.centre) @ self.whitening
        keep = self.significant
        rows = np.subtract(X[:, keep], self.centre[keep], dtype=np.float64)
        rows /= self.scale[keep]
        # rows.T is Fortran-ordered: LAPACK solves in place, with no copy
        return linalg.solve_triangular(
            self.cholesky, rows.T, lower=True, overwrite_b=True, check_finite=False
        ).T


def discriminant_solution(
    weight,
    mean,
    scatter,
    *,
    priors=None,
    shrinkage=None,
    covariance="within",
    tol=None,
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
    depends on their units; a feature whose spread is exactly zero (every row
    has the same value: the statistics keep such features exactly constant)
    is left out. ``Sigma^+`` is the pseudo-inverse of the standardised
    covariance ``R = D^-1 Sigma D^-1`` from a symmetric eigendecomposition: the
    whitening ``Lambda^-1/2 V'`` on the eigenvalues above
    ``tol * max(Lambda)``; a singular covariance thus gives the minimum-norm
    solution in standardised units.

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

    Returns
    -------
    DiscriminantSolution
    """
    total = weight.sum()
    frequency = weight / total
    present = weight > 0
    # the overall mean, as an exact reference plus a weighted correction: a
    # feature equal in every class keeps exactly its value (no spread)
    reference = mean[np.argmax(present)]
    centre = reference + frequency @ (mean - reference)
    delta = np.where(present[:, None], mean - centre, 0.0)

    within = scatter / total
    between = (delta * frequency[:, None]).T @ delta
    sigma = within + between if covariance == "total" else within
    # Standardise by each feature's spread over all samples (within plus
    # between classes): the solve, the cut-off and the shrinkage then do not
    # depend on the features' units.
    spread = np.sqrt(np.maximum(np.diagonal(within) + np.diagonal(between), 0.0))
    significant = spread > 0
    scale = np.where(significant, spread, 1.0)
    delta_s = np.where(significant, delta / scale, 0.0)
    standard = sigma / np.outer(scale, scale)
    standard[~significant] = 0.0
    standard[:, ~significant] = 0.0
    kept = np.ix_(significant, significant)
    standard[kept], shrinkage = shrunk_covariance(standard[kept], shrinkage, total)
    sigma = standard * np.outer(scale, scale)  # the covariance used, original units

    coef, quadratic, vectors, eigenvalues, null_fraction = _pinv_solve(
        standard, delta_s, DEFAULT_TOL if tol is None else tol
    )
    coef = coef / scale
    whitening = vectors / np.sqrt(eigenvalues) / scale[:, None]
    # log pseudo-determinant of the covariance used, A A' with
    # A = D V Lambda^1/2: log det(A'A) = sum log Lambda + log det(V'D^2 V)
    scaled = vectors * scale[:, None]
    log_pdet = np.log(eigenvalues).sum() + np.linalg.slogdet(scaled.T @ scaled)[1]

    if priors is None:
        priors = frequency
    with np.errstate(divide="ignore"):
        intercept = np.log(priors) - 0.5 * quadratic - coef @ centre
    coef[~present] = 0.0
    intercept[~present] = -np.inf
    cholesky = None
    if len(eigenvalues) == np.count_nonzero(significant):  # full rank
        try:
            cholesky = np.linalg.cholesky(standard[kept])
        except np.linalg.LinAlgError:  # near the cut-off: the eigenvectors serve
            pass
    return DiscriminantSolution(
        coef,
        intercept,
        sigma,
        shrinkage,
        whitening,
        centre,
        null_fraction,
        log_pdet,
        scale,
        significant,
        cholesky,
    )


def _pinv_solve(sigma, delta, tol):
    """``Sigma^+ delta_k`` through the whitening ``Lambda^-1/2 V'`` (eigh).

    Returns the coefficients, the quadratic terms ``delta_k' Sigma^+ delta_k``,
    the kept eigenvectors ``V`` and eigenvalues ``Lambda``, and the share of
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
    return coef, quadratic, kept, eigenvalues[keep], null_fraction


# ---------------------------------------------------------------------------
# The temperature: exact leave-one-out logits and a MAP fit of one scalar
# ---------------------------------------------------------------------------


@dataclass
class HeldOutRows:
    """Rows to score the held-out models on, with random keys.

    Lives only while a model is fitted (never stored in it). Samples of
    disjoint chunks merge by keeping the rows with the smallest keys, so a
    Dask fit draws a uniform sample of the whole data set.

    Attributes
    ----------
    X : ndarray of shape (m, n_features)
    y : ndarray of shape (m,)
        Class labels.
    weight : ndarray of shape (m,)
        Positive sample weights.
    key : ndarray of shape (m,)
        Uniform random keys.
    size : int
        Most rows kept.
    total : float
        Sum of the weights of all the rows the sample stands for.
    """

    X: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    key: np.ndarray
    size: int
    total: float

    def merge(self, *others):
        """The union of disjoint samples, cut to the smallest keys."""
        parts = [self, *others]
        union = HeldOutRows(
            np.concatenate([p.X for p in parts]),
            np.concatenate([p.y for p in parts]),
            np.concatenate([p.weight for p in parts]),
            np.concatenate([p.key for p in parts]),
            max(p.size for p in parts),
            sum(p.total for p in parts),
        )
        return union.cut(union.size)

    def cut(self, size):
        """The rows with the ``size`` smallest keys (a uniform subsample)."""
        if len(self.key) <= size:
            return self
        keep = np.sort(np.argpartition(self.key, size)[:size])
        return HeldOutRows(
            self.X[keep],
            self.y[keep],
            self.weight[keep],
            self.key[keep],
            size,
            self.total,
        )


def held_out_size(n_classes, n_features):
    """Most rows the temperature scores (see ``_HELD_OUT_FLOPS``)."""
    per_row = n_features * (n_features / 2 + n_classes)
    size = min(_MAX_HELD_OUT_ROWS, max(_MIN_HELD_OUT_ROWS, _HELD_OUT_FLOPS / per_row))
    size = min(size, max(_FEWEST_HELD_OUT_ROWS, _HELD_OUT_VALUES / max(n_classes, 1)))
    return int(size)


def held_out_rows(X, y, sample_weight, size, seed):
    """A uniform sample of at most ``size`` rows of positive weight.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    sample_weight : ndarray of shape (n_samples,) or None
    size : int
    seed : int or sequence of int
        Seed of the keys (with the chunk's number, for a Dask chunk).

    Returns
    -------
    HeldOutRows
    """
    weight = np.ones(len(y)) if sample_weight is None else sample_weight
    positive = np.flatnonzero(weight > 0)
    key = np.random.default_rng(seed).random(len(positive))
    keep = np.arange(len(positive))
    if len(positive) > size:  # the smallest keys, as HeldOutRows.cut
        keep = np.sort(np.argpartition(key, size)[:size])
    rows = positive[keep]
    return HeldOutRows(
        X[rows], y[rows], weight[rows], key[keep], size, weight[positive].sum()
    )


def _group_weight(X, y_index, weight):
    """Sum of the weights of the identical rows (same values, same class) of each row.

    A row is held out together with its copies: fitted with integer weights or
    with repeated rows, a model then sees the same held-out logits. Rows are
    grouped by a hash of their values and their class, then compared value by
    value with the first row of their group.
    """
    values = np.add(X, 0.0, dtype=np.float64)  # and -0.0 + 0.0 == +0.0
    # multilinear hash of the values' bits: integer products and sums modulo
    # 2**64 are exact in any order, so copies hash alike wherever they lie in
    # memory (a floating-point projection may round differently); odd
    # multipliers make rows that differ in one value differ in hash
    multipliers = np.random.default_rng(8791).integers(
        0, 2**63, size=X.shape[1], dtype=np.uint64
    ) * np.uint64(2) + np.uint64(1)
    with np.errstate(over="ignore"):
        key = (values.view(np.uint64) * multipliers).sum(axis=1, dtype=np.uint64)
    _, first, group = np.unique(
        np.column_stack([key, y_index.astype(np.uint64)]),
        axis=0,
        return_index=True,
        return_inverse=True,
    )
    group = group.ravel()
    leader = first[group]
    same = (values == values[leader]).all(axis=1)
    if not same.all():  # a hash collision: exact groups
        _, group = np.unique(
            np.column_stack([values, y_index]), axis=0, return_inverse=True
        )
        group = group.ravel()
    return np.bincount(group, weights=weight)[group]


def held_out_logits(
    solution,
    classes,
    class_weight,
    class_mean,
    rows,
    *,
    covariance="within",
    priors=None,
):
    """Logits of each sampled row under the model fitted without it (exactly).

    Removing a row ``x`` of class ``c`` and weight ``w`` (with its identical
    copies) changes the statistics by rank one: ``mu_c`` moves to
    ``mu_c - w (x - mu_c) / (N_c - w)`` and the scatter loses
    ``a v v'`` with ``v = x - mu_c``, ``a = w N_c / (N_c - w)`` (``v = x - m``,
    ``a = w n / (n - w)`` for the total covariance). In coordinates that whiten
    the full model's covariance, the held-out covariance is
    ``(n / n') (I - beta u u')``, ``u`` the whitened ``v``,
    ``beta = (1 - shrinkage) a / n``, so by Sherman-Morrison its inverse is
    ``(n' / n) (I + beta u u' / (1 - beta |u|^2))``: the logits
    ``-Q_k / 2 + log p_k`` of every held-out model follow from the whitened
    row, the whitened class means and inner products, with no solve. With
    shrinkage the held-out models keep the full model's intensity and target.
    A row that alone spans a direction (``1 - beta |u|^2`` below
    ``_HELD_OUT_RCOND``) is scored by the pseudo-inverse without that
    direction; a row whose class has no other weight cannot be scored.

    Parameters
    ----------
    solution : DiscriminantSolution
        The model fitted on all the rows.
    classes : ndarray of shape (n_classes,)
        Sorted class labels.
    class_weight : ndarray of shape (n_classes,)
    class_mean : ndarray of shape (n_classes, n_features)
        The statistics it was solved from.
    rows : HeldOutRows
    covariance : {"within", "total"}, default="within"
    priors : ndarray of shape (n_classes,) or None
        Fixed priors of the decision rule; None: the held-out class frequencies.

    Returns
    -------
    logits : ndarray of shape (n_scored, n_classes)
        ``-inf`` for classes without weight.
    target : ndarray of shape (n_scored,)
        Class index of each scored row.
    weight : ndarray of shape (n_scored,)
        Their weights.
    scored : ndarray of shape (n_scored,)
        Their positions in ``rows``.
    """
    classes_present = class_weight > 0
    n = class_weight.sum()
    y_index = np.searchsorted(classes, rows.y)
    X = rows.X
    removed = _group_weight(X, y_index, rows.weight)
    remaining = class_weight[y_index] - removed
    scored = np.flatnonzero(remaining > 0)
    if len(scored) < len(X):
        X, y_index, removed = X[scored], y_index[scored], removed[scored]
    row_weight = rows.weight[scored]
    n_rows, n_classes = len(y_index), len(class_weight)
    if n_rows == 0:
        return np.zeros((0, n_classes)), y_index, row_weight, scored
    means = solution.whiten(class_mean)  # whitened class means m_k, (K, r)
    means_sq = np.einsum("kr,kr->k", means, means)
    z = solution.whiten(X)  # whitened rows, (m, r)
    z_sq = np.einsum("ir,ir->i", z, z)
    z_dot_m = z @ means.T  # (m, K)
    g_sq = z_sq[:, None] - 2.0 * z_dot_m + means_sq  # |z - m_k|^2
    rows_index = np.arange(n_rows)
    N_c = class_weight[y_index]
    if covariance == "within":
        u = z - means[y_index]
        a = removed * N_c / (N_c - removed)
        u_dot_g = np.einsum("ir,ir->i", u, z)[:, None] - u @ means.T
        u_sq = g_sq[rows_index, y_index]
    else:
        a = removed * n / (n - removed)
        u_dot_g = z_sq[:, None] - z_dot_m
        u_sq = z_sq
    # the held-out mean of the row's own class: z - m_c' = rho (z - m_c)
    rho = N_c / (N_c - removed)
    g_sq[rows_index, y_index] *= rho**2
    u_dot_g[rows_index, y_index] *= rho
    beta = (1.0 - solution.shrinkage) * a / n
    leverage = beta * u_sq
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = np.where(
            1.0 - leverage > _HELD_OUT_RCOND,
            beta / (1.0 - leverage),
            np.where(u_sq > 0, -1.0 / u_sq, 0.0),  # project the direction out
        )
    n_held = n - removed
    quadratic = (n_held / n)[:, None] * (g_sq + gamma[:, None] * u_dot_g**2)
    if priors is None:
        held_weight = np.broadcast_to(class_weight, (n_rows, n_classes)).copy()
        held_weight[rows_index, y_index] -= removed
        with np.errstate(divide="ignore"):
            log_prior = np.log(held_weight) - np.log(n_held)[:, None]
    else:
        with np.errstate(divide="ignore"):
            log_prior = np.broadcast_to(np.log(priors), (n_rows, n_classes))
    logits = log_prior - 0.5 * quadratic
    logits[:, ~classes_present] = -np.inf
    return logits, y_index, row_weight, scored


def temperature_evidence(logits, target, weight, scale=1.0):
    """What held-out logits say about the temperature, as two mergeable numbers.

    Minimises ``f(u) = scale * sum_i w_i [logsumexp(T z_i) - T z_{i, y_i}]
    + u^2 / 2`` over ``u = log T``: the held-out log-loss (standing for
    ``scale`` times as many rows) plus a standard normal prior on ``log T``
    worth one unit of weight, which keeps ``T`` finite on separable data. The
    data term is then summarised by its quadratic expansion at the optimum
    ``u_t``: curvature ``h`` and slope ``g = -u_t``.

    Returns
    -------
    evidence : ndarray of shape (2,)
        ``(h, h u_t - g)``. Evidence of disjoint sets of rows adds up, and
        :func:`temperature_from_evidence` turns a sum back into a temperature
        (for one set, exactly ``exp(u_t)``).
    """
    if len(target) == 0:
        return np.zeros(2)
    u, curvature = _optimal_log_temperature(logits, target, scale * weight)
    return np.array([curvature, curvature * u + u])


def temperature_drift(before, after, target, weight, scale=1.0):
    """How much ``log T`` moved between two models, measured on the same rows.

    ``before`` and ``after`` are the logits of the same held-out rows under an
    earlier model and the current one; the difference of their MAP ``log T``
    (see :func:`temperature_evidence`) is the drift. Evidence measured on the
    earlier model, shifted by it, stands for the current model: paired on the
    same rows, the drift is far less noisy than either temperature.
    """
    usable = np.isfinite(before[np.arange(len(target)), target])
    if not usable.any():
        return 0.0
    rows = (target[usable], scale * weight[usable])
    u_before, _ = _optimal_log_temperature(before[usable], *rows)
    u_after, _ = _optimal_log_temperature(after[usable], *rows)
    return u_after - u_before


def temperature_from_evidence(evidence):
    """``T = exp(u*)``, ``u* = (sum h u_t - g) / (sum h + 1)`` (with the prior)."""
    curvature, moment = evidence
    u = moment / (curvature + 1.0)
    return float(np.exp(np.clip(u, *np.log(_TEMPERATURE_RANGE))))


def _optimal_log_temperature(logits, target, weight):
    """The MAP ``u = log T`` of held-out logits, and the data term's curvature there.

    In ``u`` the derivative ``f'(u) = T sum_i w_i (E_p[z_i] - z_{i, y_i}) + u``
    changes sign once; its root is found by Newton's method safeguarded by
    bisection on a bracket.
    """
    finite = np.isfinite(logits)
    values = np.where(finite, logits, 0.0)  # -inf: classes absent from a model
    # centre each row on its finite mean: same softmax, smaller moments
    values -= values.sum(1, keepdims=True) / finite.sum(1, keepdims=True)
    values = np.where(finite, values, 0.0)
    squares = values**2
    observed = values[np.arange(len(target)), target]
    shifted = np.where(finite, values, -np.inf)

    def slope(u):
        """f'(u) and f''(u) = T g + T^2 sum_i w_i Var_p[z_i] + 1."""
        t = np.exp(u)
        proba = softmax(t * shifted, axis=1)
        expected = np.einsum("ik,ik->i", proba, values)
        variance = np.maximum(np.einsum("ik,ik->i", proba, squares) - expected**2, 0)
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
        if abs(step) < 1e-13:  # converged (also below the resolution of u)
            u -= step
            break
        if low < u - step < high:
            u -= step
        else:  # Newton leaves the bracket: bisect it
            step = u - (low + high) / 2
            u = (low + high) / 2
        if high - low < 1e-13:
            break
    _, derivative = slope(u)
    return float(u), float(max(derivative - 1.0, 0.0))
