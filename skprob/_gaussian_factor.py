"""Validation, factorisation and broadcasting for the Gaussian distances.

The public functions in :mod:`skprob._gaussian` validate both families of
Gaussians here, factor every covariance once (:class:`_Covariances`) and
evaluate their pair kernels over the broadcast pairs (:class:`_Pairs`). The
kernels share the helpers at the end: gathers, triangular solves and scales of
pairs of factors, and the common affine subspace of two Gaussians.

The numerical rank. Every covariance, full or diagonal, and every sum of two
covariances that a distance compares, gets its rank from one rule: Cholesky
with complete pivoting (LAPACK ``pstrf``) stopped at the first pivot of at
most ``_ROUNDOFF * d * eps * max(diag S)``. A diagonal matrix's pivots are its
variances, so a variance at most that tolerance is a degenerate direction.
``eps`` is that of the input's dtype: rounding a positive semi-definite matrix
to its dtype moves its eigenvalues by up to about ``d * eps * max |S_ij|``, so
the same tolerance also bounds the negative eigenvalues read as round-off.
"""

import numpy as np
from scipy import linalg, sparse
from scipy.linalg import lapack

from ._validation import as_real_array

_EPS = np.finfo(np.float64).eps
# Pairs per block: about this many float64 values per temporary array (32 MiB).
_BLOCK_VALUES = 2**22
# Rank tolerance, in units of d * eps * max(diag S): eigenvalues (pivots) of
# at most this, of either sign, are round-off of a zero. Rounding alone puts
# pivots above 1 * d * eps * max(diag S) on 1 in 2000 rank-one 2 x 2 matrices
# and 2 in 1000 rank-two 3 x 3 ones; 10 leaves a margin.
_ROUNDOFF = 10.0
# Exponents of two kept for "no exponent" (a zero covariance or mean
# difference), below any float's.
_NO_EXPONENT = -(2**14)
# W2 is computed in units of 2**e when the data's scale is beyond 2**+-_MODERATE
# (squares of 2**+-512 and beyond leave the float range).
_MODERATE = 200


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def _as_real(name, value):
    """Float64 copy-free view of a real array, and the eps of its own dtype."""
    if sparse.issparse(value):
        raise ValueError(
            f"{name} is a scipy.sparse matrix; sparse input is not supported. "
            f"Pass a dense array ({name}.toarray())."
        )
    array = as_real_array(value, name)
    eps = np.finfo(array.dtype).eps if array.dtype.kind == "f" else _EPS
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return array, float(max(eps, _EPS))


def _position(name, index, shape):
    """``cov1[2, 0]``-style name of the flat ``index`` of a batch of ``shape``."""
    if not shape:
        return name
    return f"{name}[{', '.join(str(i) for i in np.unravel_index(index, shape))}]"


def _is_diagonal(name, mean, cov):
    """True for a diagonal covariance ``(..., d)``, False for ``(..., d, d)``."""
    d = mean.shape[-1]
    if cov.ndim == mean.ndim and cov.shape[-1] == d:
        return True
    if cov.ndim == mean.ndim + 1 and cov.shape[-2:] == (d, d):
        return False
    raise ValueError(
        f"cov{name} has shape {cov.shape} but mean{name} has shape {mean.shape}: "
        f"a diagonal covariance has the shape of its mean, (..., {d}), and a full "
        f"one has one more axis, (..., {d}, {d}); add leading axes of length 1 to "
        "broadcast one covariance over many means."
    )


# --------------------------------------------------------------------------
# Factorisation: the rank rule
# --------------------------------------------------------------------------


def rank_tolerance(largest_variance, d, eps):
    """Pivots (variances) of at most this are zero: the rank rule's tolerance."""
    return _ROUNDOFF * d * eps * np.maximum(largest_variance, 0.0)


def _scale_exponent(matrix):
    """Even power of two near the largest variance, or 0 when it is moderate.

    The rank tolerance underflows to zero for covariances of 1e-300 and below
    (and products of entries overflow near 1e300): the rank decisions are made
    on ``S / 2**e`` instead, which is exact, and a root of ``S`` is that of
    ``S / 2**e`` times ``2**(e/2)``.
    """
    largest = float(np.max(np.diagonal(matrix), initial=0.0))
    exponent = int(np.frexp(largest)[1]) if largest > 0 else 0
    return exponent - exponent % 2 if abs(exponent) > 600 else 0


def off_support(off, norm, floor, d, eps):
    """Whether a mean difference leaves the range of the covariances.

    ``off`` is the distance of ``delta`` to the range (measured directly, not
    as a difference of squares), ``norm`` is ``|delta|`` and ``floor`` the
    larger rank tolerance of the two covariances. Within round-off of the
    range means within ``sqrt(floor)`` (a standard deviation the rank rule
    calls zero) plus ``sqrt(_ROUNDOFF * d * eps) * |delta|``: the rank rule
    applied to the direction of ``delta``, whose off-range part can be
    resolved only that far relative to its length (the computed range itself
    is known to that precision).
    """
    return off > np.sqrt(floor) + np.sqrt(_ROUNDOFF * d * eps) * norm


def pivoted_cholesky(matrix, eps, tol=None):
    """Cholesky factorisation with complete pivoting, stopped by the rank rule.

    LAPACK ``pstrf`` picks the largest remaining diagonal entry as the next
    pivot and stops when it is at most :func:`rank_tolerance`: ``rank`` is the
    numerical rank, and what is left (the Schur complement, positive
    semi-definite for a PSD matrix) has diagonal entries, hence all entries,
    of at most that tolerance. O(d^2 r) flops. ``matrix`` should be of
    moderate scale (see :func:`_scale_exponent`).

    Returns
    -------
    factor : ndarray of shape (d, d)
        Lower triangular ``L`` with ``S[p][:, p] ~ L L'`` in its first
        ``rank`` columns (the others are not meaningful).
    pivots : ndarray of shape (d,)
        The permutation ``p`` (0-based).
    rank : int
    tolerance : float
        ``tol``, by default :func:`rank_tolerance` of ``matrix``.
    """
    d = len(matrix)
    if tol is None:
        tol = float(rank_tolerance(np.max(np.diagonal(matrix)), d, eps))
    if tol == 0.0:  # no positive variance: rank 0
        return np.zeros((d, d)), np.arange(d), 0, 0.0
    factor, pivots, rank, info = lapack.dpstrf(matrix, tol=tol, lower=1)
    if info < 0:  # pragma: no cover - an argument error, not a data error
        raise RuntimeError(f"LAPACK dpstrf failed with info={info}.")
    return np.tril(factor), pivots - 1, int(rank), tol


def singular_root(matrix, factor, pivots, rank, tol, where):
    """Root ``R`` (d x r, ``S ~ R R'``) from a pivoted factorisation of rank r < d.

    The root is accepted when ``S - R R'`` is round-off: at most ``2 * tol``
    entry by entry (a PSD remainder has entries at most its diagonal, which
    ``pstrf`` left below ``tol``). Only the block of the rows not pivoted on
    needs checking, (d - r)^2 r flops: the factorisation reproduces the
    pivoted rows and columns to rounding, and ``S`` is PSD exactly when that
    block of the remainder (the Schur complement) is. Otherwise the symmetric
    eigendecomposition decides: eigenvalues below zero by at most ``tol`` are
    clamped (their directions dropped), anything more negative is an error.

    Returns
    -------
    root : ndarray of shape (d, rank)
    rank : int
    """
    root = np.empty((len(matrix), rank))
    root[pivots] = factor[:, :rank]  # undo the row permutation
    rest = pivots[rank:]
    schur = matrix[np.ix_(rest, rest)] - root[rest] @ root[rest].T
    if not schur.size or np.abs(schur).max() <= 2.0 * tol:
        return root, rank
    w, v = np.linalg.eigh(matrix)
    if w[0] < -tol:
        raise ValueError(
            f"{where} is not positive semi-definite: its smallest eigenvalue is "
            f"{w[0]:.3g} (largest {w[-1]:.3g})."
        )
    kept = w > tol
    return v[:, kept] * np.sqrt(w[kept]), int(np.count_nonzero(kept))


def root_exponent(largest_variance):
    """Exponents ``e`` with ``sqrt(largest_variance) ~ 2**e`` (or ``_NO_EXPONENT``)."""
    largest = np.asarray(largest_variance, dtype=np.float64)
    exponent = np.frexp(np.sqrt(largest))[1]
    return np.where(largest > 0, exponent, _NO_EXPONENT)


class _Covariances:
    """Validated, factored covariances of one side, flattened over batch axes.

    Attributes
    ----------
    diagonal : bool
    batch_shape : tuple
    eps : float
        The eps of the input's dtype (the rank rule's unit).
    values : ndarray of shape (n, d) or (n, d, d)
        Variances (degenerate ones set to 0), or symmetrised full matrices.
    largest : ndarray of shape (n,)
        The largest variance of each covariance.
    floor : ndarray of shape (n,)
        The rank tolerance: variances (pivots) of at most this are zero.
    rank : ndarray of shape (n,)
        Numerical rank (the number of pivots above ``floor``).
    exponent : ndarray of shape (n,)
        ``sqrt(largest) ~ 2**exponent`` (``_NO_EXPONENT`` for a zero matrix):
        the scale of a root.
    trace : ndarray of shape (n,)
        Of ``S / 4**exponent`` (of unit scale, so never overflowing).
    deviations : ndarray of shape (n, d)
        Diagonal only: square roots of the variances.
    definite : ndarray of shape (n,), bool
        Full only: rank ``d``.
    chol, pivots, inverse : ndarrays of shape (n, d, d), (n, d) and (n, d)
        Full only: where definite, the pivoted Cholesky factorisation
        ``S[p][:, p] = L L'`` and the inverse permutation of ``p`` (the
        identity elsewhere).
    logdet : ndarray of shape (n,)
        Full only: ``log det S`` where definite, ``-inf`` elsewhere.
    roots : dict
        Full only, where not definite: ``k -> R`` of shape (d, r), ``S ~ R R'``
        (see :func:`singular_root`).
    """

    def __init__(self, name, cov, eps, diagonal, d):
        self.diagonal = diagonal
        self.eps = eps
        core = 1 if diagonal else 2
        self.batch_shape = cov.shape[: cov.ndim - core]
        values = cov.reshape((-1,) + cov.shape[cov.ndim - core :])
        if diagonal:
            self._check_variances(name, values, d)
        else:
            self._factor(name, values, d)
        self.exponent = root_exponent(self.largest)
        self.trace = self._unit_trace()

    def _unit_trace(self):
        scale = np.where(self.exponent == _NO_EXPONENT, 0, -2 * self.exponent)
        if self.diagonal:
            return np.ldexp(self.values, scale[:, None]).sum(axis=1)
        diagonals = np.diagonal(self.values, axis1=1, axis2=2)
        return np.ldexp(diagonals, scale[:, None]).sum(axis=1)

    def _check_variances(self, name, values, d):
        largest = np.maximum(values.max(axis=1, initial=0.0), 0.0)
        # decided on values / 2**e (exact): the tolerance of 1e-320 would underflow
        fraction, exponent = np.frexp(largest)
        unit = np.ldexp(values, -exponent[:, None])
        unit_floor = rank_tolerance(fraction, d, self.eps)[:, None]
        self.floor = np.ldexp(unit_floor[:, 0], exponent)
        bad = np.any(unit < -unit_floor, axis=1)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{_position(name, k, self.batch_shape)} has a negative variance "
                f"({values[k].min():.3g}); variances must be non-negative."
            )
        # the rank rule: a diagonal matrix's pivots are its variances
        self.values = np.where(unit > unit_floor, values, 0.0)
        self.largest = largest
        self.rank = np.count_nonzero(self.values, axis=1)
        self.deviations = np.sqrt(self.values)

    def _factor(self, name, values, d):
        n = len(values)
        asymmetry = np.abs(values - np.swapaxes(values, 1, 2)).max(axis=(1, 2))
        scale = np.abs(values).max(axis=(1, 2))
        bad = asymmetry > np.sqrt(self.eps) * scale
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{_position(name, k, self.batch_shape)} is not symmetric: "
                f"max |S - S'| = {asymmetry[k]:.3g} for max |S| = {scale[k]:.3g}."
            )
        if asymmetry.any():
            values = (values + np.swapaxes(values, 1, 2)) / 2
        self.values = values
        self.largest = np.maximum(
            np.max(np.diagonal(values, axis1=1, axis2=2), axis=1, initial=0.0), 0.0
        )
        self.floor = np.empty(n)
        self.rank = np.empty(n, dtype=np.intp)
        self.definite = np.zeros(n, dtype=bool)
        self.chol = np.empty_like(values)
        self.pivots = np.empty((n, d), dtype=np.intp)
        self.logdet = np.full(n, -np.inf)
        self.roots = {}
        # One pivoted factorisation per matrix decides its rank (the one rule
        # for every covariance); the factor is the root of a definite one.
        # Decided on S / 2**e (exact): the tolerance of a 1e-320 matrix
        # would underflow.
        for k in range(n):
            exponent = _scale_exponent(values[k])
            unit = np.ldexp(values[k], -exponent) if exponent else values[k]
            factor, pivots, rank, floor = pivoted_cholesky(unit, self.eps)
            self.floor[k] = np.ldexp(floor, exponent)
            if rank == d:
                self.definite[k] = True
                self.chol[k] = np.ldexp(factor, exponent // 2)
                self.pivots[k], self.rank[k] = pivots, d
                logdet = 2.0 * np.log(np.diagonal(factor)).sum()
                self.logdet[k] = logdet + d * exponent * np.log(2.0)
                continue
            where = _position(name, k, self.batch_shape)
            root, self.rank[k] = singular_root(unit, factor, pivots, rank, floor, where)
            self.roots[k] = np.ldexp(root, exponent // 2)
            self.chol[k], self.pivots[k] = np.eye(d), np.arange(d)
        self.inverse = np.argsort(self.pivots, axis=1)

    def root(self, k):
        """``R`` with ``S = R R'`` (d x rank): the permuted factor, or the root."""
        if not self.definite[k]:
            return self.roots[k]
        root = np.empty_like(self.chol[k])
        root[self.pivots[k]] = self.chol[k]
        return root

    def as_full(self):
        """The same (diagonal) covariances as full matrices, already factored."""
        n, d = self.values.shape
        full = np.zeros((n, d, d))
        full[:, np.arange(d), np.arange(d)] = self.values
        clone = object.__new__(_Covariances)
        for key in ("batch_shape", "eps", "largest", "floor", "rank", "exponent"):
            setattr(clone, key, getattr(self, key))
        clone.trace = self.trace
        clone.diagonal = False
        clone.values = full
        clone.definite = self.rank == d
        # any permutation will do: the identity, with L = diag(sqrt(v))
        clone.pivots = clone.inverse = np.broadcast_to(np.arange(d), (n, d))
        clone.chol = np.where(
            clone.definite[:, None, None], np.sqrt(full), np.eye(d)[None]
        )
        with np.errstate(divide="ignore"):
            clone.logdet = np.log(self.values).sum(axis=1)
        clone.roots = {
            k: np.sqrt(full[k])[:, self.values[k] > 0]
            for k in np.flatnonzero(~clone.definite)
        }
        return clone


# --------------------------------------------------------------------------
# Pairs: validation of both families and broadcasting
# --------------------------------------------------------------------------


class _Pairs:
    """Two validated families of Gaussians and the broadcast of their pairs."""

    def __init__(self, mean1, cov1, mean2, cov2):
        mean1, _ = _as_real("mean1", mean1)
        mean2, _ = _as_real("mean2", mean2)
        cov1, eps1 = _as_real("cov1", cov1)
        cov2, eps2 = _as_real("cov2", cov2)
        for name, mean in (("mean1", mean1), ("mean2", mean2)):
            if mean.ndim == 0:
                raise ValueError(f"{name} must have at least one axis (..., d).")
        d = mean1.shape[-1]
        if mean2.shape[-1] != d:
            raise ValueError(
                f"The Gaussians have different dimensions: mean1 has {d} "
                f"coordinates and mean2 has {mean2.shape[-1]}."
            )
        if d == 0:
            raise ValueError(
                f"The Gaussians have no coordinates: mean1 has shape {mean1.shape} "
                "(d = 0); a Gaussian needs at least one dimension."
            )
        diagonal1 = _is_diagonal("1", mean1, cov1)
        diagonal2 = _is_diagonal("2", mean2, cov2)
        covs = (
            _Covariances("cov1", cov1, eps1, diagonal1, d),
            _Covariances("cov2", cov2, eps2, diagonal2, d),
        )
        if diagonal1 != diagonal2:  # one full: compare full matrices
            covs = tuple(c.as_full() if c.diagonal else c for c in covs)
        self.cov1, self.cov2 = covs
        self.eps = max(eps1, eps2)
        self.mean1 = mean1.reshape(-1, d)
        self.mean2 = mean2.reshape(-1, d)
        self.shapes = (
            mean1.shape[:-1],
            self.cov1.batch_shape,
            mean2.shape[:-1],
            self.cov2.batch_shape,
        )
        try:
            self.shape = np.broadcast_shapes(*self.shapes)
        except ValueError:
            raise ValueError(
                "The leading (batch) axes of mean1, cov1, mean2 and cov2 do not "
                f"broadcast: {self.shapes[0]}, {self.shapes[1]}, {self.shapes[2]} "
                f"and {self.shapes[3]}."
            ) from None
        self.d = d

    def _indices(self, start, stop):
        """Flat indices into mean1, cov1, mean2 and cov2 of pairs start..stop."""
        ndim = len(self.shape)
        flat = np.arange(start, stop)
        multi = np.unravel_index(flat, self.shape) if ndim else ()
        for shape in self.shapes:
            padded = (1,) * (ndim - len(shape)) + tuple(shape)
            if not shape:
                yield np.zeros(stop - start, dtype=np.intp)
                continue
            index = [m if s > 1 else np.zeros_like(m) for m, s in zip(multi, padded)]
            yield np.ravel_multi_index(index, padded)

    def evaluate(self, full, diagonal, feature="values"):
        """Apply the pair kernel to every pair, block by block.

        ``full(cov1, index1, cov2, index2, delta, eps)`` gets flat pair
        indices into the factored covariances; ``diagonal(a1, a2, delta,
        eps)`` gets arrays of ``feature`` (variances or standard deviations)
        that broadcast against ``delta`` and reduces over the last axis.
        ``eps`` is the larger of the two inputs' (the rank rule's unit).
        """
        if self.cov1.diagonal:
            out = self._evaluate_diagonal(diagonal, feature)
        else:
            out = self._evaluate_flat(full)
        return out[()] if out.ndim == 0 else out

    def _evaluate_flat(self, kernel, feature=None):
        n_pairs = int(np.prod(self.shape))
        per_pair = self.d if feature else self.d * self.d
        block = max(1, _BLOCK_VALUES // max(per_pair, 1))
        out = np.empty(n_pairs)
        for start in range(0, n_pairs, block):
            stop = min(start + block, n_pairs)
            m1, c1, m2, c2 = self._indices(start, stop)
            with np.errstate(over="ignore"):  # beyond the float range: inf
                delta = self.mean1[m1] - self.mean2[m2]
            if feature:
                a1 = getattr(self.cov1, feature)[c1]
                a2 = getattr(self.cov2, feature)[c2]
                out[start:stop] = kernel(a1, a2, delta, self.eps)
            else:
                out[start:stop] = kernel(self.cov1, c1, self.cov2, c2, delta, self.eps)
        return out.reshape(self.shape)

    def _evaluate_diagonal(self, kernel, feature):
        """Blocks of the leading axis, broadcast: no gathered copies of pairs."""
        shape, d = self.shape, self.d
        rest = int(np.prod(shape[1:])) * d
        if not shape or rest > 4 * _BLOCK_VALUES:
            # a single row of pairs would be too large: gather flat blocks
            return self._evaluate_flat(kernel, feature)
        arrays = [
            self.mean1.reshape(self.shapes[0] + (d,)),
            getattr(self.cov1, feature).reshape(self.shapes[1] + (d,)),
            self.mean2.reshape(self.shapes[2] + (d,)),
            getattr(self.cov2, feature).reshape(self.shapes[3] + (d,)),
        ]
        arrays = [a.reshape((1,) * (len(shape) + 1 - a.ndim) + a.shape) for a in arrays]
        rows = max(1, _BLOCK_VALUES // max(rest, 1))
        out = np.empty(shape)
        for start in range(0, shape[0], rows):
            stop = min(start + rows, shape[0])
            m1, a1, m2, a2 = (a[start:stop] if len(a) > 1 else a for a in arrays)
            with np.errstate(over="ignore"):  # beyond the float range: inf
                delta = m1 - m2
            out[start:stop] = kernel(a1, a2, delta, self.eps)
        return out


# --------------------------------------------------------------------------
# Pairs of factored covariances: gathers, solves and scales
# --------------------------------------------------------------------------


def _rows_in_pivot_order(c1, i1, c2, i2):
    """``R_1[p_2]`` for the pairs: the root ``R_1 = P_1 L_1`` in ``S_2``'s order.

    With ``S[p][:, p] = L L'``, ``R = P L`` (``R[p] = L``) is a root of ``S``,
    and ``L_2^{-1} R_1[p_2]`` is ``L_2^{-1} P_2' R_1``: the solves and
    products with ``S_2`` use its triangular factor on rows in its order.
    """
    order = np.take_along_axis(c1.inverse[i1], c2.pivots[i2], axis=1)
    return np.take_along_axis(c1.chol[i1], order[:, :, None], axis=1)


def _solve_lower(chol, rhs):
    """``L^{-1} B`` for stacks of lower triangular ``L`` (b, d, d) and ``B`` (b, d, m).

    One LAPACK ``trtrs`` per pair: scipy's ``solve_triangular`` takes stacks
    only from scipy 1.16 on (and loops slower than this there).
    """
    out = np.empty(rhs.shape)
    for k in range(len(rhs)):
        out[k], info = lapack.dtrtrs(chol[k], rhs[k], lower=1)
        if info:  # pragma: no cover - a definite factor has no zero pivot
            raise RuntimeError(f"LAPACK dtrtrs failed with info={info}.")
    return out


def _take(stack, index):
    """``stack[index]``, as a view when it is one matrix (no d x d copy)."""
    if len(index) == 1:
        return stack[index[0]][None]
    return stack[index]


def _same(c1, i1, c2, i2):
    """Pairs whose two covariance matrices are equal entry by entry."""
    same = (c1.trace[i1] == c2.trace[i2]) & (c1.exponent[i1] == c2.exponent[i2])
    for k in np.flatnonzero(same):
        same[k] = np.array_equal(c1.values[i1[k]], c2.values[i2[k]])
    return same


def _scaled(array, exponent):
    """``array * 2**-exponent`` (one exponent per leading index), no copy for 0."""
    if not np.any(exponent):
        return array
    shape = (-1,) + (1,) * (array.ndim - 1)
    with np.errstate(under="ignore"):  # what underflows is negligible
        return np.ldexp(array, -np.reshape(exponent, shape))


def _vector_exponent(vectors):
    """Per row, ``e`` with ``max |v| ~ 2**e`` (``_NO_EXPONENT`` for zero rows)."""
    largest = np.max(np.abs(vectors), axis=-1, initial=0.0)
    exponent = np.frexp(np.where(np.isfinite(largest), largest, 1.0))[1]
    return np.where(largest > 0, exponent, _NO_EXPONENT)


def _pair_exponent(*exponents, moderate=_MODERATE):
    """The largest of the exponents, or 0 when within ``2**+-moderate``."""
    exponent = np.maximum.reduce(np.broadcast_arrays(*exponents))
    keep = (np.abs(exponent) > moderate) & (exponent != _NO_EXPONENT)
    return np.where(keep, exponent, 0)


# --------------------------------------------------------------------------
# The rank rule for two Gaussians: their common affine subspace
# --------------------------------------------------------------------------


def _common_subspace(c1, k1, c2, k2, delta, eps):
    """Orthonormal basis of the affine subspace both Gaussians live on.

    Both covariances must have the same rank ``r`` and range: the rank rule
    applied to their sum, each divided by a power of two near its largest
    variance (so that both count at their own scale), must give ``r`` again.
    ``delta`` must lie in that range: its distance to it, measured directly,
    within :func:`off_support`'s tolerance.

    Returns
    -------
    basis : ndarray of shape (d, r), or None
        None when the Gaussians live on different affine subspaces.
    inside : ndarray of shape (r,)
        ``basis' delta``.
    """
    d = len(delta)
    rank = c1.rank[k1]
    if rank != c2.rank[k2]:
        return None, None
    if rank == d:  # both definite: the whole space
        return np.eye(d), delta
    # each covariance divided by a power of two near its largest variance
    units = [
        np.ldexp(c.values[k], -np.frexp(c.largest[k])[1])
        for c, k in ((c1, k1), (c2, k2))
        if c.largest[k] > 0
    ]
    basis = np.zeros((d, 0))
    if units:
        largest = max(np.max(np.diagonal(unit)) for unit in units)
        tol = float(rank_tolerance(largest, d, eps))
        factor, pivots, sum_rank, _ = pivoted_cholesky(sum(units), eps, tol)
        if sum_rank != rank:
            return None, None
        if rank:
            root = np.empty((d, rank))
            root[pivots] = factor[:, :rank]
            basis, _ = np.linalg.qr(root)
    inside = basis.T @ delta
    off = linalg.norm(delta - basis @ inside, check_finite=False)
    floor = max(c1.floor[k1], c2.floor[k2])
    if off_support(off, linalg.norm(delta, check_finite=False), floor, d, eps):
        return None, None
    return basis, inside


def _norm(vectors):
    """Euclidean norms over the last axis, without overflow or underflow."""
    largest = np.max(np.abs(vectors), axis=-1, initial=0.0)
    safe = np.where((largest > 0) & np.isfinite(largest), largest, 1.0)
    scaled = vectors / safe[..., None]
    norm = safe * np.sqrt(np.einsum("...k,...k->...", scaled, scaled))
    return np.where(largest > 0, np.where(np.isfinite(largest), norm, np.inf), 0.0)


def _degenerate(v1, v2, delta, eps):
    """The degenerate coordinates of diagonal covariances, before ``delta`` is used.

    A coordinate with variance 0 in one Gaussian only makes the supports
    differ; one with variance 0 in both needs the means to agree there, by
    :func:`off_support` (the rule of full matrices, on norms taken without
    squaring: the kernels square ``delta`` in place, and squares of 1e-170
    underflow). The arrays broadcast against ``delta``.

    Returns
    -------
    None when no variance is 0, else ``(zero1, zero2, apart)``: where each
    Gaussian is degenerate (broadcast to ``delta``) and which pairs have
    means apart on coordinates degenerate in both (or None).
    """
    zero1, zero2 = v1 == 0, v2 == 0
    if not (zero1.any() or zero2.any()):
        return None
    shape = np.broadcast_shapes(v1.shape, v2.shape, delta.shape)
    zero1, zero2 = (np.broadcast_to(z, shape) for z in (zero1, zero2))
    both = zero1 & zero2
    apart = None
    if both.any():
        d = shape[-1]
        largest = np.maximum(np.max(v1, axis=-1), np.max(v2, axis=-1))
        off = _norm(np.where(both, delta, 0.0))
        norm = _norm(np.broadcast_to(delta, shape))
        apart = off_support(off, norm, rank_tolerance(largest, d, eps), d, eps)
        apart &= both.any(axis=-1)
    return zero1, zero2, apart


def _degenerate_terms(degenerate, terms):
    """Put the exact values of degenerate coordinates into ``terms``.

    ``degenerate`` is :func:`_degenerate`'s answer: a coordinate degenerate in
    one Gaussian only is ``inf``, in both 0, and pairs whose means are apart
    there are ``inf``.
    """
    if degenerate is None:
        return terms
    zero1, zero2, apart = degenerate
    terms = np.where(zero1 != zero2, np.inf, np.where(zero1 & zero2, 0.0, terms))
    if apart is not None:
        terms = np.where(apart[..., None], np.inf, terms)
    return terms
