# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Generation metrics on a transformers backbone, offline: a tiny random DINOv2 saved to a temporary folder."""

import math

import numpy as np
import pytest
import torch
from transformers import BitImageProcessor, Dinov2Config, Dinov2Model, ViTConfig, ViTModel

from diffusers_joint.evaluation import (
    TransformersFeatureExtractor,
    compute_generation_metrics,
    evaluate_generation,
    frechet_distance,
)
from diffusers_joint.evaluation.reference_network import ReferenceClassifier
from tiny_models import tiny_joint_pipeline

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def tiny_dinov2() -> Dinov2Model:
    torch.manual_seed(0)
    config = Dinov2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8
    )
    return Dinov2Model(config).eval()


@pytest.fixture(scope="module")
def dinov2_folder(tmp_path_factory):
    """A tiny DINOv2 saved as a Hub repository would be: config, safetensors weights and its image processor."""
    folder = tmp_path_factory.mktemp("backbone") / "tiny-dinov2"
    tiny_dinov2().save_pretrained(folder)
    BitImageProcessor(image_mean=list(MEAN), image_std=list(STD)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def digit_images():
    """Real 8x8 digits in [-1, 1]: two disjoint halves of the same distribution."""
    from sklearn.datasets import load_digits

    images = torch.from_numpy(load_digits().images.astype(np.float32) / 16.0)[:, None] * 2 - 1
    return images[:200], images[200:400]


def test_from_pretrained_reads_the_folder_offline_with_its_processor_statistics(dinov2_folder, digit_images):
    extractor = TransformersFeatureExtractor.from_pretrained(dinov2_folder)
    assert extractor.image_size == 32 and extractor.name == str(dinov2_folder)
    torch.testing.assert_close(extractor.image_mean.flatten(), torch.tensor(MEAN))
    features = extractor.extract_features(digit_images[0][:10])
    assert features.shape == (10, 32) and features.dtype == torch.float32
    # the same weights as the model that was saved, the same features: nothing random, nothing downloaded
    direct = TransformersFeatureExtractor(tiny_dinov2(), image_mean=MEAN, image_std=STD)
    torch.testing.assert_close(features, direct.extract_features(digit_images[0][:10]))


def test_grayscale_is_repeated_to_rgb_and_resized(digit_images):
    extractor = TransformersFeatureExtractor(tiny_dinov2(), batch_size=7)
    gray = digit_images[0][:10]
    torch.testing.assert_close(extractor.extract_features(gray), extractor.extract_features(gray.repeat(1, 3, 1, 1)))
    with pytest.raises(ValueError, match="Images have 2 channels; the model takes 3"):
        extractor.extract_features(torch.zeros(2, 2, 8, 8))


def test_a_generation_metric_runs_on_the_backbone(digit_images):
    extractor = TransformersFeatureExtractor(tiny_dinov2())
    first, second = (extractor.extract_features(x) for x in digit_images)
    noise = extractor.extract_features(torch.rand(200, 1, 8, 8) * 2 - 1)
    assert frechet_distance(first, first) == pytest.approx(0.0, abs=1e-6)
    # even random features tell real digits from noise better than from other real digits
    assert frechet_distance(first, second) < frechet_distance(first, noise)
    metrics = compute_generation_metrics(first, noise, kid_subset_size=50, kid_num_subsets=5)
    assert metrics["precision"] < 0.5 and all(math.isfinite(metrics[k]) for k in ("kid_mean", "frechet_distance"))


def test_pooling_choices():
    images = torch.rand(3, 1, 8, 8) * 2 - 1
    vit = ViTModel(ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                             image_size=16, patch_size=8))  # fmt: skip
    outputs = vit(pixel_values=TransformersFeatureExtractor(vit)._prepare(images))
    cls = TransformersFeatureExtractor(vit, pooling="cls").extract_features(images)
    torch.testing.assert_close(cls, outputs.last_hidden_state[:, 0])
    mean = TransformersFeatureExtractor(vit, pooling="mean").extract_features(images)
    torch.testing.assert_close(mean, outputs.last_hidden_state.mean(dim=1))
    auto = TransformersFeatureExtractor(vit).extract_features(images)
    torch.testing.assert_close(auto, outputs.pooler_output)  # auto: the model's pooler when it has one
    with pytest.raises(ValueError, match="Unknown pooling 'max'"):
        TransformersFeatureExtractor(vit, pooling="max")


def test_missing_model_and_pickled_weights_are_refused_with_their_name(tmp_path):
    with pytest.raises(OSError, match="Cannot load a transformers vision model from 'no-such-org/no-such-model'"):
        TransformersFeatureExtractor.from_pretrained("no-such-org/no-such-model")
    folder = tmp_path / "pickled"
    model = tiny_dinov2()
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")  # a pickle: never loaded
    with pytest.raises(OSError, match=r"Cannot load a transformers vision model from .*pickled"):
        TransformersFeatureExtractor.from_pretrained(folder)


def test_evaluate_generation_adds_backbone_metrics(digit_images):
    pipe = tiny_joint_pipeline(num_classes=10)
    reference = ReferenceClassifier(in_channels=1, sample_size=8, num_classes=10, block_out_channels=(8,))
    extractor = TransformersFeatureExtractor(tiny_dinov2())
    results = evaluate_generation(pipe, digit_images[0][:20], reference, num_generated=10, num_inference_steps=2,
                                  kid_subset_size=5, backbone=extractor)  # fmt: skip
    assert results["backbone_model"] == "Dinov2Model"
    for key in ("frechet_distance", "kid_mean", "kid_std", "precision", "recall"):
        assert math.isfinite(results[f"backbone_{key}"]) and math.isfinite(results[key])
    assert results["backbone_frechet_distance"] != results["frechet_distance"]  # another feature space
