# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
The tiny untrained models the tests build: 8x8 one-channel images, two levels of 8 and 16 channels, no attention; and
for latent pipelines a tiny VAE (16x16 images, 8x8 latents of 4 channels) with a UNet on its latents.
"""

import torch
from diffusers import AutoencoderKL, DDPMScheduler, SchedulerMixin

from diffusers_joint import JointDiffusionPipeline, JointUNet2DModel


def tiny_joint_unet(num_classes: int = 10, seed: int | None = 0, **overrides) -> JointUNet2DModel:
    """A seeded tiny `JointUNet2DModel` (pooled features: 8 + 16 + 16 = 40); `overrides` replace any argument."""
    if seed is not None:
        torch.manual_seed(seed)
    kwargs = dict(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        layers_per_block=1,
        norm_num_groups=4,
        num_classes=num_classes,
        classifier_hidden_dims=(16,),
    )
    return JointUNet2DModel(**{**kwargs, **overrides})


def tiny_joint_pipeline(
    num_classes: int = 10, scheduler: SchedulerMixin | None = None, **overrides
) -> JointDiffusionPipeline:
    """A tiny pipeline in eval mode without progress bars; DDPM with 20 training steps unless `scheduler` is given."""
    unet = tiny_joint_unet(num_classes, **overrides).eval()
    pipe = JointDiffusionPipeline(unet=unet, scheduler=scheduler or DDPMScheduler(num_train_timesteps=20))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_vae(channels: int = 1, seed: int | None = 0, **overrides) -> AutoencoderKL:
    """
    A seeded tiny `AutoencoderKL` in eval mode: `channels`-channel 16x16 images, two levels (f2), 4 latent channels,
    so 8x8 latents; `overrides` replace any argument.
    """
    if seed is not None:
        torch.manual_seed(seed)
    kwargs = dict(
        in_channels=channels,
        out_channels=channels,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        latent_channels=4,
        norm_num_groups=4,
        sample_size=16,
    )
    return AutoencoderKL(**{**kwargs, **overrides}).eval()


def tiny_latent_unet(num_classes: int = 10, seed: int | None = 0, **overrides) -> JointUNet2DModel:
    """A seeded tiny `JointUNet2DModel` on [`tiny_vae`]'s latents: 4 channels at 8x8."""
    return tiny_joint_unet(num_classes, seed=seed, **{"in_channels": 4, "out_channels": 4, **overrides})
