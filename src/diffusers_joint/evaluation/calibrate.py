# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Calibrate a trained joint model's classifier on a validation split, and report it there."""

from __future__ import annotations

import torch
from diffusers.utils import logging

from ..models.unet_2d_joint import JointUNet2DModel
from ..training.calibration import fit_temperature
from .predict import metrics_from_logits, predict_logits

logger = logging.get_logger(__name__)


def calibrate_classifier(unet: JointUNet2DModel, images: torch.Tensor, labels: torch.Tensor, fit: bool = True) -> dict:
    """
    Fit the classifier's temperature on validation `images` and `labels` (when `fit`), saved in `unet`'s config as
    `classifier_temperature` so that `classify()` and the pipelines return calibrated probabilities; returns what to
    record: the temperature and the metrics on the validation split (`"validation"`).
    """
    logits = predict_logits(unet, images)
    results = {}
    if fit:
        temperature = fit_temperature(logits, labels, unet.is_multi_label)
        unet.register_to_config(classifier_temperature=temperature)
        results["classifier_temperature"] = temperature
        logger.info(f"Temperature {temperature:.3f} fitted on {len(labels)} validation images.")
    results["validation"] = metrics_from_logits(unet, logits, labels)
    return results
