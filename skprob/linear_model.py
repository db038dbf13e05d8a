"""Closed-form (analytic) logistic and softmax classifiers."""

import warnings
from functools import partial
from numbers import Real

import numpy as np
from scipy.linalg import LinAlgWarning
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _dask
from ._discriminant import (
    NULL_FRACTION_WARNING,
    discriminant_solution,
    held_out_logits,
    held_out_rows,
    held_out_size,
    temperature_drift,
    temperature_evidence,
    temperature_from_evidence,
)
from ._novelty import NOVELTY_SCORES, GaussianModel, gaussian_model, novelty_scores
from ._sklearn import Interval, StrOptions, _fit_context
from ._stats import class_statistics, merge_statistics
from ._validation import resolve_prior

__all__ = ["AnalyticLogisticRegression", "AnalyticSoftmaxClassifier"]


class _AnalyticClassifier(ClassifierMixin, BaseEstimator):
    """Shared fit/solve/predict machinery; subclasses choose the binary form."""

    _sigmoid_for_binary = False

    _parameter_constraints: dict = {
        "priors": ["array-like", StrOptions({"uniform"}), None],
        "shrinkage": [Interval(Real, 0, 1, closed="both"), StrOptions({"auto"}), None],
        "covariance": [StrOptions({"within", "total"})],
        "temperature": [
            Interval(Real, 0, None, closed="neither"),
            StrOptions({"auto"}),
            None,
        ],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "random_state": ["random_state"],
        "novelty_score": [StrOptions(set(NOVELTY_SCORES))],
    }

    def __init__(
        self,
        *,
        priors=None,
        shrinkage=None,
        covariance="within",
        temperature="auto",
        tol=None,
        random_state=None,
        novelty_score="relative",
    ):
        self.priors = priors
        self.shrinkage = shrinkage
        self.covariance = covariance
        self.temperature = temperature
        self.tol = tol
        self.random_state = random_state
        self.novelty_score = novelty_score

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model in one pass over the data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; float32 stays float32. A Dask array or DataFrame is
            read chunk by chunk (statistics per chunk, tree reduction, one
            solve) and never held in memory at once.
        y : array-like of shape (n_samples,)
            Class labels (numbers, strings or categories).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; an integer weight equals repeating the row.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        stats, rows, dtype = self._statistics(
            X, y, sample_weight, classes=None, reset=True
        )
        if len(stats.classes) < 2:
            raise ValueError(
                "This solver needs samples of at least 2 classes in the data, but "
                f"the data contain only one class: {stats.classes!r}."
            )
        self._classes_fixed = True
        self._solve(stats, rows, dtype, evidence=np.zeros(2))
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Add a chunk of data to the statistics and solve again.

        Fitting chunk after chunk gives the same model as :meth:`fit` on their
        concatenation (to rounding), whatever the chunking: each chunk only adds
        to the mergeable per-class statistics. With ``temperature="auto"`` the
        temperature is the one exception (see the class Notes): each chunk's
        rows are scored by the model of all the data seen so far. Each call
        solves once (an ``O(n_features^3)`` eigendecomposition), so feed large
        chunks. A call that raises leaves the model as it was.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of data (or a Dask collection, read chunk by chunk).
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), default=None
            All the classes, if known. Given on the first call, it fixes
            ``classes_`` and labels outside it are an error; otherwise
            ``classes_`` is the union of the labels seen so far, and the first
            call needs two classes.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        state = dict(vars(self))
        try:
            self._partial_fit(X, y, classes, sample_weight)
        except BaseException:
            vars(self).clear()  # atomic: the model stays as it was
            vars(self).update(state)
            raise
        return self

    def _partial_fit(self, X, y, classes, sample_weight):
        first_call = not hasattr(self, "_stats")
        if classes is not None:
            classes = np.unique(classes)
            if not first_call and not np.array_equal(classes, self.classes_):
                raise ValueError(
                    f"classes={classes!r} differs from the classes of the earlier "
                    f"calls: {self.classes_!r}."
                )
        elif not first_call and self._classes_fixed:
            classes = self.classes_
        chunk, rows, dtype = self._statistics(
            X, y, sample_weight, classes=classes, reset=first_call
        )
        evidence, previous = np.zeros(2), None
        if first_call:
            if classes is None and len(chunk.classes) < 2:
                raise ValueError(
                    "The first call to partial_fit sees only one class "
                    f"({chunk.classes!r}); pass classes=[...] with all the classes "
                    "on the first call, or start with a chunk of two classes."
                )
            self._classes_fixed = classes is not None
            stats = chunk
        else:
            stats = merge_statistics(self._stats, chunk)
            seen = self._stats.with_classes(stats.classes).weight > 0
            # evidence measured while some classes were still unseen was about
            # another problem: it is dropped, not carried over
            if hasattr(self, "_temperature_evidence") and np.array_equal(
                seen, stats.weight > 0
            ):
                evidence, previous = self._temperature_evidence, self
        self._solve(stats, rows, dtype, evidence=evidence, previous=previous)

    def _seed(self):
        """Seed of the held-out sample's keys, from ``random_state``."""
        return int(check_random_state(self.random_state).randint(2**31 - 1))

    def _statistics(self, X, y, sample_weight, *, classes, reset):
        """Validated class statistics of ``X, y``, held-out rows, and the dtype."""
        auto = self.temperature == "auto"
        seed = self._seed() if auto else None
        if _dask.is_dask_collection(X):
            _dask.check_dask_features(self, X, reset=reset)
            task = partial(
                _chunk_statistics,
                classes=classes,
                seed=seed,
                n_features=self.n_features_in_,
            )  # runs on the workers, one call per chunk
            parts = _dask.map_chunks(task, X, y, sample_weight, number=True)
            stats, rows = _dask.tree_reduce(parts, _merge_parts).compute()
            return stats, rows, _dask.float_dtype(X)
        X, y = validate_data(self, X, y, dtype=_dask.FLOAT_DTYPES, reset=reset)
        stats, rows = _chunk_statistics(X, y, sample_weight, classes=classes, seed=seed)
        return stats, rows, X.dtype

    def _solve(self, stats, rows, dtype, evidence, previous=None):
        """Closed-form solve and temperature; sets the fitted attributes.

        ``rows`` (None unless ``temperature="auto"``) are scored by their exact
        leave-one-out logits; what they say about the temperature adds to
        ``evidence``, that of earlier chunks. That evidence was measured on the
        ``previous`` model (fitted to less data): it is first shifted by the
        drift of ``log T`` from the previous model to this one, measured on
        the new rows, which the previous model has not seen.
        """
        weight, mean, scatter = stats.weight, stats.mean, stats.scatter
        if not weight.sum() > 0:
            raise ValueError(
                "The sample weights sum to zero: the model needs rows with "
                "positive weight."
            )
        priors = resolve_prior(self.priors, weight, name="priors")
        solution = discriminant_solution(
            weight,
            mean,
            scatter,
            priors=priors,
            shrinkage=self.shrinkage,
            covariance=self.covariance,
            tol=self.tol,
        )
        if solution.null_fraction > NULL_FRACTION_WARNING:
            warnings.warn(
                "The class means differ along directions in which the pooled "
                "covariance is singular (for example a feature that is constant "
                "within each class, or more features than samples); the "
                "minimum-norm solution ignores those directions. Set "
                "shrinkage='auto' (or a float) to use them.",
                LinAlgWarning,
            )
        if self.temperature == "auto":
            if rows is not None and len(rows.y):
                rows = rows.cut(held_out_size(len(stats.classes), stats.n_features))
                logits, target, row_weight, scored = held_out_logits(
                    solution,
                    stats.classes,
                    weight,
                    mean,
                    rows,
                    covariance=self.covariance,
                    priors=None if self.priors is None else priors,
                )
                scale = rows.total / rows.weight.sum()
                if previous is not None and evidence[0] > 0:
                    before = previous._raw_logits(rows.X[scored], stats.classes)
                    drift = temperature_drift(before, logits, target, row_weight, scale)
                    evidence = evidence + [0.0, evidence[0] * drift]
                evidence = evidence + temperature_evidence(
                    logits, target, row_weight, scale
                )
            self._temperature_evidence = evidence
            temperature = temperature_from_evidence(evidence)
        else:
            temperature = 1.0 if self.temperature is None else float(self.temperature)

        coef = temperature * solution.coef
        intercept = temperature * solution.intercept
        if self._sigmoid_for_binary and len(stats.classes) == 2:
            # log-odds of classes_[1]: difference of the two softmax logits
            coef = coef[1:] - coef[:1]
            intercept = intercept[1:] - intercept[:1]
        self._stats = stats
        self.classes_ = stats.classes
        self.coef_ = coef.astype(dtype)
        self.intercept_ = intercept.astype(dtype)
        self.means_ = mean.astype(dtype, copy=False)
        self.covariance_ = solution.covariance.astype(dtype)
        self.priors_ = priors
        self.shrinkage_ = solution.shrinkage
        self.temperature_ = temperature
        # plain arrays (no private type to trust when loading with skops)
        self._gaussian = vars(gaussian_model(solution, weight, mean))

    def _raw_logits(self, X, classes):
        """Softmax logits of the fitted model without its temperature.

        One column per label of ``classes`` (a superset of ``classes_``);
        ``-inf`` for labels the model does not know.
        """
        scores = (X @ self.coef_.T.astype(np.float64) + self.intercept_) / (
            self.temperature_
        )
        if scores.shape[1] == 1:  # the log-odds of classes_[1]
            scores = np.column_stack([np.zeros(len(X)), scores[:, 0]])
        logits = np.full((len(X), len(classes)), -np.inf)
        logits[:, np.searchsorted(classes, self.classes_)] = scores
        return logits

    def _rows(self, method, X, n_outputs, out_dtype=None):
        """``method`` on the validated rows of ``X``; lazily for Dask input."""
        if out_dtype is None and _dask.is_dask_collection(X):
            out_dtype = np.result_type(_dask.float_dtype(X), self.coef_.dtype)
        return _dask.map_rows(self, method, X, n_outputs=n_outputs, out_dtype=out_dtype)

    @property
    def _n_score_columns(self):
        """Columns of decision_function: none (1-D) for two classes or fewer."""
        return None if len(self.classes_) <= 2 else len(self.classes_)

    def _decision(self, X):
        scores = X @ self.coef_.T + self.intercept_
        if scores.shape[1] == 2:
            return scores[:, 1] - scores[:, 0]
        return scores.ravel() if scores.shape[1] == 1 else scores

    def _predict(self, X):
        scores = self._decision(X)
        indices = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(1)
        return self.classes_[indices]

    def _proba(self, X):
        scores = self._decision(X)
        if scores.ndim == 1:
            return np.column_stack([expit(-scores), expit(scores)])
        return softmax(scores, axis=1)

    def _log_proba(self, X):
        scores = self._decision(X)
        if scores.ndim == 1:
            return np.column_stack([log_expit(-scores), log_expit(scores)])
        return log_softmax(scores, axis=1)

    def decision_function(self, X):
        """Logits of the (tempered) model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, or a Dask array / DataFrame (then the result is a lazy Dask
            array, computed block by block).

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            For two classes the log-odds of ``classes_[1]``; otherwise the
            softmax logits ``X @ coef_.T + intercept_``.
        """
        check_is_fitted(self)
        return self._rows(self._decision, X, self._n_score_columns)

    def predict(self, X):
        """Most probable class of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, or a Dask collection (lazy result).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self._rows(self._predict, X, None, self.classes_.dtype)

    def predict_proba(self, X):
        """Class probabilities: softmax (or sigmoid) of the logits.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, or a Dask collection (lazy result).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self._rows(self._proba, X, len(self.classes_))

    def score_samples(self, X):
        """How typical each row is of the training data (higher: more typical).

        The classifier is a generative model (class frequencies, class means,
        one shared covariance); ``novelty_score`` picks the score it gives:
        "relative" (default), minus the relative Mahalanobis distance
        ``min_k d_k(x)^2 - d_0(x)^2`` to the nearest class, ``d_0`` the
        distance under one Gaussian of all the data; "mahalanobis", minus the
        squared Mahalanobis distance to the nearest class mean; "density",
        the log-density ``log sum_k p_k N(x; mu_k, Sigma)`` of the fitted
        mixture. All come from the fitted statistics (no extra pass) and do
        not depend on the temperature. Use them to flag rows of none of the
        classes (out-of-scope inputs).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, or a Dask collection (lazy result).

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            float64. With a singular covariance (no shrinkage), a row off its
            support is scored by its projection onto it (orthogonal in
            standardised units); "density" is then the density on the
            support, with the pseudo-determinant.
        """
        check_is_fitted(self)
        return self._rows(self._novelty, X, None, np.float64)

    def _novelty(self, X):
        return novelty_scores(GaussianModel(**self._gaussian), X, self.novelty_score)

    def predict_log_proba(self, X):
        """Log of the class probabilities, computed in log space (never ``log(0)``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, or a Dask collection (lazy result).

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self._rows(self._log_proba, X, len(self.classes_))


def _chunk_statistics(X, y, sample_weight, *, classes, seed, n_features=None, chunk=0):
    """Class statistics of one chunk, and its held-out rows, after validating it.

    Dask runs this on the workers, once per chunk (with ``n_features``: chunks
    may be empty, pandas, or of the wrong width; ``chunk`` is the chunk's
    number, for its random keys); in memory ``X`` and ``y`` come validated.
    Held-out rows are sampled only when ``seed`` is given (``"auto"``
    temperature).
    """
    X, y, sample_weight = _dask.check_chunk(X, y, sample_weight, n_features=n_features)
    stats = class_statistics(X, y, classes=classes, sample_weight=sample_weight)
    rows = None
    if seed is not None:
        size = held_out_size(len(stats.classes), stats.n_features)
        rows = held_out_rows(X, y, sample_weight, size, seed=[seed, chunk])
    return stats, rows


def _merge_parts(*parts):
    """Merge (statistics, held-out rows) of disjoint chunks."""
    stats = merge_statistics(*(p[0] for p in parts))
    samples = [p[1] for p in parts if p[1] is not None]
    rows = samples[0].merge(*samples[1:]) if samples else None
    return stats, rows


class AnalyticLogisticRegression(_AnalyticClassifier):
    """Logistic regression in closed form, from class means and a shared covariance.

    If each class is Gaussian with mean ``mu_k`` and one shared covariance
    ``Sigma``, Bayes' rule makes the log-odds linear in ``x``. The classifier
    estimates ``mu_k`` and ``Sigma`` in one pass over the data and solves for
    the weights once (``O(n d^2 + d^3)``), with no iterative optimisation. For
    two classes it is a logistic regression (``coef_`` of shape
    ``(1, n_features)``, sigmoid); for more it is a softmax (multinomial) model,
    with the shapes of :class:`sklearn.linear_model.LogisticRegression`.

    Parameters
    ----------
    priors : array-like of shape (n_classes,), "uniform" or None, default=None
        Class priors of the decision rule. ``None`` uses the weighted class
        frequencies. Priors change only the intercepts: unlike
        :class:`~sklearn.discriminant_analysis.LinearDiscriminantAnalysis`, the
        covariance is always pooled with the class frequencies.
    shrinkage : None, "auto" or float in [0, 1], default=None
        Shrinks the standardised covariance ``R = D^-1 Sigma D^-1`` (``D`` the
        features' spreads, see Notes) towards its mean variance:
        ``(1 - a) R + a tr(R)/d I``. "auto" picks ``a`` by the Oracle
        Approximating Shrinkage formula, from the covariance and the sum of
        weights alone. Useful with few samples per feature.
    covariance : {"within", "total"}, default="within"
        "within": the maximum-likelihood pooled within-class covariance.
        "total": the covariance of all samples, which adds the between-class
        scatter; the direction of the weights is the same for two classes, and
        the log-odds are tempered.
    temperature : "auto", float > 0 or None, default="auto"
        The logits are multiplied by the temperature before the sigmoid /
        softmax (``predict`` does not change). ``None`` is the plain closed
        form, whose probabilities are usually overconfident. "auto" chooses
        the temperature that minimises the leave-one-out log-loss: each row
        is scored by the model fitted without it, exactly and in closed form
        (a rank-one update of the solved model, see Notes), while the rows
        are in memory; no row is kept. A weak prior (worth one unit of sample
        weight) on ``log(temperature)`` keeps it finite on separable data.
    tol : float >= 0 or None, default=None
        Eigenvalues of the standardised covariance below ``tol`` times the
        largest are treated as zero (pseudo-inverse). ``None`` means
        ``1e-10``: rounding noise of an exactly singular covariance stays
        below it.
    random_state : int, RandomState instance or None, default=None
        With ``temperature="auto"`` and more rows than the leave-one-out
        scoring takes, a uniform random sample of the rows is scored: 2,048
        rows and more, up to 16,384 as the work per row allows (about
        ``d (d/2 + K)`` flops for ``d`` features and ``K`` classes; with
        thousands of classes fewer, down to 256, to keep the held-out logits
        within about a million values). Pass an int for reproducible results
        across calls; below that size nothing is random.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Weights of the logits, temperature included.
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Intercepts, temperature included. A class without any weight in the
        training data gets ``-inf`` (probability zero).
    means_ : ndarray of shape (n_classes, n_features)
        Weighted class means.
    covariance_ : ndarray of shape (n_features, n_features)
        The covariance used in the solve (after shrinkage).
    priors_ : ndarray of shape (n_classes,)
        Class priors of the decision rule.
    shrinkage_ : float
        The shrinkage intensity used.
    temperature_ : float
        The temperature used (1.0 for ``temperature=None``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    AnalyticSoftmaxClassifier : The same model, always in the softmax form.
    sklearn.linear_model.LogisticRegression : Maximum-likelihood fit.
    sklearn.discriminant_analysis.LinearDiscriminantAnalysis : The same Gaussian
        model; ``AnalyticSoftmaxClassifier(temperature=None)`` matches its
        ``solver="lsqr"`` probabilities.

    Notes
    -----
    With ``delta_k = mu_k - m`` (``m`` the weighted mean of all samples), the
    logits are ``z_k = delta_k' Sigma^+ (x - m) - delta_k' Sigma^+ delta_k / 2
    + log p_k``: the textbook ``w_k = Sigma^-1 mu_k`` shifted by a term common
    to every class. ``Sigma^+`` comes from a symmetric eigendecomposition (the
    whitening ``Lambda^-1/2 V'``), so a singular covariance -- constant or
    duplicated features, fewer samples than features -- gives the minimum-norm
    solution and finite probabilities.

    The solve runs on features standardised by their spread ``D`` (standard
    deviation over all samples), so the model does not depend on the units of
    the features, also where the covariance is singular (the solution is the
    minimum-norm one in standardised units). Each feature is judged by itself:
    one with the same value in every row (its spread exactly zero, which the
    statistics keep exact) is left out, one of any other scale is used.

    The statistics (class weights, class means, pooled within-class scatter)
    are merged across chunks with the update of Chan, Golub & LeVeque (1979),
    never as ``X'X - n mu mu'``, so :meth:`partial_fit` on any chunking equals
    :meth:`fit` on the concatenation.

    ``temperature="auto"``: removing a row (with its identical copies) from
    the statistics is a rank-one change of the covariance, so in coordinates
    that whiten the fitted covariance the held-out model's logits for that
    row follow from Sherman-Morrison with no new solve; this is exact
    leave-one-out cross-fitting, ``O(m d r + m r K)`` for ``m`` scored rows,
    ``r`` the rank and ``K`` classes. The temperature is then the MAP of the
    held-out log-loss in ``log T``. It depends neither on the units, the
    order of the columns, the dtype nor the memory layout of ``X``. With
    :meth:`partial_fit`, each chunk's rows are scored by the model of all the
    data seen so far, and the evidence of earlier chunks (two numbers: the
    curvature and the position of their log-loss in ``log T``) is shifted by
    how much ``log T`` moved since, measured on the new rows; it restarts when
    a class is seen for the first time. The temperature of a stream thus
    differs a little from that of :meth:`fit` (a few percent on random
    chunkings of sentence embeddings; ``benchmarks/bench_linear_model.py``
    measures it); everything else is :meth:`fit`'s to rounding.

    The fitted model keeps the statistics (``_stats``, of the size of
    ``coef_`` and ``covariance_``; no training row), so that
    :meth:`partial_fit` continues where it stopped after pickling or loading.
    To load it with :func:`skops.io.load` without allowing arbitrary code,
    trust exactly ``skprob.linear_model.AnalyticLogisticRegression`` and
    ``skprob._stats.ClassStatistics``: ``skops.io.load(path, trusted=[...])``.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from skprob import AnalyticLogisticRegression
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> clf = AnalyticLogisticRegression().fit(X, y)
    >>> clf.coef_.shape, round(clf.score(X, y), 2)
    ((1, 30), 0.96)
    """

    _sigmoid_for_binary = True


class AnalyticSoftmaxClassifier(_AnalyticClassifier):
    """Softmax classifier in closed form, one row of weights per class.

    The same model and solver as :class:`AnalyticLogisticRegression`, kept in
    the softmax form for any number of classes: ``coef_`` has one row per class
    even for two classes, and ``predict_proba`` is the softmax of
    ``X @ coef_.T + intercept_``. For two classes ``decision_function`` still
    returns the log-odds of ``classes_[1]``, as scikit-learn expects.

    Parameters
    ----------
    priors : array-like of shape (n_classes,), "uniform" or None, default=None
        Class priors of the decision rule (see
        :class:`AnalyticLogisticRegression`).
    shrinkage : None, "auto" or float in [0, 1], default=None
        Shrinkage of the standardised covariance towards its mean variance;
        "auto" is OAS.
    covariance : {"within", "total"}, default="within"
        Pooled within-class covariance, or the covariance of all samples.
    temperature : "auto", float > 0 or None, default="auto"
        Multiplies the logits; "auto" minimises the exact leave-one-out
        log-loss.
    tol : float >= 0 or None, default=None
        Relative eigenvalue cut-off of the pseudo-inverse; ``None`` means 1e-10.
    random_state : int, RandomState instance or None, default=None
        Draws the rows the "auto" temperature scores when there are more than
        it takes (see :class:`AnalyticLogisticRegression`).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (n_classes, n_features)
        Softmax weights, temperature included.
    intercept_ : ndarray of shape (n_classes,)
    means_ : ndarray of shape (n_classes, n_features)
    covariance_ : ndarray of shape (n_features, n_features)
    priors_ : ndarray of shape (n_classes,)
    shrinkage_ : float
    temperature_ : float
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)

    See Also
    --------
    AnalyticLogisticRegression : The same model with a sigmoid for two classes.

    Notes
    -----
    See :class:`AnalyticLogisticRegression` for the formulas.

    To load a fitted model with :func:`skops.io.load` without allowing
    arbitrary code, trust exactly
    ``skprob.linear_model.AnalyticSoftmaxClassifier`` and
    ``skprob._stats.ClassStatistics``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skprob import AnalyticSoftmaxClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = AnalyticSoftmaxClassifier().fit(X, y)
    >>> clf.coef_.shape, round(clf.score(X, y), 2)
    ((3, 4), 0.98)
    """
