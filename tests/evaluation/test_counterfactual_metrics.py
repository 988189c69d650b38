"""Counterfactual metrics against hand-computed values."""

import math

import numpy as np
import pytest
import torch

from diffusers_joint.evaluation import compute_counterfactual_metrics, frechet_distance


def two_counterfactuals():
    original = np.zeros((2, 1, 2, 2))
    counterfactual = original.copy()
    counterfactual[0, 0, 0, 0] = 1.0  # one visible change
    counterfactual[1] += 0.05  # a faint change everywhere, below the 0.1 threshold
    return original, counterfactual


def test_distances_validity_and_flip_rate_by_hand():
    original, counterfactual = two_counterfactuals()
    m = compute_counterfactual_metrics(
        original,
        counterfactual,
        target=np.array([1, 0]),
        model_probs_after=np.array([[0.2, 0.8], [0.3, 0.7]]),  # image 0 reaches its target, image 1 does not
        reference_probs_after=np.array([[0.4, 0.6], [0.6, 0.4]]),  # the judge agrees with both targets
        model_probs_before=np.array([[0.9, 0.1], [0.1, 0.9]]),  # neither input was its target
    )
    assert m["num_counterfactuals"] == 2
    assert m["l1"] == pytest.approx((1 / 4 + 0.05) / 2)
    assert m["l2"] == pytest.approx((math.sqrt(1 / 4) + 0.05) / 2)
    assert m["changed_pixel_fraction"] == pytest.approx((1 / 4 + 0) / 2)
    # 80 % of the change: the one changed pixel of image 0 (1 of 4), 4 of 4 pixels of the even change of image 1
    assert m["localization"] == pytest.approx((1 / 4 + 4 / 4) / 2)
    assert m["validity_model"] == 0.5
    assert m["validity_reference"] == 1.0
    assert m["already_target_model"] == 0.0
    assert m["flip_rate_model"] == 0.5


def test_threshold_and_channels():
    original = torch.zeros(1, 3, 2, 2)
    counterfactual = original.clone()
    counterfactual[0, 2, 1, 1] = -0.3  # one channel of one pixel
    probs = torch.tensor([[0.0, 1.0]])
    m = compute_counterfactual_metrics(original, counterfactual, torch.tensor([1]), probs, change_threshold=0.2)
    assert m["changed_pixel_fraction"] == pytest.approx(1 / 4)
    assert compute_counterfactual_metrics(original, counterfactual, [1], probs, change_threshold=0.5)[
        "changed_pixel_fraction"
    ] == pytest.approx(0.0)


def test_flip_rate_ignores_inputs_already_of_the_target_class():
    original, counterfactual = two_counterfactuals()
    m = compute_counterfactual_metrics(
        original,
        counterfactual,
        target=[1, 1],
        model_probs_after=[[0.2, 0.8], [0.3, 0.7]],
        model_probs_before=[[0.1, 0.9], [0.9, 0.1]],  # the first input was already class 1
    )
    assert m["validity_model"] == 1.0
    assert m["already_target_model"] == 0.5
    assert m["flip_rate_model"] == 1.0


def test_multi_label_validity_ignores_free_labels():
    original, counterfactual = two_counterfactuals()
    targets = np.array([[1, -1, 0], [-1, 1, -1]])
    after = np.array([[0.9, 0.9, 0.2], [0.8, 0.3, 0.1]])  # row 0 matches its specified labels, row 1 does not
    m = compute_counterfactual_metrics(
        original, counterfactual, targets, after, problem_type="multi_label_classification"
    )
    assert m["validity_model"] == 0.5


def test_frechet_distance_to_real_images_of_the_target_class():
    rng = np.random.default_rng(0)
    real_features = rng.standard_normal((12, 3))
    real_labels = np.array([0] * 6 + [1] * 6)
    original = np.zeros((5, 1, 2, 2))
    targets = np.array([1, 1, 1, 0, 0])
    cf_features = np.concatenate([real_features[6:9], rng.standard_normal((2, 3)) + 2])
    m = compute_counterfactual_metrics(
        original,
        original,
        targets,
        model_probs_after=np.eye(2)[targets],
        counterfactual_features=cf_features,
        real_features=real_features,
        real_labels=real_labels,
    )
    fd1 = frechet_distance(real_features[6:], cf_features[:3])
    fd0 = frechet_distance(real_features[:6], cf_features[3:])
    assert m["frechet_distance_per_target_class"] == {"0": pytest.approx(fd0), "1": pytest.approx(fd1)}
    assert m["frechet_distance_to_target_class"] == pytest.approx((3 * fd1 + 2 * fd0) / 5)
    assert fd0 > fd1  # the class-0 counterfactuals are shifted away from the real class-0 images


def test_bad_inputs():
    with pytest.raises(ValueError, match="one shape"):
        compute_counterfactual_metrics(np.zeros((2, 1, 2, 2)), np.zeros((2, 1, 2, 3)), [0, 1], np.eye(2))
    with pytest.raises(ValueError, match="2 counterfactuals, 1 targets"):
        compute_counterfactual_metrics(np.zeros((2, 1, 2, 2)), np.zeros((2, 1, 2, 2)), [0], np.eye(2))
