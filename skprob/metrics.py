"""Distances between Gaussians: the closed-form functions and GaussianDistance."""

from functools import partial
from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _dask
from ._gaussian import (
    gaussian_bhattacharyya_distance,
    gaussian_hellinger_distance,
    gaussian_kl_divergence,
    gaussian_wasserstein_distance,
    wasserstein_from_rows,
)
from ._sklearn import Interval, StrOptions, _check_sample_weight, _fit_context
from ._stats import class_statistics, merge_statistics, shrunk_covariance

__all__ = [
    "GaussianDistance",
    "gaussian_bhattacharyya_distance",
    "gaussian_hellinger_distance",
    "gaussian_kl_divergence",
    "gaussian_wasserstein_distance",
]

_METRICS = ("kl", "reverse_kl", "jeffreys", "bhattacharyya", "hellinger", "wasserstein")


class GaussianDistance(BaseEstimator):
    """Distance between the Gaussian fitted to reference data and new data.

    ``fit`` estimates a reference Gaussian (and, given ``y``, one Gaussian per
    class with the matrix of distances between them); ``distance(X)`` fits a
    Gaussian to ``X`` the same way and returns its distance to the reference:
    an FID-style comparison of two sets of embeddings, or a dataset-shift
    score. Every distance is in closed form.

    Parameters
    ----------
    metric : {"wasserstein", "kl", "reverse_kl", "jeffreys", "bhattacharyya", \
"hellinger"}, default="wasserstein"
        ``"wasserstein"``: 2-Wasserstein (Fréchet) distance ``W_2`` (FID is
        its square). ``"kl"``: ``KL(reference || X)``; ``"reverse_kl"``:
        ``KL(X || reference)``; ``"jeffreys"``: their sum. ``"bhattacharyya"``
        and ``"hellinger"`` (in ``[0, 1]``). In ``class_distances_`` the
        reference is the row class.
    covariance_type : {"full", "diag"}, default="full"
        ``"full"`` covariance matrices, or ``"diag"``: variances only (the
        Gaussians' coordinates taken as independent; O(d) per distance, and
        O(n d) to fit, except with ``shrinkage="auto"``, whose OAS formula
        needs the whole covariance).
    shrinkage : None, "auto" or float in [0, 1], default=None
        Regularises covariances estimated from few samples:
        ``S <- (1 - a) S + a tr(S)/d I`` (diagonal: the variances move toward
        their mean). ``"auto"`` picks ``a`` by Oracle Approximating Shrinkage
        from each covariance and its weight sum. Singular covariances (fewer
        samples than dimensions, constant features) make KL, Jeffreys and
        Bhattacharyya infinite unless the two Gaussians share their support;
        any positive shrinkage makes them finite.

    Attributes
    ----------
    location_ : ndarray of shape (n_features,)
        Weighted mean of the training data.
    covariance_ : ndarray of shape (n_features, n_features) or (n_features,)
        Its covariance (maximum likelihood, after shrinkage), or the variances
        when ``covariance_type="diag"``.
    shrinkage_ : float
        Shrinkage intensity used for ``covariance_``.
    classes_ : ndarray of shape (n_classes,)
        Class labels (only when fitted with ``y``).
    means_ : ndarray of shape (n_classes, n_features)
        Class means (only with ``y``).
    covariances_ : ndarray of shape (n_classes, n_features, n_features) or \
(n_classes, n_features)
        Class covariances (only with ``y``).
    class_distances_ : ndarray of shape (n_classes, n_classes)
        ``metric`` from the Gaussian of class ``i`` to that of class ``j``
        (only with ``y``); zero on the diagonal, symmetric except for the KL
        divergences.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined when ``X`` has string column names; later calls then select
        the columns by name.

    See Also
    --------
    skprob.gaussian_wasserstein_distance, skprob.gaussian_kl_divergence,
    skprob.gaussian_bhattacharyya_distance, skprob.gaussian_hellinger_distance :
        the functions behind every metric, on means and covariances.

    Notes
    -----
    The Gaussians are estimated from mergeable statistics (weight sum, mean and
    scatter, merged exactly across chunks), so they do not depend on how the
    data are split. The covariance is the maximum-likelihood (biased) estimate
    ``sum_i w_i (x_i - mu)(x_i - mu)' / sum_i w_i``: it is the Gaussian that the
    likelihood-based distances (KL, Bhattacharyya) are about, it is what the
    OAS shrinkage formula assumes, an integer weight equals repeating a row and
    scaling all weights changes nothing, and one sample gives a valid (zero)
    covariance. FID implementations use the unbiased ``ddof=1`` covariance,
    larger by ``n / (n - 1)``: a relative difference of ``1/n`` in each
    covariance (negligible at the usual n = 50,000); for their exact numbers
    call :func:`skprob.gaussian_wasserstein_distance` with ``np.cov`` matrices.

    The statistics accumulate in float64 block by block (a float32 ``X`` is
    not copied as a whole), and the fitted Gaussians are float64 whatever the
    input dtype: the distances need the precision (a covariance rounded to
    float32 loses its small eigenvalues).

    Tags: neither a classifier nor a transformer (no ``predict`` or
    ``transform``); ``y`` is optional (class labels when given), and
    :meth:`score` makes it usable in model selection.

    When a Gaussian comes from fewer rows than dimensions (and no shrinkage),
    its covariance is ``F'F`` for the ``n x d`` matrix ``F`` of centred rows
    scaled by ``sqrt(w_i / sum w)``. The Wasserstein trace term
    ``tr((S_1^1/2 S_2 S_1^1/2)^1/2)`` is then the nuclear norm of ``F_1 F_2'``
    (an SVD of an ``n_1 x n_2`` matrix), or ``tr((F_1 S_2 F_1')^1/2)`` when only
    one side is low-rank. ``fit`` keeps a root ``R = s V'`` of the reference
    covariance with as few rows as its rank (from an SVD of ``F``; ``R'R =
    F'F``), not the training rows, and :meth:`distance` uses these routes.

    To load a fitted model with :func:`skops.io.load` without allowing
    arbitrary code, trust exactly ``skprob.metrics.GaussianDistance``.

    Examples
    --------
    >>> import numpy as np
    >>> from skprob import GaussianDistance
    >>> X = np.random.RandomState(0).normal(size=(500, 3))
    >>> gd = GaussianDistance().fit(X)
    >>> gd.distance(X + [3.0, 0.0, 0.0]) > 2.9
    True
    """

    _parameter_constraints: dict = {
        "metric": [StrOptions(set(_METRICS))],
        "covariance_type": [StrOptions({"full", "diag"})],
        "shrinkage": [Interval(Real, 0, 1, closed="both"), StrOptions({"auto"}), None],
    }

    def __init__(self, metric="wasserstein", *, covariance_type="full", shrinkage=None):
        self.metric = metric
        self.covariance_type = covariance_type
        self.shrinkage = shrinkage

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Fit the reference Gaussian, and one Gaussian per class if ``y`` is given.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Reference data (float32 is not copied to float64 as a whole).
        y : array-like of shape (n_samples,), default=None
            Class labels; each class gets its own Gaussian and
            ``class_distances_`` holds the distances between them.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; an integer weight equals repeating the row.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        if _dask.is_dask_collection(X):
            _dask.check_dask_features(self, X, reset=True)
            parts = _dask_parts(
                X, y, sample_weight, self.n_features_in_, self._diagonal
            )
            X = None  # the low-rank route needs the rows in memory
        else:
            if y is None:
                X = validate_data(self, X, dtype=_dask.FLOAT_DTYPES)
            else:
                X, y = validate_data(self, X, y, dtype=_dask.FLOAT_DTYPES)
                check_classification_targets(y)
            sample_weight = _check_weight(sample_weight, X)
            parts = _class_parts(X, y, sample_weight, self._diagonal)
        if y is None:
            stats = _check_positive(parts[None], "the data")
        else:
            classes = np.array(sorted(parts), dtype=np.asarray(list(parts)).dtype)
            gaussians = [
                self._gaussian(_check_positive(parts[c], f"class {c!r}"))
                for c in classes
            ]
            self.classes_ = classes
            self.means_ = np.stack([mean for mean, _, _ in gaussians])
            self.covariances_ = np.stack([cov for _, cov, _ in gaussians])
            self.class_distances_ = self._pairwise(self.means_, self.covariances_)
            # the reference: all classes merged (within + between scatter)
            stats = merge_statistics(*(parts[c] for c in classes))
        self.location_, self.covariance_, self.shrinkage_ = self._gaussian(stats)
        rows = None if X is None else self._sample_root(X, sample_weight, stats)
        self._reference_root = None if rows is None else _thin_root(rows)
        return self

    def distance(self, X, sample_weight=None):
        """Distance from the reference Gaussian to the Gaussian fitted to ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New data; a DataFrame's columns are matched by name to those seen
            in fit.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        distance : float
            ``metric`` between the reference and ``X`` (``KL(reference || X)``
            for ``"kl"``).
        """
        check_is_fitted(self)
        if _dask.is_dask_collection(X):
            _dask.check_dask_features(self, X, reset=False)
            parts = _dask_parts(
                X, None, sample_weight, self.n_features_in_, self._diagonal
            )
            stats = _check_positive(parts[None], "X")
            rows = None
        else:
            X = validate_data(
                self,
                self._align_columns(X),
                reset=False,
                dtype=_dask.FLOAT_DTYPES,
            )
            sample_weight = _check_weight(sample_weight, X)
            parts = _class_parts(X, None, sample_weight, self._diagonal)
            stats = _check_positive(parts[None], "X")
            rows = self._sample_root(X, sample_weight, stats)
        mean, cov, _ = self._gaussian(stats)
        return self._between(
            self.location_, self.covariance_, mean, cov, self._reference_root, rows
        )

    def score(self, X, y=None, sample_weight=None):
        """Negative :meth:`distance`, so that greater is better.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored; present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        return -self.distance(X, sample_weight=sample_weight)

    @property
    def _diagonal(self):
        """Whether the diagonal of the scatter is enough (``O(n d)`` statistics).

        OAS ("auto") needs the whole covariance, even for a diagonal model.
        """
        return self.covariance_type == "diag" and not isinstance(self.shrinkage, str)

    def _gaussian(self, stats):
        """Mean, covariance (after shrinkage) and shrinkage of one Gaussian."""
        weight, mean, scatter = stats.weight, stats.mean, stats.scatter
        total = float(weight.sum())
        covariance, shrinkage = shrunk_covariance(
            scatter / total,
            self.shrinkage,
            total,  # maximum likelihood
        )
        if self.covariance_type == "diag" and covariance.ndim == 2:
            covariance = np.diagonal(covariance).copy()  # OAS needed the full one
        return mean[0], covariance, shrinkage

    def _sample_root(self, X, sample_weight, stats):
        """Centred, scaled rows ``F`` (``S = F'F``) when fewer than dimensions."""
        if self.covariance_type != "full" or self.shrinkage not in (None, 0):
            return None
        if sample_weight is None:
            w = np.ones(len(X))
        else:
            positive = sample_weight > 0
            if np.count_nonzero(positive) >= X.shape[1]:
                return None
            X, w = X[positive], sample_weight[positive]
        if len(X) >= X.shape[1]:
            return None
        weight, mean = stats.weight, stats.mean
        return (X - mean[0]) * np.sqrt(w / weight.sum())[:, None]

    def _between(self, mean1, cov1, mean2, cov2, rows1=None, rows2=None):
        """``metric`` from Gaussian 1 (the reference) to Gaussian 2."""
        metric = self.metric
        if metric == "wasserstein":
            if cov1.ndim == 2 and (rows1 is not None or rows2 is not None):
                return wasserstein_from_rows(mean1, cov1, rows1, mean2, cov2, rows2)
            return float(gaussian_wasserstein_distance(mean1, cov1, mean2, cov2))
        if metric == "kl":
            return float(gaussian_kl_divergence(mean1, cov1, mean2, cov2))
        if metric == "reverse_kl":
            return float(gaussian_kl_divergence(mean2, cov2, mean1, cov1))
        if metric == "jeffreys":
            return float(
                gaussian_kl_divergence(mean1, cov1, mean2, cov2)
                + gaussian_kl_divergence(mean2, cov2, mean1, cov1)
            )
        if metric == "bhattacharyya":
            return float(gaussian_bhattacharyya_distance(mean1, cov1, mean2, cov2))
        return float(gaussian_hellinger_distance(mean1, cov1, mean2, cov2))

    def _pairwise(self, means, covariances):
        """``class_distances_``: every pair of class Gaussians in one call."""
        first = (means[:, None], covariances[:, None])
        second = (means[None], covariances[None])
        metric = self.metric
        if metric in ("kl", "reverse_kl", "jeffreys"):
            kl = gaussian_kl_divergence(*first, *second)
            distances = {"kl": kl, "reverse_kl": kl.T, "jeffreys": kl + kl.T}[metric]
        else:
            function = {
                "bhattacharyya": gaussian_bhattacharyya_distance,
                "hellinger": gaussian_hellinger_distance,
                "wasserstein": gaussian_wasserstein_distance,
            }[metric]
            distances = function(*first, *second)
            distances = (distances + distances.T) / 2  # symmetric to the last bit
        np.fill_diagonal(distances, 0.0)
        return distances

    def _align_columns(self, X):
        """Select a DataFrame's columns by the names seen in fit."""
        names = getattr(self, "feature_names_in_", None)
        columns = getattr(X, "columns", None)
        if names is None or columns is None:
            return X
        columns = list(columns)
        if not all(isinstance(c, str) for c in columns):
            return X  # validate_data explains mixed or non-string names
        known, given = set(names), set(columns)
        missing = [c for c in names if c not in given]
        extra = [c for c in columns if c not in known]
        if missing or extra:
            problems = []
            if missing:
                problems.append(f"missing columns seen in fit: {missing}")
            if extra:
                problems.append(f"columns not seen in fit: {extra}")
            raise ValueError(
                f"X must have the columns seen in fit; it has {'; '.join(problems)}."
            )
        if columns != list(names):
            X = X[list(names)]  # same columns in another order: align by name
        return X


def _thin_root(rows):
    """``R`` with ``R'R = F'F`` and no more rows than the rank: ``s V'`` of an SVD.

    The fitted model keeps this root of the reference covariance, not the
    centred training rows ``F`` themselves (``R = U' F``).
    """
    _, singular, vt = np.linalg.svd(rows, full_matrices=False)
    keep = singular > singular.max(initial=0.0) * len(singular) * np.finfo(float).eps
    return singular[keep, None] * vt[keep]


def _check_weight(sample_weight, X):
    if sample_weight is None:
        return None
    return _check_sample_weight(
        sample_weight, X, dtype=np.float64, ensure_non_negative=True
    )


def _class_parts(X, y, sample_weight, diagonal=False):
    """Statistics of each class's rows, as single-class statistics by label.

    With ``y=None`` all rows form one part, under the key ``None``. Parts of
    disjoint chunks merge with :func:`_merge_parts`. ``diagonal`` keeps only
    the diagonal of each scatter.
    """
    if y is None:
        return {None: _single_group_statistics(X, sample_weight, diagonal)}
    classes, y_index = np.unique(y, return_inverse=True)
    parts = {}
    for k, label in enumerate(classes):
        rows = y_index == k
        weight = None if sample_weight is None else sample_weight[rows]
        parts[label] = _single_group_statistics(X[rows], weight, diagonal)
    return parts


def _single_group_statistics(X, sample_weight, diagonal):
    """Statistics of all the rows of ``X`` as one group (one Gaussian)."""
    return class_statistics(
        X,
        np.zeros(len(X), dtype=np.intp),
        classes=np.zeros(1, dtype=np.intp),
        sample_weight=sample_weight,
        diagonal=diagonal,
    )


def _merge_parts(*chunks):
    """Merge per-class statistics of disjoint chunks, class by class."""
    merged = {}
    for chunk in chunks:
        for label, part in chunk.items():
            merged[label] = (
                part if label not in merged else merge_statistics(merged[label], part)
            )
    return merged


def _check_positive(stats, name):
    if not stats.weight.sum() > 0:
        raise ValueError(
            f"The sample weights of {name} sum to zero: a Gaussian needs rows "
            "with positive weight."
        )
    return stats


def _chunk_parts(X, y, sample_weight, *, n_features, diagonal):
    """:func:`_class_parts` of one chunk, after validating it (Dask workers)."""
    X, y, sample_weight = _dask.check_chunk(X, y, sample_weight, n_features=n_features)
    return _class_parts(X, y, sample_weight, diagonal)


def _dask_parts(X, y, sample_weight, n_features, diagonal):
    """Per-class statistics of Dask input: per chunk, merged in a tree."""
    task = partial(_chunk_parts, n_features=n_features, diagonal=diagonal)
    chunks = _dask.map_chunks(task, X, y, sample_weight)
    return _dask.tree_reduce(chunks, _merge_parts).compute()
