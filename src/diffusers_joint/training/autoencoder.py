# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
A diffusers `AutoencoderKL` for latent Joint Diffusion: built from scratch at a downsampling factor of 4 or 8, or
loaded from the Hub / a folder; its training loss (L1 + a small KL, optionally SSIM) and its latents' scaling factor.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import kornia
import torch
from diffusers import AutoencoderKL
from diffusers.utils import logging

from ..pipelines.latent_codec import encode_images
from .unet_config import default_norm_num_groups

logger = logging.get_logger(__name__)

DOWNSAMPLING_FACTORS = (4, 8)
DEFAULT_AUTOENCODER_CHANNELS = {4: (64, 128, 128), 8: (64, 128, 256, 256)}


def check_image_pair(images: torch.Tensor, references: torch.Tensor) -> None:
    """Raise a `ValueError` unless `images` and `references` are `(N, C, H, W)` tensors of one shape."""
    if images.shape != references.shape or images.ndim != 4:
        raise ValueError(
            f"Expected images and references of the same shape (N, C, H, W), got {tuple(images.shape)} and "
            f"{tuple(references.shape)}."
        )


def structural_similarity(
    images: torch.Tensor,
    references: torch.Tensor,
    value_range: Sequence[float] = (-1.0, 1.0),
    window_size: int = 11,
) -> torch.Tensor:
    """
    The mean structural similarity (kornia's Gaussian-window SSIM) of images against references, as a differentiable
    scalar tensor (the autoencoder loss uses `1 - ` it; [`ssim`] reports it as a float).
    """
    check_image_pair(images, references)
    low, high = (float(v) for v in value_range)
    if not low < high:
        raise ValueError(f"Expected `value_range` (low, high) with low < high, got {tuple(value_range)}.")
    window = min(window_size, *images.shape[-2:])
    window -= 1 - window % 2  # kornia needs an odd window

    def to_unit(x: torch.Tensor) -> torch.Tensor:
        return ((x.float() - low) / (high - low)).clamp(0, 1)

    return kornia.metrics.ssim(to_unit(images), to_unit(references), window_size=window, max_val=1.0).mean()


def create_autoencoder(
    in_channels: int,
    downsampling_factor: int = 4,
    latent_channels: int = 4,
    block_out_channels: Sequence[int] | None = None,
    layers_per_block: int = 1,
    norm_num_groups: int | None = None,
    resolution: int | None = None,
    mid_block_add_attention: bool = True,
) -> AutoencoderKL:
    """
    A new diffusers `AutoencoderKL` whose latents are `downsampling_factor` times smaller than its images.

    diffusers' autoencoder halves the resolution after every block but the last, so a factor of 4 takes 3 blocks and a
    factor of 8 takes 4 (Stable Diffusion's kl-f8).

    Args:
        in_channels (`int`):
            Image channels (in and out): 1 for grayscale, 3 for colour.
        downsampling_factor (`int`, *optional*, defaults to 4):
            4 or 8.
        latent_channels (`int`, *optional*, defaults to 4):
            Channels of the latents (the latent UNet's `in_channels`).
        block_out_channels (`Sequence[int]`, *optional*):
            Channels per block, `log2(downsampling_factor) + 1` of them. Defaults to `(64, 128, 128)` for f4 and
            `(64, 128, 256, 256)` for f8.
        layers_per_block (`int`, *optional*, defaults to 1):
            ResNet layers per encoder block (the decoder has one more, as in diffusers).
        norm_num_groups (`int`, *optional*):
            Group-norm groups; defaults to [`default_norm_num_groups`] of the channels.
        resolution (`int`, *optional*):
            The images' side, recorded as `sample_size`; must be a multiple of `downsampling_factor`.
        mid_block_add_attention (`bool`, *optional*, defaults to `True`):
            Self-attention in the middle block, as in diffusers' default.

    Raises:
        ValueError: an unsupported factor, a channel list of the wrong length, or a resolution the factor does not
            divide.
    """
    if downsampling_factor not in DOWNSAMPLING_FACTORS:
        raise ValueError(
            f"Expected a downsampling factor in {DOWNSAMPLING_FACTORS} (f4 or f8 autoencoders), got "
            f"{downsampling_factor!r}."
        )
    num_blocks = int(math.log2(downsampling_factor)) + 1
    channels = tuple(block_out_channels or DEFAULT_AUTOENCODER_CHANNELS[downsampling_factor])
    if len(channels) != num_blocks:
        raise ValueError(
            f"A downsampling factor of {downsampling_factor} takes {num_blocks} blocks, so {num_blocks} block output "
            f"channels, got {len(channels)}: {list(channels)}."
        )
    for name, value in (("in_channels", in_channels), ("latent_channels", latent_channels)):
        if int(value) != value or value < 1:
            raise ValueError(f"Expected `{name}` to be a positive integer, got {value!r}.")
    if int(layers_per_block) != layers_per_block or layers_per_block < 1:
        raise ValueError(f"Expected `layers_per_block` to be a positive integer, got {layers_per_block!r}.")
    if resolution is not None and (resolution < downsampling_factor or resolution % downsampling_factor):
        raise ValueError(
            f"Expected a resolution that is a multiple of the downsampling factor {downsampling_factor}, got "
            f"{resolution}."
        )
    groups = norm_num_groups or default_norm_num_groups(channels)
    if any(c % groups for c in channels):
        raise ValueError(f"norm_num_groups={groups} does not divide every block's channels {list(channels)}.")
    return AutoencoderKL(
        in_channels=in_channels,
        out_channels=in_channels,
        down_block_types=("DownEncoderBlock2D",) * num_blocks,
        up_block_types=("UpDecoderBlock2D",) * num_blocks,
        block_out_channels=channels,
        layers_per_block=layers_per_block,
        latent_channels=latent_channels,
        norm_num_groups=groups,
        sample_size=resolution or 32,
        mid_block_add_attention=mid_block_add_attention,
    )


def load_vae(
    pretrained_model_name_or_path: str | os.PathLike,
    subfolder: str | None = None,
    revision: str | None = None,
    **kwargs,
) -> AutoencoderKL:
    """
    A pretrained `AutoencoderKL` (Hub id or local folder), read from safetensors only, as diffusers' training scripts
    take `--pretrained_vae_model_name_or_path`.

    A pipeline's VAE is in its `vae` subfolder (`subfolder="vae"`); a folder written by `examples/train_autoencoder.py`
    or `AutoencoderKL.save_pretrained` needs none. `kwargs` go to `AutoencoderKL.from_pretrained` (e.g.
    `torch_dtype`, `cache_dir`). A VAE whose config has no `scaling_factor` gets diffusers' default; one trained with
    `examples/train_autoencoder.py` records its own.

    Raises:
        OSError: nothing loadable there (no such repository or folder, or no `.safetensors` weights).
    """
    try:
        return AutoencoderKL.from_pretrained(
            pretrained_model_name_or_path, subfolder=subfolder, revision=revision, use_safetensors=True, **kwargs
        )
    except OSError as error:
        where = f"{pretrained_model_name_or_path}" + (f" (subfolder {subfolder!r})" if subfolder else "")
        raise OSError(
            f"Cannot load an AutoencoderKL from {where}: {error} Expected a Hub id or folder holding config.json and "
            "diffusion_pytorch_model.safetensors (pass `subfolder='vae'` for a whole pipeline's VAE)."
        ) from error


def autoencoder_loss(
    vae: AutoencoderKL,
    images: torch.Tensor,
    kl_weight: float = 1e-6,
    ssim_weight: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """
    The autoencoder's training loss on `images` in [-1, 1]: the mean absolute error of the reconstruction from a
    posterior sample, plus `kl_weight` times the KL divergence to a standard normal (summed over each image's latent,
    averaged over the batch, as in latent diffusion), plus `ssim_weight` times `1 - SSIM` (images mapped to [0, 1]).

    Returns:
        `tuple[torch.Tensor, dict[str, torch.Tensor]]`: the loss, and its detached terms `loss`, `loss_l1`,
        `loss_kl`, `loss_ssim` (0 when `ssim_weight` is 0).
    """
    posterior = vae.encode(images).latent_dist
    reconstruction = vae.decode(posterior.sample(generator=generator)).sample
    l1 = (reconstruction - images).abs().mean()
    kl = posterior.kl().mean()
    loss = l1 + kl_weight * kl
    ssim_loss = torch.zeros((), device=images.device)
    if ssim_weight > 0:
        ssim_loss = 1 - structural_similarity(reconstruction, images)
        loss = loss + ssim_weight * ssim_loss
    terms = {"loss": loss, "loss_l1": l1, "loss_kl": kl, "loss_ssim": ssim_loss}
    return loss, {name: value.detach().float() for name, value in terms.items()}


AUTOENCODER_LOSS_TERMS = ("loss", "loss_l1", "loss_kl", "loss_ssim")


class AutoencoderObjective(torch.nn.Module):
    """
    The autoencoder and its loss as one module, so that the whole step runs through `forward` (what DDP and
    `accelerator.prepare` wrap): `forward(images)` returns [`autoencoder_loss`]'s `(loss, terms)`.
    """

    def __init__(self, vae: AutoencoderKL, kl_weight: float = 1e-6, ssim_weight: float = 0.0):
        super().__init__()
        if kl_weight < 0 or ssim_weight < 0:
            raise ValueError(
                f"Expected non-negative loss weights, got kl_weight={kl_weight}, ssim_weight={ssim_weight}."
            )
        self.vae = vae
        self.kl_weight = kl_weight
        self.ssim_weight = ssim_weight

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return autoencoder_loss(self.vae, images, self.kl_weight, self.ssim_weight)


@torch.no_grad()
def latent_scaling_factor(vae: AutoencoderKL, images: torch.Tensor, batch_size: int = 64) -> float:
    """
    `1 / std` of the latents of `images`, the factor latent diffusion multiplies them by so that they have about unit
    variance (Rombach et al., 2022). The latents are the posterior's mode, minus the VAE's `shift_factor`: what
    [`encode_images`] gives the UNet in training and in the pipelines (samples would add the
    posterior's own variance, which is large early in an autoencoder's training, and under-scale them). Record it with
    `vae.register_to_config(scaling_factor=...)`.
    """
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"Expected a non-empty batch of images (N, C, H, W), got shape {tuple(images.shape)}.")
    was_training = vae.training
    vae.eval()
    # encode_images scales by the current factor (diffusers' default when none is recorded): divided out below
    current = vae.config.scaling_factor
    latents = [
        encode_images(vae, images[start : start + batch_size]).float().cpu()
        for start in range(0, len(images), batch_size)
    ]
    vae.train(was_training)
    std = torch.cat(latents).std().item() / current
    if not math.isfinite(std) or std == 0:
        raise ValueError(f"The latents' standard deviation is {std}: the autoencoder cannot be scaled.")
    return 1.0 / std
