# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Counterfactual metrics: validity under the model and an independent judge, size of the change, realism."""

from __future__ import annotations

import math

import numpy as np
import torch
from diffusers.utils import logging

from ..models.unet_2d_joint import MULTI_LABEL, SINGLE_LABEL
from ..pipelines.change_maps import change_localization
from .generation import ArrayLike, frechet_distance

logger = logging.get_logger(__name__)

# One step of 8-bit grey is 2/255 ~ 0.008 in [-1, 1] pixel units; 0.1 is ~13 grey levels (5% of the range), above
# the faint changes a partial re-noising leaves everywhere, so "changed" means visibly changed.
DEFAULT_CHANGE_THRESHOLD = 0.1


def _numpy(value: ArrayLike, dtype=float) -> np.ndarray:
    if torch.is_tensor(value):
        value = value.detach().cpu()
        value = value.float() if dtype is float and value.is_floating_point() else value
    return np.asarray(value, dtype=dtype)


def _valid(targets: np.ndarray, probs: np.ndarray, problem_type: str) -> np.ndarray:
    """Per image: is the prediction the target? Multi-label: decisions at 0.5 match every specified (not -1) label."""
    if problem_type == MULTI_LABEL:
        decisions = (probs >= 0.5).astype(int)
        return ((decisions == targets) | (targets == -1)).all(axis=1)
    return probs.argmax(axis=1) == targets.astype(int)


def compute_counterfactual_metrics(
    original: ArrayLike,
    counterfactual: ArrayLike,
    target: ArrayLike,
    model_probs_after: ArrayLike,
    reference_probs_after: ArrayLike | None = None,
    counterfactual_features: ArrayLike | None = None,
    real_features: ArrayLike | None = None,
    real_labels: ArrayLike | None = None,
    model_probs_before: ArrayLike | None = None,
    problem_type: str = SINGLE_LABEL,
    change_threshold: float = DEFAULT_CHANGE_THRESHOLD,
) -> dict:
    """
    Metrics of counterfactual explanations (images edited so that a classifier predicts a target class).

    Args:
        original (`np.ndarray` or `torch.Tensor` of shape `(N, C, H, W)`):
            The input images, in [-1, 1] at the model's resolution.
        counterfactual (`np.ndarray` or `torch.Tensor` of shape `(N, C, H, W)`):
            The counterfactuals, in the same range and shape.
        target (`np.ndarray` or `torch.Tensor`):
            Target classes `(N,)`, or multi-hot targets `(N, L)` (1 wanted, 0 unwanted, -1 either) for multi-label
            problems.
        model_probs_after (`np.ndarray` or `torch.Tensor` of shape `(N, num_classes)`):
            The joint model's probabilities for the counterfactuals.
        reference_probs_after (`np.ndarray` or `torch.Tensor` of shape `(N, num_classes)`, *optional*):
            An independent classifier's probabilities for the counterfactuals (see [`ReferenceClassifier`]): adds
            `validity_reference`, which tells whether the edit changed the class or only fooled the model.
        counterfactual_features (`np.ndarray` or `torch.Tensor` of shape `(N, D)`, *optional*):
            Reference-network features of the counterfactuals.
        real_features (`np.ndarray` or `torch.Tensor` of shape `(M, D)`, *optional*):
            Reference-network features of real images, with their `real_labels` (single-label only). With
            `counterfactual_features`, adds the Frechet distance of the counterfactuals of each target class to the
            real images of that class, and their average weighted by the number of counterfactuals (classes with fewer
            than 2 counterfactuals or real images are skipped). With few counterfactuals per class the estimate is
            dominated by its small-sample bias: compare runs with the same numbers of images only.
        real_labels (`np.ndarray` or `torch.Tensor` of shape `(M,)`, *optional*):
            Classes of the real images behind `real_features`.
        model_probs_before (`np.ndarray` or `torch.Tensor` of shape `(N, num_classes)`, *optional*):
            The joint model's probabilities for the inputs: adds `already_target_model` (inputs the model already
            assigned to the target) and `flip_rate_model` (valid counterfactuals among the other inputs).
        problem_type (`str`, *optional*, defaults to `"single_label_classification"`):
            `"single_label_classification"` or `"multi_label_classification"`.
        change_threshold (`float`, *optional*, defaults to 0.1):
            A pixel counts as changed when its absolute change, largest over channels, exceeds this many [-1, 1] units
            (0.1 is about 13 of 255 grey levels).

    Returns:
        `dict` of plain Python numbers:
        - `num_counterfactuals`;
        - `validity_model`, `validity_reference`: share of counterfactuals the model / the reference network assigns to
            the target;
        - `l1`, `l2`: mean over images of the per-pixel mean absolute difference and of the root mean squared
            difference (as [`CounterfactualPipeline`] reports them), in [-1, 1] pixel units;
        - `changed_pixel_fraction`: mean over images of the share of pixels changed by more than `change_threshold`;
        - `localization`: mean over images of the share of pixels that carry 80 % of the absolute change (see
            [`change_localization`]; lower is more localised);
        - `frechet_distance_to_target_class` and `frechet_distance_per_target_class` (see `real_features`).
    """
    original, counterfactual = _numpy(original), _numpy(counterfactual)
    if original.shape != counterfactual.shape or original.ndim != 4:
        raise ValueError(
            f"Expected `original` and `counterfactual` of one shape (N, C, H, W), got {original.shape} and "
            f"{counterfactual.shape}."
        )
    num = len(original)
    if num == 0:
        raise ValueError("Cannot compute metrics of zero counterfactuals.")
    targets = _numpy(target, dtype=np.int64)
    model_after = _numpy(model_probs_after)
    if len(targets) != num or len(model_after) != num:
        raise ValueError(f"Got {num} counterfactuals, {len(targets)} targets and {len(model_after)} rows of probs.")

    difference = counterfactual - original
    per_image = difference.reshape(num, -1)
    changed = np.abs(difference).max(axis=1) > change_threshold  # (N, H, W): a pixel changed in any channel
    valid_model = _valid(targets, model_after, problem_type)
    results = {
        "num_counterfactuals": int(num),
        "validity_model": float(valid_model.mean()),
        "l1": float(np.abs(per_image).mean(axis=1).mean()),
        "l2": float(np.sqrt((per_image**2).mean(axis=1)).mean()),
        "changed_pixel_fraction": float(changed.reshape(num, -1).mean(axis=1).mean()),
        "localization": float(change_localization(torch.from_numpy(np.abs(difference))).mean()),
        "change_threshold": float(change_threshold),
    }
    if model_probs_before is not None:
        already = _valid(targets, _numpy(model_probs_before), problem_type)
        results["already_target_model"] = float(already.mean())
        results["flip_rate_model"] = float(valid_model[~already].mean()) if (~already).any() else math.nan
    if reference_probs_after is not None:
        results["validity_reference"] = float(_valid(targets, _numpy(reference_probs_after), problem_type).mean())

    if counterfactual_features is not None and real_features is not None and real_labels is not None:
        if problem_type != SINGLE_LABEL:
            logger.warning("The per-class Frechet distance of counterfactuals is defined for single-label data only.")
        else:
            cf_features, real = _numpy(counterfactual_features), _numpy(real_features)
            real_labels = _numpy(real_labels, dtype=np.int64)
            per_class, weights = {}, []
            for c in np.unique(targets):
                cf_c, real_c = cf_features[targets == c], real[real_labels == c]
                if len(cf_c) < 2 or len(real_c) < 2:
                    continue
                per_class[str(int(c))] = frechet_distance(real_c, cf_c)
                weights.append(len(cf_c))
            results["frechet_distance_per_target_class"] = per_class
            results["frechet_distance_to_target_class"] = (
                float(np.average(list(per_class.values()), weights=weights)) if per_class else math.nan
            )
    return results
