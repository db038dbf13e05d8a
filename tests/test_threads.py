"""One fitted estimator used from 8 threads at once gives the serial results.

Each method is called by 8 threads released together by a barrier, on inputs
large enough for the calls to overlap (numpy and BLAS release the GIL), and
every result must be bit-identical to the result of a serial call.
"""

import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from itertools import combinations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from skprob import (
    AnalyticLogisticRegression,
    AnalyticSoftmaxClassifier,
    CANCalibrator,
    EntropyNormalizer,
    GaussianDistance,
    PerturbMaxTransformer,
)

N_THREADS = 8
MAX_ROUNDS = 20

rng = np.random.RandomState(0)
Y = rng.randint(4, size=4000)
X = rng.normal(size=(4000, 16)) + 0.8 * Y[:, None] * rng.normal(size=16)
X_NEW = rng.normal(size=(40000, 16)) * 2.0
PROBA = rng.dirichlet(np.full(10, 0.5), size=20000)
SCORES = rng.normal(scale=2.0, size=(300, 6))


def _fit(estimator, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(*args)


CASES = [
    (
        "logistic",
        lambda: _fit(AnalyticLogisticRegression(), X, Y > 1),
        ("predict", "predict_proba", "predict_log_proba", "decision_function"),
        X_NEW,
    ),
    (
        "softmax",
        lambda: _fit(AnalyticSoftmaxClassifier(), X, Y),
        ("predict", "predict_proba", "predict_log_proba", "decision_function"),
        X_NEW,
    ),
    (
        "can",
        lambda: _fit(CANCalibrator(threshold=0.5), X, Y),
        ("predict", "predict_proba", "predict_log_proba"),
        X_NEW,
    ),
    ("entropy", lambda: _fit(EntropyNormalizer(), PROBA), ("transform",), PROBA),
    (
        "perturb-normal",
        lambda: _fit(PerturbMaxTransformer("normal"), SCORES),
        ("transform",),
        SCORES,
    ),
    ("distance", lambda: _fit(GaussianDistance(), X), ("distance",), X_NEW),
]


@pytest.mark.parametrize(
    "make, methods, data", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_concurrent_calls_give_the_serial_results(make, methods, data):
    model = make()
    # each thread gets its own slice of rows, so the inputs differ too
    slices = [slice(k, len(data), 2) for k in range(2)] * (N_THREADS // 2)
    jobs = [(method, data[part]) for method in methods for part in slices]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        serial = [getattr(model, method)(rows) for method, rows in jobs]
    # the threads' start after the barrier is up to the OS: repeat the round
    # until calls were seen in flight at the same time (results are checked
    # on every round)
    for _ in range(MAX_ROUNDS):
        concurrent, spans = _concurrent_round(model, jobs)
        for (method, _), got, expected in zip(jobs, concurrent, serial):
            assert_array_equal(got, expected, err_msg=method, strict=True)
        first = spans[:N_THREADS]
        if any(s1 < e2 and s2 < e1 for (s1, e1), (s2, e2) in combinations(first, 2)):
            break
    else:
        pytest.fail(f"no two calls overlapped in {MAX_ROUNDS} rounds")


def _concurrent_round(model, jobs):
    """Run the jobs from N_THREADS threads, the first N_THREADS released together."""
    barrier = threading.Barrier(N_THREADS)
    spans = [None] * len(jobs)

    def run(index):
        method, rows = jobs[index]
        if index < N_THREADS:
            barrier.wait(timeout=60)
        start = time.perf_counter()
        out = getattr(model, method)(rows)
        spans[index] = (start, time.perf_counter())
        return out

    with warnings.catch_warnings(), ThreadPoolExecutor(N_THREADS) as pool:
        warnings.simplefilter("ignore")
        return list(pool.map(run, range(len(jobs)))), spans
