# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""FixMatch-style weak and strong augmentations in plain torch, on image tensors in [-1, 1]."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.utils import logging

logger = logging.get_logger(__name__)


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def _as_batch(images: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if images.ndim == 3:
        return images[None], True
    if images.ndim == 4:
        return images, False
    raise ValueError(
        f"Expected an image tensor of shape (C, H, W) or (B, C, H, W) in [-1, 1], got shape {tuple(images.shape)}."
    )


def _translate_reflect(image: torch.Tensor, max_fraction: float, generator: torch.Generator | None) -> torch.Tensor:
    """Shift a `(C, H, W)` image by up to `max_fraction` of its size, filling the border by reflection."""
    height, width = image.shape[-2:]
    pad_h = min(int(math.ceil(max_fraction * height)), height - 1)
    pad_w = min(int(math.ceil(max_fraction * width)), width - 1)
    if pad_h == 0 and pad_w == 0:
        return image
    padded = F.pad(image[None], (pad_w, pad_w, pad_h, pad_h), mode="reflect")[0]
    top = int(torch.randint(0, 2 * pad_h + 1, (), generator=generator))
    left = int(torch.randint(0, 2 * pad_w + 1, (), generator=generator))
    return padded[:, top : top + height, left : left + width]


def weak_augment(
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    random_flip: bool = True,
    max_translation: float = 0.125,
) -> torch.Tensor:
    """
    FixMatch's weak augmentation: an optional random horizontal flip and a random translation with reflect padding.

    Args:
        images (`torch.Tensor`):
            One image `(C, H, W)` or a batch `(B, C, H, W)` in [-1, 1].
        generator (`torch.Generator`, *optional*):
            Source of randomness, for reproducible views.
        random_flip (`bool`, *optional*, defaults to `True`):
            Flip horizontally with probability 0.5 (turn off when laterality matters, e.g. chest X-rays).
        max_translation (`float`, *optional*, defaults to 0.125):
            Largest shift, as a fraction of the height and width.

    Returns:
        `torch.Tensor`: The augmented images, same shape as `images`.
    """
    batch, single = _as_batch(images)
    out = []
    for image in batch:
        if random_flip and torch.rand((), generator=generator).item() < 0.5:
            image = image.flip(-1)
        out.append(_translate_reflect(image, max_translation, generator))
    result = torch.stack(out)
    return result[0] if single else result


# The operations below work on a single `(C, H, W)` image with values in [0, 1].


def _grayscale(image: torch.Tensor) -> torch.Tensor:
    if image.shape[0] == 3:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype, device=image.device)
        return (image * weights[:, None, None]).sum(0, keepdim=True)
    return image.mean(0, keepdim=True)


def _blend(image: torch.Tensor, other: torch.Tensor, factor: float) -> torch.Tensor:
    return (other + factor * (image - other)).clamp(0, 1)


def _autocontrast(image: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    low = image.amin(dim=(-2, -1), keepdim=True)
    high = image.amax(dim=(-2, -1), keepdim=True)
    scale = torch.where(high > low, 1.0 / (high - low).clamp_min(1e-6), torch.ones_like(high))
    low = torch.where(high > low, low, torch.zeros_like(low))
    return ((image - low) * scale).clamp(0, 1)


def _brightness(image: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return _blend(image, torch.zeros_like(image), _uniform(0.05, 1.95, generator))


def _contrast(image: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    mean = _grayscale(image).mean()
    return _blend(image, torch.full_like(image, mean.item()), _uniform(0.05, 1.95, generator))


def _sharpness(image: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    if min(image.shape[-2:]) < 3:
        return image
    kernel = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]], dtype=image.dtype) / 13
    kernel = kernel.to(image.device).expand(image.shape[0], 1, 3, 3)
    blurred = F.conv2d(F.pad(image[None], (1, 1, 1, 1), mode="replicate"), kernel, groups=image.shape[0])[0]
    return _blend(image, blurred, _uniform(0.05, 1.95, generator))


def _posterize(image: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    bits = int(torch.randint(4, 9, (), generator=generator))
    levels = 2**bits
    return torch.floor(image * 255 / (256 // levels)) * (256 // levels) / 255


def _solarize(image: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    threshold = _uniform(0.5, 1.0, generator)
    return torch.where(image >= threshold, 1 - image, image)


def _equalize(image: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Histogram equalisation per channel, via the rank of each pixel (ties share their lowest rank)."""
    channels, height, width = image.shape
    flat = (image * 255).round().reshape(channels, -1)
    out = torch.empty_like(flat)
    for c in range(channels):
        values, inverse, counts = torch.unique(flat[c], return_inverse=True, return_counts=True)
        if len(values) == 1:
            out[c] = flat[c]
            continue
        cdf = torch.cumsum(counts, 0).to(image.dtype)
        cdf_min = cdf[0]
        out[c] = ((cdf[inverse] - cdf_min) / (flat.shape[1] - cdf_min).clamp_min(1)) * 255
    return (out / 255).reshape(channels, height, width).clamp(0, 1)


def _affine(image: torch.Tensor, matrix: list[list[float]]) -> torch.Tensor:
    """Apply a 2x3 affine map given in normalised coordinates; the area brought in is black."""
    theta = torch.tensor(matrix, dtype=image.dtype, device=image.device)[None]
    grid = F.affine_grid(theta, [1, *image.shape], align_corners=False)
    return F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]


def _rotate(image: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    angle = math.radians(_uniform(-30.0, 30.0, generator))
    cos, sin = math.cos(angle), math.sin(angle)
    return _affine(image, [[cos, -sin, 0.0], [sin, cos, 0.0]])


def _shear(image: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    amount = _uniform(-0.3, 0.3, generator)
    if torch.rand((), generator=generator).item() < 0.5:
        return _affine(image, [[1.0, amount, 0.0], [0.0, 1.0, 0.0]])
    return _affine(image, [[1.0, 0.0, 0.0], [amount, 1.0, 0.0]])


def _translate(image: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    # Normalised coordinates span 2 units, so a shift of 0.3 of the size is 0.6.
    amount = _uniform(-0.6, 0.6, generator)
    if torch.rand((), generator=generator).item() < 0.5:
        return _affine(image, [[1.0, 0.0, amount], [0.0, 1.0, 0.0]])
    return _affine(image, [[1.0, 0.0, 0.0], [0.0, 1.0, amount]])


STRONG_OPS = {
    "autocontrast": _autocontrast,
    "brightness": _brightness,
    "contrast": _contrast,
    "sharpness": _sharpness,
    "posterize": _posterize,
    "solarize": _solarize,
    "equalize": _equalize,
    "rotate": _rotate,
    "shear": _shear,
    "translate": _translate,
}


def _cutout(image: torch.Tensor, max_fraction: float, generator: torch.Generator | None) -> torch.Tensor:
    """Fill a random square of side up to `max_fraction` of the smaller image side with mid-grey."""
    height, width = image.shape[-2:]
    side = max(1, int(round(_uniform(0.0, max_fraction, generator) * min(height, width))))
    center_y = int(torch.randint(0, height, (), generator=generator))
    center_x = int(torch.randint(0, width, (), generator=generator))
    top, left = max(0, center_y - side // 2), max(0, center_x - side // 2)
    image = image.clone()
    image[:, top : top + side, left : left + side] = 0.5
    return image


def strong_augment(
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    random_flip: bool = True,
    max_translation: float = 0.125,
    num_ops: int = 2,
    cutout_fraction: float = 0.5,
) -> torch.Tensor:
    """
    FixMatch's strong augmentation: the weak augmentation, then `num_ops` operations drawn at random (with random
    magnitudes, as in RandAugment) from autocontrast, brightness, contrast, sharpness, posterize, solarize, equalize,
    rotate, shear and translate, then cutout.

    Args:
        images (`torch.Tensor`):
            One image `(C, H, W)` or a batch `(B, C, H, W)` in [-1, 1].
        generator (`torch.Generator`, *optional*):
            Source of randomness, for reproducible views.
        random_flip (`bool`, *optional*, defaults to `True`):
            Whether the weak part flips horizontally with probability 0.5.
        max_translation (`float`, *optional*, defaults to 0.125):
            Largest shift of the weak part, as a fraction of the height and width.
        num_ops (`int`, *optional*, defaults to 2):
            Number of random operations applied to each image.
        cutout_fraction (`float`, *optional*, defaults to 0.5):
            Largest side of the cutout square, as a fraction of the smaller image side (0 disables cutout).

    Returns:
        `torch.Tensor`: The augmented images in [-1, 1], same shape as `images`.
    """
    if num_ops < 0:
        raise ValueError(f"Expected `num_ops` >= 0, got {num_ops}.")
    batch, single = _as_batch(images)
    batch = weak_augment(batch, generator=generator, random_flip=random_flip, max_translation=max_translation)
    ops = list(STRONG_OPS.values())
    out = []
    for image in batch:
        image = ((image.float() + 1) / 2).clamp(0, 1)
        for index in torch.randint(0, len(ops), (num_ops,), generator=generator).tolist():
            image = ops[index](image, generator).clamp(0, 1)
        if cutout_fraction > 0:
            image = _cutout(image, cutout_fraction, generator)
        out.append(image * 2 - 1)
    result = torch.stack(out).to(images.dtype)
    return result[0] if single else result


def augment_batch(
    pixel_values: torch.Tensor,
    random_flip: bool = False,
    fixmatch: bool = False,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """
    The random part of a training batch, drawn after collation: horizontal flips, then FixMatch's weak and strong views
    of the (flipped) images.

    The training script calls this in its loop, right after seeding the step, instead of flipping and augmenting in
    the data loader: every random draw of a step then depends only on the step's seed, so a run resumed from a
    checkpoint sees exactly the batches the uninterrupted run saw (the loader fetches ahead, and its workers have their
    own random state).

    Args:
        pixel_values (`torch.Tensor` of shape `(B, C, H, W)`):
            Collated images in [-1, 1].
        random_flip (`bool`, *optional*, defaults to `False`):
            Flip each image horizontally with probability 0.5 (and let the FixMatch views flip too).
        fixmatch (`bool`, *optional*, defaults to `False`):
            Also return `"weak_pixel_values"` and `"strong_pixel_values"` ([`weak_augment`], [`strong_augment`]).
        generator (`torch.Generator`, *optional*):
            Source of randomness, on the device of `pixel_values`; the global generator by default.

    Returns:
        `dict[str, torch.Tensor]`: `"pixel_values"` and, with `fixmatch=True`, the two views, each shaped like
        `pixel_values`.
    """
    if pixel_values.ndim != 4:
        raise ValueError(f"Expected a batch of shape (B, C, H, W), got shape {tuple(pixel_values.shape)}.")
    if random_flip:
        flip = torch.rand(len(pixel_values), generator=generator, device=pixel_values.device) < 0.5
        pixel_values = torch.where(flip[:, None, None, None], pixel_values.flip(-1), pixel_values)
    out = {"pixel_values": pixel_values}
    if fixmatch:
        out["weak_pixel_values"] = weak_augment(pixel_values, generator=generator, random_flip=random_flip)
        out["strong_pixel_values"] = strong_augment(pixel_values, generator=generator, random_flip=random_flip)
    return out
