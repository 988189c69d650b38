# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Label scarcity: choose which examples keep their label and hide (set to -1) all the others."""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import numpy as np
from diffusers.utils import logging

logger = logging.get_logger(__name__)

UNLABELED = -1


def is_labeled(labels: Sequence | np.ndarray) -> np.ndarray:
    """
    Tell which examples carry a label.

    Args:
        labels (`Sequence` or `np.ndarray`):
            Single-label class indices of shape `(N,)` (or `(N, 1)`) where -1 means unlabeled, or multi-label rows of
            shape `(N, L)` where a row of all -1 means unlabeled.

    Returns:
        `np.ndarray`: A boolean array of shape `(N,)`.
    """
    array = _as_label_array(labels)
    if array.ndim == 1:
        return array != UNLABELED
    return ~(array == UNLABELED).all(axis=1)


def unlabel_partial_rows(labels: np.ndarray, where: str) -> np.ndarray:
    """
    Turn multi-label rows with some findings unknown (-1, e.g. CheXpert's "uncertain") into unlabeled rows (all -1).

    The classifier loss counts a multi-label row only when every finding is known, so a partly known row must be
    unlabeled everywhere else too ([`is_labeled`], label budgets, evaluation). Logs a warning with how many rows of
    `where` (a split, a file) were turned unlabeled.

    Args:
        labels (`np.ndarray`):
            Multi-label rows `(N, L)` of 0, 1 and -1.
        where (`str`):
            What the rows are, for the log.

    Returns:
        `np.ndarray`: a copy of `labels` (`int64`) whose partly known rows are all -1.
    """
    labels = np.array(labels, dtype=np.int64)
    unknown = labels == UNLABELED
    partial = unknown.any(axis=1) & ~unknown.all(axis=1)
    if partial.any():
        labels[partial] = UNLABELED
        logger.warning(
            f"{int(partial.sum())} of {len(labels)} multi-label rows of {where} have some findings unknown (-1): they "
            "are kept as unlabeled images, since the classifier loss only counts rows whose every finding is known."
        )
    return labels


def select_labeled_indices(
    labels: Sequence | np.ndarray,
    num_labeled: int | None = None,
    labeled_per_class: int | None = None,
    labeled_fraction: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """
    Choose, deterministically for a seed, which examples keep their label.

    Examples whose label is already -1 (all -1 for multi-label) are never selected. With none of the three options,
    every labeled example is kept.

    Args:
        labels (`Sequence` or `np.ndarray`):
            Single-label class indices `(N,)` with -1 for unlabeled, or multi-label 0/1 rows `(N, L)` with rows of -1
            for unlabeled.
        num_labeled (`int`, *optional*):
            Keep exactly this many labels. For single-label data they are spread across classes as evenly as possible
            (a class with too few examples gives its share to the others); for multi-label data they are random rows.
        labeled_per_class (`int`, *optional*):
            Keep exactly this many labels in every class (single-label only).
        labeled_fraction (`float`, *optional*):
            Keep `round(labeled_fraction * number_of_labeled_examples)` labels (at least one), chosen like
            `num_labeled`. Must be in (0, 1].
        seed (`int`, *optional*, defaults to 0):
            Seed of the random choice.

    Returns:
        `np.ndarray`: The sorted `int64` indices of the examples that keep their label.
    """
    given = [
        name
        for name, value in (
            ("num_labeled", num_labeled),
            ("labeled_per_class", labeled_per_class),
            ("labeled_fraction", labeled_fraction),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise ValueError(
            f"Pass at most one of `num_labeled`, `labeled_per_class` and `labeled_fraction`, got {', '.join(given)}. "
            "Keep the one that describes how many labels you want."
        )
    array = _as_label_array(labels)
    multi_label = array.ndim == 2
    available = np.flatnonzero(is_labeled(array))
    rng = np.random.default_rng(seed)

    if not given:
        return available.astype(np.int64)

    if labeled_per_class is not None:
        if multi_label:
            raise ValueError(
                "`labeled_per_class` is not supported for multi-label data (an example belongs to several classes). "
                "Use `num_labeled` or `labeled_fraction` instead."
            )
        if int(labeled_per_class) != labeled_per_class or labeled_per_class < 0:
            raise ValueError(f"`labeled_per_class` must be a non-negative integer, got {labeled_per_class!r}.")
        chosen = []
        for cls in np.unique(array[available]):
            members = available[array[available] == cls]
            if len(members) < labeled_per_class:
                raise ValueError(
                    f"Class {cls} has only {len(members)} labeled examples, fewer than the requested "
                    f"labeled_per_class={labeled_per_class}. Ask for at most {len(members)} per class or use "
                    "`num_labeled`."
                )
            chosen.append(rng.choice(members, size=int(labeled_per_class), replace=False))
        return np.sort(np.concatenate(chosen)).astype(np.int64) if chosen else np.zeros(0, dtype=np.int64)

    if labeled_fraction is not None:
        if not 0 < labeled_fraction <= 1:
            raise ValueError(f"`labeled_fraction` must be in (0, 1], got {labeled_fraction!r}.")
        num_labeled = max(1, int(round(labeled_fraction * len(available)))) if len(available) else 0

    if int(num_labeled) != num_labeled or num_labeled < 0:
        raise ValueError(f"`num_labeled` must be a non-negative integer, got {num_labeled!r}.")
    num_labeled = int(num_labeled)
    if num_labeled > len(available):
        raise ValueError(
            f"Requested num_labeled={num_labeled} labels but only {len(available)} labeled examples exist. "
            f"Ask for at most {len(available)}."
        )
    if multi_label:
        return np.sort(rng.choice(available, size=num_labeled, replace=False)).astype(np.int64)

    classes, counts = np.unique(array[available], return_counts=True)
    quotas = _even_quotas(counts, num_labeled, rng)
    chosen = [
        rng.choice(available[array[available] == cls], size=quota, replace=False)
        for cls, quota in zip(classes, quotas)
    ]
    return np.sort(np.concatenate(chosen)).astype(np.int64) if chosen else np.zeros(0, dtype=np.int64)


def mask_labels(
    dataset: datasets.Dataset,
    num_labeled: int | None = None,
    labeled_per_class: int | None = None,
    labeled_fraction: float | None = None,
    seed: int = 0,
    label_column: str = "label",
) -> datasets.Dataset:
    """
    Hide the labels of all the examples not chosen by [`select_labeled_indices`].

    Args:
        dataset (`datasets.Dataset`):
            A dataset with a label column (as returned by [`load_joint_dataset`]).
        num_labeled (`int`, *optional*):
            See [`select_labeled_indices`].
        labeled_per_class (`int`, *optional*):
            See [`select_labeled_indices`].
        labeled_fraction (`float`, *optional*):
            See [`select_labeled_indices`].
        seed (`int`, *optional*, defaults to 0):
            Seed of the random choice.
        label_column (`str`, *optional*, defaults to `"label"`):
            The column holding the labels.

    Returns:
        `datasets.Dataset`: A copy of `dataset` where every non-selected label is -1 (a row of -1 for multi-label);
        the column's feature type (for example its `ClassLabel` names) is preserved.
    """
    if label_column not in dataset.column_names:
        raise ValueError(
            f"Expected a label column {label_column!r}, but the dataset has columns {dataset.column_names}. "
            "Pass `label_column` with one of them."
        )
    labels = _as_label_array(dataset[label_column])
    keep = select_labeled_indices(
        labels,
        num_labeled=num_labeled,
        labeled_per_class=labeled_per_class,
        labeled_fraction=labeled_fraction,
        seed=seed,
    )
    masked = np.full_like(labels, UNLABELED)
    masked[keep] = labels[keep]
    logger.info(f"Keeping {len(keep)} of {len(labels)} labels (seed {seed}).")
    return replace_column(dataset, label_column, masked.tolist(), dataset.features[label_column])


def replace_column(dataset: datasets.Dataset, name: str, values: list, feature) -> datasets.Dataset:
    """Replace the values of column `name` (keeping the column order), with the `datasets` feature `feature`."""
    columns = dataset.column_names
    temporary = f"__new_{name}__"
    dataset = dataset.add_column(temporary, values, feature=feature).remove_columns(name)
    return dataset.rename_column(temporary, name).select_columns(columns)


def _as_label_array(labels: Sequence | np.ndarray) -> np.ndarray:
    array = np.asarray(labels)
    if array.size == 0:
        return array.reshape(-1).astype(np.int64)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim not in (1, 2) or not np.issubdtype(array.dtype, np.number):
        raise ValueError(
            f"Expected integer labels of shape (N,) or (N, L), got an array of shape {array.shape} and dtype "
            f"{array.dtype}. Convert the labels to class indices (or 0/1 rows for multi-label) first."
        )
    return array.astype(np.int64)


def _even_quotas(capacities: np.ndarray, total: int, rng: np.random.Generator) -> list[int]:
    """Spread `total` over classes as evenly as possible without exceeding any class's capacity."""
    quotas = np.zeros(len(capacities), dtype=np.int64)
    remaining = total
    while remaining > 0:
        open_classes = np.flatnonzero(quotas < capacities)
        share = remaining // len(open_classes)
        if share == 0:
            # Fewer labels left than classes with room: give one more to randomly chosen classes.
            quotas[rng.choice(open_classes, size=remaining, replace=False)] += 1
            break
        for cls in open_classes:
            add = min(share, capacities[cls] - quotas[cls])
            quotas[cls] += add
            remaining -= add
    return quotas.tolist()
