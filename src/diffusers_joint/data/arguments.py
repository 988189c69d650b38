# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The data-source flags shared by the training and evaluation scripts, and the loader that reads them."""

from __future__ import annotations

import argparse

from .intensity import IntensityNormalization
from .joint_dataset import JointDataset
from .sources import load_joint_dataset

# flag -> load_joint_dataset keyword; `--seed` is the script's own flag
_SOURCE_KEYWORDS = (
    "dataset_name", "dataset_config_name", "train_data_dir", "npz_path", "npz_split", "csv_path", "manifest",
    "eval_split", "image_column", "cache_dir", "skip_bad_images",
)  # fmt: skip


class _IntensityNormalizationAction(argparse.Action):
    """Checks `--intensity_normalization MODE [LOW HIGH]` when parsing; keeps the strings (JSON-serialisable args)."""

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            IntensityNormalization.from_args(values)
        except ValueError as error:
            raise argparse.ArgumentError(self, str(error)) from error
        setattr(namespace, self.dest, list(values))


def add_data_source_arguments(group: argparse._ActionsContainer) -> None:
    """
    Adds `--dataset_name`, `--train_data_dir`, `--npz_path`, `--csv_path`, `--manifest` and their options (label
    columns, `--intensity_normalization`, `--skip_bad_images`) to a parser or group.
    """
    group.add_argument("--dataset_name", type=str, default=None, help="Hub dataset name or local dataset folder.")
    group.add_argument("--dataset_config_name", type=str, default=None)
    group.add_argument(
        "--train_data_dir",
        type=str,
        default=None,
        help="A folder of PNG / TIFF / JPEG / .npy / .npz / DICOM images, labelled by class sub-folders or by a "
        "metadata.csv / metadata.jsonl (file_name + label columns).",
    )
    group.add_argument(
        "--manifest", type=str, default=None, help="A .csv / .tsv / .jsonl of image paths (file_name) and labels."
    )
    group.add_argument("--npz_path", type=str, default=None, help="A MedMNIST-style .npz file.")
    group.add_argument("--csv_path", type=str, default=None, help="Images as CSV rows (e.g. MNIST-5k .csv.gz).")
    group.add_argument("--npz_split", type=str, default="train", help="Split of the .npz used for training.")
    group.add_argument("--eval_split", type=str, default=None, help="Evaluation split (default: test, else val).")
    group.add_argument("--image_column", type=str, default="image")
    group.add_argument(
        "--label_column",
        type=str,
        action="append",
        default=None,
        help="Label column (default: label). Repeat for multi-label data, one 0/1 column per finding; empty cells "
        "mean unlabeled.",
    )
    group.add_argument("--cache_dir", type=str, default=None)
    group.add_argument(
        "--intensity_normalization",
        nargs="+",
        metavar="MODE",
        action=_IntensityNormalizationAction,
        default=None,
        help="How intensities map to [-1, 1], saved with the pipeline: dtype (default: the dtype's range, 0-255, "
        "0-65535...), minmax (per image), percentile [LOW HIGH] (per image, default 0.5 99.5) or window LOW HIGH.",
    )
    group.add_argument(
        "--skip_bad_images",
        action="store_true",
        help="Train without the images that cannot be read (named in a warning) instead of stopping before training.",
    )


def intensity_normalization_from_args(args: argparse.Namespace) -> IntensityNormalization:
    """The [`IntensityNormalization`] of `--intensity_normalization` (the dtype's range when not given)."""
    return IntensityNormalization.from_args(getattr(args, "intensity_normalization", None))


def load_joint_dataset_from_args(args: argparse.Namespace) -> JointDataset:
    """[`load_joint_dataset`] with the flags of [`add_data_source_arguments`] and `args.seed` (the hold-out split)."""
    return load_joint_dataset(
        **{key: getattr(args, key, None) for key in _SOURCE_KEYWORDS},
        label_column=args.label_column or ["label"],
        intensity_normalization=intensity_normalization_from_args(args),
        seed=args.seed,
    )
