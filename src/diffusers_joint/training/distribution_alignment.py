# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Distribution alignment of pseudo-label probabilities (ReMixMatch), against FixMatch's confirmation bias."""

from __future__ import annotations

import torch
import torch.distributed as dist


class DistributionAlignment:
    """
    Rescales the classifier's probabilities on unlabeled images so that, on average, they follow the class prior.

    FixMatch keeps a pseudo-label when the classifier is confident. With few labels the classifier soon becomes
    confident on one class for most unlabeled images, learns from those pseudo-labels and drifts further (with 50
    labeled chest X-rays it called almost every unlabeled X-ray "pneumonia"). Distribution alignment (Berthelot et
    al., ReMixMatch, 2020) multiplies each probability vector by `target / running_mean`, where `running_mean` is an
    exponential moving average of the classifier's mean prediction on unlabeled images, then renormalises: a class
    the classifier predicts more often than the prior says is damped until the averages agree.

    Args:
        target (`torch.Tensor` of shape `(num_classes,)`):
            The class prior, e.g. the class frequencies of the labeled images (a stratified labeled subset has the
            frequencies of the whole training set). Normalised to sum to one.
        momentum (`float`, *optional*, defaults to 0.99):
            Weight of the past in the moving average. ReMixMatch used 0.999 over a million steps; 0.99 follows the
            classifier within about a hundred steps, which suits runs of a few thousand steps.

    In a multi-process run the batch means are summed over processes before the update, so every process holds the
    same moving average. `update` must then be called on every process at every step, also with no unlabeled image.
    """

    def __init__(self, target: torch.Tensor, momentum: float = 0.99):
        target = torch.as_tensor(target, dtype=torch.float64).flatten()
        if target.numel() < 2 or not bool(torch.isfinite(target).all()) or bool((target <= 0).any()):
            raise ValueError(
                f"The class prior must hold one positive, finite value per class (at least 2), got {target.tolist()}."
                " Every class needs at least one labeled image."
            )
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}.")
        self.target = target / target.sum()
        self.running_mean = self.target.clone()
        self.momentum = momentum

    @property
    def num_classes(self) -> int:
        return self.target.numel()

    @torch.no_grad()
    def update(self, probs: torch.Tensor) -> None:
        """Folds the mean of `probs` (`(batch, num_classes)`, possibly no rows) into the moving average."""
        if probs.ndim != 2 or probs.shape[1] != self.num_classes:
            raise ValueError(f"Expected probabilities of shape (batch, {self.num_classes}), got {tuple(probs.shape)}.")
        total = torch.cat([probs.detach().double().sum(dim=0), probs.new_tensor([probs.shape[0]]).double()])
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(total)
        count = total[-1].item()
        if count > 0:
            batch_mean = (total[:-1] / count).to(self.running_mean.device)
            self.running_mean = self.momentum * self.running_mean + (1 - self.momentum) * batch_mean

    def __call__(self, probs: torch.Tensor) -> torch.Tensor:
        """`probs * target / running_mean`, renormalised per row; same dtype and device as `probs`."""
        ratio = (self.target / self.running_mean.clamp_min(1e-12)).to(device=probs.device, dtype=probs.dtype)
        aligned = probs * ratio
        return aligned / aligned.sum(dim=1, keepdim=True)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"target": self.target.clone(), "running_mean": self.running_mean.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        target = state["target"].to(self.target)
        if target.shape != self.target.shape or not torch.allclose(target, self.target):
            raise ValueError(
                f"The saved class prior {target.tolist()} differs from this run's {self.target.tolist()}: the "
                "checkpoint belongs to a run with other labeled images."
            )
        self.running_mean = state["running_mean"].to(self.running_mean)
