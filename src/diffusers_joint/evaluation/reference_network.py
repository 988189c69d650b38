# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
`ReferenceClassifier`: a small CNN trained only on real labeled images, independent of the joint model.

Generation and counterfactual metrics must not be judged by the model that produced the images (a joint model can
"agree with itself" on images that look nothing like the data). This network plays the role Inception plays for FID on
natural images, but works offline at any resolution and channel count: its penultimate features feed the Frechet
distance, KID and precision / recall, and its predictions judge class-guided samples and counterfactuals.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import logging
from torch import nn

from ..models.unet_2d_joint import MULTI_LABEL, PROBLEM_TYPES, SINGLE_LABEL

logger = logging.get_logger(__name__)


class ReferenceClassifier(ModelMixin, ConfigMixin):
    r"""
    A small VGG-style CNN (a shape unrelated to the joint model's UNet) for images in [-1, 1].

    Each stage is two 3x3 convolutions with ReLU and a 2x2 max-pool; an adaptive average pool to 2x2, a linear layer
    to `feature_dim` features with ReLU (the features used by the generation metrics, see
    [`~ReferenceClassifier.features`]) and a linear classifier follow. Saved and loaded with `save_pretrained` /
    `from_pretrained` (safetensors weights and a `config.json`), like any diffusers model.

    Parameters:
        in_channels (`int`, *optional*, defaults to 1):
            Channels of the input images (1 for grayscale, 3 for RGB): the joint model's `in_channels`.
        sample_size (`int`, *optional*, defaults to 28):
            Height and width of the input images: the joint model's `sample_size`. Inputs of another size are resized.
        num_classes (`int`, *optional*, defaults to 10):
            Number of classes (labels, for multi-label problems).
        block_out_channels (`tuple[int]`, *optional*, defaults to `(16, 32)`):
            Channels of each convolutional stage; each stage halves the resolution.
        feature_dim (`int`, *optional*, defaults to 128):
            Size of the penultimate features.
        problem_type (`str`, *optional*, defaults to `"single_label_classification"`):
            `"single_label_classification"` (softmax, cross-entropy) or `"multi_label_classification"` (sigmoid, binary
            cross-entropy).
        label_names (`list[str]`, *optional*):
            Class names, stored in the config for reference.
        norm_num_groups (`int`, *optional*):
            Group-normalise after each convolution with this many groups (at most the channels): needed for
            small, local findings in large images (the 128-px lesion set), where the plain network stays at chance.
            `None` (the default) keeps the plain VGG-style network.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 1,
        sample_size: int = 28,
        num_classes: int = 10,
        block_out_channels: tuple[int, ...] = (16, 32),
        feature_dim: int = 128,
        problem_type: str = SINGLE_LABEL,
        label_names: list[str] | None = None,
        norm_num_groups: int | None = None,
    ):
        super().__init__()
        if problem_type not in PROBLEM_TYPES:
            raise ValueError(f"Unknown problem_type {problem_type!r}; expected one of {PROBLEM_TYPES}.")
        if num_classes < 1:
            raise ValueError(f"`num_classes` must be at least 1, got {num_classes}.")
        if label_names is not None and len(label_names) != num_classes:
            raise ValueError(f"Got {len(label_names)} label names for {num_classes} classes.")
        layers: list[nn.Module] = []
        channels = in_channels
        for out_channels in block_out_channels:
            for conv_in in (channels, out_channels):
                layers.append(nn.Conv2d(conv_in, out_channels, 3, padding=1))
                if norm_num_groups:
                    layers.append(nn.GroupNorm(min(norm_num_groups, out_channels), out_channels))
                layers.append(nn.ReLU())
            layers.append(nn.MaxPool2d(2, ceil_mode=True))  # ceil_mode keeps odd sizes (e.g. 7x7) from losing a row
            channels = out_channels
        self.conv = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(2))
        self.projection = nn.Linear(channels * 4, feature_dim)
        self.classifier = nn.Linear(feature_dim, num_classes)

    @property
    def is_multi_label(self) -> bool:
        return self.config.problem_type == MULTI_LABEL

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != self.config.in_channels:
            raise ValueError(
                f"Expected images of shape (batch, {self.config.in_channels}, height, width) in [-1, 1], got "
                f"{tuple(images.shape)}."
            )
        size = self.config.sample_size
        images = images.to(device=self.device, dtype=self.dtype)
        if tuple(images.shape[-2:]) != (size, size):
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return images

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """
        Penultimate features `(batch, feature_dim)` of images `(batch, in_channels, H, W)` in [-1, 1]: the
        representation compared by the Frechet distance, KID and precision / recall.
        """
        return F.relu(self.projection(self.conv(self._prepare(images)).flatten(1)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits `(batch, num_classes)` of images `(batch, in_channels, H, W)` in [-1, 1]."""
        return self.classifier(self.features(images))

    @torch.no_grad()
    def extract_features(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """[`~ReferenceClassifier.features`] in eval mode and in batches, returned on the CPU as float32."""
        return self._batched(self.features, images, batch_size)

    @torch.no_grad()
    def predict_proba(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Class probabilities `(N, num_classes)` (softmax, or sigmoid for multi-label), on the CPU as float32."""
        logits = self._batched(self.forward, images, batch_size)
        return logits.sigmoid() if self.is_multi_label else logits.softmax(dim=1)

    def _batched(self, function, images: torch.Tensor, batch_size: int) -> torch.Tensor:
        was_training = self.training
        self.eval()
        try:
            return torch.cat([function(chunk).float().cpu() for chunk in images.split(batch_size)])
        finally:
            self.train(was_training)


def train_reference_classifier(
    images: torch.Tensor,
    labels: torch.Tensor | np.ndarray,
    num_classes: int | None = None,
    problem_type: str = SINGLE_LABEL,
    label_names: list[str] | None = None,
    num_epochs: int = 10,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    weight_decay: float = 1e-4,
    block_out_channels: tuple[int, ...] = (16, 32),
    feature_dim: int = 128,
    norm_num_groups: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> ReferenceClassifier:
    """
    Train a [`ReferenceClassifier`] on real labeled images (rows labeled -1, all -1 for multi-label, are dropped).

    Training is deterministic for a given `seed` on the CPU (initialisation and shuffling use their own generators, so
    the global random state is left untouched). On one CPU thread an epoch over 5,000 28x28 grayscale images takes
    about 5 s; 10 epochs on the 1,437 training digits of scikit-learn (8x8) take 2 s and reach about 95% test accuracy.

    Args:
        images (`torch.Tensor` of shape `(N, C, H, W)`):
            Real training images in [-1, 1], at the resolution and channels the network will judge.
        labels (`torch.Tensor` or `np.ndarray`):
            Class indices `(N,)`, or multi-hot rows `(N, num_classes)` for multi-label problems.
        num_classes (`int`, *optional*):
            Number of classes. Defaults to `max(labels) + 1` (single-label) or the width of `labels` (multi-label).
        problem_type (`str`, *optional*, defaults to `"single_label_classification"`):
            `"single_label_classification"` or `"multi_label_classification"`.
        label_names (`list[str]`, *optional*):
            Class names stored in the model config.
        num_epochs (`int`, *optional*, defaults to 10):
            Passes over the training images.
        batch_size (`int`, *optional*, defaults to 64):
            Images per optimisation step.
        learning_rate (`float`, *optional*, defaults to 3e-3):
            Peak AdamW learning rate (cosine-annealed to 0 over training).
        weight_decay (`float`, *optional*, defaults to 1e-4):
            AdamW weight decay.
        block_out_channels (`tuple[int]`, *optional*, defaults to `(16, 32)`):
            See [`ReferenceClassifier`].
        feature_dim (`int`, *optional*, defaults to 128):
            See [`ReferenceClassifier`].
        norm_num_groups (`int`, *optional*):
            See [`ReferenceClassifier`].
        seed (`int`, *optional*, defaults to 0):
            Seed of the initialisation and of the batch order.
        device (`str` or `torch.device`, *optional*, defaults to `"cpu"`):
            Where to train.

    Returns:
        [`ReferenceClassifier`]: the trained network, in eval mode.
    """
    labels = torch.as_tensor(np.asarray(labels) if isinstance(labels, np.ndarray) else labels)
    if images.ndim != 4 or len(images) != len(labels):
        raise ValueError(
            f"Expected images (N, C, H, W) and N labels, got images {tuple(images.shape)} and {len(labels)} labels."
        )
    if problem_type == MULTI_LABEL:
        keep = ~(labels == -1).all(dim=1)
    else:
        keep = labels != -1
    images, labels = images[keep], labels[keep]
    if len(images) == 0:
        raise ValueError("No labeled image to train the reference classifier on.")
    if num_classes is None:
        num_classes = int(labels.shape[1]) if problem_type == MULTI_LABEL else int(labels.max()) + 1
    height, width = images.shape[-2:]
    if height != width:
        raise ValueError(f"Expected square images, got {height}x{width}.")

    # A private generator for the initialisation keeps the caller's global random state as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ReferenceClassifier(
            in_channels=images.shape[1],
            sample_size=int(height),
            num_classes=num_classes,
            block_out_channels=tuple(block_out_channels),
            feature_dim=feature_dim,
            norm_num_groups=norm_num_groups,
            problem_type=problem_type,
            label_names=label_names,
        )
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    steps_per_epoch = -(-len(images) // batch_size)
    lr_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=num_epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    images = images.float()
    shift = int(height) // 16  # 1 pixel at 16-31 px, none on tiny images where a pixel is a large part of a digit
    labels = labels.float() if problem_type == MULTI_LABEL else labels.long()
    for epoch in range(num_epochs):
        order = torch.randperm(len(images), generator=generator)
        total = 0.0
        for start in range(0, len(images), batch_size):
            index = order[start : start + batch_size]
            x, y = images[index].to(device), labels[index].to(device)
            if shift:
                # Small random shifts make the judge less brittle on generated images.
                dx, dy = torch.randint(-shift, shift + 1, (2,), generator=generator).tolist()
                x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
            logits = model(x)
            if problem_type == MULTI_LABEL:
                loss = F.binary_cross_entropy_with_logits(logits, y)
            else:
                loss = F.cross_entropy(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            lr_schedule.step()
            total += loss.item() * len(index)
        logger.info(f"reference classifier epoch {epoch + 1}/{num_epochs}: loss {total / len(images):.4f}")
    return model.eval()
