# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Latent joint training (`train_joint.py --pretrained_vae_model_name_or_path`): the frozen VAE, its scaling factor,
the latent UNet's size, the encoding of a batch's views (augmented in pixel space first) and of evaluation images,
and the record of the VAE that every checkpoint carries so that a resume uses the same one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import torch
from accelerate import Accelerator
from diffusers import AutoencoderKL
from diffusers.utils import logging

from ..data.joint_dataset import JointDataset
from ..data.transforms import ImagePreprocessor
from ..models import JointUNet2DModel
from ..pipelines.latent_codec import check_vae_channels, check_vae_matches_unet, encode_images, vae_scale_factor
from .arguments import MODEL_FLAGS
from .autoencoder import latent_scaling_factor, load_vae
from .training_state import register_json_record
from .unet_config import create_joint_unet

logger = logging.get_logger(__name__)

VAE_RECORD_FILE = "vae.json"
# The pixel views a training batch holds (JointAugmentation), each replaced by its latents before the loss.
PIXEL_VIEWS = ("pixel_values", "classifier_pixel_values", "weak_pixel_values", "strong_pixel_values")
WEIGHT_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def add_vae_arguments(group: argparse._ActionsContainer) -> None:
    """Add `--pretrained_vae_model_name_or_path` (named as in diffusers' training scripts) and its options."""
    group.add_argument(
        "--pretrained_vae_model_name_or_path",
        type=str,
        default=None,
        help="Train in the latent space of this AutoencoderKL (a folder written by examples/train_autoencoder.py, or "
        "a Hub id; safetensors only), frozen. Images are augmented in pixel space, then encoded (posterior mean, "
        "scaled by the VAE's scaling_factor); the saved pipeline holds the VAE. Default: diffuse pixels.",
    )
    group.add_argument("--vae_subfolder", type=str, default=None, help="E.g. `vae` for a whole pipeline's VAE.")
    group.add_argument(
        "--vae_scaling_images",
        type=int,
        default=512,
        help="Training images the latents' scaling factor is computed on when the VAE's config records none.",
    )
    group.add_argument(
        "--cache_latents",
        action="store_true",
        help="Encode every training image once, before training, and train on the cached latents: the classifier's "
        "views are then augmented in latent space (the affine map of --classifier_augmentation, no intensity "
        "changes; FixMatch's strong view adds cutout). Faster: the VAE's encoder no longer runs every step. See "
        "docs/experiments/latent.md for what it costs in accuracy.",
    )


def weight_dtype(accelerator: Accelerator) -> torch.dtype:
    """The dtype of frozen modules under the run's mixed precision, as diffusers' scripts keep their VAE."""
    return WEIGHT_DTYPES.get(accelerator.mixed_precision, torch.float32)


def weights_fingerprint(module: torch.nn.Module) -> str:
    """SHA-256 of a module's weights (as float32, in state-dict order): tells two VAEs apart whatever their path."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def load_frozen_vae(
    pretrained_vae_model_name_or_path: str | os.PathLike, pixel_channels: int, subfolder: str | None = None
) -> AutoencoderKL:
    """
    The VAE of `--pretrained_vae_model_name_or_path` (and `--vae_subfolder`; [`load_vae`], safetensors only),
    frozen: eval mode, no gradients ([`prepare_latent_space`] moves it to the run's device and weight dtype); it
    never enters the optimiser or `accelerator.prepare`.

    Raises:
        ValueError: the VAE does not take images of `pixel_channels` channels (its own channels, or 1-channel images
            with a 3-channel VAE).
    """
    vae = load_vae(pretrained_vae_model_name_or_path, subfolder=subfolder)
    check_vae_channels(vae, pixel_channels)
    vae.requires_grad_(False)
    return vae.eval()


def create_latent_joint_unet(dataset: JointDataset, vae: AutoencoderKL, args: argparse.Namespace) -> JointUNet2DModel:
    """
    The [`JointUNet2DModel`] that diffuses `vae`'s latents of `dataset`'s images: `in_channels` = `out_channels` =
    `vae.config.latent_channels`, `sample_size` = `--resolution // vae_scale_factor(vae)` (default: the images'
    largest side, rounded up to what the VAE and the UNet's levels need). The VAE's `sample_size` is set to the
    training resolution, which the pipeline makes images of.

    Raises:
        ValueError: `--resolution` is not a multiple of the VAE's downsampling factor, or its latents are not a size
            the UNet's levels (or the `--pretrained_unet`) take; both values are named.
    """
    factor = vae_scale_factor(vae)
    if args.resolution is not None and (args.resolution < factor or args.resolution % factor):
        raise ValueError(
            f"--resolution {args.resolution} is not a multiple of the VAE's downsampling factor {factor} "
            f"(block_out_channels={list(vae.config.block_out_channels)}): choose a resolution such as "
            f"{factor * max(1, round(args.resolution / factor))}."
        )
    requested = args.resolution // factor if args.resolution else math.ceil(max(dataset.image_size) / factor)
    flags = {name: getattr(args, name) for name in MODEL_FLAGS} | {"resolution": requested}
    unet = create_joint_unet(dataset, in_channels=vae.config.latent_channels, **flags)
    resolution = unet.config.sample_size * factor
    if args.resolution is not None and unet.config.sample_size != requested:
        raise ValueError(
            f"--resolution {args.resolution} makes latents of {args.resolution} // {factor} = {requested} but the "
            f"UNet's sample_size is {unet.config.sample_size} (its levels need a multiple of "
            f"{2 ** (len(unet.config.block_out_channels) - 1)}, or a --pretrained_unet keeps its own): use "
            f"--resolution {resolution}, or fewer --block_out_channels."
        )
    if vae.config.sample_size != resolution:
        logger.info(f"The VAE's sample_size {vae.config.sample_size} set to the training resolution {resolution}.")
        vae.register_to_config(sample_size=resolution)
    check_vae_matches_unet(vae, unet, dataset.num_channels)
    return unet


def has_scaling_factor(vae: AutoencoderKL) -> bool:
    """Whether `vae`'s config records a usable `scaling_factor`, not diffusers' default filled in for a missing one."""
    factor = vae.config.get("scaling_factor")
    recorded = "scaling_factor" not in vae.config.get("_use_default_values", [])
    return recorded and isinstance(factor, (int, float)) and math.isfinite(factor) and factor > 0


def scaling_subset(dataset: datasets.Dataset, num_images: int, seed: int) -> datasets.Dataset:
    """
    A seeded random sample of up to `num_images` rows of `dataset` (labeled or not), in their order, to compute a
    scaling factor on ([`ensure_scaling_factor`]): drawn from every class, where the first rows of a class-sorted
    folder would all be one.
    """
    rows = np.random.default_rng(seed).permutation(len(dataset))[:num_images]
    return dataset.select(np.sort(rows))


def ensure_scaling_factor(vae: AutoencoderKL, images: torch.Tensor, batch_size: int = 64) -> bool:
    """
    Keep `vae`'s recorded `scaling_factor`, or compute one on `images` and record it when it has none
    ([`record_scaling_factor`]). Returns whether it was computed.
    """
    if has_scaling_factor(vae):
        return False
    factor = record_scaling_factor(vae, images, batch_size)
    logger.info(f"The VAE records no scaling_factor: {factor:.6g} (1 / std of the latents of {len(images)} images).")
    return True


def record_scaling_factor(vae: AutoencoderKL, images: torch.Tensor, batch_size: int = 64) -> float:
    """
    Compute the latents' scaling factor on `images` ([`latent_scaling_factor`]) and record it in `vae`'s config (saved
    with it), as recorded rather than diffusers' default. Returns the factor.
    """
    factor = latent_scaling_factor(vae, images, batch_size=batch_size)
    defaults = [key for key in vae.config.get("_use_default_values", []) if key != "scaling_factor"]
    vae.register_to_config(scaling_factor=factor, _use_default_values=defaults)
    return factor


@torch.no_grad()
def encode_pixel_views(vae: AutoencoderKL, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """
    `batch` with every pixel view of [`PIXEL_VIEWS`] it holds (the diffusion input, the classifier's augmented view,
    FixMatch's weak and strong views) replaced by its scaled latents ([`encode_images`], posterior mean), in float32
    like the pixel batches: [`joint_diffusion_loss`] then runs unchanged on latents. A view that is another view's
    tensor (FixMatch's weak view is the classifier's) is encoded once.
    """
    encoded: dict[int, torch.Tensor] = {}
    out = dict(batch)
    for key in PIXEL_VIEWS:
        if out.get(key) is None:
            continue
        images = out[key]
        if id(images) not in encoded:
            encoded[id(images)] = encode_images(vae, images).float()
        out[key] = encoded[id(images)]
    return out


@torch.no_grad()
def encode_tensors(vae: AutoencoderKL, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Scaled latents (posterior mean, float32, on the CPU) of images in [-1, 1], encoded `batch_size` at a time."""
    if images.ndim != 4:
        raise ValueError(f"Expected images of shape (N, C, H, W), got {tuple(images.shape)}.")
    batches = range(0, len(images), batch_size)
    return torch.cat([encode_images(vae, images[i : i + batch_size]).float().cpu() for i in batches])


def cache_latents(
    dataset: datasets.Dataset,
    preprocessor: ImagePreprocessor,
    vae: AutoencoderKL,
    fingerprint: str,
    batch_size: int = 64,
    latent_column: str = "latents",
) -> datasets.Dataset:
    """
    `dataset` (normalised `image` and `label` columns) with each image replaced by its scaled latents
    ([`encode_images`] of the preprocessed image, posterior mean), encoded once with `datasets.Dataset.map` as
    diffusers' SDXL training script caches its VAE latents; rows hold the latents in `latent_column` as float32
    tensors, for [`~diffusers_joint.data.LatentCollator`]. `fingerprint` (of the VAE's weights,
    [`weights_fingerprint`]) names the cache: the VAE itself is not hashed.
    """

    def encode(batch: dict) -> dict:
        images = torch.stack([preprocessor(image) for image in batch["image"]])
        return {latent_column: encode_tensors(vae, images, batch_size).numpy()}

    # the scale (computed per run when the VAE records none) and dtype change the latents as much as the weights do
    scale = f"{vae.config.scaling_factor}-{vae.config.get('shift_factor')}-{vae.dtype}"
    config = f"{preprocessor.resolution}-{preprocessor.num_channels}-{preprocessor.normalization}-{scale}"
    name = hashlib.sha256(f"{dataset._fingerprint}-{fingerprint}-{config}".encode()).hexdigest()[:16]
    cached = dataset.map(
        encode,
        batched=True,
        batch_size=batch_size,
        remove_columns=["image"],
        new_fingerprint=name,
        desc="Encoding the training images",
    )
    return cached.with_format("torch", columns=[latent_column], output_all_columns=True)


def vae_record(vae: AutoencoderKL, pretrained_vae_model_name_or_path: str | os.PathLike, fingerprint: str) -> dict:
    """
    What a checkpoint records of its run's VAE: where it came from, its config (the `scaling_factor` and
    `sample_size` the run set included) and the fingerprint of its weights ([`weights_fingerprint`]).
    """
    config = {key: value for key, value in vae.config.items() if not key.startswith("_")}
    record = {"pretrained_vae_model_name_or_path": str(pretrained_vae_model_name_or_path), "config": config}
    return json.loads(json.dumps(record | {"weights_sha256": fingerprint}))  # as read back from the file


def check_checkpoint_vae(checkpoint_dir: str | os.PathLike, record: dict | None) -> None:
    """
    Raise a `ValueError` unless the checkpoint in `checkpoint_dir` was written with the VAE of `record` (`None`: a
    pixel-space run, so without any): the same config and weights. A VAE moved to another path is accepted with a
    warning.
    """
    path = Path(checkpoint_dir) / VAE_RECORD_FILE
    saved = json.loads(path.read_text()) if path.is_file() else None
    if saved is None and record is None:
        return
    if saved is None:
        source = record["pretrained_vae_model_name_or_path"]
        raise ValueError(
            f"The checkpoint {checkpoint_dir} was written by a pixel-space run (no {VAE_RECORD_FILE}), but this run "
            f"trains on the latents of --pretrained_vae_model_name_or_path {source}: resume without the flag, or "
            "train into another --output_dir."
        )
    source = saved["pretrained_vae_model_name_or_path"]
    if record is None:
        raise ValueError(
            f"The checkpoint {checkpoint_dir} was written by a latent run with --pretrained_vae_model_name_or_path "
            f"{source}: resume with that flag, or train into another --output_dir."
        )
    changed = sorted(
        key
        for key in saved["config"].keys() | record["config"].keys()
        if saved["config"].get(key) != record["config"].get(key)
    )
    if changed or saved["weights_sha256"] != record["weights_sha256"]:
        details = [f"{key}: {saved['config'].get(key)!r} then, {record['config'].get(key)!r} now" for key in changed]
        if saved["weights_sha256"] != record["weights_sha256"]:
            details.append("its weights differ")
        raise ValueError(
            f"The checkpoint {checkpoint_dir} was written with the VAE of {source}, and this run's VAE "
            f"({record['pretrained_vae_model_name_or_path']}) is not the same ({'; '.join(details)}): resume with "
            "the VAE the run started with."
        )
    if source != record["pretrained_vae_model_name_or_path"]:
        logger.warning(
            f"The checkpoint was written with the VAE of {source}; resuming with the same VAE from "
            f"{record['pretrained_vae_model_name_or_path']}."
        )


def register_vae_checkpointing(accelerator: Accelerator, record: dict | None) -> None:
    """
    Write `record` ([`vae_record`]; `None` for a pixel-space run: nothing) as `vae.json` in every checkpoint, and on
    resume check that the checkpoint was written with the same VAE, or with none ([`check_checkpoint_vae`]).
    """

    register_json_record(accelerator, VAE_RECORD_FILE, record, check_checkpoint_vae)


def describe_latent_space(
    vae: AutoencoderKL, pretrained_vae_model_name_or_path: str | os.PathLike, pixel_channels: int, computed_scale: bool
) -> str:
    """One sentence for the model card: which VAE, the images' and the latents' shapes, and the scaling factor."""
    factor = vae_scale_factor(vae)
    size = vae.config.sample_size
    scale = f"`scaling_factor` {vae.config.scaling_factor:.6g}"
    scale += " (computed on training images: the VAE recorded none)" if computed_scale else " (the VAE's own)"
    if vae.config.get("shift_factor"):
        scale += f" after `shift_factor` {vae.config.shift_factor:.6g}"
    return (
        f"`AutoencoderKL` from `{pretrained_vae_model_name_or_path}` (frozen; saved in the pipeline's `vae` folder): "
        f"images of {pixel_channels} x {size} x {size} are diffused as latents of {vae.config.latent_channels} x "
        f"{size // factor} x {size // factor} (downsampling factor {factor}), the posterior mean scaled by {scale}."
    )


@dataclass
class LatentSpace:
    """
    A latent run's frozen VAE and what the training script does with it (see [`prepare_latent_space`]).

    Args:
        vae ([`~diffusers.AutoencoderKL`]):
            The frozen VAE, on the run's device in its weight dtype.
        source (`str`):
            `--pretrained_vae_model_name_or_path`.
        pixel_channels (`int`):
            The images' channels (1 with a 3-channel VAE: repeated on encoding, averaged on decoding).
        computed_scaling_factor (`bool`):
            Whether the run computed the `scaling_factor` (the VAE recorded none).
        record (`dict`):
            What every checkpoint records of the VAE ([`vae_record`]).
        evaluation (`tuple[torch.Tensor, torch.Tensor]`, *optional*):
            The evaluation split's `(latents, labels)`, encoded once (`LatentSpace.encode_split`).
    """

    vae: AutoencoderKL
    source: str
    pixel_channels: int
    computed_scaling_factor: bool
    record: dict
    evaluation: tuple[torch.Tensor, torch.Tensor] | None = None

    def encode(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """[`encode_pixel_views`]: the batch's pixel views, augmented already, as latents."""
        return encode_pixel_views(self.vae, batch)

    def encode_split(
        self, split: tuple[torch.Tensor, torch.Tensor] | None, batch_size: int = 64
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """`(latents, labels)` of preprocessed `(images, labels)` ([`encode_tensors`]), encoded once; `None` stays."""
        return None if split is None else (encode_tensors(self.vae, split[0], batch_size), split[1])

    def cache(self, dataset: datasets.Dataset, preprocessor: ImagePreprocessor, batch_size: int = 64):
        """[`cache_latents`] of a training split."""
        return cache_latents(dataset, preprocessor, self.vae, self.record["weights_sha256"], batch_size)

    def pipeline_components(self) -> dict:
        """The pipeline's latent components: `JointDiffusionPipeline(unet=..., scheduler=..., **these)`."""
        return {"vae": self.vae, "pixel_channels": self.pixel_channels}

    def describe(self) -> str:
        """[`describe_latent_space`], for the model card."""
        return describe_latent_space(self.vae, self.source, self.pixel_channels, self.computed_scaling_factor)


def prepare_latent_space(
    accelerator: Accelerator,
    vae: AutoencoderKL,
    source: str | os.PathLike,
    pixel_channels: int,
    scaling_images: torch.Tensor | None = None,
    batch_size: int = 64,
) -> LatentSpace:
    """
    Fingerprint the frozen `vae`'s weights, move it to the run's device in the mixed precision's weight dtype
    ([`weight_dtype`]), and compute its scaling factor on `scaling_images` when its config records none
    ([`ensure_scaling_factor`]; `scaling_images` may be `None` when it does, see [`has_scaling_factor`]).

    Raises:
        ValueError: the VAE records no scaling factor and no `scaling_images` were given.
    """
    fingerprint = weights_fingerprint(vae)
    vae.to(accelerator.device)
    if weight_dtype(accelerator) != vae.dtype:  # diffusers warns on every `to(dtype=...)`
        vae.to(dtype=weight_dtype(accelerator))
    computed = False
    if not has_scaling_factor(vae):
        if scaling_images is None:
            raise ValueError(f"The VAE of {source} records no scaling_factor: pass images to compute one on.")
        computed = ensure_scaling_factor(vae, scaling_images, batch_size=batch_size)
    record = vae_record(vae, source, fingerprint)
    return LatentSpace(vae, str(source), pixel_channels, computed, record)
