# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Small default UNet architectures, sized to the image resolution (CPU-friendly at 8-32 px)."""

from __future__ import annotations

from collections.abc import Sequence


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
    brightness, and a 28 px MNIST model then drew grey backgrounds (0.25 of samples dark against 0.94 with 8 groups,
    docs/benchmarks.md).
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
