"""What the tour says: the contenders' names, its measures and its sentences.

Each ``*_sentences`` function turns a section's own numbers into one or two
plain sentences (who wins, by how much, when that changes); nothing here is a
fixed text.
"""

import numpy as np

WIDTH = 88  # of the printed sentences
DEFAULT = "AnalyticSoftmaxClassifier()"
OAS = "AnalyticSoftmaxClassifier(shrinkage='auto')"
RAW = "AnalyticSoftmaxClassifier(temperature=None)"
LOGISTIC = "LogisticRegression (scaled)"
LDA = "LinearDiscriminantAnalysis()"


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
