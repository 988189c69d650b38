from .classification import compute_classification_metrics, expected_calibration_error
from .predict import dataset_to_tensors, evaluate_classifier, predict_probabilities

__all__ = [
    "compute_classification_metrics",
    "dataset_to_tensors",
    "evaluate_classifier",
    "expected_calibration_error",
    "predict_probabilities",
]
