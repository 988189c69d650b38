# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Is one image split drawn like another? The cross-validated ROC AUC of a classifier that tells them apart."""

from __future__ import annotations

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from diffusers.utils import logging
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from ..data.transforms import ImagePreprocessor
from .predict import dataset_to_tensors

logger = logging.get_logger(__name__)


def _features(images: torch.Tensor, name: str, max_size: int) -> np.ndarray:
    if images.ndim != 4:
        raise ValueError(f"Expected `{name}` of shape (N, C, H, W), got shape {tuple(images.shape)}.")
    images = images.detach().float().cpu()
    if max(images.shape[-2:]) > max_size:  # pixel statistics survive average pooling; the cost stays small
        height, width = images.shape[-2:]
        scale = max_size / max(height, width)
        images = F.adaptive_avg_pool2d(images, (max(1, round(height * scale)), max(1, round(width * scale))))
    return images.flatten(1).numpy()


def _domain_auc(features_a: np.ndarray, features_b: np.ndarray, num_folds: int, seed: int, c: float) -> float:
    features = np.concatenate([features_a, features_b])
    domain = np.r_[np.zeros(len(features_a)), np.ones(len(features_b))]
    folds = StratifiedKFold(num_folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(
        LogisticRegression(C=c, max_iter=3000), features, domain, cv=folds, method="predict_proba"
    )[:, 1]
    return float(roc_auc_score(domain, scores))


def split_shift_auc(
    images_a: torch.Tensor,
    images_b: torch.Tensor,
    labels_a: torch.Tensor | np.ndarray | None = None,
    labels_b: torch.Tensor | np.ndarray | None = None,
    num_folds: int = 5,
    max_size: int = 32,
    c: float = 0.01,
    seed: int = 0,
) -> dict:
    """
    How well a logistic regression on the pixels tells `images_b` (e.g. the test split) from `images_a` (e.g. the
    validation split), as the ROC AUC of its `num_folds`-fold cross-validated predictions ("adversarial validation").

    About 0.5 means the two splits look alike, so what the validation split says (calibration, the best checkpoint,
    a tuned setting) should carry over. Well above 0.5 means a covariate shift that no choice made on the validation
    split can see. PneumoniaMNIST's hold-out against its test split gives 0.67 (0.79 for the normal X-rays alone),
    MNIST-5k's 0.50; see `docs/experiments/split-shift.md`.

    Args:
        images_a, images_b (`torch.Tensor` of shape `(N, C, H, W)`):
            The two splits, same channels and size, at least `num_folds` images each. Images larger than `max_size`
            are average-pooled to at most `max_size` pixels a side first.
        labels_a, labels_b (`torch.Tensor` or `np.ndarray` of shape `(N,)`, *optional*):
            Single-label classes. When given, the result also holds the AUC per class (classes with at least
            `num_folds` images in both splits): a different class mix alone makes the overall AUC rise, the per-class
            ones do not.
        num_folds (`int`, defaults to 5), c (`float`, defaults to 0.01), seed (`int`, defaults to 0):
            Cross-validation folds, the inverse L2 strength of the logistic regression, and the folds' shuffling seed.

    Returns:
        `dict` with `roc_auc`, `num_images` (`[len(images_a), len(images_b)]`) and, with labels, `per_class`
        (class -> ROC AUC).

    Example:

    ```py
    >>> import torch
    >>> from diffusers_joint.evaluation import split_shift_auc

    >>> generator = torch.Generator().manual_seed(0)
    >>> images = torch.rand(400, 1, 28, 28, generator=generator) * 2 - 1
    >>> round(split_shift_auc(images[:200], images[200:])["roc_auc"], 1)  # drawn alike
    0.5
    >>> split_shift_auc(images[:200], images[200:] + 0.5)["roc_auc"] > 0.9  # brighter: told apart
    True
    ```
    """
    if num_folds < 2:
        raise ValueError(f"Expected `num_folds` >= 2, got {num_folds}.")
    features_a = _features(images_a, "images_a", max_size)
    features_b = _features(images_b, "images_b", max_size)
    if images_a.shape[1:] != images_b.shape[1:]:
        raise ValueError(
            f"Expected both splits with the same image shape, got {tuple(images_a.shape[1:])} for `images_a` and "
            f"{tuple(images_b.shape[1:])} for `images_b`."
        )
    if min(len(features_a), len(features_b)) < num_folds:
        raise ValueError(
            f"Expected at least num_folds={num_folds} images in each split, got {len(features_a)} in `images_a` and "
            f"{len(features_b)} in `images_b`."
        )
    results = {
        "roc_auc": _domain_auc(features_a, features_b, num_folds, seed, c),
        "num_images": [len(features_a), len(features_b)],
    }
    if (labels_a is None) != (labels_b is None):
        raise ValueError("Pass labels for both splits (`labels_a` and `labels_b`) or for neither.")
    if labels_a is not None:
        labels_a, labels_b = np.asarray(labels_a), np.asarray(labels_b)
        if any(labels.ndim > 1 and labels.shape[1] > 1 for labels in (labels_a, labels_b)):
            raise ValueError(
                f"Expected single-label classes of shape (N,) for the per-class AUC, got labels of shape "
                f"{labels_a.shape} and {labels_b.shape}: pass one column, or no labels."
            )
        labels_a, labels_b = labels_a.reshape(-1), labels_b.reshape(-1)
        for labels, features, name in ((labels_a, features_a, "labels_a"), (labels_b, features_b, "labels_b")):
            if len(labels) != len(features):
                raise ValueError(f"Expected {len(features)} entries in `{name}` (one per image), got {len(labels)}.")
        results["per_class"] = {
            label.item(): _domain_auc(features_a[labels_a == label], features_b[labels_b == label], num_folds, seed, c)
            for label in np.intersect1d(labels_a, labels_b)
            if min((labels_a == label).sum(), (labels_b == label).sum()) >= num_folds
        }
    return results


# With 100 images a side, splits drawn alike stay near 0.5 (see docs/experiments/split-shift.md).
SPLIT_SHIFT_WARNING_AUC = 0.6
SPLIT_SHIFT_MAX_IMAGES = 1000


def check_split_shift(
    validation_dataset: datasets.Dataset | None,
    eval_dataset: datasets.Dataset | None,
    preprocessor: ImagePreprocessor,
    multi_label: bool = False,
) -> dict:
    """
    `{"split_shift": split_shift_auc(...)}` of the evaluation split against the validation split (a seeded sample
    of at most [`SPLIT_SHIFT_MAX_IMAGES`] images a side, so seconds on large splits), with a warning when they are
    told apart with ROC AUC >= [`SPLIT_SHIFT_WARNING_AUC`] on >= 100 images a side: what was chosen on the validation
    split, the temperature included, may then not carry over. Empty when a split is missing or too small.
    """
    if validation_dataset is None or eval_dataset is None:
        return {}
    validation_dataset, eval_dataset = (
        split.shuffle(seed=0).select(range(SPLIT_SHIFT_MAX_IMAGES)) if len(split) > SPLIT_SHIFT_MAX_IMAGES else split
        for split in (validation_dataset, eval_dataset)
    )
    validation_images, validation_labels = dataset_to_tensors(validation_dataset, preprocessor)
    eval_images, eval_labels = dataset_to_tensors(eval_dataset, preprocessor)
    if min(len(validation_images), len(eval_images)) < 5:  # too few for its 5 folds
        return {}
    labels = {} if multi_label else {"labels_a": validation_labels, "labels_b": eval_labels}
    shift = split_shift_auc(validation_images, eval_images, seed=0, **labels)
    if shift["roc_auc"] >= SPLIT_SHIFT_WARNING_AUC and min(shift["num_images"]) >= 100:
        logger.warning(
            f"The evaluation split is told apart from the validation split with ROC AUC {shift['roc_auc']:.2f} "
            "(0.5: alike): the temperature, and whatever was chosen on the validation split, may not carry over to "
            "it. See docs/evaluation.md#split-shift."
        )
    return {"split_shift": shift}
