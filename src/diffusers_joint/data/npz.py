# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Load MedMNIST-style `.npz` files (`train_images`, `train_labels`, `val_*`, `test_*`)."""

from __future__ import annotations

import os

import numpy as np
from diffusers.utils import logging

from .joint_dataset import (
    MULTI_LABEL,
    SINGLE_LABEL,
    JointDataset,
    dataset_from_arrays,
    holdout_name,
    holdout_split,
    image_info,
)

logger = logging.get_logger(__name__)

EVAL_SPLIT_CANDIDATES = ("test", "val", "validation")


def _full_range_images(images: np.ndarray, split: str, path: str) -> np.ndarray:
    """
    Keep `uint16` and float grayscale images as they are (stored as 16-bit / float PIL images, nothing lost); other
    integer arrays holding 0-255 are 8-bit images in a wide type. Anything else is refused rather than clipped.
    """
    if np.issubdtype(images.dtype, np.floating) and not np.isfinite(images).all():
        raise ValueError(
            f"Expected finite pixel values in {split}_images of {path}, but {int((~np.isfinite(images)).sum())} "
            "are NaN or infinite. Fix or drop those images first."
        )
    grayscale = images.ndim == 3 or images.shape[-1] == 1
    if images.dtype == np.uint16 or np.issubdtype(images.dtype, np.floating):
        if not grayscale:
            raise ValueError(
                f"Expected {split}_images of dtype {images.dtype} in {path} to be grayscale: colour images are read "
                "as 8-bit (uint8) only. Save them as uint8, or one .npy file per image in an image folder."
            )
        return images.astype(np.float32) if images.dtype != np.uint16 else images
    if np.issubdtype(images.dtype, np.integer) and images.min() >= 0 and images.max() <= 255:
        return images.astype(np.uint8)
    raise ValueError(
        f"Expected {split}_images of {path} to be uint8, uint16 or float (grayscale), got dtype {images.dtype}"
        + (f" with values {images.min()}..{images.max()}" if np.issubdtype(images.dtype, np.number) else "")
        + ". Convert them (e.g. CT in Hounsfield units + 1024 as uint16), or save one .npy file per image in an "
        "image folder or manifest, which keeps any dtype."
    )


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
    if images.dtype != np.uint8:
        images = _full_range_images(images, split, path)
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
) -> JointDataset:
    """
    Load a MedMNIST-style `.npz` file.

    The file holds `<split>_images` of shape `(N, H, W)` (grayscale) or `(N, H, W, 3)` (colour), `uint8` (or, for
    grayscale, `uint16` or float, kept at full range: see [`~data.intensity.IntensityNormalization`]), and
    `<split>_labels` of shape `(N, 1)` (single-label class indices) or `(N, L)` with `L > 1` (multi-label 0/1). It is
    read with `allow_pickle=False`.

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

    Returns:
        [`JointDataset`]
    """
    path = os.fspath(npz_path)
    if not os.path.isfile(path):
        raise ValueError(f"Expected an existing .npz file, got {path!r} which does not exist. Check `npz_path`.")
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
            raise ValueError(f"Expected multi-label rows of 0/1 (or rows of -1 for unlabeled) in {path}.")
        default_names = [str(i) for i in range(num_outputs)]
    else:
        if all_labels.min() < -1:
            raise ValueError(f"Expected class indices >= 0 (or -1 for unlabeled) in {path}, got {all_labels.min()}.")
        default_names = [str(i) for i in range(int(all_labels.max()) + 1)]
    if label_names is None:
        label_names = default_names
    elif len(label_names) < len(default_names):
        raise ValueError(f"Expected at least {len(default_names)} label names, got {len(label_names)}: {label_names}.")

    train = dataset_from_arrays(train_images, train_labels, label_names, problem_type)
    if eval_arrays is not None:
        eval_dataset = dataset_from_arrays(*eval_arrays, label_names, problem_type)
    else:
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
