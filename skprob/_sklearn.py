"""The private scikit-learn names skprob relies on, imported in one place.

scikit-learn keeps these names private (a leading underscore, or a private
module), so a release may move or change them. Every other module imports
them from here: a release that breaks one breaks this file, and
``tests/test_sklearn_names.py`` says which name and how.
"""

import inspect

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    StrOptions,
    validate_params,
)
from sklearn.utils.metadata_routing import _routing_enabled
from sklearn.utils.validation import (
    _check_method_params,
    _check_n_features,
    _check_sample_weight,
    _num_samples,
)

__all__ = [
    "check_chunk_weight",
    "HasMethods",
    "Interval",
    "StrOptions",
    "_check_method_params",
    "_check_n_features",
    "_check_sample_weight",
    "_fit_context",
    "_num_samples",
    "_routing_enabled",
    "_safe_indexing",
    "validate_params",
]

# scikit-learn 1.7 and later refuse all-zero weights unless told otherwise;
# older releases accept them.
_ALL_ZERO_OPTION = (
    "allow_all_zero_weights" in inspect.signature(_check_sample_weight).parameters
)


def check_chunk_weight(sample_weight, X):
    """Non-negative float64 weights of one chunk of data; all zeros allowed.

    A chunk (of ``partial_fit`` or of a Dask collection) may hold only rows of
    weight zero; whether the data as a whole has weight is checked after the
    chunks are merged.
    """
    extra = {"allow_all_zero_weights": True} if _ALL_ZERO_OPTION else {}
    return _check_sample_weight(
        sample_weight, X, dtype=np.float64, ensure_non_negative=True, **extra
    )
