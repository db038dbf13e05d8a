"""The tour: ``python -m skprob``."""

import contextlib
import io
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from skprob import _tour
from skprob.__main__ import main
from skprob._tour import load_csv


def run_tour(argv):
    """The tour's exit status and printed output."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(argv)
    return status, out.getvalue()


@pytest.fixture(scope="module")
def digits_tour():
    status, out = run_tour([])
    assert status == 0
    return out


def section(out, title):
    """The lines of the section whose title starts with ``title``."""
    blocks = out.split("\n\n")
    return next(b for b in blocks if b.startswith(title)).splitlines()


def _table_rows(lines):
    """(first cell, other cells) of each row of a printed table, and the index
    of the first line after the table."""
    rule = next(i for i, line in enumerate(lines) if line and set(line) <= {"-", " "})
    rows, end = [], rule + 1
    for line in lines[rule + 1 :]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) < 2 or not re.match(r"^[-\d.]+", cells[1]):
            break
        rows.append((cells[0], cells[1:]))
        end += 1
    return rows, end


def table(lines):
    """{first cell: [cells of each row with that name]} of a printed table."""
    rows = {}
    for name, cells in _table_rows(lines)[0]:
        rows.setdefault(name, []).append(cells)
    return rows


def prose(lines):
    """The sentences after the table, as one string."""
    return " ".join(lines[_table_rows(lines)[1] :])


def test_help_parses_before_importing_numpy_or_sklearn():
    """``--help`` imports neither numpy nor scikit-learn (nor the tour)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "skprob", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: python -m skprob" in result.stdout
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "skprob" in imported  # the check sees imports at all
    assert not imported & {"numpy", "sklearn", "scipy", "pandas"}, imported
    assert "skprob._tour" not in result.stderr


def test_every_public_name_is_importable_lazily():
    """``skprob.__all__`` and the lazy imports of skprob/__init__.py agree."""
    import skprob

    assert sorted(skprob.__all__) == sorted(skprob._EXPORTS)
    for name in skprob.__all__:
        assert getattr(skprob, name).__name__ == name
    assert set(skprob.__all__) <= set(dir(skprob))
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        skprob.missing


def test_tour_on_digits_prints_every_section(digits_tour):
    out = digits_tour
    assert "digits" in out and "one BLAS thread" in out
    for title in (
        "Closed-form classifiers",
        "With fewer training rows",
        "Rows of classes never seen",
        "CAN:",
        "Probability-row transforms",
        "Class separability",
    ):
        assert section(out, title)
    rows = table(section(out, "Closed-form classifiers"))
    assert set(rows) == set(_tour.classifiers())
    assert float(rows[_tour.DEFAULT][0][0]) > 0.9  # accuracy


def test_classifier_sentences_quote_the_table(digits_tour):
    lines = section(digits_tour, "Closed-form classifiers")
    rows = {name: values[0] for name, values in table(lines).items()}
    text = prose(lines)
    accuracy = {name: float(v[0]) for name, v in rows.items()}
    top = max(accuracy.values())
    leaders = [name for name, value in accuracy.items() if value == top]
    # the sentence names a most accurate classifier, with its accuracy
    assert any(f"{name}" in text.split("most accurate")[0] for name in leaders)
    assert f"most accurate ({top:.3f})" in text
    # the temperature sentence quotes the log-loss and ECE of both closed forms
    raw, ours = rows[_tour.RAW], rows[_tour.DEFAULT]
    assert (
        f"from {float(raw[1]):.3f} (temperature=None) to {float(ours[1]):.3f}" in text
    )
    assert f"from {float(raw[2]):.3f} to {float(ours[2]):.3f}" in text
    # fit time ratios follow the fit (ms) column
    ratio = float(ours[3]) / float(rows[_tour.LOGISTIC][3])
    quoted = float(re.search(r"([\d.]+)x the time of", text).group(1))
    assert quoted == pytest.approx(ratio, abs=0.02)  # the column has 0.1 ms
    assert "medians of" in text and "one BLAS thread" in text


def test_can_and_rows_sentences_quote_their_tables(digits_tour):
    lines = section(digits_tour, "CAN:")
    corrected = table(lines)["+ CANCalibrator(reference='fit')"][0][2]
    n_flagged = int(corrected.split()[0])
    text = prose(lines)
    if n_flagged:
        assert text.startswith(f"{n_flagged} of ")
    else:
        assert text.startswith("No test row reached the uncertainty threshold")

    lines = section(digits_tour, "Probability-row transforms")
    rows = table(lines)
    base = float(rows["predict_proba"][0][2])
    learned = float(rows["EntropyNormalizer() (target: train mean)"][0][2])
    text = prose(lines)
    verb = "raises" if learned > base else "lowers"
    assert f"{verb} the log-loss from {base:.3f} to {learned:.3f}" in text


def test_gaussian_sentences_put_the_shift_on_a_scale(digits_tour):
    lines = section(digits_tour, "Class separability")
    text = prose(lines)
    shift = float(re.search(r"W2 of their Gaussians\): (\d+\.\d+)", text).group(1))
    noise = float(re.search(r"of the same sizes: (\d+\.\d+)", text).group(1))
    closest = float(table(lines)[next(iter(table(lines)))][0][0])
    assert f"The train/test shift (W2 {shift:.2f}" in text
    share = re.search(r"is (\d+)% of the distance between the closest", text)
    # the sentence divides the unrounded numbers
    assert int(share.group(1)) == pytest.approx(100 * shift / closest, abs=1)
    if shift / noise <= 1.25:
        assert "no more than sampling alone produces" in text
    else:
        assert "times what sampling alone produces" in text


def test_novelty_section_compares_score_samples_with_the_softmax(digits_tour):
    lines = section(digits_tour, "Rows of classes never seen")
    rows = {name: float(values[0][0]) for name, values in table(lines).items()}
    default = rows["score_samples, novelty_score='relative' (default)"]
    baseline = rows[f"{_tour.LOGISTIC}: max predict_proba"]
    text = prose(lines)
    assert f"mean AUROC of {default:.3f}" in text
    assert f"the {baseline:.3f} of {_tour.LOGISTIC}" in text
    assert ("above" if default > baseline else "below") in text


def test_classifier_sentences_when_the_closed_form_wins_ties_or_loses():
    def rows(ours, logistic, raw_loss=0.4):
        return [
            (_tour.DEFAULT, ours, 0.2, 0.01, 10.0, 1.0),
            (_tour.RAW, ours, raw_loss, 0.05, 4.0, 0.4),  # same predictions
            (_tour.LOGISTIC, logistic, 0.1, 0.02, 20.0, 2.0),
            (_tour.LDA, 0.5, 0.3, 0.03, 5.0, 0.5),
        ]

    lost = _tour.classifier_sentences(rows(0.90, 0.95), 0.5, "5", 200)
    assert lost[0].startswith(f"{_tour.LOGISTIC} is the most accurate (0.950), 5.0")
    assert "10 of 200 test rows" in lost[0]
    assert "lowers the closed form's log-loss from 0.400" in lost[1]
    assert f"the lowest log-loss is {_tour.LOGISTIC}'s 0.100" in lost[1]
    assert "takes 10 ms, 0.50x the time of" in lost[2] and "2.00x that of" in lost[2]
    assert "the leave-one-out temperature is 60% of it" in lost[2]
    assert "(AnalyticSoftmaxClassifier(temperature=None) takes 4.0 ms)" in lost[2]
    tied = _tour.classifier_sentences(rows(0.95, 0.95), 0.5, "5", 200)
    assert tied[0].startswith(f"{_tour.DEFAULT} ties for the most accurate (0.950)")
    won = _tour.classifier_sentences(rows(0.96, 0.95, raw_loss=0.1), 0.5, "5", 200)
    assert won[0].startswith(f"{_tour.DEFAULT} is the most accurate (0.960), 1.0")
    assert "raises the closed form's log-loss" in won[1]


def test_can_sentence_says_why_nothing_changed():
    uncertainty = np.array([0.1, 0.42, 0.3])
    (text,) = _tour.can_sentences(uncertainty, 0.9, 3, {"fit": 0}, [0.9, 0.9])
    assert text.startswith("No test row reached the uncertainty threshold 0.9")
    assert "uncertainty 0.42" in text
    (text,) = _tour.can_sentences(
        np.array([0.95, 0.1]), 0.9, 3, {"fit": 1, "batch": 0}, [0.5, 1.0, 0.5]
    )
    assert text.startswith("1 of 2 test rows (50.0%) reached the threshold 0.9")
    assert "1 with reference='fit' (accuracy 1.000)" in text


def test_gaussian_sentence_flags_a_real_shift():
    rows = [("a / b", 10.0, 11.0, 1.0, "3"), ("a / c", 12.0, 12.5, 1.2, "1")]
    sentences = _tour.gaussian_sentences(rows, 8, 3, 12.0, shift=6.0, noise=2.0)
    assert "account for 4 of the 8 test errors" in sentences[0]
    assert "is 60% of the distance" in sentences[1]
    assert "3.0 times what sampling alone produces" in sentences[1]


def test_small_sentences_name_shrinkage_only_when_it_matters():
    result = {
        _tour.DEFAULT: (0.40, 9.0),
        _tour.OAS: (0.85, 0.5),
        _tour.LOGISTIC: (0.86, 0.45),
    }
    first, second = _tour.small_sentences(64, 64, 10, result)
    assert "as many as the 64 features" in first
    assert f"{_tour.LOGISTIC} is the most accurate (0.860), 1.0 points" in first
    assert "0.850 and a log-loss of 0.500, against 0.400 and 9.000" in second
    result[_tour.DEFAULT] = (0.845, 0.5)
    assert len(_tour.small_sentences(256, 64, 10, result)) == 1


def test_novelty_sentence_counts_the_draws_it_wins():
    (text,) = _tour.novelty_sentences([0.9, 0.7], [0.8, 0.75], "1 / 2, 3 / 4", 2)
    assert "one pair at a time: 1 / 2, 3 / 4" in text
    assert "mean AUROC of 0.800, above the 0.775" in text
    assert "ahead on 1 of 2 draws" in text


def test_tour_shows_warnings_instead_of_silencing_them():
    notes = []
    with _tour.noting_warnings(notes, "Model()"):
        import warnings

        warnings.warn("first", UserWarning)
        warnings.warn("first", UserWarning)
        warnings.warn("second", RuntimeWarning)
    assert notes == ["Model(): UserWarning: first", "Model(): RuntimeWarning: second"]
    text = _tour.Section("T", [], [], ["S."], notes).text()
    assert "Warning raised by Model(): UserWarning: first" in text


def test_tour_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "skprob", "--test-size", "0.3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout


@pytest.fixture
def csv_file(tmp_path):
    rng = np.random.RandomState(0)
    y = rng.choice(["setosa", "virginica", "versicolor"], size=120)
    codes = pd.Series(y).astype("category").cat.codes.to_numpy()
    frame = pd.DataFrame(
        rng.normal(size=(120, 3)) + codes[:, None], columns=list("abc")
    )
    frame["species"] = y
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_tour_on_a_csv_with_string_target(csv_file):
    path, _ = csv_file
    status, out = run_tour(["--csv", str(path), "--target", "species"])
    assert status == 0
    assert "3 features, 3 classes" in out
    # three classes: one is held out at a time
    assert "Held out, one class at a time" in out


def test_tour_on_a_two_class_csv(tmp_path):
    rng = np.random.RandomState(1)
    y = rng.choice(["spam", "ham"], size=80)
    frame = pd.DataFrame(
        rng.normal(size=(80, 4)) + (y == "spam")[:, None], columns=list("abcd")
    )
    frame["label"] = y
    frame.to_csv(tmp_path / "two.csv", index=False)
    status, out = run_tour(["--csv", str(tmp_path / "two.csv"), "--target", "label"])
    assert status == 0
    assert "4 features, 2 classes" in out
    assert "Skipped: with 2 classes, holding one out leaves a single class" in out
    assert "ham / spam" in out


def test_csv_errors_name_the_bad_column(csv_file, tmp_path, capsys):
    path, frame = csv_file
    with pytest.raises(ValueError, match="'kind' is not a column"):
        load_csv(path, "kind")
    frame.assign(colour=["red"] * len(frame)).to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(ValueError, match="Feature column 'colour' is not numeric"):
        load_csv(tmp_path / "s.csv", "species")
    frame.assign(a=frame["a"].where(frame.index != 5)).to_csv(
        tmp_path / "m.csv", index=False
    )
    with pytest.raises(ValueError, match="Feature column 'a' has missing values"):
        load_csv(tmp_path / "m.csv", "species")
    frame.assign(species="setosa").to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(ValueError, match="one class only"):
        load_csv(tmp_path / "one.csv", "species")
    assert main(["--csv", str(tmp_path / "s.csv"), "--target", "species"]) == 2
    assert "colour" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["--csv", "x.csv"], ["--target", "y"], ["--test-size", "1.5"]]
)
def test_bad_arguments_stop_before_the_tour(argv, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert "error:" in capsys.readouterr().err
