# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Reconstruction quality: PSNR and SSIM of images against references, and of an autoencoder on a set of images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from diffusers import AutoencoderKL

from ..training.autoencoder import check_image_pair, structural_similarity

MAX_PSNR = 100.0  # dB: what an exactly reproduced image counts as (an error of 1e-10 of the squared range)


def psnr(images: torch.Tensor, references: torch.Tensor, data_range: float = 2.0) -> float:
    """
    The peak signal-to-noise ratio in dB, `10 log10(data_range**2 / MSE)`, computed per image and averaged.

    Args:
        images, references (`torch.Tensor` of shape `(N, C, H, W)`):
            Reconstructions and the originals, in the same units.
        data_range (`float`, *optional*, defaults to 2.0):
            The span of the intensities: 2 for the models' [-1, 1] images, 1 for [0, 1], 255 for 8-bit.

    Returns:
        `float`: the mean PSNR. An image reproduced exactly counts as `MAX_PSNR` (100 dB) rather than `inf`, so that
        one such image does not make the mean infinite.
    """
    check_image_pair(images, references)
    mse = (images.double() - references.double()).pow(2).flatten(1).mean(dim=1)
    floor = data_range**2 * 10 ** (-MAX_PSNR / 10)
    return float((10 * torch.log10(data_range**2 / mse.clamp_min(floor))).mean())


def ssim(
    images: torch.Tensor,
    references: torch.Tensor,
    value_range: Sequence[float] = (-1.0, 1.0),
    window_size: int = 11,
) -> float:
    """
    The mean structural similarity (kornia's Gaussian-window SSIM) of images against references.

    SSIM's luminance term is not shift-invariant, so both are first mapped from `value_range` to [0, 1], the range
    in which SSIM is usually reported.

    Args:
        images, references (`torch.Tensor` of shape `(N, C, H, W)`):
            Reconstructions and the originals.
        value_range (`Sequence[float]`, *optional*, defaults to `(-1.0, 1.0)`):
            The intensities' nominal range (the models' images are in [-1, 1]).
        window_size (`int`, *optional*, defaults to 11):
            The Gaussian window's side (odd); images smaller than it are compared with the largest odd window that
            fits.

    Returns:
        `float`: the mean SSIM, at most 1.
    """
    with torch.no_grad():
        return float(structural_similarity(images, references, value_range, window_size))


@torch.no_grad()
def evaluate_autoencoder(vae: AutoencoderKL, images: torch.Tensor, batch_size: int = 64) -> dict:
    """
    Reconstruction quality of `vae` on `images` in [-1, 1]: each image is encoded, its posterior's mode decoded.

    Returns:
        `dict`: `psnr` (dB, data range 2), `ssim`, `l1` (mean absolute error in [-1, 1] units) and `num_examples`.
    """
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"Expected a non-empty batch of images (N, C, H, W), got shape {tuple(images.shape)}.")
    was_training = vae.training
    vae.eval()
    device, dtype = vae.device, vae.dtype
    reconstructions = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device, dtype)
        latents = vae.encode(batch).latent_dist.mode()
        reconstructions.append(vae.decode(latents).sample.float().clamp(-1, 1).cpu())
    vae.train(was_training)
    reconstructions, images = torch.cat(reconstructions), images.float().cpu()
    return {
        "psnr": psnr(reconstructions, images),
        "ssim": ssim(reconstructions, images),
        "l1": float((reconstructions - images).abs().mean()),
        "num_examples": len(images),
    }
