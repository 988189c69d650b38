# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Where a counterfactual changed its input: the region and the share of pixels that carry most of the change, and heat
maps of the change laid over the input.
"""

from __future__ import annotations

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

# Share of the total absolute change whose pixels define the automatic edit region and the localisation figure.
CHANGE_MASS = 0.8


def _pixels_carrying(abs_difference: torch.Tensor, mass: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    Per image: the change per pixel (channels averaged, `(batch, 1, height, width)`), its values sorted largest first
    (`(batch, pixels)`), and how many of the largest carry `mass` of the total (`(batch,)`, 0 for an unchanged image).
    """
    if not 0 < mass <= 1:
        raise ValueError(f"`mass` must be in (0, 1], got {mass}.")
    values = abs_difference.detach().float().abs().mean(dim=1, keepdim=True)
    ordered = values.flatten(1).sort(dim=1, descending=True).values
    cumulative = ordered.cumsum(dim=1)
    total = cumulative[:, -1:]
    # The first index at which the cumulative change reaches the mass, counted as pixels (1-based).
    count = (cumulative < mass * total * (1 - 1e-6)).sum(dim=1) + 1
    return values, ordered, torch.where(total[:, 0] > 0, count, torch.zeros_like(count))


def change_localization(abs_difference: torch.Tensor, mass: float = CHANGE_MASS) -> torch.Tensor:
    """
    Share of the pixels that carry `mass` of each image's absolute change: the fewest pixels, largest changes first,
    whose summed change reaches `mass` of the total (channels averaged). 0 for an unchanged image.

    Args:
        abs_difference (`torch.Tensor` of shape `(batch, channels, height, width)`):
            Absolute differences.
        mass (`float`, *optional*, defaults to 0.8):
            Share of the total change, in (0, 1].

    Returns:
        `torch.Tensor` of shape `(batch,)`, in [0, 1].
    """
    _, ordered, count = _pixels_carrying(abs_difference, mass)
    return count.float() / ordered.shape[1]


def change_region(abs_difference: torch.Tensor, mass: float = CHANGE_MASS, dilation: int = 1) -> torch.Tensor:
    """
    The pixels that carry `mass` of each image's absolute change, grown by `dilation` pixels: a `(batch, 1, height,
    width)` mask of 0 and 1, all ones for an unchanged image (nothing tells where to edit).
    """
    values, ordered, count = _pixels_carrying(abs_difference, mass)
    threshold = ordered.gather(1, (count.clamp(min=1) - 1)[:, None])[:, :, None, None]
    region = (values >= threshold).float()
    if dilation > 0:
        region = F.max_pool2d(region, kernel_size=2 * dilation + 1, stride=1, padding=dilation)
    region[count == 0] = 1.0
    return region


def difference_heatmap(abs_difference: torch.Tensor | np.ndarray, normalize: bool = True) -> list[PIL.Image.Image]:
    """
    Render absolute differences as RGB heat maps with a "hot" colormap (black, red, yellow, white), in numpy.

    Args:
        abs_difference (`torch.Tensor` or `np.ndarray` of shape `(batch, channels, height, width)`):
            Absolute differences in [-1, 1] pixel units (values in [0, 2]); channels are averaged.
        normalize (`bool`, *optional*, defaults to `True`):
            Scale each map to its own maximum, so that the largest change is white. Otherwise the full range 2 maps to
            white, which keeps maps comparable across images.

    Returns:
        `list[PIL.Image.Image]`: one RGB image per input, at the input's height and width; blend it with the image
        (e.g. `PIL.Image.blend(image.convert("RGB"), heatmap, 0.5)`) to overlay.
    """
    values = abs_difference.detach().float().cpu().numpy() if torch.is_tensor(abs_difference) else abs_difference
    values = np.abs(np.asarray(values, dtype=np.float32)).mean(axis=1)
    if normalize:
        peak = values.reshape(len(values), -1).max(axis=1).reshape(-1, 1, 1)
        values = np.divide(values, peak, out=np.zeros_like(values), where=peak > 0)
    else:
        values = values / 2.0
    values = np.clip(values, 0.0, 1.0)
    rgb = np.stack([np.clip(3 * values - k, 0.0, 1.0) for k in range(3)], axis=-1)
    rgb = (rgb * 255).round().astype(np.uint8)
    return [PIL.Image.fromarray(m, mode="RGB") for m in rgb]


def overlay_heatmap(image: PIL.Image.Image, heatmap: PIL.Image.Image, opacity: float = 0.8) -> PIL.Image.Image:
    """
    Lay a [`difference_heatmap`] over the image it was computed on: each pixel mixes in the heat map in proportion to
    its heat (times `opacity`), so unchanged regions show the input as it is and changed ones glow red to white.

    Args:
        image (`PIL.Image.Image`):
            The input at the heat map's resolution (any mode; the model's view of it, e.g. `preprocess_images` turned
            back into an image); another size raises a `ValueError` rather than misaligning the two.
        heatmap (`PIL.Image.Image`):
            An RGB heat map of [`difference_heatmap`].
        opacity (`float`, *optional*, defaults to 0.8):
            Weight of the hottest pixels' colour, in [0, 1].

    Returns:
        `PIL.Image.Image`: an RGB image of the heat map's size.
    """
    if image.size != heatmap.size:
        raise ValueError(f"The image is {image.size} but the heat map {heatmap.size}: give both at the same size.")
    if not 0 <= opacity <= 1:
        raise ValueError(f"`opacity` must be in [0, 1], got {opacity}.")
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    heat = np.asarray(heatmap.convert("RGB"), dtype=np.float32)
    # The hot colormap's red channel rises first (see difference_heatmap), so it measures the heat of a pixel.
    weight = opacity * heat[..., :1] / 255.0
    return PIL.Image.fromarray(np.round(base * (1 - weight) + heat * weight).astype(np.uint8), mode="RGB")
