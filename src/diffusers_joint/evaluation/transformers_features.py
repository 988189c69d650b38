# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
`TransformersFeatureExtractor`: features of any 🤗 transformers vision model (`AutoModel`, e.g. DINOv2) for the
generation metrics, as an alternative to the [`ReferenceClassifier`]'s features.

The generative-evaluation literature now recommends self-supervised features such as DINOv2's over Inception's
(Stein et al., *Exposing flaws of generative model evaluation metrics*, NeurIPS 2023): they rank models more like
people do. They are features of natural photographs, so on 8-28 px grayscale images they say less than on natural
images; compare values only between runs measured with the same model.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from diffusers.utils import logging

logger = logging.get_logger(__name__)

# Used when the model folder has no image processor config (torchvision's ImageNet statistics, the usual default).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
POOLINGS = ("auto", "pooler", "cls", "mean")


class TransformersFeatureExtractor:
    r"""
    Image features from a transformers vision backbone: images in [-1, 1] (any resolution, 1 or 3 channels) are
    mapped to [0, 1], repeated to 3 channels if needed, resized to the model's `image_size` (bilinear, antialiased),
    normalised with the image processor's mean and std, and pooled to one vector per image.

    Args:
        model (`transformers.PreTrainedModel`):
            A vision model whose output has `last_hidden_state` (and possibly `pooler_output`), e.g. from
            `AutoModel.from_pretrained("facebook/dinov2-base")`.
        image_mean (`tuple[float]`, *optional*):
            Per-channel mean of the model's input normalisation (default: ImageNet's).
        image_std (`tuple[float]`, *optional*):
            Per-channel std of the model's input normalisation (default: ImageNet's).
        image_size (`int`, *optional*):
            Side the images are resized to; defaults to `model.config.image_size` (224 when the config has none).
        pooling (`str`, *optional*, defaults to `"auto"`):
            `"pooler"` (the model's `pooler_output`; for DINOv2 the normalised CLS token), `"cls"` (the first token of
            `last_hidden_state`), `"mean"` (the mean over tokens, or over positions of a convolutional feature map) or
            `"auto"`: `pooler_output` when the model has one, otherwise `"cls"` for token sequences and `"mean"` for
            feature maps.
        batch_size (`int`, *optional*, defaults to 64):
            Images per forward pass.

    Example:

    ```py
    >>> import torch
    >>> from transformers import Dinov2Config, Dinov2Model
    >>> from diffusers_joint.evaluation import TransformersFeatureExtractor, frechet_distance

    >>> # a tiny random DINOv2 here; TransformersFeatureExtractor.from_pretrained("facebook/dinov2-base") in practice
    >>> config = Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
    ...                       image_size=32, patch_size=8)
    >>> extractor = TransformersFeatureExtractor(Dinov2Model(config))
    >>> real, fake = torch.rand(16, 1, 28, 28) * 2 - 1, torch.rand(16, 1, 28, 28) * 2 - 1
    >>> extractor.extract_features(real).shape
    torch.Size([16, 32])
    >>> frechet_distance(extractor.extract_features(real), extractor.extract_features(real))
    0.0
    ```
    """

    def __init__(
        self,
        model,
        image_mean: tuple[float, ...] | None = None,
        image_std: tuple[float, ...] | None = None,
        image_size: int | None = None,
        pooling: str = "auto",
        batch_size: int = 64,
    ):
        if pooling not in POOLINGS:
            raise ValueError(f"Unknown pooling {pooling!r}; expected one of {POOLINGS}.")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
        self.model = model.eval()
        self.name = getattr(model.config, "_name_or_path", "") or type(model).__name__
        self.num_channels = getattr(model.config, "num_channels", 3)
        size = image_size or getattr(model.config, "image_size", None) or 224
        self.image_size = size if isinstance(size, int) else int(size[0])
        mean = IMAGENET_MEAN if image_mean is None else image_mean
        std = IMAGENET_STD if image_std is None else image_std
        self.image_mean = torch.tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        self.image_std = torch.tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
        self.pooling = pooling
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, device: str | torch.device | None = None, **kwargs
    ) -> TransformersFeatureExtractor:
        """
        Load a vision model with `transformers.AutoModel` from a Hub id or a folder (safetensors weights only: pickled
        weights are refused), with the mean and std of its `AutoImageProcessor` when the folder has one. `kwargs` go
        to the constructor.

        Raises:
            `OSError`: when the model cannot be found (offline, a Hub id must be in the local cache) or has no
                safetensors weights; the message names it.
        """
        from transformers import AutoImageProcessor, AutoModel

        name = os.fspath(pretrained_model_name_or_path)
        try:
            model = AutoModel.from_pretrained(name, use_safetensors=True)
        except (OSError, ValueError) as error:
            raise OSError(
                f"Cannot load a transformers vision model from {name!r} (a Hub id, cached when offline, or a folder "
                f"with config.json and safetensors weights): {error}"
            ) from error
        if "image_mean" not in kwargs or "image_std" not in kwargs:
            try:
                processor = AutoImageProcessor.from_pretrained(name)
                kwargs.setdefault("image_mean", tuple(processor.image_mean))
                kwargs.setdefault("image_std", tuple(processor.image_std))
            except (OSError, ValueError, AttributeError):
                logger.warning(f"{name!r} has no image processor with a mean and std: using ImageNet's.")
        if device is not None:
            model = model.to(device)
        return cls(model, **kwargs)

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4:
            raise ValueError(f"Images must have shape (batch, channels, height, width), got {tuple(images.shape)}.")
        channels = images.shape[1]
        if channels == 1 and self.num_channels == 3:
            images = images.expand(-1, 3, -1, -1)
        elif channels != self.num_channels:
            raise ValueError(f"Images have {channels} channels; the model takes {self.num_channels} (or 1, repeated).")
        pixels = ((images.float() + 1) / 2).clamp(0, 1)
        size = (self.image_size, self.image_size)
        if tuple(pixels.shape[-2:]) != size:
            pixels = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False, antialias=True)
        return (pixels - self.image_mean) / self.image_std

    def _pool(self, output) -> torch.Tensor:
        pooled = getattr(output, "pooler_output", None)
        hidden = output.last_hidden_state
        pooling = self.pooling
        if pooling == "auto":
            pooling = "pooler" if pooled is not None else "cls" if hidden.ndim == 3 else "mean"
        if pooling == "pooler":
            if pooled is None:
                raise ValueError(f"{type(self.model).__name__} has no pooler_output: use pooling='cls' or 'mean'.")
            return pooled.flatten(1)
        if pooling == "cls":
            if hidden.ndim != 3:
                raise ValueError("pooling='cls' needs a token sequence; this model returns a feature map: use 'mean'.")
            return hidden[:, 0]
        return hidden.mean(dim=1) if hidden.ndim == 3 else hidden.flatten(2).mean(dim=2)

    @torch.no_grad()
    def extract_features(self, images: torch.Tensor) -> torch.Tensor:
        """
        Features of `images` (`(N, C, H, W)` in [-1, 1]), as a float32 `(N, D)` tensor on the CPU: the same interface
        as [`ReferenceClassifier.extract_features`], so either feeds [`compute_generation_metrics`].
        """
        device = self.model.device
        chunks = []
        for chunk in images.split(self.batch_size):
            pixels = self._prepare(chunk.cpu()).to(device=device, dtype=self.model.dtype)
            chunks.append(self._pool(self.model(pixel_values=pixels)).float().cpu())
        return torch.cat(chunks)
