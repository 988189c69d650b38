# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
import datasets
import numpy as np
from sklearn.model_selection import train_test_split

from diffusers_joint.data.joint_dataset import holdout_split


def rows(labels) -> datasets.Dataset:
    return datasets.Dataset.from_dict({"index": list(range(len(labels))), "label": list(labels)})


def test_fully_labeled_hold_out_is_the_seeded_stratified_split():
    labels = np.array([0] * 30 + [1] * 20 + [2] * 10)
    train, held = holdout_split(rows(labels), 0.2, seed=3)
    _, expected = train_test_split(np.arange(60), test_size=0.2, random_state=3, stratify=labels)
    assert list(held["index"]) == sorted(expected.tolist())
    assert sorted(list(train["index"]) + list(held["index"])) == list(range(60))
    assert np.bincount(held["label"]).tolist() == [6, 4, 2]


def test_unlabeled_examples_all_stay_in_training():
    labels = np.array([0] * 30 + [1] * 20 + [-1] * 50)  # e.g. unlabeled images of another hospital
    train, held = holdout_split(rows(labels), 0.2, seed=0)
    assert -1 not in list(held["label"])
    assert len(held) == 10  # 20 % of the 50 labeled examples, not of all 100
    assert list(train["label"]).count(-1) == 50
    assert sorted(list(train["index"]) + list(held["index"])) == list(range(100))
    # The labeled examples are split exactly as they would be without the unlabeled ones.
    _, labeled_only = holdout_split(rows(labels[:50]), 0.2, seed=0)
    assert list(held["index"]) == list(labeled_only["index"])


def test_multi_label_rows_of_minus_one_stay_in_training():
    labels = [[1, 0]] * 10 + [[0, 1]] * 10 + [[-1, -1]] * 10
    train, held = holdout_split(rows(labels), 0.25, seed=0)
    assert [-1, -1] not in list(held["label"])
    assert len(held) == 5 and len(train) == 25


def test_unlabeled_data_is_still_split_as_a_whole():
    train, held = holdout_split(rows([-1] * 20), 0.25, seed=0)
    assert (len(train), len(held)) == (15, 5)
