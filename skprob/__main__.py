"""The skprob tour: ``python -m skprob``.

Compares the closed-form classifier with scikit-learn's maximum-likelihood and
discriminant-analysis counterparts on the digits data that scikit-learn ships
(no download), or on a CSV file of your own::

    python -m skprob
    python -m skprob --csv data.csv --target label
    python -m skprob --plot report.png     # also draw the tour (needs matplotlib)
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ._simplex import row_entropy, topk_uncertainty
from .calibration import CANCalibrator
from .linear_model import AnalyticSoftmaxClassifier
from .metrics import GaussianDistance
from .preprocessing import EntropyNormalizer, PerturbMaxTransformer


def load_csv(path, target):
    """Features and target of a CSV file, with errors that name the bad column.

    Parameters
    ----------
    path : str
        CSV file with a header row.
    target : str
        Name of the target column (any labels: numbers, strings, categories).

    Returns
    -------
    X : DataFrame of numeric feature columns
    y : Series
    """
    frame = pd.read_csv(path)
    if target not in frame.columns:
        raise ValueError(
            f"--target {target!r} is not a column of {path}; the columns are "
            f"{list(frame.columns)}."
        )
    y = frame[target]
    if y.isna().any():
        raise ValueError(
            f"The target column {target!r} has {int(y.isna().sum())} missing values."
        )
    X = frame.drop(columns=[target])
    if X.shape[1] == 0:
        raise ValueError(f"{path} has no feature columns besides {target!r}.")
    not_numeric = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    if not_numeric:
        raise ValueError(
            f"Feature column {not_numeric[0]!r} is not numeric (dtype "
            f"{X[not_numeric[0]].dtype}); encode it or drop it. Non-numeric "
            f"columns: {not_numeric}."
        )
    missing = [c for c in X.columns if X[c].isna().any()]
    if missing:
        raise ValueError(
            f"Feature column {missing[0]!r} has missing values; impute or drop "
            f"them. Columns with missing values: {missing}."
        )
    return X.astype(np.float64), y


def classifiers():
    """The contenders of the tour, by display name."""
    return {
        "AnalyticSoftmaxClassifier()": AnalyticSoftmaxClassifier(),
        "AnalyticSoftmaxClassifier(shrinkage='auto')": AnalyticSoftmaxClassifier(
            shrinkage="auto"
        ),
        "LogisticRegression (scaled)": make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=5000)
        ),
        "LinearDiscriminantAnalysis()": LinearDiscriminantAnalysis(),
    }


def compare_classifiers(X_train, X_test, y_train, y_test):
    """Rows of (name, accuracy, log-loss, fit seconds) for each contender."""
    labels = np.unique(np.concatenate([np.asarray(y_train), np.asarray(y_test)]))
    rows = []
    for name, model in classifiers().items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            # the tour reports numbers; estimator warnings go to the docs
            warnings.simplefilter("ignore")
            model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        proba = model.predict_proba(X_test)
        rows.append(
            (
                name,
                accuracy_score(y_test, model.predict(X_test)),
                log_loss(y_test, proba, labels=labels),
                seconds,
            )
        )
    return rows


def tour_gaussian(X_train, X_test, y_train, y_test, n_pairs=5):
    """Class separability: the closest pairs of classes, as Gaussians.

    Each class is summarised by its mean and covariance; the pairs of classes
    whose Gaussians are closest (2-Wasserstein distance on the training data)
    are the ones a classifier confuses most easily. The test column repeats
    the distance on held-out data, the last one is the Bhattacharyya distance
    between OAS-shrunk Gaussians (``-log`` of their overlap). A last line
    measures the shift between the training and the test data as a whole.
    """
    train = GaussianDistance().fit(X_train, y_train)
    test = GaussianDistance().fit(X_test, y_test)
    overlap = GaussianDistance("bhattacharyya", shrinkage="auto").fit(X_train, y_train)
    in_test = {label: k for k, label in enumerate(test.classes_)}
    first, second = np.triu_indices(len(train.classes_), k=1)
    closest = np.argsort(train.class_distances_[first, second], kind="stable")
    rows = []
    for k in closest[:n_pairs]:
        i, j = first[k], second[k]
        a, b = train.classes_[i], train.classes_[j]
        held_out = (
            float(test.class_distances_[in_test[a], in_test[b]])
            if a in in_test and b in in_test
            else float("nan")
        )
        rows.append(
            (
                f"{a} / {b}",
                float(train.class_distances_[i, j]),
                held_out,
                float(overlap.class_distances_[i, j]),
            )
        )
    table = format_table(
        ["classes", "W2 (train)", "W2 (test)", "Bhattacharyya (OAS)"], rows
    )
    shift = (
        "Shift between the training and the test data (W2 of their Gaussians): "
        f"{train.distance(X_test):.4f}"
    )
    title = "Class separability: the closest pairs of classes (GaussianDistance)"
    return f"{title}\n{table}\n{shift}"


def tour_can(X_train, X_test, y_train, y_test):
    """CAN around the closed-form classifier: which test rows it corrects, and how.

    Returns
    -------
    text : str
        A title and a table of accuracy, log-loss, the number of test rows
        CAN corrects (uncertainty >= threshold) and of predictions it changes.
    """
    base = AnalyticSoftmaxClassifier()
    rows = []
    before = None
    for reference in ("fit", "batch"):
        model = CANCalibrator(base, reference=reference)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X_train, y_train)
        if before is None:
            before = model.estimator_.predict_proba(X_test)
            flagged = topk_uncertainty(before, model.top_k) >= model.threshold
            rows.append(
                (
                    "AnalyticSoftmaxClassifier()",
                    accuracy_score(y_test, model.classes_[before.argmax(1)]),
                    log_loss(y_test, before, labels=model.classes_),
                    "-",
                    "-",
                )
            )
        proba = model.predict_proba(X_test)
        changed = np.sum(proba.argmax(1) != before.argmax(1))
        rows.append(
            (
                f"+ CANCalibrator(reference={reference!r})",
                accuracy_score(y_test, model.predict(X_test)),
                log_loss(y_test, proba, labels=model.classes_),
                f"{int(flagged.sum())} of {len(proba)}",
                str(int(changed)),
            )
        )
    header = ["classifier", "accuracy", "log-loss", "rows corrected", "labels changed"]
    title = (
        "CAN: uncertain predictions (top-3 uncertainty >= 0.9) corrected against "
        "confident ones"
    )
    return title + "\n" + format_table(header, rows)


def tour_rows(X_train, X_test, y_train, y_test):
    """Row transforms on the tour classifier's test-set probabilities.

    EntropyNormalizer (target learned on the training probabilities, and a
    fixed half of the maximum entropy) and perturb-max maps of the logits:
    Gumbel noise is the softmax, normal noise the multinomial probit. All of
    them keep the order within each row, so the accuracy does not move.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tour reports numbers
        model = AnalyticSoftmaxClassifier().fit(X_train, y_train)
        train_proba = model.predict_proba(X_train)
        proba = model.predict_proba(X_test)
        logits = model.decision_function(X_test)
        if logits.ndim == 1:  # two classes: log-odds of classes_[1]
            logits = np.column_stack([np.zeros_like(logits), logits])
        maps = {
            "predict_proba": proba,
            "EntropyNormalizer() (target: train mean)": EntropyNormalizer()
            .fit(train_proba)
            .transform(proba),
            "EntropyNormalizer(0.5, unit='relative')": EntropyNormalizer(
                0.5, unit="relative"
            ).fit_transform(proba),
            "PerturbMaxTransformer('gumbel') on logits": PerturbMaxTransformer()
            .fit(logits)
            .transform(logits),
            "PerturbMaxTransformer('normal') on logits": PerturbMaxTransformer("normal")
            .fit(logits)
            .transform(logits),
        }
    labels = model.classes_
    rows = []
    for name, P in maps.items():
        rows.append(
            (
                name,
                float(row_entropy(P).mean() / np.log(P.shape[1])),
                accuracy_score(y_test, labels[P.argmax(axis=1)]),
                log_loss(y_test, np.clip(P, 1e-15, 1), labels=labels),
            )
        )
    table = format_table(
        ["test-set rows", "entropy / log(n)", "accuracy", "log-loss"], rows
    )
    return "Probability-row transforms of AnalyticSoftmaxClassifier()\n" + table


def plot_report(path, classifier_rows, X_train, X_test, y_train, y_test):
    """Draw the tour as one figure with a panel per section and save it.

    Panels: accuracy and log-loss of the classifiers; CAN before and after;
    the entropy of the predicted rows before and after EntropyNormalizer; the
    2-Wasserstein distances between the classes' Gaussians.

    Parameters
    ----------
    path : str or path-like
        Output file; matplotlib picks the format from its extension (png,
        pdf, svg, ...).
    classifier_rows : list of tuple
        The rows of :func:`compare_classifiers`: name, accuracy, log-loss,
        fit seconds.
    X_train, X_test, y_train, y_test : array-like
        The tour's split.
    """
    from matplotlib.figure import Figure  # the plot extra; checked in main

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the figure reports numbers
        base = AnalyticSoftmaxClassifier().fit(X_train, y_train)
        before = base.predict_proba(X_test)
        corrected = {
            reference: CANCalibrator(base, reference=reference)
            .fit(X_train, y_train)
            .predict_proba(X_test)
            for reference in ("fit", "batch")
        }
        normalizer = EntropyNormalizer(unit="relative").fit(base.predict_proba(X_train))
        after = normalizer.transform(before)
        gaussians = GaussianDistance().fit(X_train, y_train)
    classes = base.classes_

    fig = Figure(figsize=(13, 9.5), layout="constrained")
    (ax_clf, ax_can), (ax_entropy, ax_gauss) = fig.subplots(2, 2)
    fig.suptitle(f"skprob tour: {len(y_test)} held-out rows, {len(classes)} classes")

    names = [row[0] for row in classifier_rows]
    _accuracy_bars(
        ax_clf,
        names,
        [row[1] for row in classifier_rows],
        [row[2] for row in classifier_rows],
    )
    ax_clf.set_title("Closed-form classifiers against maximum likelihood")

    can_names = ["AnalyticSoftmaxClassifier()"] + [
        f"+ CANCalibrator(reference={reference!r})" for reference in corrected
    ]
    can_proba = [before, *corrected.values()]
    _accuracy_bars(
        ax_can,
        can_names,
        [accuracy_score(y_test, classes[P.argmax(axis=1)]) for P in can_proba],
        [log_loss(y_test, P, labels=classes) for P in can_proba],
    )
    flagged = int(np.sum(topk_uncertainty(before, 3) >= 0.9))
    ax_can.set_title(f"CAN: {flagged} uncertain test rows corrected")

    log_n = np.log(len(classes))
    bins = np.linspace(0, 1, 41)
    ax_entropy.hist(row_entropy(before) / log_n, bins=bins, alpha=0.6, label="before")
    ax_entropy.hist(
        row_entropy(after) / log_n, bins=bins, alpha=0.6, label="EntropyNormalizer()"
    )
    ax_entropy.set_yscale("log")
    ax_entropy.set_xlabel("entropy / log(n_classes)")
    ax_entropy.set_ylabel("test rows")
    ax_entropy.set_title("Entropy of the predicted rows (target: training mean)")
    ax_entropy.legend()

    image = ax_gauss.imshow(gaussians.class_distances_, cmap="magma")
    if len(classes) <= 20:
        ticks = np.arange(len(classes))
        ax_gauss.set_xticks(ticks, [str(c) for c in classes], rotation=90)
        ax_gauss.set_yticks(ticks, [str(c) for c in classes])
    ax_gauss.set_title("W2 distance between the classes' Gaussians (training)")
    fig.colorbar(image, ax=ax_gauss, shrink=0.8)
    fig.savefig(path)


def _plot_path_problem(path):
    """Why the figure cannot be saved to ``path`` (checked before the tour), or None."""
    from matplotlib.figure import Figure

    path = Path(path)
    if not path.parent.is_dir():
        return f"the folder {path.parent} does not exist"
    formats = Figure().canvas.get_supported_filetypes()
    suffix = path.suffix.lstrip(".").lower()
    if suffix not in formats:
        return (
            f"the file name needs one of the extensions {sorted(formats)} (it "
            "chooses the image format)"
        )
    return None


def _accuracy_bars(ax, names, accuracy, loss):
    """Horizontal accuracy bars, each labelled with its log-loss."""
    positions = np.arange(len(names))[::-1]
    bars = ax.barh(positions, accuracy, color="tab:blue")
    for bar, value, logloss in zip(bars, accuracy, loss):
        ax.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            f" {value:.3f} (log-loss {logloss:.3f})",
            va="center",
            fontsize=8,
        )
    ax.set_yticks(positions, names, fontsize=8)
    ax.set_xlim(0, 1.35)
    ax.set_xlabel("test accuracy")


def format_table(header, rows):
    """Plain-text table: first column left-aligned, numbers right-aligned."""
    cells = [header] + [
        [row[0]] + [f"{v:.4f}" if isinstance(v, float) else str(v) for v in row[1:]]
        for row in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for k, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths))
            )
        )
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m skprob",
        description="A tour of skprob's estimators on built-in data or your CSV.",
    )
    parser.add_argument("--csv", help="CSV file to use instead of the digits data")
    parser.add_argument("--target", help="name of the target column of --csv")
    parser.add_argument(
        "--test-size", type=float, default=0.25, help="held-out share (default 0.25)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--plot",
        metavar="PATH",
        help="also draw the tour to this image file (png, pdf, svg; needs matplotlib)",
    )
    args = parser.parse_args(argv)
    if args.csv and not args.target:
        parser.error("--csv needs --target COLUMN")
    if args.target and not args.csv:
        parser.error("--target needs --csv PATH")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(
                "error: --plot needs matplotlib, which is not installed; install "
                "it with: python -m pip install 'skprob[plot]'",
                file=sys.stderr,
            )
            return 3
        problem = _plot_path_problem(args.plot)
        if problem:
            print(f"error: cannot write {args.plot}: {problem}", file=sys.stderr)
            return 2
    if args.csv:
        try:
            X, y = load_csv(args.csv, args.target)
        except (OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        name = args.csv
    else:
        X, y = load_digits(return_X_y=True)
        name = "digits (scikit-learn's 8x8 handwritten digits)"
    _, counts = np.unique(np.asarray(y), return_counts=True)
    stratify = y if counts.min() >= 2 else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=args.test_size, random_state=args.seed, stratify=stratify
    )
    print(
        f"skprob tour on {name}: {X.shape[0]} samples, {X.shape[1]} features, "
        f"{len(counts)} classes; {len(y_test)} held out (seed {args.seed}).\n"
    )
    print("Closed-form classifiers against maximum likelihood")
    rows = compare_classifiers(X_train, X_test, y_train, y_test)
    print(format_table(["classifier", "accuracy", "log-loss", "fit (s)"], rows))
    for section in (tour_can, tour_rows, tour_gaussian):
        print()
        print(section(X_train, X_test, y_train, y_test))
    if args.plot:
        try:
            plot_report(args.plot, rows, X_train, X_test, y_train, y_test)
        except (OSError, ValueError) as error:  # unwritable path, unknown format
            print(f"error: cannot write {args.plot}: {error}", file=sys.stderr)
            return 2
        print(f"\nFigure written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
