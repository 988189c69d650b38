# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
import argparse

import numpy as np
import pytest

from diffusers_joint.data import add_data_source_arguments, load_joint_dataset_from_args, split_validation_from_args


def _parse(argv: list[str]) -> argparse.Namespace:
    """The data flags of the training scripts, with their `--validation_split` and `--seed`."""
    parser = argparse.ArgumentParser()
    add_data_source_arguments(parser)
    parser.add_argument("--validation_split", type=str, default=None)
    parser.add_argument("--validation_fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


@pytest.mark.parametrize("source", ["digits", "csv", "npz"])
def test_validation_split_never_is_the_evaluation_split(tmp_path, digits, source):
    images, targets = digits
    flags = []
    if source == "csv":  # a fixed stratified test split, and no other
        rows = np.concatenate([images[:50].reshape(50, -1), targets[:50, None] % 2], axis=1)
        np.savetxt(tmp_path / "tiny.csv", rows, fmt="%d", delimiter=",")
        flags = ["--csv_path", str(tmp_path / "tiny.csv")]
    elif source == "npz":  # no test split: `val` is the evaluation split
        labels = targets[:60, None] % 2
        np.savez(tmp_path / "tv.npz", train_images=images[:40], train_labels=labels[:40], val_images=images[40:60],
                 val_labels=labels[40:60])  # fmt: skip
        flags = ["--npz_path", str(tmp_path / "tv.npz")]
    args = _parse([*flags, "--validation_split", "val"])
    dataset = load_joint_dataset_from_args(args)
    with pytest.raises(ValueError, match=r"--validation_split 'val'.*evaluation split") as caught:
        split_validation_from_args(args, dataset)
    assert dataset.source in str(caught.value) and dataset.eval_split_name in str(caught.value)
