"""skprob: scikit-learn compatible estimators built on closed-form probability."""

from .calibration import CANCalibrator, can_adjust
from .linear_model import AnalyticLogisticRegression, AnalyticSoftmaxClassifier
from .metrics import (
    GaussianDistance,
    gaussian_bhattacharyya_distance,
    gaussian_hellinger_distance,
    gaussian_kl_divergence,
    gaussian_wasserstein_distance,
)

__version__ = "0.1.0"

__all__ = [
    "AnalyticLogisticRegression",
    "AnalyticSoftmaxClassifier",
    "GaussianDistance",
    "gaussian_bhattacharyya_distance",
    "gaussian_hellinger_distance",
    "gaussian_kl_divergence",
    "gaussian_wasserstein_distance",
    "CANCalibrator",
    "can_adjust",
]
