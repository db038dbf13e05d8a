"""Mergeable per-class sufficient statistics, and covariances from them.

Everything the analytic classifiers learn from data passes through
:class:`ClassStatistics`: per class a weight sum and a mean, plus the pooled
within-class scatter matrix, optionally split into a few deterministic folds
(for cross-fitting the temperature) and carrying a small hashed sample of rows
(to score the cross-fitted models on). Statistics of disjoint chunks merge
exactly, so ``fit``, ``partial_fit`` and the out-of-core paths all reduce to
"statistics per chunk, merge, solve".

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

# Blocks of the statistics pass. Sums run over blocks of about 16 MiB (float64);
# the centred rows are formed in blocks of about 16 MiB too, with at least
# _BLOCK_ROWS rows per fold so that each syrk update is a large BLAS call. No
# block ever holds a copy of all of X.
_BLOCK_VALUES = 2**21
_CACHE_BLOCK_VALUES = 2**21
_BLOCK_ROWS = 1024
# Rows are hashed in blocks of about 256 KiB (float64).
_HASH_BLOCK_VALUES = 2**15
# Up to this many groups (folds x classes), group sums use a dense one-hot
# product; beyond it a sparse one.
_DENSE_GROUPS = 64


@dataclass
class RowSample:
    """A hashed subsample of rows, mergeable by keeping the smallest keys.

    Each row's key is a hash of its bytes, so the sample is the same whatever the
    chunking, the row order, or duplicated rows (duplicates share a key and are
    kept or dropped together).

    Attributes
    ----------
    X : ndarray of shape (m, n_features)
    y : ndarray of shape (m,)
        Class labels.
    weight : ndarray of shape (m,)
    key : ndarray of shape (m,), dtype uint64
    """

    X: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    key: np.ndarray

    def merge(self, other, size):
        """Union of two samples, cut to the rows with the ``size`` smallest keys."""
        key = np.concatenate([self.key, other.key])
        keep = _bottom_k(key, size)
        return RowSample(
            np.concatenate([self.X, other.X])[keep],
            np.concatenate([self.y, other.y])[keep],
            np.concatenate([self.weight, other.weight])[keep],
            key[keep],
        )


@dataclass
class ClassStatistics:
    """Per-class sufficient statistics of a weighted sample, split into folds.

    Attributes
    ----------
    classes : ndarray of shape (n_classes,)
        Sorted class labels. A class may have zero weight (declared but unseen).
    weight : ndarray of shape (n_folds, n_classes)
        Sum of sample weights per fold and class.
    mean : ndarray of shape (n_folds, n_classes, n_features)
        Weighted class means per fold (zero where the weight is zero).
    scatter : ndarray of shape (n_folds, n_features, n_features)
        Pooled within-class scatter per fold,
        ``sum_i w_i (x_i - mu_{y_i}) (x_i - mu_{y_i})'`` over the fold's rows,
        or only its diagonal, of shape ``(n_folds, n_features)`` (the
        statistics of a diagonal-covariance model: ``O(n d)`` work instead of
        ``O(n d^2)``).
    sample : RowSample or None
        Hashed subsample of rows with their folds, for scoring held-out rows.
    sample_size : int
        Maximum number of distinct keys kept in ``sample``.
    """

    classes: np.ndarray
    weight: np.ndarray
    mean: np.ndarray
    scatter: np.ndarray
    sample: RowSample | None = None
    sample_size: int = 0

    @property
    def n_folds(self):
        return self.weight.shape[0]

    @property
    def n_features(self):
        return self.mean.shape[2]

    @property
    def diagonal(self):
        """Whether only the diagonal of the scatter is kept."""
        return self.scatter.ndim == 2

    def pooled(self, exclude_fold=None):
        """Weights, means and within scatter merged over the folds.

        Parameters
        ----------
        exclude_fold : int, default=None
            Leave this fold out (the training statistics of a cross-fitted model).

        Returns
        -------
        weight : ndarray of shape (n_classes,)
        mean : ndarray of shape (n_classes, n_features)
        scatter : ndarray of shape (n_features, n_features) or (n_features,)
        """
        folds = [f for f in range(self.n_folds) if f != exclude_fold]
        weight, mean, scatter = combine_moments(
            self.weight[folds, None], self.mean[folds, None], self.scatter[folds, None]
        )
        return weight[0], mean[0], scatter[0]

    def fold_of(self, key):
        """Fold of each row, from its hash key."""
        return (key % np.uint64(self.n_folds)).astype(np.intp)

    def with_classes(self, classes):
        """The same statistics over a superset of classes (new classes: weight 0)."""
        if np.array_equal(classes, self.classes):
            return self
        index = np.searchsorted(classes, self.classes)
        n_folds, _, n_features = self.mean.shape
        weight = np.zeros((n_folds, len(classes)))
        mean = np.zeros((n_folds, len(classes), n_features))
        weight[:, index] = self.weight
        mean[:, index] = self.mean
        return ClassStatistics(
            classes, weight, mean, self.scatter, self.sample, self.sample_size
        )


def combine_moments(weight, mean, scatter):
    """Merge weighted moments of several disjoint parts (axis 0).

    This is the pairwise update of Chan, Golub & LeVeque (1979) applied to all
    parts at once: with ``W = sum_j W_j`` and ``mu = sum_j W_j mu_j / W``,
    ``S = sum_j S_j + sum_j W_j (mu_j - mu)(mu_j - mu)'``. It only ever forms
    differences of means, never ``X'X - W mu mu'``, so data with a large offset
    lose no precision.

    Parameters
    ----------
    weight : ndarray of shape (n_parts, ..., n_classes)
    mean : ndarray of shape (n_parts, ..., n_classes, n_features)
    scatter : ndarray of shape (n_parts, ..., n_features, n_features)
        Within-class scatter summed over classes, per part; or of shape
        ``(n_parts, ..., n_features)``, its diagonal only.

    Returns
    -------
    weight, mean, scatter : ndarrays without the leading axis
    """
    total = weight.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        merged = np.einsum("j...k,j...kd->...kd", weight, mean) / total[..., None]
    merged[total == 0] = 0.0
    # sum_j sum_k W_jk (mu_jk - mu_k)(mu_jk - mu_k)', one product per leading index
    spread = (mean - merged) * np.sqrt(weight)[..., None]
    spread = np.moveaxis(spread, 0, -3)  # (..., n_parts, n_classes, n_features)
    spread = spread.reshape(spread.shape[:-3] + (-1, spread.shape[-1]))
    if scatter.ndim < mean.ndim:  # diagonal scatter
        between = np.einsum("...jd,...jd->...d", spread, spread)
    else:
        between = np.swapaxes(spread, -1, -2) @ spread
    return total, merged, scatter.sum(axis=0) + between


def merge_statistics(first, *others):
    """Merge the statistics of disjoint chunks into one.

    Classes are aligned by label (the union of all classes is kept), so chunks
    that miss some classes merge correctly.
    """
    parts = [first, *others]
    if len({(p.n_folds, p.n_features, p.diagonal) for p in parts}) > 1:
        raise ValueError(
            "Cannot merge statistics with different numbers of folds or features, "
            "or full with diagonal scatter."
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
    size = max(p.sample_size for p in parts)
    samples = [p.sample for p in parts if p.sample is not None]
    sample = samples[0] if samples else None
    for other in samples[1:]:
        sample = sample.merge(other, size)
    _check_in_range(weight, mean, scatter)
    return ClassStatistics(classes, weight, mean, scatter, sample, size)


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


def class_statistics(
    X, y, *, classes=None, sample_weight=None, n_folds=1, sample_size=0, diagonal=False
):
    """Sufficient statistics of one chunk of data held in memory.

    The chunk is read twice (group sums, then the scatter of the rows centred
    on their group means); chunks are then merged with
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
    n_folds : int, default=1
        Number of folds. A row's fold is a hash of its bytes, so it does not
        depend on the chunking or the order of the rows.
    sample_size : int, default=0
        Keep a hashed sample of at most this many distinct rows (only rows with
        positive weight).
    diagonal : bool, default=False
        Keep only the diagonal of the scatter (``O(n d)`` work).

    Returns
    -------
    ClassStatistics
    """
    X = np.asarray(X)
    y = np.asarray(y)
    n_samples, n_features = X.shape
    if classes is None:
        classes = np.unique(y)
    else:
        unknown = np.setdiff1d(y, classes)
        if len(unknown):
            raise ValueError(f"y contains labels that are not in classes: {unknown!r}.")
    y_index = np.searchsorted(classes, y)
    n_classes = len(classes)

    keys = _row_hash(X) if (n_folds > 1 or sample_size > 0) else None
    group = y_index
    if n_folds > 1:
        group = (keys % np.uint64(n_folds)).astype(np.intp) * n_classes + y_index

    moments = _chunk_moments(X, group, sample_weight, n_folds, n_classes, diagonal)
    _check_in_range(*moments)

    sample = None
    if sample_size > 0:
        w = np.ones(n_samples) if sample_weight is None else sample_weight
        keep = _bottom_k(keys, size=sample_size, where=w > 0)
        sample = RowSample(X[keep], y[keep], w[keep], keys[keep])
    return ClassStatistics(classes, *moments, sample, sample_size)


def _chunk_moments(X, group, weight, n_folds, n_classes, diagonal=False):
    """Exact two-pass moments of a chunk held in memory.

    ``group = fold * n_classes + class``. The first pass sums each group's rows
    (an indicator product, in float64); the second centres blocks of rows on
    their group means and adds ``B'B`` to the fold's scatter (BLAS ``syrk``).
    No copy of ``X`` is made beyond one block at a time. Every BLAS call goes
    through numpy, so that one thread pool serves the whole pass.

    Returns
    -------
    weight : ndarray of shape (n_folds, n_classes)
    mean : ndarray of shape (n_folds, n_classes, n_features)
    scatter : ndarray of shape (n_folds, n_features, n_features)
        Or ``(n_folds, n_features)``, the diagonal, if ``diagonal``.
    """
    n_samples, n_features = X.shape
    n_groups = n_folds * n_classes
    unit = weight is None
    if unit:
        weight = np.ones(n_samples)
    group_weight = np.bincount(group, weights=weight, minlength=n_groups)
    sums = np.zeros((n_groups, n_features))
    step = max(1, _BLOCK_VALUES // max(n_features, 1))
    for start in range(0, n_samples, step):
        rows = slice(start, start + step)
        w = weight[rows]
        block = X[rows].astype(np.float64, copy=False)
        if n_groups <= _DENSE_GROUPS:  # a small one-hot product is one BLAS call
            indicator = np.zeros((n_groups, len(w)))
            indicator[group[rows], np.arange(len(w))] = w
        else:
            indicator = sparse.csr_array(
                (w, (group[rows], np.arange(len(w)))), shape=(n_groups, len(w))
            )
        sums += indicator @ block
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / group_weight[:, None]
    means[group_weight == 0] = 0.0  # absent groups, or rows all of weight zero

    scatter = np.zeros(
        (n_folds, n_features) if diagonal else (n_folds, n_features, n_features)
    )
    step = max(_BLOCK_ROWS * n_folds, _CACHE_BLOCK_VALUES // max(n_features, 1))
    buffer = np.empty((min(step, n_samples), n_features))
    for start in range(0, n_samples, step):
        rows = slice(start, start + step)
        g = group[rows]
        centred = buffer[: len(g)]
        if n_folds == 1:  # rows in place: subtract each row's group mean
            order = slice(None)
            np.subtract(X[rows], means[g], out=centred)
            bounds = [0, len(g)]
        else:  # sort by group: folds become contiguous, means subtract per group
            order = np.argsort(g, kind="stable")
            g = g[order]
            centred[...] = X[rows][order]
            bounds = np.searchsorted(g, np.arange(n_folds * n_classes + 1))
            for k in np.flatnonzero(np.diff(bounds)):
                centred[bounds[k] : bounds[k + 1]] -= means[k]
            bounds = bounds[::n_classes]
        if not unit:
            centred *= np.sqrt(weight[rows][order])[:, None]
        for fold in range(n_folds):
            part = centred[bounds[fold] : bounds[fold + 1]]
            if diagonal:
                scatter[fold] += np.einsum("ij,ij->j", part, part)
            elif len(part):
                scatter[fold] += part.T @ part  # numpy calls BLAS syrk for a.T @ a
    return (
        group_weight.reshape(n_folds, n_classes),
        means.reshape(n_folds, n_classes, n_features),
        scatter,
    )


def _row_hash(X):
    """A 64-bit hash of each row's values (multilinear hash, splitmix64 finish).

    The bits of each value as a float64 (with ``-0.0`` read as ``0.0``) are
    hashed, so float32 data and their float64 copy get the same hashes, and
    values of any magnitude keep their identity (a float32 rounding would send
    every value beyond 3e38 to infinity and every value below 1e-45 to zero).
    Identical rows get identical hashes; a hash depends neither on the
    position of the row nor on the rest of the array.
    """
    n_samples, n_features = X.shape
    multipliers = np.random.default_rng(20211022).integers(
        0, 2**63, size=n_features, dtype=np.uint64
    ) * np.uint64(2) + np.uint64(1)  # odd 64-bit constants
    h = np.empty(n_samples, dtype=np.uint64)
    # a small buffer, reused: the three passes over a block stay in cache
    block = max(64, _HASH_BLOCK_VALUES // max(n_features, 1))
    buffer = np.empty((min(block, n_samples), n_features))
    for start in range(0, n_samples, block):
        rows = slice(start, start + block)
        values = buffer[: len(h[rows])]
        np.add(X[rows], 0.0, out=values)  # float64, and -0.0 + 0.0 == +0.0
        # products modulo 2**64 (they wrap, as they should): odd multipliers
        # are invertible, so rows that differ in one value never collide
        products = values.view(np.uint64)
        products *= multipliers
        h[rows] = products.sum(axis=1)
    # splitmix64 finaliser: spreads every input bit over the whole word
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


def _bottom_k(key, size, where=None):
    """Indices of the rows holding the ``size`` smallest distinct keys.

    Only rows where ``where`` is true are candidates. The result is sorted by
    key, so a sample comes out in the same order however it was assembled.
    """
    index = np.arange(len(key)) if where is None else np.flatnonzero(where)
    candidates = key[index]
    distinct = None
    if len(candidates) > 4 * size:
        # the distinct values among the 4*size smallest keys are the smallest
        # distinct keys; fall back to all keys only if too many repeat
        distinct = np.unique(np.partition(candidates, 4 * size)[: 4 * size])
    if distinct is None or len(distinct) < size:
        distinct = np.unique(candidates)
    if len(distinct) >= size:
        index = index[candidates <= distinct[size - 1]]
    return index[np.argsort(key[index], kind="stable")]


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
