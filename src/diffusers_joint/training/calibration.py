# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Temperature scaling (Guo et al., 2017): one scalar that calibrates the classifier's probabilities."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .losses import classification_loss


def fit_temperature(
    logits: torch.Tensor, labels: torch.Tensor, multi_label: bool = False, max_iter: int = 200
) -> float:
    """
    The temperature `T` that minimises the negative log-likelihood of `softmax(logits / T)` (or the per-label sigmoid)
    on held-out labeled data. It changes probabilities, never the predicted class.

    Args:
        logits (`torch.Tensor` of shape `(N, num_classes)`):
            Uncalibrated logits of validation images.
        labels (`torch.Tensor`):
            `(N,)` class indices, or `(N, num_classes)` 0/1 rows for multi-label problems.
        multi_label (`bool`, *optional*, defaults to `False`):
            Sigmoid / binary cross-entropy instead of softmax / cross-entropy.
        max_iter (`int`, *optional*, defaults to 200):
            L-BFGS iterations.

    Returns:
        `float`: the fitted temperature, in [0.05, 20].

    Example:

    ```py
    >>> import torch
    >>> from diffusers_joint.training import fit_temperature

    >>> labels = torch.arange(100) % 2
    >>> logits = torch.nn.functional.one_hot(labels, 2).float() * 20  # over-confident
    >>> logits[:30] = logits[:30].flip(1)  # ... and wrong on 30 %
    >>> fit_temperature(logits, labels) > 1
    True
    ```
    """
    if len(logits) == 0 or len(logits) != len(labels):
        raise ValueError(
            f"Expected as many labels as logits (at least one), got {len(logits)} logits and {len(labels)} labels."
        )
    logits = logits.detach().float()
    log_temperature = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([log_temperature], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = classification_loss(logits / log_temperature.exp(), labels, multi_label)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_temperature.detach().exp().clamp(0.05, 20.0))


def negative_log_likelihood(logits: torch.Tensor, labels: torch.Tensor, multi_label: bool = False) -> float:
    """Mean negative log-likelihood of `labels` under the logits (cross-entropy or binary cross-entropy)."""
    if multi_label:
        return float(F.binary_cross_entropy_with_logits(logits.float(), labels.float()))
    return float(F.cross_entropy(logits.float(), labels.long()))
