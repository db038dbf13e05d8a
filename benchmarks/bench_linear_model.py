"""Closed-form classifiers against LogisticRegression and LinearDiscriminantAnalysis.

Times every contender in the same run and reports ratios (the machine is shared
and noisy: each time is the minimum over repeats). Prints markdown tables.

    python benchmarks/bench_linear_model.py                # everything
    python benchmarks/bench_linear_model.py --quick        # fewer repeats/seeds

Sections:

1. Banking77 sentence embeddings (``../shared/data/banking77_minilm.npz``):
   fit time ratios, then test accuracy and log-loss on the full training set
   and on 1,000-row training subsets (mean +- std over seeds).
2. A synthetic 200,000 x 256, 20-class float64 problem: fit time as a multiple
   of one ``X.T @ X`` on the same matrix (the floor for one pass over the
   data), and peak memory of ``fit`` as a multiple of the size of ``X``.
"""

import argparse
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
from _common import best_time, table
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skprob import AnalyticSoftmaxClassifier

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def contenders():
    return {
        "AnalyticSoftmaxClassifier()": lambda: AnalyticSoftmaxClassifier(),
        "AnalyticSoftmaxClassifier(temperature=None)": lambda: (
            AnalyticSoftmaxClassifier(temperature=None)
        ),
        "AnalyticSoftmaxClassifier(shrinkage='auto')": lambda: (
            AnalyticSoftmaxClassifier(shrinkage="auto")
        ),
        "LogisticRegression()": lambda: LogisticRegression(),
        "StandardScaler + LogisticRegression()": lambda: make_pipeline(
            StandardScaler(), LogisticRegression()
        ),
        "LDA(solver='lsqr')": lambda: LinearDiscriminantAnalysis(solver="lsqr"),
        "LDA(solver='lsqr', shrinkage='auto')": lambda: LinearDiscriminantAnalysis(
            solver="lsqr", shrinkage="auto"
        ),
    }


def fit_quietly(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def scores(model, X, y, labels):
    proba = model.predict_proba(X).astype(np.float64)
    proba /= proba.sum(axis=1, keepdims=True)  # float32 rows sum to 1 +- 1e-7
    return accuracy_score(y, model.predict(X)), log_loss(y, proba, labels=labels)


def banking77(repeats, seeds):
    data = np.load(DATA / "banking77_minilm.npz")
    X_train, y_train = data["X_train"], data["y_train"]
    X_test, y_test = data["X_test"], data["y_test"]
    labels = np.arange(77)
    print(
        f"## Banking77 ({X_train.shape[0]} x {X_train.shape[1]} float32, 77 classes)\n"
    )

    times, full = {}, {}
    for name, make in contenders().items():
        r = 1 if "LogisticRegression" in name else repeats
        times[name], _ = best_time(lambda: fit_quietly(make(), X_train, y_train), r)
        full[name] = scores(
            fit_quietly(make(), X_train, y_train), X_test, y_test, labels
        )
    ours = times["AnalyticSoftmaxClassifier()"]
    print("Fit time on the full training set (minimum over repeats).\n")
    print(
        table(
            ["model", "fit (s)", "time / AnalyticSoftmaxClassifier()"],
            [[n, f"{t:.3f}", f"{t / ours:.1f}x"] for n, t in times.items()],
        )
    )

    subsets = {name: [] for name in contenders()}
    rng = np.random.RandomState(0)
    for _ in range(seeds):
        rows = rng.choice(len(y_train), size=1000, replace=False)
        for name, make in contenders().items():
            model = fit_quietly(make(), X_train[rows], y_train[rows])
            subsets[name].append(scores(model, X_test, y_test, labels))
    print(
        f"\nTest accuracy and log-loss ({len(y_test)} test rows); 1,000-row training "
        f"subsets: mean +- std over {seeds} seeds.\n"
    )
    rows = []
    for name in contenders():
        sub = np.array(subsets[name])
        rows.append(
            [
                name,
                f"{full[name][0]:.4f}",
                f"{full[name][1]:.3f}",
                f"{sub[:, 0].mean():.4f} +- {sub[:, 0].std():.4f}",
                f"{sub[:, 1].mean():.3f} +- {sub[:, 1].std():.3f}",
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
            ],
            rows,
        )
    )
    print()


def synthetic(repeats, n_samples=200_000, n_features=256, n_classes=20):
    rng = np.random.RandomState(0)
    y = rng.randint(n_classes, size=n_samples)
    centres = rng.normal(scale=0.5, size=(n_classes, n_features))
    X = centres[y] + rng.normal(size=(n_samples, n_features))
    print(f"## Synthetic ({n_samples:,} x {n_features} float64, {n_classes} classes)\n")
    floor, _ = best_time(lambda: X.T @ X, repeats)
    rows = []
    for name, make in contenders().items():
        r = 1 if "LogisticRegression" in name else repeats
        seconds, _ = best_time(lambda: fit_quietly(make(), X, y), r)
        peak = ""
        if name.startswith("Analytic"):
            tracemalloc.start()
            fit_quietly(make(), X, y)
            peak = f"{tracemalloc.get_traced_memory()[1] / X.nbytes:.2f}x"
            tracemalloc.stop()
        rows.append([name, f"{seconds:.3f}", f"{seconds / floor:.2f}x", peak])
    print(f"One `X.T @ X` (numpy, BLAS syrk): {floor:.3f} s.\n")
    print(
        table(
            ["model", "fit (s)", "fit / X.T@X", "peak memory / X.nbytes"],
            rows,
        )
    )
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and seeds")
    args = parser.parse_args()
    repeats, seeds = (2, 2) if args.quick else (5, 5)
    command = "python benchmarks/bench_linear_model.py" + (
        " --quick" if args.quick else ""
    )
    print(f"# Closed-form classifiers\n\nCommand: `{command}`\n")
    if (DATA / "banking77_minilm.npz").exists():
        banking77(repeats, seeds)
    else:
        print(f"(Banking77 data not found in {DATA}; section skipped.)\n")
    synthetic(repeats)


if __name__ == "__main__":
    main()
