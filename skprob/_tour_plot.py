"""The figure of ``python -m skprob --plot``: one panel per section of the tour."""

import textwrap
from pathlib import Path

import numpy as np

from ._simplex import row_entropy
from ._tour_text import DEFAULT, LOGISTIC, RAW, reliability


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
