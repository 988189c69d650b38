"""`evaluate_generation` and `evaluate_counterfactuals` on tiny untrained pipelines (single- and multi-label)."""

import pytest
import torch
from diffusers import DDIMScheduler

from diffusers_joint.evaluation import (
    counterfactual_requests,
    evaluate_counterfactuals,
    evaluate_generation,
    train_reference_classifier,
)
from diffusers_joint.pipelines import DEFAULT_GUIDANCE_SCALES, GuidanceConfig
from tiny_models import tiny_joint_pipeline


def tiny_pipeline(num_classes, problem_type="single_label_classification"):
    return tiny_joint_pipeline(num_classes, DDIMScheduler(num_train_timesteps=20), problem_type=problem_type)


@pytest.fixture(scope="module")
def data():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(40, 1, 8, 8, generator=generator) * 2 - 1
    return images, torch.arange(40) % 4, torch.randint(0, 2, (40, 3), generator=generator)


def test_single_label_generation_and_counterfactuals_are_seeded(data):
    images, labels, _ = data
    pipe = tiny_pipeline(4)
    reference = train_reference_classifier(images, labels, num_epochs=1)
    kwargs = {"num_generated": 10, "num_inference_steps": 2, "kid_subset_size": 5, "seed": 1}
    first = evaluate_generation(pipe, images, reference, **kwargs)
    assert first == evaluate_generation(pipe, images, reference, **kwargs)
    assert first["num_generated"] == 10 and set(first["conditional_accuracy_per_class"]) == {"0", "1", "2", "3"}
    assert first["guidance"]["scale"] == DEFAULT_GUIDANCE_SCALES["x0"]  # the x0 method's default, as used
    assert first["guidance"] == GuidanceConfig().resolve("generation").to_dict()
    unguided = evaluate_generation(pipe, images, reference, guidance_scale=0.0, **kwargs)
    assert unguided["frechet_distance"] != first["frechet_distance"]

    cf_kwargs = {"num_counterfactuals": 8, "num_inference_steps": 4, "seed": 1}
    cf = evaluate_counterfactuals(pipe, images, labels, reference, **cf_kwargs)
    assert cf["num_counterfactuals"] == 8 and cf["l1"] > 0
    assert cf == evaluate_counterfactuals(pipe, images, labels, reference, **cf_kwargs)
    assert "frechet_distance_to_target_class" in cf


def test_multi_label_requests_real_label_sets_and_flips_one_label(data):
    images, _, multi_labels = data
    pipe = tiny_pipeline(3, "multi_label_classification")
    reference = train_reference_classifier(
        images, multi_labels, problem_type="multi_label_classification", num_epochs=1
    )
    gen = evaluate_generation(
        pipe, images, reference, num_generated=6, num_inference_steps=2, kid_subset_size=5, real_labels=multi_labels
    )
    assert gen["class_guided"] and 0 <= gen["conditional_accuracy"] <= 1
    assert "conditional_accuracy_per_class" not in gen
    unconditional = evaluate_generation(pipe, images, reference, num_generated=6, num_inference_steps=2)
    assert not unconditional["class_guided"] and "conditional_accuracy" not in unconditional

    cf = evaluate_counterfactuals(pipe, images, multi_labels, reference, num_counterfactuals=6, num_inference_steps=4)
    assert cf["num_counterfactuals"] == 6 and 0 <= cf["validity_reference"] <= 1
    assert "frechet_distance_to_target_class" not in cf  # defined for single-label data only


def test_the_unet_is_evaluated_in_eval_mode_and_left_as_it_was(data):
    images, labels, _ = data
    pipe = tiny_pipeline(4)
    pipe.unet.train()
    modes = []
    original_classify = pipe.unet.classify

    def spy(*args, **kwargs):
        modes.append(pipe.unet.training)
        return original_classify(*args, **kwargs)

    pipe.unet.classify = spy
    reference = train_reference_classifier(images, labels, num_epochs=1)
    evaluate_generation(pipe, images, reference, num_generated=4, num_inference_steps=2, kid_subset_size=4)
    assert modes and not any(modes)
    assert pipe.unet.training


def test_counterfactual_requests_pick_other_classes_reproducibly():
    labels = torch.arange(30) % 3
    pick, targets = counterfactual_requests(labels, 3, False, 12, seed=1)
    assert len(pick) == 12 and len(set(pick.tolist())) == 12 and pick.tolist() == sorted(pick.tolist())
    assert (targets != labels[pick]).all() and targets.min() >= 0 and targets.max() < 3
    again = counterfactual_requests(labels, 3, False, 12, seed=1)
    assert torch.equal(pick, again[0]) and torch.equal(targets, again[1])
    assert not torch.equal(pick, counterfactual_requests(labels, 3, False, 12, seed=2)[0])
    # multi-label: exactly one label per row is requested, the opposite of its current value
    multi = torch.randint(0, 2, (30, 4), generator=torch.Generator().manual_seed(0))
    pick, targets = counterfactual_requests(multi, 4, True, 50, seed=0)
    assert len(pick) == 30
    specified = targets != -1
    assert (specified.sum(dim=1) == 1).all()
    assert (targets[specified] == 1 - multi[pick][specified]).all()
