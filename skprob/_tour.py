"""The body of ``python -m skprob``: each section fits, measures and explains.

Every section returns a :class:`Section`: a table, one or two sentences built
from the table's own numbers by a ``*_sentences`` function (who wins, by how
much, when that changes), the warnings its estimators raised, and what the
figure of ``--plot`` needs. Nothing here is printed from a fixed text.
"""

import sys
import textwrap
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ._simplex import row_entropy
from .calibration import CANCalibrator, topk_uncertainty
from .linear_model import AnalyticSoftmaxClassifier
from .metrics import GaussianDistance
from .preprocessing import EntropyNormalizer, PerturbMaxTransformer

WIDTH = 88  # of the printed sentences
DEFAULT = "AnalyticSoftmaxClassifier()"
OAS = "AnalyticSoftmaxClassifier(shrinkage='auto')"
RAW = "AnalyticSoftmaxClassifier(temperature=None)"
LOGISTIC = "LogisticRegression (scaled)"
LDA = "LinearDiscriminantAnalysis()"


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


@dataclass
class Split:
    """The tour's data: a stratified train/test split."""

    X_train: object
    X_test: object
    y_train: object
    y_test: object

    @property
    def classes(self):
        return np.unique(np.concatenate([np.asarray(self.y_train), self.y_test]))


@dataclass
class Section:
    """One part of the tour: a table, sentences from its numbers, warnings."""

    title: str
    header: list
    rows: list
    sentences: list
    notes: list = field(default_factory=list)
    figure: dict = field(default_factory=dict)

    def text(self):
        parts = [self.title]
        if self.rows:
            parts.append(format_table(self.header, self.rows))
        parts += [textwrap.fill(s, WIDTH) for s in self.sentences]
        parts += [
            textwrap.fill(f"Warning raised by {note}", WIDTH, subsequent_indent="    ")
            for note in self.notes
        ]
        return "\n".join(parts)


@contextmanager
def noting_warnings(notes, source):
    """Record the warnings raised inside the block as ``"source: Category: text"``.

    The tour shows them under its section (once each) rather than in the
    middle of its tables; none is silenced.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        note = f"{source}: {warning.category.__name__}: {warning.message}"
        if note not in notes:
            notes.append(note)


# --------------------------------------------------------------------------
# data


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
    counts = y.value_counts()
    if len(counts) < 2:
        raise ValueError(
            f"The target column {target!r} has one class only ({counts.index[0]!r})."
        )
    return X.astype(np.float64), y


# --------------------------------------------------------------------------
# measures


def reliability(y_true, proba, classes, n_bins=10):
    """Reliability of the top probability, in equal-width confidence bins.

    Returns
    -------
    confidence, accuracy, share : ndarray of shape (n_nonempty_bins,)
        Mean top probability, fraction of correct predictions and share of
        the rows of each non-empty bin.
    ece : float
        Expected calibration error, ``sum(share * |accuracy - confidence|)``.
    """
    top = proba.max(axis=1)
    correct = classes[proba.argmax(axis=1)] == np.asarray(y_true)
    bins = np.minimum((top * n_bins).astype(int), n_bins - 1)
    used = [b for b in range(n_bins) if np.any(bins == b)]
    confidence = np.array([top[bins == b].mean() for b in used])
    accuracy = np.array([correct[bins == b].mean() for b in used])
    share = np.array([np.mean(bins == b) for b in used])
    return (
        confidence,
        accuracy,
        share,
        float(np.sum(share * np.abs(accuracy - confidence))),
    )


def timed_fit(make, X, y, max_runs=5, budget=2.0):
    """Fit ``make()`` up to ``max_runs`` times on one BLAS thread.

    Stops early once ``budget`` seconds are spent (at least one run). One
    thread, so that every contender is timed alike (:func:`run` pins the
    whole tour; this holds when called alone too).

    Returns
    -------
    model : the last fitted model
    seconds : float, the median fit time
    runs : int
    """
    times = []
    with threadpool_limits(limits=1, user_api="blas"):
        while len(times) < max_runs and sum(times) < budget:
            start = time.perf_counter()
            model = make().fit(X, y)
            times.append(time.perf_counter() - start)
    return model, float(np.median(times)), len(times)


def _points(a, b):
    """Difference of two accuracies, in percentage points."""
    return 100 * (a - b)


def _ms(milliseconds):
    """A duration in milliseconds, to two significant digits at least."""
    return f"{milliseconds:.0f} ms" if milliseconds >= 10 else f"{milliseconds:.1f} ms"


def _join(names):
    """``"a"``, ``"a and b"``, ``"a, b and c"``."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


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


def classifier_sentences(rows, temperature, runs, n_test):
    """Who is most accurate, what the temperature does, what the fit costs.

    Parameters
    ----------
    rows : list of tuple
        (name, accuracy, log-loss, ECE, fit milliseconds, fit time relative to
        the default closed form), with rows for ``DEFAULT``, ``RAW``,
        ``LOGISTIC`` and ``LDA``.
    temperature : float
        ``temperature_`` of the default closed form.
    runs : str
        Number of timed fits per model ("5", or "1 to 5").
    n_test : int
        Number of test rows.
    """
    by = {row[0]: row for row in rows}
    # the temperature does not move the argmax: RAW's accuracy is DEFAULT's
    accuracy = {name: row[1] for name, row in by.items() if name != RAW}
    top = max(accuracy.values())
    leaders = [name for name in accuracy if accuracy[name] == top]
    ours = by[DEFAULT]
    if DEFAULT in leaders:
        tied = [name for name in leaders if name != DEFAULT]
        below = {k: v for k, v in accuracy.items() if v < top}
        first = f"{DEFAULT} is the most accurate ({top:.3f})"
        if tied:
            first = (
                f"{DEFAULT} ties for the most accurate ({top:.3f}) with {_join(tied)}"
            )
        if below:
            runner_up = max(below, key=lambda k: below[k])
            first += (
                f", {_points(top, below[runner_up]):.1f} points ahead of the next, "
                f"{runner_up} ({below[runner_up]:.3f})"
            )
        first += "."
    else:
        verb = "is" if len(leaders) == 1 else "are"
        first = (
            f"{_join(leaders)} {verb} the most accurate ({top:.3f}), "
            f"{_points(top, ours[1]):.1f} points ahead of {DEFAULT} "
            f"({ours[1]:.3f}; {round((top - ours[1]) * n_test)} of {n_test} test "
            "rows)."
        )
    raw = by[RAW]
    loss_verb = "lowers" if ours[2] < raw[2] else "raises"
    ece_verb = "lowers" if ours[3] < raw[3] else "raises"
    lowest = min(by, key=lambda k: by[k][2])
    second = (
        f"The leave-one-out temperature (temperature_ = {temperature:.2f}) "
        f"{loss_verb} the closed form's log-loss from {raw[2]:.3f} "
        f"(temperature=None) to {ours[2]:.3f} and {ece_verb} its calibration error "
        f"(ECE) from {raw[3]:.3f} to {ours[3]:.3f}; "
        + (
            "that is the lowest log-loss here."
            if lowest == DEFAULT
            else f"the lowest log-loss is {lowest}'s {by[lowest][2]:.3f}."
        )
    )
    third = (
        f"Fit times are medians of {runs} runs on one BLAS thread: {DEFAULT} "
        f"takes {_ms(ours[4])}, {ours[4] / by[LOGISTIC][4]:.2f}x the time of "
        f"{LOGISTIC} and {ours[4] / by[LDA][4]:.2f}x that of {LDA}"
    )
    if raw[4] < 0.5 * ours[4]:
        third += (
            f"; the leave-one-out temperature is {1 - raw[4] / ours[4]:.0%} of it "
            f"({RAW} takes {_ms(raw[4])})."
        )
    else:
        third += "."
    return [first, second, third]


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


def small_sentences(size, n_features, n_classes, result):
    """Who leads with ``size`` training rows, and what shrinkage does there.

    ``result``: name -> (accuracy, log-loss) for ``DEFAULT``, ``OAS`` and
    ``LOGISTIC``.
    """
    accuracy = {name: value[0] for name, value in result.items()}
    top = max(accuracy.values())
    leaders = [name for name in accuracy if accuracy[name] == top]
    relation = (
        "fewer than"
        if size < n_features
        else "as many as"
        if size == n_features
        else f"{size / n_features:.1f}x"
    )
    first = (
        f"With {size} training rows ({size / n_classes:.0f} per class, {relation} "
        f"the {n_features} features), {_join(leaders)} "
        f"{'is' if len(leaders) == 1 else 'are'} the most accurate ({top:.3f})"
    )
    if leaders == [LOGISTIC]:
        closed = max((DEFAULT, OAS), key=lambda k: accuracy[k])
        first += (
            f", {_points(top, accuracy[closed]):.1f} points ahead of the better "
            f"closed form, {closed}."
        )
    elif LOGISTIC not in leaders:
        first += f", {_points(top, accuracy[LOGISTIC]):.1f} points ahead of {LOGISTIC}."
    else:
        first += "."
    (acc, loss), (acc_oas, loss_oas) = result[DEFAULT], result[OAS]
    if abs(acc_oas - acc) < 0.01:
        return [first]
    second = (
        f"Shrinkage matters here: shrinkage='auto' gives the closed form an "
        f"accuracy of {acc_oas:.3f} and a log-loss of {loss_oas:.3f}, against "
        f"{acc:.3f} and {loss:.3f} without."
    )
    return [first, second]


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
        X_known = _rows(split.X_train, known)
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


def _rows(X, mask):
    return X[mask] if isinstance(X, np.ndarray) else X.iloc[np.flatnonzero(mask)]


def novelty_sentences(default, baseline, held_text, n_held):
    """AUROC of the default score against the baseline, per draw and on average."""
    default, baseline = np.asarray(default), np.asarray(baseline)
    wins = int(np.sum(default > baseline))
    what = "pair" if n_held == 2 else "class"
    verb = "above" if default.mean() > baseline.mean() else "below"
    return [
        f"Held out, one {what} at a time: {held_text}. The default score_samples "
        f"ranks their test rows below those of the trained classes with a mean "
        f"AUROC of {default.mean():.3f}, {verb} the {baseline.mean():.3f} of "
        f"{LOGISTIC}'s maximum probability; it is ahead on {wins} of "
        f"{len(default)} draws (0.5 is chance, 1 a perfect ranking).",
    ]


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


def can_sentences(uncertainty, threshold, top_k, changed, accuracy):
    """Why CAN changed what it changed.

    Parameters
    ----------
    uncertainty : ndarray of shape (n_test,)
        Top-k uncertainty of the base classifier's test rows.
    threshold : float
    top_k : int
    changed : dict
        reference -> number of predicted labels CAN changed.
    accuracy : list of float
        Accuracy before, then with each reference (in the order of ``changed``).
    """
    flagged = int(np.sum(uncertainty >= threshold))
    if flagged == 0:
        return [
            f"No test row reached the uncertainty threshold {threshold} (the most "
            f"uncertain has top-{top_k} uncertainty {uncertainty.max():.2f}), so "
            "CAN corrected nothing: the base classifier is confident on every row."
        ]
    moves = " and ".join(
        f"{n} with reference={ref!r} (accuracy {acc:.3f})"
        for (ref, n), acc in zip(changed.items(), accuracy[1:])
    )
    text = (
        f"{flagged} of {len(uncertainty)} test rows "
        f"({flagged / len(uncertainty):.1%}) reached the threshold {threshold}; "
        f"CAN changed the predicted label of {moves}, from an accuracy of "
        f"{accuracy[0]:.3f} before."
    )
    if max(changed.values()) <= 0.01 * len(uncertainty):
        text += (
            " With a classifier this confident CAN matters little; it helps most "
            "when many rows are uncertain, or when the class frequencies of the "
            "new data differ from the training data."
        )
    return [text]


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


def rows_sentences(rows, at_target, gumbel_gap):
    """What the row transforms did to the accuracy and to the log-loss.

    Parameters
    ----------
    rows : list of tuple
        (name, mean relative entropy, accuracy, log-loss): the predict_proba
        row first, the learned EntropyNormalizer second, the normal
        perturb-max map last.
    at_target : float
        Share of the test rows that the learned EntropyNormalizer brought to
        its target entropy (the others cannot reach it).
    gumbel_gap : float
        Largest difference between the Gumbel map and predict_proba.
    """
    base, learned, normal = rows[0], rows[1], rows[-1]
    changed = [row for row in rows if row[2] != base[2]]
    if changed:
        first = "Ties broken differently move the accuracy of " + ", ".join(
            f"{row[0]} to {row[2]:.3f}" for row in changed
        )
        first += f" (predict_proba: {base[2]:.3f})."
    else:
        first = (
            "Every transform keeps the order within each row, so the accuracy "
            f"stays {base[2]:.3f}."
        )
    verb = "raises" if learned[3] > base[3] else "lowers"
    rows_at = "every row" if at_target == 1 else f"{at_target:.0%} of the rows"
    second = (
        f"EntropyNormalizer (target: the training mean) {verb} the log-loss from "
        f"{base[3]:.3f} to {learned[3]:.3f} here: it gives {rows_at} the same "
        "entropy, so it equalises confidence; it does not calibrate."
    )
    same = "identical here" if gumbel_gap == 0 else f"to {gumbel_gap:.0e}"
    third = (
        f"Gumbel noise reproduces predict_proba ({same}): the softmax is its "
        f"perturb-max map; normal noise (probit) gives a log-loss of {normal[3]:.3f}."
    )
    return [first, second, third]


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
        reference = _rows(split.X_train, np.isin(np.arange(n_train), order[n_part:]))
        part = _rows(split.X_train, np.isin(np.arange(n_train), order[:n_part]))
        shifts.append(GaussianDistance().fit(reference).distance(part))
    return float(np.median(shifts))


def gaussian_sentences(rows, n_errors, n_pairs, median_distance, shift, noise):
    """What the closest pairs explain, and what scale the shift is on."""
    in_pairs = sum(int(row[4]) for row in rows)
    sentences = []
    if n_errors and n_pairs > len(rows):  # else the pairs are all the pairs
        sentences.append(
            f"The {len(rows)} closest of the {n_pairs} pairs of classes account "
            f"for {in_pairs} of the {n_errors} test errors of {DEFAULT} "
            f"({in_pairs / n_errors:.0%}); distances between classes range from "
            f"{rows[0][1]:.3g} (closest pair) to a median of {median_distance:.3g}."
        )
    ratio = shift / noise if noise > 0 else float("inf")
    if ratio <= 1.25:
        verdict = (
            "no more than sampling alone produces: the test rows look like the "
            "training rows"
        )
    else:
        verdict = (
            f"{ratio:.1f} times what sampling alone produces: the test data differ "
            "from the training data"
        )
    sentences.append(
        f"The train/test shift (W2 {shift:.2f}, in the units of the features) is "
        f"{shift / rows[0][1]:.0%} of the distance between the closest classes "
        f"and {verdict}."
    )
    return sentences


# --------------------------------------------------------------------------
# the figure


def plot_report(path, sections, split):
    """Draw the tour as one figure with a panel per section and save it.

    Panels: accuracy of the classifiers (zoomed, log-loss in the labels); a
    reliability diagram of the calibrated and raw closed form and of the
    scaled logistic regression; AUROC of the novelty scores per held-out
    draw; the top-k uncertainty of the test rows with CAN's threshold; the
    entropy of the predicted rows before and after EntropyNormalizer; the
    2-Wasserstein distances between the classes' Gaussians (diagonal masked).

    Parameters
    ----------
    path : str or path-like
        Output file; matplotlib picks the format from its extension (png,
        pdf, svg, ...).
    sections : dict
        The tour's sections by key ("classifiers", "novelty", "can", "rows",
        "gaussian"), as returned by the ``tour_*`` functions.
    split : Split
    """
    from matplotlib.figure import Figure  # the plot extra; checked in run

    fig = Figure(figsize=(17, 10), layout="constrained")
    axes = fig.subplots(2, 3)
    classes = split.classes
    fig.suptitle(
        f"skprob tour: {len(split.y_test)} held-out rows, {len(classes)} classes"
    )
    _plot_accuracy(axes[0, 0], sections["classifiers"].figure["rows"])
    _plot_reliability(axes[0, 1], sections["classifiers"].figure["models"], split)
    _plot_novelty(axes[0, 2], sections["novelty"])
    _plot_uncertainty(axes[1, 0], sections["can"].figure)
    _plot_entropy(axes[1, 1], sections["rows"].figure, len(classes))
    _plot_distances(axes[1, 2], sections["gaussian"].figure)
    fig.savefig(path)


def _plot_accuracy(ax, rows):
    """Test accuracy of each classifier on a zoomed axis, log-loss in the labels."""
    names = [row[0] for row in rows]
    accuracy = np.array([row[1] for row in rows])
    positions = np.arange(len(rows))[::-1]
    ax.hlines(positions, accuracy.min(), accuracy, color="lightgrey", zorder=1)
    ax.scatter(accuracy, positions, color="tab:blue", zorder=2)
    span = max(accuracy.max() - accuracy.min(), 0.01)
    ax.set_xlim(accuracy.min() - 0.15 * span, accuracy.max() + 0.9 * span)
    for x, y, row in zip(accuracy, positions, rows):
        ax.annotate(
            f"{x:.3f} (log-loss {row[2]:.3f})",
            (x, y),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_yticks(positions, names, fontsize=8)
    ax.set_xlabel("test accuracy (axis zoomed to the differences)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Accuracy of the classifiers")


def _plot_reliability(ax, models, split, min_rows=5):
    """Fraction correct against confidence, for the calibrated and raw closed form
    and the scaled logistic regression; bins of fewer than ``min_rows`` rows
    are left out (their fraction is noise), marker areas follow the rows."""
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="calibrated")
    n_test = len(split.y_test)
    low = 1.0
    for name in (DEFAULT, RAW, LOGISTIC):
        model, proba = models[name]
        confidence, accuracy, share, ece = reliability(
            split.y_test, proba, model.classes_
        )
        kept = share * n_test >= min_rows
        (line,) = ax.plot(
            confidence[kept], accuracy[kept], label=f"{name}, ECE {ece:.3f}"
        )
        ax.scatter(
            confidence[kept],
            accuracy[kept],
            s=8 + 200 * share[kept],
            color=line.get_color(),
        )
        low = min([low, *confidence[kept], *accuracy[kept]])
    low = max(0.0, low - 0.05)  # zoomed to the bins drawn
    ax.set_xlim(low, 1.01)
    ax.set_ylim(low - 0.3 * (1.01 - low), 1.01)  # room for the legend below

    ax.set_xlabel(
        f"confidence (top probability; 10 bins, those of {min_rows}+ rows; area: rows)"
    )
    ax.set_ylabel("fraction correct")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    ax.set_title("Reliability of the predicted probabilities")


def _plot_novelty(ax, section):
    """AUROC of the default novelty score and of the baseline, per held-out draw."""
    if not section.figure:
        ax.axis("off")
        ax.text(0.5, 0.5, textwrap.fill(section.sentences[0], 50), ha="center")
        ax.set_title("Novelty (score_samples)")
        return
    draws = section.figure["draws"]
    x = np.arange(len(draws))
    for offset, name in (
        (-0.1, section.figure["default"]),
        (0.1, section.figure["baseline"]),
    ):
        ax.plot(
            x + offset,
            [values[name] for _, values in draws],
            "o",
            label=name,
        )
    ax.set_xticks(x, [label for label, _ in draws])
    ax.set_xlabel("held-out classes")
    ax.set_ylabel("AUROC: held-out rows ranked below known ones")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title("Rows of unseen classes (score_samples)")


def _plot_uncertainty(ax, figure):
    """Histogram of the test rows' top-k uncertainty and CAN's threshold."""
    uncertainty, threshold = figure["uncertainty"], figure["threshold"]
    ax.hist(uncertainty, bins=np.linspace(0, 1, 41), color="tab:blue")
    ax.axvline(threshold, color="tab:red", linestyle="--")
    flagged = int(np.sum(uncertainty >= threshold))
    ax.annotate(
        f"threshold {threshold}: {flagged} rows corrected",
        (threshold, 0.9),
        xycoords=("data", "axes fraction"),
        xytext=(-4, 0),
        textcoords="offset points",
        ha="right",
        fontsize=8,
    )
    ax.set_yscale("log")
    ax.set_xlabel(f"top-{figure['top_k']} uncertainty of the test rows")
    ax.set_ylabel("test rows")
    ax.set_title("CAN corrects only the rows at or above its threshold")


def _plot_entropy(ax, figure, n_classes):
    log_n = np.log(n_classes)
    bins = np.linspace(0, 1, 41)
    ax.hist(row_entropy(figure["before"]) / log_n, bins=bins, alpha=0.6, label="before")
    ax.hist(
        row_entropy(figure["after"]) / log_n,
        bins=bins,
        alpha=0.6,
        label="EntropyNormalizer()",
    )
    ax.set_yscale("log")
    ax.set_xlabel("entropy / log(n_classes)")
    ax.set_ylabel("test rows")
    ax.set_title("Entropy of the predicted rows (target: training mean)")
    ax.legend()


def _plot_distances(ax, figure):
    """W2 between the classes' Gaussians; the zero diagonal is masked so that
    the colours span the off-diagonal distances."""
    distances, classes = figure["distances"], figure["classes"]
    masked = np.ma.masked_array(distances, mask=np.eye(len(classes), dtype=bool))
    image = ax.imshow(masked, cmap="viridis")
    if len(classes) <= 20:
        ticks = np.arange(len(classes))
        ax.set_xticks(ticks, [str(c) for c in classes], rotation=90)
        ax.set_yticks(ticks, [str(c) for c in classes])
    ax.set_title("W2 between the classes' Gaussians (diagonal masked)")
    ax.figure.colorbar(image, ax=ax, shrink=0.8)


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
