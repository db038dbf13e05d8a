"""Mergeable per-class sufficient statistics, and covariances from them.

Everything the analytic classifiers and :class:`skprob.GaussianDistance`
learn from data passes through :class:`ClassStatistics`: per class a weight
sum and a mean, plus the pooled within-class scatter matrix. Statistics of
disjoint chunks merge exactly, so ``fit``, ``partial_fit`` and the
out-of-core paths all reduce to "statistics per chunk, merge, solve".

The notation inside this module follows the write-up: ``mu`` class means,
``Sigma`` the pooled covariance, ``W`` weight sums.
"""

from dataclasses import dataclass

import numpy as np
from scipy import sparse

__all__ = [
    "ClassStatistics",
    "class_statistics",
    "merge_statistics",
    "oas_shrinkage",
    "shrunk_covariance",
]

# Blocks of the statistics pass: about 16 MiB of float64 each, at least
# _BLOCK_ROWS rows (each syrk update is a large BLAS call), and with many
# classes larger, up to _MAX_BLOCK_VALUES. No block holds a copy of all of X.
_BLOCK_VALUES = 2**21
_MAX_BLOCK_VALUES = 2**24
_BLOCK_ROWS = 1024
# Up to this many classes, class sums use a dense one-hot product; beyond it a
# sparse one.
_DENSE_GROUPS = 64


@dataclass
class ClassStatistics:
    """Per-class sufficient statistics of a weighted sample.

    Attributes
    ----------
    classes : ndarray of shape (n_classes,)
        Sorted class labels. A class may have zero weight (declared but unseen).
    weight : ndarray of shape (n_classes,)
        Sum of sample weights per class.
    mean : ndarray of shape (n_classes, n_features)
        Weighted class means (zero where the weight is zero).
    scatter : ndarray of shape (n_features, n_features) or (n_features,)
        Pooled within-class scatter ``sum_i w_i (x_i - mu_{y_i})
        (x_i - mu_{y_i})'``, or only its diagonal (the statistics of a
        diagonal-covariance model: ``O(n d)`` work instead of ``O(n d^2)``).
    """

    classes: np.ndarray
    weight: np.ndarray
    mean: np.ndarray
    scatter: np.ndarray

    @property
    def n_features(self):
        return self.mean.shape[1]

    @property
    def diagonal(self):
        """Whether only the diagonal of the scatter is kept."""
        return self.scatter.ndim == 1

    def with_classes(self, classes):
        """The same statistics over a superset of classes (new classes: weight 0)."""
        if np.array_equal(classes, self.classes):
            return self
        index = np.searchsorted(classes, self.classes)
        weight = np.zeros(len(classes))
        mean = np.zeros((len(classes), self.n_features))
        weight[index] = self.weight
        mean[index] = self.mean
        return ClassStatistics(classes, weight, mean, self.scatter)


def combine_moments(weight, mean, scatter):
    """Merge weighted moments of several disjoint parts (axis 0).

    This is the pairwise update of Chan, Golub & LeVeque (1979) applied to all
    parts at once: with ``W = sum_j W_j`` and ``mu = sum_j W_j mu_j / W``,
    ``S = sum_j S_j + sum_j W_j (mu_j - mu)(mu_j - mu)'``. It only ever forms
    differences of means, never ``X'X - W mu mu'``, so data with a large offset
    lose no precision.

    Parameters
    ----------
    weight : ndarray of shape (n_parts, n_classes)
    mean : ndarray of shape (n_parts, n_classes, n_features)
    scatter : ndarray of shape (n_parts, n_features, n_features)
        Within-class scatter summed over classes, per part; or of shape
        ``(n_parts, n_features)``, its diagonal only.

    Returns
    -------
    weight, mean, scatter : ndarrays without the leading axis
    """
    total = weight.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        merged = np.einsum("jk,jkd->kd", weight, mean) / total[:, None]
    merged[total == 0] = 0.0
    # where every part has the same mean (a feature constant in a class), keep
    # it exactly: a weighted average of equal values may round
    present = weight > 0
    first = mean[np.argmax(present, axis=0), np.arange(weight.shape[1])]
    equal = ((mean == first) | ~present[:, :, None]).all(axis=0)
    merged = np.where(equal, first, merged)
    # sum_j sum_k W_jk (mu_jk - mu_k)(mu_jk - mu_k)', over the classes present
    spread = (mean - merged)[present] * np.sqrt(weight[present])[:, None]
    with np.errstate(over="ignore", invalid="ignore"):  # see _check_in_range
        if scatter.ndim == 2:  # diagonal scatter
            between = np.einsum("jd,jd->d", spread, spread)
        else:
            between = spread.T @ spread
        return total, merged, scatter.sum(axis=0) + between


def merge_statistics(first, *others):
    """Merge the statistics of disjoint chunks into one.

    Classes are aligned by label (the union of all classes is kept), so chunks
    that miss some classes merge correctly.
    """
    parts = [first, *others]
    if len({(p.n_features, p.diagonal) for p in parts}) > 1:
        raise ValueError(
            "Cannot merge statistics with different numbers of features, or "
            "full with diagonal scatter."
        )
    classes = parts[0].classes
    for part in parts[1:]:
        classes = np.union1d(classes, part.classes)
    parts = [p.with_classes(classes) for p in parts]
    weight, mean, scatter = combine_moments(
        np.stack([p.weight for p in parts]),
        np.stack([p.mean for p in parts]),
        np.stack([p.scatter for p in parts]),
    )
    _check_in_range(weight, mean, scatter)
    return ClassStatistics(classes, weight, mean, scatter)


def _check_in_range(weight, mean, scatter):
    """A clear error when sums of squares overflow or underflow float64.

    Features of magnitude 1e150 square to 1e300 and their scatter is still a
    float; from about 1e154 (or 1e308 / n_samples for the sums) it is not,
    and the solve would fail on infinities with an obscure LAPACK error.
    At the other end, a scatter whose largest entry is subnormal (below
    2.2e-308, features of about 1e-154 and below) has lost most of its digits
    and would give a silently wrong model. Above that, products that fall
    below 2.2e-308 are off by at most 2**-1075 each: relative errors of about
    n_samples * eps, as for any sum.
    """
    if not (np.isfinite(scatter).all() and np.isfinite(weight).all()):
        raise ValueError(
            "The sums of squares of X overflow float64: its values (or sample "
            "weights) are too large, about 1e154 / sqrt(n_samples) and beyond. "
            "Divide X by a constant first; the model does not depend on it."
        )
    variances = scatter if scatter.ndim < mean.ndim else np.diagonal(scatter, 0, -2, -1)
    largest = float(variances.max(initial=0.0))
    top = float(np.abs(mean).max(initial=0.0))
    # no scatter from rows below 1.5e-154: their squares may all have rounded
    # to 0 (identical tiny rows cannot be told apart, and are refused too)
    vanished = largest == 0.0 and 0.0 < top < 2.0**-511
    if 0.0 < largest < np.finfo(np.float64).tiny or vanished:
        raise ValueError(
            "The sums of squares of X underflow float64 (they are below "
            "2.2e-308 and lose their digits): its values (or sample weights) "
            "are too small, about 1e-154 and below. Multiply X by a constant "
            "first; the model does not depend on it."
        )


def class_statistics(X, y, *, classes=None, sample_weight=None, diagonal=False):
    """Sufficient statistics of one chunk of data held in memory.

    The chunk is read twice (class sums, then the scatter of the rows centred
    on their class means); chunks are then merged with
    :func:`merge_statistics`, so a data set is read once, chunk by chunk.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
        Not copied as a whole: rows are processed in blocks, each centred in a
        float64 buffer, so float32 input keeps float32 memory.
    y : ndarray of shape (n_samples,)
        Class labels.
    classes : ndarray of shape (n_classes,), default=None
        Sorted labels to keep statistics for (every label in ``y`` must be one
        of them); default ``np.unique(y)``.
    sample_weight : ndarray of shape (n_samples,), default=None
        Non-negative weights; ``None`` means unit weights.
    diagonal : bool, default=False
        Keep only the diagonal of the scatter (``O(n d)`` work).

    Returns
    -------
    ClassStatistics
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if classes is None:
        classes = np.unique(y)
    else:
        unknown = np.setdiff1d(y, classes)
        if len(unknown):
            raise ValueError(f"y contains labels that are not in classes: {unknown!r}.")
    y_index = np.searchsorted(classes, y)
    moments = _chunk_moments(X, y_index, sample_weight, len(classes), diagonal)
    _check_in_range(*moments)
    return ClassStatistics(classes, *moments)


def _chunk_moments(X, y_index, weight, n_classes, diagonal=False):
    """Exact moments of a chunk held in memory, in one pass over its rows.

    Each block of rows (about ``_BLOCK_VALUES`` values, in cache) is shifted
    by the chunk's first row ``x0`` into a float64 buffer, summed per class (an
    indicator product), centred on its own class means and added to the
    scatter as ``B'B`` (BLAS ``syrk``); the blocks' class means are then
    merged into the running ones by Chan's pairwise update, a rank-``k``
    correction for the ``k`` classes of the block. ``X`` is read once and
    never copied beyond one block. A feature constant in the chunk has
    shifted values of exactly zero, hence means of exactly ``x0`` and scatter
    exactly zero; a class of one row in a block has residuals of exactly zero.

    Returns
    -------
    weight : ndarray of shape (n_classes,)
    mean : ndarray of shape (n_classes, n_features)
    scatter : ndarray of shape (n_features, n_features)
        Or ``(n_features,)``, the diagonal, if ``diagonal``.
    """
    n_samples, n_features = X.shape
    unit = weight is None
    origin = X[0].astype(np.float64) if n_samples else np.zeros(n_features)
    # blocks of at least 8 rows per class keep the merge corrections small
    step = max(_BLOCK_ROWS, _BLOCK_VALUES // max(n_features, 1), 8 * n_classes)
    step = min(step, max(_BLOCK_ROWS, _MAX_BLOCK_VALUES // max(n_features, 1)))
    buffer = np.empty((min(step, n_samples), n_features))
    class_weight = np.zeros(n_classes)
    means = np.zeros((n_classes, n_features))  # of the shifted rows
    scatter = np.zeros(n_features if diagonal else (n_features, n_features))
    for start in range(0, n_samples, step):
        rows = slice(start, start + step)
        g = y_index[rows]
        w = np.ones(len(g)) if unit else weight[rows]
        block = np.subtract(X[rows], origin, out=buffer[: len(g)])
        block_weight = np.bincount(g, weights=w, minlength=n_classes)
        if n_classes <= _DENSE_GROUPS:  # a small one-hot product is one BLAS call
            indicator = np.zeros((n_classes, len(g)))
            indicator[g, np.arange(len(g))] = w
        else:
            indicator = sparse.csr_array(
                (w, (g, np.arange(len(g)))), shape=(n_classes, len(g))
            )
        sums = indicator @ block
        present = np.flatnonzero(block_weight > 0)
        block_means = np.zeros((n_classes, n_features))
        block_means[present] = sums[present] / block_weight[present, None]
        block -= block_means[g]
        if not unit:
            block *= np.sqrt(w)[:, None]
        # Chan's pairwise update of the running class means with this block's
        old, new = class_weight[present], block_weight[present]
        total = old + new
        difference = block_means[present] - means[present]
        correction = difference * np.sqrt(old * new / total)[:, None]
        with np.errstate(over="ignore", invalid="ignore"):  # _check_in_range
            if diagonal:
                scatter += np.einsum("ij,ij->j", block, block)
                scatter += np.einsum("ij,ij->j", correction, correction)
            else:
                scatter += block.T @ block  # numpy calls BLAS syrk for a.T @ a
                scatter += correction.T @ correction
        means[present] += difference * (new / total)[:, None]
        class_weight[present] = total
    means = np.where(class_weight[:, None] > 0, means + origin, 0.0)
    return class_weight, means, scatter


def oas_shrinkage(covariance, n_samples):
    """Oracle Approximating Shrinkage intensity from a covariance matrix alone.

    Chen, Wiesel, Eldar & Hero (2010), eq. 23, in the form scikit-learn's
    :func:`sklearn.covariance.oas` uses, with the target ``tr(Sigma)/d * I``.

    Parameters
    ----------
    covariance : ndarray of shape (n_features, n_features)
    n_samples : float
        Number of samples (sum of weights) the covariance was estimated from.

    Returns
    -------
    float in [0, 1]
    """
    n_features = covariance.shape[0]
    if n_features == 1:
        return 0.0  # one feature: every shrinkage gives the same covariance
    # The intensity does not depend on the scale of the covariance: divide it
    # by a power of two near its largest variance (exact), so that the squares
    # below neither overflow (features of 1e150) nor underflow (1e-150).
    largest = float(np.max(np.abs(np.diagonal(covariance))))
    if largest > 0:
        covariance = np.ldexp(covariance, -np.frexp(largest)[1])
    alpha = np.mean(covariance**2)
    mu_squared = (np.trace(covariance) / n_features) ** 2
    num = alpha + mu_squared
    den = (n_samples + 1) * (alpha - mu_squared / n_features)
    return 1.0 if den <= 0 else float(min(num / den, 1.0))


def shrunk_covariance(covariance, shrinkage, n_samples):
    """Shrink a covariance towards its mean variance: ``(1 - a) S + a tr(S)/d I``.

    The one shrinkage of skprob (the analytic classifiers apply it to the
    standardised covariance, :class:`skprob.GaussianDistance` to the
    covariance itself), as scikit-learn's ``shrunk_covariance``.

    Parameters
    ----------
    covariance : ndarray of shape (n_features, n_features) or (n_features,)
        A full covariance, or the variances of a diagonal one.
    shrinkage : None, "auto" or float in [0, 1]
        The intensity ``a``; "auto" is Oracle Approximating Shrinkage (it
        needs a full covariance); None is 0.
    n_samples : float
        Sum of the weights the covariance was estimated from (for OAS).

    Returns
    -------
    shrunk : ndarray of the shape of ``covariance``
        ``covariance`` itself when ``a = 0``, otherwise a new array.
    shrinkage : float
        The intensity used.
    """
    if covariance.size == 0:  # no feature left to shrink
        return covariance, 0.0
    if shrinkage == "auto":
        shrinkage = oas_shrinkage(covariance, n_samples)
    shrinkage = float(shrinkage or 0.0)
    if shrinkage == 0:
        return covariance, shrinkage
    d = covariance.shape[0]
    if covariance.ndim == 1:
        target = covariance.sum() / d
        return (1.0 - shrinkage) * covariance + shrinkage * target, shrinkage
    target = np.trace(covariance) / d
    shrunk = (1.0 - shrinkage) * covariance
    shrunk.flat[:: d + 1] += shrinkage * target
    return shrunk, shrinkage
