"""The documentation: API page coverage, the full Sphinx build, runnable pages.

The build test runs the documented command (warnings are errors) on a copy of
``docs/`` and ``examples/``, with the gallery executing every example: about
15 seconds on two cores.
"""

import importlib.util
import io
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import skprob

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# gallery examples that need an optional dependency (as in test_examples.py)
EXAMPLE_REQUIRES = {"plot_vae_density": "torch"}


def autosummary_entries(text):
    """Names listed in the ``.. autosummary::`` blocks of an rst page."""
    names, inside = [], False
    for line in text.splitlines():
        if line.startswith(".. autosummary::"):
            inside = True
        elif inside and line and not line.startswith(" "):
            inside = False
        elif inside and re.match(r"^   [A-Za-z_]\w*$", line):
            names.append(line.strip())
    return names


def python_blocks(text):
    """The bodies of the ``.. code-block:: python`` directives of an rst page."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if lines[i].strip() == ".. code-block:: python":
            i += 1
            body = []
            while i < len(lines) and (not lines[i].strip() or lines[i][:3] == "   "):
                body.append(lines[i][3:])
                i += 1
            blocks.append("\n".join(body).strip("\n"))
        else:
            i += 1
    return blocks


def test_autosummary_entries_reads_the_blocks():
    text = (
        "x\n\n.. autosummary::\n   :toctree: g\n\n   Foo\n   bar_baz\n\nText\n   Qux\n"
    )
    assert autosummary_entries(text) == ["Foo", "bar_baz"]


def test_api_page_lists_every_public_name_once():
    listed = autosummary_entries((DOCS / "api.rst").read_text())
    assert sorted(listed) == sorted(skprob.__all__)
    assert len(listed) == len(set(listed))


@pytest.mark.parametrize(
    "page",
    ["can", "entropy", "perturb_max", "gaussian", "scale", "analytic", "density"],
)
def test_user_guide_page_has_every_part(page):
    text = (DOCS / "user_guide" / f"{page}.rst").read_text()
    assert text.startswith(f".. _{page}:")
    for heading in ("When to use it", "Pitfalls", "References"):
        assert re.search(rf"^{heading}.*\n-+$", text, re.MULTILINE), heading
    assert ".. math::" in text


GUIDE_PAGES = sorted(
    path.stem
    for path in (DOCS / "user_guide").glob("*.rst")
    if path.stem != "density"  # its figure is generated with the estimator
)


@pytest.mark.parametrize("page", GUIDE_PAGES)
def test_user_guide_page_shows_a_figure_of_the_gallery(page):
    """A figure that the gallery draws (the build test checks it renders)."""
    text = (DOCS / "user_guide" / f"{page}.rst").read_text()
    gallery_image = r"\.\./auto_examples/images/sphx_glr_(\w+)_\d{3}\.png"
    examples = re.findall(
        rf"^\.\. (?:figure|image):: {gallery_image}$", text, re.MULTILINE
    )
    assert examples, "no figure"
    for example in examples:
        assert (ROOT / "examples" / f"{example}.py").exists(), example


def test_interop_page_code_runs(tmp_path, checkout_env):
    """The code blocks of the interop page run, in order, as one script."""
    blocks = python_blocks((DOCS / "interop.rst").read_text())
    assert len(blocks) >= 8
    script = tmp_path / "interop.py"
    script.write_text("\n\n".join(blocks) + "\n")
    result = subprocess.run(
        [sys.executable, "-W", "error::FutureWarning", str(script)],
        cwd=tmp_path,
        env=checkout_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # the skops recipe printed the untrusted types and loaded the estimator
    assert "skprob._stats.ClassStatistics" in result.stdout


def test_progress_bar_reports_a_dask_fit_as_it_goes():
    """The interop page's recipe: ProgressBar sees the fit's tasks one by one
    (a fit is a task per chunk, not one opaque task)."""
    da = pytest.importorskip("dask.array")
    import dask
    from dask.diagnostics import ProgressBar

    def slow(block):  # each chunk takes a moment, so the bar draws in between
        time.sleep(0.02)
        return block

    rng = np.random.RandomState(0)
    X = rng.normal(size=(4000, 5))
    y = rng.randint(0, 3, size=4000)
    X_big = da.from_array(X, chunks=(200, -1)).map_blocks(slow)
    y_big = da.from_array(y, chunks=200)
    out = io.StringIO()
    with dask.config.set(scheduler="synchronous"), ProgressBar(out=out, dt=0.01):
        model = skprob.AnalyticSoftmaxClassifier().fit(X_big, y_big)
    shown = [int(p) for p in re.findall(r"(\d+)% Completed", out.getvalue())]
    assert shown[-1] == 100
    assert len({p for p in shown if 0 < p < 100}) >= 3, out.getvalue()
    in_memory = skprob.AnalyticSoftmaxClassifier().fit(X, y)
    np.testing.assert_allclose(model.coef_, in_memory.coef_, rtol=1e-9)


def test_docs_build_without_warnings(tmp_path, checkout_env):
    """The documented command, gallery included, on a copy of the sources."""
    for package in ("sphinx", "numpydoc", "pydata_sphinx_theme", "sphinx_gallery"):
        pytest.importorskip(package, reason="the docs extra is not installed")
    ignore = shutil.ignore_patterns(
        "_build", "generated", "auto_examples", "sg_execution_times.rst"
    )
    shutil.copytree(DOCS, tmp_path / "docs", ignore=ignore)
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-b",
            "html",
            "docs",
            "docs/_build/html",
        ],
        cwd=tmp_path,
        env=checkout_env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "WARNING" not in output and "ERROR" not in output, output[-5000:]
    html = tmp_path / "docs" / "_build" / "html"
    for name in skprob.__all__:
        assert (html / "generated" / f"skprob.{name}.html").exists(), name
    for page in GUIDE_PAGES:
        text = (html / "user_guide" / f"{page}.html").read_text()
        images = re.findall(r'<img[^>]* src="([^"]+)"', text)
        assert images, f"{page}: no image"
        for src in images:
            assert (html / "user_guide" / src).resolve().exists(), (page, src)
    for example in (ROOT / "examples").glob("plot_*.py"):
        if example.stem in EXAMPLE_REQUIRES:
            if importlib.util.find_spec(EXAMPLE_REQUIRES[example.stem]) is None:
                continue  # docs/conf.py leaves it out of the gallery
        page = html / "auto_examples" / f"{example.stem}.html"
        assert page.exists(), example.name
        # each example ends on a figure, which the gallery renders as an image
        assert f"sphx_glr_{example.stem}_001.png" in page.read_text(), example.name
