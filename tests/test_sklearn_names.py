"""The private scikit-learn names of ``skprob/_sklearn.py`` still do what we use.

scikit-learn may move or change private names in any release; this file says
which one broke and how, instead of an ImportError deep inside an estimator.
"""

from numbers import Integral

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import InvalidParameterError

from skprob import _sklearn


def test_every_name_is_exported():
    for name in _sklearn.__all__:
        assert getattr(_sklearn, name) is not None, name


def test_parameter_constraints_and_validate_params():
    @_sklearn.validate_params(
        {
            "k": [_sklearn.Interval(Integral, 1, None, closed="left")],
            "kind": [_sklearn.StrOptions({"a", "b"})],
            "dist": [_sklearn.HasMethods(["logcdf"]), None],
        },
        prefer_skip_nested_validation=True,
    )
    def function(k, kind="a", dist=None):
        return k

    assert function(3) == 3
    for bad in (dict(k=0), dict(k=np.inf), dict(k=1, kind="c"), dict(k=1, dist=3)):
        with pytest.raises(InvalidParameterError, match="parameter of .*function"):
            function(**bad)


def test_fit_context_validates_parameters():
    class Estimator(BaseEstimator):
        _parameter_constraints = {
            "k": [_sklearn.Interval(Integral, 1, None, closed="left")]
        }

        def __init__(self, k=1):
            self.k = k

        @_sklearn._fit_context(prefer_skip_nested_validation=True)
        def fit(self, X, y=None):
            _sklearn._check_n_features(self, X, reset=True)
            return self

    assert Estimator().fit(np.zeros((3, 2))).n_features_in_ == 2
    with pytest.raises(InvalidParameterError):
        Estimator(k=0).fit(np.zeros((3, 2)))


def test_sample_weight_and_indexing_helpers():
    X = np.arange(12.0).reshape(4, 3)
    assert_array_equal(_sklearn._check_sample_weight(None, X), np.ones(4))
    with pytest.raises(ValueError, match="Negative"):
        _sklearn._check_sample_weight(
            [1, -1, 1, 1], X, dtype=np.float64, ensure_non_negative=True
        )
    assert _sklearn._num_samples(X) == 4
    assert_array_equal(_sklearn._safe_indexing(X, [0, 2]), X[[0, 2]])
    params = _sklearn._check_method_params(
        X, params={"sample_weight": np.arange(4.0)}, indices=[1, 3]
    )
    assert_array_equal(params["sample_weight"], [1.0, 3.0])
    assert _sklearn._routing_enabled() in (True, False)
    assert_array_equal(_sklearn.check_chunk_weight(np.zeros(4), X), np.zeros(4))
    with pytest.raises(ValueError, match="Negative"):
        _sklearn.check_chunk_weight([1, -1, 0, 0], X)
