# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""benchmarks/benchmark_counterfactuals.py: the pipeline and the pixel attack answer the same requests."""

import sys

import pytest
import torch

import diffusers_joint.evaluation.pipeline_evaluation as pipeline_evaluation
from diffusers_joint.evaluation import evaluate_counterfactuals
from tiny_models import tiny_joint_pipeline

NUM_CLASSES = 3


class UniformReference:
    """A stand-in reference network: uniform probabilities, the first pixels as features."""

    def predict_proba(self, images):
        return torch.full((len(images), NUM_CLASSES), 1 / NUM_CLASSES)

    def extract_features(self, images):
        return images.flatten(1)[:, :4]


def test_the_pipeline_and_the_pixel_attack_get_the_same_images_and_targets(load_benchmark, monkeypatch):
    benchmark = load_benchmark("benchmark_counterfactuals")
    pipe = tiny_joint_pipeline(NUM_CLASSES)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(12, 1, 8, 8, generator=generator) * 2 - 1
    labels = torch.arange(12) % NUM_CLASSES
    monkeypatch.setattr(benchmark, "load_pipeline", lambda *args: pipe)
    monkeypatch.setattr(
        benchmark, "evaluation_data_and_reference", lambda *args: (images, labels, UniformReference(), 1.0)
    )
    requests = {}

    def recording(name, metrics):
        def record(inputs, counterfactuals, targets, **kwargs):
            requests[name] = (inputs.clone(), targets.clone())
            return metrics(inputs, counterfactuals, targets, **kwargs)

        return record

    monkeypatch.setattr(
        pipeline_evaluation,
        "compute_counterfactual_metrics",
        recording("pipeline", pipeline_evaluation.compute_counterfactual_metrics),
    )
    monkeypatch.setattr(
        benchmark,
        "compute_counterfactual_metrics",
        recording("pixel_attack", benchmark.compute_counterfactual_metrics),
    )
    flags = ["--pipeline", "unused", "--num_counterfactuals", "8", "--num_inference_steps", "4", "--attack_steps", "2"]
    monkeypatch.setattr(sys, "argv", ["benchmark_counterfactuals.py", *flags])
    benchmark.main()

    (pipeline_inputs, pipeline_targets), (attack_inputs, attack_targets) = (
        requests["pipeline"],
        requests["pixel_attack"],
    )
    assert len(attack_targets) == 8
    assert torch.equal(pipeline_inputs, attack_inputs) and torch.equal(pipeline_targets, attack_targets)


def test_given_targets_are_explained_in_order_and_must_match_the_images():
    pipe = tiny_joint_pipeline(NUM_CLASSES)
    images = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    labels = torch.tensor([0, 1, 2, 0])
    targets = torch.tensor([1, 2, 0, 2])
    results = evaluate_counterfactuals(
        pipe, images, labels, UniformReference(), num_inference_steps=2, mask_image=None, targets=targets
    )
    assert results["num_counterfactuals"] == 4
    with pytest.raises(ValueError, match="one target per image: 3 for 4 images"):
        evaluate_counterfactuals(pipe, images, labels, UniformReference(), targets=targets[:3])
