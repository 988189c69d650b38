# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
A generated chest-X-ray-like lesion set whose ground truth is known: class 1 images carry a soft blob (the "lesion") in
a lung field, class 0 images none, and every lesion's mask is returned with its image. It makes explanations
measurable: a counterfactual towards "no lesion" should change the pixels inside the mask
(see [`~evaluation.pointing_game`] and [`~evaluation.top_change_iou`]).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import PIL.Image

# Defaults, in units of the image side (sizes) and of the [0, 1] intensity range (contrasts).
DEFAULT_CONTRAST_RANGE = (0.2, 0.4)
DEFAULT_LESION_SIGMA_RANGE = (0.025, 0.06)
DEFAULT_MASK_THRESHOLD = 0.5
# A lesion's centre lies where the soft lung mask exceeds this: well inside a lung field, never on its border.
LUNG_CORE = 0.9


def _power_law_noise(rng: np.random.Generator, size: int, exponent: float) -> np.ndarray:
    """Smooth Gaussian noise with a 1 / f**exponent amplitude spectrum, zero mean and unit standard deviation."""
    frequencies = np.sqrt(np.fft.fftfreq(size)[:, None] ** 2 + np.fft.rfftfreq(size)[None, :] ** 2)
    frequencies[0, 0] = 1.0
    spectrum = rng.standard_normal((size, size // 2 + 1)) + 1j * rng.standard_normal((size, size // 2 + 1))
    spectrum *= frequencies**-exponent
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=(size, size))
    return field / (field.std() + 1e-12)


def _ellipse_radius(u: np.ndarray, v: np.ndarray, center: Sequence[float], axes: Sequence[float], angle: float):
    """The normalised radius of an ellipse at every point (1 on its border)."""
    cos, sin = np.cos(angle), np.sin(angle)
    du, dv = u - center[0], v - center[1]
    return np.sqrt(((du * cos + dv * sin) / axes[0]) ** 2 + ((-du * sin + dv * cos) / axes[1]) ** 2)


def _background(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One lesion-free image before grain, in [0, 1] units, and its soft lung mask (1 inside the lung fields)."""
    coordinates = (np.arange(size) + 0.5) / size * 2 - 1
    v, u = np.meshgrid(coordinates, coordinates, indexing="ij")  # v: rows (top -1), u: columns (left -1)
    image = 0.62 + 0.05 * _power_law_noise(rng, size, rng.uniform(2.2, 2.8))  # soft tissue
    image += rng.uniform(0.08, 0.16) * np.exp(-(((u - rng.normal(0, 0.03)) / rng.uniform(0.1, 0.16)) ** 2))  # spine
    lungs = np.zeros_like(image)
    center_v, width, height = rng.normal(-0.02, 0.04), rng.uniform(0.32, 0.4), rng.uniform(0.7, 0.82)
    for side in (-1, 1):
        center = (side * rng.uniform(0.42, 0.48), center_v + rng.normal(0, 0.02))
        radius = _ellipse_radius(u, v, center, (width * rng.uniform(0.92, 1.08), height), side * rng.normal(0.1, 0.04))
        lungs = np.maximum(lungs, 1 / (1 + np.exp((radius - 1) / 0.06)))
    image -= rng.uniform(0.26, 0.36) * lungs
    # Ribs: bright bands curving down towards the sides, seen through the lungs
    period, phase, curve = rng.uniform(0.2, 0.28), rng.uniform(0, 2 * np.pi), rng.uniform(0.25, 0.45)
    ribs = (0.5 + 0.5 * np.cos(2 * np.pi * (v + curve * u**2) / period + phase)) ** rng.uniform(3, 6)
    image += rng.uniform(0.03, 0.07) * ribs * (0.3 + 0.7 * lungs)
    image += rng.uniform(0.015, 0.03) * _power_law_noise(rng, size, rng.uniform(1.2, 1.6)) * lungs  # lung texture
    image *= 1 - rng.uniform(0.15, 0.3) * (u**2 + v**2) / 2  # vignette
    image = rng.uniform(0.9, 1.1) * (image - 0.5) + 0.5 + rng.uniform(-0.05, 0.05)  # exposure
    return image, lungs


def _lesion(
    rng: np.random.Generator,
    lungs: np.ndarray,
    contrast_range: Sequence[float],
    sigma_range: Sequence[float],
) -> np.ndarray:
    """A soft, possibly elliptical Gaussian blob (peak: a contrast from `contrast_range`) centred in a lung field."""
    size = lungs.shape[0]
    rows, columns = np.nonzero(lungs > LUNG_CORE)
    pick = rng.integers(len(rows))
    center = ((columns[pick] + 0.5) / size * 2 - 1, (rows[pick] + 0.5) / size * 2 - 1)
    sigma = rng.uniform(*sigma_range) * 2  # in units of the [-1, 1] coordinates
    axes = (sigma, sigma * rng.uniform(0.6, 1.0))
    coordinates = (np.arange(size) + 0.5) / size * 2 - 1
    v, u = np.meshgrid(coordinates, coordinates, indexing="ij")
    radius = _ellipse_radius(u, v, center, axes, rng.uniform(0, np.pi))
    return rng.uniform(*contrast_range) * np.exp(-0.5 * radius**2)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def make_lesion_images(
    num_images: int,
    size: int = 128,
    seed: int | Sequence[int] = 0,
    contrast_range: Sequence[float] = DEFAULT_CONTRAST_RANGE,
    lesion_sigma_range: Sequence[float] = DEFAULT_LESION_SIGMA_RANGE,
    mask_threshold: float = DEFAULT_MASK_THRESHOLD,
    return_backgrounds: bool = False,
) -> tuple[np.ndarray, ...]:
    """
    Generate chest-X-ray-like grayscale images, half of them with a lesion, and the lesions' masks.

    Every image has its own smooth background: soft tissue with low-frequency texture, two dark lung fields of random
    size and position, a bright spine, rib bands curving towards the sides, lung texture, a vignette, a random exposure
    and mild grain. Class 1 images also carry a soft Gaussian blob (an opacity, brighter than its surround for a
    positive contrast), possibly elliptical and rotated, centred well inside a lung field. Its mask is where the blob's
    profile reaches `mask_threshold` of its peak (an ellipse); class 0 masks are empty. The classes are balanced
    (`num_images // 2` of class 0, the rest class 1) in a seeded random order.

    The default contrasts keep the lesions visible yet the task not linear: measured on 2,000 training and 1,000
    test images of seed 0, a logistic regression on 64 x 64-pooled pixels reaches 0.56 test accuracy at best, a small
    CNN 0.995 (see the training guide, "A generated lesion set").

    Image `i` depends only on `seed` and `i` (one child seed per image), so the first images of a longer set are the
    same, up to the order of the labels.

    Args:
        num_images (`int`):
            Number of images (at least 2, so that both classes are present).
        size (`int`, *optional*, defaults to 128):
            Height and width in pixels (at least 16).
        seed (`int` or `Sequence[int]`, *optional*, defaults to 0):
            Seed of `numpy.random.SeedSequence`; a sequence such as `(seed, split_index)` gives independent splits.
        contrast_range (`Sequence[float]`, *optional*, defaults to `(0.2, 0.4)`):
            The lesion's peak contrast is drawn uniformly from this range, in units of the [0, 1] intensity range
            (negative values make darker lesions).
        lesion_sigma_range (`Sequence[float]`, *optional*, defaults to `(0.025, 0.06)`):
            The blob's standard deviation along its long axis, in units of the image side (the short axis is 0.6-1
            times it).
        mask_threshold (`float`, *optional*, defaults to 0.5):
            The mask is where the blob's profile is at least this fraction of its peak, in (0, 1).
        return_backgrounds (`bool`, *optional*, defaults to `False`):
            Also return each image without its lesion (same background and grain): equal to the image for class 0.

    Returns:
        `tuple`: `images` (`uint8`, `(num_images, size, size)`), `labels` (`int64`, `(num_images,)`, 0 or 1), `masks`
        (`bool`, `(num_images, size, size)`), and with `return_backgrounds` the lesion-free `backgrounds` (`uint8`).
    """
    if int(num_images) != num_images or num_images < 2:
        raise ValueError(f"Expected `num_images` to be an integer of at least 2 (one per class), got {num_images!r}.")
    if int(size) != size or size < 16:
        raise ValueError(f"Expected `size` to be an integer of at least 16 pixels, got {size!r}.")
    for name, bounds in (("contrast_range", contrast_range), ("lesion_sigma_range", lesion_sigma_range)):
        if len(bounds) != 2 or not bounds[0] <= bounds[1]:
            raise ValueError(f"Expected `{name}` to be (low, high) with low <= high, got {tuple(bounds)}.")
    if not 0 < lesion_sigma_range[0]:
        raise ValueError(f"Expected a positive `lesion_sigma_range`, got {tuple(lesion_sigma_range)}.")
    if 0 in contrast_range or (contrast_range[0] < 0 < contrast_range[1]):
        raise ValueError(
            "Expected `contrast_range` to lie on one side of 0 (a visible lesion of one sign), got "
            f"{tuple(contrast_range)}."
        )
    if not 0 < mask_threshold < 1:
        raise ValueError(f"Expected `mask_threshold` in (0, 1), got {mask_threshold!r}.")
    num_images, size = int(num_images), int(size)
    sequence = np.random.SeedSequence(seed)
    labels = np.zeros(num_images, dtype=np.int64)
    labels[num_images // 2 :] = 1
    np.random.default_rng(sequence).shuffle(labels)
    images = np.empty((num_images, size, size), dtype=np.uint8)
    backgrounds = np.empty_like(images)
    masks = np.zeros((num_images, size, size), dtype=bool)
    for i, child in enumerate(sequence.spawn(num_images)):
        # separate streams: an image's background and grain do not depend on its label
        background_rng, grain_rng, lesion_rng = (np.random.default_rng(s) for s in child.spawn(3))
        background, lungs = _background(background_rng, size)
        background += grain_rng.uniform(0.004, 0.012) * grain_rng.standard_normal((size, size))
        backgrounds[i] = _to_uint8(background)
        if labels[i] == 0:
            images[i] = backgrounds[i]
            continue
        lesion = _lesion(lesion_rng, lungs, contrast_range, lesion_sigma_range)
        masks[i] = np.abs(lesion) >= mask_threshold * np.abs(lesion).max()
        images[i] = _to_uint8(background + lesion)
    outputs = (images, labels, masks)
    return outputs + (backgrounds,) if return_backgrounds else outputs


LESION_SPLITS = ("train", "test")
MASK_COLUMN = "mask_file_name"
NPZ_NAME = "lesions.npz"


def write_lesion_dataset(
    output_dir: str | os.PathLike,
    num_train: int,
    num_test: int,
    size: int = 128,
    seed: int = 0,
    **generator_kwargs,
) -> dict[str, np.ndarray]:
    """
    Generate a lesion set with [`make_lesion_images`] and write it in two layouts that every data flag reads:

    - an image folder (🤗 `imagefolder` layout, read by `--train_data_dir DIR` and by `datasets.load_dataset(DIR)`):
      `DIR/train/` and `DIR/test/` hold 8-bit PNG images and a `metadata.csv` with the columns `file_name`, `label` and
      `mask_file_name`; the masks (PNG, 255 inside the lesion, all 0 for class 0) are in `DIR/<split>/masks/`, and
      `load_dataset` reads them as a second image column, `mask`;
    - `DIR/lesions.npz` (MedMNIST layout, read by `--npz_path`): `train_images`, `train_labels` `(N, 1)`,
      `train_masks` (bool), and the same for `test`.

    The two splits are independent draws: split `i` (train 0, test 1) uses the seed sequence `(seed, i)`.

    Args:
        output_dir (`str` or `os.PathLike`):
            The folder to write into (created; existing files of the same names are replaced).
        num_train, num_test (`int`):
            Images per split (each at least 2).
        size (`int`, *optional*, defaults to 128):
            Image side in pixels.
        seed (`int`, *optional*, defaults to 0):
            The set's seed: the same seed writes the same files.
        generator_kwargs:
            Further arguments of [`make_lesion_images`] (`contrast_range`, `lesion_sigma_range`, `mask_threshold`).

    Returns:
        `dict[str, np.ndarray]`: the arrays written to the `.npz` file.
    """
    root = Path(output_dir)
    arrays = {}
    for index, (split, count) in enumerate(zip(LESION_SPLITS, (num_train, num_test))):
        images, labels, masks = make_lesion_images(count, size=size, seed=(seed, index), **generator_kwargs)
        folder = root / split
        (folder / "masks").mkdir(parents=True, exist_ok=True)
        rows = []
        for i, (image, label, mask) in enumerate(zip(images, labels, masks)):
            name = f"{i:05d}.png"
            PIL.Image.fromarray(image).save(folder / name)
            PIL.Image.fromarray(mask.astype(np.uint8) * 255).save(folder / "masks" / name)
            rows.append({"file_name": name, "label": int(label), MASK_COLUMN: f"masks/{name}"})
        with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["file_name", "label", MASK_COLUMN])
            writer.writeheader()
            writer.writerows(rows)
        arrays.update({f"{split}_images": images, f"{split}_labels": labels[:, None], f"{split}_masks": masks})
    np.savez_compressed(root / NPZ_NAME, **arrays)
    return arrays


def load_lesion_masks(path: str | os.PathLike, split: str = "train") -> np.ndarray:
    """
    The lesion masks of one split of a set written by [`write_lesion_dataset`], in the order of its images (the order
    in which `load_joint_dataset` reads them): from the image folder's `metadata.csv` (`mask_file_name` column) or
    from a `.npz` file (`<split>_masks`).

    Args:
        path (`str` or `os.PathLike`):
            The data set's folder, or its `lesions.npz` file.
        split (`str`, *optional*, defaults to `"train"`):
            `"train"` or `"test"`.

    Returns:
        `np.ndarray`: `bool` masks of shape `(N, H, W)`, empty for class 0 images.
    """
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            key = f"{split}_masks"
            if key not in archive.files:
                raise ValueError(f"Expected the key {key!r} in {path}, which has keys {sorted(archive.files)}.")
            return archive[key].astype(bool)
    metadata = path / split / "metadata.csv"
    if not metadata.is_file():
        raise ValueError(
            f"Expected {metadata}, the metadata of split {split!r} of a lesion set (examples/make_lesion_dataset.py)."
        )
    with open(metadata, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or MASK_COLUMN not in rows[0]:
        raise ValueError(
            f"Expected a {MASK_COLUMN!r} column in {metadata}, got {list(rows[0]) if rows else 'no rows'}."
        )
    masks = []
    for row in rows:
        with PIL.Image.open(metadata.parent / row[MASK_COLUMN]) as mask:
            masks.append(np.asarray(mask.convert("L")) > 127)
    return np.stack(masks)
