# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""`JointDataset`: the normalised train / eval splits every data source is turned into."""

from __future__ import annotations

import os
from dataclasses import dataclass

import datasets
import numpy as np
import PIL.Image
from diffusers.utils import logging
from sklearn.model_selection import train_test_split

from .image_reading import read_image
from .label_masking import is_labeled

logger = logging.get_logger(__name__)

SINGLE_LABEL = "single_label_classification"
MULTI_LABEL = "multi_label_classification"
PROBLEM_TYPES = (SINGLE_LABEL, MULTI_LABEL)
GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "F")


@dataclass
class JointDataset:
    """
    Train and evaluation splits normalised for Joint Diffusion training.

    Both splits have exactly two columns: `"image"` (PIL images, or file paths read by
    [`~data.image_reading.read_image`] for image folders and manifests) and `"label"`. For single-label data a
    label is a class index (a `ClassLabel` feature), -1 meaning unlabeled; for multi-label data it is a list of `L`
    ints 0/1, a list of all -1 meaning unlabeled.

    Args:
        train (`datasets.Dataset`):
            The training split.
        eval (`datasets.Dataset`, *optional*):
            The evaluation split (`None` if there is none).
        label_names (`list[str]`):
            One name per class.
        problem_type (`str`):
            `"single_label_classification"` or `"multi_label_classification"`.
        num_channels (`int`):
            1 for grayscale images, 3 for colour, inferred from the first training image.
        image_size (`tuple[int, int]`):
            `(height, width)` of the first training image.
        source (`str`):
            Human-readable description of where the data came from (for model cards and logs).
        eval_split_name (`str`, *optional*, defaults to `"evaluation split"`):
            What the evaluation split is, e.g. `"'test' split"` or `"seeded 10% hold-out of the training split"`,
            for model cards and reports.
    """

    train: datasets.Dataset
    eval: datasets.Dataset | None
    label_names: list[str]
    problem_type: str
    num_channels: int
    image_size: tuple[int, int]
    source: str
    eval_split_name: str = "evaluation split"

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def labeled_mask(self, split: str = "train") -> np.ndarray:
        """Boolean array telling which examples of `split` (`"train"` or `"eval"`) carry a label."""
        dataset = getattr(self, split, None) if split in ("train", "eval") else None
        if dataset is None:
            raise ValueError(f"Expected `split` to be 'train' or 'eval' (and that split to exist), got {split!r}.")
        return is_labeled(np.asarray(dataset["label"]))


def label_feature(label_names: list[str], problem_type: str) -> datasets.features.features.FeatureType:
    """The `datasets` feature of the `"label"` column for a problem type."""
    if problem_type == SINGLE_LABEL:
        return datasets.ClassLabel(names=list(label_names))
    return datasets.List(datasets.Value("int64"))


def image_info(dataset: datasets.Dataset) -> tuple[int, tuple[int, int]]:
    """The number of channels and the `(height, width)` of the first image of `dataset`."""
    if len(dataset) == 0:
        raise ValueError("Expected a non-empty training split, got a split with 0 examples.")
    image = dataset[0]["image"]
    if isinstance(image, PIL.Image.Image):
        num_channels = 1 if image.mode in GRAYSCALE_MODES else 3
        return num_channels, (image.height, image.width)
    if not isinstance(image, (str, os.PathLike)):
        raise ValueError(f"Expected the 'image' column to hold PIL images or file paths, got {type(image).__name__}.")
    array, _ = read_image(image)
    return array.shape[-1], (array.shape[0], array.shape[1])


def array_to_pil(image: np.ndarray) -> PIL.Image.Image:
    """
    Convert one `uint8` array `(H, W)`, `(H, W, 1)` or `(H, W, 3)`, or a grayscale `uint16` / `float32` array, to a PIL
    image (mode `L`, `RGB`, `I;16` or `F`: the values are kept).
    """
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    return PIL.Image.fromarray(np.ascontiguousarray(image))


def full_range_dtype(
    dtype: np.dtype,
    value_range: tuple[float, float] | None,
    grayscale: bool,
    where: str,
    advice: str | None = None,
) -> np.dtype:
    """
    The dtype in which [`array_to_pil`] keeps images of `dtype` without losing a value: `uint8` as is, grayscale
    `uint16` as is (PIL `I;16`), grayscale float as `float32` (PIL `F`, the precision the intensity normalisation
    works in), booleans as `uint8` (0 / 255), and other integers holding 0-255 (8-bit images in a wide type) as
    `uint8`.

    Args:
        dtype (`np.dtype`):
            The images' dtype.
        value_range (`tuple[float, float]`, *optional*):
            The smallest and largest value of all the images stored alike (a whole split, so that each image gets the
            same intensity normalisation); only needed for integers other than `uint8` / `uint16`.
        grayscale (`bool`):
            Whether the images have one channel.
        where (`str`):
            What the images are, for the error message.
        advice (`str`, *optional*):
            What to do about integers that cannot be kept, for the error message. Defaults to converting them or
            saving one `.npy` file per image.

    Raises:
        ValueError: the images cannot be kept (colour that is not 8-bit, integers outside 0-255 that are not
            `uint16`, non-numeric dtypes); the message names `where`, the dtype and the value range.
    """
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return dtype
    if dtype == np.bool_:
        return np.dtype(np.uint8)
    values = f" with values {value_range[0]:g}..{value_range[1]:g}" if value_range is not None else ""
    if dtype == np.uint16 or np.issubdtype(dtype, np.floating):
        if not grayscale:
            raise ValueError(
                f"Expected {where} of dtype {dtype}{values} to be grayscale: colour images are read as 8-bit (uint8) "
                "only. Save them as uint8, or one .npy file per image in an image folder."
            )
        return np.dtype(np.uint16) if dtype == np.uint16 else np.dtype(np.float32)
    if np.issubdtype(dtype, np.integer) and value_range is not None and 0 <= value_range[0] <= value_range[1] <= 255:
        return np.dtype(np.uint8)
    if advice is None:
        advice = (
            "Convert them (e.g. CT in Hounsfield units + 1024 as uint16), or save one .npy file per image in an image "
            "folder or manifest, which keeps any dtype."
        )
    raise ValueError(f"Expected {where} to be uint8, uint16 or float (grayscale), got dtype {dtype}{values}. {advice}")


def full_range_images(
    images: np.ndarray, grayscale: bool, where: str, value_range: tuple[float, float] | None = None
) -> np.ndarray:
    """
    `images` (one image or a stack) in the dtype of [`full_range_dtype`]: nothing is clipped or rescaled, so that the
    intensity normalisation sees the stored values. `value_range` defaults to the images' own.

    Raises:
        ValueError: float pixels are NaN or infinite, or the images cannot be kept (see [`full_range_dtype`]); the
            message names `where`.
    """
    if np.issubdtype(images.dtype, np.floating) and not np.isfinite(images).all():
        raise ValueError(
            f"Expected finite pixel values in {where}, but {int((~np.isfinite(images)).sum())} are NaN or infinite. "
            "Fix or drop those images first."
        )
    if value_range is None and np.issubdtype(images.dtype, np.number) and images.size:
        value_range = (float(images.min()), float(images.max()))
    target = full_range_dtype(images.dtype, value_range, grayscale, where)
    if images.dtype == np.bool_:
        return images.astype(np.uint8) * np.uint8(255)  # True is white, as an 8-bit mask
    return images.astype(target, copy=False)


def dataset_from_arrays(
    images: np.ndarray, labels: np.ndarray, label_names: list[str], problem_type: str
) -> datasets.Dataset:
    """
    Build an in-memory split from images `(N, H, W)` / `(N, H, W, 3)` (see [`array_to_pil`]) and labels `(N,)` or
    `(N, L)`.
    """
    labels = np.asarray(labels, dtype=np.int64)
    column = labels.reshape(-1).tolist() if problem_type == SINGLE_LABEL else labels.tolist()
    features = datasets.Features({"image": datasets.Image(), "label": label_feature(label_names, problem_type)})
    return datasets.Dataset.from_dict({"image": [array_to_pil(img) for img in images], "label": column}, features)


def holdout_name(fraction: float) -> str:
    """How [`holdout_split`]'s evaluation split is named in model cards."""
    return f"seeded {fraction:.0%} hold-out of the training split"


def holdout_split(
    dataset: datasets.Dataset, fraction: float, seed: int
) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    """
    Split off a seeded hold-out of `fraction` of `dataset`'s labeled examples, stratified by label when possible
    (single-label data whose every class has at least two examples). Unlabeled examples (label -1) all stay in `train`:
    they cannot be scored, and they still train the denoising loss. Data without two labeled examples is split as a
    whole. Returns `(train, eval)`; `eval` is `None` when `fraction` is 0.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(
            f"Expected `eval_holdout_fraction` in [0, 1), got {fraction!r}. Use 0 to train without an evaluation "
            "split, or pass a dataset that has its own test split."
        )
    if fraction == 0.0:
        return dataset, None
    if len(dataset) < 2:
        raise ValueError(f"Cannot hold out an evaluation split from {len(dataset)} example(s): pass more data.")
    labels = np.asarray(dataset["label"])
    indices = np.arange(len(dataset))
    labeled = is_labeled(labels)
    if labeled.sum() >= 2:
        indices, labels = indices[labeled], labels[labeled]
    stratify = None
    if labels.ndim == 1:
        _, counts = np.unique(labels, return_counts=True)
        if counts.min() >= 2:
            stratify = labels
    try:
        train_idx, eval_idx = train_test_split(indices, test_size=fraction, random_state=seed, stratify=stratify)
    except ValueError:
        # Too few examples per class for a stratified split of this size.
        train_idx, eval_idx = train_test_split(indices, test_size=fraction, random_state=seed)
    logger.info(f"Holding out {len(eval_idx)} of {len(dataset)} training examples for evaluation (seed {seed}).")
    train_idx = np.setdiff1d(np.arange(len(dataset)), eval_idx)  # sorted, with every unlabeled example
    return dataset.select(train_idx), dataset.select(np.sort(eval_idx))
