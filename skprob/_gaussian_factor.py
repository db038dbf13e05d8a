"""Validation, factorisation and broadcasting for the Gaussian distances.

The public functions in :mod:`skprob._gaussian` validate both families of
Gaussians here, factor every covariance once (:class:`_Covariances`) and
evaluate their pair kernels over the broadcast pairs (:class:`_Pairs`).
"""

import numpy as np
from scipy.linalg import lapack

from ._validation import as_real_array

_EPS = np.finfo(np.float64).eps
# Pairs per block: about this many float64 values per temporary array (32 MiB).
_BLOCK_VALUES = 2**22
# Negative eigenvalues down to -_ROUNDOFF * d * eps(dtype) * max eigenvalue are
# read as round-off of a positive semi-definite matrix (rounding a PSD matrix to
# its dtype moves an eigenvalue by at most d * eps * max |S_ij|).
_ROUNDOFF = 10.0


# --------------------------------------------------------------------------
# Validation and broadcasting
# --------------------------------------------------------------------------


def _as_real(name, value):
    """Float64 copy-free view of a real array, and the eps of its own dtype."""
    array = as_real_array(value, name)
    eps = np.finfo(array.dtype).eps if array.dtype.kind == "f" else _EPS
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return array, float(eps)


def _position(name, index, shape):
    """``cov1[2, 0]``-style name of the flat ``index`` of a batch of ``shape``."""
    if not shape:
        return name
    return f"{name}[{', '.join(str(i) for i in np.unravel_index(index, shape))}]"


def _scale_exponent(matrix):
    """Even power of two near the largest variance, or 0 when it is moderate.

    The rank tolerances ``d * eps * max(diag S)`` underflow to zero for
    covariances of 1e-300 and below (and their products overflow near 1e300):
    the rank decisions are made on ``S / 2**e`` instead, which is exact, and
    a root of ``S`` is that of ``S / 2**e`` times ``2**(e/2)``.
    """
    largest = float(np.max(np.diagonal(matrix), initial=0.0))
    exponent = int(np.frexp(largest)[1]) if largest > 0 else 0
    return exponent - exponent % 2 if abs(exponent) > 600 else 0


def _pivoted_root(matrix):
    """Root ``R`` (d x r, ``S ~ R R'``) by Cholesky with complete pivoting.

    LAPACK ``pstrf`` stops when the largest remaining pivot is at most
    ``d * eps * max(diag S)``: ``r`` is the numerical rank, and what is left
    (the Schur complement, positive semi-definite for a PSD matrix) has
    diagonal entries, hence all entries, below that floor. O(d^2 r) flops.

    Returns
    -------
    root : ndarray of shape (d, r)
    rank : int
    floor : float
    rest : ndarray of shape (d - r,)
        The rows and columns that were not pivoted on.
    """
    d = len(matrix)
    exponent = _scale_exponent(matrix)
    if exponent:  # the same factorisation of a matrix of unit scale (exact)
        root, rank, floor, rest = _pivoted_root(np.ldexp(matrix, -exponent))
        return np.ldexp(root, exponent // 2), rank, np.ldexp(floor, exponent), rest
    floor = d * _EPS * max(float(np.max(np.diagonal(matrix))), 0.0)
    if floor == 0.0:
        return np.zeros((d, 0)), 0, 0.0, np.arange(d)
    factor, pivots, rank, info = lapack.dpstrf(matrix, tol=floor, lower=1)
    if info < 0:  # pragma: no cover - an argument error, not a data error
        raise RuntimeError(f"LAPACK dpstrf failed with info={info}.")
    root = np.empty((d, rank))
    root[pivots - 1] = np.tril(factor[:, :rank])  # undo the row permutation
    return root, int(rank), floor, pivots[rank:] - 1


def _singular_root(matrix, eps, where):
    """Root and numerical rank of a covariance whose Cholesky factorisation failed.

    The pivoted root is accepted when ``S - R R'`` is round-off for the input's
    dtype (``_ROUNDOFF * d * eps`` times the largest variance, entry by entry:
    a PSD remainder whose diagonal is that small). Only the block of the rows
    not pivoted on needs checking, (d - r)^2 r flops: the factorisation
    reproduces the pivoted rows and columns to rounding, and ``S`` is PSD
    exactly when that block of the remainder (the Schur complement) is.
    Otherwise the symmetric eigendecomposition decides: eigenvalues below
    zero by round-off are clamped, anything more negative is an error.
    """
    d = len(matrix)
    exponent = _scale_exponent(matrix)
    if exponent:  # decide on a matrix of unit scale (exact), root scaled back
        root, rank = _singular_root(np.ldexp(matrix, -exponent), eps, where)
        return np.ldexp(root, exponent // 2), rank
    root, rank, _, rest = _pivoted_root(matrix)
    allowed = _ROUNDOFF * d * eps * max(float(np.max(np.diagonal(matrix))), 0.0)
    schur = matrix[np.ix_(rest, rest)] - root[rest] @ root[rest].T
    if not schur.size or np.abs(schur).max() <= allowed:
        return root, rank
    w, v = np.linalg.eigh(matrix)
    largest = max(w[-1], 0.0)
    if w[0] < -_ROUNDOFF * d * eps * largest:
        raise ValueError(
            f"{where} is not positive semi-definite: its smallest eigenvalue is "
            f"{w[0]:.3g} (largest {w[-1]:.3g})."
        )
    positive = w > 0  # tiny negatives from round-off are clamped to 0
    rank = int(np.count_nonzero(w > d * _EPS * largest))
    return v[:, positive] * np.sqrt(w[positive]), rank


class _Covariances:
    """Validated covariances of one side, flattened over their batch axes.

    Attributes
    ----------
    diagonal : bool
    batch_shape : tuple
    values : ndarray of shape (n, d) or (n, d, d)
        Variances (degenerate ones set to 0), or symmetrised full matrices.
    deviations : ndarray of shape (n, d)
        Diagonal only: square roots of the variances.
    definite : ndarray of shape (n,), bool
        Full only: the Cholesky factorisation succeeded.
    chol : ndarray of shape (n, d, d)
        Full only: lower Cholesky factors (the identity where not definite).
    logdet : ndarray of shape (n,)
        Full only: ``log det`` where definite.
    rank : ndarray of shape (n,)
        Full only: numerical rank (``d`` where definite).
    roots : dict
        Full only, where not definite: ``k -> R`` of shape (d, r), ``S ~ R R'``
        (see :func:`_singular_root`).
    trace : ndarray of shape (n,)
    """

    def __init__(self, name, cov, eps, diagonal, d):
        self.diagonal = diagonal
        core = 1 if diagonal else 2
        self.batch_shape = cov.shape[: cov.ndim - core]
        values = cov.reshape((-1,) + cov.shape[cov.ndim - core :])
        if diagonal:
            self.values = self._check_variances(name, values, eps, d)
            self.trace = self.values.sum(axis=1)
            self.deviations = np.sqrt(self.values)
        else:
            self._factor(name, values, eps, d)

    def _check_variances(self, name, values, eps, d):
        largest = np.maximum(values.max(axis=1, initial=0.0), 0.0)
        bad = values.min(axis=1, initial=0.0) < -_ROUNDOFF * d * eps * largest
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{_position(name, k, self.batch_shape)} has a negative variance "
                f"({values[k].min():.3g}); variances must be non-negative."
            )
        # numerical rank: variances below d * eps * max are degenerate
        return np.where(values > d * _EPS * largest[:, None], values, 0.0)

    def _factor(self, name, values, eps, d):
        n = len(values)
        asymmetry = np.abs(values - np.swapaxes(values, 1, 2)).max(axis=(1, 2))
        scale = np.abs(values).max(axis=(1, 2))
        bad = asymmetry > np.sqrt(eps) * scale
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{_position(name, k, self.batch_shape)} is not symmetric: "
                f"max |S - S'| = {asymmetry[k]:.3g} for max |S| = {scale[k]:.3g}."
            )
        if asymmetry.any():
            values = (values + np.swapaxes(values, 1, 2)) / 2
        self.values = values
        self.trace = np.trace(values, axis1=1, axis2=2)
        self.definite = np.ones(n, dtype=bool)
        self.rank = np.full(n, d)
        self.roots = {}
        try:
            self.chol = np.linalg.cholesky(values)
        except np.linalg.LinAlgError:
            self.chol = np.empty_like(values)
            for k in range(n):
                if n == 1:  # the batch was this matrix: no need to try again
                    self.definite[0] = False
                    self.chol[0] = np.eye(d)
                    break
                try:
                    self.chol[k] = np.linalg.cholesky(values[k])
                except np.linalg.LinAlgError:
                    self.definite[k] = False
                    self.chol[k] = np.eye(d)
        diagonals = np.diagonal(self.chol, axis1=1, axis2=2)
        # Cholesky also succeeds on some singular matrices, with a pivot made
        # of rounding (2 - sqrt(2)**2 = 4e-16 gives L_22 = 2e-8). The smallest
        # eigenvalue is at most every pivot L_kk**2, so a pivot within the
        # rank tolerance d * eps * max(diag S) means a singular matrix.
        floor = d * _EPS * np.max(np.diagonal(values, axis1=1, axis2=2), axis=1)
        weak = self.definite & (np.min(diagonals, axis=1, initial=np.inf) ** 2 <= floor)
        if weak.any():
            self.definite[weak] = False
            self.chol[weak] = np.eye(d)
            diagonals = np.diagonal(self.chol, axis1=1, axis2=2)
        self.logdet = 2.0 * np.log(diagonals).sum(axis=1)
        for k in np.flatnonzero(~self.definite):
            where = _position(name, k, self.batch_shape)
            self.roots[k], self.rank[k] = _singular_root(values[k], eps, where)
        self.logdet[~self.definite] = -np.inf

    def as_full(self):
        """The same covariances as full diagonal matrices."""
        d = self.values.shape[1]
        full = np.zeros(self.values.shape + (d,))
        full[:, np.arange(d), np.arange(d)] = self.values
        clone = object.__new__(_Covariances)
        clone.diagonal = False
        clone.batch_shape = self.batch_shape
        clone.values = full
        clone.trace = self.trace
        clone.definite = np.all(self.values > 0, axis=1)
        clone.rank = np.count_nonzero(self.values > 0, axis=1)
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


def _split(name, mean, cov):
    """Tell a diagonal covariance ``(..., d)`` from a full one ``(..., d, d)``."""
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
        diagonal1, diagonal2 = _split("1", mean1, cov1), _split("2", mean2, cov2)
        covs = (
            _Covariances("cov1", cov1, eps1, diagonal1, d),
            _Covariances("cov2", cov2, eps2, diagonal2, d),
        )
        if diagonal1 != diagonal2:  # one full: compare full matrices
            covs = tuple(c.as_full() if c.diagonal else c for c in covs)
        self.cov1, self.cov2 = covs
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

        ``full(cov1, index1, cov2, index2, delta)`` gets flat pair indices into
        the factored covariances; ``diagonal(a1, a2, delta)`` gets arrays of
        ``feature`` (variances or standard deviations) that broadcast against
        ``delta`` and reduces over the last axis.
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
            delta = self.mean1[m1] - self.mean2[m2]
            if feature:
                a1 = getattr(self.cov1, feature)[c1]
                out[start:stop] = kernel(a1, getattr(self.cov2, feature)[c2], delta)
            else:
                out[start:stop] = kernel(self.cov1, c1, self.cov2, c2, delta)
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
            out[start:stop] = kernel(a1, a2, m1 - m2)
        return out
