"""Density and novelty scores of the analytic classifiers' Gaussian model.

The analytic classifiers fit a generative model: class weights ``p_k``, class
means ``mu_k`` and one shared covariance ``Sigma``. In coordinates that whiten
``Sigma`` (``z = W'(x - m)``, ``m_k = W'(mu_k - m)``) its log-density and the
usual Mahalanobis novelty scores need nothing but inner products:

* ``"density"``: ``log sum_k p_k N(x; mu_k, Sigma)``;
* ``"mahalanobis"``: ``-min_k |z - m_k|^2``, the squared Mahalanobis distance
  to the nearest class mean (Lee et al., 2018);
* ``"relative"``: ``-min_k (|z - m_k|^2 - d_0^2)``, with ``d_0`` the
  Mahalanobis distance under one Gaussian of all the data (covariance
  within plus between classes): the relative Mahalanobis distance (Ren et
  al., 2021).

Higher is more typical of the training data, as scikit-learn's outlier
detectors. Plain functions on arrays; :mod:`skprob.linear_model` stores the
model and calls :func:`novelty_scores`.
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

__all__ = ["GaussianModel", "NOVELTY_SCORES", "gaussian_model", "novelty_scores"]

NOVELTY_SCORES = ("relative", "mahalanobis", "density")
# Rows are scored in blocks of at most this many (row, class) distances.
_BLOCK_VALUES = 2**22


@dataclass
class GaussianModel:
    """The Gaussian mixture behind an analytic classifier, in whitened form.

    Attributes
    ----------
    whitening : ndarray of shape (n_features, rank)
        ``W``: ``z = W'(x - centre)`` has identity covariance on the support.
    centre : ndarray of shape (n_features,)
    means : ndarray of shape (n_classes, rank)
        Whitened class means ``m_k``.
    log_weight : ndarray of shape (n_classes,)
        Log of the class frequencies (``-inf`` for classes without weight).
    log_pdet : float
        Log pseudo-determinant of ``Sigma`` (the determinant on its support).
    total_basis : ndarray of shape (rank, q)
    total_shrink : ndarray of shape (q,)
        ``(I + sum_k p_k m_k m_k')^-1 = I - B diag(c) B'``: the inverse of the
        covariance of all the data (within plus between), whitened.
    """

    whitening: np.ndarray
    centre: np.ndarray
    means: np.ndarray
    log_weight: np.ndarray
    log_pdet: float
    total_basis: np.ndarray
    total_shrink: np.ndarray

    @property
    def rank(self):
        return self.whitening.shape[1]


def gaussian_model(solution, class_weight, class_mean):
    """The whitened mixture of a :class:`~skprob._discriminant.DiscriminantSolution`.

    Parameters
    ----------
    solution : DiscriminantSolution
    class_weight : ndarray of shape (n_classes,)
    class_mean : ndarray of shape (n_classes, n_features)

    Returns
    -------
    GaussianModel
    """
    W, centre = solution.whitening, solution.centre
    present = class_weight > 0
    frequency = class_weight / class_weight.sum()
    means = np.where(present[:, None], (class_mean - centre) @ W, 0.0)
    with np.errstate(divide="ignore"):
        log_weight = np.log(frequency)
    # the between-class scatter in whitened coordinates, B'B with B = F^1/2 M
    between = np.sqrt(frequency[present])[:, None] * means[present]
    _, singular, vt = np.linalg.svd(between, full_matrices=False)
    squared = singular**2
    return GaussianModel(
        W,
        centre,
        means,
        log_weight,
        float(solution.log_pdet),
        vt.T,
        squared / (1 + squared),
    )


def novelty_scores(model, X, kind):
    """Scores of rows under the model: higher is more typical (see the module).

    Parameters
    ----------
    model : GaussianModel
    X : ndarray of shape (n_samples, n_features)
    kind : {"relative", "mahalanobis", "density"}

    Returns
    -------
    scores : ndarray of shape (n_samples,), float64
        A row off the covariance's support (possible when it is singular and
        no shrinkage fills it) is scored by its projection onto the support
        (orthogonal in standardised units): the distance off it is not
        counted. Shrinkage gives a covariance of full rank.
    """
    n_classes = len(model.log_weight)
    present = np.isfinite(model.log_weight)
    means = model.means[present]
    means_sq = np.einsum("kr,kr->k", means, means)
    out = np.empty(len(X))
    step = max(1, _BLOCK_VALUES // max(n_classes, model.rank, 1))
    for start in range(0, len(X), step):
        rows = slice(start, start + step)
        z = (np.asarray(X[rows], dtype=np.float64) - model.centre) @ model.whitening
        z_sq = np.einsum("ir,ir->i", z, z)
        # squared Mahalanobis distances to the class means, (rows, classes)
        distance = np.maximum(z_sq[:, None] - 2.0 * (z @ means.T) + means_sq, 0.0)
        if kind == "density":
            out[rows] = (
                logsumexp(model.log_weight[present] - distance / 2, axis=1)
                - (model.rank * np.log(2 * np.pi) + model.log_pdet) / 2
            )
            continue
        nearest = distance.min(axis=1)
        if kind == "relative":
            projected = z @ model.total_basis
            background = z_sq - projected**2 @ model.total_shrink
            nearest = nearest - background
        out[rows] = -nearest
    return out
