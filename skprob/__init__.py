"""skprob: scikit-learn compatible estimators built on closed-form probability."""

from .calibration import CANCalibrator, can_adjust
from .linear_model import AnalyticLogisticRegression, AnalyticSoftmaxClassifier

__version__ = "0.1.0"

__all__ = [
    "AnalyticLogisticRegression",
    "AnalyticSoftmaxClassifier",
    "CANCalibrator",
    "can_adjust",
]
