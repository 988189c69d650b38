# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Judge a trained model's class-guided samples with a reference network trained on the same real images."""

from __future__ import annotations

import os

import datasets
from diffusers import AutoencoderKL, DDIMScheduler, SchedulerMixin

from ..data.transforms import ImagePreprocessor
from ..models.unet_2d_joint import JointUNet2DModel
from ..pipelines import JointDiffusionPipeline
from .pipeline_evaluation import evaluate_generation
from .predict import dataset_to_tensors
from .reference_network import train_reference_classifier


def evaluate_generation_with_reference(
    unet: JointUNet2DModel,
    noise_scheduler: SchedulerMixin,
    train_dataset: datasets.Dataset,
    eval_dataset: datasets.Dataset,
    preprocessor: ImagePreprocessor,
    *,
    num_classes: int,
    problem_type: str,
    label_names: list[str],
    num_generated: int = 500,
    guidance_scale: float | None = None,
    seed: int = 0,
    reference_dir: str | os.PathLike | None = None,
    vae: AutoencoderKL | None = None,
    pixel_channels: int | None = None,
) -> dict:
    """
    Train an independent [`ReferenceClassifier`] on every real label of `train_dataset` (saved to `reference_dir`),
    then measure `num_generated` class-guided samples (DDIM, 50 steps, eta 1) against `eval_dataset` with
    [`evaluate_generation`]: Frechet distance, KID, precision / recall and conditional accuracy.

    For a latent model pass its `vae` (and `pixel_channels`, see [`JointDiffusionPipeline`]): the samples are decoded,
    and `preprocessor` must give images at the VAE's size, which the reference network is trained and judges on.
    """
    train_images, train_labels = dataset_to_tensors(train_dataset, preprocessor)
    eval_images, eval_labels = dataset_to_tensors(eval_dataset, preprocessor)
    reference = train_reference_classifier(
        train_images, train_labels, num_classes, problem_type, label_names, seed=seed
    )
    if reference_dir is not None:
        reference.save_pretrained(reference_dir)
    pipeline = JointDiffusionPipeline(
        unet=unet.eval(),
        scheduler=DDIMScheduler.from_config(noise_scheduler.config),
        vae=vae,
        pixel_channels=pixel_channels,
    )
    pipeline.set_progress_bar_config(disable=True)
    return evaluate_generation(
        pipeline,
        eval_images,
        reference,
        num_generated=num_generated,
        num_inference_steps=min(50, noise_scheduler.config.num_train_timesteps),
        guidance_scale=guidance_scale,
        real_labels=eval_labels,
        seed=seed,
        eta=1.0,  # deterministic 50-step DDIM left grainy backgrounds on 28 px models (docs/experiments/generation.md)
    )
