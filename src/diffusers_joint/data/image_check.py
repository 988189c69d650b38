# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Find unreadable or unusable images before any training time is spent, and drop them on request."""

from __future__ import annotations

import io
import os
import time
from concurrent.futures import ThreadPoolExecutor

import datasets
import PIL.Image
from diffusers.utils import logging

from .intensity import IntensityNormalization
from .transforms import image_to_tensor

logger = logging.get_logger(__name__)

MAX_LISTED = 50
CHUNK_SIZE = 256


class BadImagesError(ValueError):
    """Some images cannot be used; `bad` lists `(where, reason)` for each, `where` being a path or a row."""

    def __init__(self, bad: list[tuple[str, str]], total: int):
        self.bad = bad
        listed = "\n".join(f"  {where}: {reason}" for where, reason in bad[:MAX_LISTED])
        more = f"\n  ... and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
        super().__init__(
            f"{len(bad)} of {total} images cannot be used:\n{listed}{more}\nFix or remove them, or pass "
            "--skip_bad_images (`skip_bad_images=True`) to train without them."
        )


def _load(item):
    """A dataset cell as something `image_to_tensor` reads: a path, a PIL image, an array."""
    if isinstance(item, dict):  # a `datasets.Image(decode=False)` cell
        if item.get("bytes") is not None:
            with PIL.Image.open(io.BytesIO(item["bytes"])) as image:
                image.load()
                return image.copy()
        return item.get("path")
    return item


def _check(item, normalization: IntensityNormalization) -> str | None:
    try:
        image_to_tensor(_load(item), 1, normalization)  # any channel count converts to 1: not checked here
    except ImportError:
        raise  # a missing extra (pydicom) is not a bad image
    except Exception as error:  # noqa: BLE001 - every reason a file cannot be used is reported with its name
        return getattr(error, "reason", None) or f"{type(error).__name__}: {error}"
    return None


def find_bad_images(
    dataset: datasets.Dataset,
    split_name: str = "train",
    normalization: IntensityNormalization | None = None,
    num_workers: int = 2,
) -> list[tuple[int, str, str]]:
    """
    Read and normalise every image of `dataset` (its `"image"` column: file paths, encoded images or arrays) as
    training will, without keeping them.

    Returns:
        `list[tuple[int, str, str]]`: `(row index, where, reason)` for each image that cannot be used; `where` is the
        file path, or `"<split_name> row <i>"` for images stored inside the dataset.
    """
    normalization = normalization or IntensityNormalization()
    feature = dataset.features["image"]
    if isinstance(feature, datasets.Image):
        dataset = dataset.cast_column("image", datasets.Image(decode=False))  # decode here, with the error caught

    def where(index: int, item) -> str:
        if isinstance(item, (str, os.PathLike)):
            return os.fspath(item)
        if isinstance(item, dict) and item.get("path") and item.get("bytes") is None:
            return item["path"]
        return f"{split_name} row {index}"

    bad = []
    with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:  # decoders release the GIL
        offset = 0
        # in chunks: a dataset's encoded images need not fit in memory at once
        for chunk in dataset.select_columns(["image"]).iter(batch_size=CHUNK_SIZE):
            items = chunk["image"]
            for i, reason in enumerate(pool.map(lambda item: _check(item, normalization), items)):
                if reason is not None:
                    bad.append((offset + i, where(offset + i, items[i]), reason))
            offset += len(items)
    return bad


def check_images(
    splits: dict[str, datasets.Dataset | None],
    normalization: IntensityNormalization | None = None,
    skip_bad_images: bool = False,
) -> dict[str, datasets.Dataset | None]:
    """
    Scan every split with [`find_bad_images`]. Raises a [`BadImagesError`] listing every bad image (path and reason),
    or with `skip_bad_images` returns the splits without them and logs a warning that names them.
    """
    start = time.perf_counter()
    found = {name: find_bad_images(split, name, normalization) for name, split in splits.items() if split}
    total = sum(len(split) for split in splits.values() if split is not None)
    bad = [(where, reason) for rows in found.values() for _, where, reason in rows]
    logger.info(f"Checked {total} images in {time.perf_counter() - start:.1f}s: {len(bad)} cannot be used.")
    if not bad:
        return splits
    if not skip_bad_images:
        raise BadImagesError(bad, total)
    logger.warning(
        f"Skipping {len(bad)} images that cannot be used (--skip_bad_images):\n"
        + "\n".join(f"  {where}: {reason}" for where, reason in bad)
    )
    out = {}
    for name, split in splits.items():
        if split is None or not found.get(name):
            out[name] = split
            continue
        dropped = {i for i, _, _ in found[name]}
        keep = [i for i in range(len(split)) if i not in dropped]
        if not keep:
            raise BadImagesError(bad, total)
        out[name] = split.select(keep)
    return out
