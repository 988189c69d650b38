# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The Joint Diffusion objective: epsilon-MSE on noisy images + weighted classification loss on labeled ones."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import SchedulerMixin
from diffusers.training_utils import compute_snr

from ..models.unet_2d_joint import JointUNet2DModel
from .distribution_alignment import DistributionAlignment


class JointDiffusionObjective(nn.Module):
    """
    Wraps a [`JointUNet2DModel`] so that one `forward` call computes the noise prediction, the pooled encoder features
    and class logits of the noisy images (from the same encoder pass) and the class logits of the classifier's images
    at timestep 0.

    Distributed data parallel synchronises gradients only for computations that run inside the wrapped module's
    `forward`; giving `accelerator.prepare` this wrapper, rather than the UNet, keeps the classifier head and the
    encoder's classification gradients in sync across processes. Save `objective.unet`.
    """

    def __init__(self, unet: JointUNet2DModel):
        super().__init__()
        self.unet = unet

    def forward(
        self, noisy_images: torch.Tensor | None, timesteps: torch.Tensor | None, classify_images: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
        # `noisy_images=None` runs the encoder and head only (the classifier-only baseline)
        noise_pred = noisy_features = noisy_logits = None
        if noisy_images is not None:
            noise_pred, noisy_features = self.unet.forward_with_features(noisy_images, timesteps)
            noisy_logits = self.unet.classifier(noisy_features)
        logits = self.unet.classify(classify_images)
        return noise_pred, noisy_features, noisy_logits, logits


LOSS_TERMS = ("loss", "diffusion", "classifier", "fixmatch", "noisy_classifier", "noisy_pseudo", "feature_consistency")


@dataclass
class JointLossOutput:
    """Loss terms of one batch; every field but `loss` is detached, for logging."""

    loss: torch.Tensor
    loss_diffusion: torch.Tensor
    loss_classifier: torch.Tensor
    loss_fixmatch: torch.Tensor
    loss_noisy_classifier: torch.Tensor
    loss_noisy_pseudo: torch.Tensor
    loss_feature_consistency: torch.Tensor
    num_labeled: int
    num_pseudo_labeled: int

    def terms(self) -> torch.Tensor:
        """The loss terms as one detached float vector, in the order of [`LOSS_TERMS`]."""
        return torch.stack(
            [
                self.loss.detach(),
                self.loss_diffusion,
                self.loss_classifier,
                self.loss_fixmatch,
                self.loss_noisy_classifier,
                self.loss_noisy_pseudo,
                self.loss_feature_consistency,
            ]
        ).float()

    def logs(self) -> dict[str, float]:
        return {
            "loss": self.loss.detach().item(),
            "loss_diffusion": self.loss_diffusion.item(),
            "loss_classifier": self.loss_classifier.item(),
            "loss_fixmatch": self.loss_fixmatch.item(),
            "loss_noisy_classifier": self.loss_noisy_classifier.item(),
            "loss_noisy_pseudo": self.loss_noisy_pseudo.item(),
            "loss_feature_consistency": self.loss_feature_consistency.item(),
            "num_labeled": self.num_labeled,
            "num_pseudo_labeled": self.num_pseudo_labeled,
        }


@dataclass(frozen=True)
class JointLossConfig:
    """
    The weights of the Joint Diffusion loss terms ([`joint_diffusion_loss`]).

    Args:
        diffusion_loss_weight (`float`, defaults to 1.0):
            Weight of the denoising term. `0` skips the noisy forward pass altogether and trains the encoder and head
            as a plain classifier: the "same network without the diffusion loss" baseline of the benchmarks.
        classifier_loss_weight (`float`, defaults to 1e-3):
            Weight of the classification terms (the paper's lambda, with a per-pixel mean MSE).
        noisy_classifier_weight (`float`, defaults to 0.0):
            Weight of the noise-aware term: the classifier also reads the pooled encoder features of the labeled
            images' noisy `x_t` (the denoising pass, so no extra forward pass), each row weighted by
            `alpha_bar_t` ([`noise_level_weights`]) so that nearly pure noise counts for almost nothing.
        noisy_pseudo_label_weight (`float`, defaults to 0.0):
            Weight of a consistency term the joint model gets almost for free: unlabeled images whose weak view is
            classified with confidence >= `fixmatch_threshold` are pseudo-labeled, and the classifier reading their
            noisy `x_t` from the denoising pass is trained towards that label, weighted by `alpha_bar_t`. Costs one
            gradient-free encoder pass over the unlabeled images. Single-label problems only.
        feature_consistency_weight (`float`, defaults to 0.0):
            Weight of a label-free consistency term on the diffusion features: the pooled encoder features of the
            unlabeled images' noisy `x_t` (the denoising pass) are pulled towards those of their clean weak view (the
            gradient-free pass the pseudo-labels read, held fixed) by cosine distance, weighted by `alpha_bar_t`.
            Every unlabeled image counts, confident or not; no extra forward pass.
        fixmatch_threshold (`float`, defaults to 0.95):
            Confidence a pseudo-label needs, in [0, 1].
        fixmatch_weight (`float`, defaults to 1.0):
            Weight (>= 0) of the FixMatch pseudo-label term relative to the labeled term.
        snr_gamma (`float`, *optional*):
            Min-SNR weighting of the denoising term (Hang et al., 2023): each image's error is weighted by
            `min(SNR_t, gamma) / SNR_t` (epsilon prediction) or `min(SNR_t, gamma) / (SNR_t + 1)` (v prediction), so
            that nearly clean timesteps, which are easy, do not dominate; must be > 0. `None` gives the plain mean
            squared error.

    Example:

    ```py
    >>> from diffusers_joint.training import JointLossConfig

    >>> config = JointLossConfig(classifier_loss_weight=0.1, noisy_classifier_weight=1.0, snr_gamma=5.0)
    >>> config.fixmatch_threshold
    0.95
    ```
    """

    diffusion_loss_weight: float = 1.0
    classifier_loss_weight: float = 1e-3
    noisy_classifier_weight: float = 0.0
    noisy_pseudo_label_weight: float = 0.0
    feature_consistency_weight: float = 0.0
    fixmatch_threshold: float = 0.95
    fixmatch_weight: float = 1.0
    snr_gamma: float | None = None

    def __post_init__(self):
        for name in (
            "diffusion_loss_weight",
            "classifier_loss_weight",
            "noisy_classifier_weight",
            "noisy_pseudo_label_weight",
            "feature_consistency_weight",
            "fixmatch_weight",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if not 0.0 <= self.fixmatch_threshold <= 1.0:
            raise ValueError(
                f"fixmatch_threshold is a confidence and must be in [0, 1], got {self.fixmatch_threshold}."
            )
        if self.snr_gamma is not None and self.snr_gamma <= 0:
            raise ValueError(f"snr_gamma must be > 0 (None: no Min-SNR weighting), got {self.snr_gamma}.")


def labeled_mask(labels: torch.Tensor) -> torch.Tensor:
    """Which rows carry a label: `label >= 0` (single-label) or no `-1` in the row (multi-label)."""
    return labels >= 0 if labels.ndim == 1 else (labels >= 0).all(dim=1)


def inverse_frequency_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """
    Class weights of the classification loss from the labeled rows of `labels` (unlabeled rows are ignored).

    Single-label: `n / (num_classes * n_c)` for a class with `n_c` of the `n` labeled images, so that the weights
    average to 1 over the labeled images. Multi-label: the positive weight `n_negative / n_positive` of each label (the
    `pos_weight` of binary cross-entropy). A class without any labeled example gets weight 1.
    """
    labels = labels[labeled_mask(labels)]
    if len(labels) == 0:
        raise ValueError("Class weights need labeled images, but every row of `labels` is unlabeled (-1).")
    if labels.ndim == 1:
        counts = torch.bincount(labels.long(), minlength=num_classes).float()
        weights = len(labels) / (num_classes * counts.clamp_min(1))
        return torch.where(counts > 0, weights, torch.ones_like(weights))
    positives = labels.float().sum(dim=0)
    negatives = len(labels) - positives
    return torch.where(
        (positives > 0) & (negatives > 0), negatives / positives.clamp_min(1), torch.ones_like(positives)
    )


def classification_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    multi_label: bool,
    class_weights: torch.Tensor | None = None,
    sample_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """
    Cross-entropy (single-label) or binary cross-entropy with logits (multi-label), averaged over the rows.

    `class_weights` (see [`inverse_frequency_weights`]) weight each class (single-label) or each label's positives
    (multi-label); `sample_weights` `(batch,)` weight each row, e.g. by the noise level of its image.
    """
    logits = logits.float()
    if multi_label:
        per_row = F.binary_cross_entropy_with_logits(
            logits, labels.float(), pos_weight=class_weights, reduction="none"
        ).mean(dim=1)
    else:
        per_row = F.cross_entropy(logits, labels.long(), weight=class_weights, reduction="none")
    if sample_weights is not None:
        per_row = per_row * sample_weights.float()
    return per_row.mean()


def min_snr_weights(noise_scheduler: SchedulerMixin, timesteps: torch.Tensor, snr_gamma: float) -> torch.Tensor:
    """Min-SNR-gamma weights of the denoising error per image (see [`JointLossConfig`]'s `snr_gamma`)."""
    if not snr_gamma > 0:
        raise ValueError(f"snr_gamma must be > 0, got {snr_gamma}.")
    snr = compute_snr(noise_scheduler, timesteps)
    clipped = snr.clamp(max=snr_gamma)
    prediction_type = noise_scheduler.config.get("prediction_type", "epsilon")
    if prediction_type == "v_prediction":
        return clipped / (snr + 1)
    if prediction_type == "sample":  # the x0 error is the epsilon error divided by SNR: min(SNR, gamma) as it is
        return clipped
    return clipped / snr.clamp_min(1e-8)


def noise_level_weights(noise_scheduler: SchedulerMixin, timesteps: torch.Tensor) -> torch.Tensor:
    """`alpha_bar_t`, the share of signal in the variance of `x_t`: 1 for clean images, near 0 for pure noise."""
    alphas_cumprod = noise_scheduler.alphas_cumprod.to(timesteps.device)
    return alphas_cumprod[timesteps].float()


def joint_diffusion_loss(
    objective: nn.Module,
    noise_scheduler: SchedulerMixin,
    clean_images: torch.Tensor,
    labels: torch.Tensor,
    config: JointLossConfig | None = None,
    *,
    classifier_images: torch.Tensor | None = None,
    weak_images: torch.Tensor | None = None,
    strong_images: torch.Tensor | None = None,
    class_weights: torch.Tensor | None = None,
    distribution_alignment: DistributionAlignment | None = None,
    diffusion_weights: torch.Tensor | None = None,
) -> JointLossOutput:
    """
    Loss of one batch: `diffusion_loss_weight * mse(eps_pred, eps) + classifier_loss_weight * (ce_labeled +
    noisy_classifier_weight * ce_noisy + fixmatch_weight * ce_pseudo + noisy_pseudo_label_weight * ce_noisy_pseudo +
    feature_consistency_weight * cosine_distance_noisy_to_clean)`,
    with the weights of `config` ([`JointLossConfig`]).

    Args:
        objective (`nn.Module`):
            A [`JointDiffusionObjective`], possibly wrapped by `accelerator.prepare`.
        noise_scheduler (`SchedulerMixin`):
            The training noise scheduler (`add_noise`, `alphas_cumprod`, `config.num_train_timesteps`,
            `config.prediction_type`: `"epsilon"`, `"v_prediction"` or `"sample"`).
        clean_images (`torch.Tensor` of shape `(batch, channels, height, width)`):
            Images in [-1, 1]. Every image contributes to the diffusion loss.
        labels (`torch.Tensor`):
            `(batch,)` class indices with `-1` for unlabeled images, or `(batch, num_classes)` multi-hot rows with
            `-1` rows for unlabeled images. Only labeled images contribute to the classification loss.
        config ([`JointLossConfig`], *optional*):
            The weights of the terms and the pseudo-label threshold; `None` is `JointLossConfig()`.
        classifier_images (`torch.Tensor`, *optional*):
            What the classifier reads at timestep 0 for the labeled images, e.g. an augmented view of `clean_images`
            ([`JointAugmentation`]); defaults to `clean_images`. The diffusion loss always reads `clean_images`.
        weak_images, strong_images (`torch.Tensor`, *optional*):
            Weak and strong augmentations of the batch; when given, unlabeled images whose weak-view confidence
            reaches `config.fixmatch_threshold` are pseudo-labeled and their strong view is trained towards that
            label (FixMatch). Single-label problems only.
        class_weights (`torch.Tensor`, *optional*):
            Per-class weights of every classification term ([`inverse_frequency_weights`]).
        distribution_alignment ([`DistributionAlignment`], *optional*):
            With FixMatch, first folds the weak-view probabilities of the unlabeled images into its moving average,
            then rescales them towards the class prior before thresholding. Call this function on every process at
            every step when given (the average is synchronised).
        diffusion_weights (`torch.Tensor`, *optional*):
            `(batch,)` weights of each image's denoising error, e.g. from [`MixedBatchSampler.data_weights`] so that
            the labeled images, which mixed batches oversample, count as often as in the data. `None`: all 1.

    A batch without any labeled (or pseudo-labeled) image gives a classification loss of exactly zero, yet the
    classifier still takes part in the graph (with a zero weight), so multi-process gradient synchronisation sees
    the same parameters used on every process.
    """
    unet: JointUNet2DModel = getattr(objective, "module", objective).unet
    multi_label = unet.is_multi_label
    unet.check_labels(labels, allow_unlabeled=True)
    config = JointLossConfig() if config is None else config
    if diffusion_weights is not None and diffusion_weights.shape != (clean_images.shape[0],):
        raise ValueError(
            f"diffusion_weights must have shape ({clean_images.shape[0]},), one weight per image, got "
            f"{tuple(diffusion_weights.shape)}."
        )
    if classifier_images is None:
        classifier_images = clean_images
    elif classifier_images.shape != clean_images.shape:
        raise ValueError(
            f"classifier_images must have the shape of clean_images {tuple(clean_images.shape)}, got "
            f"{tuple(classifier_images.shape)}."
        )
    if class_weights is not None:
        class_weights = class_weights.to(device=clean_images.device, dtype=torch.float32)
    has_label = labeled_mask(labels)
    num_labeled = int(has_label.sum())

    noise = torch.randn_like(clean_images)
    timesteps = torch.randint(
        0, noise_scheduler.config.num_train_timesteps, (clean_images.shape[0],), device=clean_images.device
    ).long()
    noisy_images = (
        noise_scheduler.add_noise(clean_images, noise, timesteps) if config.diffusion_loss_weight > 0 else None
    )

    fixmatch = weak_images is not None and strong_images is not None
    noisy_pseudo = config.noisy_pseudo_label_weight > 0 and noisy_images is not None
    consistency = config.feature_consistency_weight > 0 and noisy_images is not None
    confident, guess = torch.zeros_like(has_label), torch.zeros_like(has_label, dtype=torch.long)
    clean_features = None
    if fixmatch or noisy_pseudo or consistency:
        if multi_label and (fixmatch or noisy_pseudo):
            raise ValueError("Pseudo-labels (FixMatch, noisy consistency) are for single-label problems only.")
        views = weak_images if weak_images is not None else classifier_images
        clean_features = _unlabeled_features(unet, views, ~has_label)
        if fixmatch or noisy_pseudo:
            confident, guess = _pseudo_labels(
                unet, clean_features, ~has_label, config.fixmatch_threshold, distribution_alignment
            )
    pseudo_images, pseudo_labels = clean_images[:0], labels[:0]
    if fixmatch:
        pseudo_images, pseudo_labels = strong_images[confident], guess[confident]
    num_pseudo = int(confident.sum())

    classify_images = torch.cat([classifier_images[has_label], pseudo_images])
    # Keep the classifier in the graph on batches with nothing to classify (weighted by zero below).
    classify_images = classify_images if len(classify_images) else clean_images[:1]
    noise_pred, noisy_features, noisy_logits, logits = objective(noisy_images, timesteps, classify_images)

    zero = logits.float().sum() * 0.0
    loss_diffusion = zero
    if noise_pred is not None:
        target = diffusion_target(noise_scheduler, clean_images, noise, timesteps)
        per_image = F.mse_loss(noise_pred.float(), target, reduction="none").mean(dim=(1, 2, 3))
        if config.snr_gamma is not None:
            per_image = per_image * min_snr_weights(noise_scheduler, timesteps, config.snr_gamma)
        if diffusion_weights is not None:
            per_image = per_image * diffusion_weights.to(device=per_image.device, dtype=per_image.dtype)
        loss_diffusion = per_image.mean()
    loss_labeled = zero
    if num_labeled:
        loss_labeled = classification_loss(logits[:num_labeled], labels[has_label], multi_label, class_weights)
    loss_pseudo = zero
    if len(pseudo_labels):
        loss_pseudo = classification_loss(logits[num_labeled:], pseudo_labels, multi_label, class_weights)

    def noisy_term(rows: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the classifier reading the noisy pass, each row weighted by its alpha_bar_t."""
        weights = noise_level_weights(noise_scheduler, timesteps[rows])
        return classification_loss(noisy_logits[rows], targets, multi_label, class_weights, sample_weights=weights)

    loss_noisy = zero
    if noisy_logits is not None:
        loss_noisy = loss_noisy + noisy_logits.float().sum() * 0.0  # in the graph on every process
        if num_labeled and config.noisy_classifier_weight > 0:
            loss_noisy = noisy_term(has_label, labels[has_label])
    loss_noisy_pseudo = zero
    if noisy_pseudo and num_pseudo:
        loss_noisy_pseudo = noisy_term(confident, guess[confident])
    loss_consistency = zero
    if consistency and len(clean_features):
        unlabeled = ~has_label
        distance = 1 - F.cosine_similarity(noisy_features[unlabeled].float(), clean_features.float(), dim=1)
        loss_consistency = (distance * noise_level_weights(noise_scheduler, timesteps[unlabeled])).mean()
    loss = config.diffusion_loss_weight * loss_diffusion + config.classifier_loss_weight * (
        loss_labeled
        + config.noisy_classifier_weight * loss_noisy
        + config.fixmatch_weight * loss_pseudo
        + config.noisy_pseudo_label_weight * loss_noisy_pseudo
        + config.feature_consistency_weight * loss_consistency
    )
    return JointLossOutput(
        loss=loss,
        loss_diffusion=loss_diffusion.detach(),
        loss_classifier=loss_labeled.detach(),
        loss_fixmatch=loss_pseudo.detach(),
        loss_noisy_classifier=loss_noisy.detach(),
        loss_noisy_pseudo=loss_noisy_pseudo.detach(),
        loss_feature_consistency=loss_consistency.detach(),
        num_labeled=num_labeled,
        num_pseudo_labeled=num_pseudo,
    )


@torch.no_grad()
def _unlabeled_features(unet: JointUNet2DModel, views: torch.Tensor, unlabeled: torch.Tensor) -> torch.Tensor:
    """Pooled encoder features of the unlabeled rows' views at timestep 0, without gradient: `(num_unlabeled, dim)`."""
    if not unlabeled.any():
        return views.new_zeros((0, unet.feature_dim), dtype=torch.float32)
    return unet.extract_features(views[unlabeled])


@torch.no_grad()
def _pseudo_labels(
    unet: JointUNet2DModel,
    features: torch.Tensor,
    unlabeled: torch.Tensor,
    threshold: float,
    distribution_alignment: DistributionAlignment | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Rows (of the whole batch) pseudo-labeled with confidence >= `threshold`, and every row's guessed class, from the
    unlabeled rows' `features` ([`_unlabeled_features`]).
    """
    probs = features.new_zeros((0, unet.config.num_classes), dtype=torch.float32)
    if len(features):
        probs = unet.classifier(features).float().softmax(dim=1)
    if distribution_alignment is not None:
        distribution_alignment.update(probs)  # also with no unlabeled image: processes stay in step
        probs = distribution_alignment(probs)
    confident = torch.zeros_like(unlabeled)
    guess = torch.zeros(len(unlabeled), dtype=torch.long, device=features.device)
    if len(probs):
        confidence, guess[unlabeled] = probs.max(dim=1)
        confident[unlabeled] = confidence >= threshold
    return confident, guess


def diffusion_target(
    noise_scheduler: SchedulerMixin, clean_images: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    """What the UNet is trained to predict, per the scheduler's `prediction_type`: the noise, `v` or `x0`."""
    prediction_type = noise_scheduler.config.get("prediction_type", "epsilon")
    if prediction_type == "epsilon":
        return noise.float()
    if prediction_type == "v_prediction":
        return noise_scheduler.get_velocity(clean_images, noise, timesteps).float()
    if prediction_type == "sample":
        return clean_images.float()
    raise ValueError(f"Unknown prediction_type {prediction_type!r}: expected epsilon, v_prediction or sample.")
