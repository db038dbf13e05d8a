"""skprob: scikit-learn compatible estimators built on closed-form probability."""

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Public name -> the module that defines it. The modules (and with them numpy,
# scipy and scikit-learn) are imported on first access of a name (PEP 562),
# so that ``import skprob`` and ``python -m skprob --help`` stay instant.
_EXPORTS = {
    "AnalyticLogisticRegression": "linear_model",
    "AnalyticSoftmaxClassifier": "linear_model",
    "CANCalibrator": "calibration",
    "EntropyNormalizer": "preprocessing",
    "GaussianDistance": "metrics",
    "PerturbMaxTransformer": "preprocessing",
    "VAEDensity": "density",
    "can_adjust": "calibration",
    "entropy_invariant_scale": "preprocessing",
    "entropy_normalize": "preprocessing",
    "gaussian_bhattacharyya_distance": "metrics",
    "gaussian_hellinger_distance": "metrics",
    "gaussian_kl_divergence": "metrics",
    "gaussian_wasserstein_distance": "metrics",
    "perturb_max_proba": "preprocessing",
    "topk_uncertainty": "calibration",
}

__all__ = [  # the keys of _EXPORTS (tests/test_main.py checks it)
    "AnalyticLogisticRegression",
    "AnalyticSoftmaxClassifier",
    "CANCalibrator",
    "EntropyNormalizer",
    "GaussianDistance",
    "PerturbMaxTransformer",
    "VAEDensity",
    "can_adjust",
    "entropy_invariant_scale",
    "entropy_normalize",
    "gaussian_bhattacharyya_distance",
    "gaussian_hellinger_distance",
    "gaussian_kl_divergence",
    "gaussian_wasserstein_distance",
    "perturb_max_proba",
    "topk_uncertainty",
]

if TYPE_CHECKING:  # the same names, for type checkers and editors
    from .calibration import CANCalibrator, can_adjust, topk_uncertainty
    from .density import VAEDensity
    from .linear_model import AnalyticLogisticRegression, AnalyticSoftmaxClassifier
    from .metrics import (
        GaussianDistance,
        gaussian_bhattacharyya_distance,
        gaussian_hellinger_distance,
        gaussian_kl_divergence,
        gaussian_wasserstein_distance,
    )
    from .preprocessing import (
        EntropyNormalizer,
        PerturbMaxTransformer,
        entropy_invariant_scale,
        entropy_normalize,
        perturb_max_proba,
    )


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'skprob' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
