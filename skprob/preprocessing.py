"""Transformers of probability rows: EntropyNormalizer, PerturbMaxTransformer."""

from numbers import Real

import numpy as np
from scipy.special import softmax
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _dask
from ._entropy import SOLVER_CONSTRAINTS, entropy_invariant_scale, entropy_normalize
from ._perturb_max import NOISE_CONSTRAINTS, perturb_max_proba
from ._simplex import check_proba_rows, row_entropy
from ._sklearn import Interval, StrOptions, _check_sample_weight, _fit_context

__all__ = [
    "EntropyNormalizer",
    "PerturbMaxTransformer",
    "entropy_invariant_scale",
    "entropy_normalize",
    "perturb_max_proba",
]


class EntropyNormalizer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Give every row of probabilities (or logits) the same entropy.

    Each row ``p`` becomes ``p**gamma / sum(p**gamma)`` (for logits
    ``softmax(gamma * z)``, a per-row temperature) with the ``gamma >= 0``
    that makes its Shannon entropy equal to the target. The order of the
    entries of every row is kept and zeros stay zero. Use it to make the
    confidence of predicted distributions comparable across rows or models,
    or to sharpen / flatten them to a chosen entropy.

    Parameters
    ----------
    target_entropy : float or None, default=None
        The target, in ``unit``. None learns it in :meth:`fit` as the
        (weighted) mean entropy of the training rows.
    unit : {"nats", "bits", "relative"}, default="nats"
        Unit of ``target_entropy`` and ``target_entropy_``: "relative" is a
        fraction of ``log(n_features_in_)``, the entropy of the uniform row.
    input : {"proba", "logits"}, default="proba"
        What the rows hold. "proba": non-negative rows, rescaled to sum to one
        (so counts and unnormalised scores work). "logits": finite real rows;
        the output is ``softmax(gamma * z)``.
    tol : float, default=1e-10
        Absolute tolerance, in nats, on the entropy of every reachable row.
    max_iter : int, default=100
        Largest number of entropy evaluations per row (3 to 6 are typical).

    Attributes
    ----------
    target_entropy_ : float
        The target in ``unit``: ``target_entropy`` or the learned mean.
    n_iter_ : int
        Largest number of entropy evaluations a training row needed (0 when
        every training row was answered by a limit, see Notes).
    n_features_in_ : int
        Number of columns (classes) seen in :meth:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names seen in :meth:`fit`, when they are all strings.

    See Also
    --------
    entropy_normalize : The function this transformer calls.
    PerturbMaxTransformer : Probabilities from scores under random noise.

    Notes
    -----
    With ``u = log p`` on the support (``k`` non-zero entries, ``t`` of them
    tied at the maximum), the entropy ``H(gamma)`` falls from ``log k`` at
    ``gamma = 0`` to ``log t`` as ``gamma -> inf``, with
    ``dH/dgamma = -gamma Var_q[u]``, so each reachable target has one
    solution. Rows that cannot reach the target (it is above
    ``log(support size)``, or below what ties at the maximum allow, or the row
    is uniform on its support) get the nearest limit row and a warning counts
    them. :func:`entropy_normalize` describes the solver.

    To load a fitted transformer with :func:`skops.io.load` without allowing
    arbitrary code, trust exactly ``skprob.preprocessing.EntropyNormalizer``.

    Examples
    --------
    >>> import numpy as np
    >>> from skprob import EntropyNormalizer
    >>> P = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]])
    >>> Q = EntropyNormalizer(0.5, unit="relative").fit_transform(P)
    >>> print(np.round(-(Q * np.log(Q)).sum(axis=1) / np.log(3), 6))
    [0.5 0.5]
    """

    _parameter_constraints: dict = {
        "target_entropy": [Interval(Real, 0, None, closed="left"), None],
        "unit": [StrOptions({"nats", "bits", "relative"})],
        **SOLVER_CONSTRAINTS,
    }

    def __init__(
        self,
        target_entropy=None,
        *,
        unit="nats",
        input="proba",
        tol=1e-10,
        max_iter=100,
    ):
        self.target_entropy = target_entropy
        self.unit = unit
        self.input = input
        self.tol = tol
        self.max_iter = max_iter

    def _check_rows(self, X):
        """Rows as probabilities or logits, with errors that name the row."""
        if self.input == "proba":
            return check_proba_rows(X, name="X", normalize=True)
        if not np.isfinite(X).all():  # validate_data has rejected NaN/inf already
            raise ValueError("X contains NaN or infinity.")
        return X

    def _nats_per_unit(self):
        return {
            "nats": 1.0,
            "bits": np.log(2.0),
            "relative": np.log(self.n_features_in_),
        }[self.unit]

    def _fit(self, X, sample_weight):
        """Learn the target and solve the training rows; return them."""
        X = validate_data(self, X, dtype=_dask.FLOAT_DTYPES)
        X = self._check_rows(X)
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        largest = sample_weight.max(initial=0.0)
        if largest == 0:
            # (scikit-learn before 1.9 lets all-zero weights through)
            raise ValueError("sample_weight is all zeros; no row has a weight.")
        if self.target_entropy is not None:
            self.target_entropy_ = float(self.target_entropy)
        else:
            X64 = X.astype(np.float64, copy=False)
            if self.input == "logits":
                X64 = softmax(X64, axis=1)
            # weights of any finite size: scaled to at most 1, the sum cannot
            # overflow
            mean = np.average(row_entropy(X64), weights=sample_weight / largest)
            self.target_entropy_ = float(mean / self._nats_per_unit())
        X_out, n_iter = entropy_normalize(
            X,
            self.target_entropy_ * self._nats_per_unit(),
            input=self.input,
            tol=self.tol,
            max_iter=self.max_iter,
            return_n_iter=True,
        )
        self.n_iter_ = int(n_iter.max())
        return X_out

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Learn the target entropy (when not given) and the number of columns.

        Also solves the training rows, to record ``n_iter_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_classes)
            Training rows.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows in the mean entropy (of any
            finite size; not all zero).

        Returns
        -------
        self : object
            Fitted transformer.
        """
        self._fit(X, sample_weight)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None, sample_weight=None):
        """Fit, and return the training rows with the target entropy.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_classes)
            Training rows.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows in the mean entropy (of any
            finite size; not all zero).

        Returns
        -------
        X_out : ndarray of shape (n_samples, n_classes)
            Same as ``fit(X).transform(X)``, solved once.
        """
        return self._fit(X, sample_weight)

    def transform(self, X):
        """Rows with the target entropy.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_classes)
            Rows of probabilities (``input="proba"``, rescaled to sum to one)
            or logits. A Dask array or DataFrame gives a lazy Dask array,
            transformed chunk by chunk.

        Returns
        -------
        X_out : ndarray of shape (n_samples, n_classes)
            Probability rows with entropy ``target_entropy_`` (in ``unit``),
            in the input's floating dtype.
        """
        check_is_fitted(self)
        return _dask.map_rows(self, self._transform, X, n_outputs=self.n_features_in_)

    def _transform(self, X):
        X = self._check_rows(X)
        target = self.target_entropy_ * self._nats_per_unit()
        return entropy_normalize(
            X, target, input=self.input, tol=self.tol, max_iter=self.max_iter
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = self.input == "proba"
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class PerturbMaxTransformer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Map rows of scores to the probabilities that each wins a noisy argmax.

    ``p_i = P[argmax_j (scores_j + scale * eps_j) = i]`` for i.i.d. noise
    ``eps``: the random-utility (perturb-and-MAP) view of a classifier's
    scores. Gumbel noise gives the softmax; normal noise the independent
    multinomial probit; any other noise its own map. Every map keeps the
    order of the scores and ignores a constant added to a row.

    Parameters
    ----------
    noise : {"gumbel", "normal", "logistic"} or frozen distribution, \
default="gumbel"
        A name or a frozen continuous `scipy.stats` distribution with a
        density on the whole real line, such as ``scipy.stats.t(5)``.
    scale : float, default=1.0
        Multiplies the noise (a temperature).
    n_nodes : int, default=48
        Quadrature nodes per class (not used for "gumbel"); see
        :func:`perturb_max_proba` for the error.

    Attributes
    ----------
    n_features_in_ : int
        Number of columns (classes) seen in :meth:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names seen in :meth:`fit`, when they are all strings.

    See Also
    --------
    perturb_max_proba : The function this transformer calls.
    EntropyNormalizer : Give probability rows a common entropy.

    Notes
    -----
    ``p_i = int f(x) prod_{j != i} F(x + mu_i - mu_j) dx`` with
    ``mu = scores / scale``; :func:`perturb_max_proba` gives the quadrature,
    its error and its cost. The transformer is stateless: :meth:`fit` only
    records the number (and names) of the columns.

    To load a fitted transformer with :func:`skops.io.load` without allowing
    arbitrary code, trust exactly ``skprob.preprocessing.PerturbMaxTransformer``;
    a frozen ``scipy.stats`` noise adds its distribution's class (for
    ``scipy.stats.t(5)``: ``scipy.stats._continuous_distns.t_gen``) and
    ``scipy.stats._distn_infrastructure.rv_continuous_frozen``.

    Examples
    --------
    >>> import numpy as np
    >>> from skprob import PerturbMaxTransformer
    >>> scores = np.array([[2.0, 1.0, 0.0]])
    >>> PerturbMaxTransformer("normal").fit_transform(scores).round(4)
    array([[0.7288, 0.2241, 0.0472]])
    """

    _parameter_constraints: dict = {**NOISE_CONSTRAINTS}

    def __init__(self, noise="gumbel", *, scale=1.0, n_nodes=48):
        self.noise = noise
        self.scale = scale
        self.n_nodes = n_nodes

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Record the number (and names) of the columns.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_classes)
            Rows of scores.
        y : None
            Ignored.

        Returns
        -------
        self : object
            Fitted transformer.
        """
        validate_data(self, X, dtype=_dask.FLOAT_DTYPES)
        return self

    def transform(self, X):
        """Perturb-max probabilities of each row of scores.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_classes)
            Finite scores (or a Dask collection: lazy result, chunk by chunk).

        Returns
        -------
        X_out : ndarray of shape (n_samples, n_classes)
            Probability rows, in the input's floating dtype.
        """
        check_is_fitted(self)
        return _dask.map_rows(self, self._transform, X, n_outputs=self.n_features_in_)

    def _transform(self, X):
        return perturb_max_proba(X, self.noise, scale=self.scale, n_nodes=self.n_nodes)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
