# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Image preprocessing in plain torch (no torchvision): the same code path for training and for pipelines."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

ImageInput = PIL.Image.Image | np.ndarray | torch.Tensor


def image_to_tensor(image: ImageInput, num_channels: int) -> torch.Tensor:
    """
    Convert one image to a float tensor `(num_channels, H, W)` in [0, 1].

    Accepts a PIL image (any mode), a `uint8` numpy array `(H, W)` / `(H, W, C)` with values 0-255, a float numpy
    array in [0, 1], or a tensor `(C, H, W)` / `(H, W)` already in [0, 1]. Grayscale is repeated to 3 channels and
    colour is averaged to 1 channel when `num_channels` asks for it.
    """
    if isinstance(image, PIL.Image.Image):
        mode = "L" if num_channels == 1 else "RGB"
        array = np.asarray(image.convert(mode), dtype=np.float32) / 255.0
        tensor = torch.from_numpy(array.copy())
        tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    elif isinstance(image, np.ndarray):
        array = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    elif torch.is_tensor(image):
        tensor = image.float()
        if tensor.ndim == 2:
            tensor = tensor[None]
    else:
        raise ValueError(f"Unsupported image type {type(image).__name__}: pass a PIL image, numpy array or tensor.")
    if tensor.ndim != 3:
        raise ValueError(
            f"Expected a single image of shape (H, W) or (H, W, C) / (C, H, W), got {tuple(tensor.shape)}."
        )
    channels = tensor.shape[0]
    if channels == num_channels:
        return tensor
    if channels == 1:
        return tensor.expand(num_channels, -1, -1).clone()
    if num_channels == 1 and channels in (3, 4):
        return tensor[:3].mean(dim=0, keepdim=True)
    if channels == 4 and num_channels == 3:
        return tensor[:3]
    raise ValueError(f"Cannot convert an image with {channels} channels to the model's {num_channels} channels.")


def resize(tensor: torch.Tensor, resolution: int | tuple[int, int]) -> torch.Tensor:
    """Resize `(C, H, W)` or `(B, C, H, W)` to `resolution` with antialiased bilinear interpolation."""
    size = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    if tuple(tensor.shape[-2:]) == size:
        return tensor
    batched = tensor if tensor.ndim == 4 else tensor[None]
    out = F.interpolate(batched, size=size, mode="bilinear", align_corners=False, antialias=True)
    return out if tensor.ndim == 4 else out[0]


class ImagePreprocessor:
    """
    Turn images into model inputs: `(C, H, W)` float tensors in [-1, 1] at a fixed resolution.

    Args:
        resolution (`int` or `tuple[int, int]`):
            Output height and width.
        num_channels (`int`):
            Output channels (1 for grayscale models, 3 for RGB).
        random_flip (`bool`, *optional*, defaults to `False`):
            Flip horizontally with probability 0.5 (training only: leave off for medical images whose laterality
            matters, such as chest X-rays).
    """

    def __init__(self, resolution: int | tuple[int, int], num_channels: int, random_flip: bool = False):
        self.resolution = resolution
        self.num_channels = num_channels
        self.random_flip = random_flip

    def __call__(self, image: ImageInput, generator: torch.Generator | None = None) -> torch.Tensor:
        tensor = resize(image_to_tensor(image, self.num_channels), self.resolution).clamp(0, 1)
        if self.random_flip and torch.rand((), generator=generator).item() < 0.5:
            tensor = tensor.flip(-1)
        return tensor * 2 - 1

    def batch(self, images: ImageInput | Sequence[ImageInput]) -> torch.Tensor:
        """
        Preprocess a batch: a list of images, or a 4-D array / tensor. A 4-D float tensor with values below 0 is taken
        as already in [-1, 1] and is only resized.
        """
        if torch.is_tensor(images) and images.ndim == 4:
            tensor = images.float()
            if tensor.min() < 0:
                return resize(tensor, self.resolution)
            return torch.stack([self(img) for img in tensor])
        if isinstance(images, np.ndarray) and images.ndim == 4:
            images = list(images)
        elif not isinstance(images, (list, tuple)):
            images = [images]
        if len(images) == 0:
            raise ValueError("Got an empty list of images.")
        return torch.stack([self(img) for img in images])


def tensor_to_pil(images: torch.Tensor) -> list[PIL.Image.Image]:
    """Convert a `(B, C, H, W)` tensor in [-1, 1] to PIL images (mode `L` for one channel, `RGB` for three)."""
    array = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    array = array.permute(0, 2, 3, 1).numpy()
    if array.shape[-1] == 1:
        return [PIL.Image.fromarray(a[..., 0], mode="L") for a in array]
    return [PIL.Image.fromarray(a) for a in array]
