"""``benchmarks/run_all.py``: running the scripts and writing the report."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


@pytest.fixture(scope="module")
def run_all():
    spec = importlib.util.spec_from_file_location("run_all", BENCHMARKS / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_script_is_found_and_has_a_quick_mode(run_all):
    scripts = run_all.discover()
    assert scripts == sorted(BENCHMARKS.glob("bench_*.py"))
    for script in scripts:
        full, quick = (
            run_all.script_args(script, False),
            run_all.script_args(script, True),
        )
        assert full != quick, f"{script.name}: no quicker mode detected"


def test_quick_and_full_arguments(run_all):
    assert run_all.script_args(BENCHMARKS / "bench_can.py", True) == ["--quick"]
    assert run_all.script_args(BENCHMARKS / "bench_can.py", False) == []
    # bench_rows is small by default and has --full
    assert run_all.script_args(BENCHMARKS / "bench_rows.py", True) == []
    assert run_all.script_args(BENCHMARKS / "bench_rows.py", False) == ["--full"]


def test_selection_by_part_of_a_name(run_all):
    chosen = run_all.discover(["gaussian", "bench_can"])
    assert [s.name for s in chosen] == ["bench_can.py", "bench_gaussian.py"]
    with pytest.raises(SystemExit, match="no benchmark script matches"):
        run_all.discover(["no_such_script"])


def test_comparisons_are_read_from_the_recorded_outputs(run_all):
    """The comparisons find their cells in the scripts' recorded outputs and
    give the verdicts those numbers imply."""
    recorded = {
        "bench_can.py": (BENCHMARKS / "can.md").read_text(),
        "bench_gaussian.py": (BENCHMARKS / "gaussian.md").read_text(),
        "bench_rows.py": (BENCHMARKS / "rows.md").read_text(),
        "bench_density.py": (BENCHMARKS / "density.md").read_text(),
    }
    verdicts = {}
    for comparison in run_all.COMPARISONS:
        if comparison.script not in recorded:
            continue
        text = recorded[comparison.script]
        ours = run_all.find_cell(comparison.ours, text)
        theirs = run_all.find_cell(comparison.theirs, text)
        assert ours is not None and theirs is not None, comparison.what
        verdicts[comparison.what] = run_all.verdict(comparison, ours, theirs)
    assert len(verdicts) >= 10
    pot = "W2 of rank-deficient covariances, output: skprob vs POT"
    assert verdicts[pot] == ("skprob wins", "-")  # POT gives NaN
    vae = "Digits, held-out nats per image: VAEDensity() vs the best GaussianMixture"
    assert verdicts[vae][0] == "skprob wins"


def test_verdicts_follow_the_numbers(run_all):
    cell = run_all.Cell("", "", "")
    higher = run_all.Comparison("x", "x", cell, cell, "higher", 0.01)
    assert run_all.verdict(higher, "0.9049", "0.9273")[0] == "skprob loses"
    assert run_all.verdict(higher, "0.93 +- 0.01", "0.9273")[0] == "tie"
    assert run_all.verdict(higher, "0.8313 +- 0.0076", "0.7029 +- 0.0154")[0] == (
        "skprob wins"
    )
    lower = run_all.Comparison("x", "x", cell, cell, "lower", 0.1)
    outcome, ratio = run_all.verdict(lower, "0.5 (0.0)", "2.0")
    assert outcome == "skprob wins" and ratio == "0.25x"
    assert run_all.verdict(lower, "1.0", "nan")[0] == "not comparable"


def test_tables_with_and_without_separator_rows(run_all):
    text = (
        "# Title\n\n## Banking77\n| model | fit (s) | ratio |\n"
        "| A() | 0.1 | 1.0x |\n| B() | 2.0 | 20.0x |\n\n"
        "## Other\n| model | fit (s) | ratio |\n|---|---|---|\n| B() | 3.0 | 30.0x |\n"
    )
    tables = list(run_all.markdown_tables(text))
    assert [heading for heading, _, _ in tables] == ["Banking77", "Other"]
    assert tables[0][2] == [["A()", "0.1", "1.0x"], ["B()", "2.0", "20.0x"]]
    headline = run_all.Headline("x", "B", ("ratio",), r"^B\(\) \|", section="Other")
    assert run_all.find_headline(headline, text) == "30.0x"
    missing = run_all.Headline("x", "C", ("ratio",), r"^C\(\) \|")
    assert run_all.find_headline(missing, text) is None


def test_headings_are_demoted_below_the_report_sections(run_all):
    text = "# Top\ntext\n## Sub\n```\n# not a heading\n```"
    assert run_all.demote_headings(text) == (
        "### Top\ntext\n#### Sub\n```\n# not a heading\n```"
    )
    assert run_all.demote_headings("### Deep\n") == "### Deep"


def test_quick_run_of_one_script_writes_the_report(tmp_path):
    report = tmp_path / "README.md"
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "run_all.py"),
            "gaussian",
            "--quick",
            "--blas-threads",
            "1",
            "--output",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    text = report.read_text()
    assert text.startswith("# skprob benchmarks")
    for part in ("## Environment", "numpy", "scipy", "scikit-learn", "dask", "BLAS"):
        assert part in text, part
    assert "CPU count:" in text
    assert "OPENBLAS_NUM_THREADS=1 python benchmarks/bench_gaussian.py --quick" in text
    assert "## bench_gaussian.py" in text and "## bench_can.py" not in text
    # the script's own tables, and a headline read from them
    assert "| W2 (squared) |" in text
    index = text[text.index("## Where skprob wins") : text.index("## Other measures")]
    assert "`bench_gaussian.py`" in index
    assert "not in this run's output" not in index


def test_failing_script_is_reported(run_all, tmp_path, monkeypatch):
    failing = tmp_path / "bench_broken.py"
    failing.write_text('"""A broken benchmark."""\nraise RuntimeError("boom")\n')
    monkeypatch.setattr(run_all, "HERE", tmp_path)  # where the scripts are found
    report = tmp_path / "README.md"
    assert run_all.main(["--output", str(report)]) == 1
    text = report.read_text()
    assert "**Failed** (exit status 1)" in text and "RuntimeError: boom" in text
