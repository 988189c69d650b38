# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Does a sample have the data's background? Border brightness of generated images against real ones."""

from __future__ import annotations

import torch


def border_means(images: torch.Tensor, width: int | None = None) -> torch.Tensor:
    """
    Mean value of the outer ring of `width` pixels of each image (all channels), shape `(N,)`.

    Args:
        images (`torch.Tensor` of shape `(N, C, H, W)`):
            Images, in any range (the package uses [-1, 1]).
        width (`int`, *optional*):
            Ring width in pixels; defaults to `max(1, min(H, W) // 10)` (2 pixels at 28 px, where MNIST digits leave a
            4-pixel margin).
    """
    if images.ndim != 4:
        raise ValueError(f"Expected images of shape (N, C, H, W), got shape {tuple(images.shape)}.")
    height, image_width = images.shape[-2:]
    width = max(1, min(height, image_width) // 10) if width is None else width
    if not 0 < 2 * width < min(height, image_width):
        raise ValueError(f"Expected a border width in [1, {(min(height, image_width) - 1) // 2}], got {width}.")
    mask = torch.ones(height, image_width, dtype=torch.bool, device=images.device)
    mask[width:-width, width:-width] = False
    return images.float()[..., mask].mean(dim=(1, 2))


def background_match_share(
    real_images: torch.Tensor, generated_images: torch.Tensor, tolerance: float = 0.1, width: int | None = None
) -> float:
    """
    Share of generated images whose border mean ([`border_means`]) lies within `tolerance` of the real images'
    average border mean: for MNIST in [-1, 1], the share of samples drawn on a black background rather than grey.
    """
    target = border_means(real_images, width).mean()
    return float(((border_means(generated_images, width) - target).abs() <= tolerance).float().mean())
