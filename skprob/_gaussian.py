"""Closed-form distances between Gaussians, batched and broadcast.

Every function here takes the means and covariances of two families of
Gaussians, broadcasts their leading (batch) axes numpy-style and returns one
number per pair. A covariance of shape ``(..., d)`` (the shape of its mean) is
diagonal; one of shape ``(..., d, d)`` is full.

Notation follows the write-up: ``mu`` means, ``Sigma`` (``S``) covariances,
``L`` lower Cholesky factors (``S = L L'``), ``R`` any root (``S = R R'``),
``delta = mu_1 - mu_2``.

Algorithms: Cholesky factorisations, log-determinants from their diagonals,
triangular solves and symmetric eigenvalues (``eigh``/``eigvalsh``); never a
general matrix square root, an explicit inverse or complex arithmetic.

Inputs of any real dtype are computed in float64 and the results are float64
(the tolerance for round-off in the input follows the input's own dtype).

Every covariance is checked and factored once, whatever the number of pairs it
appears in; the pairs are then evaluated in blocks of bounded memory, so a
pairwise matrix of many Gaussians is one call without a
``(n_a, n_b, d, d)`` temporary.
"""

import numpy as np
from scipy import linalg
from scipy.linalg import blas

from ._gaussian_diagonal import (
    _bhattacharyya_diagonal,
    _kl_diagonal,
    _wasserstein_diagonal,
)
from ._gaussian_factor import (
    _as_real,
    _common_subspace,
    _Covariances,
    _pair_exponent,
    _Pairs,
    _rows_in_pivot_order,
    _same,
    _scaled,
    _solve_lower,
    _take,
    _vector_exponent,
    root_exponent,
)

__all__ = [
    "gaussian_kl_divergence",
    "gaussian_bhattacharyya_distance",
    "gaussian_hellinger_distance",
    "gaussian_wasserstein_distance",
]

# Matrices from this size on are multiplied with level-3 triangular products.
_LARGE = 256


# --------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------


def gaussian_kl_divergence(mean1, cov1, mean2, cov2):
    r"""Kullback-Leibler divergence ``KL(N1 || N2)`` between Gaussians.

    .. math::

        KL = \frac12 \left[ \delta' \Sigma_2^{-1} \delta
             + \operatorname{tr}(\Sigma_2^{-1} \Sigma_1) - d
             - \log\det(\Sigma_2^{-1} \Sigma_1) \right],
        \qquad \delta = \mu_1 - \mu_2.

    Parameters
    ----------
    mean1 : array-like of shape (..., d)
        Means of the first Gaussians.
    cov1 : array-like of shape (..., d, d) or (..., d)
        Their covariances: full, or diagonal (the variances) when the shape is
        that of ``mean1``. Leading axes broadcast against ``mean1``.
    mean2 : array-like of shape (..., d)
        Means of the second Gaussians.
    cov2 : array-like of shape (..., d, d) or (..., d)
        Their covariances.

    Returns
    -------
    divergence : float or ndarray
        One value per pair, of the broadcast shape of the leading axes (a
        float when there are none), in nats, in ``[0, inf]``.

    See Also
    --------
    gaussian_bhattacharyya_distance, gaussian_wasserstein_distance
    skprob.GaussianDistance : the same distances between fitted Gaussians.

    Notes
    -----
    With ``Sigma_1 = L_1 L_1'`` and ``Sigma_2 = L_2 L_2'`` (Cholesky, with
    complete pivoting), the trace and quadratic terms are
    ``||L_2^{-1} L_1||_F^2`` and ``||L_2^{-1} delta||^2`` (one triangular
    solve, rows permuted alike) and the log-determinants are sums of the logs
    of the factors' diagonals. The error is about ``eps`` times the condition number of
    ``Sigma_2`` relative to the value.

    Singular covariances. ``KL(P || Q)`` is finite only when ``P`` and ``Q``
    live on the same affine subspace: the covariances have the same range and
    ``delta`` lies in it. Then the divergence is computed on that subspace;
    otherwise it is ``inf`` (``P`` is not absolutely continuous with respect
    to ``Q``).

    One rule decides every rank: a Cholesky factorisation with complete
    pivoting (LAPACK ``pstrf``) stopped at the first pivot of at most
    ``tol = 10 * d * eps * max(diag Sigma)``, ``eps`` that of the input's
    dtype (rounding a rank-deficient matrix to its dtype leaves pivots of a
    few ``d * eps * max(diag Sigma)``). A covariance is singular when that
    rank is below ``d``; a diagonal variance of at most ``tol`` is a
    degenerate direction. Two singular covariances have the same range when
    they have the same rank and the rule gives that rank again for their
    sum, each divided by a power of two near its largest variance. The mean
    difference lies in that range when its distance to it, measured directly,
    is at most ``sqrt(tol) + sqrt(10 * d * eps) * |delta|``: a shift of up to
    a standard deviation that the rule calls zero, plus the precision to
    which the range itself is known. Shifts along the range of any size (a
    thousand standard deviations) stay on it.

    Examples
    --------
    >>> import numpy as np
    >>> from skprob import gaussian_kl_divergence
    >>> float(gaussian_kl_divergence([1.0, 0.0], np.eye(2), [0.0, 0.0], np.eye(2)))
    0.5
    """
    pairs = _Pairs(mean1, cov1, mean2, cov2)
    return pairs.evaluate(_kl_full, _kl_diagonal)


def gaussian_bhattacharyya_distance(mean1, cov1, mean2, cov2):
    r"""Bhattacharyya distance between Gaussians.

    .. math::

        BD = \frac18 \delta' \Sigma^{-1} \delta
             + \frac12 \log \frac{\det \Sigma}{\sqrt{\det\Sigma_1 \det\Sigma_2}},
        \qquad \Sigma = \frac{\Sigma_1 + \Sigma_2}{2}.

    Parameters
    ----------
    mean1 : array-like of shape (..., d)
    cov1 : array-like of shape (..., d, d) or (..., d)
        Full covariances, or diagonal ones (the shape of ``mean1``).
    mean2 : array-like of shape (..., d)
    cov2 : array-like of shape (..., d, d) or (..., d)

    Returns
    -------
    distance : float or ndarray
        ``-log`` of the Bhattacharyya coefficient ``int sqrt(p q)``, in
        ``[0, inf]``, of the broadcast shape of the leading axes.

    See Also
    --------
    gaussian_hellinger_distance : ``sqrt(1 - exp(-BD))``.
    gaussian_kl_divergence, gaussian_wasserstein_distance

    Notes
    -----
    One Cholesky factorisation of ``Sigma`` per pair and one per covariance.
    Gaussians on different affine subspaces (singular covariances with
    different ranges, or a mean difference off the common range) are mutually
    singular: the coefficient is 0 and the distance ``inf``. On a common
    subspace the distance is computed there. See
    :func:`gaussian_kl_divergence` for the rank rule and its tolerance.

    Examples
    --------
    >>> import numpy as np
    >>> from skprob import gaussian_bhattacharyya_distance
    >>> float(gaussian_bhattacharyya_distance([2.0], [1.0], [0.0], [1.0]))
    0.5
    """
    pairs = _Pairs(mean1, cov1, mean2, cov2)
    return pairs.evaluate(_bhattacharyya_full, _bhattacharyya_diagonal)


def gaussian_hellinger_distance(mean1, cov1, mean2, cov2):
    r"""Hellinger distance between Gaussians, ``sqrt(1 - exp(-BD))``.

    ``BD`` is the Bhattacharyya distance; ``1 - exp(-BD)`` is computed as
    ``-expm1(-BD)``, so small distances keep their digits. The value lies in
    ``[0, 1]`` and is 1 for Gaussians on different affine subspaces.

    Parameters
    ----------
    mean1 : array-like of shape (..., d)
    cov1 : array-like of shape (..., d, d) or (..., d)
        Full covariances, or diagonal ones (the shape of ``mean1``).
    mean2 : array-like of shape (..., d)
    cov2 : array-like of shape (..., d, d) or (..., d)

    Returns
    -------
    distance : float or ndarray
        Of the broadcast shape of the leading axes.

    See Also
    --------
    gaussian_bhattacharyya_distance

    Examples
    --------
    >>> from skprob import gaussian_hellinger_distance
    >>> round(float(gaussian_hellinger_distance([2.0], [1.0], [0.0], [1.0])), 6)
    0.627271
    """
    distance = gaussian_bhattacharyya_distance(mean1, cov1, mean2, cov2)
    return np.sqrt(-np.expm1(-distance))


def gaussian_wasserstein_distance(mean1, cov1, mean2, cov2, *, squared=False):
    r"""2-Wasserstein (Fréchet) distance between Gaussians.

    .. math::

        W_2^2 = \|\delta\|^2 + \operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2
                - 2 \operatorname{tr}\left(
                  (\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2})^{1/2} \right).

    The squared distance is the Fréchet distance behind FID.

    Parameters
    ----------
    mean1 : array-like of shape (..., d)
    cov1 : array-like of shape (..., d, d) or (..., d)
        Full covariances, or diagonal ones (the shape of ``mean1``).
    mean2 : array-like of shape (..., d)
    cov2 : array-like of shape (..., d, d) or (..., d)
    squared : bool, default=False
        Return ``W_2^2`` (the Fréchet distance of FID) instead of ``W_2``.

    Returns
    -------
    distance : float or ndarray
        Of the broadcast shape of the leading axes; ``W_2`` is finite for every
        positive semi-definite input. ``W_2^2`` is ``inf`` exactly when it
        exceeds the float range (``W_2`` above about 1.3e154), as for means
        1e155 apart.

    See Also
    --------
    gaussian_kl_divergence, gaussian_bhattacharyya_distance

    Notes
    -----
    The eigenvalues of ``Sigma_1^{1/2} Sigma_2 Sigma_1^{1/2}`` are those of the
    symmetric matrix ``L_1' Sigma_2 L_1 = C'C`` with ``C = L_2' L_1``
    (Cholesky factors ``Sigma_i = L_i L_i'``), so the trace term, the nuclear
    norm of ``C``, is ``sum_i sqrt(lambda_i)`` from two Cholesky
    factorisations, two triangular products and ``eigvalsh``. Any roots
    ``Sigma_i = R_i R_i'`` give the same value: a singular covariance uses the
    ``d x r`` root of a Cholesky factorisation with complete pivoting (LAPACK
    ``pstrf``, O(d^2 r)), and ``C = R_2' R_1`` is then ``r_2 x r_1`` (its
    singular values are taken directly: it may be rank-deficient). When
    ``pstrf`` leaves more than round-off, a symmetric eigendecomposition with
    eigenvalues below zero by round-off clamped gives the root instead.
    The trace formula cancels when the covariances are close: ``W_2^2`` is
    accurate to about ``eps * (tr Sigma_1 + tr Sigma_2)`` absolutely
    (identical covariances give exactly 0). Squares of the mean difference
    and ``C'C`` (products of four root entries) leave the float range long
    before ``W_2`` does, so a pair whose means or roots are beyond
    ``2**+-200`` is computed in units of a power of two near its largest
    scale (exactly): Gaussians of scale 1e155 or 1e-155 get the same relative
    accuracy as those of scale 1.

    Examples
    --------
    >>> import numpy as np
    >>> from skprob import gaussian_wasserstein_distance
    >>> cov = np.eye(2)
    >>> float(gaussian_wasserstein_distance([3.0, 0.0], cov, [0.0, 4.0], cov))
    5.0
    """
    pairs = _Pairs(mean1, cov1, mean2, cov2)
    result = pairs.evaluate(_wasserstein_full, _wasserstein_diagonal, "deviations")
    if not squared:
        return result
    with np.errstate(over="ignore"):  # W2^2 beyond the float range is inf
        return result * result


# --------------------------------------------------------------------------
# Full covariances
# --------------------------------------------------------------------------


def _cross_gram(chol2, rows1):
    """``C'C`` with ``C = L_2' R_1[p_2]``, for stacks of factors.

    Its eigenvalues are those of ``S_1^1/2 S_2 S_1^1/2`` (``C'C = R_1' S_2
    R_1`` is similar to ``S_1 S_2``). A single large pair uses BLAS ``trmm``
    and ``syrk`` (``2 d^3`` flops); only the lower triangle is used
    afterwards.
    """
    if len(chol2) == 1 and chol2.shape[1] >= _LARGE:
        cross = blas.dtrmm(1.0, chol2[0], rows1[0], lower=1, trans_a=1)
        return blas.dsyrk(1.0, cross, trans=1, lower=1)[None]
    cross = np.swapaxes(chol2, 1, 2) @ rows1
    return np.swapaxes(cross, 1, 2) @ cross


def _trace_sqrt(matrix):
    """``tr(M^1/2)`` of symmetric PSD matrices: clamped eigenvalues' roots."""
    return np.sqrt(np.maximum(np.linalg.eigvalsh(matrix), 0.0)).sum(axis=-1)


def _nuclear_norm(matrix):
    """Sum of the singular values (0 for an empty matrix).

    Taken from an SVD rather than the eigenvalues of a Gram matrix: products
    of roots of singular covariances can be (nearly) rank-deficient, and the
    Gram route would put ``sqrt(eps) * sigma_max`` of noise on each zero.
    """
    if not matrix.size:
        return 0.0
    return linalg.svdvals(matrix, check_finite=False).sum()


def _wasserstein_full(c1, i1, c2, i2, delta, eps):
    """W2 (not squared), in units of ``2**e`` per pair when the scale is extreme.

    ``tr((S1^1/2 S2 S1^1/2)^1/2)`` is the nuclear norm of ``R_2' R_1`` for any
    roots. Squares and products of roots overflow for Gaussians of scale
    1e155 and underflow for 1e-155 although W2 itself is representable: means
    and roots are divided by ``2**e`` (exactly), ``e`` the largest exponent of
    the pair's scales (the traces are kept at unit scale already).
    """
    e1, e2 = c1.exponent[i1], c2.exponent[i2]
    e = _pair_exponent(e1, e2, _vector_exponent(delta))
    cross = np.empty(len(i1))
    fast = c1.definite[i1] & c2.definite[i2]
    if fast.any():
        rows1 = _scaled(_rows_in_pivot_order(c1, i1[fast], c2, i2[fast]), e[fast])
        chol2 = _scaled(_take(c2.chol, i2[fast]), e[fast])
        cross[fast] = _trace_sqrt(_cross_gram(chol2, rows1))
    for k in np.flatnonzero(~fast):
        root1 = _scaled(c1.root(i1[k]), e[k])
        root2 = _scaled(c2.root(i2[k]), e[k])
        cross[k] = _nuclear_norm(root2.T @ root1)  # r2 x r1
    with np.errstate(under="ignore"):
        trace1 = np.ldexp(c1.trace[i1], 2 * np.maximum(e1 - e, -2000))
        trace2 = np.ldexp(c2.trace[i2], 2 * np.maximum(e2 - e, -2000))
    spread = trace1 + trace2 - 2.0 * cross
    spread[_same(c1, i1, c2, i2)] = 0.0
    delta = _scaled(delta, e)
    with np.errstate(over="ignore", invalid="ignore"):
        value = np.einsum("bk,bk->b", delta, delta) + np.maximum(spread, 0.0)
        return np.ldexp(np.sqrt(value), e)


def _kl_full(c1, i1, c2, i2, delta, eps):
    d = delta.shape[1]
    out = np.full(len(i1), np.inf)
    finite = np.isfinite(delta).all(axis=1)  # else the means are too far apart
    fast = c1.definite[i1] & c2.definite[i2] & finite
    if fast.any():
        rows = np.flatnonzero(fast)
        # L2^-1 P2' [R1 | delta]: trace and quadratic terms in one solve
        rhs = np.concatenate(
            [
                _rows_in_pivot_order(c1, i1[rows], c2, i2[rows]),
                np.take_along_axis(delta[rows], c2.pivots[i2[rows]], axis=1)[..., None],
            ],
            axis=2,
        )
        with np.errstate(over="ignore", invalid="ignore"):
            solved = _solve_lower(_take(c2.chol, i2[rows]), rhs)
            quadratic = np.einsum("bij,bij->b", solved, solved)
            out[rows] = 0.5 * (
                quadratic - d + c2.logdet[i2[rows]] - c1.logdet[i1[rows]]
            )
            same = _same(c1, i1[rows], c2, i2[rows])
            out[rows[same]] = 0.5 * np.einsum(
                "bi,bi->b", solved[same, :, d], solved[same, :, d]
            )
    for k in np.flatnonzero(~fast & finite):
        out[k] = _restricted(_kl_subspace, c1, i1[k], c2, i2[k], delta[k], eps)
    return np.maximum(out, 0.0)


def _bhattacharyya_full(c1, i1, c2, i2, delta, eps):
    out = np.full(len(i1), np.inf)
    finite = np.isfinite(delta).all(axis=1)  # else the means are too far apart
    fast = c1.definite[i1] & c2.definite[i2] & finite
    rows = np.flatnonzero(fast)
    if len(rows):
        average = (_take(c1.values, i1[rows]) + _take(c2.values, i2[rows])) / 2
        try:
            chol = np.linalg.cholesky(average)
        except np.linalg.LinAlgError:  # only by round-off: use the slow route
            rows = np.array([], dtype=np.intp)
            fast[:] = False
    if len(rows):
        with np.errstate(over="ignore", invalid="ignore"):
            solved = _solve_lower(chol, delta[rows, :, None])[:, :, 0]
            logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
            log_ratio = logdet - 0.5 * (c1.logdet[i1[rows]] + c2.logdet[i2[rows]])
            log_ratio[_same(c1, i1[rows], c2, i2[rows])] = 0.0
            out[rows] = np.einsum("bi,bi->b", solved, solved) / 8 + 0.5 * log_ratio
    for k in np.flatnonzero(~fast & finite):
        out[k] = _restricted(
            _bhattacharyya_subspace, c1, i1[k], c2, i2[k], delta[k], eps
        )
    return np.maximum(out, 0.0)


def _restricted(kernel, c1, k1, c2, k2, delta, eps):
    """A distance between Gaussians of equal rank on their common subspace.

    ``inf`` when they live on different affine subspaces (see
    :func:`_common_subspace`); otherwise ``kernel`` gets both covariances and
    ``delta`` in an orthonormal basis of that subspace, and whether the
    covariances are equal.
    """
    basis, inside = _common_subspace(c1, k1, c2, k2, delta, eps)
    if basis is None:
        return np.inf
    s1, s2 = c1.values[k1], c2.values[k2]
    same = np.array_equal(s1, s2)
    if basis.shape[1] == 0:  # two point masses at the same place
        return 0.0
    if basis.shape[1] < len(delta):
        s1, s2 = basis.T @ s1 @ basis, basis.T @ s2 @ basis
    return kernel(s1, s2, inside, same)


def _log_eigenvalues(matrix):
    """Sum of the logs of the eigenvalues (``-inf`` when not positive)."""
    w = np.linalg.eigvalsh(matrix)
    return np.log(w).sum() if w[0] > 0 else -np.inf


def _kl_subspace(a1, a2, delta, same):
    w2, v2 = np.linalg.eigh(a2)
    logdet1 = _log_eigenvalues(a1)
    if w2[0] <= 0 or logdet1 == -np.inf:
        return np.inf
    quadratic = ((v2.T @ delta) ** 2 / w2).sum()
    if same:
        return 0.5 * quadratic
    trace = np.einsum("ij,ik,kj->j", v2, a1, v2) / w2  # diag(V' A1 V) / w
    return 0.5 * (quadratic + trace.sum() - len(w2) + np.log(w2).sum() - logdet1)


def _bhattacharyya_subspace(a1, a2, delta, same):
    logdet1, logdet2 = _log_eigenvalues(a1), _log_eigenvalues(a2)
    w, v = np.linalg.eigh((a1 + a2) / 2)
    if logdet1 == -np.inf or logdet2 == -np.inf or w[0] <= 0:
        return np.inf
    log_ratio = 0.0 if same else np.log(w).sum() - 0.5 * (logdet1 + logdet2)
    return ((v.T @ delta) ** 2 / w).sum() / 8 + 0.5 * log_ratio


# --------------------------------------------------------------------------
# W2 from sample factors (fewer rows than dimensions)
# --------------------------------------------------------------------------


def wasserstein_from_rows(mean1, cov1, rows1, mean2, cov2, rows2, *, squared=False):
    """W2 between two full Gaussians, using row factors where they are known.

    ``rows_i`` of shape (n_i, d) with ``cov_i = rows_i' rows_i`` (for instance
    the centred sample scaled by ``sqrt(w / sum(w))``), or None. The trace term
    is the nuclear norm of ``R_2' R_1`` for any roots ``S_i = R_i R_i'``: with
    ``R_i = rows_i'`` it is an ``n_2 x n_1`` problem (an SVD of
    ``rows_1 rows_2'``), much smaller than d x d when the Gaussians come from
    fewer samples than dimensions. A side without rows uses its pivoted
    Cholesky root. Computed in units of a power of two near the pair's scale,
    as :func:`gaussian_wasserstein_distance`.

    Parameters
    ----------
    mean1, mean2 : ndarray of shape (d,)
    cov1, cov2 : ndarray of shape (d, d)
    rows1, rows2 : ndarray of shape (n_i, d) or None

    Returns
    -------
    float
    """
    if rows1 is None and rows2 is None:
        return gaussian_wasserstein_distance(mean1, cov1, mean2, cov2, squared=squared)
    d = len(cov1)
    covs, roots = [], []
    for name, cov, rows in (("cov1", cov1, rows1), ("cov2", cov2, rows2)):
        cov, eps = _as_real(name, cov)
        c = _Covariances(name, cov[None], eps, False, d) if rows is None else None
        covs.append(cov)
        roots.append(c.root(0) if c is not None else np.asarray(rows, float).T)
    with np.errstate(over="ignore"):
        delta = np.asarray(mean1, dtype=np.float64) - mean2
    largest = [max(np.max(np.diagonal(cov), initial=0.0), 0.0) for cov in covs]
    e = int(_pair_exponent(*root_exponent(largest), _vector_exponent(delta)))
    roots = [np.ldexp(r, -e) for r in roots]
    # n2 x n1 (or r2 x n1): centred rows make it rank-deficient
    cross = _nuclear_norm(roots[1].T @ roots[0])
    with np.errstate(under="ignore"):
        traces = [np.trace(np.ldexp(cov, -2 * e)) for cov in covs]
        delta = np.ldexp(delta, -e)
    with np.errstate(over="ignore", invalid="ignore"):
        value = float(delta @ delta + max(traces[0] + traces[1] - 2.0 * cross, 0.0))
        result = float(np.ldexp(np.sqrt(value), e))
        return result * result if squared else result
