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
            Group-norm groups; defaults to the largest of 32, 16, 8, 4, 2, 1 that divides every level's channels.
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
        norm_num_groups = next(g for g in (32, 16, 8, 4, 2, 1) if all(c % g == 0 for c in channels))
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
