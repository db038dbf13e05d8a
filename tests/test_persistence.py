"""Fitted estimators survive pickle, joblib and skops.io bit for bit.

For skops, the types a user must trust are computed with
``skops.io.get_untrusted_types``; they must be skprob's own classes (or a few
well-known library types), each named in the estimator's docstring, and the
model must load with exactly those trusted.
"""

import pickle
import re
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal
from scipy import stats
from sklearn.frozen import FrozenEstimator

from skprob import (
    AnalyticLogisticRegression,
    AnalyticSoftmaxClassifier,
    CANCalibrator,
    EntropyNormalizer,
    GaussianDistance,
    PerturbMaxTransformer,
)

sio = pytest.importorskip("skops.io")

rng = np.random.RandomState(0)
LABELS = np.array(["cat", "dog", "owl"])
Y = LABELS[rng.randint(3, size=120)]
X = rng.normal(size=(120, 5)) + (Y == "dog")[:, None] * 1.2
X_NEW = rng.normal(size=(40, 5))
FRAME = pd.DataFrame(X, columns=["a", "b", "c", "d", "e"])
FRAME_NEW = pd.DataFrame(X_NEW, columns=FRAME.columns)
PROBA = rng.dirichlet(np.full(4, 0.8), size=60)
PROBA_NEW = rng.dirichlet(np.full(4, 0.8), size=20)


def _fit(estimator, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(*args, **kwargs)


# (id, fitted estimator, new data for its prediction methods)
CASES = [
    (
        "logistic-binary",
        lambda: _fit(AnalyticLogisticRegression(), X, Y == "dog"),
        X_NEW,
    ),
    (
        "logistic-strings-shrinkage",
        lambda: _fit(AnalyticLogisticRegression(shrinkage="auto"), X, Y),
        X_NEW,
    ),
    (
        "softmax-pandas",
        lambda: _fit(AnalyticSoftmaxClassifier(), FRAME, Y),
        FRAME_NEW,
    ),
    (
        "softmax-fixed-temperature",
        lambda: _fit(
            AnalyticSoftmaxClassifier(temperature=None, priors="uniform"), X, Y
        ),
        X_NEW,
    ),
    ("can-strings", lambda: _fit(CANCalibrator(threshold=0.5), X, Y), X_NEW),
    (
        "can-pandas-batch",
        lambda: _fit(CANCalibrator(reference="both", n_iter=2), FRAME, Y),
        FRAME_NEW,
    ),
    (
        "can-frozen",
        lambda: _fit(
            CANCalibrator(FrozenEstimator(_fit(AnalyticSoftmaxClassifier(), X, Y))),
            X_NEW,
            Y[:40],
        ),
        X_NEW,
    ),
    ("entropy-learned", lambda: _fit(EntropyNormalizer(), PROBA), PROBA_NEW),
    (
        "entropy-logits-pandas",
        lambda: _fit(
            EntropyNormalizer(0.4, unit="relative", input="logits"),
            pd.DataFrame(np.log(PROBA), columns=list("pqrs")),
        ),
        pd.DataFrame(np.log(PROBA_NEW), columns=list("pqrs")),
    ),
    ("perturb-normal", lambda: _fit(PerturbMaxTransformer("normal"), X), X_NEW),
    (
        "perturb-frozen-t",
        lambda: _fit(PerturbMaxTransformer(stats.t(5), scale=2.0), X[:, :3]),
        X_NEW[:, :3],
    ),
    ("distance-w2", lambda: _fit(GaussianDistance(), X), X_NEW),
    ("distance-low-rank", lambda: _fit(GaussianDistance(), X[:3]), X_NEW),
    (
        "distance-kl-classes-pandas",
        lambda: _fit(GaussianDistance("kl", shrinkage="auto"), FRAME, Y),
        FRAME_NEW,
    ),
    (
        "distance-diag",
        lambda: _fit(GaussianDistance("hellinger", covariance_type="diag"), X),
        X_NEW,
    ),
]

METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "transform",
    "distance",
)


def outputs(model, X_new):
    """Every prediction-like output of ``model`` on ``X_new``, by method."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            name: np.asarray(getattr(model, name)(X_new))
            for name in METHODS
            if hasattr(model, name)
        }


def assert_same_outputs(loaded, model, X_new):
    expected = outputs(model, X_new)
    got = outputs(loaded, X_new)
    assert got.keys() == expected.keys() and expected
    for name in expected:
        assert_array_equal(got[name], expected[name], err_msg=name, strict=True)


def _pickle(model, tmp_path):
    return pickle.loads(pickle.dumps(model))


def _joblib(model, tmp_path):
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    return joblib.load(path)


def _skops(model, tmp_path):
    data = sio.dumps(model)
    untrusted = sio.get_untrusted_types(data=data)
    for name in untrusted:
        assert _well_known(name), f"{name} would have to be trusted to load"
    documented = _documented_types(model)
    for name in untrusted:
        assert name in documented, f"{name} is missing from the docstring"
    return sio.loads(data, trusted=untrusted)


def _well_known(name):
    """skprob's own classes, or a frozen scipy.stats distribution (its noise)."""
    return name.startswith("skprob.") or name in (
        "scipy.stats._distn_infrastructure.rv_continuous_frozen",
        "scipy.stats._continuous_distns.t_gen",
    )


def _documented_types(model):
    """Type names quoted in the docstrings of the model and its parts."""
    names = set()
    for part in (model, getattr(model, "estimator_", None)):
        if part is not None:
            names.update(re.findall(r"``([\w.]+)``", type(part).__doc__ or ""))
    return names


@pytest.mark.parametrize("save", [_pickle, _joblib, _skops], ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    "make, X_new", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_round_trip_predicts_bit_for_bit(make, X_new, save, tmp_path):
    model = make()
    loaded = save(model, tmp_path)
    assert type(loaded) is type(model)
    assert_same_outputs(loaded, model, X_new)
    if hasattr(model, "score"):
        classes = getattr(model, "classes_", None)
        y_new = None
        if hasattr(model, "predict"):
            y_new = classes[np.arange(len(X_new)) % len(classes)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert loaded.score(X_new, y_new) == model.score(X_new, y_new)


@pytest.mark.parametrize("temperature", ["auto", None])
@pytest.mark.parametrize(
    "Classifier", [AnalyticLogisticRegression, AnalyticSoftmaxClassifier]
)
def test_partial_fit_continues_after_a_skops_round_trip(Classifier, temperature):
    """The sufficient statistics travel with the model."""
    model = Classifier(temperature=temperature).partial_fit(
        X[:60], Y[:60], classes=LABELS
    )
    data = sio.dumps(model)
    loaded = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    model.partial_fit(X[60:], Y[60:])
    loaded.partial_fit(X[60:], Y[60:])
    for name in ("coef_", "intercept_", "temperature_"):
        assert_array_equal(getattr(loaded, name), getattr(model, name), strict=True)
    assert_same_outputs(loaded, model, X_NEW)
    # and both are the model fitted on all the rows at once (the temperature,
    # measured chunk by chunk with "auto", aside)
    whole = Classifier(temperature=temperature).fit(X, Y)
    np.testing.assert_allclose(
        loaded.coef_ / loaded.temperature_, whole.coef_ / whole.temperature_
    )
    if temperature is None:
        np.testing.assert_allclose(
            loaded.predict_proba(X_NEW), whole.predict_proba(X_NEW)
        )


def test_skops_refuses_to_load_untrusted_types():
    """Nothing is trusted by default: loading names the types to trust."""
    data = sio.dumps(_fit(AnalyticSoftmaxClassifier(), X, Y))
    with pytest.raises(Exception, match="skprob"):
        sio.loads(data)


def test_file_round_trip_with_skops(tmp_path):
    model = _fit(CANCalibrator(), FRAME, Y)
    path = tmp_path / "can.skops"
    sio.dump(model, path)
    trusted = sio.get_untrusted_types(file=path)
    loaded = sio.load(path, trusted=trusted)
    assert_same_outputs(loaded, model, FRAME_NEW)
    assert_array_equal(loaded.feature_names_in_, FRAME.columns)
