# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The data-source flags shared by the training and evaluation scripts, and the loader that reads them."""

from __future__ import annotations

import argparse

from .joint_dataset import JointDataset
from .sources import load_joint_dataset

# flag -> load_joint_dataset keyword; `--seed` is the script's own flag
_SOURCE_KEYWORDS = (
    "dataset_name", "dataset_config_name", "train_data_dir", "npz_path", "npz_split", "csv_path", "eval_split",
    "image_column", "label_column", "cache_dir",
)  # fmt: skip


def add_data_source_arguments(group: argparse._ActionsContainer) -> None:
    """Adds `--dataset_name`, `--train_data_dir`, `--npz_path`, `--csv_path` and their options to a parser or group."""
    group.add_argument("--dataset_name", type=str, default=None, help="Hub dataset name or local dataset folder.")
    group.add_argument("--dataset_config_name", type=str, default=None)
    group.add_argument("--train_data_dir", type=str, default=None, help="An imagefolder tree (class = folder name).")
    group.add_argument("--npz_path", type=str, default=None, help="A MedMNIST-style .npz file.")
    group.add_argument("--csv_path", type=str, default=None, help="Images as CSV rows (e.g. MNIST-5k .csv.gz).")
    group.add_argument("--npz_split", type=str, default="train", help="Split of the .npz used for training.")
    group.add_argument("--eval_split", type=str, default=None, help="Evaluation split (default: test, else val).")
    group.add_argument("--image_column", type=str, default="image")
    group.add_argument("--label_column", type=str, default="label")
    group.add_argument("--cache_dir", type=str, default=None)


def load_joint_dataset_from_args(args: argparse.Namespace) -> JointDataset:
    """[`load_joint_dataset`] with the flags of [`add_data_source_arguments`] and `args.seed` (the hold-out split)."""
    return load_joint_dataset(**{key: getattr(args, key) for key in _SOURCE_KEYWORDS}, seed=args.seed)
