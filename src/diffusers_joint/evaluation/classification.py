# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Classification metrics computed offline with scikit-learn (no Hub download, unlike `evaluate.load`)."""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn import metrics

from ..models.unet_2d_joint import MULTI_LABEL, SINGLE_LABEL
from ..training.calibration import binary_calibration_error, expected_calibration_error


def _roc_auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """One-vs-rest macro AUC over the classes present; NaN when fewer than two classes are present."""
    present = np.unique(labels)
    if len(present) < 2:
        return math.nan
    if probs.shape[1] == 2:
        return float(metrics.roc_auc_score(labels, probs[:, 1]))
    # sklearn's "ovr" macro AUC, computed class by class: it would need every class present and rows summing to 1
    return float(np.mean([metrics.roc_auc_score(labels == c, probs[:, c]) for c in present]))


def compute_classification_metrics(
    labels: np.ndarray | torch.Tensor,
    probs: np.ndarray | torch.Tensor,
    problem_type: str = SINGLE_LABEL,
    label_names: list[str] | None = None,
) -> dict:
    """
    Accuracy, balanced accuracy, macro F1, ROC AUC, confusion matrix and calibration error.

    Args:
        labels (`np.ndarray` or `torch.Tensor`):
            True labels: class indices `(N,)` for single-label problems, multi-hot `(N, L)` for multi-label ones.
        probs (`np.ndarray` or `torch.Tensor` of shape `(N, num_classes)`):
            Predicted probabilities (softmax for single-label, sigmoid for multi-label).
        problem_type (`str`, *optional*, defaults to `"single_label_classification"`):
            `"single_label_classification"` or `"multi_label_classification"`.
        label_names (`list[str]`, *optional*):
            Names used as keys of the per-label AUCs of multi-label problems.

    Returns:
        `dict`: plain Python numbers and lists (JSON-serialisable). Metrics that are undefined for the given labels
        (e.g. AUC when only one class is present) are `NaN`.

        Single-label: `accuracy`, `balanced_accuracy` (mean recall over the classes present), `macro_f1` (over the
        classes in the labels or the predictions), `roc_auc` (one-vs-rest macro average over the classes present),
        `ece` (top-label, 15 bins) and `confusion_matrix` (rows true, columns predicted). Multi-label, with
        decisions at probability 0.5: `subset_accuracy` (every label right), `hamming_accuracy` (share of right
        labels), `balanced_accuracy` (mean over labels of (sensitivity + specificity) / 2), `macro_f1`, `roc_auc`
        (mean of the defined per-label AUCs), `roc_auc_per_label`, `ece` (every (example, label) pair as a binary
        prediction) and `confusion_matrix` (one `[[TN, FP], [FN, TP]]` per label).
    """
    labels = labels.detach().cpu().numpy() if torch.is_tensor(labels) else np.asarray(labels)
    probs = probs.detach().float().cpu().numpy() if torch.is_tensor(probs) else np.asarray(probs, dtype=np.float64)
    if len(labels) != len(probs):
        raise ValueError(f"Got {len(labels)} labels but {len(probs)} rows of probabilities.")
    if len(labels) == 0:
        raise ValueError("Cannot compute metrics on an empty set of predictions.")
    num_classes = probs.shape[1]
    if problem_type == MULTI_LABEL:
        preds = (probs >= 0.5).astype(int)
        names = label_names or [str(i) for i in range(num_classes)]
        per_label_auc = {}
        for j, name in enumerate(names):
            column = labels[:, j]
            per_label_auc[name] = (
                float(metrics.roc_auc_score(column, probs[:, j])) if len(np.unique(column)) == 2 else math.nan
            )
        finite = [v for v in per_label_auc.values() if not math.isnan(v)]
        # Per label, balanced accuracy is the mean of sensitivity and specificity; labels with one value only
        # (all present or all absent) have just one of the two and are left out of the mean.
        balanced = [
            (preds[labels[:, j] == 1, j].mean() + (1 - preds[labels[:, j] == 0, j]).mean()) / 2
            for j in range(num_classes)
            if len(np.unique(labels[:, j])) == 2
        ]
        return {
            "num_examples": int(len(labels)),
            "subset_accuracy": float(metrics.accuracy_score(labels, preds)),
            "hamming_accuracy": float((labels == preds).mean()),
            "balanced_accuracy": float(np.mean(balanced)) if balanced else math.nan,
            "macro_f1": float(metrics.f1_score(labels, preds, average="macro", zero_division=0)),
            "roc_auc": float(np.mean(finite)) if finite else math.nan,
            "roc_auc_per_label": per_label_auc,
            "ece": binary_calibration_error(labels, probs),
            "confusion_matrix": metrics.multilabel_confusion_matrix(labels, preds).tolist(),
        }
    if problem_type != SINGLE_LABEL:
        raise ValueError(f"Unknown problem_type {problem_type!r}; expected {SINGLE_LABEL!r} or {MULTI_LABEL!r}.")
    labels = labels.astype(int)
    preds = probs.argmax(axis=1)
    all_classes = list(range(num_classes))
    return {
        "num_examples": int(len(labels)),
        "accuracy": float(metrics.accuracy_score(labels, preds)),
        "balanced_accuracy": float(_balanced_accuracy(labels, preds)),
        # over the classes in the labels or the predictions: a class absent from both is no error of the classifier
        "macro_f1": float(metrics.f1_score(labels, preds, average="macro", zero_division=0)),
        "roc_auc": _roc_auc(labels, probs),
        "ece": expected_calibration_error(labels, probs),
        "confusion_matrix": metrics.confusion_matrix(labels, preds, labels=all_classes).tolist(),
    }


def _balanced_accuracy(labels: np.ndarray, preds: np.ndarray) -> float:
    # mean recall over the classes present in `labels` (sklearn warns, but agrees, when predictions add classes)
    return float(np.mean([(preds[labels == c] == c).mean() for c in np.unique(labels)]))
