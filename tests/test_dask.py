"""Dask input: statistics per chunk on a real cluster, lazy prediction."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

from skprob import AnalyticLogisticRegression, AnalyticSoftmaxClassifier  # noqa: E402

CLASSIFIERS = [AnalyticLogisticRegression, AnalyticSoftmaxClassifier]


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def sorted_data(n=600, d=5, n_classes=4, seed=0):
    """Rows sorted by class, so that chunks miss classes."""
    rng = np.random.RandomState(seed)
    y = np.sort(rng.randint(n_classes, size=n))
    X = rng.normal(size=(n, d)) + y[:, None] * 0.7
    return X, y


def uneven(X, y, sizes):
    """Dask arrays of X, y with the given row chunks (zeros make empty chunks)."""
    return da.from_array(X, chunks=(tuple(sizes), X.shape[1])), da.from_array(
        y, chunks=(tuple(sizes),)
    )


CHUNKS = [0, 1, 149, 0, 250, 7, 193]  # empty chunks, a one-row chunk, missing classes


@pytest.mark.parametrize("Classifier", CLASSIFIERS)
@pytest.mark.parametrize("temperature", ["auto", None])
def test_fit_on_a_cluster_equals_numpy_fit(client, Classifier, temperature):
    X, y = sorted_data()
    dX, dy = uneven(X, y, CHUNKS)
    lazy = Classifier(temperature=temperature).fit(dX, dy)
    eager = Classifier(temperature=temperature).fit(X, y)
    assert_array_equal(lazy.classes_, eager.classes_)
    assert_allclose(lazy.temperature_, eager.temperature_, rtol=1e-10)
    assert_allclose(lazy.coef_, eager.coef_, rtol=1e-10, atol=1e-12)
    assert_allclose(lazy.intercept_, eager.intercept_, rtol=1e-10, atol=1e-12)
    assert_allclose(lazy.covariance_, eager.covariance_, rtol=1e-10, atol=1e-14)


def test_predictions_are_lazy_and_equal_numpy_predictions(client):
    X, y = sorted_data()
    dX, dy = uneven(X, y, CHUNKS)
    model = AnalyticSoftmaxClassifier().fit(dX, dy)
    for method in [
        "decision_function",
        "predict",
        "predict_proba",
        "predict_log_proba",
    ]:
        lazy = getattr(model, method)(dX)
        assert isinstance(lazy, da.Array), method
        assert lazy.chunks[0] == dX.chunks[0]  # rows never cross chunks
        assert_allclose(lazy.compute(), getattr(model, method)(X), rtol=1e-12)


def test_binary_decision_function_is_one_dimensional(client):
    X, y = sorted_data(n_classes=2)
    dX, dy = uneven(X, y, [100, 300, 200])
    model = AnalyticLogisticRegression().fit(dX, dy)
    scores = model.decision_function(dX)
    assert scores.ndim == 1
    assert_allclose(scores.compute(), model.decision_function(X), rtol=1e-12)


def test_dataframe_with_string_labels(client):
    X, y = sorted_data()
    names = np.array(["alpha", "beta", "gamma", "delta"])[y]
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame["label"] = names
    ddf = dd.from_pandas(frame, npartitions=5)
    features = [f"x{i}" for i in range(X.shape[1])]
    lazy = AnalyticSoftmaxClassifier().fit(ddf[features], ddf["label"])
    eager = AnalyticSoftmaxClassifier().fit(frame[features], frame["label"])
    assert_array_equal(lazy.classes_, ["alpha", "beta", "delta", "gamma"])
    assert_array_equal(lazy.feature_names_in_, features)
    assert_allclose(lazy.coef_, eager.coef_, rtol=1e-10, atol=1e-12)
    labels = lazy.predict(ddf[features])
    assert isinstance(labels, da.Array)
    assert_array_equal(labels.compute(), eager.predict(frame[features]))
    with pytest.raises(ValueError, match="feature names should match"):
        lazy.predict(ddf[features[::-1]])


def test_sample_weight_and_partial_fit(client):
    X, y = sorted_data()
    w = np.random.RandomState(1).uniform(0.2, 3, size=len(y))
    dX, dy = uneven(X, y, CHUNKS)
    dw = da.from_array(w, chunks=(tuple(CHUNKS),))
    weighted = AnalyticSoftmaxClassifier().fit(dX, dy, sample_weight=dw)
    eager = AnalyticSoftmaxClassifier().fit(X, y, sample_weight=w)
    assert_allclose(weighted.predict_proba(X), eager.predict_proba(X), rtol=1e-9)

    for temperature in (None, "auto"):
        stream = AnalyticSoftmaxClassifier(temperature=temperature)
        stream.partial_fit(dX[:300], dy[:300], classes=[0, 1, 2, 3])
        stream.partial_fit(dX[300:], dy[300:])
        whole = AnalyticSoftmaxClassifier(temperature=temperature).fit(X, y)
        # the statistics are exact; "auto" measures the temperature on each
        # chunk's rows with the model of the data seen so far
        ratio = stream.temperature_ / whole.temperature_
        assert ratio == pytest.approx(1.0, abs=0 if temperature is None else 0.05)
        assert_allclose(stream.coef_, ratio * whole.coef_, rtol=1e-9, atol=1e-12)


def test_errors_in_a_chunk_reach_the_caller(client):
    X, y = sorted_data()
    X[400, 2] = np.nan
    dX, dy = uneven(X, y, CHUNKS)
    with pytest.raises(ValueError, match="NaN"):
        AnalyticSoftmaxClassifier().fit(dX, dy)
    with pytest.raises(ValueError, match="not in classes"):
        AnalyticSoftmaxClassifier().partial_fit(dX[:100], dy[:100] + 5, classes=[0, 1])


def test_threaded_scheduler_without_a_cluster():
    import dask

    X, y = sorted_data()
    dX, dy = uneven(X, y, CHUNKS)
    with dask.config.set(scheduler="threads"):
        lazy = AnalyticSoftmaxClassifier().fit(dX, dy)
        proba = lazy.predict_proba(dX).compute()
    assert_allclose(proba, AnalyticSoftmaxClassifier().fit(X, y).predict_proba(X))


def test_skprob_imports_and_works_without_dask():
    code = (
        "import sys; sys.modules['dask'] = None\n"
        "import numpy as np, skprob\n"
        "X = np.random.RandomState(0).normal(size=(40, 3)); y = np.arange(40) % 2\n"
        "print(skprob.AnalyticSoftmaxClassifier().fit(X, y).score(X, y))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert 0.5 <= float(result.stdout) <= 1.0


@pytest.mark.parametrize("with_labels", [False, True])
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_gaussian_distance_fit_on_a_cluster_equals_numpy_fit(
    client, with_labels, covariance_type
):
    from skprob import GaussianDistance

    X, y = sorted_data()
    w = np.random.RandomState(2).uniform(0.2, 3, size=len(y))
    dX, dy = uneven(X, y, CHUNKS)
    dw = da.from_array(w, chunks=(tuple(CHUNKS),))
    labels = (dy, y) if with_labels else (None, None)
    lazy = GaussianDistance(covariance_type=covariance_type)
    lazy.fit(dX, labels[0], sample_weight=dw)
    eager = GaussianDistance(covariance_type=covariance_type)
    eager.fit(X, labels[1], sample_weight=w)
    assert_allclose(lazy.location_, eager.location_, rtol=1e-12)
    assert_allclose(lazy.covariance_, eager.covariance_, rtol=1e-10, atol=1e-14)
    if with_labels:
        assert_array_equal(lazy.classes_, eager.classes_)
        assert_allclose(lazy.covariances_, eager.covariances_, rtol=1e-10, atol=1e-14)
        assert_allclose(lazy.class_distances_, eager.class_distances_, rtol=1e-9)
    shifted = X + 0.3
    assert_allclose(
        lazy.distance(da.from_array(shifted, chunks=(97, 5))),
        eager.distance(shifted),
        rtol=1e-9,
    )


def test_can_calibrator_predicts_lazily_with_the_fit_reference(client):
    from skprob import CANCalibrator

    X, y = sorted_data()
    model = CANCalibrator(threshold=0.5).fit(X, y)
    dX = da.from_array(X, chunks=(100, 5))
    for method in ["predict", "predict_proba", "predict_log_proba"]:
        lazy = getattr(model, method)(dX)
        assert isinstance(lazy, da.Array)
        assert_allclose(lazy.compute(), getattr(model, method)(X), rtol=1e-12)
    with pytest.raises(ValueError, match="reference='fit'"):
        CANCalibrator(reference="batch").fit(X, y).predict_proba(dX)


def test_transformers_are_lazy_on_dask_input(client):
    from skprob import EntropyNormalizer, PerturbMaxTransformer

    rng = np.random.RandomState(0)
    P = rng.dirichlet(np.full(6, 0.5), size=300)
    dP = da.from_array(P, chunks=(70, 6))
    for model in [
        EntropyNormalizer(0.5, unit="relative"),
        PerturbMaxTransformer("normal"),
    ]:
        model.fit(P)
        lazy = model.transform(dP)
        assert isinstance(lazy, da.Array) and lazy.chunks[0] == dP.chunks[0]
        assert_allclose(lazy.compute(), model.transform(P), rtol=1e-12)
    bad = P.copy()
    bad[150, 2] = -0.1
    with pytest.raises(ValueError, match="Negative"):
        EntropyNormalizer().fit(P).transform(
            da.from_array(bad, chunks=(70, 6))
        ).compute()


def test_novelty_scores_are_lazy_and_equal_numpy_scores(client):
    X, y = sorted_data()
    dX, dy = uneven(X, y, CHUNKS)
    model = AnalyticSoftmaxClassifier().fit(dX, dy)
    lazy = model.score_samples(dX)
    assert isinstance(lazy, da.Array)
    assert_allclose(lazy.compute(), model.score_samples(X), rtol=1e-12)


def test_a_chunk_of_zero_weights_is_accepted(client):
    """Only the data as a whole needs weight; one chunk may have none."""
    X, y = sorted_data()
    w = np.ones(len(y))
    w[150:400] = 0.0  # the whole 250-row chunk
    dX, dy = uneven(X, y, CHUNKS)
    dw = da.from_array(w, chunks=(tuple(CHUNKS),))
    lazy = AnalyticSoftmaxClassifier().fit(dX, dy, sample_weight=dw)
    eager = AnalyticSoftmaxClassifier().fit(X, y, sample_weight=w)
    assert_allclose(lazy.temperature_, eager.temperature_, rtol=1e-10)
    assert_allclose(lazy.predict_proba(X), eager.predict_proba(X), rtol=1e-9)


def test_sampled_temperature_on_a_cluster(client):
    """More rows than the leave-one-out scoring takes: each chunk keeps its
    rows of smallest random keys, the merge keeps the smallest of all."""
    import skprob._discriminant as discriminant

    X, y = sorted_data(n=3000)
    dX, dy = uneven(X, y, [1000, 700, 1300])
    original = discriminant._MAX_HELD_OUT_ROWS
    try:
        discriminant._MAX_HELD_OUT_ROWS = 500  # on the client; workers keep 16384
        a = AnalyticSoftmaxClassifier(random_state=0).fit(dX, dy)
    finally:
        discriminant._MAX_HELD_OUT_ROWS = original
    whole = AnalyticSoftmaxClassifier(random_state=0).fit(X, y)
    assert a.temperature_ == pytest.approx(whole.temperature_, rel=0.05)
