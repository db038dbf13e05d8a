"""skprob: scikit-learn compatible estimators built on closed-form probability."""

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

__version__ = "0.1.0"

__all__ = [
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
