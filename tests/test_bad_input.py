"""Every public estimator method and function against bad and hard input.

A table-driven test: each *target* (an estimator method, or a public function)
meets each *case* (NaN, infinity, empty arrays, one sample, one feature, the
wrong number of features, bad probability rows, strings, objects, complex
numbers, extreme magnitudes, float32, Fortran order, non-contiguous views,
read-only memmaps). `expected` decides, case by case, whether the right
outcome is a clear error (its type and a pattern its message must match) or a
result; a result must contain no NaN, be finite unless the value is truly
infinite, and agree with a cheap reference where there is one (the same call
on the plain float64 C-ordered values, the unscaled data, the limit of the
map). No call may modify its input arrays. The outcomes are printed as a
matrix at the end of the session (see ``conftest.py``).
"""

import importlib.util
import pickle
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from skprob import (
    AnalyticLogisticRegression,
    AnalyticSoftmaxClassifier,
    CANCalibrator,
    EntropyNormalizer,
    GaussianDistance,
    PerturbMaxTransformer,
    VAEDensity,
    can_adjust,
    entropy_invariant_scale,
    entropy_normalize,
    gaussian_bhattacharyya_distance,
    gaussian_hellinger_distance,
    gaussian_kl_divergence,
    gaussian_wasserstein_distance,
    perturb_max_proba,
    topk_uncertainty,
)

# ---------------------------------------------------------------------------
# Clean data of each kind
# ---------------------------------------------------------------------------

_rng = np.random.RandomState(0)
Y3 = np.repeat([0, 1, 2], 20)
X3 = _rng.normal(size=(60, 4)) + 1.5 * Y3[:, None] * np.array([1.0, -0.5, 0.3, 0.0])
Y2 = (Y3 > 0).astype(int)
PROBA = _rng.dirichlet(np.full(4, 0.7), size=40)
SCORES = _rng.normal(scale=2.0, size=(40, 4))
COUNTS = np.array([1.0, 2.0, 10.0, 512.0, 4096.0, 1e6])


def _spd(rng, d, n):
    a = rng.normal(size=(n, d, d))
    return a @ np.swapaxes(a, 1, 2) / d + 0.3 * np.eye(d)


GAUSS = {
    "mean1": _rng.normal(size=(3, 3)),
    "cov1": _spd(_rng, 3, 3),
    "mean2": _rng.normal(size=(3, 3)),
    "cov2": _spd(_rng, 3, 3),
}
# second data set for GaussianDistance.distance and classifier probes
Z3 = _rng.normal(size=(50, 4)) + 0.4

# ---------------------------------------------------------------------------
# Cases: value edits (on float64 C arrays) and representation changes
# ---------------------------------------------------------------------------


def _put(value):
    def edit(A, kind):
        A = A.copy()
        A[(1,) * A.ndim] = value
        return A

    return edit


def _scale(s):
    def edit(A, kind):
        if kind == "gaussian-cov":
            return A * s * s
        return A * s

    return edit


def _negative(A, kind):
    if kind != "proba":
        return None
    A = A.copy()
    A[1, 2] = -0.1
    return A


def _unnormalised(A, kind):
    return A * 3.0 if kind == "proba" else None


def _tiny(A, kind):
    """Valid rows of probabilities holding entries of 1e-300."""
    if kind != "proba":
        return None
    A = A.copy()
    A[::2, 1:] *= 1e-300
    return A / A.sum(axis=1, keepdims=True)


def _memmap(A):
    path = _memmap.directory / f"a{_memmap.count}.dat"
    _memmap.count += 1
    array = np.memmap(path, dtype=A.dtype, mode="w+", shape=A.shape)
    array[...] = A
    array.flush()
    return np.memmap(path, dtype=A.dtype, mode="r", shape=A.shape)


_memmap.count = 0


def _strided(A):
    """The same values as a non-contiguous view (every other row and column)."""
    big = np.zeros(tuple(2 * n for n in A.shape), dtype=A.dtype)
    big[tuple(slice(None, None, 2) for _ in A.shape)] = A
    view = big[tuple(slice(None, None, 2) for _ in A.shape)]
    assert not view.flags.c_contiguous or A.size <= 1
    return view


@dataclass(frozen=True)
class Case:
    name: str
    rows: tuple = (None,)  # slice of the rows kept (y follows)
    cols: tuple = (None,)  # slice of the columns kept, at fit and predict time
    edit: object = None  # (float64 array, kind) -> array, or None if n/a
    form: object = None  # the same values in another representation
    extra_column: bool = False  # wrong n_features (predict-time only)
    rtol: float = 1e-9  # against the reference on plain float64 values

    @property
    def row_slice(self):
        return slice(*self.rows)

    @property
    def col_slice(self):
        return slice(*self.cols)


CASES = [
    Case("NaN", edit=_put(np.nan)),
    Case("inf", edit=_put(np.inf)),
    Case("empty", rows=(0, 0)),
    Case("1 sample", rows=(0, 1)),
    Case("1 feature", cols=(0, 1)),
    Case("n_features", extra_column=True),
    Case("negative", edit=_negative),
    Case("unnormed", edit=_unnormalised),
    Case("1e-300 p", edit=_tiny),
    Case("strings", form=lambda A: A.astype(str)),
    Case("objects", form=lambda A: A.astype(object)),
    Case("complex", form=lambda A: A.astype(np.complex128)),
    Case("x1e+150", edit=_scale(1e150)),
    Case("x1e-150", edit=_scale(1e-150)),
    Case("float32", form=lambda A: A.astype(np.float32), rtol=1e-4),
    Case("Fortran", form=np.asfortranarray),
    Case("F float32", form=lambda A: np.asfortranarray(A, np.float32), rtol=1e-4),
    Case("strided", form=_strided),
    Case("memmap", form=_memmap),
]

# ---------------------------------------------------------------------------
# Targets: what is called, on which argument
# ---------------------------------------------------------------------------


@dataclass
class Target:
    """One public entry point.

    ``call(args)`` runs it on a dict of arguments; ``args`` gives the clean
    arguments; ``primary`` names the arguments a case edits (the first one
    only for NaN and inf), with their kind; ``rows_of`` names arguments whose
    rows follow the primary's (labels). ``fits`` says whether the call learns
    from the primary argument (then a wrong width is no error).
    """

    name: str
    call: object
    args: dict
    primary: dict  # argument name -> kind
    rows_of: tuple = ()
    fits: bool = False
    limit: object = None  # (case name, clean args, output) -> check for magnitudes
    allow_inf: tuple = ()  # cases where an infinite result is the exact answer
    row_wise: bool = False  # output rows depend only on their input rows
    scale_fit: bool = False  # magnitudes scale the fitted data too


_FITTED = {}


def _fitted(make, X, y=None):
    """A model fitted on clean data, cached by its recipe and the data width."""
    key = (make, X.shape, X.tobytes(), None if y is None else np.asarray(y).tobytes())
    if key not in _FITTED:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = make()
            _FITTED[key] = model.fit(X) if y is None else model.fit(X, y)
    return pickle.loads(pickle.dumps(_FITTED[key]))  # a fresh copy per call


def _classifier_targets(label, make, X, y):
    classes = np.unique(y)
    targets = []

    def fit(a):
        model = make().fit(a["X"], a["y"])
        return model.predict_proba(np.array(a["X"], dtype=np.float64))

    def partial_fit(a):
        model = make()
        if a.get("first") is not None:  # a fitted model meets a wrong width
            model.partial_fit(a["first"], y, classes=classes)
        model.partial_fit(a["X"], a["y"], classes=classes)
        return model.predict_proba(np.array(a["X"], dtype=np.float64))

    def same_predictions(case, a, out):
        # fit and predict on X * s: the predictions of the unscaled problem
        clean = _fitted(make, X, y).predict(X)
        assert_array_equal(classes[out.argmax(axis=1)], clean)

    targets.append(
        Target(
            f"{label}.fit",
            fit,
            {"X": X, "y": y},
            {"X": "features"},
            ("y",),
            True,
            limit=same_predictions,
        )
    )
    if hasattr(make(), "partial_fit"):
        targets.append(
            Target(
                f"{label}.partial_fit",
                partial_fit,
                {"X": X, "y": y},
                {"X": "features"},
                ("y",),
                True,
            )
        )
    for method in (
        "predict",
        "predict_proba",
        "predict_log_proba",
        "decision_function",
        "score_samples",
    ):
        if not hasattr(make(), method):
            continue

        def call(a, method=method):
            model = _fitted(make, a["fit_X"], y)
            return getattr(model, method)(a["X"])

        targets.append(
            Target(
                f"{label}.{method}",
                call,
                {"X": Z3, "fit_X": X},
                {"X": "features"},
                limit=_classifier_limit(make, y, method),
                row_wise=True,
            )
        )

    def score(a):
        return _fitted(make, a["fit_X"], y).score(a["X"], a["y"])

    targets.append(
        Target(
            f"{label}.score",
            score,
            {"X": X, "y": y, "fit_X": X},
            {"X": "features"},
            ("y",),
        )
    )
    return targets


def _classifier_limit(make, y, method):
    """Predictions for X * 1e+-150: the limits of the linear model."""

    def check(case, a, out):
        model = _fitted(make, a["fit_X"], y)
        linear = getattr(model, "estimator_", model)  # CAN: its base model
        if method == "predict" and (linear is model or case == "x1e+150"):
            # CAN leaves the one-hot rows of x1e+150 alone, but corrects the
            # uncertain softmax(intercept) rows of x1e-150
            if case == "x1e+150":
                scores = a["X_clean"] @ linear.coef_.T  # the intercept vanishes
            else:
                shape = (len(out), len(linear.coef_))
                scores = np.broadcast_to(linear.intercept_, shape)
            index = (
                (scores[:, 0] > 0).astype(int)
                if scores.shape[1] == 1
                else scores.argmax(axis=1)
            )
            assert_array_equal(out, model.classes_[index])
        if method in ("predict_proba", "predict_log_proba"):
            proba = out if method == "predict_proba" else np.exp(out)
            assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)

    return check


def _binary():
    return AnalyticLogisticRegression()


def _softmax():
    return AnalyticSoftmaxClassifier()


def _can():
    # a fixed temperature: "auto" cross-fits on folds drawn by a hash of the
    # rows' bits, and X * 1e150 is another draw (tests/test_calibration.py)
    return CANCalibrator(
        AnalyticSoftmaxClassifier(temperature=0.5), cv=3, threshold=0.5
    )


def _transformer_targets(label, make, P, kind, limit=None):
    def fit(a):
        model = make().fit(a["X"])
        return model.transform(np.array(a["X"], dtype=np.float64))

    def fit_transform(a):
        return make().fit_transform(a["X"])

    def transform(a):
        return _fitted(make, a["fit_X"]).transform(a["X"])

    return [
        Target(f"{label}.fit", fit, {"X": P}, {"X": kind}, fits=True),
        Target(
            f"{label}.fit_transform",
            fit_transform,
            {"X": P},
            {"X": kind},
            fits=True,
            limit=limit,
        ),
        Target(
            f"{label}.transform",
            transform,
            {"X": P, "fit_X": P},
            {"X": kind},
            limit=limit,
            row_wise=True,
        ),
    ]


def _gd_targets(label, make):
    def fit(a):
        return make().fit(a["X"]).distance(a["Z_clean"])

    def distance(a):
        return _fitted(make, a["fit_X"]).distance(a["X"])

    def score(a):
        return _fitted(make, a["fit_X"]).score(a["X"])

    scaled = make().metric == "wasserstein"

    def limit(case, a, out):
        # reference and new data both scaled: W2 scales, the others do not
        s = 1e150 if case == "x1e+150" else 1e-150
        clean = _fitted(make, X3).distance(Z3)
        expected = clean * s if scaled else clean
        assert_allclose(abs(out), expected, rtol=1e-8)

    allow = () if scaled else ("1 sample",)
    return [
        Target(
            f"{label}.fit",
            fit,
            {"X": X3},
            {"X": "features"},
            fits=True,
            limit=limit,
            allow_inf=allow,
        ),
        Target(
            f"{label}.distance",
            distance,
            {"X": Z3, "fit_X": X3},
            {"X": "features"},
            limit=limit,
            allow_inf=allow,
            scale_fit=True,
        ),
        Target(
            f"{label}.score",
            score,
            {"X": Z3, "fit_X": X3},
            {"X": "features"},
            limit=limit,
            allow_inf=allow,
            scale_fit=True,
        ),
    ]


def _density_targets(label, make, X):
    """A density estimator: fit, partial_fit, score_samples, score, transform."""

    def fit(a):
        model = make().fit(a["X"])
        return model.score_samples(np.array(a["X"], dtype=np.float64))

    def partial_fit(a):
        model = make()
        if a.get("first") is not None:  # a fitted model meets a wrong width
            model.partial_fit(a["first"])
        model.partial_fit(a["X"])
        return model.score_samples(np.array(a["X"], dtype=np.float64))

    def score_samples(a):
        return _fitted(make, a["fit_X"]).score_samples(a["X"])

    def score(a):
        return _fitted(make, a["fit_X"]).score(a["X"])

    def transform(a):
        return _fitted(make, a["fit_X"]).transform(a["X"])

    def shifted_by_the_jacobian(case, a, out):
        # fitted on X * s: the standardised rows, hence the network, are those
        # of the unscaled fit; each log-density moves by -n_features * log(s)
        s = 1e150 if case == "x1e+150" else 1e-150
        clean = _fitted(make, a["X_unscaled"]).score_samples(a["X_unscaled"])
        shift = a["X_unscaled"].shape[1] * np.log(s)
        assert_allclose(out, clean - shift, rtol=1e-4)

    return [
        Target(
            f"{label}.fit",
            fit,
            {"X": X},
            {"X": "features"},
            fits=True,
            limit=shifted_by_the_jacobian,
        ),
        Target(
            f"{label}.partial_fit", partial_fit, {"X": X}, {"X": "features"}, fits=True
        ),
        Target(
            f"{label}.score_samples",
            score_samples,
            {"X": Z3, "fit_X": X},
            {"X": "features"},
            row_wise=True,
        ),
        Target(f"{label}.score", score, {"X": Z3, "fit_X": X}, {"X": "features"}),
        Target(
            f"{label}.transform",
            transform,
            {"X": Z3, "fit_X": X},
            {"X": "features"},
            row_wise=True,
        ),
    ]


def _vae():
    # small and few epochs: the cases test the input handling, not the fit
    return VAEDensity(
        2, hidden_layer_sizes=(8,), max_iter=10, n_score_samples=50, random_state=0
    )


def _entropy_normalizer():
    return EntropyNormalizer(0.5)


def _entropy_normalizer_learned():
    return EntropyNormalizer()


def _logit_normalizer():
    return EntropyNormalizer(0.6, input="logits")


def _perturb_max():
    return PerturbMaxTransformer("normal")


def _gd_w2():
    return GaussianDistance()


def _gd_kl():
    return GaussianDistance("kl", covariance_type="full", shrinkage="auto")


def _same_as_clean(function):
    """Magnitude check for maps that ignore the scale of the rows."""

    def check(case, a, out):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clean = function(a["X_unscaled"])
        assert_allclose(out, clean, rtol=1e-6, atol=1e-9)

    return check


def _one_hot_or_uniform(case, a, out):
    """Perturb-max limits: scores x 1e150 win outright, x 1e-150 tie."""
    scores = a["X_unscaled"]
    if case == "x1e+150":
        expected = np.eye(scores.shape[1])[scores.argmax(axis=1)]
    else:
        expected = np.full(scores.shape, 1.0 / scores.shape[1])
    assert_allclose(out, expected, rtol=1e-9, atol=1e-12)


def _gaussian_limit(squared_scale):
    def check(case, a, out):
        s = 1e150 if case == "x1e+150" else 1e-150
        clean = a["function"](**{k: GAUSS[k] for k in GAUSS})
        assert_allclose(out, clean * (s if squared_scale else 1.0), rtol=1e-8)

    return check


def _counts_limit(case, a, out):
    n = COUNTS * 1e150
    assert_allclose(out, np.log(n) / (np.log(512) * np.sqrt(64)), rtol=1e-14)


def _function_targets():
    targets = []
    reference = PROBA[PROBA.max(axis=1) > 0.6]

    def can(a):
        return can_adjust(a["X"], a["reference"], np.ones(a["reference"].shape[1]))

    targets.append(
        Target(
            "can_adjust",
            can,
            {"X": PROBA, "reference": reference},
            {"X": "proba", "reference": "proba"},
            row_wise=False,
        )
    )
    targets.append(
        Target(
            "topk_uncertainty",
            lambda a: topk_uncertainty(a["X"]),
            {"X": PROBA},
            {"X": "proba"},
        )
    )

    def normalize(a):
        return entropy_normalize(a["X"], 0.5)

    targets.append(
        Target(
            "entropy_normalize",
            normalize,
            {"X": PROBA},
            {"X": "proba"},
            limit=_same_as_clean(lambda P: entropy_normalize(P, 0.5)),
            row_wise=True,
        )
    )

    def normalize_logits(a):
        return entropy_normalize(a["X"], 0.6, input="logits")

    targets.append(
        Target(
            "entropy_normalize(logits)",
            normalize_logits,
            {"X": SCORES},
            {"X": "scores"},
            limit=_same_as_clean(lambda S: entropy_normalize(S, 0.6, input="logits")),
            row_wise=True,
        )
    )

    def perturb(a):
        return perturb_max_proba(a["X"], "normal")

    targets.append(
        Target(
            "perturb_max_proba",
            perturb,
            {"X": SCORES},
            {"X": "scores"},
            limit=_one_hot_or_uniform,
            row_wise=True,
        )
    )

    def scale(a):
        return entropy_invariant_scale(a["X"], 64)

    targets.append(
        Target(
            "entropy_invariant_scale",
            scale,
            {"X": COUNTS},
            {"X": "counts"},
            limit=_counts_limit,
            row_wise=True,
        )
    )
    for function, squared in (
        (gaussian_kl_divergence, False),
        (gaussian_bhattacharyya_distance, False),
        (gaussian_hellinger_distance, False),
        (gaussian_wasserstein_distance, True),
    ):

        def call(a, function=function):
            return function(a["mean1"], a["cov1"], a["mean2"], a["cov2"])

        targets.append(
            Target(
                function.__name__,
                call,
                dict(GAUSS, function=function),
                {
                    "cov1": "gaussian-cov",
                    "mean1": "gaussian-mean",
                    "mean2": "gaussian-mean",
                    "cov2": "gaussian-cov",
                },
                limit=_gaussian_limit(squared),
                row_wise=True,
            )
        )
    return targets


TARGETS = [
    *_classifier_targets("AnalyticLogisticRegression", _binary, X3, Y2),
    *_classifier_targets("AnalyticSoftmaxClassifier", _softmax, X3, Y3),
    *_classifier_targets("CANCalibrator", _can, X3, Y3),
    *_transformer_targets(
        "EntropyNormalizer",
        _entropy_normalizer,
        PROBA,
        "proba",
        limit=_same_as_clean(lambda P: entropy_normalize(P, 0.5)),
    ),
    *_transformer_targets(
        "EntropyNormalizer(learned)", _entropy_normalizer_learned, PROBA, "proba"
    ),
    *_transformer_targets(
        "EntropyNormalizer(logits)",
        _logit_normalizer,
        SCORES,
        "scores",
        limit=_same_as_clean(lambda S: entropy_normalize(S, 0.6, input="logits")),
    ),
    *_transformer_targets(
        "PerturbMaxTransformer(normal)",
        _perturb_max,
        SCORES,
        "scores",
        limit=_one_hot_or_uniform,
    ),
    *_gd_targets("GaussianDistance(W2)", _gd_w2),
    *_gd_targets("GaussianDistance(KL)", _gd_kl),
    *(
        _density_targets("VAEDensity", _vae, X3)
        if importlib.util.find_spec("torch") is not None  # the torch extra
        else []
    ),
    *_function_targets(),
]

# ---------------------------------------------------------------------------
# Expected outcomes
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Raises:
    error: tuple
    match: str


NOT_APPLICABLE = "n/a"
RESULT = "result"
CLASSIFIER_NAMES = (
    "AnalyticLogisticRegression",
    "AnalyticSoftmaxClassifier",
    "CANCalibrator",
)


def _estimator(target):
    return "." in target.name


def expected(case, target):
    """The right outcome of ``case`` for ``target``: Raises, RESULT or n/a."""
    kinds = set(target.primary.values())
    gaussian = "gaussian-mean" in kinds
    name = case.name
    if name == "NaN":
        return Raises((ValueError,), r"NaN")
    if name == "inf":
        return Raises((ValueError,), r"inf")
    if name == "empty":
        # estimators follow scikit-learn (at least one sample); a function on
        # rows maps no rows to no rows
        if _estimator(target):
            return Raises((ValueError,), r"0 sample")
        return RESULT
    if name == "1 sample":
        # a classifier's fit needs two classes; partial_fit is told the classes
        classifier = target.name.split(".")[0] in CLASSIFIER_NAMES
        if classifier and target.name.endswith(".fit"):
            return Raises((ValueError,), r"class")
        return RESULT
    if name == "1 feature":
        return NOT_APPLICABLE if kinds == {"counts"} else RESULT
    if name == "n_features":
        if kinds == {"counts"} or (target.fits and "partial" not in target.name):
            return NOT_APPLICABLE
        row_maps = (
            "entropy_normalize",
            "entropy_normalize(logits)",
            "perturb_max_proba",
            "topk_uncertainty",
        )
        if target.name in row_maps:
            return NOT_APPLICABLE  # any number of columns is valid
        if gaussian:
            return Raises((ValueError,), r"dimension")
        return Raises((ValueError,), r"features|columns")
    if name == "negative":
        if "proba" not in kinds:
            return NOT_APPLICABLE
        return Raises((ValueError,), r"[Nn]egative")
    if name == "unnormed":
        if "proba" not in kinds:
            return NOT_APPLICABLE
        if target.name in ("can_adjust", "topk_uncertainty"):
            return Raises((ValueError,), r"sum to 1")
        return RESULT  # rows are used up to scale
    if name == "1e-300 p":
        return RESULT if "proba" in kinds else NOT_APPLICABLE
    if name == "complex":
        return Raises((ValueError,), r"[Cc]omplex")
    if name in ("x1e+150", "x1e-150"):
        if target.name in ("can_adjust", "topk_uncertainty"):
            return Raises((ValueError,), r"sum to 1")
        if kinds == {"counts"} and name == "x1e-150":
            return Raises((ValueError,), r"at least 1")
        return RESULT
    return RESULT  # strings of numbers, objects, dtypes, layouts, memmaps


# ---------------------------------------------------------------------------
# Running one cell
# ---------------------------------------------------------------------------


def _values(case, kind, array):
    """The case's version of one argument: (plain float64 values, final form)."""
    A = np.array(array, dtype=np.float64)
    A = A[case.row_slice]
    if case.cols != (None,):
        if kind == "gaussian-cov":
            A = A[..., case.col_slice, case.col_slice]
        else:
            A = A[..., case.col_slice]
        if kind == "proba":
            A = A / A.sum(axis=-1, keepdims=True)
    if case.extra_column:
        if kind == "gaussian-cov":
            d = A.shape[-1]
            bigger = np.zeros(A.shape[:-2] + (d + 1, d + 1))
            bigger[..., :d, :d] = A
            bigger[..., d, d] = 1.0
            A = bigger
        else:
            A = np.hstack([A, A[:, :1]])
            if kind == "proba":
                A = A / A.sum(axis=1, keepdims=True)
    if case.edit is not None:
        edited = case.edit(A, kind)
        if edited is None:
            return None
        A = edited
    if case.form is None:
        return A, A
    form = case.form(A)
    if np.asarray(form).dtype.kind != "c":
        A = np.array(form, dtype=np.float64)  # the values it holds (float32: rounded)
    return A, form


def _arguments(case, target):
    """Arguments of the call, and the plain values for the references."""
    args = dict(target.args)
    plain = {}
    for index, (key, kind) in enumerate(target.primary.items()):
        one_only = case.name in ("NaN", "inf") and index > 0
        if case.extra_column and key in ("mean1", "cov1"):
            one_only = True  # only the second Gaussian gets another dimension
        if case.extra_column and key == "X" and "reference" in target.primary:
            one_only = True  # can_adjust: reference and proba disagree
        if case.extra_column and key == "reference":
            one_only = False
        if one_only:
            # the value edit and the extra column apply to one argument only
            narrow = Case(case.name, case.rows, case.cols, rtol=case.rtol)
            got = _values(narrow, kind, args[key])
            if case.form is not None:
                got = (got[0], case.form(got[0]))
        else:
            got = _values(case, kind, args[key])
        if got is None:
            return None, None
        plain[key], args[key] = got
    if case.extra_column and target.fits:
        # partial_fit: a model fitted on the clean width meets the wider X
        args["first"] = np.array(target.args["X"], dtype=np.float64)
        if "y" in target.args:
            args["y"] = target.args["y"]
        args["X"] = plain["X"] = np.hstack([args["first"], args["first"][:, :1]])
        return args, plain
    for key in target.rows_of:
        args[key] = np.asarray(args[key])[case.row_slice]
    if "fit_X" in args:
        fit_X = np.array(args["fit_X"], dtype=np.float64)[:, case.col_slice]
        if "proba" in target.primary.values():
            fit_X = fit_X / fit_X.sum(axis=1, keepdims=True)
        args["fit_X"] = fit_X
    if "Z_clean" not in args:
        args["Z_clean"] = np.array(Z3, dtype=np.float64)[:, case.col_slice]
    if case.name in ("x1e+150", "x1e-150"):
        s = 1e150 if case.name == "x1e+150" else 1e-150
        args["Z_clean"] = args["Z_clean"] * s
        if target.scale_fit:
            args["fit_X"] = args["fit_X"] * s
    args.pop("function", None)
    return args, plain


def _snapshot(args):
    """Bytes (and form) of every array argument, to detect any modification."""
    return {
        key: (type(v), v.dtype, v.shape, v.strides, v.tobytes())
        for key, v in args.items()
        if isinstance(v, np.ndarray)
    }


def _outputs(out):
    if isinstance(out, tuple):
        return [np.asarray(o) for o in out]
    return [np.asarray(out)]


def _run(case, target):
    """Run one cell; return its outcome label (raises on a wrong outcome)."""
    outcome = expected(case, target)
    if outcome == NOT_APPLICABLE:
        return "-"
    args, plain = _arguments(case, target)
    if args is None:
        return "-"
    call_args = {k: v for k, v in args.items()}
    if "function" in target.args:
        call_args["function"] = target.args["function"]
    before = _snapshot(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = target.call(call_args)
        except Exception as error:  # the outcome decides whether this is right
            if not isinstance(outcome, Raises):
                raise AssertionError(
                    f"{target.name} on {case.name}: expected a result, got "
                    f"{type(error).__name__}: {error}"
                ) from error
            if not isinstance(error, outcome.error):
                raise AssertionError(
                    f"{target.name} on {case.name}: expected "
                    f"{outcome.error}, got {type(error).__name__}: {error}"
                ) from error
            assert re.search(outcome.match, str(error)), (
                f"{target.name} on {case.name}: the message {str(error)!r} does "
                f"not match {outcome.match!r}"
            )
            assert _snapshot(args) == before, f"{target.name} modified its input"
            return {ValueError: "VE", TypeError: "TE"}.get(type(error), "E")
    assert _snapshot(args) == before, f"{target.name} modified its input"
    if isinstance(outcome, Raises):
        raise AssertionError(
            f"{target.name} on {case.name}: expected {outcome.error} matching "
            f"{outcome.match!r}, got a result"
        )
    numeric = [o for o in _outputs(out) if o.dtype.kind in "fc"]
    for o in numeric:
        assert not np.isnan(o).any(), f"{target.name} on {case.name}: NaN output"
        if case.name not in target.allow_inf:
            assert np.isfinite(o).all(), (
                f"{target.name} on {case.name}: infinite output"
            )
    _check_reference(case, target, args, plain, out)
    warned = [w for w in caught if not issubclass(w.category, DeprecationWarning)]
    return "ok+w" if warned else "ok"


def _reference(target, args, plain):
    """The same call on plain float64 C-ordered values."""
    ref = dict(args)
    ref.update(plain)
    if "function" in target.args:
        ref["function"] = target.args["function"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return target.call(ref)


def _check_reference(case, target, args, plain, out):
    if case.form is not None:  # same values in another form: same answer
        expected_out = _reference(target, args, plain)
        _assert_same(out, expected_out, case.rtol)
    elif case.name == "unnormed":
        normalised = {k: v / v.sum(axis=1, keepdims=True) for k, v in plain.items()}
        expected_out = _reference(target, args, normalised)
        _assert_same(out, expected_out, 1e-9)
    elif case.name in ("x1e+150", "x1e-150") and target.limit is not None:
        s = 1e150 if case.name == "x1e+150" else 1e-150
        info = dict(args)
        info["X_unscaled"] = plain.get("X", np.zeros(0)) / s
        info["X_clean"] = plain.get("X", np.zeros(0)) / s
        if target.fits:
            info["fit"] = True
        if "function" in target.args:
            info["function"] = target.args["function"]
        target.limit(case.name, info, out)
    elif case.name == "1 sample" and target.row_wise:
        full = _reference(target, dict(target.args), {})
        first = _outputs(full)[0][:1] if np.ndim(full) else full
        _assert_same(out, first, 1e-12)
    elif case.name == "empty":
        for o in _outputs(out):
            assert o.shape[0] == 0
    elif case.name == "1e-300 p":
        for o in _outputs(out):
            if o.ndim == 2:
                assert_allclose(o.sum(axis=1), 1.0, rtol=1e-12)


def _assert_same(out, expected_out, rtol):
    for o, e in zip(_outputs(out), _outputs(expected_out)):
        if o.dtype.kind in "fc":
            assert_allclose(o, e, rtol=rtol, atol=rtol * 1e-3)
        else:
            assert_array_equal(o, e)


# ---------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _memmap_directory(tmp_path_factory):
    _memmap.directory = tmp_path_factory.mktemp("memmaps")
    yield


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_bad_and_hard_input(target, case, bad_input_matrix):
    try:
        label = _run(case, target)
    except AssertionError:
        bad_input_matrix[target.name, case.name] = "FAIL"
        raise
    bad_input_matrix[target.name, case.name] = label


def test_every_public_entry_point_is_in_the_matrix():
    import skprob

    names = {t.name.split(".")[0].split("(")[0] for t in TARGETS}
    if importlib.util.find_spec("torch") is None:
        names.add("VAEDensity")  # its targets need the torch extra
    assert names == set(skprob.__all__)
    methods = {t.name.split(".", 1)[1] for t in TARGETS if "." in t.name}
    assert methods == {
        "fit",
        "partial_fit",
        "predict",
        "predict_proba",
        "predict_log_proba",
        "decision_function",
        "transform",
        "fit_transform",
        "distance",
        "score",
        "score_samples",
    }


def test_matrix_report_fits_in_100_columns():
    """The summary wraps the columns into blocks; no cell is lost."""
    from conftest import matrix_lines

    cases = [f"case number {k}" for k in range(12)]
    matrix = {(f"Estimator.method_{t}", c): "ok+w" for t in range(3) for c in cases}
    lines = matrix_lines(matrix, width=100)
    assert max(len(line) for line in lines) <= 100
    assert sum(line.count("ok+w") for line in lines) == len(matrix)
    headers = [line for line in lines if line.startswith(" ")]
    assert [c for h in headers for c in re.split(r"\s{2,}", h.strip())] == cases
