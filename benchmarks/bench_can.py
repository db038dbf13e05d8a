"""CAN: speed of the vectorised correction, and what it does to accuracy.

1. Speed: ``skprob.can_adjust`` against the definition applied literally, one
   uncertain row at a time (stack it under the reference rows, alternate,
   keep the last row), on the same input in the same run.
2. Accuracy on Banking77 sentence embeddings (77 intents) with
   ``AnalyticSoftmaxClassifier`` and ``LogisticRegression`` as base
   classifiers: before and after CAN with the reference set from training
   (``reference="fit"``) or from the test batch (``"batch"``), on the full
   training set and on 1,000-row subsets; then ``threshold`` tuned by
   ``GridSearchCV`` over the meta-estimator.

Run from the repository root::

    python benchmarks/bench_can.py            # about 6 minutes on 2 cores
    python benchmarks/bench_can.py --quick    # one seed, smaller grids
"""

import argparse
import shlex
import sys
import time
import warnings

import numpy as np
from _common import best_time, table
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from threadpoolctl import threadpool_limits

from skprob import (
    AnalyticSoftmaxClassifier,
    CANCalibrator,
    can_adjust,
    topk_uncertainty,
)

DATA = "/work/shared/data/banking77_minilm.npz"


def literal_can(proba, reference, prior, *, n_iter, alpha):
    """The definition, one row at a time (every row of ``proba`` is corrected)."""
    out = np.empty_like(proba)
    for i, row in enumerate(proba):
        stack = np.vstack([reference, row])
        for _ in range(n_iter):
            stack = stack**alpha
            stack = stack / stack.mean(axis=0) * prior  # column step
            stack = stack / stack.sum(axis=1, keepdims=True)  # row step
        out[i] = stack[-1]
    return out


def speed(n_reference, n_uncertain, n_classes, loop_rows, repeats):
    rng = np.random.RandomState(0)
    reference = rng.dirichlet(np.full(n_classes, 0.02), size=n_reference)
    proba = rng.dirichlet(np.full(n_classes, 1.0), size=n_uncertain)
    prior = rng.dirichlet(np.full(n_classes, 10.0))
    rows = []
    for (alpha, n_iter), k in zip([(1.0, 1), (2.0, 3)], loop_rows):
        options = dict(n_iter=n_iter, alpha=alpha)
        fast, adjusted = best_time(
            lambda: can_adjust(proba, reference, prior, threshold=0.0, **options),
            repeats,
        )
        subset = slice(0, min(k, n_uncertain))
        slow, literal = best_time(
            lambda: literal_can(proba[subset], reference, prior, **options), 2
        )
        slow_full = slow * n_uncertain / len(literal)
        scale = n_uncertain / len(literal)
        rows.append(
            [
                f"alpha={alpha:g}, n_iter={n_iter}",
                f"{fast:.3f}",
                f"{slow_full:.1f} ({len(literal)} rows x {scale:.3g})",
                f"{slow_full / fast:.0f}x",
                f"{np.abs(adjusted[subset] - literal).max():.1e}",
            ]
        )
    return rows


def fitted_quietly(model, X, y):
    with warnings.catch_warnings():
        # classes with fewer members than folds, lbfgs iterations
        warnings.simplefilter("ignore")
        return model.fit(X, y)


def accuracy(proba, y, classes):
    return float(np.mean(classes[proba.argmax(axis=1)] == y))


def accuracy_rows(name, n_rows, seed, base, X, y, X_test, y_test, results):
    """Before/after CAN (reference "fit" and "batch"), split by confidence.

    Returns one table row per prior (training frequencies, uniform); the
    uniform-prior numbers reuse the fitted reference set, which does not depend
    on the prior. Test accuracies go to ``results[name, n_rows, seed]``.
    """
    start = time.perf_counter()
    model = fitted_quietly(CANCalibrator(clone(base)), X, y)
    seconds = time.perf_counter() - start
    classes = model.classes_
    base_proba = model.estimator_.predict_proba(X_test)
    uncertain = topk_uncertainty(base_proba) >= model.threshold

    def acc(proba, rows=slice(None)):
        if isinstance(rows, np.ndarray) and not rows.any():
            return "-"
        return f"{accuracy(proba[rows], y_test[rows], classes):.4f}"

    rows = []
    uniform = np.full(len(classes), 1 / len(classes))
    for prior in (model.prior_, uniform):
        after_fit = can_adjust(
            base_proba,
            model.reference_,
            prior,
            reference_weight=model.reference_weight_,
        )
        after_batch = can_adjust(base_proba, None, prior)
        if prior is model.prior_:
            np.testing.assert_allclose(after_fit, model.predict_proba(X_test))
            results[name, n_rows, seed] = {
                "fit": acc(after_fit),
                "batch": acc(after_batch),
            }
        rows.append(
            [
                name,
                str(n_rows),
                "-" if seed is None else str(seed),
                f"{int(uncertain.sum())}",
                str(len(model.reference_)),
                acc(base_proba),
                acc(base_proba, ~uncertain),
                acc(base_proba, uncertain),
                acc(after_fit, uncertain),
                acc(after_fit),
                acc(after_batch, uncertain),
                acc(after_batch),
                f"{seconds:.1f}",
            ]
        )
    return rows


def tuned_row(name, n_rows, seed, base, X, y, X_test, y_test, reference, grid, at_09):
    """Test accuracy with threshold (and prior) chosen by 3-fold GridSearchCV.

    One search over threshold x prior; the threshold-only choice is the best
    candidate with the default prior, refitted on all of X.
    """
    model = CANCalibrator(clone(base), reference=reference)
    params = {"threshold": grid, "prior": [None, "uniform"]}
    search = GridSearchCV(model, params, cv=StratifiedKFold(3))
    start = time.perf_counter()
    fitted_quietly(search, X, y)
    seconds = time.perf_counter() - start
    results = search.cv_results_
    scores = results["mean_test_score"]
    default = np.array([p["prior"] is None for p in results["params"]])
    by_threshold = {
        p["threshold"]: s for p, s, d in zip(results["params"], scores, default) if d
    }
    threshold = max(by_threshold, key=lambda t: (by_threshold[t], -t))
    only = fitted_quietly(
        CANCalibrator(clone(base), reference=reference, threshold=threshold), X, y
    )
    best = search.best_estimator_
    base_proba = best.estimator_.predict_proba(X_test)
    chosen = search.best_params_
    return [
        name,
        str(n_rows),
        "-" if seed is None else str(seed),
        reference,
        " / ".join(f"{t:g}: {by_threshold[t]:.3f}" for t in grid),
        f"{threshold:g}",
        f"{accuracy(base_proba, y_test, best.classes_):.4f}",
        at_09,
        f"{only.score(X_test, y_test):.4f}",
        f"{chosen['threshold']:g}, {chosen['prior'] or 'freq.'}",
        f"{search.score(X_test, y_test):.4f}",
        f"{seconds:.0f}",
    ]


def with_means(rows, key_columns, skip):
    """Append, per group of 1,000-row subsets, the mean of each numeric column."""
    groups = {}
    for row in rows:
        if row[1] == "1000":
            groups.setdefault(tuple(row[c] for c in key_columns), []).append(row)
    out = list(rows)
    for members in groups.values():
        if len(members) < 2:
            continue
        mean = list(members[0])
        mean[2] = f"mean of {len(members)}"
        for c in range(3, len(mean)):
            if c in key_columns:
                continue
            if c in skip:
                mean[c] = ""
                continue
            try:
                values = [float(row[c]) for row in members]
            except ValueError:
                mean[c] = ""
                continue
            whole = all("." not in row[c] for row in members)
            digits = 0 if whole else 1 if c == len(mean) - 1 else 4
            mean[c] = f"**{np.mean(values):.{digits}f}**"
        out.append(mean)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, less")
    parser.add_argument("--data", default=DATA, help="banking77_minilm.npz")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    # One BLAS thread: on a shared 2-core machine, threaded OpenBLAS calls
    # (eigh, Cholesky) stall for seconds; both sides of each ratio run alike.
    with threadpool_limits(limits=1):
        run(args, argv, started)


def run(args, argv, started):
    print(
        "Command: python benchmarks/bench_can.py "
        + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    )

    n, u, m = 5000, 5000, 150
    print(
        f"\n## Speed: can_adjust vs the row-by-row definition (n={n} reference "
        f"rows, u={u} uncertain rows, m={m} classes)\n"
    )
    print(
        "Every row is corrected (threshold=0). Vectorised: best of 3 runs. The "
        "literal loop runs on the first rows only (best of 2) and its time is "
        "extrapolated linearly to all u rows; max |diff| compares those rows. "
        "One BLAS thread.\n"
    )
    loop_rows = (100, 40) if args.quick else (300, 100)
    print(
        table(
            ["setting", "vectorised (s)", "literal loop (s)", "speed-up", "max |diff|"],
            speed(n, u, m, loop_rows, repeats=1 if args.quick else 3),
        )
    )

    data = np.load(args.data)
    X_train, y_train = data["X_train"], data["y_train"]
    X_test, y_test = data["X_test"], data["y_test"]
    bases = {
        "AnalyticSoftmaxClassifier()": AnalyticSoftmaxClassifier(),
        "LogisticRegression()": LogisticRegression(max_iter=1000),
    }
    seeds = [0] if args.quick else [0, 1, 2, 3, 4]
    subsets = [(str(len(y_train)), None, slice(None))]
    for seed in seeds:
        rows = np.random.RandomState(seed).choice(len(y_train), 1000, replace=False)
        subsets.append(("1000", seed, rows))

    print(
        "\n## Accuracy on Banking77 (test set: 3,080 rows, 40 per class)\n\n"
        "top_k=3, threshold=0.9, n_iter=1, alpha=1; prior = class frequencies "
        "of the training rows (the default). 'flagged': test rows with "
        "uncertainty >= 0.9, corrected by CAN. 'fit' reference: confident "
        "out-of-fold predictions (5-fold); 'batch': confident rows of the test "
        "set itself. Accuracy of the base classifier on the confident and the "
        "flagged rows, and of CAN on the flagged rows (the others are "
        "unchanged).\n"
    )
    header = [
        "base",
        "train rows",
        "seed",
        "flagged",
        "fit ref. rows",
        "base acc.",
        "base acc. confident",
        "base acc. flagged",
        "fit: acc. flagged",
        "fit: acc.",
        "batch: acc. flagged",
        "batch: acc.",
        "fit time (s)",
    ]
    results, rows, uniform_rows = {}, [], []
    for n_rows, seed, index in subsets:
        X, y = X_train[index], y_train[index]
        contenders = dict(bases)
        if seed is None:
            contenders["AnalyticSoftmaxClassifier(temperature=None)"] = (
                AnalyticSoftmaxClassifier(temperature=None)
            )
        for name, base in contenders.items():
            row, uniform_row = accuracy_rows(
                name, n_rows, seed, base, X, y, X_test, y_test, results
            )
            rows.append(row)
            uniform_rows.append(uniform_row)
    print(table(header, with_means(rows, key_columns=[0], skip=[])))
    print(
        "\n## The same with prior='uniform' (the test classes are balanced, the "
        "training classes are not: 35 to 187 rows per class)\n"
    )
    print(table(header, with_means(uniform_rows, key_columns=[0], skip=[])))

    grid = [0.6, 0.8, 0.9, 1.0] if args.quick else [0.5, 0.7, 0.8, 0.9, 1.0]
    print(
        "\n## threshold (and prior) tuned by GridSearchCV over CANCalibrator\n\n"
        f"3-fold stratified, accuracy; threshold in {grid} x prior in [None "
        "(class frequencies of y), 'uniform']. 1.0 switches CAN off in practice "
        "(only rows whose top 3 probabilities are exactly equal reach it). 'CV "
        "acc. per threshold' and 'threshold tuned' use the default prior only; "
        "'joint' tunes both. 'test acc. at 0.9': the untuned default, from the "
        "first table. LogisticRegression on the full training set is tuned "
        "with the batch reference only (the fit reference needs 6 fits per "
        "candidate and fold).\n"
    )
    rows = []
    for n_rows, seed, index in subsets:
        X, y = X_train[index], y_train[index]
        for name, base in bases.items():
            logistic = isinstance(base, LogisticRegression)
            if seed is None and logistic:
                references = [] if args.quick else ["batch"]
            else:
                references = ["fit", "batch"]
            for reference in references:
                at_09 = results[name, n_rows, seed][reference]
                rows.append(
                    tuned_row(
                        name,
                        n_rows,
                        seed,
                        base,
                        X,
                        y,
                        X_test,
                        y_test,
                        reference,
                        grid,
                        at_09,
                    )  # fmt: skip
                )
    header = [
        "base",
        "train rows",
        "seed",
        "reference",
        "CV acc. per threshold",
        "threshold tuned",
        "base acc.",
        "test acc. at 0.9",
        "test acc. threshold tuned",
        "joint choice",
        "test acc. joint",
        "search time (s)",
    ]
    print(table(header, with_means(rows, key_columns=[0, 3], skip=[4, 5, 9])))
    print(f"\nTotal time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
