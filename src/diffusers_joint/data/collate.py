# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Turn dataset rows (`{"image": PIL image, "label": ...}`) into model-ready batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from diffusers.utils import logging

from .joint_dataset import PROBLEM_TYPES, SINGLE_LABEL
from .transforms import ImagePreprocessor

logger = logging.get_logger(__name__)


class JointCollator:
    """
    A `collate_fn` for `torch.utils.data.DataLoader` that batches rows of a [`JointDataset`] split.

    The returned dict holds:

    - `"pixel_values"`: `torch.float32` of shape `(B, C, H, W)` in [-1, 1] (the preprocessor's output, randomly
      flipped if the preprocessor says so);
    - `"labels"`: `torch.long` of shape `(B,)` with -1 for unlabeled rows (single-label), or `torch.float32` of shape
      `(B, L)` of 0/1 with rows of -1 for unlabeled rows (multi-label);
    - `"labeled_mask"`: `torch.bool` of shape `(B,)`, `True` where the label is known.

    Augmented views (the classifier's, FixMatch's) are drawn from the collated batch by [`JointAugmentation`].

    Args:
        preprocessor (`ImagePreprocessor`):
            Converts each image to a `(C, H, W)` tensor in [-1, 1] at the model's resolution.
        problem_type (`str`):
            `"single_label_classification"` or `"multi_label_classification"`.
        num_classes (`int`):
            Number of classes (the length of a multi-label row).
        generator (`torch.Generator`, *optional*):
            Source of randomness for the preprocessor's flips, for reproducible batches. Note that data loader worker
            processes each get a copy of it.
        image_column (`str`, *optional*, defaults to `"image"`):
            Key of the image in each row.
        label_column (`str`, *optional*, defaults to `"label"`):
            Key of the label in each row (a missing key or `None` means unlabeled).
    """

    def __init__(
        self,
        preprocessor: ImagePreprocessor,
        problem_type: str,
        num_classes: int,
        generator: torch.Generator | None = None,
        image_column: str = "image",
        label_column: str = "label",
    ):
        if problem_type not in PROBLEM_TYPES:
            raise ValueError(f"Expected `problem_type` to be one of {PROBLEM_TYPES}, got {problem_type!r}.")
        if int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"Expected `num_classes` to be a positive integer, got {num_classes!r}.")
        self.preprocessor = preprocessor
        self.problem_type = problem_type
        self.num_classes = int(num_classes)
        self.generator = generator
        self.image_column = image_column
        self.label_column = label_column

    def _labels(self, rows: Sequence[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        raw = [row.get(self.label_column) for row in rows]
        if self.problem_type == SINGLE_LABEL:
            values = [-1 if label is None else int(label) for label in raw]
            labels = torch.tensor(values, dtype=torch.long)
            if ((labels < -1) | (labels >= self.num_classes)).any():
                raise ValueError(
                    f"Expected single-label class indices in [0, {self.num_classes}) or -1 for unlabeled, got "
                    f"{values}. Check `num_classes` and the dataset's labels."
                )
            return labels, labels >= 0
        rows_out = []
        for label in raw:
            row = [-1] * self.num_classes if label is None else list(label)
            if len(row) != self.num_classes:
                raise ValueError(
                    f"Expected multi-label rows of length {self.num_classes} (num_classes), got a row of length "
                    f"{len(row)}. Check `num_classes` against the dataset's label names."
                )
            rows_out.append(row)
        labels = torch.tensor(rows_out, dtype=torch.float32).reshape(len(rows), self.num_classes)
        return labels, ~(labels == -1).all(dim=1)

    def _pixel_values(self, rows: Sequence[dict[str, Any]]) -> torch.Tensor:
        missing = [i for i, row in enumerate(rows) if self.image_column not in row]
        if missing:
            raise ValueError(
                f"Expected every row to have an {self.image_column!r} key, but rows {missing} have keys "
                f"{sorted(rows[missing[0]])}. Pass `image_column` or normalise the dataset with `load_joint_dataset`."
            )
        return torch.stack(
            [self.preprocessor(row[self.image_column], generator=self.generator) for row in rows]
        ).float()

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if len(rows) == 0:
            raise ValueError("Expected a non-empty list of rows to collate, got an empty list.")
        pixel_values = self._pixel_values(rows)
        labels, labeled_mask = self._labels(rows)
        return {"pixel_values": pixel_values, "labels": labels, "labeled_mask": labeled_mask}


class LatentCollator(JointCollator):
    """
    A [`JointCollator`] for rows that hold their image's cached latents (`train_joint.py --cache_latents`) in
    `latent_column` instead of the image: `"pixel_values"` is then the batch of latents, `(B, C, h, w)` float32, and
    the labels are collated as [`JointCollator`] does. `preprocessor` may be `None`.
    """

    def __init__(self, problem_type: str, num_classes: int, latent_column: str = "latents", **kwargs):
        super().__init__(None, problem_type, num_classes, **kwargs)
        self.latent_column = latent_column

    def _pixel_values(self, rows: Sequence[dict[str, Any]]) -> torch.Tensor:
        if any(self.latent_column not in row for row in rows):
            raise ValueError(f"Expected every row to hold its cached latents in {self.latent_column!r}.")
        return torch.stack([torch.as_tensor(row[self.latent_column]) for row in rows]).float()


def build_collate_fn(
    preprocessor: ImagePreprocessor,
    problem_type: str,
    num_classes: int,
    generator: torch.Generator | None = None,
) -> JointCollator:
    """Shorthand for [`JointCollator`] with the default column names."""
    return JointCollator(preprocessor, problem_type, num_classes, generator=generator)
