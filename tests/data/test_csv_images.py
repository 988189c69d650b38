# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Images as CSV rows: the label column, and files that are not of that layout."""

import argparse

import numpy as np
import pytest

from diffusers_joint.data import add_data_source_arguments, load_csv_dataset, load_joint_dataset_from_args


def _rows(digits, label_first: bool) -> np.ndarray:
    images, targets = digits
    pixels, labels = images[:40].reshape(40, -1), targets[:40, None] % 2
    pixels[:, -1] = pixels[:, 0] = 0  # corner pixels are 0, as in MNIST: read as a label they make one class
    return np.concatenate([labels, pixels] if label_first else [pixels, labels], axis=1)


def test_a_label_first_file_read_label_last_is_refused_and_read_with_label_position_first(tmp_path, digits):
    path = tmp_path / "first.csv"
    np.savetxt(path, _rows(digits, label_first=True), fmt="%d", delimiter=",")
    with pytest.raises(ValueError, match=r"at least 2 classes in the last column of .*first\.csv, got only class 0.*"
                                         r"--csv_label_position first"):  # fmt: skip
        load_csv_dataset(path)
    parser = argparse.ArgumentParser()
    add_data_source_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)
    data = load_joint_dataset_from_args(parser.parse_args(["--csv_path", str(path), "--csv_label_position", "first"]))
    assert data.label_names == ["0", "1"] and data.image_size == (8, 8)
    np.savetxt(tmp_path / "last.csv", _rows(digits, label_first=False), fmt="%d", delimiter=",")
    assert data.train["label"] == load_csv_dataset(tmp_path / "last.csv").train["label"]  # the same split


def test_a_header_row_raises_naming_the_file_and_the_layout(tmp_path, digits):
    path = tmp_path / "header.csv"
    rows = _rows(digits, label_first=False)
    header = ",".join([f"pixel{i}" for i in range(64)] + ["label"])
    np.savetxt(path, rows, fmt="%d", delimiter=",", header=header, comments="")
    with pytest.raises(ValueError, match=r"Cannot read .*header\.csv as images in CSV rows .*without a header row"):
        load_csv_dataset(path)
