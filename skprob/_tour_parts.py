"""The tour's building blocks: its data, its timing, its sections' text.

:class:`Split` and :func:`load_csv` (the data, with errors that name the bad
column), :func:`timed_fit` (median fit time on one BLAS thread),
:class:`Section` and :func:`format_table` (what a section prints) and
:func:`noting_warnings` (warnings shown under their section, never silenced).
"""

import textwrap
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ._tour_text import WIDTH


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
