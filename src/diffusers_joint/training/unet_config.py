# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Small default UNet architectures, sized to the image resolution (CPU-friendly at 8-32 px)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..data.joint_dataset import JointDataset
from ..models import JointUNet2DModel


def default_block_out_channels(resolution: int) -> tuple[int, ...]:
    """Channels per resolution level: two levels for tiny images, more as images grow."""
    if resolution <= 16:
        return (32, 64)
    if resolution <= 32:
        return (32, 64, 64)
    if resolution <= 64:
        return (64, 128, 128, 256)
    return (128, 128, 256, 256, 512)


MIN_CHANNELS_PER_GROUP = 4


def default_norm_num_groups(block_out_channels: Sequence[int]) -> int:
    """
    The most group-norm groups (at most 32) that divide every level's channels with at least
    `MIN_CHANNELS_PER_GROUP` channels per group.

    One channel per group (32 groups over 32 channels) is instance normalisation: it removes each sample's overall
    brightness, and a 28 px MNIST model then drew grey backgrounds (docs/experiments/generation.md).
    """
    for groups in (32, 16, 8, 4, 2, 1):
        if all(c % groups == 0 and c // groups >= MIN_CHANNELS_PER_GROUP for c in block_out_channels):
            return groups
    return 1


def unet_kwargs(
    resolution: int,
    num_channels: int,
    block_out_channels: Sequence[int] | None = None,
    layers_per_block: int = 1,
    attention_levels: Sequence[int] | None = None,
    norm_num_groups: int | None = None,
    attention_head_dim: int = 8,
    dropout: float = 0.0,
) -> dict:
    """
    Keyword arguments for [`JointUNet2DModel`] / `UNet2DModel` at `resolution` with `num_channels` image channels.

    Args:
        resolution (`int`):
            Image height and width; must be a multiple of `2 ** (len(block_out_channels) - 1)`.
        num_channels (`int`):
            Image channels (in and out).
        block_out_channels (`Sequence[int]`, *optional*):
            Channels per level; defaults to [`default_block_out_channels`].
        layers_per_block (`int`, *optional*, defaults to 1):
            ResNet layers per down block (up blocks get one more, as in diffusers).
        attention_levels (`Sequence[int]`, *optional*):
            Indices of the levels that get self-attention; defaults to the lowest-resolution level only.
            Pass `[]` for none.
        norm_num_groups (`int`, *optional*):
            Group-norm groups; defaults to [`default_norm_num_groups`].
        attention_head_dim (`int`, *optional*, defaults to 8):
            Channels per attention head.
        dropout (`float`, *optional*, defaults to 0.0):
            Dropout inside the ResNet blocks.
    """
    channels = tuple(block_out_channels or default_block_out_channels(resolution))
    levels = len(channels)
    factor = 2 ** (levels - 1)
    if resolution % factor:
        raise ValueError(
            f"resolution={resolution} is not a multiple of {factor}, which {levels} levels of down-sampling need; "
            f"pick a resolution such as {factor * max(1, round(resolution / factor))} or fewer levels."
        )
    attention = set(range(levels - 1, levels) if attention_levels is None else attention_levels)
    if any(not 0 <= level < levels for level in attention):
        raise ValueError(f"attention_levels must lie in [0, {levels}), got {sorted(attention)}.")
    if norm_num_groups is None:
        norm_num_groups = default_norm_num_groups(channels)
    down = tuple("AttnDownBlock2D" if i in attention else "DownBlock2D" for i in range(levels))
    up = tuple("AttnUpBlock2D" if i in attention else "UpBlock2D" for i in reversed(range(levels)))
    return dict(
        sample_size=resolution,
        in_channels=num_channels,
        out_channels=num_channels,
        block_out_channels=channels,
        down_block_types=down,
        up_block_types=up,
        layers_per_block=layers_per_block,
        norm_num_groups=norm_num_groups,
        attention_head_dim=attention_head_dim,
        add_attention=bool(attention),
        dropout=dropout,
    )


def pick_resolution(image_size: Sequence[int], requested: int | None, levels: int) -> int:
    """`requested`, else the images' largest side, rounded up to a multiple of `2 ** (levels - 1)`."""
    factor = 2 ** (levels - 1)
    size = requested or max(image_size)
    return size if size % factor == 0 else factor * math.ceil(size / factor)


def create_joint_unet(
    dataset: JointDataset,
    *,
    pretrained_unet: str | None = None,
    resolution: int | None = None,
    block_out_channels: Sequence[int] | None = None,
    layers_per_block: int = 1,
    norm_num_groups: int | None = None,
    attention_levels: Sequence[int] | None = None,
    classifier_hidden_dims: Sequence[int] = (256,),
    classifier_dropout: float = 0.1,
    classifier_feature_stages: Sequence[int] | None = None,
    in_channels: int | None = None,
) -> JointUNet2DModel:
    """
    A [`JointUNet2DModel`] for `dataset`'s images and classes: from `pretrained_unet` (a `UNet2DModel` folder or Hub
    id, whose `sample_size` is kept) with a new classifier head, or a new one sized by [`unet_kwargs`] at
    `resolution` (default: the images' size, rounded up to what the levels need).

    `in_channels` replaces the images' channels: a latent UNet diffuses a VAE's `latent_channels` (its `resolution`
    is then the latents' size).

    Raises:
        ValueError: the pretrained UNet's `in_channels` differ from the images' channels (or `in_channels`).
    """
    num_channels, image_size = in_channels or dataset.num_channels, dataset.image_size
    head = dict(
        num_classes=dataset.num_classes,
        classifier_hidden_dims=tuple(classifier_hidden_dims),
        classifier_dropout=classifier_dropout,
        classifier_feature_stages=list(classifier_feature_stages) if classifier_feature_stages is not None else None,
        problem_type=dataset.problem_type,
        label_names=dataset.label_names,
    )
    if pretrained_unet:
        unet = JointUNet2DModel.from_unet(pretrained_unet, **head)
    else:
        levels = len(block_out_channels) if block_out_channels else None
        size = pick_resolution(image_size, resolution, levels or 2)
        if levels is None:
            levels = len(unet_kwargs(size, num_channels)["block_out_channels"])
            size = pick_resolution(image_size, resolution, levels)
        architecture = unet_kwargs(
            size,
            num_channels,
            block_out_channels=block_out_channels,
            layers_per_block=layers_per_block,
            norm_num_groups=norm_num_groups,
            attention_levels=attention_levels,
        )
        unet = JointUNet2DModel(**architecture, **head)
    if unet.config.in_channels != num_channels and in_channels is not None:
        raise ValueError(
            f"The UNet takes {unet.config.in_channels} channels but diffuses latents of {num_channels} channels: "
            "start from a UNet whose in_channels are the VAE's latent_channels."
        )
    if unet.config.in_channels != num_channels:
        raise ValueError(
            f"The model expects {unet.config.in_channels}-channel images but the data has {num_channels}-"
            "channel images: start from a UNet with matching in_channels, or convert the images."
        )
    return unet
