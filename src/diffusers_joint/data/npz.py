# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Load MedMNIST-style `.npz` files (`train_images`, `train_labels`, `val_*`, `test_*`)."""

from __future__ import annotations

import os

import numpy as np
from diffusers.utils import logging

from .image_check import check_images
from .intensity import IntensityNormalization
from .joint_dataset import (
    MULTI_LABEL,
    SINGLE_LABEL,
    JointDataset,
    dataset_from_arrays,
    full_range_images,
    holdout_name,
    holdout_split,
    image_info,
)
from .label_masking import unlabel_partial_rows

logger = logging.get_logger(__name__)

EVAL_SPLIT_CANDIDATES = ("test", "val", "validation")


def _split_arrays(archive: np.lib.npyio.NpzFile, split: str, path: str) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(archive.files)
    for key in (f"{split}_images", f"{split}_labels"):
        if key not in keys:
            raise ValueError(
                f"Expected the key {key!r} in {path} (MedMNIST layout: <split>_images and <split>_labels), but it "
                f"has keys {keys}. Pick a split that exists."
            )
    images = archive[f"{split}_images"]
    labels = archive[f"{split}_labels"]
    if len(images) == 0:
        raise ValueError(f"The split {split!r} of {path} is empty ({split}_images has 0 images): pick another split.")
    if len(images) != len(labels):
        raise ValueError(
            f"Expected as many labels as images in split {split!r} of {path}, but {split}_images has {len(images)} "
            f"and {split}_labels has {len(labels)}. The file is inconsistent: re-create it."
        )
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
        raise ValueError(
            f"Expected {split}_images of shape (N, H, W) (grayscale) or (N, H, W, 3) (colour), got {images.shape}."
        )
    if images.dtype != np.uint8:  # kept at full range, as image files are: see `full_range_dtype`
        images = full_range_images(images, images.ndim == 3 or images.shape[-1] == 1, f"{split}_images of {path}")
    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"Expected {split}_labels to be integers of shape (N, 1) (single-label) or (N, L) (multi-label), got "
            f"shape {labels.shape} and dtype {labels.dtype}."
        )
    return images, labels.astype(np.int64)


def load_npz_dataset(
    npz_path: str | os.PathLike,
    split: str = "train",
    eval_split: str | None = None,
    eval_holdout_fraction: float = 0.1,
    seed: int = 0,
    label_names: list[str] | None = None,
    intensity_normalization: IntensityNormalization | None = None,
    skip_bad_images: bool = False,
) -> JointDataset:
    """
    Load a MedMNIST-style `.npz` file.

    The file holds `<split>_images` of shape `(N, H, W)` (grayscale) or `(N, H, W, 3)` (colour), `uint8` (or, for
    grayscale, `uint16` or float, kept at full range: see [`~data.intensity.IntensityNormalization`]), and
    `<split>_labels` of shape `(N, 1)` (single-label class indices) or `(N, L)` with `L > 1` (multi-label 0/1; -1 for
    an unknown finding, which makes the whole row unlabeled, see [`~data.label_masking.unlabel_partial_rows`]). It
    is read with `allow_pickle=False`. Every image is normalised as training will before the data set is returned (see
    [`~data.image_check.check_images`]).

    Args:
        npz_path (`str` or `os.PathLike`):
            Path of the `.npz` file.
        split (`str`, *optional*, defaults to `"train"`):
            The training split.
        eval_split (`str`, *optional*):
            The evaluation split. Defaults to `test`, else `val`, else `validation`, else a seeded hold-out of
            `eval_holdout_fraction` of the training split.
        eval_holdout_fraction (`float`, *optional*, defaults to 0.1):
            Fraction of the training split's labeled examples held out when the file has no evaluation split.
        seed (`int`, *optional*, defaults to 0):
            Seed of the hold-out split.
        label_names (`list[str]`, *optional*):
            Class names. Defaults to `"0"`, `"1"`, ... up to the largest label.
        intensity_normalization ([`~data.intensity.IntensityNormalization`], *optional*):
            The normalisation training will use, which every image is checked with. Defaults to the dtype's range.
        skip_bad_images (`bool`, *optional*, defaults to `False`):
            Drop the images that cannot be used (named in a warning) instead of raising.

    Returns:
        [`JointDataset`]

    Raises:
        ValueError: the file, a split or its labels are missing or malformed, or images are of a dtype / range that
            cannot be kept without loss (the message names the file and the split).
        BadImagesError: some images cannot be used with `intensity_normalization` (for example float images outside
            [0, 1] with the default), listed as `<file> <split> row <i>` with the reason; not with `skip_bad_images`.
    """
    path = os.fspath(npz_path)
    if not os.path.isfile(path):
        raise ValueError(f"Expected an existing .npz file, got {path!r} which does not exist. Check `npz_path`.")
    if eval_split is not None and eval_split == split:
        raise ValueError(
            f"Expected an evaluation split other than the training split {split!r} of {path}, got the same split: "
            "evaluation images must never be trained on. Pick another `eval_split`."
        )
    with np.load(path, allow_pickle=False) as archive:
        train_images, train_labels = _split_arrays(archive, split, path)
        if eval_split is None:
            eval_split = next(
                (s for s in EVAL_SPLIT_CANDIDATES if s != split and f"{s}_images" in archive.files), None
            )
        eval_arrays = _split_arrays(archive, eval_split, path) if eval_split is not None else None

    num_outputs = train_labels.shape[1]
    problem_type = MULTI_LABEL if num_outputs > 1 else SINGLE_LABEL
    if eval_arrays is not None:
        if eval_arrays[1].shape[1] != num_outputs or eval_arrays[0].shape[1:] != train_images.shape[1:]:
            raise ValueError(
                f"Expected split {eval_split!r} to match split {split!r}, but their images / labels have shapes "
                f"{eval_arrays[0].shape[1:]} / {eval_arrays[1].shape[1:]} vs {train_images.shape[1:]} / "
                f"{train_labels.shape[1:]}."
            )
    all_labels = train_labels if eval_arrays is None else np.concatenate([train_labels, eval_arrays[1]])
    if problem_type == MULTI_LABEL:
        if not np.isin(all_labels, (-1, 0, 1)).all():
            raise ValueError(
                f"Expected multi-label rows of 0/1 (-1 for an unknown finding or an unlabeled row) in {path}."
            )
        # what the classifier loss counts as labeled: rows whose every finding is known
        train_labels = unlabel_partial_rows(train_labels, f"{split}_labels of {path}")
        if eval_arrays is not None:
            eval_arrays = (eval_arrays[0], unlabel_partial_rows(eval_arrays[1], f"{eval_split}_labels of {path}"))
        default_names = [str(i) for i in range(num_outputs)]
    else:
        if all_labels.min() < -1:
            raise ValueError(f"Expected class indices >= 0 (or -1 for unlabeled) in {path}, got {all_labels.min()}.")
        default_names = [str(i) for i in range(int(all_labels.max()) + 1)]
    if label_names is None:
        label_names = default_names
    elif len(label_names) < len(default_names):
        raise ValueError(f"Expected at least {len(default_names)} label names, got {len(label_names)}: {label_names}.")

    splits = {f"{path} {split}": dataset_from_arrays(train_images, train_labels, label_names, problem_type)}
    if eval_arrays is not None:
        splits[f"{path} {eval_split}"] = dataset_from_arrays(*eval_arrays, label_names, problem_type)
    # before the hold-out, so that bad images are named by their row in the file (`<file> <split> row <i>`)
    checked = list(check_images(splits, intensity_normalization, skip_bad_images).values())
    train, eval_dataset = checked[0], (checked[1] if eval_arrays is not None else None)
    if eval_arrays is None:
        train, eval_dataset = holdout_split(train, eval_holdout_fraction, seed)
    num_channels, image_size = image_info(train)
    logger.info(f"Loaded {path}: {len(train)} train ({split}) and {len(eval_dataset or [])} eval ({eval_split}).")
    return JointDataset(
        train=train,
        eval=eval_dataset,
        label_names=list(label_names),
        problem_type=problem_type,
        num_channels=num_channels,
        image_size=image_size,
        # the file name only: the source goes into model cards, which must not publish local folders
        source=f"{os.path.basename(path)} (MedMNIST-style .npz)",
        eval_split_name=f"{eval_split!r} split" if eval_arrays is not None else holdout_name(eval_holdout_fraction),
    )
