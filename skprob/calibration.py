"""CAN (classification with alternating normalization) around any classifier."""

import warnings
from functools import partial

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import check_cv
from sklearn.utils import Bunch, column_or_1d, get_tags, indexable
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    process_routing,
)
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, has_fit_parameter

from . import _dask
from ._can import CAN_CONSTRAINTS, _log, can_adjust, correct_uncertain
from ._simplex import _topk_uncertainty, check_proba_rows, topk_uncertainty
from ._sklearn import (
    HasMethods,
    StrOptions,
    _check_method_params,
    _check_sample_weight,
    _fit_context,
    _num_samples,
    _routing_enabled,
    _safe_indexing,
)
from ._validation import resolve_prior
from .linear_model import AnalyticSoftmaxClassifier

__all__ = ["CANCalibrator", "can_adjust", "topk_uncertainty"]


class CANCalibrator(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Classifier whose uncertain predictions are corrected by CAN.

    CAN (classification with alternating normalization) post-processes the
    probabilities of any classifier. A prediction whose top-``k`` probabilities
    are close to each other (uncertainty ``>= threshold``) is corrected together
    with a reference set of confident predictions: the stack is rescaled so that
    each column's mean matches the class prior, then each row is renormalised,
    ``n_iter`` times. Confident predictions are returned unchanged.

    The reference set is built in :meth:`fit` from out-of-fold predictions on
    the training data (``reference="fit"``), so predictions on new data do not
    depend on each other, or taken from the confident rows of each batch passed
    to :meth:`predict_proba` (``"batch"``, the transductive original).

    Parameters
    ----------
    estimator : classifier with ``predict_proba``, default=None
        The base classifier; ``None`` means
        :class:`~skprob.AnalyticSoftmaxClassifier`. Wrap an already fitted
        classifier in :class:`sklearn.frozen.FrozenEstimator` to build the
        reference set from its predictions on the data given to :meth:`fit`
        (a held-out calibration set) without refitting it. To tune the base
        classifier's parameters (``estimator__shrinkage``), pass it explicitly.
    cv : int, cross-validation generator or iterable, default=5
        Splits for the out-of-fold predictions of the reference set (stratified
        k-fold for an int). Each fold fits a clone of ``estimator``; a class
        missing from a fold's training part gets probability 0 in that fold's
        predictions. Unused with a ``FrozenEstimator`` or ``reference="batch"``.
    top_k : int, default=3
        Probabilities used by the uncertainty (capped at the number of classes).
    threshold : float in [0, 1], default=0.9
        Predictions with uncertainty ``>= threshold`` are corrected; reference
        rows are those below it.
    n_iter : int, default=1
        Number of column-and-row normalization steps.
    alpha : float > 0, default=1.0
        Power applied to the probabilities before each column step.
    prior : array-like of shape (n_classes,), "uniform" or None, default=None
        Class prior of the column step. ``None`` uses the class frequencies of
        ``y`` (weighted by ``sample_weight``); pass the expected class
        frequencies of the data to predict when they differ from training.
    reference : {"fit", "batch", "both"}, default="fit"
        Reference rows: the confident out-of-fold predictions of :meth:`fit`,
        the confident rows of the batch being predicted (each row's correction
        then depends on the rest of the batch), or both.

    Attributes
    ----------
    estimator_ : classifier
        The base classifier fitted on all the data (or the frozen one).
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    prior_ : ndarray of shape (n_classes,)
        Class prior used by the column step.
    reference_ : ndarray of shape (n_reference, n_classes)
        Confident out-of-fold probabilities (empty for ``reference="batch"``).
    reference_weight_ : ndarray of shape (n_reference,)
        Their weights in the column step: the ``sample_weight`` of their rows
        (rows of weight 0 are left out).
    n_features_in_ : int
        Number of features seen by the base classifier during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    skprob.can_adjust : The correction as a function of probability rows.
    sklearn.calibration.CalibratedClassifierCV : Sigmoid, isotonic or
        temperature calibration, which changes every prediction.

    Notes
    -----
    For an uncertain row ``b`` and reference rows ``A``, one step on the stack
    ``L = [A; b]`` is ``L <- L ** alpha``, ``L_ij <- L_ij prior_j / mean_i L_ij``
    (column step), ``L_ij <- L_ij / sum_j L_ij`` (row step); ``b`` is replaced
    by the last row of ``L``. Uncertainty is the entropy of the ``top_k``
    largest probabilities, renormalised, divided by ``log(top_k)``. The rows
    are corrected together, in a few matrix products (see
    :func:`~skprob.can_adjust`).

    CAN helps when the uncertain predictions are biased against classes that
    the reference set under-represents relative to the prior, and can hurt an
    accurate, well calibrated classifier: tune ``threshold`` (1 disables CAN)
    by cross-validation. A class with no mass in the reference rows takes over
    every uncertain row that gives it any probability (the column step divides
    by its mass); :meth:`fit` warns when that happens.

    To load a fitted model with :func:`skops.io.load` without allowing
    arbitrary code, trust exactly ``skprob.calibration.CANCalibrator`` and
    the types of the base classifier: for the default one
    ``skprob.linear_model.AnalyticSoftmaxClassifier`` and
    ``skprob._stats.ClassStatistics`` (scikit-learn's ``FrozenEstimator`` is
    trusted by default).

    References
    ----------
    .. [1] M. Jia, A. Reiter, S.-N. Lim, Y. Artzi, C. Cardie, "When in Doubt:
       Improving Classification Performance with Alternating Normalization",
       Findings of EMNLP 2021, arXiv:2109.13449.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skprob import CANCalibrator
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = CANCalibrator(threshold=0.5).fit(X[:1000], y[:1000])
    >>> clf.reference_.shape[1], clf.score(X[1000:], y[1000:]) > 0.9
    (10, True)
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict_proba"]), None],
        "cv": ["cv_object"],
        **CAN_CONSTRAINTS,
        "prior": ["array-like", StrOptions({"uniform"}), None],
        "reference": [StrOptions({"fit", "batch", "both"})],
    }

    def __init__(
        self,
        estimator=None,
        *,
        cv=5,
        top_k=3,
        threshold=0.9,
        n_iter=1,
        alpha=1.0,
        prior=None,
        reference="fit",
    ):
        self.estimator = estimator
        self.cv = cv
        self.top_k = top_k
        self.threshold = threshold
        self.n_iter = n_iter
        self.alpha = alpha
        self.prior = prior
        self.reference = reference

    def _get_estimator(self):
        """The base classifier to clone (the default one requests sample_weight)."""
        if self.estimator is not None:
            return self.estimator
        estimator = AnalyticSoftmaxClassifier()
        if _routing_enabled():
            estimator.set_fit_request(sample_weight=True)
        return estimator

    @_fit_context(
        # the base estimator is validated by its own fit
        prefer_skip_nested_validation=False
    )
    def fit(self, X, y, sample_weight=None, **fit_params):
        """Fit the base classifier and build the reference set.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, in any form the base classifier accepts.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the class prior and of the reference rows in the
            column step (a weight of 2 counts a row twice); also passed to the
            base classifier's ``fit`` when it accepts them (through metadata
            routing when that is enabled).
        **fit_params : dict
            Other parameters of the base classifier's ``fit`` (and, with
            metadata routing, of the splitter's ``split``, e.g. ``groups``).

        Returns
        -------
        self : object
            Fitted estimator.
        """
        X, y = indexable(X, y)
        # NaN and infinite labels get scikit-learn's error before the type check,
        # whose cast of them to integers would warn first
        y = check_array(
            column_or_1d(y, warn=True), ensure_2d=False, dtype=None, input_name="y"
        )
        check_classification_targets(y)
        estimator = self._get_estimator()
        frozen = isinstance(estimator, FrozenEstimator)
        if frozen:
            classes = np.asarray(estimator.classes_)
            unknown = np.setdiff1d(y, classes)
            if len(unknown):
                raise ValueError(
                    f"y contains labels the frozen estimator does not know: "
                    f"{unknown!r}; its classes_ are {classes!r}."
                )
        else:
            classes = np.unique(y)
            if len(classes) < 2:
                raise ValueError(
                    "CANCalibrator needs samples of at least 2 classes in the "
                    f"data, but the data contain {len(y)} samples of "
                    f"{len(classes)} class: {classes!r}."
                )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        routed = self._route_fit_params(estimator, frozen, sample_weight, fit_params)
        self.prior_ = self._resolve_prior(y, classes, sample_weight)

        proba, rows = None, np.arange(_num_samples(X))
        if frozen:
            self.estimator_ = estimator
            if self.reference != "batch":
                proba = _checked_proba(estimator, X, classes)
        else:
            if self.reference != "batch":
                proba, rows = self._out_of_fold_proba(estimator, X, y, classes, routed)
            self.estimator_ = clone(estimator).fit(X, y, **routed.estimator.fit)
        self.classes_ = classes

        if proba is None:
            self.reference_ = np.empty((0, len(classes)))
            self.reference_weight_ = np.empty(0)
        else:
            proba = proba.astype(np.float64, copy=False)
            weight = (
                np.ones(len(rows)) if sample_weight is None else sample_weight[rows]
            )
            keep = (_topk_uncertainty(proba, self.top_k) < self.threshold) & (
                weight > 0
            )
            self.reference_ = proba[keep]
            self.reference_weight_ = weight[keep]
            self._warn_about_reference()
        for name in ("n_features_in_", "feature_names_in_"):
            if hasattr(self.estimator_, name):
                setattr(self, name, getattr(self.estimator_, name))
        return self

    def _route_fit_params(self, estimator, frozen, sample_weight, fit_params):
        """Fit parameters of the base classifier and of the splitter."""
        if _routing_enabled():
            return process_routing(
                self, "fit", sample_weight=sample_weight, **fit_params
            )
        fit_kwargs = dict(fit_params)
        if sample_weight is not None and not frozen:
            if has_fit_parameter(estimator, "sample_weight"):
                fit_kwargs["sample_weight"] = sample_weight
            else:
                warnings.warn(
                    f"{type(estimator).__name__}.fit does not accept "
                    "sample_weight; the weights only enter the class prior. "
                    "Enable metadata routing to send them through a pipeline.",
                    UserWarning,
                )
        return Bunch(estimator=Bunch(fit=fit_kwargs), splitter=Bunch(split={}))

    def _resolve_prior(self, y, classes, sample_weight):
        weight = np.bincount(
            _class_index(classes, y), weights=sample_weight, minlength=len(classes)
        )
        prior = resolve_prior(self.prior, weight)
        absent = classes[weight == 0]
        if self.prior is None and len(absent):
            warnings.warn(
                f"Classes {absent.tolist()} have no weight in y, so prior_ is zero for "
                "them and corrected rows give them probability 0; pass prior= "
                "to avoid this.",
                UserWarning,
            )
        return prior

    def _out_of_fold_proba(self, estimator, X, y, classes, routed):
        """Probabilities of each test row from a clone fitted without its fold.

        Returns the probabilities and the row indices (rows of several test
        folds appear once per fold).
        """
        cv = check_cv(self.cv, y, classifier=True)
        blocks, rows = [], []
        for train, test in cv.split(X, y, **routed.splitter.split):
            params = _check_method_params(X, params=routed.estimator.fit, indices=train)
            model = clone(estimator).fit(
                _safe_indexing(X, train), _safe_indexing(y, train), **params
            )
            blocks.append(_checked_proba(model, _safe_indexing(X, test), classes))
            rows.append(np.asarray(test))
        return np.concatenate(blocks), np.concatenate(rows)

    def _warn_about_reference(self):
        if len(self.reference_) == 0:
            warnings.warn(
                "No out-of-fold prediction has uncertainty below threshold="
                f"{self.threshold}, so the reference set is empty and "
                "predict_proba returns the base probabilities unchanged. Raise "
                "threshold, or use reference='batch' or 'both'.",
                UserWarning,
            )
            return
        mass = self.reference_weight_ @ self.reference_
        empty = (mass == 0) & (self.prior_ > 0)
        if empty.any():
            warnings.warn(
                f"Classes {self.classes_[empty].tolist()} have no probability "
                "mass in the reference rows: every uncertain row that gives "
                "them any probability is moved to them. Raise threshold to "
                "take more reference rows.",
                UserWarning,
            )

    def _adjusted(self, X, log):
        """Corrected probabilities (or their logs) of the base classifier on X.

        The logs start from the base classifier's own ``predict_log_proba``
        when it has one: finite where its probabilities underflow to zero, so
        that ``-inf`` is left only where a probability is exactly zero.
        """
        proba = _checked_proba(self.estimator_, X, self.classes_)
        rows = proba.astype(np.float64, copy=False)
        if log and hasattr(self.estimator_, "predict_log_proba"):
            log_rows = _checked_proba(self.estimator_, X, self.classes_, log=True)
            log_rows = log_rows.astype(np.float64, copy=False)
        else:
            log_rows = _log(rows)
        uncertain, corrected = correct_uncertain(
            rows,
            self.prior_,
            reference=self.reference_,
            reference_weight=self.reference_weight_,
            batch=self.reference != "fit",
            threshold=self.threshold,
            top_k=self.top_k,
            n_iter=self.n_iter,
            alpha=self.alpha,
            log_rows=log_rows,
            warn=self.reference != "fit",  # "fit" warned in fit
        )
        out = log_rows.copy() if log else rows.copy()
        if corrected is not None:
            out[uncertain] = corrected if log else np.exp(corrected)
        return out.astype(proba.dtype, copy=False)

    def predict_proba(self, X):
        """Probabilities of the base classifier, uncertain rows corrected by CAN.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self._rows(partial(self._adjusted, log=False), X, len(self.classes_))

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`; corrected rows are computed in log space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Rows that CAN leaves unchanged are the base classifier's own
            ``predict_log_proba`` when it has one (finite where its
            probabilities underflow to zero), and corrected rows start from
            them; ``-inf`` only where a probability is exactly zero (a class
            the base classifier gives none, or a zero prior).
        """
        check_is_fitted(self)
        return self._rows(partial(self._adjusted, log=True), X, len(self.classes_))

    def predict(self, X):
        """Most probable class after the correction.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self._rows(self._predict, X, None, self.classes_.dtype)

    def _predict(self, X):
        return self.classes_[np.argmax(self._adjusted(X, log=False), axis=1)]

    def _rows(self, method, X, n_outputs, out_dtype=np.float64):
        """``method(X)``; for Dask input, lazily, chunk by chunk."""
        if _dask.is_dask_collection(X) and self.reference != "fit":
            raise ValueError(
                f"reference={self.reference!r} corrects rows against the rest of "
                "the batch, which a Dask collection does not hold in one piece; "
                "use reference='fit', or compute X first."
            )
        return _dask.map_rows(
            self, method, X, n_outputs=n_outputs, out_dtype=out_dtype, validate=False
        )

    def get_metadata_routing(self):
        """Metadata routing: ``fit`` parameters go to the base ``fit`` and to ``split``.

        Returns
        -------
        routing : MetadataRouter
        """
        return (
            MetadataRouter(owner=self)
            .add_self_request(self)
            .add(
                estimator=self._get_estimator(),
                method_mapping=MethodMapping().add(caller="fit", callee="fit"),
            )
            .add(
                splitter=check_cv(self.cv, classifier=True),
                method_mapping=MethodMapping().add(caller="fit", callee="split"),
            )
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        estimator_tags = get_tags(self._get_estimator())
        tags.input_tags.sparse = estimator_tags.input_tags.sparse
        tags.input_tags.allow_nan = estimator_tags.input_tags.allow_nan
        return tags


def _checked_proba(estimator, X, classes, log=False):
    """``estimator.predict_proba(X)`` validated, one column per class of ``classes``.

    A class the estimator has not seen (missing from a training fold) gets a
    column of zeros. With ``log=True``, ``estimator.predict_log_proba(X)``
    (``-inf`` for the unseen classes).
    """
    method = "predict_log_proba" if log else "predict_proba"
    with np.errstate(divide="ignore"):  # log(0) = -inf in many predict_log_proba
        proba = np.asarray(getattr(estimator, method)(X))
    if proba.dtype.kind != "f":
        proba = proba.astype(np.float64)
    name = f"{type(estimator).__name__}.{method}(X)"
    if log:
        if proba.ndim != 2 or np.isnan(proba).any() or (proba > 1e-6).any():
            raise ValueError(
                f"{name} must return a 2-D array of log probabilities (at most "
                "0, no NaN)."
            )
    else:
        proba = check_proba_rows(proba, name=name)
    known = getattr(estimator, "classes_", None)
    if known is None or np.array_equal(known, classes):
        if proba.shape[1] != len(classes):
            raise ValueError(
                f"{name} has {proba.shape[1]} columns; expected {len(classes)}."
            )
        return proba
    position = _class_index(classes, known)
    if proba.shape[1] != len(known) or not np.array_equal(classes[position], known):
        raise ValueError(
            f"The classes of {type(estimator).__name__} ({known!r}) are not "
            f"among the classes of y ({classes!r})."
        )
    full = np.full((proba.shape[0], len(classes)), -np.inf if log else 0.0)
    full = full.astype(proba.dtype, copy=False)
    full[:, position] = proba
    return full


def _class_index(classes, labels):
    """Position of each label in ``classes`` (any order; unknown labels: wrong)."""
    order = np.argsort(classes, kind="stable")
    found = np.searchsorted(classes, labels, sorter=order)
    return order[np.minimum(found, len(classes) - 1)]
