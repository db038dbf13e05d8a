"""pytest settings of the repository root, for the doctests of ``skprob/``.

Without the optional torch extra (the oldest-versions run of ``.ci/run``
installs none), ``skprob/_vae.py`` cannot be imported and the
:class:`~skprob.VAEDensity` docstring example cannot run: they are skipped,
as ``tests/test_density.py`` is.
"""

import importlib.util

import pytest

HAS_TORCH = importlib.util.find_spec("torch") is not None

collect_ignore = [] if HAS_TORCH else ["skprob/_vae.py"]


def pytest_collection_modifyitems(config, items):
    if HAS_TORCH:
        return
    skip = pytest.mark.skip(reason="VAEDensity needs the torch extra")
    for item in items:
        if isinstance(item, pytest.DoctestItem) and "VAEDensity" in item.name:
            item.add_marker(skip)
