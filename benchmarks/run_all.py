"""Run the benchmark scripts and regenerate ``benchmarks/README.md``.

Runs every ``benchmarks/bench_*.py`` (or a selection) as a subprocess from the
repository root, then writes a report: the date, the environment (Python,
numpy, scipy, scikit-learn, dask, CPU count, BLAS), an index of headline
ratios, and one section per script with its exact command and its printed
markdown, unedited.

Run from the repository root::

    python benchmarks/run_all.py                   # everything (30+ minutes)
    python benchmarks/run_all.py --quick           # quicker mode where there is one
    python benchmarks/run_all.py bench_can rows    # a selection (parts of names)
    python benchmarks/run_all.py --blas-threads 1  # OPENBLAS_NUM_THREADS=1 etc.
    python benchmarks/run_all.py --output /tmp/report.md

Exits with status 1 if a script fails (its section then shows the end of its
error output); the report is written either way.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# Scripts whose quicker mode is not a --quick flag (the others are detected
# from their source: a "--quick" option, or a "--full" option whose absence
# is the quicker mode).
QUICK_ARGS = {"bench_dask.py": ["--rows", "2000000"]}

BLAS_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
)


@dataclass(frozen=True)
class Headline:
    """One cell (or several, joined) of a script's markdown output.

    The table is the first one under a heading matching ``section`` (any
    heading when None) that has all the ``columns``; the row is the first
    whose cells, joined by " | ", match the regular expression ``row``.
    """

    script: str
    label: str
    columns: tuple
    row: str
    section: str = None
    join: str = " / "


HEADLINES = (
    Headline(
        "bench_linear_model.py",
        "partial_fit on random chunkings of Banking77: T(stream) / T(fit)",
        ("T(stream) / T(fit)",),
        r".",
        section="partial_fit",
    ),
    Headline(
        "bench_linear_model.py",
        "Default fit, 20 classes, in X.T @ X passes (1 BLAS thread; all)",
        ("AnalyticSoftmaxClassifier()",),
        r"^(1|all) \|",
        section="Cost of a fit",
    ),
    Headline(
        "bench_linear_model.py",
        "Default fit with 1,000 / 3,000 / 10,000 classes, in fits of temperature=None",
        ("default / None",),
        r".",
        section="Many classes",
    ),
    Headline(
        "bench_dask.py",
        "Out-of-core fit of AnalyticSoftmaxClassifier(), in chunked X.T @ X passes",
        ("/ X.T@X pass",),
        r"^AnalyticSoftmaxClassifier\(\)\.fit \|",
    ),
    Headline(
        "bench_can.py",
        "can_adjust speed-up over the row-by-row definition "
        "(alpha=1, n_iter=1; alpha=2, n_iter=3)",
        ("speed-up",),
        r"^alpha=1, n_iter=1 \||^alpha=2, n_iter=3 \|",
        section="Speed",
    ),
)


@dataclass(frozen=True)
class Cell:
    """A cell of a script's markdown output: the table under a heading matching
    ``section`` that has ``column``, the first row matching ``row``."""

    section: str
    column: str
    row: str


@dataclass(frozen=True)
class Comparison:
    """skprob against what a user would run instead, from one script's tables.

    ``better``: "higher" or "lower" (numbers, the first in each cell), or
    "finite" (skprob's output is "finite, real" and the other's is not).
    Values within ``tie`` (relative) of each other are a tie.
    """

    script: str
    what: str
    ours: Cell
    theirs: Cell
    better: str
    tie: float = 0.0


_B77 = "1. Banking77"
_DEFAULT = r"^AnalyticSoftmaxClassifier\(\) \|"
_TUNED_LR = r"^StandardScaler \+ LogisticRegression\(C tuned"
_LR = r"^StandardScaler \+ LogisticRegression\(\) \|"
_W2 = "W2 at high dimension"
COMPARISONS = (
    Comparison(
        "bench_linear_model.py",
        "Banking77 test accuracy (10,003 rows): AnalyticSoftmaxClassifier() vs "
        "scaled LogisticRegression, C tuned",
        Cell(_B77, "accuracy (full)", _DEFAULT),
        Cell(_B77, "accuracy (full)", _TUNED_LR),
        "higher",
        0.002,
    ),
    Comparison(
        "bench_linear_model.py",
        "Banking77 test log-loss (10,003 rows): AnalyticSoftmaxClassifier() vs "
        "scaled LogisticRegression, C tuned",
        Cell(_B77, "log-loss (full)", _DEFAULT),
        Cell(_B77, "log-loss (full)", _TUNED_LR),
        "lower",
        0.01,
    ),
    Comparison(
        "bench_linear_model.py",
        "Banking77 fit time (10,003 rows, 1 thread): AnalyticSoftmaxClassifier() vs "
        "scaled LogisticRegression, C tuned",
        Cell(_B77, "fit (s, full)", _DEFAULT),
        Cell(_B77, "fit (s, full)", _TUNED_LR),
        "lower",
        0.1,
    ),
    Comparison(
        "bench_linear_model.py",
        "Banking77 test accuracy, 1,000 training rows: "
        "AnalyticSoftmaxClassifier(shrinkage='auto') vs scaled LogisticRegression()",
        Cell(
            _B77, "accuracy (1,000)", r"^AnalyticSoftmaxClassifier\(shrinkage='auto'\)"
        ),
        Cell(_B77, "accuracy (1,000)", _LR),
        "higher",
        0.002,
    ),
    Comparison(
        "bench_linear_model.py",
        "Banking77 fit time (10,003 rows, 1 thread): AnalyticSoftmaxClassifier() vs "
        "scaled LogisticRegression()",
        Cell(_B77, "fit (s, full)", _DEFAULT),
        Cell(_B77, "fit (s, full)", _LR),
        "lower",
        0.1,
    ),
    Comparison(
        "bench_linear_model.py",
        "Banking77 test log-loss (10,003 rows): default temperature vs "
        "CalibratedClassifierCV(method='temperature')",
        Cell("2. The default temperature", "log-loss (default)", "^full training"),
        Cell(
            "2. The default temperature",
            "log-loss (temperature scaling)",
            "^full training",
        ),
        "lower",
        0.005,
    ),
    Comparison(
        "bench_linear_model.py",
        "Banking77 test log-loss (1,000 rows): default temperature vs "
        "CalibratedClassifierCV(method='temperature')",
        Cell("2. The default temperature", "log-loss (default)", "^1,000-row"),
        Cell(
            "2. The default temperature",
            "log-loss (temperature scaling)",
            "^1,000-row",
        ),
        "lower",
        0.005,
    ),
    Comparison(
        "bench_linear_model.py",
        "Banking77 fit time (10,003 rows, 1 thread): default temperature vs "
        "CalibratedClassifierCV(method='temperature')",
        Cell(_B77, "fit (s, full)", _DEFAULT),
        Cell(_B77, "fit (s, full)", r"^CalibratedClassifierCV"),
        "lower",
        0.1,
    ),
    Comparison(
        "bench_linear_model.py",
        "Banking77 test log-loss (10,003 rows): AnalyticSoftmaxClassifier() vs "
        "LinearDiscriminantAnalysis(solver='lsqr')",
        Cell(_B77, "log-loss (full)", _DEFAULT),
        Cell(_B77, "log-loss (full)", r"^LDA\(solver='lsqr'\) \|"),
        "lower",
        0.01,
    ),
    Comparison(
        "bench_linear_model.py",
        "Fit with 20 classes (1 thread), in X.T @ X passes: "
        "AnalyticSoftmaxClassifier() vs LinearDiscriminantAnalysis(solver='lsqr')",
        Cell("Cost of a fit", "AnalyticSoftmaxClassifier()", r"^1 \|"),
        Cell("Cost of a fit", "LDA(solver='lsqr')", r"^1 \|"),
        "lower",
        0.1,
    ),
    Comparison(
        "bench_linear_model.py",
        "Pickled model at CLINC150 size (MB): AnalyticSoftmaxClassifier() vs "
        "LinearDiscriminantAnalysis(solver='lsqr')",
        Cell("Pickled size", "pickle (MB)", _DEFAULT),
        Cell("Pickled size", "pickle (MB)", r"^LDA"),
        "lower",
        0.1,
    ),
    Comparison(
        "bench_novelty.py",
        "Unknown Banking77 intents, AUROC: score_samples() vs scaled "
        "LogisticRegression's energy score",
        Cell(
            "Novelty",
            "AUROC",
            r"^AnalyticSoftmaxClassifier\(shrinkage=None\): relative",
        ),
        Cell("Novelty", "AUROC", r"^StandardScaler \+ LogisticRegression: energy"),
        "higher",
        0.005,
    ),
    Comparison(
        "bench_novelty.py",
        "Unknown Banking77 intents, AUROC: score_samples() vs GaussianMixture",
        Cell(
            "Novelty",
            "AUROC",
            r"^AnalyticSoftmaxClassifier\(shrinkage=None\): relative",
        ),
        Cell("Novelty", "AUROC", r"^GaussianMixture"),
        "higher",
        0.005,
    ),
    Comparison(
        "bench_novelty.py",
        "Unknown Banking77 intents, fit time: AnalyticSoftmaxClassifier() vs "
        "scaled LogisticRegression",
        Cell(
            "Novelty",
            "fit (s)",
            r"^AnalyticSoftmaxClassifier\(shrinkage=None\): relative",
        ),
        Cell("Novelty", "fit (s)", r"^StandardScaler \+ LogisticRegression: energy"),
        "lower",
        0.1,
    ),
    Comparison(
        "bench_density.py",
        "Digits, held-out nats per image: VAEDensity() vs the best GaussianMixture",
        Cell(
            "held-out log-likelihood", "held-out nats per image", r"^VAEDensity\(\) \|"
        ),
        Cell("", "held-out nats per image", r"^GaussianMixture"),
        "higher",
        0.01,
    ),
    Comparison(
        "bench_density.py",
        "Digits, fit time: VAEDensity() vs the GaussianMixture (its search included)",
        Cell("", "fit (s)", r"^VAEDensity\(\) \|"),
        Cell("", "fit (s)", r"^GaussianMixture"),
        "lower",
        0.1,
    ),
    Comparison(
        "bench_gaussian.py",
        "W2 of full-rank covariances at high dimension, time: skprob vs "
        "scipy.linalg.sqrtm",
        Cell(_W2, "time (s)", r"full rank\) \| skprob `?gaussian_wasserstein"),
        Cell(_W2, "time (s)", r"full rank\) \| `?scipy\.linalg\.sqrtm"),
        "lower",
        0.1,
    ),
    Comparison(
        "bench_gaussian.py",
        "W2 of full-rank covariances at high dimension, time: skprob vs POT",
        Cell(_W2, "time (s)", r"full rank\) \| skprob `?gaussian_wasserstein"),
        Cell(_W2, "time (s)", r"full rank\) \| POT"),
        "lower",
        0.1,
    ),
    Comparison(
        "bench_gaussian.py",
        "W2 of rank-deficient covariances, output: skprob vs POT",
        Cell(_W2, "output", r"rank \d+\) \| skprob `?gaussian_wasserstein"),
        Cell(_W2, "output", r"rank \d+\) \| POT"),
        "finite",
    ),
    Comparison(
        "bench_gaussian.py",
        "W2 of rank-deficient covariances, output: skprob vs scipy.linalg.sqrtm",
        Cell(_W2, "output", r"rank \d+\) \| skprob `?gaussian_wasserstein"),
        Cell(_W2, "output", r"rank \d+\) \| `?scipy\.linalg\.sqrtm"),
        "finite",
    ),
    Comparison(
        "bench_gaussian.py",
        "KL divergence at d=2048, time: skprob vs numpy solve + slogdet",
        Cell("KL and Bhattacharyya", "skprob (s)", r"^KL \|"),
        Cell("KL and Bhattacharyya", "numpy solve + slogdet (s)", r"^KL \|"),
        "lower",
        0.1,
    ),
    Comparison(
        "bench_gaussian.py",
        "Bhattacharyya distance at d=2048, time: skprob vs numpy solve + slogdet",
        Cell("KL and Bhattacharyya", "skprob (s)", r"^Bhattacharyya \|"),
        Cell("KL and Bhattacharyya", "numpy solve + slogdet (s)", r"^Bhattacharyya \|"),
        "lower",
        0.1,
    ),
    Comparison(
        "bench_gaussian.py",
        "Diagonal Gaussians per class, fit time: GaussianDistance vs numpy mean + var",
        Cell("diagonal Gaussians", "skprob (s)", r"fit\(X, y\)"),
        Cell("diagonal Gaussians", "numpy mean + var (s)", r"fit\(X, y\)"),
        "lower",
        0.1,
    ),
    Comparison(
        "bench_can.py",
        "Banking77 accuracy, AnalyticSoftmaxClassifier() on all rows: after CAN vs "
        "before (prior='uniform')",
        Cell(
            "prior='uniform'", "fit: acc.", r"^AnalyticSoftmaxClassifier\(\) \| 10003"
        ),
        Cell(
            "prior='uniform'", "base acc.", r"^AnalyticSoftmaxClassifier\(\) \| 10003"
        ),
        "higher",
        0.002,
    ),
    Comparison(
        "bench_can.py",
        "Banking77 accuracy, LogisticRegression() on 1,000 rows: after CAN vs "
        "before (prior='uniform')",
        Cell(
            "prior='uniform'", "fit: acc.", r"^LogisticRegression\(\) \| 1000 \| mean"
        ),
        Cell(
            "prior='uniform'", "base acc.", r"^LogisticRegression\(\) \| 1000 \| mean"
        ),
        "higher",
        0.002,
    ),
    Comparison(
        "bench_rows.py",
        "entropy_normalize, 1,000 classes, in softmax passes: skprob vs scipy "
        "brentq row by row",
        Cell(
            r"entropy_normalize, [\d,]+ x 1,000 rows",
            "ours (softmax passes)",
            r"^1 \| 0\.5 \|",
        ),
        Cell(
            r"entropy_normalize, [\d,]+ x 1,000 rows",
            "brentq (softmax passes)",
            r"^1 \| 0\.5 \|",
        ),
        "lower",
        0.1,
    ),
    Comparison(
        "bench_rows.py",
        "perturb_max_proba (normal noise, 48 nodes), max relative error: skprob vs "
        "an equally spaced rule",
        Cell("accuracy vs nodes", "ours max rel. error", r"^5 \| 48 \|"),
        Cell("accuracy vs nodes", "equally spaced max rel. error", r"^5 \| 48 \|"),
        "lower",
        0.1,
    ),
)


def find_cell(cell, text):
    """The text of ``cell`` in a script's output, or None."""
    for heading, header, rows in markdown_tables(text):
        if not re.search(cell.section, heading) or cell.column not in header:
            continue
        index = header.index(cell.column)
        for row in rows:
            if re.search(cell.row, " | ".join(row)) and index < len(row):
                return row[index]
    return None


def _number(text):
    match = re.search(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text.replace(",", ""))
    if re.search(r"\bnan\b", text, re.IGNORECASE) or match is None:
        return float("nan")
    return float(match.group(0))


def verdict(comparison, ours, theirs):
    """("skprob wins" | "skprob loses" | "tie", ratio text) for two cell texts."""
    if comparison.better == "finite":
        ours_ok, theirs_ok = ours == "finite, real", theirs == "finite, real"
        if ours_ok == theirs_ok:
            return "tie", "-"
        return ("skprob wins" if ours_ok else "skprob loses"), "-"
    a, b = _number(ours), _number(theirs)
    ratio = a / b if b else float("inf")
    text = f"{ratio:.3g}x"
    if a != a or b != b:
        return "not comparable", text
    if abs(a - b) <= comparison.tie * max(abs(a), abs(b)):
        return "tie", text
    wins = a > b if comparison.better == "higher" else a < b
    return ("skprob wins" if wins else "skprob loses"), text


def discover(selection=()):
    """The benchmark scripts, sorted, filtered by names or parts of names."""
    scripts = sorted(HERE.glob("bench_*.py"))
    if not selection:
        return scripts
    chosen = [s for s in scripts if any(part in s.stem for part in selection)]
    unknown = [p for p in selection if not any(p in s.stem for s in scripts)]
    if unknown:
        names = ", ".join(s.name for s in scripts)
        raise SystemExit(f"no benchmark script matches {unknown}; the scripts: {names}")
    return chosen


def script_args(script, quick):
    """Command-line arguments of one script for a full or a quick run."""
    source = script.read_text()
    if '"--full"' in source:  # quick by default, --full for the full sizes
        return [] if quick else ["--full"]
    if not quick:
        return []
    if script.name in QUICK_ARGS:
        return list(QUICK_ARGS[script.name])
    return ["--quick"] if '"--quick"' in source else []


def command_line(script, args, blas_threads):
    """The command, as typed from the repository root."""
    words = [] if blas_threads is None else [f"OPENBLAS_NUM_THREADS={blas_threads}"]
    words += ["python", Path(os.path.relpath(script, ROOT)).as_posix(), *args]
    return " ".join(shlex.quote(w) if "=" not in w else w for w in words)


def script_environment(blas_threads):
    """Environment of the scripts: skprob from this checkout, BLAS threads."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p]
    )
    if blas_threads is not None:
        env.update({name: str(blas_threads) for name in BLAS_VARIABLES})
    return env


def run_script(script, args, blas_threads, timeout):
    """Run one script; return (exit code, stdout, stderr, wall seconds)."""
    env = script_environment(blas_threads)
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, str(script), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        code, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as expired:
        code = "timeout"
        out = _text(expired.stdout)
        err = _text(expired.stderr) + f"\nstopped after {timeout} s"
    return code, out, err, time.perf_counter() - start


def _text(output):
    if output is None:
        return ""
    return output.decode(errors="replace") if isinstance(output, bytes) else output


def environment(blas_threads):
    """Markdown lines describing the machine and the library versions."""
    lines = [
        f"- Python {platform.python_version()} ({platform.platform()})",
        f"- CPU count: {os.cpu_count()}",
    ]
    versions = []
    for package in ("skprob", "numpy", "scipy", "scikit-learn", "dask", "POT"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            if package == "skprob":  # run from a checkout, not installed
                versions.append(f"skprob {_checkout_version()}")
            else:
                versions.append(f"{package} not installed")
    lines.append("- " + ", ".join(versions))
    env = script_environment(blas_threads)
    lines.append(f"- BLAS (as the scripts load it): {blas_description(env)}")
    pinned = [f"{n}={env[n]}" for n in BLAS_VARIABLES if n in env]
    if pinned:
        lines.append(f"- Environment: {' '.join(pinned)}")
    commit = _git("rev-parse", "--short", "HEAD")
    if commit:
        # the report itself does not count: it is about to be rewritten
        changes = _git("status", "--porcelain", "--", ".", ":!benchmarks/README.md")
        dirty = " (with uncommitted changes)" if changes else ""
        lines.append(f"- Commit: {commit}{dirty}")
    return lines


def _checkout_version():
    init = ROOT / "skprob" / "__init__.py"
    text = init.read_text() if init.exists() else ""
    match = re.search(r'^__version__ = "([^"]+)"', text, flags=re.MULTILINE)
    return f"{match.group(1) if match else 'unknown'} (checkout)"


def blas_description(env):
    """The BLAS numpy loads, from threadpoolctl, in a process with ``env``."""
    code = (
        "import json, numpy, scipy.linalg\n"
        "from threadpoolctl import threadpool_info\n"
        "print(json.dumps(threadpool_info()))"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        pools = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        pools = None
    if pools is None:
        return "unknown (threadpoolctl could not be run)"
    pools = [p for p in pools if p.get("user_api") == "blas"]
    if not pools:
        return "unknown (threadpoolctl found no BLAS)"
    return "; ".join(
        f"{p.get('internal_api')} {p.get('version')}, {p.get('num_threads')} "
        f"threads, {p.get('threading_layer', 'unknown')} threading "
        f"({Path(p.get('filepath', '')).name})"
        for p in pools
    )


def _git(*args):
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def description(script):
    """First line of a script's docstring."""
    source = script.read_text()
    match = re.match(r'\s*(?:[rRuU]?)"""(.*?)(?:\n|""")', source)
    return match.group(1).strip() if match else ""


def markdown_tables(text):
    """Yield (heading, header cells, rows of cells) for each markdown table.

    ``heading`` is the text of the last heading above the table. Separator
    rows (``|---|``) are skipped, bold markers and backticks are removed.
    """
    heading, table = "", []

    def cells(line):
        return [
            c.strip().replace("**", "").replace("`", "")
            for c in line.strip().strip("|").split("|")
        ]

    def finish():
        rows = [cells(line) for line in table if not re.match(r"^\|[\s|:-]+\|$", line)]
        return (heading, rows[0], rows[1:]) if rows else None

    for line in text.splitlines() + [""]:
        stripped = line.strip()
        if stripped.startswith("|"):
            table.append(stripped)
            continue
        if table:
            found = finish()
            if found:
                yield found
            table = []
        if stripped.startswith("#"):
            heading = stripped.lstrip("#").strip()
    return


def find_headline(headline, text):
    """The headline's value in a script's output, or None when not found."""
    for heading, header, rows in markdown_tables(text):
        if headline.section and not re.search(headline.section, heading):
            continue
        if not all(column in header for column in headline.columns):
            continue
        index = [header.index(column) for column in headline.columns]
        values = []
        for row in rows:
            if re.search(headline.row, " | ".join(row)):
                values.append(headline.join.join(row[i] for i in index))
        if values:
            return "; ".join(values)
    return None


def demote_headings(text, top=3):
    """Shift markdown headings (outside code fences) so the highest is ``top``."""
    lines, fenced, headings = text.splitlines(), False, {}
    for i, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        match = None if fenced else re.match(r"^(#{1,6}) ", line)
        if match:
            headings[i] = len(match.group(1))
    if not headings:
        return text
    shift = max(0, top - min(headings.values()))
    for i, level in headings.items():
        lines[i] = "#" * min(6, level + shift) + lines[i][level:]
    return "\n".join(lines)


def report(results, quick, started, blas_threads=None):
    """The markdown text of benchmarks/README.md."""
    date = started.strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick mode (smaller sizes)" if quick else "full sizes"
    lines = [
        "# skprob benchmarks",
        "",
        f"Generated by `python benchmarks/run_all.py` on {date}, {mode}. Each "
        "script times skprob and its alternative in the same run and reports "
        "ratios (absolute times on a shared machine are noisy). Sections below "
        "hold each script's printed output, unedited.",
        "",
        "## Environment",
        "",
        *environment(blas_threads),
        "",
        "## Where skprob wins, where it loses",
        "",
        "Against what a user would run instead, measured in the same run. "
        "Ratio: skprob's value over the other's; a tie is within the tolerance "
        "each comparison states in `benchmarks/run_all.py`.",
        "",
        "| comparison | skprob | other | ratio | verdict | script |",
        "|---|---|---|---|---|---|",
    ]
    outputs = {r["script"].name: r for r in results}
    for comparison in COMPARISONS:
        result = outputs.get(comparison.script)
        if result is None:
            continue
        ours = find_cell(comparison.ours, result["stdout"])
        theirs = find_cell(comparison.theirs, result["stdout"])
        if ours is None or theirs is None:
            lines.append(
                f"| {comparison.what} | - | - | - | not in this run's output | "
                f"`{comparison.script}` |"
            )
            continue
        outcome, ratio = verdict(comparison, ours, theirs)
        lines.append(
            f"| {comparison.what} | {ours} | {theirs} | {ratio} | {outcome} | "
            f"`{comparison.script}` |"
        )
    lines += [
        "",
        "## Other measures",
        "",
        "| script | what | value |",
        "|---|---|---|",
    ]
    for headline in HEADLINES:
        result = outputs.get(headline.script)
        if result is None:
            continue
        value = find_headline(headline, result["stdout"])
        shown = value if value is not None else "not in this run's output"
        lines.append(f"| `{headline.script}` | {headline.label} | {shown} |")
    lines.append("")
    for result in results:
        script = result["script"]
        lines += [
            f"## {script.name}",
            "",
            description(script),
            "",
            "```bash",
            result["command"],
            "```",
            "",
        ]
        if result["code"] == 0:
            lines.append(f"Wall time: {result['seconds']:.0f} s.")
        else:
            tail = "\n".join(result["stderr"].strip().splitlines()[-20:])
            lines += [
                f"**Failed** (exit status {result['code']}) after "
                f"{result['seconds']:.0f} s. End of its error output:",
                "",
                "```text",
                tail,
                "```",
            ]
        lines += ["", demote_headings(result["stdout"].strip()), ""]
    return "\n".join(lines).rstrip() + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "scripts",
        nargs="*",
        help="names or parts of names of scripts to run (default: all)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="quicker mode of the scripts that have one"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=HERE / "README.md",
        help="report file (default: benchmarks/README.md)",
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="set OPENBLAS_NUM_THREADS (and OMP/MKL/BLIS) for every script",
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds per script (default: none)"
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    scripts = discover(args.scripts)
    started = datetime.datetime.now(datetime.timezone.utc)
    results = []
    for script in scripts:
        extra = script_args(script, args.quick)
        command = command_line(script, extra, args.blas_threads)
        print(f"running: {command}", file=sys.stderr, flush=True)
        code, out, err, seconds = run_script(
            script, extra, args.blas_threads, args.timeout
        )
        status = "ok" if code == 0 else f"FAILED ({code})"
        print(f"  {status} in {seconds:.0f} s", file=sys.stderr, flush=True)
        results.append(
            {
                "script": script,
                "command": command,
                "code": code,
                "stdout": out,
                "stderr": err,
                "seconds": seconds,
            }
        )
    args.output.write_text(report(results, args.quick, started, args.blas_threads))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0 if all(r["code"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
