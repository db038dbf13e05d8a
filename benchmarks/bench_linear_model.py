"""Closed-form classifiers against LogisticRegression, LDA and temperature scaling.

Times every contender in the same run and reports ratios (the machine is shared
and noisy: each time is the median over repeats, with the BLAS pinned to one
thread unless a section says otherwise). Prints markdown tables.

    python benchmarks/bench_linear_model.py                # everything
    python benchmarks/bench_linear_model.py --quick        # fewer repeats/seeds

Sections:

1. Banking77 sentence embeddings (``../shared/data/banking77_minilm.npz``):
   test accuracy and log-loss on the full training set and on 1,000-row
   subsets (mean +- std over seeds), and fit times.
2. The default temperature (exact leave-one-out) against scikit-learn's
   ``CalibratedClassifierCV(method="temperature")`` around the raw closed form.
3. ``partial_fit`` with the default temperature: how far a stream's
   temperature is from ``fit``'s, over random chunkings of Banking77.
4. The size of a pickled model at CLINC150 size (15,000 x 384, 150 classes)
   against ``LinearDiscriminantAnalysis(solver="lsqr")``, and whether any
   training row is in it.
5. The cost of a fit (200,000 x 256, 20 classes) in ``X.T @ X`` passes, with
   one BLAS thread and with all of them.
6. Many classes (20,000 x 5, 1,000 to 10,000 classes): the default fit in
   fits of ``temperature=None``, and its peak memory.
"""

import argparse
import pickle
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
from _common import table
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from skprob import AnalyticSoftmaxClassifier

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT = "AnalyticSoftmaxClassifier()"
CALIBRATED = "CalibratedClassifierCV(temperature=None, method='temperature')"


def calibrated_raw():
    """scikit-learn's temperature scaling around the raw closed form (>= 1.8)."""
    from sklearn.calibration import CalibratedClassifierCV

    return CalibratedClassifierCV(
        AnalyticSoftmaxClassifier(temperature=None), method="temperature"
    )


def has_temperature_scaling():
    """Whether this scikit-learn has method="temperature" (1.8 and later)."""
    from sklearn.calibration import CalibratedClassifierCV

    methods = CalibratedClassifierCV._parameter_constraints["method"]
    return any("temperature" in str(option) for option in methods)


def contenders(tuned):
    models = {
        DEFAULT: lambda: AnalyticSoftmaxClassifier(random_state=0),
        "AnalyticSoftmaxClassifier(shrinkage='auto')": lambda: (
            AnalyticSoftmaxClassifier(shrinkage="auto", random_state=0)
        ),
        "AnalyticSoftmaxClassifier(temperature=None)": lambda: (
            AnalyticSoftmaxClassifier(temperature=None)
        ),
    }
    if has_temperature_scaling():
        models[CALIBRATED] = calibrated_raw
    models["StandardScaler + LogisticRegression()"] = lambda: make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=1000)
    )
    if tuned:
        models["StandardScaler + LogisticRegression(C tuned, 3-fold)"] = lambda: (
            GridSearchCV(
                make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
                {"logisticregression__C": [0.01, 0.1, 1.0, 10.0]},
                cv=3,
                scoring="neg_log_loss",
            )
        )
    models["LogisticRegression() (unscaled)"] = lambda: LogisticRegression(
        max_iter=1000
    )
    models["LDA(solver='lsqr')"] = lambda: LinearDiscriminantAnalysis(solver="lsqr")
    models["LDA(solver='lsqr', shrinkage='auto')"] = lambda: LinearDiscriminantAnalysis(
        solver="lsqr", shrinkage="auto"
    )
    return models


def fit_quietly(model, X, y):
    with warnings.catch_warnings():
        # iterative solvers may stop at max_iter; tiny subsets leave classes
        # with fewer rows than folds: both are part of what is measured
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", "The least populated class")
        return model.fit(X, y)


def median_time(function, repeats):
    """Median wall time of ``repeats`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def scores(model, X, y, labels):
    proba = model.predict_proba(X).astype(np.float64)
    proba /= proba.sum(axis=1, keepdims=True)  # float32 rows sum to 1 +- 1e-7
    return accuracy_score(y, model.predict(X)), log_loss(y, proba, labels=labels)


def banking77(repeats, seeds, tuned):
    data = np.load(DATA / "banking77_minilm.npz")
    X_train, y_train = data["X_train"], data["y_train"]
    X_test, y_test = data["X_test"], data["y_test"]
    labels = np.arange(77)
    print(
        f"## 1. Banking77 ({X_train.shape[0]} x {X_train.shape[1]} float32, "
        "77 classes)\n"
    )
    models = contenders(tuned)
    times, full = {}, {}
    with threadpool_limits(1):
        for name, make in models.items():
            slow = "LogisticRegression" in name
            times[name], model = median_time(
                lambda: fit_quietly(make(), X_train, y_train), 1 if slow else repeats
            )
            full[name] = scores(model, X_test, y_test, labels)
    subsets = {name: [] for name in models}
    subset_times = {name: [] for name in models}
    rng = np.random.RandomState(0)
    with threadpool_limits(1):
        for _ in range(seeds):
            rows = rng.choice(len(y_train), size=1000, replace=False)
            for name, make in models.items():
                seconds, model = median_time(
                    lambda: fit_quietly(make(), X_train[rows], y_train[rows]), 1
                )
                subsets[name].append(scores(model, X_test, y_test, labels))
                subset_times[name].append(seconds)
    print(
        f"Test accuracy and log-loss ({len(y_test)} test rows); 1,000-row training "
        f"subsets: mean +- std over {seeds} seeds. Fit times with one BLAS thread "
        "(median over repeats), as a multiple of the default's.\n"
    )
    ours, ours_small = times[DEFAULT], np.mean(subset_times[DEFAULT])
    rows = []
    for name in models:
        sub = np.array(subsets[name])
        rows.append(
            [
                name,
                f"{full[name][0]:.4f}",
                f"{full[name][1]:.3f}",
                f"{sub[:, 0].mean():.4f} +- {sub[:, 0].std():.4f}",
                f"{sub[:, 1].mean():.3f} +- {sub[:, 1].std():.3f}",
                f"{times[name]:.3f}",
                f"{times[name] / ours:.1f}x",
                f"{np.mean(subset_times[name]) / ours_small:.1f}x",
            ]
        )
    print(
        table(
            [
                "model",
                "accuracy (full)",
                "log-loss (full)",
                "accuracy (1,000)",
                "log-loss (1,000)",
                "fit (s, full)",
                "fit / default (full)",
                "fit / default (1,000)",
            ],
            rows,
        )
    )
    print()
    if CALIBRATED in models:
        print("## 2. The default temperature against temperature scaling\n")
        print(
            "`AnalyticSoftmaxClassifier()` (exact leave-one-out temperature) "
            f"against `{CALIBRATED}` (5-fold cross-fitted temperature scaling, "
            "as scikit-learn does it). Ratios < 1 favour the default.\n"
        )
        small = np.array(subsets[DEFAULT])[:, 1]
        theirs = np.array(subsets[CALIBRATED])[:, 1]
        rows = [
            [
                "full training set",
                f"{full[DEFAULT][1]:.4f}",
                f"{full[CALIBRATED][1]:.4f}",
                f"{full[DEFAULT][1] / full[CALIBRATED][1]:.3f}",
                f"{times[DEFAULT] / times[CALIBRATED]:.2f}",
            ],
            [
                f"1,000-row subsets (mean of {seeds})",
                f"{small.mean():.4f}",
                f"{theirs.mean():.4f}",
                f"{small.mean() / theirs.mean():.3f}",
                f"{ours_small / np.mean(subset_times[CALIBRATED]):.2f}",
            ],
        ]
        print(
            table(
                [
                    "data",
                    "log-loss (default)",
                    "log-loss (temperature scaling)",
                    "log-loss ratio",
                    "fit time ratio",
                ],
                rows,
            )
        )
        print()
    return X_train, y_train


def streaming(X, y, n_chunkings):
    print("## 3. partial_fit with the default temperature\n")
    whole = AnalyticSoftmaxClassifier().fit(X, y)
    rng = np.random.RandomState(0)
    rows = []
    for _ in range(n_chunkings):
        order = rng.permutation(len(y))
        n_chunks = rng.randint(2, 13)
        cuts = np.sort(rng.choice(np.arange(1, len(y)), n_chunks - 1, replace=False))
        stream = AnalyticSoftmaxClassifier()
        with warnings.catch_warnings():
            # chunks smaller than the number of features: the pooled
            # covariance is singular for the first models, as expected
            warnings.filterwarnings("ignore", "The class means differ")
            warnings.filterwarnings("ignore", "The number of unique classes")
            for part in np.split(order, cuts):
                stream.partial_fit(X[part], y[part], classes=np.arange(77))
        sizes = np.diff(np.r_[0, cuts, len(y)])
        ratio = stream.temperature_ / whole.temperature_
        rows.append((n_chunks, sizes.min(), sizes.max(), ratio))
    deviation = np.abs(np.array([r[3] for r in rows]) - 1)
    print(
        f"Banking77 training rows in a random order, cut into 2 to 12 chunks at "
        f"random ({n_chunkings} chunkings). `fit` gives T = "
        f"{whole.temperature_:.5f}. |T(stream) / T(fit) - 1|: median "
        f"{np.median(deviation):.4f}, largest {deviation.max():.4f}. The "
        "statistics (hence everything but T) equal fit's to rounding.\n"
    )
    print(
        table(
            ["chunks", "smallest chunk", "largest chunk", "T(stream) / T(fit)"],
            [[str(a), str(b), str(c), f"{d:.4f}"] for a, b, c, d in rows],
        )
    )
    print()


def gaussian_data(n, d, n_classes, seed=0, dtype=np.float64):
    rng = np.random.RandomState(seed)
    y = rng.randint(n_classes, size=n)
    centres = rng.normal(scale=0.5, size=(n_classes, d))
    return (centres[y] + rng.normal(size=(n, d))).astype(dtype), y


def pickle_size():
    n, d, k = 15_000, 384, 150
    X, y = gaussian_data(n, d, k, dtype=np.float32)
    print(f"## 4. Pickled size at CLINC150 size ({n:,} x {d} float32, {k} classes)\n")
    models = {
        DEFAULT: AnalyticSoftmaxClassifier(),
        "AnalyticSoftmaxClassifier(temperature=None)": AnalyticSoftmaxClassifier(
            temperature=None
        ),
        "LDA(solver='lsqr')": LinearDiscriminantAnalysis(solver="lsqr"),
    }
    sizes, found = {}, {}
    sample = np.random.RandomState(1).choice(n, size=200, replace=False)
    for name, model in models.items():
        blob = pickle.dumps(model.fit(X, y))
        sizes[name] = len(blob)
        found[name] = sum(X[i].tobytes() in blob for i in sample)
    lda = sizes["LDA(solver='lsqr')"]
    print(
        table(
            ["model", "pickle (MB)", "size / LDA's", "training rows found (of 200)"],
            [
                [name, f"{b / 1e6:.2f}", f"{b / lda:.2f}x", str(found[name])]
                for name, b in sizes.items()
            ],
        )
    )
    print()


def cost(repeats, n_samples, n_features=256, n_classes=20):
    X, y = gaussian_data(n_samples, n_features, n_classes)
    print(
        f"## 5. Cost of a fit ({n_samples:,} x {n_features} float64, "
        f"{n_classes} classes)\n"
    )
    print(
        "Median fit time as a multiple of one `X.T @ X` (numpy, BLAS syrk) "
        "timed in the same run with the same threads.\n"
    )
    rows = []
    for threads in (1, None):
        with threadpool_limits(threads):
            floor, _ = median_time(lambda: X.T @ X, repeats)
            raw, _ = median_time(
                lambda: AnalyticSoftmaxClassifier(temperature=None).fit(X, y), repeats
            )
            auto, _ = median_time(
                lambda: AnalyticSoftmaxClassifier(random_state=0).fit(X, y), repeats
            )
            lda, _ = median_time(
                lambda: LinearDiscriminantAnalysis(solver="lsqr").fit(X, y), 1
            )
        label = "1" if threads == 1 else "all"
        rows.append(
            [
                label,
                f"{floor:.3f}",
                f"{auto / floor:.2f}x",
                f"{raw / floor:.2f}x",
                f"{lda / floor:.2f}x",
            ]
        )
    tracemalloc.start()
    AnalyticSoftmaxClassifier(random_state=0).fit(X, y)
    peak = tracemalloc.get_traced_memory()[1] / X.nbytes
    tracemalloc.stop()
    print(
        table(
            [
                "BLAS threads",
                "X.T @ X (s)",
                "AnalyticSoftmaxClassifier()",
                "temperature=None",
                "LDA(solver='lsqr')",
            ],
            rows,
        )
    )
    print(f"\nPeak memory of the default fit: {peak:.2f} x X.nbytes.\n")


def many_classes(repeats, class_counts, n_samples=20_000, n_features=5):
    print(f"## 6. Many classes ({n_samples:,} x {n_features} float64)\n")
    rows = []
    with threadpool_limits(1):
        for k in class_counts:
            X, y = gaussian_data(n_samples, n_features, k)
            raw, _ = median_time(
                lambda: AnalyticSoftmaxClassifier(temperature=None).fit(X, y), repeats
            )
            auto, model = median_time(
                lambda: AnalyticSoftmaxClassifier(random_state=0).fit(X, y), repeats
            )
            tracemalloc.start()
            AnalyticSoftmaxClassifier(random_state=0).fit(X, y)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            rows.append(
                [
                    f"{k:,}",
                    f"{raw:.3f}",
                    f"{auto:.3f}",
                    f"{auto / raw:.1f}x",
                    f"{peak / 2**20:.0f}",
                    f"{model.temperature_:.3f}",
                ]
            )
    print(
        table(
            [
                "classes",
                "temperature=None fit (s)",
                "default fit (s)",
                "default / None",
                "peak memory of the default fit (MiB)",
                "temperature_",
            ],
            rows,
        )
    )
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and seeds")
    args = parser.parse_args()
    quick = args.quick
    repeats, seeds = (2, 2) if quick else (5, 5)
    command = "python benchmarks/bench_linear_model.py" + (" --quick" if quick else "")
    print(f"# Closed-form classifiers\n\nCommand: `{command}`\n")
    if (DATA / "banking77_minilm.npz").exists():
        X, y = banking77(repeats, seeds, tuned=not quick)
        streaming(X, y, 5 if quick else 20)
    else:
        print(
            f"Sections 1 to 3 skipped: the Banking77 data is not in {DATA} "
            "(see ../shared/data/README.md).\n"
        )
    pickle_size()
    cost(repeats, 50_000 if quick else 200_000)
    many_classes(repeats, [1000, 3000] if quick else [1000, 3000, 10000])


if __name__ == "__main__":
    main()
