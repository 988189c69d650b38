# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""`load_joint_dataset`: one entry point for every data source (Hub / local datasets, image folders, npz, CSV)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import datasets
import numpy as np
import PIL.Image
from diffusers.utils import logging

from .csv_images import load_csv_dataset
from .digits import load_digits_dataset
from .image_check import check_images
from .image_folder import image_folder_splits
from .intensity import IntensityNormalization
from .joint_dataset import (
    MULTI_LABEL,
    SINGLE_LABEL,
    JointDataset,
    array_to_pil,
    full_range_dtype,
    full_range_images,
    holdout_name,
    holdout_split,
    image_info,
    label_feature,
)
from .label_masking import replace_column, unlabel_partial_rows
from .manifest import UNLABELED, manifest_splits, multi_label_dataset, raw_label_dataset, read_table, split_rows
from .npz import load_npz_dataset

logger = logging.get_logger(__name__)

EVAL_SPLIT_CANDIDATES = ("test", "validation", "val", "valid")
# The name of the one evaluation split of CSV files and of the embedded digits (a fixed stratified test split).
FIXED_EVAL_SPLIT = "test"
SAVED_DATASET_FILES = ("dataset_info.json", "state.json", "dataset_dict.json")


def _is_saved_to_disk(path: str) -> bool:
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, f)) for f in SAVED_DATASET_FILES)


def _pick_splits(
    loaded: datasets.Dataset | datasets.DatasetDict, eval_split: str | None
) -> tuple[datasets.Dataset, datasets.Dataset | None, str | None]:
    if isinstance(loaded, datasets.Dataset):
        if eval_split is not None:
            raise ValueError(
                f"Got `eval_split={eval_split!r}` but the dataset has a single split. Drop `eval_split` to hold out "
                "part of the training data instead."
            )
        return loaded, None, None
    names = list(loaded.keys())
    if "train" in loaded:
        train_name = "train"
    elif len(names) == 1:
        train_name = names[0]
    else:
        raise ValueError(f"Expected a 'train' split, got splits {names}. Rename the training split to 'train'.")
    if eval_split is not None:
        if eval_split not in loaded:
            raise ValueError(f"Expected the evaluation split {eval_split!r}, but the dataset has splits {names}.")
        return loaded[train_name], loaded[eval_split], eval_split
    eval_name = next((s for s in EVAL_SPLIT_CANDIDATES if s in loaded and s != train_name), None)
    return loaded[train_name], (loaded[eval_name] if eval_name is not None else None), eval_name


def _check_columns(dataset: datasets.Dataset, image_column: str, label_column: str, split: str) -> None:
    for kind, column in (("image", image_column), ("label", label_column)):
        if column not in dataset.column_names:
            raise ValueError(
                f"Expected a {kind} column {column!r} in the {split} split, but the dataset has columns "
                f"{dataset.column_names}. Pass `{kind}_column` with the right name."
            )


def _select_columns(dataset: datasets.Dataset, image_column: str, label_column: str) -> datasets.Dataset:
    dataset = dataset.select_columns([image_column, label_column])
    # Two steps through temporary names, so that swapped or clashing column names are handled.
    dataset = dataset.rename_columns({image_column: "__joint_image__", label_column: "__joint_label__"})
    return dataset.rename_columns({"__joint_image__": "image", "__joint_label__": "label"})


def _array_dtype(feature) -> np.dtype | None:
    """The dtype of an array feature (`Array2D`, `Array3D`, nested `List` of `Value`), `None` for anything else."""
    while not hasattr(feature, "dtype") and hasattr(feature, "feature"):
        feature = feature.feature
    try:
        return np.dtype(getattr(feature, "dtype", None) or "")
    except TypeError:
        return None


def _value_range(dataset: datasets.Dataset, dtype: np.dtype) -> tuple[float, float] | None:
    """The smallest and largest pixel value of the `"image"` column, read in chunks."""
    low, high = np.inf, -np.inf
    for chunk in dataset.select_columns(["image"]).iter(batch_size=256):
        for image in chunk["image"]:
            array = np.asarray(image, dtype=dtype)
            if array.size:
                low, high = min(low, float(array.min())), max(high, float(array.max()))
    return (low, high) if low <= high else None


def _normalise_images(dataset: datasets.Dataset, where: str) -> datasets.Dataset:
    """
    The split with an `Image` column. Array images keep their values (see [`full_range_dtype`]): `uint16` as 16-bit,
    float as float, so that the intensity normalisation sees what was stored.

    Raises:
        ValueError: array images that cannot be kept without loss (colour that is not 8-bit, integers outside 0-255
            that are not `uint16`, NaN or infinite pixels); the message names `where` (and the row), the dtype and the
            value range.
    """
    feature = dataset.features["image"]
    if isinstance(feature, datasets.Image):
        return dataset if feature.decode else dataset.cast_column("image", datasets.Image())
    if isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string", "binary"):
        # File paths or encoded bytes.
        return dataset.cast_column("image", datasets.Image())
    # Arrow stores the arrays' dtype, but rows come back as Python lists: read them in the feature's dtype.
    dtype = _array_dtype(feature)
    value_range = None
    if dtype is not None and np.issubdtype(dtype, np.integer) and dtype not in (np.uint8, np.uint16):
        # one decision for the whole split, so that every image gets the same intensity normalisation
        value_range = _value_range(dataset, dtype)
        full_range_dtype(dtype, value_range, True, f"the images of {where}")

    def to_pil(batch, indices):
        images = []
        for index, image in zip(indices, batch["image"]):
            if not isinstance(image, PIL.Image.Image):
                array = np.asarray(image, dtype=dtype)
                grayscale = array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 1)
                image = array_to_pil(full_range_images(array, grayscale, f"{where} row {index}", value_range))
            images.append(image)
        return {"image": images}

    features = datasets.Features({"image": datasets.Image(), "label": dataset.features["label"]})
    return dataset.map(to_pil, batched=True, with_indices=True, features=features, desc="Converting images to PIL")


def _replace_labels(dataset: datasets.Dataset, labels: list, feature) -> datasets.Dataset:
    return replace_column(dataset, "label", labels, feature)


def _is_unlabeled(value) -> bool:
    """A single label meaning unlabeled: `None`, or -1 as a number or as the text `"-1"` / `"-1.0"`."""
    if isinstance(value, str):
        return value.strip() in UNLABELED
    return value is None or value == -1


def _normalise_labels(
    train: datasets.Dataset, eval_dataset: datasets.Dataset | None, source: str = "the dataset"
) -> tuple[datasets.Dataset, datasets.Dataset | None, list[str], str]:
    feature = train.features["label"]
    splits = [train] if eval_dataset is None else [train, eval_dataset]

    if isinstance(feature, datasets.ClassLabel):
        return train, eval_dataset, list(feature.names), SINGLE_LABEL

    if isinstance(feature, (datasets.List, datasets.LargeList)):
        rows = [np.asarray(split["label"]) for split in splits]
        lengths = {r.shape[1] if r.ndim == 2 else -1 for r in rows}
        if len(lengths) != 1 or -1 in lengths:
            raise ValueError("Expected multi-label rows of one fixed length L in every split, got ragged rows.")
        num_labels = lengths.pop()
        if not all(np.isin(r, (-1, 0, 1)).all() for r in rows):
            raise ValueError(
                f"Expected multi-label rows of 0/1 values (-1 for an unknown finding or an unlabeled row) in {source}."
            )
        # what the classifier loss counts as labeled: rows whose every finding is known
        rows = [unlabel_partial_rows(r, f"the {name} split of {source}") for r, name in zip(rows, ("train", "eval"))]
        names = [str(i) for i in range(num_labels)]
        new_feature = label_feature(names, MULTI_LABEL)
        out = [_replace_labels(split, r.astype(np.int64).tolist(), new_feature) for split, r in zip(splits, rows)]
        return out[0], (out[1] if eval_dataset is not None else None), names, MULTI_LABEL

    if not isinstance(feature, datasets.Value):
        raise ValueError(
            f"Expected the label column to hold class labels (ClassLabel, int or string) or multi-label lists, got "
            f"{feature}. Convert it first or pick another `label_column`."
        )
    # Plain ints or strings: classes are the sorted unique values (None and -1, as a number or "-1", mean unlabeled).
    columns = [list(split["label"]) for split in splits]
    values = {v for column in columns for v in column if not _is_unlabeled(v)}
    try:
        classes = sorted(values)
    except TypeError as error:
        raise ValueError(f"Expected labels of a single type, got a mix: {sorted(map(repr, values))[:10]}.") from error
    index = {value: i for i, value in enumerate(classes)}
    names = [str(v) for v in classes]
    new_feature = label_feature(names, SINGLE_LABEL)
    out = [
        _replace_labels(split, [-1 if _is_unlabeled(v) else index[v] for v in column], new_feature)
        for split, column in zip(splits, columns)
    ]
    return out[0], (out[1] if eval_dataset is not None else None), names, SINGLE_LABEL


def _from_datasets(
    loaded: datasets.Dataset | datasets.DatasetDict,
    source: str,
    eval_split: str | None,
    image_column: str,
    label_column: str,
    eval_holdout_fraction: float,
    seed: int,
) -> JointDataset:
    train, eval_dataset, eval_name = _pick_splits(loaded, eval_split)
    for split_name, split in (("training", train), ("evaluation", eval_dataset)):
        if split is not None and len(split) == 0:
            raise ValueError(
                f"The {split_name} split of {source} is empty (0 examples): expected at least one image. Check the "
                "data source" + (", or pick another split with `eval_split`." if split_name == "evaluation" else ".")
            )
    _check_columns(train, image_column, label_column, "train")
    train = _select_columns(train, image_column, label_column)
    if eval_dataset is not None:
        _check_columns(eval_dataset, image_column, label_column, "evaluation")
        eval_dataset = _select_columns(eval_dataset, image_column, label_column)
    train, eval_dataset, label_names, problem_type = _normalise_labels(train, eval_dataset, source)
    train = _normalise_images(train, f"{source} train")
    if eval_dataset is not None:
        eval_dataset = _normalise_images(eval_dataset, f"{source} {eval_name}")
    return _joint_dataset(
        train, eval_dataset, eval_name, label_names, problem_type, source, eval_holdout_fraction, seed
    )


def _joint_dataset(
    train: datasets.Dataset,
    eval_dataset: datasets.Dataset | None,
    eval_name: str | None,
    label_names: list[str],
    problem_type: str,
    source: str,
    eval_holdout_fraction: float,
    seed: int,
) -> JointDataset:
    """The [`JointDataset`] of normalised splits, holding out part of `train` when there is no evaluation split."""
    if eval_dataset is None:
        train, eval_dataset = holdout_split(train, eval_holdout_fraction, seed)
    num_channels, image_size = image_info(train)
    return JointDataset(
        train=train,
        eval=eval_dataset,
        label_names=label_names,
        problem_type=problem_type,
        num_channels=num_channels,
        image_size=image_size,
        source=source,
        eval_split_name=f"{eval_name!r} split" if eval_name is not None else holdout_name(eval_holdout_fraction),
    )


def _from_image_files(
    train: tuple[list[str], list],
    evaluation: tuple[list[str], list] | None,
    eval_name: str | None,
    label_columns: Sequence[str],
    source: str,
    eval_holdout_fraction: float,
    seed: int,
    normalization: IntensityNormalization | None,
    skip_bad_images: bool,
) -> JointDataset:
    """A [`JointDataset`] whose `"image"` column holds file paths, checked (every file read) before it is returned."""
    pairs = [train] if evaluation is None else [train, evaluation]
    if len(label_columns) > 1:
        names, problem_type = list(label_columns), MULTI_LABEL
        splits = [multi_label_dataset(paths, labels, names) for paths, labels in pairs]
    else:
        splits = [raw_label_dataset(paths, labels) for paths, labels in pairs]
        first, second, names, problem_type = _normalise_labels(splits[0], splits[1] if evaluation else None)
        splits = [first, second] if evaluation else [first]
    checked = check_images(
        {"train": splits[0], "eval": splits[1] if evaluation else None}, normalization, skip_bad_images
    )
    if problem_type == SINGLE_LABEL and len(checked["train"]) < len(splits[0]):
        _check_no_class_emptied(splits[0], checked["train"], names, source)
    return _joint_dataset(
        checked["train"], checked["eval"], eval_name, names, problem_type, source, eval_holdout_fraction, seed
    )


def _check_no_class_emptied(before: datasets.Dataset, after: datasets.Dataset, names: list[str], source: str) -> None:
    """
    Refuse a class whose every training image was skipped as bad: it would stay a class with no image to learn it
    from. Dropping it instead would renumber the classes after it, so that the same folders gave other label ids.
    """
    had, has = set(before["label"]), set(after["label"])
    emptied = [names[i] for i in sorted(had - has) if i >= 0]
    if emptied:
        raise ValueError(
            f"Expected every class of {source} to keep training images, but every training image of the class(es) "
            f"{emptied} was skipped as bad (--skip_bad_images, see the warning listing them). Fix those images, or "
            "remove the class from the data."
        )


def _check_fixed_eval_split(eval_split: str | None, source: str) -> None:
    """CSV files and the digits have one fixed evaluation split: refuse any other name rather than ignore it."""
    if eval_split is not None and eval_split != FIXED_EVAL_SPLIT:
        raise ValueError(
            f"Got `eval_split={eval_split!r}`, but {source} has a training split and one fixed stratified evaluation "
            f"split, {FIXED_EVAL_SPLIT!r}, and no other. Drop it (or pass {FIXED_EVAL_SPLIT!r}), or use a data source "
            f"that has a {eval_split!r} split."
        )


def load_joint_dataset(
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    train_data_dir: str | None = None,
    npz_path: str | None = None,
    npz_split: str = "train",
    eval_split: str | None = None,
    image_column: str = "image",
    label_column: str | Sequence[str] = "label",
    cache_dir: str | None = None,
    eval_holdout_fraction: float = 0.1,
    seed: int = 0,
    csv_path: str | None = None,
    csv_label_position: str = "last",
    manifest: str | None = None,
    intensity_normalization: IntensityNormalization | None = None,
    skip_bad_images: bool = False,
) -> JointDataset:
    """
    Load a classification data set from any supported source and normalise it to a [`JointDataset`].

    Give at most one source. With none, scikit-learn's embedded 8x8 digits are used (see [`load_digits_dataset`]).
    The evaluation split is the source's `test` split, else its `validation` / `val` split, else a seeded stratified
    hold-out of `eval_holdout_fraction` of the training split.

    Args:
        dataset_name (`str`, *optional*):
            A Hugging Face Hub data set name, or a local folder (one written by `save_to_disk` is read with
            `datasets.load_from_disk`; any other with `datasets.load_dataset`). A local folder is named by its base
            name only in `JointDataset.source`, which model cards publish.
        dataset_config_name (`str`, *optional*):
            The configuration of `dataset_name`.
        train_data_dir (`str`, *optional*):
            A folder of images of any supported format (PNG, TIFF, JPEG, `.npy`, `.npz`, DICOM), optionally under
            `train/` and `test/` (or `validation/`, `val/`): labelled by a `metadata.csv` / `metadata.jsonl` with a
            `file_name` column and the `label_column` columns, else by their class sub-folder
            (`<dir>/<class_name>/<image>`, class names are the folder names).
        npz_path (`str`, *optional*):
            A MedMNIST-style `.npz` file (see [`load_npz_dataset`]).
        npz_split (`str`, *optional*, defaults to `"train"`):
            The training split of the `.npz` file.
        eval_split (`str`, *optional*):
            Name of the evaluation split, to override the default choice (e.g. `"val"`). CSV files and the embedded
            digits have one fixed split, `"test"`: any other name raises a `ValueError`.
        image_column (`str`, *optional*, defaults to `"image"`):
            The column holding the images (for `dataset_name`), or the file names (for `manifest` and metadata files,
            where `file_name`, `image`, `path` or `filename` is found by default).
        label_column (`str` or `list[str]`, *optional*, defaults to `"label"`):
            The column holding the labels: a `ClassLabel`, plain ints or strings (remapped to `0..K-1` in sorted
            order, names are the original values), or lists of 0/1 (multi-label). For `manifest` and metadata files,
            several columns make a multi-label problem with one 0/1 column per finding (named after the columns).
            Missing or empty label cells mean unlabeled; a multi-label row with any finding unknown (-1 or empty) is
            unlabeled as a whole, as the classifier loss counts it (a warning gives how many rows).
        cache_dir (`str`, *optional*):
            Cache folder for `datasets.load_dataset`.
        eval_holdout_fraction (`float`, *optional*, defaults to 0.1):
            Fraction of the training split's labeled examples held out for evaluation when the source has no
            evaluation split (unlabeled examples stay in training).
        seed (`int`, *optional*, defaults to 0):
            Seed of the hold-out split (not used by the embedded digits, whose split is fixed).
        csv_path (`str`, *optional*):
            A CSV / `.csv.gz` file with one image per row, label last (see [`load_csv_dataset`]).
        csv_label_position (`str`, *optional*, defaults to `"last"`):
            Whether the label of `csv_path` is its `"first"` or its `"last"` column.
        manifest (`str`, *optional*):
            A label manifest: a `.csv`, `.tsv`, `.jsonl` or `.json` (an array of row objects) table of image file
            paths (relative to the table's folder, or absolute) and labels. An optional `split` column (`train`, and
            `test` / `validation` / `val` / `valid` or `eval_split`) gives the evaluation split; without it, a seeded
            hold-out of `eval_holdout_fraction`.
        intensity_normalization ([`IntensityNormalization`], *optional*):
            The normalisation training will use; every image (files, `.npz` and dataset arrays) is checked with it.
            Defaults to the dtype's range.
        skip_bad_images (`bool`, *optional*, defaults to `False`):
            Every image of the training and evaluation splits is read before the data set is returned; files that
            cannot be used raise a [`~data.image_check.BadImagesError`] listing them all (path and reason), or with
            `skip_bad_images=True` are dropped with a warning that names them.

    Returns:
        [`JointDataset`]: splits with columns `"image"` (PIL images, or file paths for `train_data_dir` and
        `manifest`) and `"label"`. Array images of a dataset keep their values: `uint16` as 16-bit, float as float.

    Raises:
        ValueError: several sources, a split that the source does not have (`eval_split`), malformed labels, or array
            images that cannot be kept without loss (colour that is not 8-bit, integers outside 0-255 that are not
            `uint16`); the message names the source and what was expected.
        BadImagesError: images that cannot be used with `intensity_normalization` (for example float images outside
            [0, 1] with the default), each named by its path or `<split> row <i>`; not with `skip_bad_images`.
    """
    given = [
        name
        for name, value in (
            ("dataset_name", dataset_name),
            ("train_data_dir", train_data_dir),
            ("npz_path", npz_path),
            ("csv_path", csv_path),
            ("manifest", manifest),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise ValueError(f"Expected at most one data source, got {', '.join(given)}. Keep only one of them.")

    label_columns = [label_column] if isinstance(label_column, str) else list(label_column)
    if len(label_columns) > 1 and manifest is None and train_data_dir is None:
        raise ValueError(
            f"Several label columns ({label_columns}) are read from a label manifest or an image folder's metadata "
            "file: pass `manifest` or `train_data_dir`, or a single `label_column`."
        )
    if manifest is not None or train_data_dir is not None:
        image_col = None if image_column == "image" else image_column  # default: the usual file-name columns
        if manifest is not None:
            name, folder = os.path.basename(manifest), os.path.dirname(os.path.abspath(manifest))
            train_rows, eval_rows, eval_name = split_rows(read_table(manifest), eval_split, where=name)
            pairs = tuple(
                manifest_splits(rows, folder, label_columns, image_col, where=name) if rows else None
                for rows in (train_rows, eval_rows)
            ) + (eval_name,)
            source = f"label manifest {name}"
        else:
            if not os.path.isdir(train_data_dir):
                raise ValueError(f"Expected `train_data_dir` to be an existing folder, got {train_data_dir!r}.")
            pairs = image_folder_splits(train_data_dir, eval_split, label_columns, image_col)
            # the folder's name only: the source goes into model cards, which must not publish local paths
            source = f"imagefolder {os.path.basename(os.path.normpath(train_data_dir))}"
        return _from_image_files(
            *pairs, label_columns, source, eval_holdout_fraction, seed, intensity_normalization, skip_bad_images
        )
    if npz_path is not None:  # checked by its loader, before its hold-out: bad images are named by their row
        return load_npz_dataset(
            npz_path,
            split=npz_split,
            eval_split=eval_split,
            eval_holdout_fraction=eval_holdout_fraction,
            seed=seed,
            intensity_normalization=intensity_normalization,
            skip_bad_images=skip_bad_images,
        )
    if csv_path is not None:
        _check_fixed_eval_split(eval_split, os.path.basename(csv_path))
        return load_csv_dataset(csv_path, label_position=csv_label_position)
    if dataset_name is None:
        _check_fixed_eval_split(eval_split, "the embedded scikit-learn digits")
        logger.info("No data source given: using scikit-learn's embedded 8x8 digits.")
        return load_digits_dataset()
    if _is_saved_to_disk(dataset_name):
        try:
            loaded = datasets.load_from_disk(dataset_name)
        except IndexError as error:  # what `datasets` raises for a split saved with 0 examples
            raise ValueError(
                f"Cannot read the dataset saved in {dataset_name} (IndexError: {error}): one of its splits is "
                "empty (0 examples). Expected at least one image per split: drop the empty split and save again."
            ) from error
    else:
        loaded = datasets.load_dataset(dataset_name, dataset_config_name, cache_dir=cache_dir)
    # a local folder by its name only, as for image folders: the source goes into model cards, which must not
    # publish local paths; a Hub dataset id is kept as it is
    source = os.path.basename(os.path.normpath(dataset_name)) if os.path.isdir(dataset_name) else dataset_name
    if dataset_config_name is not None:
        source = f"{source} ({dataset_config_name})"
    joint = _from_datasets(loaded, source, eval_split, image_column, label_columns[0], eval_holdout_fraction, seed)
    checked = check_images({"train": joint.train, "eval": joint.eval}, intensity_normalization, skip_bad_images)
    return dataclasses.replace(joint, train=checked["train"], eval=checked["eval"])
