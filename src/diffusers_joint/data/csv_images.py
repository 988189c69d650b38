# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Load images stored as CSV rows of pixel values (such as the MNIST-5k file), optionally gzipped."""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
from diffusers.utils import logging
from sklearn.model_selection import train_test_split

from .joint_dataset import SINGLE_LABEL, JointDataset, dataset_from_arrays

logger = logging.get_logger(__name__)


def load_csv_dataset(
    csv_path: str | os.PathLike,
    image_shape: tuple[int, int] | None = None,
    label_position: str = "last",
    eval_fraction: float = 0.2,
    split_seed: int = 0,
) -> JointDataset:
    """
    Load a CSV (or `.csv.gz`) file with one grayscale image per row: `H * W` pixel values 0-255 and an integer class
    label, without a header. The train / eval split is a fixed stratified split (seeded by `split_seed`).

    Args:
        csv_path (`str` or `os.PathLike`):
            Path of the file.
        image_shape (`tuple[int, int]`, *optional*):
            `(height, width)` of the images. Defaults to a square inferred from the number of pixel columns.
        label_position (`str`, *optional*, defaults to `"last"`):
            Whether the label is the `"first"` (as in Kaggle's `mnist_train.csv`) or the `"last"` column.
        eval_fraction (`float`, *optional*, defaults to 0.2):
            Fraction of the rows used for evaluation, in (0, 1).
        split_seed (`int`, *optional*, defaults to 0):
            Seed of the split (keep it fixed so the evaluation set never changes).

    Returns:
        [`JointDataset`]

    Raises:
        ValueError: the file is missing, cannot be read as integers (a header row, text cells), is not of that layout,
            or its labels give fewer than 2 classes (the label read from the wrong column?); the message names the
            file.
    """
    path = os.fspath(csv_path)
    if not os.path.isfile(path):
        raise ValueError(f"Expected an existing CSV file, got {path!r} which does not exist. Check `csv_path`.")
    if label_position not in ("first", "last"):
        raise ValueError(f"Expected `label_position` to be 'first' or 'last', got {label_position!r}.")
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"Expected `eval_fraction` in (0, 1), got {eval_fraction!r}.")
    layout = (
        "one image per row, H * W comma-separated integer pixel values 0-255 and an integer class label in the "
        f"{label_position} column, without a header row"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # numpy's "input contained no data": reported below
        try:
            table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
        except ValueError as error:  # a header row, text or float cells, rows of unequal lengths
            raise ValueError(f"Cannot read {path} as images in CSV rows ({error}). Expected {layout}.") from error
    if table.shape[0] < 2 or table.shape[1] < 2:
        raise ValueError(
            f"Expected at least 2 rows of pixel values plus a label in {path}, got a table of shape {table.shape}. "
            "Check that the file is not empty."
        )
    labels, pixels = (table[:, -1], table[:, :-1]) if label_position == "last" else (table[:, 0], table[:, 1:])
    if image_shape is None:
        side = math.isqrt(pixels.shape[1])
        if side * side != pixels.shape[1]:
            raise ValueError(
                f"Expected a square number of pixel columns to infer the image shape, got {pixels.shape[1]}: pass "
                "`image_shape=(height, width)`."
            )
        image_shape = (side, side)
    if image_shape[0] * image_shape[1] != pixels.shape[1]:
        raise ValueError(f"Expected {image_shape[0] * image_shape[1]} pixel columns, got {pixels.shape[1]}.")
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0:
        raise ValueError(f"Expected pixel values in 0-255 and labels >= 0 in {path}.")
    classes = np.unique(labels)
    if len(classes) < 2:  # a label-first file read label-last takes a pixel column (often all 0) as the label
        other = "first" if label_position == "last" else "last"
        raise ValueError(
            f"Expected labels of at least 2 classes in the {label_position} column of {path}, got only class "
            f"{classes[0]} in its {len(labels)} rows. Is the label in the {other} column? Pass "
            f"`label_position={other!r}` (--csv_label_position {other}). Expected {layout}."
        )
    images = pixels.reshape(-1, *image_shape).astype(np.uint8)
    train_idx, eval_idx = train_test_split(
        np.arange(len(labels)), test_size=eval_fraction, random_state=split_seed, stratify=labels
    )
    train_idx, eval_idx = np.sort(train_idx), np.sort(eval_idx)
    label_names = [str(i) for i in range(int(labels.max()) + 1)]
    return JointDataset(
        train=dataset_from_arrays(images[train_idx], labels[train_idx], label_names, SINGLE_LABEL),
        eval=dataset_from_arrays(images[eval_idx], labels[eval_idx], label_names, SINGLE_LABEL),
        label_names=label_names,
        problem_type=SINGLE_LABEL,
        num_channels=1,
        image_size=tuple(image_shape),
        source=f"{os.path.basename(path)} (images as CSV rows)",  # no local folder in model cards
        eval_split_name=f"fixed stratified {eval_fraction:.0%} test split",
    )
