# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Image preprocessing in plain torch (no torchvision): the same code path for training and for pipelines."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

from .image_reading import ImageReadError, ValueRange, check_image_array, dtype_range, pil_to_array, read_image
from .intensity import IntensityNormalization

ImageInput = PIL.Image.Image | np.ndarray | torch.Tensor | str | os.PathLike


def image_to_array(
    image: PIL.Image.Image | np.ndarray | str | os.PathLike, apply_voi: bool = True, grayscale: bool = False
) -> tuple[np.ndarray, ValueRange]:
    """
    One image as an `(H, W, C)` array with its real values and nominal range (see [`~data.image_reading.read_image`]):
    a file path of any supported format, a PIL image (8-bit, 16-bit `I;16`, 32-bit `I` or float `F` grayscale, or
    RGB), or a numpy array `(H, W)` / `(H, W, 1)` / `(H, W, 3)` of any integer or float dtype. With `grayscale`, RGB
    PIL images and files are converted with PIL's luma.
    """
    if isinstance(image, (str, os.PathLike)):
        return read_image(image, apply_voi=apply_voi, grayscale=grayscale)
    if isinstance(image, PIL.Image.Image):
        return pil_to_array(image, grayscale=grayscale)
    if isinstance(image, np.ndarray):
        return check_image_array(image), dtype_range(image.dtype)
    raise ValueError(
        f"Unsupported image type {type(image).__name__}: pass a file path, a PIL image, a numpy array or a tensor."
    )


def _match_channels(tensor: torch.Tensor, num_channels: int) -> torch.Tensor:
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


def image_to_tensor(
    image: ImageInput, num_channels: int, normalization: IntensityNormalization | None = None
) -> torch.Tensor:
    """
    Convert one image to a float tensor `(num_channels, H, W)` in [0, 1].

    Accepts a file path (PNG, TIFF, JPEG, `.npy`, `.npz`, DICOM), a PIL image or a numpy array `(H, W)` / `(H, W, C)`
    of any integer or float dtype, whose intensities are mapped to [0, 1] by `normalization` (default: the dtype's
    range, so `uint8` / 255, `uint16` / 65535, float taken as [0, 1]); or a tensor `(C, H, W)` / `(H, W)` already in
    [0, 1]. Grayscale is repeated to 3 channels when `num_channels` asks for it; colour becomes 1 channel with PIL's
    luma (PIL images and files) or the channels' mean (arrays and tensors). RGBA, palette images and arrays that are
    not one 2-D image raise a `ValueError` saying what was found.
    """
    if torch.is_tensor(image):
        tensor = image.float()
        if tensor.ndim == 2:
            tensor = tensor[None]
        if tensor.ndim != 3:
            raise ValueError(
                f"Expected a single image of shape (H, W) or (H, W, C) / (C, H, W), got {tuple(tensor.shape)}."
            )
        return _match_channels(tensor, num_channels)
    normalization = normalization or IntensityNormalization()
    try:
        # PIL's own RGB -> L conversion for PIL images and files, as before 16-bit support: same inputs, same tensors
        array, nominal_range = image_to_array(
            image, apply_voi=normalization.applies_file_voi, grayscale=num_channels == 1
        )
        array = normalization(array, nominal_range)
    except ImageReadError:
        raise
    except ValueError as error:
        if isinstance(image, (str, os.PathLike)):
            raise ImageReadError(os.fspath(image), str(error)) from error
        raise ValueError(f"Cannot use the {type(image).__name__} image: {error}.") from error
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)
    return _match_channels(tensor, num_channels)


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
        normalization ([`~data.intensity.IntensityNormalization`], *optional*):
            How intensities map to [0, 1]; defaults to the dtype's range (`uint8` / 255, `uint16` / 65535, ...).
    """

    def __init__(
        self,
        resolution: int | tuple[int, int],
        num_channels: int,
        random_flip: bool = False,
        normalization: IntensityNormalization | None = None,
    ):
        self.resolution = resolution
        self.num_channels = num_channels
        self.random_flip = random_flip
        self.normalization = normalization or IntensityNormalization()

    def __call__(self, image: ImageInput, generator: torch.Generator | None = None) -> torch.Tensor:
        tensor = image_to_tensor(image, self.num_channels, self.normalization)
        tensor = resize(tensor, self.resolution).clamp(0, 1)
        if self.random_flip and torch.rand((), generator=generator).item() < 0.5:
            tensor = tensor.flip(-1)
        return tensor * 2 - 1

    def batch(self, images: ImageInput | Sequence[ImageInput]) -> torch.Tensor:
        """
        Preprocess a batch: a list of images, or a 4-D array / tensor (one image per row). Tensors are read together:
        when any of them has values below 0, they are all taken as already in [-1, 1] and are only resized and given
        the output channels, otherwise as [0, 1]; so a list of tensors gives the inputs of the batch it stacks into.
        """
        if (torch.is_tensor(images) or isinstance(images, np.ndarray)) and images.ndim == 4:
            images = list(images)
        elif not isinstance(images, (list, tuple)):
            images = [images]
        if len(images) == 0:
            raise ValueError("Got an empty list of images.")
        # Per image, one image without negative values would be read as [0, 1] within a batch in [-1, 1].
        signed = any(torch.is_tensor(img) and img.numel() > 0 and img.min() < 0 for img in images)
        return torch.stack([self._signed(img) if signed and torch.is_tensor(img) else self(img) for img in images])

    def _signed(self, image: torch.Tensor) -> torch.Tensor:
        """A tensor already in [-1, 1], only resized (and given the output channels), as a 4-D batch in [-1, 1] is."""
        return resize(image_to_tensor(image, self.num_channels), self.resolution)


def tensor_to_pil(images: torch.Tensor) -> list[PIL.Image.Image]:
    """Convert a `(B, C, H, W)` tensor in [-1, 1] to PIL images (mode `L` for one channel, `RGB` for three)."""
    array = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    array = array.permute(0, 2, 3, 1).numpy()
    if array.shape[-1] == 1:
        return [PIL.Image.fromarray(a[..., 0], mode="L") for a in array]
    return [PIL.Image.fromarray(a) for a in array]
