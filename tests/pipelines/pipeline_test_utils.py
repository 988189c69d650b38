# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Helpers for the pipeline tests: tiny seeded Joint Diffusion models and the digits data."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import DDPMScheduler

from diffusers_joint import JointUNet2DModel

NUM_TRAIN_TIMESTEPS = 50


def make_unet(num_classes: int = 3, seed: int = 0, **kwargs) -> JointUNet2DModel:
    """An 8x8 grayscale joint model with a few thousand parameters."""
    torch.manual_seed(seed)
    config = {
        "sample_size": 8,
        "in_channels": 1,
        "out_channels": 1,
        "block_out_channels": (8, 16),
        "layers_per_block": 1,
        "norm_num_groups": 4,
        "down_block_types": ("DownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "UpBlock2D"),
        "num_classes": num_classes,
        "classifier_hidden_dims": (32,),
    }
    config.update(kwargs)
    return JointUNet2DModel(**config).eval()


def make_scheduler(cls=DDPMScheduler, **kwargs):
    # A cosine schedule reaches (almost) pure noise in few training timesteps.
    return cls(num_train_timesteps=NUM_TRAIN_TIMESTEPS, beta_schedule="squaredcos_cap_v2", **kwargs)


def load_digit_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's 8x8 digits as `(N, 1, 8, 8)` images in [-1, 1] and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None] * 2 - 1
    return images, torch.from_numpy(digits.target).long()


def record_guidance_calls(monkeypatch) -> list[tuple]:
    """
    Patch the guided step so that each call appends `(method, scale, augmentation, temperature, direction computed)`.
    """
    import diffusers_joint.pipelines.guidance as module

    calls = []
    original = module.guided_prediction_and_direction

    def record(unet, scheduler, sample, t, targets, scale, method, augmentation, views_generator, direction, **kwargs):
        calls.append((method, scale, augmentation, kwargs["guidance_temperature"], direction is None))
        return original(
            unet, scheduler, sample, t, targets, scale, method, augmentation, views_generator, direction, **kwargs
        )

    monkeypatch.setattr(module, "guided_prediction_and_direction", record)
    return calls
