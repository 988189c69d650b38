# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Run a joint model's classifier over a dataset and score it."""

from __future__ import annotations

import datasets
import numpy as np
import torch

from ..data.label_masking import is_labeled
from ..data.transforms import ImagePreprocessor
from ..models.unet_2d_joint import JointUNet2DModel
from ..training.calibration import negative_log_likelihood
from .classification import compute_classification_metrics


@torch.no_grad()
def predict_logits(unet: JointUNet2DModel, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Raw classifier logits `(N, num_classes)` of images in [-1, 1] at timestep 0, in eval mode, on the CPU."""
    was_training = unet.training
    unet.eval()
    logits = []
    try:
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].to(device=unet.device, dtype=unet.dtype)
            logits.append(unet.classify(batch).float().cpu())
    finally:
        unet.train(was_training)
    return torch.cat(logits)


def predict_probabilities(
    unet: JointUNet2DModel, images: torch.Tensor, batch_size: int = 256, calibrated: bool = True
) -> torch.Tensor:
    """
    Class probabilities `(N, num_classes)` of images in [-1, 1] (see [`JointUNet2DModel.probabilities`]); with
    `calibrated=False`, before the model's temperature.
    """
    return unet.probabilities(predict_logits(unet, images, batch_size), calibrated=calibrated)


def dataset_to_tensors(
    dataset: datasets.Dataset, preprocessor: ImagePreprocessor, labeled_only: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Preprocess every image of a normalised (`image`, `label`) dataset; keep only labeled rows by default."""
    labels = np.asarray(dataset["label"])
    keep = is_labeled(labels)
    if labeled_only:
        dataset = dataset.select(np.flatnonzero(keep))
        labels = labels[keep]
    if len(dataset) == 0:
        raise ValueError("The evaluation dataset holds no labeled image.")
    images = torch.stack([preprocessor(image) for image in dataset["image"]])
    return images, torch.as_tensor(labels)


def metrics_from_logits(unet: JointUNet2DModel, logits: torch.Tensor, labels: torch.Tensor) -> dict:
    """
    [`compute_classification_metrics`] of the model's calibrated probabilities, plus `ece_uncalibrated`: the
    calibration error before the model's temperature, from the same logits.
    """
    names = list(unet.id2label.values())
    problem_type = unet.config.problem_type
    metrics = compute_classification_metrics(labels, unet.probabilities(logits), problem_type, names)
    raw = compute_classification_metrics(labels, unet.probabilities(logits, calibrated=False), problem_type, names)
    return {**metrics, "ece_uncalibrated": raw["ece"]}


def evaluate_classifier(
    unet: JointUNet2DModel, dataset: datasets.Dataset, preprocessor: ImagePreprocessor, batch_size: int = 256
) -> dict:
    """
    Classification metrics of `unet` on the labeled rows of `dataset` (see [`metrics_from_logits`]): from calibrated
    probabilities, with the calibration error before the model's temperature as `ece_uncalibrated`.
    """
    images, labels = dataset_to_tensors(dataset, preprocessor)
    return metrics_from_logits(unet, predict_logits(unet, images, batch_size), labels)


def validation_scores(
    unet: JointUNet2DModel, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256
) -> dict:
    """
    The classifier's metrics on validation `images` with their negative log-likelihood (`"nll"`), as
    [`BestCheckpoint.update`] compares steps; the images are classified `batch_size` at a time.
    """
    logits = predict_logits(unet, images, batch_size)
    scores = metrics_from_logits(unet, logits, labels)
    scores["nll"] = negative_log_likelihood(logits, labels, unet.is_multi_label)
    return scores
