# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""A batch sampler that puts a fixed share of labeled examples in every batch (semi-supervised training)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from diffusers.utils import logging

logger = logging.get_logger(__name__)


class _Cycler:
    """Draw indices from a pool by walking through seeded permutations, reshuffling after every full pass."""

    def __init__(self, pool: np.ndarray, rng: np.random.Generator):
        self.pool = pool
        self.rng = rng
        self.order = rng.permutation(pool)
        self.position = 0

    def take(self, count: int) -> list[int]:
        out: list[int] = []
        while len(out) < count:
            if self.position == len(self.order):
                self.order = self.rng.permutation(self.pool)
                self.position = 0
            step = min(count - len(out), len(self.order) - self.position)
            out.extend(self.order[self.position : self.position + step].tolist())
            self.position += step
        return out


class MixedBatchSampler(torch.utils.data.Sampler[list[int]]):
    """
    A batch sampler whose every batch holds the same share of labeled examples.

    Each batch has `num_labeled_per_batch = round(batch_size * labeled_batch_fraction)` labeled indices (at least one
    when the fraction is positive and labeled examples exist) and `batch_size - num_labeled_per_batch` "unlabeled"
    indices. Both parts cycle through seeded permutations of their pool, reshuffled after each pass, so that a handful
    of labeled examples are revisited often. The unlabeled part draws from the examples *without* a label, or from all
    examples when every example is labeled (fully supervised data): there, their labels are still present in the batch
    and the training loop may use them. Labeled indices come first in every batch. All batches are full.

    When `labeled_batch_fraction` is 0 or no example is labeled, batches are plain random batches over all examples.

    Pass it as `batch_sampler=` to a `torch.utils.data.DataLoader` (it also works after `accelerate`'s `prepare`, which
    shards batch samplers across processes). Call [`~MixedBatchSampler.set_epoch`] at the start of every epoch: the
    batches of epoch `e` depend only on `seed + e`, so a resumed run reproduces them.

    Args:
        labels_are_known (`Sequence[bool]` or `np.ndarray`):
            One boolean per dataset example: whether its label is known (see [`is_labeled`]).
        batch_size (`int`):
            Number of indices per batch.
        labeled_batch_fraction (`float`, *optional*, defaults to 0.25):
            Share of each batch taken from the labeled examples, in [0, 1].
        seed (`int`, *optional*, defaults to 0):
            Base seed; epoch `e` uses `seed + e`.
        num_batches (`int`, *optional*):
            Batches per epoch. Defaults to `ceil(len(labels_are_known) / batch_size)`.
    """

    drop_last = False

    def __init__(
        self,
        labels_are_known: Sequence[bool] | np.ndarray,
        batch_size: int,
        labeled_batch_fraction: float = 0.25,
        seed: int = 0,
        num_batches: int | None = None,
    ):
        known = np.asarray(labels_are_known, dtype=bool).reshape(-1)
        if len(known) == 0:
            raise ValueError("Expected `labels_are_known` to have one entry per example, got an empty sequence.")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"Expected `batch_size` to be a positive integer, got {batch_size!r}.")
        if not 0.0 <= labeled_batch_fraction <= 1.0:
            raise ValueError(
                f"Expected `labeled_batch_fraction` in [0, 1], got {labeled_batch_fraction!r}. Use 0 for plain random "
                "batches and 1 for batches made only of labeled examples."
            )
        if num_batches is not None and (int(num_batches) != num_batches or num_batches < 1):
            raise ValueError(f"Expected `num_batches` to be a positive integer or None, got {num_batches!r}.")

        self.batch_size = int(batch_size)
        self.labeled_batch_fraction = float(labeled_batch_fraction)
        self.seed = int(seed)
        self.epoch = 0
        self.num_batches = int(num_batches) if num_batches is not None else math.ceil(len(known) / self.batch_size)
        self.labeled_indices = np.flatnonzero(known)
        unlabeled = np.flatnonzero(~known)
        self.unlabeled_indices = unlabeled if len(unlabeled) else np.arange(len(known))

        if len(self.labeled_indices) == 0 or self.labeled_batch_fraction == 0:
            if self.labeled_batch_fraction > 0:
                logger.warning("No example is labeled: MixedBatchSampler yields plain random batches.")
            self.num_labeled_per_batch = 0
            self.unlabeled_indices = np.arange(len(known))
        else:
            self.num_labeled_per_batch = min(
                self.batch_size, max(1, int(round(self.batch_size * self.labeled_batch_fraction)))
            )

    def data_weights(self) -> tuple[float, float]:
        """
        Per-example weights `(labeled, unlabeled)` under which the mean over a batch estimates the mean over the data:
        each part's share of the examples divided by its share of the batch.

        Mixed batches oversample the labeled examples (with 50 labeled of 3,600 images, half of every batch comes from
        the 50). Weighting the denoising error this way makes the generator learn the data rather than a mixture
        half-made of the labeled images. Batches that need no reweighting give `(1.0, 1.0)`: plain random ones,
        labeled-only ones, and those of fully labeled data, whose two parts draw from the same examples.
        """
        num_unlabeled_per_batch = self.batch_size - self.num_labeled_per_batch
        both_parts_from_all = np.array_equal(self.labeled_indices, self.unlabeled_indices)  # every example labeled
        if not self.num_labeled_per_batch or not num_unlabeled_per_batch or both_parts_from_all:
            return 1.0, 1.0
        num_labeled, num_unlabeled = len(self.labeled_indices), len(self.unlabeled_indices)
        total = num_labeled + num_unlabeled
        labeled = (num_labeled / total) / (self.num_labeled_per_batch / self.batch_size)
        unlabeled = (num_unlabeled / total) / (num_unlabeled_per_batch / self.batch_size)
        return labeled, unlabeled

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch: the batches of an epoch are a deterministic function of `seed + epoch`."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng(self.seed + self.epoch)
        num_unlabeled = self.batch_size - self.num_labeled_per_batch
        labeled = _Cycler(self.labeled_indices, rng) if self.num_labeled_per_batch else None
        unlabeled = _Cycler(self.unlabeled_indices, rng) if num_unlabeled else None
        for _ in range(self.num_batches):
            batch = labeled.take(self.num_labeled_per_batch) if labeled is not None else []
            if unlabeled is not None:
                batch += unlabeled.take(num_unlabeled)
            yield batch


def mixed_batch_dataloader(
    dataset: torch.utils.data.Dataset,
    labeled: Sequence[bool] | np.ndarray,
    collate_fn: Callable[[list[dict]], dict],
    batch_size: int,
    labeled_batch_fraction: float = 0.5,
    seed: int = 0,
    num_workers: int = 0,
) -> torch.utils.data.DataLoader:
    """
    A `DataLoader` over `dataset` whose batches mix labeled and unlabeled images ([`MixedBatchSampler`], reached as
    its `batch_sampler`): `labeled_batch_fraction` of every batch when some images are labeled and some are not,
    plain shuffled batches otherwise; `ceil(len(dataset) / batch_size)` batches an epoch.
    """
    labeled = np.asarray(labeled, dtype=bool)
    mixed = 0 < labeled.sum() < len(labeled)
    sampler = MixedBatchSampler(
        labeled,
        batch_size=batch_size,
        labeled_batch_fraction=labeled_batch_fraction if mixed else 0.0,
        seed=seed,
        num_batches=math.ceil(len(labeled) / batch_size),
    )
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_fn, num_workers=num_workers)
