# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Between pixels and latents: encode images with an [`~diffusers.AutoencoderKL`] into the scaled latents a latent
[`JointUNet2DModel`] diffuses, decode them back, and check that a VAE fits a UNet.

Latents are scaled as in diffusers' Stable Diffusion 3 and Flux pipelines: `(z - shift_factor) * scaling_factor` on
the way in and `z / scaling_factor + shift_factor` on the way out, with `shift_factor` 0 when the VAE's config has
none.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL

from ..models import JointUNet2DModel

# The one channel mismatch the codec converts: grayscale images through an RGB VAE (most Hub VAEs).
GRAYSCALE, RGB = 1, 3


def vae_scale_factor(vae: AutoencoderKL) -> int:
    """How many pixels one latent spans per side: `2 ** (len(vae.config.block_out_channels) - 1)`, 8 for kl-f8."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def _size_pair(sample_size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    return (sample_size, sample_size) if isinstance(sample_size, int) else (int(sample_size[0]), int(sample_size[1]))


def latent_to_pixel_size(vae: AutoencoderKL, latent_size: int | tuple[int, int]) -> int | tuple[int, int]:
    """The image size a latent of `latent_size` decodes to, in the same form (an `int` or a `(height, width)`)."""
    factor = vae_scale_factor(vae)
    if isinstance(latent_size, int):
        return latent_size * factor
    return tuple(side * factor for side in latent_size)


def check_vae_channels(vae: AutoencoderKL, pixel_channels: int) -> None:
    """
    Raise a `ValueError` unless images of `pixel_channels` channels go through `vae`: the VAE's own channels, or
    grayscale images with an RGB VAE (repeated on encoding, averaged on decoding).
    """
    for side in ("in_channels", "out_channels"):
        channels = vae.config[side]
        if channels != pixel_channels and (pixel_channels, channels) != (GRAYSCALE, RGB):
            raise ValueError(
                f"The images have {pixel_channels} channels but `vae.config.{side}` is {channels}: use a VAE with "
                f"{pixel_channels} channels (only 1-channel images with a 3-channel VAE are converted)."
            )


def check_vae_matches_unet(vae: AutoencoderKL, unet: JointUNet2DModel, pixel_channels: int) -> None:
    """
    Raise a `ValueError` naming both values when `vae` does not fit `unet`:

    - `vae.config.latent_channels` must equal `unet.config.in_channels` (and `out_channels`): the UNet diffuses the
      VAE's latents;
    - `unet.config.sample_size` must equal `vae.config.sample_size // vae_scale_factor(vae)`: the VAE records the
      image size it encodes, the UNet the latent size, and the pipeline makes images of the VAE's size (diffusers
      also tiles at the VAE's `sample_size` when tiling is on). Load a VAE made for another size with
      `AutoencoderKL.from_pretrained(..., sample_size=<image size>)`;
    - `pixel_channels` must fit the VAE (see [`check_vae_channels`]).
    """
    latent_channels = vae.config.latent_channels
    for side in ("in_channels", "out_channels"):
        if unet.config[side] != latent_channels:
            raise ValueError(
                f"The VAE does not fit the UNet: vae.config.latent_channels={latent_channels} but "
                f"unet.config.{side}={unet.config[side]}; a latent UNet takes and predicts the VAE's latent channels."
            )
    factor = vae_scale_factor(vae)
    vae_size = vae.config.get("sample_size")
    unet_size = unet.config.sample_size
    if vae_size is not None and unet_size is not None:
        expected = tuple(side // factor for side in _size_pair(vae_size))
        if _size_pair(unet_size) != expected or any(side % factor for side in _size_pair(vae_size)):
            raise ValueError(
                f"The VAE does not fit the UNet: vae.config.sample_size={vae_size} makes latents of "
                f"{vae_size} // {factor} = {expected[0] if expected[0] == expected[1] else expected} but "
                f"unet.config.sample_size={unet_size}. Give the VAE the image size the UNet's latents decode to, "
                f"e.g. AutoencoderKL.from_pretrained(..., sample_size={latent_to_pixel_size(vae, unet_size)})."
            )
    check_vae_channels(vae, pixel_channels)


def _shift_factor(vae: AutoencoderKL) -> float:
    return vae.config.get("shift_factor") or 0.0


def encode_images(
    vae: AutoencoderKL,
    images: torch.Tensor,
    sample_posterior: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """
    Encode images into scaled latents: `(vae.encode(images).latent_dist.mode() - shift_factor) * scaling_factor`.

    Args:
        vae ([`~diffusers.AutoencoderKL`]):
            The autoencoder.
        images (`torch.Tensor` of shape `(batch, channels, height, width)`):
            Images in [-1, 1] with the VAE's `in_channels`, or 1-channel images for a 3-channel VAE (the channel is
            repeated).
        sample_posterior (`bool`, *optional*, defaults to `False`):
            Draw from the posterior instead of taking its mode (its mean). The pipelines take the mode, so that
            classification and counterfactuals of an image do not depend on a draw; training may sample, as
            diffusers' training scripts do.
        generator (`torch.Generator`, *optional*):
            The generator of the draw when `sample_posterior` is set.

    Returns:
        `torch.Tensor` of shape `(batch, latent_channels, height // f, width // f)`, in the VAE's dtype.
    """
    in_channels = vae.config.in_channels
    if images.ndim != 4:
        raise ValueError(f"`images` must have shape (batch, channels, height, width), got {tuple(images.shape)}.")
    if images.shape[1] != in_channels:
        if (images.shape[1], in_channels) != (GRAYSCALE, RGB):
            raise ValueError(
                f"The images have {images.shape[1]} channels but the VAE takes vae.config.in_channels={in_channels} "
                f"(only 1-channel images with a 3-channel VAE are converted)."
            )
        images = images.expand(-1, RGB, -1, -1)
    images = images.to(device=vae.device, dtype=vae.dtype)
    posterior = vae.encode(images).latent_dist
    latents = posterior.sample(generator=generator) if sample_posterior else posterior.mode()
    return (latents - _shift_factor(vae)) * vae.config.scaling_factor


def decode_latents(vae: AutoencoderKL, latents: torch.Tensor, pixel_channels: int | None = None) -> torch.Tensor:
    """
    Decode scaled latents into images in [-1, 1]: `vae.decode(latents / scaling_factor + shift_factor)`, clamped.

    Args:
        vae ([`~diffusers.AutoencoderKL`]):
            The autoencoder.
        latents (`torch.Tensor` of shape `(batch, latent_channels, height, width)`):
            Scaled latents, as [`encode_images`] makes them.
        pixel_channels (`int`, *optional*):
            Channels of the images wanted: the VAE's `out_channels` (the default), or 1 with a 3-channel VAE (the
            channels are averaged, undoing the repetition of [`encode_images`]).

    Returns:
        `torch.Tensor` of shape `(batch, pixel_channels, height * f, width * f)`, in the VAE's dtype.
    """
    pixel_channels = pixel_channels or vae.config.out_channels
    check_vae_channels(vae, pixel_channels)
    latents = latents.to(device=vae.device, dtype=vae.dtype) / vae.config.scaling_factor + _shift_factor(vae)
    images = vae.decode(latents).sample
    if images.shape[1] != pixel_channels:
        images = images.mean(dim=1, keepdim=True)
    return images.clamp(-1, 1)
