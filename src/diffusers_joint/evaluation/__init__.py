from .background import background_match_share, border_means
from .calibrate import calibrate_classifier
from .classification import compute_classification_metrics, expected_calibration_error
from .counterfactual import DEFAULT_CHANGE_THRESHOLD, compute_counterfactual_metrics
from .evaluate_metric import JointClassificationMetric
from .explanation_faithfulness import pointing_game, top_change_iou
from .feature_probes import block_features, linear_probe, probe_timesteps
from .generation import (
    compute_generation_metrics,
    conditional_accuracy,
    frechet_distance,
    frechet_distance_from_statistics,
    kernel_inception_distance,
    precision_recall,
)
from .image_quality import evaluate_autoencoder, psnr, ssim, structural_similarity
from .pipeline_evaluation import counterfactual_requests, evaluate_counterfactuals, evaluate_generation
from .predict import (
    dataset_to_tensors,
    evaluate_classifier,
    metrics_from_logits,
    predict_logits,
    predict_probabilities,
    validation_scores,
)
from .reference_generation import evaluate_generation_with_reference
from .reference_network import ReferenceClassifier, train_reference_classifier
from .report import json_safe, metrics_table, results_to_markdown, write_results_json
from .split_shift import SPLIT_SHIFT_MAX_IMAGES, SPLIT_SHIFT_WARNING_AUC, check_split_shift, split_shift_auc
from .transformers_features import TransformersFeatureExtractor

__all__ = [
    "block_features",
    "linear_probe",
    "probe_timesteps",
    "evaluate_autoencoder",
    "pointing_game",
    "psnr",
    "ssim",
    "structural_similarity",
    "top_change_iou",
    "validation_scores",
    "background_match_share",
    "border_means",
    "calibrate_classifier",
    "check_split_shift",
    "compute_classification_metrics",
    "compute_counterfactual_metrics",
    "compute_generation_metrics",
    "conditional_accuracy",
    "counterfactual_requests",
    "dataset_to_tensors",
    "DEFAULT_CHANGE_THRESHOLD",
    "evaluate_classifier",
    "evaluate_counterfactuals",
    "evaluate_generation",
    "evaluate_generation_with_reference",
    "expected_calibration_error",
    "frechet_distance",
    "frechet_distance_from_statistics",
    "JointClassificationMetric",
    "json_safe",
    "kernel_inception_distance",
    "metrics_from_logits",
    "metrics_table",
    "precision_recall",
    "predict_logits",
    "predict_probabilities",
    "ReferenceClassifier",
    "results_to_markdown",
    "split_shift_auc",
    "SPLIT_SHIFT_MAX_IMAGES",
    "SPLIT_SHIFT_WARNING_AUC",
    "train_reference_classifier",
    "TransformersFeatureExtractor",
    "write_results_json",
]
