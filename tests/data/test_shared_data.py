# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Tests on the real files of ../shared/data; skipped when that folder is absent."""

import numpy as np
import pytest

from diffusers_joint.data import load_joint_dataset

pytestmark = pytest.mark.shared_data


def test_pneumoniamnist_npz(shared_data):
    path = shared_data / "pneumoniamnist" / "pneumoniamnist_balanced_28.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    data = load_joint_dataset(npz_path=str(path), eval_split="val")
    assert (len(data.train), len(data.eval)) == (2428, 270)
    assert data.label_names == ["0", "1"] and data.num_channels == 1 and data.image_size == (28, 28)
    assert np.bincount(np.asarray(data.eval["label"])).tolist() == [135, 135]


def test_mnist5k_csv(shared_data):
    path = shared_data / "mnist5k" / "mnist_5k.csv.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    data = load_joint_dataset(csv_path=str(path))
    assert (len(data.train), len(data.eval)) == (4000, 1000)
    assert data.image_size == (28, 28) and data.label_names == [str(i) for i in range(10)]
    assert np.bincount(np.asarray(data.eval["label"])).tolist() == [100] * 10
