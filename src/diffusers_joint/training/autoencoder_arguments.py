# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The autoencoder's command-line flags (architecture, pretrained VAE, loss) and the model they build."""

from __future__ import annotations

import argparse
import math

from diffusers import AutoencoderKL

from ..data.joint_dataset import JointDataset
from .autoencoder import DOWNSAMPLING_FACTORS, create_autoencoder, load_vae
from .unet_config import pick_resolution


def add_autoencoder_arguments(group: argparse._ActionsContainer) -> None:
    """
    Adds `--pretrained_vae_model_name_or_path` (diffusers' name), `--vae_subfolder`, `--revision`,
    `--downsampling_factor`, `--latent_channels`, `--block_out_channels`, `--layers_per_block`, `--kl_weight` and
    `--ssim_weight` to a parser or group.
    """
    group.add_argument(
        "--pretrained_vae_model_name_or_path",
        type=str,
        default=None,
        help="Start from this AutoencoderKL (Hub id or folder, safetensors) instead of a new one; its architecture "
        "and scaling_factor are kept.",
    )
    group.add_argument("--vae_subfolder", type=str, default=None, help="E.g. `vae` for a whole pipeline's VAE.")
    group.add_argument("--revision", type=str, default=None, help="Revision of the pretrained VAE on the Hub.")
    group.add_argument("--downsampling_factor", type=int, default=4, help="4 (f4) or 8 (f8).")
    group.add_argument("--latent_channels", type=int, default=4)
    group.add_argument(
        "--block_out_channels",
        type=int,
        nargs="+",
        default=None,
        help="Default: 64 128 128 (f4), 64 128 256 256 (f8).",
    )
    group.add_argument("--layers_per_block", type=int, default=1)
    group.add_argument("--kl_weight", type=float, default=1e-6, help="Weight of the KL term (summed per image).")
    group.add_argument("--ssim_weight", type=float, default=0.0, help="Weight of 1 - SSIM (0: L1 + KL only).")


def check_autoencoder_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """`parser.error` (exit code 2, before any data is read) for flags [`create_autoencoder`] would refuse."""
    if args.downsampling_factor not in DOWNSAMPLING_FACTORS:
        parser.error(f"--downsampling_factor must be one of {DOWNSAMPLING_FACTORS}, got {args.downsampling_factor}.")
    blocks = int(math.log2(args.downsampling_factor)) + 1
    if args.block_out_channels is not None and len(args.block_out_channels) != blocks:
        parser.error(
            f"--downsampling_factor {args.downsampling_factor} takes {blocks} --block_out_channels, got "
            f"{len(args.block_out_channels)}: {args.block_out_channels}."
        )
    for name in ("latent_channels", "layers_per_block"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}.")
    if args.kl_weight < 0 or args.ssim_weight < 0:
        parser.error(f"--kl_weight and --ssim_weight must be >= 0, got {args.kl_weight} and {args.ssim_weight}.")
    resolution = getattr(args, "resolution", None)
    if resolution is not None and resolution % args.downsampling_factor:
        parser.error(f"--resolution must be a multiple of --downsampling_factor, got {resolution}.")


def create_autoencoder_from_args(dataset: JointDataset, args: argparse.Namespace) -> tuple[AutoencoderKL, int]:
    """
    The autoencoder of [`add_autoencoder_arguments`]' flags for `dataset`'s images, and its training resolution
    (`args.resolution`, else the images' size rounded up to a multiple of the downsampling factor): the pretrained
    VAE ([`load_vae`]) when one is named, else a new one ([`create_autoencoder`]) with the images' channels.
    """
    if args.pretrained_vae_model_name_or_path:
        vae = load_vae(args.pretrained_vae_model_name_or_path, subfolder=args.vae_subfolder, revision=args.revision)
        return vae, pick_resolution(dataset.image_size, args.resolution, len(vae.config.block_out_channels))
    blocks = int(math.log2(args.downsampling_factor)) + 1
    resolution = pick_resolution(dataset.image_size, args.resolution, blocks)
    vae = create_autoencoder(
        dataset.num_channels,
        args.downsampling_factor,
        args.latent_channels,
        args.block_out_channels,
        args.layers_per_block,
        resolution=resolution,
    )
    return vae, resolution
