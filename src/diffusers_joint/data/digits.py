# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The embedded default data set: scikit-learn's 1,797 real 8x8 handwritten digits, no download needed."""

from __future__ import annotations

import numpy as np
from diffusers.utils import logging
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from .joint_dataset import SINGLE_LABEL, JointDataset, dataset_from_arrays

logger = logging.get_logger(__name__)

DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0
DIGITS_SOURCE = "scikit-learn digits (load_digits: 1,797 real 8x8 handwritten digits, UCI, CC BY 4.0)"


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as `uint8` images `(N, 8, 8)` with values 0-255, and their labels `(N,)`."""
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    return images, digits.target.astype(np.int64)


def load_digits_dataset() -> JointDataset:
    """
    Load scikit-learn's `load_digits()` as a [`JointDataset`]: 8x8 grayscale images (values 0-16 scaled to 0-255),
    classes `"0"` to `"9"`, and a fixed stratified 80/20 train / eval split (seed 0, whatever the caller's seed) so
    that the evaluation set never changes between runs.

    Returns:
        [`JointDataset`]
    """
    images, labels = digits_arrays()
    train_idx, eval_idx = train_test_split(
        np.arange(len(labels)), test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=labels
    )
    train_idx, eval_idx = np.sort(train_idx), np.sort(eval_idx)
    label_names = [str(i) for i in range(10)]
    return JointDataset(
        train=dataset_from_arrays(images[train_idx], labels[train_idx], label_names, SINGLE_LABEL),
        eval=dataset_from_arrays(images[eval_idx], labels[eval_idx], label_names, SINGLE_LABEL),
        label_names=label_names,
        problem_type=SINGLE_LABEL,
        num_channels=1,
        image_size=(8, 8),
        source=DIGITS_SOURCE,
        eval_split_name=f"fixed stratified {DIGITS_TEST_FRACTION:.0%} test split",
    )
