# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Helpers shared by the Joint Diffusion pipelines: class targets, image pre/post-processing and classification."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers import AutoencoderKL, SchedulerMixin
from diffusers.utils import BaseOutput, logging

from ..data.image_reading import ImageReadError
from ..data.intensity import IntensityNormalization
from ..data.transforms import ImagePreprocessor
from ..models import JointUNet2DModel
from .latent_codec import (
    check_vae_matches_unet,
    decode_latents,
    encode_images,
    latent_to_pixel_size,
    vae_scale_factor,
)

logger = logging.get_logger(__name__)

OUTPUT_TYPES = ("pil", "np", "pt")

ImageInput = (
    PIL.Image.Image
    | np.ndarray
    | torch.Tensor
    | str
    | os.PathLike
    | list[PIL.Image.Image]
    | list[np.ndarray]
    | list[torch.Tensor]
    | list[str | os.PathLike]
)
ClassLabel = int | str
ClassLabels = int | str | Sequence[Any] | torch.Tensor | np.ndarray


def check_output_type(output_type: str) -> None:
    """Raise a `ValueError` when `output_type` is not `"pil"`, `"np"` or `"pt"`."""
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"`output_type` must be one of {OUTPUT_TYPES}, got {output_type!r}.")


def _valid_classes(unet: JointUNet2DModel) -> str:
    return ", ".join(f"{index}: {name!r}" for index, name in unet.id2label.items())


def _class_index(unet: JointUNet2DModel, label: Any, name: str) -> int:
    """One class given as an index or a name, checked against the model's classes."""
    num_classes = unet.config.num_classes
    if isinstance(label, str):
        label2id = unet.label2id
        if label not in label2id:
            raise ValueError(
                f"Unknown class name {label!r} in `{name}`; valid classes are {{{_valid_classes(unet)}}}."
            )
        return label2id[label]
    if torch.is_tensor(label) and label.ndim == 0:
        label = label.item()
    if isinstance(label, np.generic):
        label = label.item()
    if isinstance(label, bool) or not isinstance(label, int):
        raise ValueError(
            f"`{name}` must hold class indices (int) or class names (str), got {label!r} "
            f"of type {type(label).__name__}."
        )
    if not 0 <= label < num_classes:
        raise ValueError(
            f"Class index {label} in `{name}` is out of range: expected an index in [0, {num_classes}) or a class "
            f"name; valid classes are {{{_valid_classes(unet)}}}."
        )
    return label


def check_batch_size(batch_size: int) -> None:
    """Raise a `ValueError` unless `batch_size` is a positive integer (not a bool)."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")


def prepare_class_targets(
    unet: JointUNet2DModel, class_labels: ClassLabels, name: str = "class_labels", num_images: int | None = None
) -> torch.Tensor:
    """
    Turn user-facing class labels into the targets that guidance reads (see [`~guidance.class_log_prob`]).

    Args:
        unet ([`JointUNet2DModel`]):
            The model whose classes the labels refer to.
        class_labels (`int`, `str`, `list`, `torch.Tensor` or `np.ndarray`):
            Single-label models: one class (index or name, see [`JointUNet2DModel.label2id`]) or a sequence with one
            class per image. Multi-label models: per image, a class (index or name, meaning the set holding only that
            label) or a list / tuple / set of classes (the target set); or a `(batch, num_classes)` tensor / array of
            multi-hot targets (1 wanted, 0 unwanted, -1 either). A 1-D tensor or array is read as a list (one class per
            image), never as one multi-hot row.
        name (`str`, *optional*, defaults to `"class_labels"`):
            Argument name used in error messages.
        num_images (`int`, *optional*):
            When given, a single label (or a sequence of length one) is repeated for `num_images` images, and any other
            number of labels raises a `ValueError`.

    Returns:
        `torch.Tensor`: class indices of shape `(batch,)` (`long`) for single-label models, multi-hot targets of shape
        `(batch, num_classes)` (`float`) for multi-label models.
    """
    num_classes = unet.config.num_classes
    # A 1-D tensor or array is a list of labels, one per image, as for single-label models: only 2-D is multi-hot
    if unet.is_multi_label and isinstance(class_labels, (torch.Tensor, np.ndarray)) and class_labels.ndim >= 2:
        targets = torch.as_tensor(np.asarray(class_labels) if isinstance(class_labels, np.ndarray) else class_labels)
        targets = targets.float()
        if targets.ndim != 2 or targets.shape[1] != num_classes:
            raise ValueError(
                f"Multi-hot `{name}` must have shape (batch, {num_classes}), got {tuple(class_labels.shape)}."
            )
        if not bool(((targets == 0) | (targets == 1) | (targets == -1)).all()):
            raise ValueError(f"Multi-hot `{name}` must hold 1 (wanted), 0 (unwanted) or -1 (either).")
    else:
        if isinstance(class_labels, (torch.Tensor, np.ndarray)):
            class_labels = class_labels.tolist()
        if isinstance(class_labels, (str, int, np.integer)) or (unet.is_multi_label and isinstance(class_labels, set)):
            class_labels = [class_labels]
        if not isinstance(class_labels, (list, tuple)):
            raise ValueError(
                f"`{name}` must be a class index, a class name or a list of them, got {type(class_labels).__name__}."
            )
        if len(class_labels) == 0:
            raise ValueError(f"`{name}` must not be empty.")
        if unet.is_multi_label:
            targets = torch.zeros(len(class_labels), num_classes)
            for row, label_set in enumerate(class_labels):
                if not isinstance(label_set, (list, tuple, set)):
                    label_set = [label_set]
                for label in label_set:
                    targets[row, _class_index(unet, label, name)] = 1.0
        else:
            targets = torch.tensor([_class_index(unet, label, name) for label in class_labels], dtype=torch.long)
    if num_images is not None and len(targets) != num_images:
        if len(targets) != 1:
            raise ValueError(
                f"`{name}` must give one class for all images or one per image: expected 1 or {num_images} entries, "
                f"got {len(targets)}."
            )
        targets = targets.expand(num_images, *targets.shape[1:]).clone()
    return targets


def unet_sample_size(unet: JointUNet2DModel) -> int | tuple[int, int]:
    """The UNet's `sample_size` (the size of its inputs); a `ValueError` says what to do when its config has none."""
    sample_size = unet.config.sample_size
    if sample_size is None:
        # UNet2DModel's default: the model runs at any size, but pipelines need one to draw and resize images
        raise ValueError(
            "The UNet's config has no `sample_size` (`unet.config.sample_size` is None), so the pipeline does not "
            "know the size of the images (or latents) it takes and makes. Give the UNet its input size (the latents' "
            "for a latent UNet): build it with `sample_size=<size>` or load it with "
            "`JointUNet2DModel.from_pretrained(..., sample_size=<size>)`."
        )
    return sample_size


def preprocess_images(
    unet: JointUNet2DModel,
    images: ImageInput,
    name: str = "image",
    normalization: IntensityNormalization | None = None,
    sample_size: int | tuple[int, int] | None = None,
    in_channels: int | None = None,
) -> torch.Tensor:
    """
    Convert images to model inputs: a `(batch, in_channels, sample_size, sample_size)` float tensor in [-1, 1], with
    the preprocessing used for training ([`~data.transforms.ImagePreprocessor`]).

    File paths (PNG, TIFF, JPEG, `.npy`, `.npz`, DICOM), PIL images (grayscale 8 / 16 / 32-bit or float, RGB) and
    numpy arrays (`(H, W)`, `(H, W, C)` or a batch `(B, H, W, C)`, any integer or float dtype) are mapped to [0, 1] by
    `normalization` (default: the dtype's range, as for pipelines saved without one), converted to the model's
    channels and resized to `unet.config.sample_size`. Tensors (`(C, H, W)` or `(B, C, H, W)`) are resized too but
    must already have the model's channels; they are read as [-1, 1] when any of them has negative values (a 4-D
    tensor, or the tensors of a list, as one batch), otherwise as [0, 1]: a list of tensors gives the stacked batch's
    inputs.

    `sample_size` and `in_channels` replace the UNet's: a latent pipeline's images have the VAE's resolution and
    channels (its `pixel_size` and `pixel_channels`), not the latents'.

    Raises:
        [`~data.image_reading.ImageReadError`]: a file that cannot be read or normalised (it names the file and why).
        `ValueError`: other images that cannot be turned into model inputs, or no `sample_size` given while the
        UNet's config has none.
    """
    in_channels = in_channels or unet.config.in_channels
    sample_size = sample_size or unet_sample_size(unet)
    tensors = [images] if torch.is_tensor(images) else images if isinstance(images, (list, tuple)) else []
    for tensor in tensors:
        if torch.is_tensor(tensor):
            if tensor.ndim not in (3, 4):
                raise ValueError(
                    f"`{name}` tensors must have shape (channels, height, width) or (batch, channels, height, width), "
                    f"got {tuple(tensor.shape)}."
                )
            channels = tensor.shape[-3]
            if channels != in_channels:
                raise ValueError(
                    f"`{name}` has {channels} channels but the model expects in_channels={in_channels} (tensors are "
                    f"not converted; pass PIL images or numpy arrays to convert)."
                )
    if torch.is_tensor(images) and images.ndim == 3:
        images = images[None]
    if isinstance(images, (list, tuple)) and len(images) == 0:
        raise ValueError(f"`{name}` must not be an empty list.")
    try:
        batch = ImagePreprocessor(sample_size, in_channels, normalization=normalization).batch(images)
    except ImageReadError:
        raise  # already names the file and the reason; callers (the app) catch it by type
    except ValueError as error:
        raise ValueError(
            f"Cannot turn `{name}` into model inputs (expected {in_channels} channels at {sample_size}px): {error}"
        ) from error
    return batch


def postprocess_images(images: torch.Tensor, output_type: str) -> torch.Tensor | np.ndarray | list[PIL.Image.Image]:
    """
    Convert `(batch, channels, height, width)` images in [-1, 1] to the pipeline output: a tensor in [0, 1] of the same
    shape (`"pt"`), a float array `(batch, height, width, channels)` in [0, 1] (`"np"`) or PIL images (`"pil"`).
    """
    images = (images / 2 + 0.5).clamp(0, 1)
    if output_type == "pt":
        return images
    array = images.detach().cpu().float().permute(0, 2, 3, 1).numpy()
    if output_type == "np":
        return array
    array = (array * 255).round().astype("uint8")
    if array.shape[-1] == 1:
        return [PIL.Image.fromarray(a[..., 0], mode="L") for a in array]
    return [PIL.Image.fromarray(a) for a in array]


@dataclass
class JointClassificationOutput(BaseOutput):
    """
    Output of the pipelines' `classify` method.

    Args:
        labels (`torch.LongTensor`):
            Predicted classes: indices of shape `(batch,)` for single-label models, multi-hot decisions at probability
            0.5 of shape `(batch, num_classes)` for multi-label models.
        probs (`torch.Tensor` of shape `(batch, num_classes)`):
            Class probabilities: softmax (rows sum to 1) for single-label models, per-label sigmoid for multi-label
            models.
        label_names (`list[str]` or `list[list[str]]`):
            Names of the predicted classes: one per image, or the list of predicted labels per image (multi-label).
    """

    labels: torch.Tensor
    probs: torch.Tensor
    label_names: list[str] | list[list[str]]


def probs_from_logits(unet: JointUNet2DModel, logits: torch.Tensor) -> torch.Tensor:
    """Calibrated probabilities: softmax (single-label) or sigmoid (multi-label) of `logits / temperature`, float32."""
    return unet.probabilities(logits)


def labels_from_probs(unet: JointUNet2DModel, probs: torch.Tensor) -> torch.Tensor:
    """Arg-max class (single-label) or multi-hot decisions at 0.5 (multi-label), as a `long` tensor."""
    return (probs >= 0.5).long() if unet.is_multi_label else probs.argmax(dim=1)


def label_names_of(unet: JointUNet2DModel, labels: torch.Tensor) -> list[str] | list[list[str]]:
    """Class names of predicted labels (see [`labels_from_probs`])."""
    id2label = unet.id2label
    if unet.is_multi_label:
        return [[id2label[i] for i in row.nonzero().flatten().tolist()] for row in labels]
    return [id2label[i] for i in labels.tolist()]


def probabilities_by_name(unet: JointUNet2DModel, probs: torch.Tensor | np.ndarray) -> list[dict[str, float]]:
    """
    One `{class name: probability}` dict per row of `probs` (`(batch, num_classes)`), in class order, with plain
    Python floats: the form `gradio.Label`, JSON files and logs take.
    """
    probs = probs.detach().float().cpu().numpy() if torch.is_tensor(probs) else np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != unet.config.num_classes:
        raise ValueError(f"`probs` must have shape (batch, {unet.config.num_classes}), got {probs.shape}.")
    names = [unet.id2label[i] for i in range(unet.config.num_classes)]
    return [{name: float(p) for name, p in zip(names, row)} for row in probs]


class JointClassifierMixin:
    """
    The components and config shared by the Joint Diffusion pipelines (a [`JointUNet2DModel`] `unet`, a `scheduler`,
    an optional `vae` for latent pipelines, the `intensity_normalization` / `intensity_range` of the training images
    and the images' `pixel_channels`), the way between images and the UNet's inputs, and `classify`.

    Without a `vae` the UNet diffuses images (pixel space). With one, the UNet diffuses the VAE's scaled latents (see
    [`~pipelines.latent_codec`]): images are encoded (the posterior's mode, so classification and counterfactuals are
    deterministic) and samples are decoded, so that every image a pipeline takes or returns is at `pixel_size`.
    """

    _optional_components = ["vae"]

    def __init__(
        self,
        unet: JointUNet2DModel,
        scheduler: SchedulerMixin,
        intensity_normalization: str = "dtype",
        intensity_range: list[float] | None = None,
        vae: AutoencoderKL | None = None,
        pixel_channels: int | None = None,
    ):
        super().__init__()
        if vae is None:
            if pixel_channels is not None and pixel_channels != unet.config.in_channels:
                raise ValueError(
                    f"`pixel_channels`={pixel_channels} differs from unet.config.in_channels="
                    f"{unet.config.in_channels}: without a `vae` the UNet takes the images themselves."
                )
        else:
            check_vae_matches_unet(vae, unet, pixel_channels or vae.config.in_channels)
            if scheduler.config.get("clip_sample"):
                logger.warning(
                    f"The scheduler clips its predicted clean sample to +-{scheduler.config.get('clip_sample_range')} "
                    "(clip_sample=True), made for images in [-1, 1]; scaled latents leave that range. Build latent "
                    "pipelines' schedulers with clip_sample=False, as diffusers' latent diffusion pipelines do."
                )
        self.register_modules(unet=unet, scheduler=scheduler, vae=vae)
        # checked here, saved in model_index.json: from_pretrained passes the values back to __init__
        normalization = IntensityNormalization(intensity_normalization, intensity_range)
        self.register_to_config(**normalization.to_config(), pixel_channels=pixel_channels)

    @classmethod
    def from_joint_pipeline(cls, pipeline: JointClassifierMixin) -> JointClassifierMixin:
        """
        A pipeline of this class on the components and saved settings of another Joint Diffusion pipeline (the same
        modules, not copies): e.g. `CounterfactualPipeline.from_joint_pipeline(pipe)` explains with the model a
        [`JointDiffusionPipeline`] samples with, latent or not. Unlike `from_pipe`, it leaves the modules' dtype alone.
        """
        return cls(
            unet=pipeline.unet,
            scheduler=pipeline.scheduler,
            vae=pipeline.vae,
            pixel_channels=pipeline.config.get("pixel_channels"),
            **pipeline.image_normalization.to_config(),
        )

    @property
    def image_normalization(self) -> IntensityNormalization:
        """
        The intensity normalisation the model was trained with, saved in `model_index.json` and applied to every input
        image; pipelines saved without one use the dtype's range.
        """
        config = self.config
        return IntensityNormalization(config.get("intensity_normalization", "dtype"), config.get("intensity_range"))

    @property
    def vae_scale_factor(self) -> int:
        """How many pixels one of the UNet's inputs spans per side: 1 without a VAE, 8 for a kl-f8 VAE."""
        return 1 if self.vae is None else vae_scale_factor(self.vae)

    @property
    def pixel_size(self) -> int | tuple[int, int]:
        """
        The size of the images the pipeline takes and returns: the UNet's `sample_size`, times the VAE's
        [`vae_scale_factor`] for a latent pipeline. A `ValueError` says what to do when the UNet's config has no
        `sample_size`.
        """
        sample_size = unet_sample_size(self.unet)
        return sample_size if self.vae is None else latent_to_pixel_size(self.vae, sample_size)

    @property
    def pixel_channels(self) -> int:
        """
        The channels of the images the pipeline takes and returns: the UNet's `in_channels`, or for a latent pipeline
        the `pixel_channels` it was built with (1 for grayscale images through a 3-channel VAE), by default the VAE's
        `in_channels`.
        """
        if self.vae is None:
            return self.unet.config.in_channels
        return self.config.get("pixel_channels") or self.vae.config.in_channels

    @property
    def image_preprocessor(self) -> ImagePreprocessor:
        """
        The [`~data.transforms.ImagePreprocessor`] of the images the pipeline takes: `pixel_size`, `pixel_channels`
        and the `image_normalization` the model was trained with. Use it to turn a dataset into inputs, e.g.
        `dataset_to_tensors(dataset.eval, pipe.image_preprocessor)`, as [`preprocess`] does for a batch.
        """
        return ImagePreprocessor(self.pixel_size, self.pixel_channels, normalization=self.image_normalization)

    @property
    def pixel_dtype(self) -> torch.dtype:
        """The dtype images are handled in: the VAE's (the UNet's without one)."""
        return self.unet.dtype if self.vae is None else self.vae.dtype

    def preprocess(self, images: ImageInput, name: str = "image") -> torch.Tensor:
        """
        Images as `(batch, pixel_channels, pixel_size, pixel_size)` float tensors in [-1, 1] on the CPU, with the
        pipeline's `image_normalization` (see [`preprocess_images`]).
        """
        return preprocess_images(
            self.unet,
            images,
            name=name,
            normalization=self.image_normalization,
            sample_size=self.pixel_size,
            in_channels=self.pixel_channels,
        )

    def images_to_latents(self, images: torch.Tensor) -> torch.Tensor:
        """
        The UNet's inputs for images in [-1, 1] at `pixel_size`: the VAE's scaled latents (the posterior's mode, see
        [`~pipelines.latent_codec.encode_images`]), or the images themselves without a VAE; on the execution device,
        in the UNet's dtype.
        """
        device = self._execution_device
        if self.vae is None:
            return images.to(device=device, dtype=self.unet.dtype)
        return encode_images(self.vae, images.to(device)).to(dtype=self.unet.dtype)

    def latents_to_images(self, latents: torch.Tensor) -> torch.Tensor:
        """
        Images in [-1, 1] (clamped) from the UNet's inputs: decoded by the VAE to `pixel_size` and `pixel_channels`
        (see [`~pipelines.latent_codec.decode_latents`]), or the inputs themselves without a VAE; in `pixel_dtype`.
        """
        if self.vae is None:
            return latents.clamp(-1, 1)
        return decode_latents(self.vae, latents, self.pixel_channels)

    @torch.no_grad()
    def classifier_logits(self, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """
        The classifier's raw logits `(batch, num_classes)` (float32, on the CPU) of preprocessed images: a tensor in
        [-1, 1] at `pixel_size` with `pixel_channels` (e.g. from [`preprocess`]), encoded first by a latent pipeline.
        Clean images, timestep 0, as the classifier was trained.
        """
        check_batch_size(batch_size)
        logits = [
            self.unet.classify(self.images_to_latents(chunk), 0).float().cpu() for chunk in images.split(batch_size)
        ]
        return torch.cat(logits)

    @torch.no_grad()
    def classify(self, images: ImageInput, batch_size: int = 64) -> JointClassificationOutput:
        r"""
        Classify images with the joint model's classifier (clean images, timestep 0).

        Args:
            images (`str`, `os.PathLike`, `PIL.Image.Image`, `np.ndarray`, `torch.Tensor` or a list of them):
                The images, in pixel space (a latent pipeline encodes them with its VAE; it does not take latents).
                File paths (PNG, TIFF, JPEG, `.npy`, `.npz`, DICOM), PIL images and numpy arrays get the pipeline's
                `image_normalization` and are converted to `pixel_channels`; everything is resized to `pixel_size`
                (the UNet's `sample_size` without a VAE) with the preprocessing used for training. Tensors are in
                [-1, 1] (a tensor, or a list of tensors, without any negative value is read as [0, 1]) and must have
                `pixel_channels`.
            batch_size (`int`, *optional*, defaults to 64):
                How many images go through the model at once.

        Returns:
            [`JointClassificationOutput`]: predicted `labels`, `probs` and `label_names` (on the CPU).
        """
        check_batch_size(batch_size)
        pixels = self.preprocess(images, name="images")
        probs = probs_from_logits(self.unet, self.classifier_logits(pixels, batch_size))
        labels = labels_from_probs(self.unet, probs)
        self.maybe_free_model_hooks()
        return JointClassificationOutput(labels=labels, probs=probs, label_names=label_names_of(self.unet, labels))
