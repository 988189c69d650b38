# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
import numpy as np

from diffusers_joint.data import SINGLE_LABEL, load_digits_dataset, load_joint_dataset


def test_embedded_default():
    data = load_joint_dataset(seed=123)
    assert data.problem_type == SINGLE_LABEL
    assert data.label_names == [str(i) for i in range(10)]
    assert data.num_channels == 1 and data.image_size == (8, 8)
    assert (len(data.train), len(data.eval)) == (1437, 360)
    assert "digits" in data.source and data.eval_split_name == "fixed stratified 20% test split"
    image = data.train[0]["image"]
    assert image.size == (8, 8) and image.mode == "L"
    assert np.asarray(image).max() > 200
    # Stratified: every class is in the evaluation set in proportion (about 36 each).
    counts = np.bincount(np.asarray(data.eval["label"]), minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37


def test_split_is_fixed_whatever_the_seed():
    first = load_digits_dataset()
    second = load_joint_dataset(seed=7)
    assert first.eval["label"][:50] == second.eval["label"][:50]
    np.testing.assert_array_equal(np.asarray(first.eval[10]["image"]), np.asarray(second.eval[10]["image"]))
