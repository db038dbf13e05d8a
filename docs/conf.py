"""Sphinx configuration of the skprob documentation.

Build (warnings are errors)::

    python -m pip install ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html

The gallery runs every script of ``examples/`` (add ``-D plot_gallery=0`` to
skip running them; the user guide's figures, which come from the gallery, are
then missing, so leave out ``-W`` too). ``tests/test_docs.py`` runs this
command on a copy of the sources. The version is ``skprob.__version__``, the
one place it is written.
"""

import importlib.util
import os
import sys
from datetime import date

sys.path.insert(0, os.path.abspath(".."))

from threadpoolctl import threadpool_limits  # noqa: E402  (a scikit-learn dependency)

import skprob  # noqa: E402

# The gallery runs the examples in this process. One BLAS thread keeps them
# fast and steady on a busy machine, where threaded OpenBLAS calls can stall
# for seconds (the examples' arrays are small).
_blas_threads = threadpool_limits(limits=1, user_api="blas")

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
# Methods that scikit-learn's base classes and mixins provide (get_params,
# score, set_output, set_fit_request, ...) are documented by scikit-learn;
# their docstrings refer to its glossary, which an offline build cannot link.
_SKLEARN_BASES = (
    "BaseEstimator",
    "ClassifierMixin",
    "TransformerMixin",
    "OneToOneFeatureMixin",
    "MetaEstimatorMixin",
    "_MetadataRequester",
    "_SetOutputMixin",
)
autodoc_default_options = {
    "members": True,
    "inherited-members": ",".join(_SKLEARN_BASES),
    "exclude-members": ",".join(
        f"set_{method}_request"
        for method in (
            "fit",
            "partial_fit",
            "predict",
            "predict_proba",
            "predict_log_proba",
            "decision_function",
            "score",
            "transform",
            "inverse_transform",
            "distance",
        )
    ),
}
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

intersphinx_mapping = {}  # offline builds: no inventories are fetched

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "**.ipynb_checkpoints"]
html_theme = "pydata_sphinx_theme"
html_title = f"skprob {release}"
html_theme_options = {"navigation_with_keys": False}

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Examples that need an optional dependency which is not installed are
    # shown without being run (their page and label exist for the user guide's
    # links, without output); the others are run.
    "filename_pattern": (
        r"/plot_(?!vae_density)"
        if importlib.util.find_spec("torch") is None
        else r"/plot_"
    ),
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "plot_gallery": "True",
    # "Examples using X" on every API page
    "doc_module": ("skprob",),
    "backreferences_dir": "auto_examples/backreferences",
    "reference_url": {"skprob": None},
}
nitpicky = False
