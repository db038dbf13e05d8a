"""Sphinx configuration of the skprob documentation.

Build (warnings are errors)::

    python -m pip install ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import os
import sys
from datetime import date

sys.path.insert(0, os.path.abspath(".."))

import skprob  # noqa: E402

project = "skprob"
author = "skprob developers"
copyright = f"{date.today().year}, {author}"
release = skprob.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

intersphinx_mapping = {}  # offline builds: no inventories are fetched

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "**.ipynb_checkpoints"]
html_theme = "pydata_sphinx_theme"
html_static_path = ["_static"]
html_title = f"skprob {release}"
html_theme_options = {"navigation_with_keys": False}

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "plot_gallery": "True",
}
nitpicky = False
