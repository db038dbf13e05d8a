"""The body of ``python -m skprob``: each section fits, measures and explains.

Every section returns a :class:`Section`: a table, one or two sentences built
from the table's own numbers by a ``*_sentences`` function (who wins, by how
much, when that changes), the warnings its estimators raised, and what the
figure of ``--plot`` needs. Nothing here is printed from a fixed text.
"""

import sys
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ._simplex import row_entropy
from ._tour_parts import Section, Split, load_csv, noting_warnings, timed_fit
from ._tour_plot import _plot_path_problem, plot_report
from ._tour_text import (
    DEFAULT,
    LDA,
    LOGISTIC,
    OAS,
    RAW,
    can_sentences,
    classifier_sentences,
    gaussian_sentences,
    novelty_sentences,
    reliability,
    rows_sentences,
    small_sentences,
)
from .calibration import CANCalibrator, topk_uncertainty
from .linear_model import AnalyticSoftmaxClassifier
from .metrics import GaussianDistance
from .preprocessing import EntropyNormalizer, PerturbMaxTransformer


def classifiers():
    """The contenders of the tour: display name -> function making the model."""
    return {
        DEFAULT: lambda: AnalyticSoftmaxClassifier(),
        OAS: lambda: AnalyticSoftmaxClassifier(shrinkage="auto"),
        RAW: lambda: AnalyticSoftmaxClassifier(temperature=None),
        LOGISTIC: lambda: make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=5000)
        ),
        LDA: lambda: LinearDiscriminantAnalysis(),
    }


# --------------------------------------------------------------------------
# sections


def tour_classifiers(split):
    """Accuracy, log-loss, calibration error and fit time of each contender."""
    notes, rows, models, times, runs = [], [], {}, {}, {}
    for name, make in classifiers().items():
        with noting_warnings(notes, name):
            model, seconds, runs[name] = timed_fit(make, split.X_train, split.y_train)
            proba = model.predict_proba(split.X_test)
        models[name] = (model, proba)
        times[name] = seconds
        rows.append(
            (
                name,
                accuracy_score(split.y_test, model.classes_[proba.argmax(axis=1)]),
                log_loss(split.y_test, proba, labels=model.classes_),
                reliability(split.y_test, proba, model.classes_)[3],
                1000 * seconds,
                seconds / times[DEFAULT],
            )
        )
    temperature = models[DEFAULT][0].temperature_
    low, high = min(runs.values()), max(runs.values())
    runs_text = str(low) if low == high else f"{low} to {high}"
    sentences = classifier_sentences(rows, temperature, runs_text, len(split.y_test))
    header = ["classifier", "accuracy", "log-loss", "ECE", "fit (ms)", "vs default"]
    formatted = [
        (name, acc, loss, ece, f"{ms:.1f}", f"{ratio:.2f}x")
        for name, acc, loss, ece, ms, ratio in rows
    ]
    return Section(
        "Closed-form classifiers against maximum likelihood",
        header,
        formatted,
        sentences,
        notes,
        {"rows": rows, "models": models, "runs": runs},
    )


def tour_small(split, seed, n_repeats=3):
    """The same contenders on small subsets of the training rows.

    The sizes follow the data: as many rows as features (the covariance is
    barely estimable), and four times as many; each at least three rows per
    class. Means over ``n_repeats`` stratified draws.
    """
    classes = split.classes
    n_train, n_features = np.shape(split.X_train)
    _, counts = np.unique(np.asarray(split.y_train), return_counts=True)
    floor = 3 * len(classes)
    sizes = sorted(
        {
            size
            for size in (max(floor, n_features), max(floor, 4 * n_features))
            if size <= 0.6 * n_train
        }
    )
    names = [DEFAULT, OAS, LOGISTIC]
    title = "With fewer training rows (means of stratified draws)"
    if not sizes or counts.min() < 2:
        return Section(
            title,
            [],
            [],
            [
                f"Skipped: the training set ({n_train} rows, {len(classes)} classes, "
                f"at least {counts.min()} per class) is too small to draw subsets "
                f"of at least {floor} rows that keep every class."
            ],
        )
    notes, results = [], {}
    makers = classifiers()
    for size in sizes:
        scores = {name: [] for name in names}
        for repeat in range(n_repeats):
            X_sub, _, y_sub, _ = train_test_split(
                split.X_train,
                split.y_train,
                train_size=size,
                random_state=seed + repeat,
                stratify=split.y_train,
            )
            for name in names:
                with noting_warnings(notes, f"{name} on {size} rows"):
                    model = makers[name]().fit(X_sub, y_sub)
                    proba = model.predict_proba(split.X_test)
                labels = model.classes_
                scores[name].append(
                    (
                        accuracy_score(split.y_test, labels[proba.argmax(axis=1)]),
                        log_loss(split.y_test, proba, labels=labels)
                        if len(labels) == len(classes)
                        else float("nan"),
                    )
                )
        results[size] = {name: np.mean(scores[name], axis=0) for name in names}
    rows = [
        (name, str(size), float(results[size][name][0]), float(results[size][name][1]))
        for size in sizes
        for name in names
    ]
    sentences = [
        sentence
        for size in sizes
        for sentence in small_sentences(size, n_features, len(classes), results[size])
    ]
    return Section(
        title,
        ["classifier", "rows", "accuracy", "log-loss"],
        rows,
        sentences,
        notes,
    )


def tour_novelty(split, seed, n_draws=5):
    """score_samples: rows of classes never seen in training.

    Holds out two classes (one with fewer than five), trains on the others
    and asks each score to rank the held-out classes' test rows below the
    test rows of the trained classes (AUROC, 0.5 is chance). Repeated for
    ``n_draws`` random choices of the held-out classes.
    """
    classes = split.classes
    title = "Rows of classes never seen in training (score_samples, novelty)"
    if len(classes) < 3:
        return Section(
            title,
            [],
            [],
            [
                f"Skipped: with {len(classes)} classes, holding one out leaves a "
                "single class to train on."
            ],
        )
    n_held = 2 if len(classes) >= 5 else 1
    rng = np.random.RandomState(seed)
    draws = []
    while len(draws) < n_draws and len(draws) < _n_subsets(len(classes), n_held):
        held = tuple(sorted(rng.choice(len(classes), n_held, replace=False)))
        if held not in draws:
            draws.append(held)
    y_train, y_test = np.asarray(split.y_train), np.asarray(split.y_test)
    kinds = ["relative", "mahalanobis", "density"]
    names = [f"score_samples, novelty_score={kind!r}" for kind in kinds]
    names[0] += " (default)"
    msp_ours = f"{DEFAULT}: max predict_proba"
    msp_logistic = f"{LOGISTIC}: max predict_proba"
    names += [msp_ours, msp_logistic]
    auroc = {name: [] for name in names}
    notes, curves = [], []
    for held in draws:
        held_labels = classes[list(held)]
        known = ~np.isin(y_train, held_labels)
        novel = np.isin(y_test, held_labels)
        X_known = _rows_where(split.X_train, known)
        with noting_warnings(notes, DEFAULT):
            model = AnalyticSoftmaxClassifier().fit(X_known, y_train[known])
        with noting_warnings(notes, LOGISTIC):
            logistic = classifiers()[LOGISTIC]().fit(X_known, y_train[known])
        scores = {}
        for kind, name in zip(kinds, names):
            scores[name] = model.set_params(novelty_score=kind).score_samples(
                split.X_test
            )
        scores[msp_ours] = model.predict_proba(split.X_test).max(axis=1)
        scores[msp_logistic] = logistic.predict_proba(split.X_test).max(axis=1)
        for name, score in scores.items():
            auroc[name].append(roc_auc_score(~novel, score))
        curves.append(
            (
                " / ".join(str(c) for c in held_labels),
                {name: auroc[name][-1] for name in (names[0], msp_logistic)},
            )
        )
    rows = [
        (
            name,
            float(np.mean(values)),
            float(np.min(values)),
            float(np.max(values)),
        )
        for name, values in auroc.items()
    ]
    held_text = ", ".join(label for label, _ in curves)
    sentences = novelty_sentences(
        auroc[names[0]], auroc[msp_logistic], held_text, n_held
    )
    return Section(
        title,
        ["score (higher: more typical)", "AUROC", "lowest", "highest"],
        rows,
        sentences,
        notes,
        {"draws": curves, "default": names[0], "baseline": msp_logistic},
    )


def _n_subsets(n, k):
    from math import comb

    return comb(n, k)


def _rows_where(X, mask):
    """The rows of an array or a DataFrame where ``mask`` is True."""
    return X[mask] if isinstance(X, np.ndarray) else X.iloc[np.flatnonzero(mask)]


def tour_can(split, classifier):
    """CAN around the closed-form classifier: which test rows it corrects, and how."""
    base, before = classifier
    classes = base.classes_
    defaults = CANCalibrator()
    threshold, top_k = defaults.threshold, defaults.top_k
    uncertainty = topk_uncertainty(before, top_k)
    flagged = int(np.sum(uncertainty >= threshold))
    notes, changed = [], {}
    accuracy = [accuracy_score(split.y_test, classes[before.argmax(axis=1)])]
    rows = [(DEFAULT, accuracy[0], log_loss(split.y_test, before, labels=classes))]
    rows[0] += ("-", "-")
    for reference in ("fit", "batch"):
        name = f"+ CANCalibrator(reference={reference!r})"
        model = CANCalibrator(AnalyticSoftmaxClassifier(), reference=reference)
        with noting_warnings(notes, name):
            model.fit(split.X_train, split.y_train)
            proba = model.predict_proba(split.X_test)
        changed[reference] = int(np.sum(proba.argmax(1) != before.argmax(1)))
        accuracy.append(accuracy_score(split.y_test, classes[proba.argmax(1)]))
        rows.append(
            (
                name,
                accuracy[-1],
                log_loss(split.y_test, proba, labels=classes),
                f"{flagged} of {len(proba)}",
                str(changed[reference]),
            )
        )
    sentences = can_sentences(uncertainty, threshold, top_k, changed, accuracy)
    header = ["classifier", "accuracy", "log-loss", "rows corrected", "labels changed"]
    title = (
        f"CAN: uncertain predictions (top-{top_k} uncertainty >= {threshold}) "
        "corrected against confident ones"
    )
    figure = {"uncertainty": uncertainty, "threshold": threshold, "top_k": top_k}
    return Section(title, header, rows, sentences, notes, figure)


def tour_rows(split, classifier):
    """Row transforms on the tour classifier's test-set probabilities.

    EntropyNormalizer (target learned on the training probabilities, and a
    fixed half of the maximum entropy) and perturb-max maps of the logits:
    Gumbel noise is the softmax, normal noise the multinomial probit. All of
    them keep the order within each row, so the accuracy does not move.
    """
    model, proba = classifier
    notes = []
    with noting_warnings(notes, "the row transforms"):
        train_proba = model.predict_proba(split.X_train)
        logits = model.decision_function(split.X_test)
        if logits.ndim == 1:  # two classes: log-odds of classes_[1]
            logits = np.column_stack([np.zeros_like(logits), logits])
        learned = EntropyNormalizer().fit(train_proba)
        maps = {
            "predict_proba": proba,
            "EntropyNormalizer() (target: train mean)": learned.transform(proba),
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
    rows = [
        (
            name,
            float(row_entropy(P).mean() / np.log(P.shape[1])),
            accuracy_score(split.y_test, labels[P.argmax(axis=1)]),
            log_loss(split.y_test, np.clip(P, 1e-15, 1), labels=labels),
        )
        for name, P in maps.items()
    ]
    gumbel_gap = float(
        np.abs(maps["PerturbMaxTransformer('gumbel') on logits"] - proba).max()
    )
    after = maps["EntropyNormalizer() (target: train mean)"]
    at_target = float(
        np.mean(np.abs(row_entropy(after) - learned.target_entropy_) < 1e-6)
    )
    sentences = rows_sentences(rows, at_target, gumbel_gap)
    return Section(
        f"Probability-row transforms of {DEFAULT}",
        ["test-set rows", "entropy / log(n)", "accuracy", "log-loss"],
        rows,
        sentences,
        notes,
        {"before": proba, "after": maps["EntropyNormalizer() (target: train mean)"]},
    )


def tour_gaussian(split, classifier, seed, n_pairs=5):
    """Class separability: the closest pairs of classes, as Gaussians.

    Each class is summarised by its mean and covariance; the pairs of classes
    whose Gaussians are closest (2-Wasserstein distance on the training data)
    are the ones a classifier confuses most easily. The test column repeats
    the distance on held-out data, the next one is the Bhattacharyya distance
    between OAS-shrunk Gaussians (``-log`` of their overlap), the last counts
    the test rows of one class of the pair that the tour's classifier
    assigns to the other. A last line measures the shift between the training
    and the test data as a whole, on the scale of the shift between random
    parts of the training data.
    """
    model, proba = classifier
    notes = []
    y_train, y_test = np.asarray(split.y_train), np.asarray(split.y_test)
    predicted = model.classes_[proba.argmax(axis=1)]
    with noting_warnings(notes, "GaussianDistance"):
        train = GaussianDistance().fit(split.X_train, y_train)
        test = GaussianDistance().fit(split.X_test, y_test)
        overlap = GaussianDistance("bhattacharyya", shrinkage="auto").fit(
            split.X_train, y_train
        )
        shift = float(GaussianDistance().fit(split.X_train).distance(split.X_test))
        noise = _sampling_shift(split, seed)
    in_test = {label: k for k, label in enumerate(test.classes_)}
    first, second = np.triu_indices(len(train.classes_), k=1)
    pair_distances = train.class_distances_[first, second]
    closest = np.argsort(pair_distances, kind="stable")
    rows = []
    for k in closest[:n_pairs]:
        i, j = first[k], second[k]
        a, b = train.classes_[i], train.classes_[j]
        held_out = (
            float(test.class_distances_[in_test[a], in_test[b]])
            if a in in_test and b in in_test
            else float("nan")
        )
        errors = int(
            np.sum((y_test == a) & (predicted == b))
            + np.sum((y_test == b) & (predicted == a))
        )
        rows.append(
            (
                f"{a} / {b}",
                float(train.class_distances_[i, j]),
                held_out,
                float(overlap.class_distances_[i, j]),
                str(errors),
            )
        )
    sentences = gaussian_sentences(
        rows,
        int(np.sum(predicted != y_test)),
        len(first),
        float(np.median(pair_distances)),
        shift,
        noise,
    )
    return Section(
        "Class separability: the closest pairs of classes (GaussianDistance)",
        ["classes", "W2 (train)", "W2 (test)", "Bhattacharyya (OAS)", "test errors"],
        rows,
        [
            f"Shift between the training and the test data (W2 of their Gaussians): "
            f"{shift:.2f}; between random parts of the training data of the same "
            f"sizes: {noise:.2f}.",
            *sentences,
        ],
        notes,
        {"distances": train.class_distances_, "classes": train.classes_},
    )


def _sampling_shift(split, seed, n_draws=3):
    """W2 between random parts of the training data with the test set's size
    (median of ``n_draws``): the shift that sampling alone produces."""
    n_train, n_test = len(split.y_train), len(split.y_test)
    n_part = min(n_test, n_train // 2)
    rng = np.random.RandomState(seed)
    shifts = []
    for _ in range(n_draws):
        order = rng.permutation(n_train)
        reference = _rows_where(
            split.X_train, np.isin(np.arange(n_train), order[n_part:])
        )
        part = _rows_where(split.X_train, np.isin(np.arange(n_train), order[:n_part]))
        shifts.append(GaussianDistance().fit(reference).distance(part))
    return float(np.median(shifts))


# --------------------------------------------------------------------------
# the command


def run(args):
    """The tour for parsed arguments (see ``skprob.__main__``); the exit status."""
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
    split = Split(X_train, X_test, np.asarray(y_train), np.asarray(y_test))
    print(
        f"skprob tour on {name}: {X.shape[0]} samples, {X.shape[1]} features, "
        f"{len(counts)} classes; {len(y_test)} held out (seed {args.seed}); "
        "one BLAS thread.\n"
    )
    # One BLAS thread for the whole tour: the fit times then compare like with
    # like, and on data of this size threads cost more than they save (on two
    # busy cores the sections took 4.5-5.5 s with OpenBLAS threads, 1.0 s on one).
    with threadpool_limits(limits=1, user_api="blas"):
        status = _tour(args, split)
    return status


def _tour(args, split):
    """Print every section, then draw the figure when asked; the exit status."""
    start = time.perf_counter()
    sections = {"classifiers": tour_classifiers(split)}
    print(sections["classifiers"].text())
    default = sections["classifiers"].figure["models"][DEFAULT]
    steps = {
        "small": lambda: tour_small(split, args.seed),
        "novelty": lambda: tour_novelty(split, args.seed),
        "can": lambda: tour_can(split, default),
        "rows": lambda: tour_rows(split, default),
        "gaussian": lambda: tour_gaussian(split, default, args.seed),
    }
    for key, step in steps.items():
        sections[key] = step()
        print()
        print(sections[key].text())
    print(f"\nThe tour took {time.perf_counter() - start:.1f} s.")
    if args.plot:
        try:
            plot_report(args.plot, sections, split)
        except (OSError, ValueError) as error:  # unwritable path, unknown format
            print(f"error: cannot write {args.plot}: {error}", file=sys.stderr)
            return 2
        print(f"Figure written to {args.plot}")
    return 0
