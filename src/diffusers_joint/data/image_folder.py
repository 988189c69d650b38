# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Image folders of any supported format (PNG, TIFF, JPEG, `.npy`, `.npz`, DICOM), labelled by class sub-folders or by a
`metadata.csv` / `metadata.jsonl` beside the images: the layout of 🤗 datasets' `imagefolder`, whose reader decodes
with PIL only (no DICOM, no numpy arrays).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from .image_reading import IMAGE_EXTENSIONS
from .manifest import manifest_splits, read_table

METADATA_FILES = ("metadata.csv", "metadata.jsonl")
TRAIN_SPLITS = ("train",)
EVAL_SPLITS = ("test", "validation", "val", "valid")


def _image_files(folder: str) -> list[str]:
    """The image files under `folder`, skipping hidden files and folders and `__` folders, as 🤗 `imagefolder` does."""
    found = []
    for parent, dirs, files in os.walk(folder):
        # macOS copies carry "._x.png" AppleDouble files and a __MACOSX/ folder of them: not images
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        found += [
            os.path.join(parent, f)
            for f in sorted(files)
            if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)
        ]
    return found


def _metadata_file(folder: str) -> str | None:
    return next((os.path.join(folder, m) for m in METADATA_FILES if os.path.isfile(os.path.join(folder, m))), None)


def _split_folders(root: str, eval_split: str | None) -> tuple[str, str | None, str | None]:
    subdirs = {d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith((".", "__"))}
    if "train" not in subdirs:
        if eval_split is not None:
            raise ValueError(
                f"Got `eval_split={eval_split!r}` but {root} has no train/ and {eval_split}/ sub-folders: drop it to "
                "hold out part of the images instead."
            )
        return root, None, None
    if eval_split is not None:
        if eval_split not in subdirs:
            raise ValueError(f"Expected an evaluation folder {eval_split}/ in {root}, found {sorted(subdirs)}.")
        return os.path.join(root, "train"), os.path.join(root, eval_split), eval_split
    name = next((s for s in EVAL_SPLITS if s in subdirs), None)
    return os.path.join(root, "train"), (os.path.join(root, name) if name else None), name


def folder_split(
    folder: str, root: str, label_columns: Sequence[str] | None, image_column: str | None
) -> tuple[list[str], list, str | None]:
    """
    Image paths and raw labels of one split folder: from its `metadata.csv` / `metadata.jsonl` (or the root's,
    whose file names then start with the split folder), else from the class sub-folder of each image.

    Returns:
        `tuple[list[str], list, str | None]`: paths, labels (see [`~data.manifest.manifest_splits`]) and the metadata
        file used (`None` for class folders).
    """
    metadata = _metadata_file(folder) or (_metadata_file(root) if folder != root else None)
    if metadata is not None:
        paths, labels = manifest_splits(
            read_table(metadata),
            os.path.dirname(metadata),
            list(label_columns or ["label"]),
            image_column,
            where=os.path.basename(metadata),
        )
        inside = [i for i, p in enumerate(paths) if os.path.commonpath([p, folder]) == folder]
        if folder != os.path.dirname(metadata):  # the root's metadata: keep this split's rows
            paths, labels = [paths[i] for i in inside], [labels[i] for i in inside]
        return paths, labels, metadata
    if label_columns and list(label_columns) != ["label"]:
        raise ValueError(
            f"--label_column {' '.join(label_columns)} needs a metadata.csv or metadata.jsonl in {folder} (or the "
            "data folder), with a file_name column and the label columns."
        )
    paths = _image_files(folder)
    if not paths:
        raise ValueError(f"Found no image files ({', '.join(IMAGE_EXTENSIONS)}) in {folder}.")
    loose = [p for p in paths if os.path.dirname(p) == folder]
    if loose:
        raise ValueError(
            f"Expected the images of {folder} in one sub-folder per class (or a metadata.csv with their labels), but "
            f"{len(loose)} lie directly in it, e.g. {os.path.basename(loose[0])}."
        )
    labels = [os.path.relpath(p, folder).split(os.sep)[0] for p in paths]
    return paths, labels, None


def image_folder_splits(
    root: str,
    eval_split: str | None = None,
    label_columns: Sequence[str] | None = None,
    image_column: str | None = None,
) -> tuple[tuple[list[str], list], tuple[list[str], list] | None, str | None]:
    """
    The training and evaluation files of an image folder: `root/train/` and `root/test/` (else `validation/`, `val/`,
    `valid/`), or `root` alone (no evaluation split).

    Returns:
        `((train_paths, train_labels), (eval_paths, eval_labels) or None, eval_split_name or None)`.
    """
    root = os.path.abspath(root)
    train_folder, eval_folder, eval_name = _split_folders(root, eval_split)
    train = folder_split(train_folder, root, label_columns, image_column)[:2]
    evaluation = folder_split(eval_folder, root, label_columns, image_column)[:2] if eval_folder else None
    return train, evaluation, eval_name
