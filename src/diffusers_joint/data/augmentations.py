# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Augmentation of the classifier's input (and FixMatch's weak and strong views) with kornia, on [-1, 1] tensors."""

from __future__ import annotations

import kornia
import kornia.augmentation as K
import torch
import torch.nn as nn
from diffusers.utils import logging
from kornia.augmentation.auto import RandAugment
from packaging.version import Version

logger = logging.get_logger(__name__)

# Geometry (shift as a fraction of the size, rotation in degrees, scale range) and intensity (brightness, contrast
# and gamma factors) of each strength. No horizontal flip: chest X-rays and digits are lateralised.
CLASSIFIER_AUGMENTATIONS = {
    "none": None,
    "light": dict(translate=0.07, degrees=5.0, scale=(0.95, 1.05), intensity=0.0),
    "medium": dict(translate=0.1, degrees=10.0, scale=(0.9, 1.1), intensity=0.1),
    "strong": dict(translate=0.15, degrees=15.0, scale=(0.85, 1.15), intensity=0.2),
}

# RandAugment's operations that mean the same on grayscale images as on colour ones (kornia's default policy less
# `color` and `invert`), with RandAugment's magnitude ranges.
GRAYSCALE_RANDAUGMENT_POLICY = [
    [("auto_contrast", 0, 1)],
    [("equalize", 0, 1)],
    [("rotate", -30.0, 30.0)],
    [("posterize", 4.0, 8.0)],
    [("solarize", 0.0, 1.0)],
    [("contrast", 0.1, 1.9)],
    [("brightness", 0.1, 1.9)],
    [("sharpness", 0.1, 1.9)],
    [("shear_x", -0.3, 0.3)],
    [("shear_y", -0.3, 0.3)],
    [("translate_x", -0.1, 0.1)],
    [("translate_y", -0.1, 0.1)],
]


# FixMatch's cutout: the erased share of the image and the rectangle's aspect ratios.
CUTOUT = dict(scale=(0.02, 0.25), ratio=(0.5, 2.0), p=1.0)

# The first kornia whose RandAugment shears, brightens and contrasts as PIL (and so FixMatch) does.
PIL_RANDAUGMENT_KORNIA = Version("0.9.2")


def _strength_settings(strength: str) -> dict | None:
    if strength not in CLASSIFIER_AUGMENTATIONS:
        raise ValueError(
            f"Unknown augmentation strength {strength!r}: expected one of {list(CLASSIFIER_AUGMENTATIONS)}."
        )
    return CLASSIFIER_AUGMENTATIONS[strength]


def _random_affine(settings: dict) -> nn.Module:
    """The random shift, rotation and scale of a strength's settings, border values repeated."""
    shift = settings["translate"]
    return K.RandomAffine(
        degrees=settings["degrees"], translate=(shift, shift), scale=settings["scale"], padding_mode="border", p=1.0
    )


class _UnitRange(nn.Module):
    """Run kornia augmentations (which expect [0, 1]) on images in [-1, 1]."""

    def __init__(self, *augmentations: nn.Module):
        super().__init__()
        self.augmentations = nn.Sequential(*augmentations)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4:
            raise ValueError(f"Expected a batch of shape (B, C, H, W) in [-1, 1], got shape {tuple(images.shape)}.")
        out = self.augmentations(((images.float() + 1) / 2).clamp(0, 1))
        return (out * 2 - 1).to(images.dtype)


def classifier_augmentation(strength: str = "medium", random_flip: bool = False) -> nn.Module:
    """
    The augmentation of the images the classifier sees during training: a random affine map (shift, rotation, scale,
    border pixels repeated), and for `"medium"` and `"strong"` random brightness, contrast and gamma, each applied with
    probability 0.5. The diffusion loss never sees it.

    Args:
        strength (`str`, *optional*, defaults to `"medium"`):
            One of `"none"` (identity), `"light"` (shift ±7 %, rotation ±5°, scale 0.95-1.05), `"medium"` (±10 %,
            ±10°, 0.9-1.1, intensity factors ±10 %) or `"strong"` (±15 %, ±15°, 0.85-1.15, ±20 %).
        random_flip (`bool`, *optional*, defaults to `False`):
            Also flip horizontally with probability 0.5 (not for lateralised images such as chest X-rays or digits).

    Returns:
        `nn.Module`: maps a batch `(B, C, H, W)` in [-1, 1] to an augmented batch of the same shape, in [-1, 1]. It
        draws from torch's global random generator: seed it (`torch.manual_seed`) for reproducible views.

    Example:

    ```py
    >>> import torch
    >>> from diffusers_joint.data import classifier_augmentation

    >>> augment = classifier_augmentation("medium")
    >>> augment(torch.rand(4, 1, 28, 28) * 2 - 1).shape
    torch.Size([4, 1, 28, 28])
    ```
    """
    settings = _strength_settings(strength)
    ops: list[nn.Module] = [K.RandomHorizontalFlip(p=0.5)] if random_flip else []
    if settings is not None:
        factor = settings["intensity"]
        ops.append(_random_affine(settings))
        if factor > 0:
            ops += [
                K.RandomBrightness((1 - factor, 1 + factor), p=0.5),
                K.RandomContrast((1 - factor, 1 + factor), p=0.5),
                K.RandomGamma((1 - factor, 1 / (1 - factor)), p=0.5),
            ]
    return _UnitRange(*ops)


def latent_augmentation(strength: str = "medium") -> nn.Module:
    """
    The classifier's augmentation for latents (`train_joint.py --cache_latents`): the random affine map of
    [`classifier_augmentation`] at `strength`, applied to the latents as they are (no range, border values repeated).
    Its brightness, contrast and gamma have no meaning on latents and are left out.

    Returns:
        `nn.Module`: maps latents `(B, C, h, w)` to augmented latents of the same shape (the identity for `"none"`).
    """
    settings = _strength_settings(strength)
    return nn.Identity() if settings is None else _random_affine(settings)


def strong_latent_augmentation() -> nn.Module:
    """
    FixMatch's strong view of latents (`train_joint.py --cache_latents`): [`latent_augmentation`] at `"strong"`, then
    cutout (kornia's `RandomErasing`) to 0, the scaled latents' mean. RandAugment's intensity operations have no
    meaning on latents and are left out.
    """
    return nn.Sequential(latent_augmentation("strong"), K.RandomErasing(value=0.0, **CUTOUT))


def strong_augmentation(
    num_channels: int, strength: str = "medium", random_flip: bool = False, num_ops: int = 2, magnitude: int = 10
) -> nn.Module:
    """
    FixMatch's strong view: [`classifier_augmentation`], then kornia's RandAugment (`num_ops` operations at
    `magnitude`, colour operations only for 3-channel images), then cutout (kornia's `RandomErasing`).

    RandAugment's shear, brightness and contrast follow PIL's definitions, as in FixMatch, from kornia 0.9.2 on;
    older kornia shears three times as far and shifts brightness additively, and a warning says so.

    Args:
        num_channels (`int`):
            Image channels; grayscale images use [`GRAYSCALE_RANDAUGMENT_POLICY`].
        strength (`str`, *optional*, defaults to `"medium"`):
            Strength of the classifier augmentation under it (at least its geometry is always applied).
        random_flip (`bool`, *optional*, defaults to `False`):
            Flip horizontally with probability 0.5.
        num_ops (`int`, *optional*, defaults to 2):
            RandAugment operations per image.
        magnitude (`int`, *optional*, defaults to 10):
            RandAugment magnitude, in (0, 30).
    """
    if Version(kornia.__version__) < PIL_RANDAUGMENT_KORNIA:
        logger.warning(
            f"kornia {kornia.__version__}'s RandAugment shears by the magnitude times 180 degrees (up to 54, against "
            "PIL's 17) and shifts brightness instead of scaling it, so FixMatch's strong views are harsher than the "
            "method's. kornia >= 0.9.2 uses PIL's definitions; runs of one seed differ between the two."
        )
    base = classifier_augmentation("light" if strength == "none" else strength, random_flip=random_flip)
    policy = None if num_channels == 3 else GRAYSCALE_RANDAUGMENT_POLICY
    rand_augment = RandAugment(n=num_ops, m=magnitude, policy=policy)
    cutout = K.RandomErasing(value=0.5, **CUTOUT)
    return nn.Sequential(base, _UnitRange(rand_augment, cutout))


def random_horizontal_flip(pixel_values: torch.Tensor) -> torch.Tensor:
    """Each image of a `(B, C, H, W)` batch flipped horizontally with probability 0.5 (torch's global generator)."""
    flip = torch.rand(len(pixel_values), device=pixel_values.device) < 0.5
    return torch.where(flip[:, None, None, None], pixel_values.flip(-1), pixel_values)


class JointAugmentation(nn.Module):
    """
    The random part of a training batch, drawn after collation: optional horizontal flips of every image (the diffusion
    input too), the classifier's augmented view, and with FixMatch a strong view.

    The training script calls it in its loop, right after seeding the step: every random draw of a step then depends
    only on the step's seed, so a run resumed from a checkpoint sees exactly the batches the uninterrupted run saw.

    Args:
        num_channels (`int`):
            Image channels.
        strength (`str`, *optional*, defaults to `"medium"`):
            Strength of [`classifier_augmentation`] for the classifier's view.
        random_flip (`bool`, *optional*, defaults to `False`):
            Flip each image horizontally with probability 0.5 (every view).
        fixmatch (`bool`, *optional*, defaults to `False`):
            Also return `"strong_pixel_values"`; the classifier's view serves as FixMatch's weak view.
        latent_space (`bool`, *optional*, defaults to `False`):
            The batches hold a VAE's latents, not images (`train_joint.py --cache_latents`): the classifier's view is
            [`latent_augmentation`], its geometry only, and FixMatch's strong view [`strong_latent_augmentation`].

    Returns (from `forward(pixel_values)`):
        `dict[str, torch.Tensor]`: `"pixel_values"` (the diffusion input, flipped when asked),
        `"classifier_pixel_values"` and, with `fixmatch=True`, `"weak_pixel_values"` (the same tensor as the
        classifier's view) and `"strong_pixel_values"`, each shaped like the input.
    """

    def __init__(
        self,
        num_channels: int,
        strength: str = "medium",
        random_flip: bool = False,
        fixmatch: bool = False,
        latent_space: bool = False,
    ):
        super().__init__()
        self.random_flip = random_flip
        if latent_space:
            self.classifier_view = latent_augmentation(strength)
            self.strong_view = strong_latent_augmentation() if fixmatch else None
        else:
            self.classifier_view = classifier_augmentation(strength)
            self.strong_view = strong_augmentation(num_channels, strength) if fixmatch else None

    def forward(self, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        if pixel_values.ndim != 4:
            raise ValueError(f"Expected a batch of shape (B, C, H, W), got shape {tuple(pixel_values.shape)}.")
        if self.random_flip:
            pixel_values = random_horizontal_flip(pixel_values)
        out = {"pixel_values": pixel_values, "classifier_pixel_values": self.classifier_view(pixel_values)}
        if self.strong_view is not None:
            out["weak_pixel_values"] = out["classifier_pixel_values"]
            out["strong_pixel_values"] = self.strong_view(pixel_values)
        return out
