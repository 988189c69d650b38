# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The data-source flags shared by the training and evaluation scripts, and the loader that reads them."""

from __future__ import annotations

import argparse
import math

import datasets
from diffusers.utils import logging

from .image_check import BadImagesError
from .intensity import IntensityNormalization
from .joint_dataset import JointDataset, holdout_name, holdout_split
from .label_masking import mask_labels
from .sources import load_joint_dataset

logger = logging.get_logger(__name__)


def int_at_least(minimum: int, meaning: str = ""):
    """
    An argparse `type` for integer flags of at least `minimum`; a smaller value is a usage error naming the flag, the
    value and `meaning` (e.g. `", or 0 for never"`), raised while the command line is parsed, before any work.
    """

    def parse(value: str) -> int:
        number = int(value)  # not an integer: argparse's "invalid int value"
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}{meaning}, got {number}")
        return number

    parse.__name__ = "int"
    return parse


def float_in(low: float, high: float = math.inf, low_open: bool = False, high_open: bool = False):
    """
    An argparse `type` for float flags in `[low, high]` (`(low, ...` with `low_open`, `..., high)` with `high_open`);
    a value outside is a usage error naming the flag, the value and the range, raised while the command line is parsed.
    """

    def parse(value: str) -> float:
        number = float(value)  # not a number: argparse's "invalid float value"
        below = number <= low if low_open else number < low
        above = number >= high if high_open else number > high
        if below or above or math.isnan(number):
            interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            raise argparse.ArgumentTypeError(f"must be in {interval}, got {value}")
        return number

    parse.__name__ = "float"
    return parse


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
        "--manifest",
        type=str,
        default=None,
        help="A .csv / .tsv / .jsonl / .json of image paths (file_name) and labels.",
    )
    group.add_argument("--npz_path", type=str, default=None, help="A MedMNIST-style .npz file.")
    group.add_argument("--csv_path", type=str, default=None, help="Images as CSV rows (e.g. MNIST-5k .csv.gz).")
    group.add_argument(
        "--csv_label_position",
        choices=("first", "last"),
        default="last",
        help="The column of --csv_path holding the label (first, as in Kaggle's mnist_train.csv, or last).",
    )
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
        csv_label_position=getattr(args, "csv_label_position", "last"),
        label_column=args.label_column or ["label"],
        intensity_normalization=intensity_normalization_from_args(args),
        seed=args.seed,
    )


def split_validation_from_args(
    args: argparse.Namespace, dataset: JointDataset
) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    """
    `(training split, validation split or None)`: the source's `args.validation_split` when given, else a seeded,
    stratified hold-out of `args.validation_fraction` of the labeled training images ([`holdout_split`]).

    Raises:
        ValueError: `args.select_best_checkpoint` is set and there is no validation split to score steps on; or
            `args.validation_split` is a split the source does not have (CSV files and the embedded digits have only
            their fixed test split), or is the evaluation split or the training split itself (the message names the
            source and the splits).
    """
    if args.validation_split is not None:
        split = args.validation_split
        about = f"--validation_split {split!r} of {dataset.source} (evaluation split: {dataset.eval_split_name})"
        # evaluation images must never be used for validation, nor training images validate themselves
        training = (getattr(args, "npz_split", None) or "train") if getattr(args, "npz_path", None) else "train"
        if split in (getattr(args, "eval_split", None), training):
            which = "training" if split == training else "evaluation"
            raise ValueError(f"{about} is the {which} split itself: pick another split, or drop --validation_split.")
        try:
            source = load_joint_dataset_from_args(argparse.Namespace(**{**vars(args), "eval_split": split}))
        except BadImagesError:
            raise
        except ValueError as error:
            raise ValueError(f"Cannot read {about}: {error}") from error
        if source.eval_split_name == dataset.eval_split_name:
            raise ValueError(
                f"{about} is the evaluation split itself, whose images must never be used for validation: pick "
                "another split, pass another --eval_split, or drop --validation_split to hold out "
                "--validation_fraction of the training images."
            )
        return dataset.train, source.eval
    train, validation = holdout_split(dataset.train, args.validation_fraction, args.seed)
    if validation is not None:
        logger.info(
            f"Validation (calibration) split: {holdout_name(args.validation_fraction)}, {len(validation)} images."
        )
    elif getattr(args, "select_best_checkpoint", None):
        raise ValueError(
            "--select_best_checkpoint scores steps on the validation split, and there is none: drop "
            "--validation_fraction 0 or pass --validation_split."
        )
    return train, validation


def add_label_budget_arguments(group: argparse._ActionsContainer) -> None:
    """Add the mutually exclusive label budgets `--num_labeled`, `--labeled_per_class` and `--labeled_fraction`."""
    budget = group.add_mutually_exclusive_group()
    budget.add_argument("--num_labeled", type=int, default=None, help="Keep N labels (stratified), mask the rest.")
    budget.add_argument("--labeled_per_class", type=int, default=None, help="Keep K labels per class.")
    budget.add_argument("--labeled_fraction", type=float, default=None, help="Keep this fraction of labels.")


def mask_labels_from_args(dataset: datasets.Dataset, args: argparse.Namespace) -> datasets.Dataset:
    """[`mask_labels`] with the budget of [`add_label_budget_arguments`] and `args.seed` (none set: `dataset`)."""
    budget = dict(num_labeled=args.num_labeled, labeled_per_class=args.labeled_per_class)
    if all(value is None for value in (*budget.values(), args.labeled_fraction)):
        return dataset
    return mask_labels(dataset, **budget, labeled_fraction=args.labeled_fraction, seed=args.seed)


def add_training_image_arguments(group: argparse._ActionsContainer) -> None:
    """Add the training scripts' image flags: `--resolution`, `--random_flip` and `--dataloader_num_workers`."""
    group.add_argument(
        "--resolution", type=int_at_least(1), default=None, help="Default: the images' size, rounded to fit."
    )
    group.add_argument("--random_flip", action="store_true", help="Flip horizontally (not for lateralised images).")
    group.add_argument("--dataloader_num_workers", type=int_at_least(0), default=0)
