# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Calibrate a trained joint model's classifier on a validation split, and report it there."""

from __future__ import annotations

import torch
from diffusers.utils import logging

from ..models.unet_2d_joint import JointUNet2DModel
from ..training.calibration import calibrate_temperature
from .predict import metrics_from_logits, predict_logits

logger = logging.get_logger(__name__)


def calibrate_classifier(
    unet: JointUNet2DModel,
    images: torch.Tensor,
    labels: torch.Tensor,
    fit: bool = True,
    seed: int = 0,
    batch_size: int = 256,
) -> dict:
    """
    Fit the classifier's temperature on validation `images` and `labels` (when `fit`) and apply it only where it
    beats noise ([`calibrate_temperature`], seeded by `seed`); the decision is saved in `unet`'s config
    (`classifier_temperature`, `classifier_calibration`) so that `classify()` and the pipelines use it. Returns what
    to record: the temperature, the decision (`"calibration"`) and the metrics on the validation split
    (`"validation"`). The images are classified `batch_size` at a time.
    """
    logits = predict_logits(unet, images, batch_size)
    results = {}
    if fit:
        calibration = calibrate_temperature(logits, labels, unet.is_multi_label, seed=seed)
        calibration.register_to(unet)
        results["classifier_temperature"] = calibration.temperature
        results["calibration"] = calibration.to_dict()
        logger.info(calibration.describe())
    results["validation"] = metrics_from_logits(unet, logits, labels)
    return results
