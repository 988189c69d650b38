# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The Joint Diffusion objective: epsilon-MSE on noisy images + weighted classification loss on labeled ones."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import SchedulerMixin

from ..models.unet_2d_joint import JointUNet2DModel
from .distribution_alignment import DistributionAlignment


class JointDiffusionObjective(nn.Module):
    """
    Wraps a [`JointUNet2DModel`] so that one `forward` call computes both the noise prediction and the class logits.

    Distributed data parallel synchronises gradients only for computations that run inside the wrapped module's
    `forward`; giving `accelerator.prepare` this wrapper, rather than the UNet, keeps the classifier head and the
    encoder's classification gradients in sync across processes. Save `objective.unet`.
    """

    def __init__(self, unet: JointUNet2DModel):
        super().__init__()
        self.unet = unet

    def forward(
        self, noisy_images: torch.Tensor | None, timesteps: torch.Tensor | None, classify_images: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        # `noisy_images=None` runs the encoder and head only (the classifier-only baseline)
        noise_pred = None if noisy_images is None else self.unet(noisy_images, timesteps).sample
        logits = self.unet.classify(classify_images)
        return noise_pred, logits


@dataclass
class JointLossOutput:
    """Loss terms of one batch; every field but `loss` is detached, for logging."""

    loss: torch.Tensor
    loss_diffusion: torch.Tensor
    loss_classifier: torch.Tensor
    loss_fixmatch: torch.Tensor
    num_labeled: int
    num_pseudo_labeled: int

    def logs(self) -> dict[str, float]:
        return {
            "loss": self.loss.detach().item(),
            "loss_diffusion": self.loss_diffusion.item(),
            "loss_classifier": self.loss_classifier.item(),
            "loss_fixmatch": self.loss_fixmatch.item(),
            "num_labeled": self.num_labeled,
            "num_pseudo_labeled": self.num_pseudo_labeled,
        }


def labeled_mask(labels: torch.Tensor) -> torch.Tensor:
    """Which rows carry a label: `label >= 0` (single-label) or no `-1` in the row (multi-label)."""
    return labels >= 0 if labels.ndim == 1 else (labels >= 0).all(dim=1)


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """Mean cross-entropy (single-label) or mean binary cross-entropy with logits (multi-label)."""
    if multi_label:
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())
    return F.cross_entropy(logits.float(), labels.long())


def joint_diffusion_loss(
    objective: nn.Module,
    noise_scheduler: SchedulerMixin,
    clean_images: torch.Tensor,
    labels: torch.Tensor,
    classifier_loss_weight: float = 1e-3,
    weak_images: torch.Tensor | None = None,
    strong_images: torch.Tensor | None = None,
    fixmatch_threshold: float = 0.95,
    fixmatch_weight: float = 1.0,
    diffusion_loss_weight: float = 1.0,
    distribution_alignment: DistributionAlignment | None = None,
) -> JointLossOutput:
    """
    Loss of one batch: `diffusion_loss_weight * mse(eps_pred, eps) + classifier_loss_weight * (ce_labeled +
    fixmatch_weight * ce_pseudo)`.

    Args:
        objective (`nn.Module`):
            A [`JointDiffusionObjective`], possibly wrapped by `accelerator.prepare`.
        noise_scheduler (`SchedulerMixin`):
            The training noise scheduler (`add_noise`, `config.num_train_timesteps`); the model predicts epsilon.
        clean_images (`torch.Tensor` of shape `(batch, channels, height, width)`):
            Images in [-1, 1]. Every image contributes to the diffusion loss.
        labels (`torch.Tensor`):
            `(batch,)` class indices with `-1` for unlabeled images, or `(batch, num_classes)` multi-hot rows with
            `-1` rows for unlabeled images. Only labeled images contribute to the classification loss, computed on
            the clean image at timestep 0.
        classifier_loss_weight (`float`, *optional*, defaults to 1e-3):
            Weight of the classification terms (the paper's lambda, with a per-pixel mean MSE).
        weak_images, strong_images (`torch.Tensor`, *optional*):
            Weak and strong augmentations of the batch; when given, unlabeled images whose weak-view confidence
            reaches `fixmatch_threshold` are pseudo-labeled and their strong view is trained towards that label
            (FixMatch). Single-label problems only.
        fixmatch_threshold (`float`, *optional*, defaults to 0.95):
            Confidence a pseudo-label needs.
        fixmatch_weight (`float`, *optional*, defaults to 1.0):
            Weight of the pseudo-label term relative to the labeled term.
        diffusion_loss_weight (`float`, *optional*, defaults to 1.0):
            Weight of the denoising term. `0` skips the noisy forward pass altogether and trains the encoder and head
            as a plain classifier: the "same network without the diffusion loss" baseline of the benchmarks.
        distribution_alignment ([`DistributionAlignment`], *optional*):
            With FixMatch, first folds the weak-view probabilities of the unlabeled images into its moving average,
            then rescales them towards the class prior before thresholding. Call this function on every process at
            every step when given (the average is synchronised).

    A batch without any labeled (or pseudo-labeled) image gives a classification loss of exactly zero, yet the
    classifier still takes part in the graph (with a zero weight), so multi-process gradient synchronisation sees
    the same parameters used on every process.
    """
    unet: JointUNet2DModel = getattr(objective, "module", objective).unet
    multi_label = unet.is_multi_label
    unet.check_labels(labels, allow_unlabeled=True)
    if diffusion_loss_weight < 0:
        raise ValueError(f"diffusion_loss_weight must be >= 0, got {diffusion_loss_weight}.")
    has_label = labeled_mask(labels)
    num_labeled = int(has_label.sum())

    noise = torch.randn_like(clean_images)
    timesteps = torch.randint(
        0, noise_scheduler.config.num_train_timesteps, (clean_images.shape[0],), device=clean_images.device
    ).long()
    noisy_images = noise_scheduler.add_noise(clean_images, noise, timesteps) if diffusion_loss_weight > 0 else None

    pseudo_images, pseudo_labels = clean_images[:0], labels[:0]
    if weak_images is not None and strong_images is not None:
        if multi_label:
            raise ValueError("FixMatch pseudo-labels are implemented for single-label problems only.")
        unlabeled = ~has_label
        probs = clean_images.new_zeros((0, unet.config.num_classes), dtype=torch.float32)
        if unlabeled.any():
            with torch.no_grad():
                probs = unet.classify(weak_images[unlabeled]).float().softmax(dim=1)
        if distribution_alignment is not None:
            distribution_alignment.update(probs)  # also with no unlabeled image: processes stay in step
            probs = distribution_alignment(probs)
        if len(probs):
            confidence, guess = probs.max(dim=1)
            keep = confidence >= fixmatch_threshold
            pseudo_images, pseudo_labels = strong_images[unlabeled][keep], guess[keep]
    num_pseudo = int(pseudo_labels.shape[0])

    classify_images = torch.cat([clean_images[has_label], pseudo_images])
    # Keep the classifier in the graph on batches with nothing to classify (weighted by zero below).
    classify_images = classify_images if len(classify_images) else clean_images[:1]
    noise_pred, logits = objective(noisy_images, timesteps, classify_images)

    zero = logits.float().sum() * 0.0
    loss_diffusion = zero if noise_pred is None else F.mse_loss(noise_pred.float(), noise.float())
    loss_labeled = classification_loss(logits[:num_labeled], labels[has_label], multi_label) if num_labeled else zero
    loss_pseudo = classification_loss(logits[num_labeled:], pseudo_labels, multi_label) if num_pseudo else zero
    loss = diffusion_loss_weight * loss_diffusion + classifier_loss_weight * (
        loss_labeled + fixmatch_weight * loss_pseudo
    )
    return JointLossOutput(
        loss=loss,
        loss_diffusion=loss_diffusion.detach(),
        loss_classifier=loss_labeled.detach(),
        loss_fixmatch=loss_pseudo.detach(),
        num_labeled=num_labeled,
        num_pseudo_labeled=num_pseudo,
    )
