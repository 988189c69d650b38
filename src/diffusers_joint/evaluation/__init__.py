from .background import background_match_share, border_means
from .classification import compute_classification_metrics, expected_calibration_error
from .counterfactual import DEFAULT_CHANGE_THRESHOLD, compute_counterfactual_metrics
from .evaluate_metric import JointClassificationMetric
from .generation import (
    compute_generation_metrics,
    conditional_accuracy,
    frechet_distance,
    frechet_distance_from_statistics,
    kernel_inception_distance,
    precision_recall,
)
from .pipeline_evaluation import counterfactual_requests, evaluate_counterfactuals, evaluate_generation
from .predict import (
    dataset_to_tensors,
    evaluate_classifier,
    metrics_from_logits,
    predict_logits,
    predict_probabilities,
)
from .reference_network import ReferenceClassifier, train_reference_classifier
from .report import metrics_table, results_to_markdown
from .split_shift import split_shift_auc
from .transformers_features import TransformersFeatureExtractor

__all__ = [
    "background_match_share",
    "border_means",
    "DEFAULT_CHANGE_THRESHOLD",
    "JointClassificationMetric",
    "ReferenceClassifier",
    "TransformersFeatureExtractor",
    "compute_classification_metrics",
    "counterfactual_requests",
    "compute_counterfactual_metrics",
    "compute_generation_metrics",
    "conditional_accuracy",
    "dataset_to_tensors",
    "evaluate_classifier",
    "evaluate_counterfactuals",
    "evaluate_generation",
    "expected_calibration_error",
    "frechet_distance",
    "frechet_distance_from_statistics",
    "kernel_inception_distance",
    "metrics_table",
    "precision_recall",
    "metrics_from_logits",
    "predict_logits",
    "predict_probabilities",
    "results_to_markdown",
    "split_shift_auc",
    "train_reference_classifier",
]
