# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Measure a Joint Diffusion pipeline's samples and counterfactuals with an independent [`ReferenceClassifier`]."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from diffusers.utils import logging

from ..pipelines import CounterfactualPipeline, GuidanceConfig, JointDiffusionPipeline
from ..pipelines.guidance_config import guidance_config_from_arguments
from .background import background_match_share
from .counterfactual import DEFAULT_CHANGE_THRESHOLD, compute_counterfactual_metrics
from .generation import compute_generation_metrics, conditional_accuracy
from .reference_network import ReferenceClassifier
from .transformers_features import TransformersFeatureExtractor

logger = logging.get_logger(__name__)


def _unet_in_eval_mode(function):
    """Run `function(pipeline, ...)` with the UNet in eval mode (no classifier dropout), then restore its mode."""

    @functools.wraps(function)
    def wrapper(pipeline, *args, **kwargs):
        was_training = pipeline.unet.training
        pipeline.unet.eval()
        try:
            return function(pipeline, *args, **kwargs)
        finally:
            pipeline.unet.train(was_training)

    return wrapper


def _requested_labels(
    pipeline: JointDiffusionPipeline, num_images: int, real_labels: torch.Tensor | None
) -> torch.Tensor | None:
    unet = pipeline.unet
    if not unet.is_multi_label:
        # Balanced: classes in turn, so every class gets num_images // num_classes samples (or one more).
        return torch.arange(num_images) % unet.config.num_classes
    if real_labels is None:
        return None
    # Multi-label: label sets that occur in the real data, in turn.
    return real_labels[torch.arange(num_images) % len(real_labels)].float()


@_unet_in_eval_mode
@torch.no_grad()
def evaluate_generation(
    pipeline: JointDiffusionPipeline,
    real_images: torch.Tensor,
    reference_model: ReferenceClassifier,
    num_generated: int = 1000,
    num_inference_steps: int = 50,
    guidance_scale: float | None = None,
    guidance: GuidanceConfig | dict[str, Any] | None = None,
    real_labels: torch.Tensor | None = None,
    batch_size: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
    backbone: TransformersFeatureExtractor | None = None,
    eta: float = 0.0,
    **kwargs,
) -> dict:
    """
    Generate class-guided samples and compare them with real images on the reference network's features.

    Single-label models are asked for every class in turn; multi-label models for the label sets of `real_labels` in
    turn (unconditional samples when `real_labels` is `None`).

    Args:
        pipeline ([`JointDiffusionPipeline`]):
            The pipeline to measure; its scheduler is used as is (e.g. a `DDIMScheduler` for few steps).
        real_images (`torch.Tensor` of shape `(N, C, H, W)`):
            Real images in [-1, 1] at the pipeline's `pixel_size` (held-out images are best).
        reference_model ([`ReferenceClassifier`]):
            The independent network whose features and predictions judge the samples.
        num_generated (`int`, *optional*, defaults to 1000):
            Number of samples.
        num_inference_steps (`int`, *optional*, defaults to 50):
            Denoising steps per sample.
        guidance_scale (`float`, *optional*):
            Classifier-guidance strength, as `guidance.scale` (the method's default when `None`; 0 for unguided
            samples).
        guidance ([`GuidanceConfig`] or `dict`, *optional*):
            How to guide; fields left `None` take the defaults for generation (see [`JointDiffusionPipeline`]). The
            former `guidance_method`, `guidance_augmentation`, `guidance_cache_interval` and `guidance_temperature`
            arguments still work, with a `FutureWarning`.
        real_labels (`torch.Tensor`, *optional*):
            Labels of `real_images`; used to choose the label sets requested from multi-label models.
        batch_size (`int`, *optional*, defaults to 100):
            Samples generated at once.
        kid_subset_size (`int`, *optional*, defaults to 1000):
            See [`kernel_inception_distance`].
        seed (`int`, *optional*, defaults to 0):
            Seed of the samples and of the KID subsets.
        backbone ([`TransformersFeatureExtractor`], *optional*):
            A transformers vision model (e.g. DINOv2): adds `backbone_frechet_distance`, `backbone_kid_mean`,
            `backbone_kid_std`, `backbone_precision` and `backbone_recall`, the same metrics on its features, and
            `backbone_model`, its name.

        eta (`float`, *optional*, defaults to 0.0):
            DDIM's eta (see [`JointDiffusionPipeline`]); ignored by schedulers without it.

    Returns:
        `dict`: the metrics of [`compute_generation_metrics`] (conditional accuracy under the reference network) plus
        `conditional_accuracy_model` (under the joint model itself), `dark_background_share` (the share of samples
        with the real images' background, [`background_match_share`]) and the sampling settings, among them
        `guidance`, the resolved [`GuidanceConfig`] as a dict ([`GuidanceConfig.to_dict`]).
    """
    guidance = guidance_config_from_arguments(guidance, guidance_scale, kwargs, "evaluate_generation")
    guidance = guidance.resolve("generation")
    unet = pipeline.unet
    requested = _requested_labels(pipeline, num_generated, real_labels)
    generator = torch.Generator().manual_seed(seed)
    samples = []
    for start in range(0, num_generated, batch_size):
        count = min(batch_size, num_generated - start)
        labels = {"class_labels": requested[start : start + count]} if requested is not None else {"batch_size": count}
        images = pipeline(
            **labels,
            guidance=guidance,
            num_inference_steps=num_inference_steps,
            generator=generator,
            eta=eta,
            output_type="pt",
        ).images
        samples.append(images.cpu().float() * 2 - 1)  # the pipeline returns [0, 1]
    generated = torch.cat(samples)
    problem_type = unet.config.problem_type
    results = compute_generation_metrics(
        reference_model.extract_features(real_images),
        reference_model.extract_features(generated),
        requested_labels=requested,
        fake_probs=reference_model.predict_proba(generated) if requested is not None else None,
        problem_type=problem_type,
        kid_subset_size=kid_subset_size,
        seed=seed,
    )
    results["dark_background_share"] = background_match_share(real_images, generated)
    if requested is not None:
        # through the pipeline: a latent one encodes the samples before its classifier reads them
        model_probs = unet.probabilities(pipeline.classifier_logits(generated, batch_size=256))
        results["conditional_accuracy_model"] = conditional_accuracy(requested, model_probs, problem_type)
    if backbone is not None:
        on_backbone = compute_generation_metrics(
            backbone.extract_features(real_images),
            backbone.extract_features(generated),
            kid_subset_size=kid_subset_size,
            seed=seed,
        )
        for key in ("frechet_distance", "kid_mean", "kid_std", "precision", "recall"):
            results[f"backbone_{key}"] = on_backbone[key]
        results["backbone_model"] = backbone.name
    results.update(
        {
            "class_guided": requested is not None,
            "guidance": guidance.to_dict(),
            "num_inference_steps": num_inference_steps,
            "scheduler": type(pipeline.scheduler).__name__,
            "eta": eta,
        }
    )
    return results


def counterfactual_requests(
    labels: torch.Tensor, num_classes: int, multi_label: bool, num_counterfactuals: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Which images to explain and towards what: the draw [`evaluate_counterfactuals`] makes, so that other methods
    (e.g. a pixel-space attack in a benchmark) can be measured on exactly the same inputs and targets.

    Args:
        labels (`torch.Tensor`):
            Labels of all candidate images: class indices `(N,)`, or multi-hot rows `(N, L)`.
        num_classes (`int`):
            Number of classes (labels).
        multi_label (`bool`):
            Whether `labels` are multi-hot rows.
        num_counterfactuals (`int`):
            How many images to pick (at most `N`), at random without replacement.
        seed (`int`, *optional*, defaults to 0):
            Seed of the draw.

    Returns:
        `tuple[torch.Tensor, torch.Tensor]`: the sorted indices of the picked images, and their targets: a random
        class other than the true one (single-label), or one random label flipped with the others left free (-1).
    """
    rng = np.random.default_rng(seed)
    pick = torch.from_numpy(
        np.sort(rng.choice(len(labels), size=min(num_counterfactuals, len(labels)), replace=False))
    )
    picked = labels[pick]
    if not multi_label:
        shifts = torch.from_numpy(rng.integers(1, num_classes, size=len(picked)))
        return pick, (picked.long() + shifts) % num_classes
    targets = torch.full((len(picked), num_classes), -1.0)
    flip = torch.from_numpy(rng.integers(0, num_classes, size=len(picked)))
    rows = torch.arange(len(picked))
    targets[rows, flip] = 1.0 - picked[rows, flip].float()
    return pick, targets


@_unet_in_eval_mode
@torch.no_grad()
def evaluate_counterfactuals(
    pipeline: JointDiffusionPipeline | CounterfactualPipeline,
    images: torch.Tensor,
    labels: torch.Tensor,
    reference_model: ReferenceClassifier,
    num_counterfactuals: int = 100,
    strength: float = 0.5,
    num_inference_steps: int = 50,
    guidance_scale: float | None = None,
    guidance: GuidanceConfig | dict[str, Any] | None = None,
    real_images: torch.Tensor | None = None,
    real_labels: torch.Tensor | None = None,
    change_threshold: float = DEFAULT_CHANGE_THRESHOLD,
    batch_size: int = 100,
    seed: int = 0,
    search_strengths: bool | Sequence[float] = False,
    max_strength: float = 1.0,
    mask_image: str | None = "auto",
    targets: torch.Tensor | None = None,
    **kwargs,
) -> dict:
    """
    Explain real images with counterfactuals towards another class and measure them (see
    [`compute_counterfactual_metrics`]).

    Args:
        pipeline ([`JointDiffusionPipeline`] or [`CounterfactualPipeline`]):
            The model and scheduler to use.
        images (`torch.Tensor` of shape `(N, C, H, W)`):
            Real images in [-1, 1] at the pipeline's `pixel_size` (held-out images are best; a latent pipeline
            encodes them).
        labels (`torch.Tensor`):
            Their labels. Targets are a random other class (single-label), or one random label flipped with the
            others left free (multi-label).
        reference_model ([`ReferenceClassifier`]):
            The independent judge.
        num_counterfactuals (`int`, *optional*, defaults to 100):
            How many images (drawn at random from `images`) to explain.
        strength (`float`, *optional*, defaults to 0.5):
            Share of the noise schedule the inputs are re-noised over (see [`CounterfactualPipeline`]).
        num_inference_steps (`int`, *optional*, defaults to 50):
            Steps of the full schedule.
        guidance_scale (`float`, *optional*):
            Guidance strength, as `guidance.scale` (the method's default when `None`).
        guidance ([`GuidanceConfig`] or `dict`, *optional*):
            How to guide; fields left `None` take the defaults for counterfactuals (see [`CounterfactualPipeline`]).
            The former `guidance_method`, `guidance_augmentation`, `guidance_cache_interval` and
            `guidance_temperature` arguments still work, with a `FutureWarning`.
        real_images (`torch.Tensor`, *optional*):
            Real images whose class-wise reference features the counterfactuals are compared with (defaults to
            `images`), with `real_labels` (defaults to `labels`).
        real_labels (`torch.Tensor`, *optional*):
            Labels of `real_images`.
        change_threshold (`float`, *optional*, defaults to 0.1):
            See [`compute_counterfactual_metrics`].
        batch_size (`int`, *optional*, defaults to 100):
            Images explained at once.
        seed (`int`, *optional*, defaults to 0):
            Seed of the image choice, the targets and the noise.
        search_strengths (`bool` or `Sequence[float]`, *optional*, defaults to `False`):
            Retry images that did not flip with larger strengths, up to `max_strength` (see
            [`CounterfactualPipeline`]).
        max_strength (`float`, *optional*, defaults to 1.0):
            Largest strength of the search.
        mask_image (`str`, *optional*, defaults to `"auto"`):
            `"auto"` edits only the region an unrestricted first pass changed, `None` every pixel (see
            [`CounterfactualPipeline`]).
        targets (`torch.Tensor`, *optional*):
            The target of each of `images` (class indices `(N,)`, or rows of `(N, L)` with `-1` for free labels), for
            example drawn with [`counterfactual_requests`] to measure another method on the same requests: every
            image is then explained towards its target, in order, and `num_counterfactuals` is not used. Default:
            `num_counterfactuals` images and their targets drawn with [`counterfactual_requests`].

    Returns:
        `dict`: the metrics of [`compute_counterfactual_metrics`] plus the settings, among them `guidance` (the
        resolved [`GuidanceConfig`] as a dict), and `mean_strength`, the mean strength the counterfactuals used.
    """
    guidance = guidance_config_from_arguments(guidance, guidance_scale, kwargs, "evaluate_counterfactuals")
    guidance = guidance.resolve("counterfactual")
    explain = CounterfactualPipeline.from_joint_pipeline(pipeline)
    explain.set_progress_bar_config(disable=True)
    unet = pipeline.unet
    if targets is None:
        pick, targets = counterfactual_requests(
            labels, unet.config.num_classes, unet.is_multi_label, num_counterfactuals, seed=seed
        )
    else:
        if len(targets) != len(images):
            raise ValueError(f"`targets` must give one target per image: {len(targets)} for {len(images)} images.")
        pick = torch.arange(len(images))
    x = images[pick].float()
    generator = torch.Generator().manual_seed(seed)
    counterfactuals, probs_after, probs_before, strengths = [], [], [], []
    for start in range(0, len(x), batch_size):
        out = explain(
            # [0, 1] input: a [-1, 1] batch without negative values would be misread as [0, 1] by the pipeline
            image=((x[start : start + batch_size] + 1) / 2).clamp(0, 1),
            target_class=targets[start : start + batch_size],
            strength=strength,
            guidance=guidance,
            num_inference_steps=num_inference_steps,
            generator=generator,
            output_type="pt",
            search_strengths=search_strengths,
            max_strength=max_strength,
            mask_image=mask_image,
        )
        counterfactuals.append(out.images.cpu().float() * 2 - 1)
        strengths.append(out.strengths)
        probs_after.append(out.counterfactual_probs)
        probs_before.append(out.original_probs)
    counterfactual = torch.cat(counterfactuals)
    real_images = images if real_images is None else real_images
    real_labels = labels if real_labels is None else real_labels
    results = compute_counterfactual_metrics(
        x,
        counterfactual,
        targets,
        model_probs_after=torch.cat(probs_after),
        reference_probs_after=reference_model.predict_proba(counterfactual),
        counterfactual_features=reference_model.extract_features(counterfactual),
        real_features=reference_model.extract_features(real_images),
        real_labels=real_labels,
        model_probs_before=torch.cat(probs_before),
        problem_type=unet.config.problem_type,
        change_threshold=change_threshold,
    )
    results["already_target_reference"] = conditional_accuracy(
        targets, reference_model.predict_proba(x), unet.config.problem_type
    )
    results.update(
        {
            "strength": strength,
            "guidance": guidance.to_dict(),
            "num_inference_steps": num_inference_steps,
            "search_strengths": list(search_strengths) if not isinstance(search_strengths, bool) else search_strengths,
            "max_strength": max_strength,
            "mask_image": mask_image,
            "mean_strength": float(torch.cat(strengths).mean()),
        }
    )
    return results
