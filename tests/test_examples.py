"""The gallery examples and the tour's figure (``python -m skprob --plot``)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from skprob.__main__ import main

pytest.importorskip("matplotlib", reason="the examples draw with matplotlib")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# examples that need an optional dependency (they say so and exit 0 without it)
REQUIRES = {"plot_vae_density": "torch"}

# Run an example as a script, then check that it left a figure and save it.
RUNNER = """
import runpy, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
runpy.run_path(sys.argv[1], run_name="__main__")
assert plt.get_fignums(), "the example drew no figure"
plt.gcf().savefig(sys.argv[2])
"""


def test_there_are_examples():
    names = {path.name for path in EXAMPLES}
    assert {
        "plot_analytic_learning_curve.py",
        "plot_can_reliability.py",
        "plot_entropy_normalizer.py",
        "plot_perturb_max.py",
        "plot_gaussian_distance.py",
        "plot_vae_density.py",
        "plot_novelty.py",
        "plot_entropy_invariant_scale.py",
    } <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_has_the_gallery_shape(path):
    """A title docstring, ``# %%`` cells, and a figure shown at the end."""
    source = path.read_text()
    tree = ast.parse(source)
    docstring = ast.get_docstring(tree)
    assert docstring, "no module docstring"
    title, underline = docstring.splitlines()[:2]
    assert title and set(underline) == {"="} and len(underline) >= len(title)
    assert "# %%" in source
    last = tree.body[-1]
    assert ast.unparse(last) == "plt.show()", "the example must end on its figure"


# Examples with a part that needs data skprob does not ship: the environment
# variable that points to the data, and what the example prints without it.
# They run here without the data (the part is the same code on other data).
OPTIONAL_DATA = {
    "plot_analytic_learning_curve": (
        "SKPROB_BANKING77",
        "Skipping the Banking77 panel",
    ),
    "plot_novelty": ("SKPROB_BANKING77", "The Banking77 embeddings are not here"),
}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_runs_and_draws(path, tmp_path, checkout_env):
    if path.stem in REQUIRES:
        pytest.importorskip(REQUIRES[path.stem])
    image = tmp_path / f"{path.stem}.png"
    env = dict(checkout_env)
    variable, skipped = OPTIONAL_DATA.get(path.stem, (None, None))
    if variable:
        env[variable] = str(tmp_path / "absent.npz")
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(path), str(image)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert image.read_bytes()[:8] == PNG_SIGNATURE
    if skipped:  # it says so, and still ends on its figure
        assert skipped in result.stdout, result.stdout[-3000:]


def test_tour_plot_writes_the_figure(tmp_path, capsys):
    from matplotlib.image import imread

    path = tmp_path / "report.png"
    assert main(["--plot", str(path), "--test-size", "0.3"]) == 0
    out = capsys.readouterr().out
    assert f"Figure written to {path}" in out
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width = imread(path).shape[:2]
    assert width > 1000 and height > 700  # four panels, not an empty canvas


def test_tour_plot_format_follows_the_extension(tmp_path):
    path = tmp_path / "report.svg"
    assert main(["--plot", str(path)]) == 0
    assert path.read_text().lstrip().startswith("<?xml")


def test_tour_plot_without_matplotlib_says_how_to_install_it(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    path = tmp_path / "report.png"
    assert main(["--plot", str(path)]) != 0
    captured = capsys.readouterr()
    assert "matplotlib" in captured.err and "skprob[plot]" in captured.err
    assert captured.out == ""  # it stops before the tour
    assert not path.exists()


@pytest.mark.parametrize("name", ["missing-folder/report.png", "report.unknown"])
def test_tour_plot_bad_path_is_a_clear_error_before_the_tour(tmp_path, capsys, name):
    path = tmp_path / name
    assert main(["--plot", str(path)]) == 2
    captured = capsys.readouterr()
    assert f"cannot write {path}" in captured.err
    assert captured.out == ""
