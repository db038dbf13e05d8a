"""skprob: scikit-learn compatible estimators built on closed-form probability."""

from .linear_model import AnalyticLogisticRegression, AnalyticSoftmaxClassifier
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
    "EntropyNormalizer",
    "PerturbMaxTransformer",
    "entropy_invariant_scale",
    "entropy_normalize",
    "perturb_max_proba",
]
