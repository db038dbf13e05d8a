"""The tour: ``python -m skprob``."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from skprob.__main__ import load_csv, main


def test_tour_on_digits_prints_the_comparison(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "digits" in out
    for name in [
        "AnalyticSoftmaxClassifier()",
        "LogisticRegression",
        "LinearDiscriminant",
    ]:
        assert name in out
    # the analytic classifier is as accurate as LDA on digits
    line = next(
        ln for ln in out.splitlines() if ln.startswith("AnalyticSoftmaxClassifier()")
    )
    accuracy = float(line.split()[1])
    assert accuracy > 0.9


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


def test_tour_on_a_csv_with_string_target(csv_file, capsys):
    path, _ = csv_file
    assert main(["--csv", str(path), "--target", "species"]) == 0
    out = capsys.readouterr().out
    assert "3 features, 3 classes" in out


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
    assert main(["--csv", str(tmp_path / "s.csv"), "--target", "species"]) == 2
    assert "colour" in capsys.readouterr().err


def test_csv_needs_target():
    with pytest.raises(SystemExit):
        main(["--csv", "x.csv"])
