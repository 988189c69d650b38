import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from diffusers_joint.evaluation import split_shift_auc
from diffusers_joint.evaluation.split_shift import _features


def digits():
    data = load_digits()
    order = np.random.default_rng(0).permutation(len(data.target))
    images = torch.tensor(data.images[order], dtype=torch.float32).unsqueeze(1) / 8 - 1  # 0..16 -> [-1, 1]
    return images, data.target[order]


def test_two_halves_of_one_split_look_alike():
    images, labels = digits()
    result = split_shift_auc(images[:800], images[800:1600], labels[:800], labels[800:1600])
    assert abs(result["roc_auc"] - 0.5) < 0.08
    assert result["num_images"] == [800, 800]
    assert sorted(result["per_class"]) == list(range(10))
    assert all(abs(auc - 0.5) < 0.25 for auc in result["per_class"].values())


def test_a_brighter_split_is_told_apart():
    images, _ = digits()
    assert split_shift_auc(images[:400], images[400:800] + 0.2)["roc_auc"] > 0.95


def test_per_class_auc_finds_the_one_shifted_class_and_ignores_the_class_mix():
    images, labels = digits()
    a, b = images[:800], images[800:1600].clone()
    labels_a, labels_b = labels[:800], labels[800:1600]
    b[torch.from_numpy(labels_b == 3)] += 0.3  # only the 3s of split b are brighter
    result = split_shift_auc(a, b, labels_a, labels_b)
    assert result["per_class"][3] > 0.95
    assert all(abs(result["per_class"][label] - 0.5) < 0.25 for label in range(10) if label != 3)

    # A different class mix alone: the overall AUC rises, the per-class ones stay near 0.5.
    zeros_ones = torch.from_numpy(np.isin(labels_b, [0, 1]))
    mixed = split_shift_auc(a, images[800:1600][zeros_ones], labels_a, labels_b[zeros_ones.numpy()])
    assert mixed["roc_auc"] > 0.8
    assert all(abs(auc - 0.5) < 0.25 for auc in mixed["per_class"].values())


def test_large_images_are_average_pooled_to_max_size():
    images, _ = digits()
    large = F.interpolate(images[:200], scale_factor=8, mode="nearest")  # 64 px, pools back to the 8 px digits
    other = F.interpolate(images[200:400] + 0.1, scale_factor=8, mode="nearest")
    np.testing.assert_allclose(_features(large, "images_a", max_size=8), images[:200].flatten(1).numpy(), atol=1e-6)
    expected = split_shift_auc(images[:200], images[200:400] + 0.1, max_size=8)["roc_auc"]
    assert split_shift_auc(large, other, max_size=8)["roc_auc"] == pytest.approx(expected, abs=1e-3)
    assert split_shift_auc(large, other)["roc_auc"] > 0.9  # 64 px -> 32 px by default


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(images_a=torch.zeros(10, 28, 28)), r"images_a.*\(N, C, H, W\).*\(10, 28, 28\)"),
        (dict(images_b=torch.zeros(10, 1, 14, 14)), r"same image shape.*\(1, 8, 8\).*\(1, 14, 14\)"),
        (dict(images_b=torch.zeros(3, 1, 8, 8)), r"num_folds=5.*got 20 in `images_a` and 3 in `images_b`"),
        (dict(labels_a=np.zeros(20)), r"labels for both splits"),
        (dict(labels_a=np.zeros(19), labels_b=np.zeros(20)), r"20 entries in `labels_a`.*got 19"),
        (dict(num_folds=1), r"num_folds.*got 1"),
        (dict(labels_a=np.zeros((20, 3)), labels_b=np.zeros((20, 3))), r"single-label.*\(20, 3\)"),
    ],
)
def test_bad_input_raises_an_error_naming_it(kwargs, match):
    arguments = {"images_a": torch.zeros(20, 1, 8, 8), "images_b": torch.ones(20, 1, 8, 8), **kwargs}
    with pytest.raises(ValueError, match=match):
        split_shift_auc(**arguments)
