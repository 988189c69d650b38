# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""A labelled grid of class-guided samples, one row per class: what a training run shows of its generator."""

from __future__ import annotations

import PIL.Image
import torch
from diffusers import AutoencoderKL, DDPMScheduler, SchedulerMixin

from ..models import JointUNet2DModel
from .image_grid import labelled_image_grid
from .pipeline_joint_diffusion import JointDiffusionPipeline


@torch.no_grad()
def class_sample_grid(
    unet: JointUNet2DModel,
    noise_scheduler: SchedulerMixin,
    samples_per_class: int = 8,
    num_inference_steps: int = 250,
    seed: int = 0,
    guidance_scale: float | None = None,
    vae: AutoencoderKL | None = None,
    pixel_channels: int | None = None,
) -> PIL.Image.Image:
    """
    `samples_per_class` class-guided samples of every class (DDPM with `noise_scheduler`'s training schedule,
    seeded), one row per class labelled with its name; multi-label models sample unconditionally, rows unnamed.
    `unet` is put in eval mode for sampling and back in the mode it was in. A latent model's samples are decoded by
    its `vae` (and `pixel_channels`, see [`JointDiffusionPipeline`]).
    """
    scheduler = DDPMScheduler.from_config(noise_scheduler.config)
    pipeline = JointDiffusionPipeline(unet=unet, scheduler=scheduler, vae=vae, pixel_channels=pixel_channels)
    pipeline.set_progress_bar_config(disable=True)
    num_classes = unet.config.num_classes
    class_labels = None
    if not unet.is_multi_label:
        class_labels = [c for c in range(num_classes) for _ in range(samples_per_class)]
    was_training = unet.training
    unet.eval()
    images = pipeline(
        batch_size=num_classes * samples_per_class,
        class_labels=class_labels,
        num_inference_steps=num_inference_steps,
        generator=torch.Generator(device="cpu").manual_seed(seed),
        output_type="pil",
        guidance_scale=guidance_scale,  # None: the pipeline's default
    ).images
    unet.train(was_training)
    row_labels = None if unet.is_multi_label else [unet.id2label[c] for c in range(num_classes)]
    return labelled_image_grid(images, rows=num_classes, row_labels=row_labels)
