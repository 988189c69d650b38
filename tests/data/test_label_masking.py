# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
import datasets
import numpy as np
import pytest

from diffusers_joint.data import is_labeled, mask_labels, select_labeled_indices


@pytest.fixture
def labels() -> np.ndarray:
    # 3 classes with 10, 6 and 2 examples, plus 2 already unlabeled.
    return np.array([0] * 10 + [1] * 6 + [2] * 2 + [-1] * 2)


def test_labeled_per_class_gives_exactly_k_per_class(labels):
    keep = select_labeled_indices(labels, labeled_per_class=2, seed=0)
    assert len(keep) == 6
    assert np.all(np.diff(keep) > 0)
    assert np.bincount(labels[keep], minlength=3).tolist() == [2, 2, 2]


def test_labeled_per_class_too_many_names_the_class(labels):
    with pytest.raises(ValueError, match=r"Class 2 has only 2 labeled examples.*labeled_per_class=3"):
        select_labeled_indices(labels, labeled_per_class=3)


def test_num_labeled_is_exact_and_stratified(labels):
    keep = select_labeled_indices(labels, num_labeled=6, seed=0)
    assert len(keep) == 6
    assert np.bincount(labels[keep], minlength=3).tolist() == [2, 2, 2]
    # Class 2 only has 2 examples: its missing share goes to the other classes.
    keep = select_labeled_indices(labels, num_labeled=12, seed=0)
    assert len(keep) == 12
    counts = np.bincount(labels[keep], minlength=3).tolist()
    assert counts[2] == 2 and sorted(counts[:2]) == [5, 5]


def test_unlabeled_examples_are_never_selected(labels):
    keep = select_labeled_indices(labels, num_labeled=18, seed=3)
    assert len(keep) == 18
    assert (labels[keep] >= 0).all()
    assert len(select_labeled_indices(labels)) == 18


def test_num_labeled_too_many_says_how_many_exist(labels):
    with pytest.raises(ValueError, match="only 18 labeled examples exist"):
        select_labeled_indices(labels, num_labeled=19)


def test_labeled_fraction(labels):
    keep = select_labeled_indices(labels, labeled_fraction=0.5, seed=0)
    assert len(keep) == 9
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        select_labeled_indices(labels, labeled_fraction=0.0)


def test_deterministic_per_seed_and_different_for_another_seed(digits):
    _, targets = digits
    first = select_labeled_indices(targets, num_labeled=20, seed=7)
    again = select_labeled_indices(targets, num_labeled=20, seed=7)
    other = select_labeled_indices(targets, num_labeled=20, seed=8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert np.bincount(targets[first], minlength=10).tolist() == [2] * 10


def test_bad_options(labels):
    with pytest.raises(ValueError, match="at most one"):
        select_labeled_indices(labels, num_labeled=3, labeled_per_class=1)
    with pytest.raises(ValueError, match="non-negative integer"):
        select_labeled_indices(labels, num_labeled=-1)


def test_multi_label_selection():
    labels = np.array([[1, 0, 1], [0, 1, 0], [-1, -1, -1], [1, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(is_labeled(labels), [True, True, False, True, True])
    keep = select_labeled_indices(labels, num_labeled=3, seed=0)
    assert len(keep) == 3 and 2 not in keep
    with pytest.raises(ValueError, match="not supported for multi-label"):
        select_labeled_indices(labels, labeled_per_class=1)


def test_mask_labels_keeps_features_and_hides_the_rest(digits):
    images, targets = digits
    names = [str(i) for i in range(10)]
    features = datasets.Features({"label": datasets.ClassLabel(names=names), "index": datasets.Value("int64")})
    dataset = datasets.Dataset.from_dict({"label": targets[:200].tolist(), "index": list(range(200))}, features)
    masked = mask_labels(dataset, labeled_per_class=2, seed=1)
    masked_labels = np.asarray(masked["label"])
    assert masked.features["label"].names == names
    assert (masked_labels >= 0).sum() == 20
    kept = masked_labels >= 0
    np.testing.assert_array_equal(masked_labels[kept], targets[:200][kept])
    assert masked["index"] == list(range(200))
    again = np.asarray(mask_labels(dataset, labeled_per_class=2, seed=1)["label"])
    np.testing.assert_array_equal(masked_labels, again)


def test_mask_labels_multi_label():
    features = datasets.Features({"label": datasets.List(datasets.Value("int64"))})
    dataset = datasets.Dataset.from_dict({"label": [[1, 0], [0, 1], [1, 1], [0, 0]]}, features)
    masked = np.asarray(mask_labels(dataset, num_labeled=1, seed=0)["label"])
    assert is_labeled(masked).sum() == 1
    assert ((masked == -1).all(axis=1)).sum() == 3


def test_mask_labels_missing_column_lists_the_columns():
    dataset = datasets.Dataset.from_dict({"image": [0, 1], "finding": [0, 1]})
    with pytest.raises(ValueError, match=r"label column 'label'.*columns \['image', 'finding'\]"):
        mask_labels(dataset, num_labeled=1)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.zeros((4, 2, 2)), r"shape \(N,\) or \(N, L\), got an array of shape \(4, 2, 2\)"),
        (np.array(["a", "b"]), r"integer labels .*dtype <U1"),
    ],
)
def test_labels_of_the_wrong_shape_or_type(labels, message):
    with pytest.raises(ValueError, match=message):
        select_labeled_indices(labels, num_labeled=1)
