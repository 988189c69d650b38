# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
The benchmarks take a latent pipeline's images in pixel space (its `pixel_size` and `pixel_channels`, not the UNet's
latent size), and compute what they computed before on a pixel pipeline.
"""

import json

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler

from diffusers_joint import JointDiffusionPipeline
from diffusers_joint.data import ImagePreprocessor, load_joint_dataset
from diffusers_joint.evaluation import (
    compute_classification_metrics,
    dataset_to_tensors,
    predict_logits,
    predict_probabilities,
)
from tiny_models import tiny_joint_pipeline, tiny_latent_unet, tiny_vae

NUM_CLASSES = 3


def tiny_latent_pipeline() -> JointDiffusionPipeline:
    """16x16 one-channel images through a tiny f2 VAE into 8x8x4 latents."""
    unet = tiny_latent_unet(NUM_CLASSES).eval()
    pipe = JointDiffusionPipeline(
        unet=unet, scheduler=DDPMScheduler(num_train_timesteps=20, clip_sample=False), vae=tiny_vae()
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_npz(path, size: int, low: int = 0, high: int = 256) -> dict[str, np.ndarray]:
    """A tiny seeded three-class `.npz` of uint8 images at `size` with values in [low, high), with train, val and test
    splits; returns its arrays."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, count in (("train", 60), ("val", 12), ("test", 12)):
        arrays[f"{split}_images"] = rng.integers(low, high, (count, size, size), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.arange(count) % NUM_CLASSES
    np.savez(path, **arrays)
    return arrays


def test_the_pixel_attack_edits_a_latent_pipelines_pixels_through_its_encoder(load_benchmark):
    benchmark = load_benchmark("benchmark_counterfactuals")
    pipe = tiny_latent_pipeline()
    images = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    before = benchmark.model_probabilities(pipe, images)
    assert before.shape == (4, NUM_CLASSES)
    torch.testing.assert_close(before, pipe.classify(images).probs)
    targets = before.argmin(dim=1)  # not yet predicted, so every image gets edited
    attacked = benchmark.pixel_attack(pipe, images, targets, step=0.05, max_steps=2)
    assert attacked.shape == images.shape and attacked.abs().max() <= 1
    assert ((attacked - images).abs().flatten(1).amax(dim=1) > 0).all()  # a gradient reached every image's pixels
    gain = benchmark.model_probabilities(pipe, attacked).gather(1, targets[:, None]) - before.gather(
        1, targets[:, None]
    )
    assert gain.mean() > 0


def test_a_pixel_pipelines_probabilities_are_unchanged(load_benchmark):
    benchmark = load_benchmark("benchmark_counterfactuals")
    pipe = tiny_joint_pipeline(NUM_CLASSES)
    images = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert torch.equal(benchmark.model_probabilities(pipe, images), predict_probabilities(pipe.unet, images))


def test_evaluation_images_are_at_a_latent_pipelines_pixel_size(tmp_path, load_benchmark):
    benchmark_utils = load_benchmark("benchmark_utils")
    save_npz(tmp_path / "tiny.npz", size=16)
    images, labels, reference, _ = benchmark_utils.evaluation_data_and_reference(
        tiny_latent_pipeline(), str(tmp_path / "tiny.npz"), None, None, seed=0
    )
    assert images.shape == (12, 1, 16, 16) and labels.shape == (12,)
    assert reference.predict_proba(images).shape == (12, NUM_CLASSES)  # the reference network judges pixels


@pytest.mark.parametrize("latent", [False, True], ids=["pixel", "latent"])
def test_calibration_logits_of_a_saved_pipeline(tmp_path, load_benchmark, latent):
    benchmark = load_benchmark("benchmark_calibration")
    pipe = tiny_latent_pipeline() if latent else tiny_joint_pipeline(NUM_CLASSES)
    pipe.save_pretrained(tmp_path / "pipe")
    size = 16 if latent else 8
    save_npz(tmp_path / "tiny.npz", size=size)
    out = benchmark.model_logits(str(tmp_path / "pipe"), seed=0, npz_path=str(tmp_path / "tiny.npz"))
    logits, labels = out["test"]
    assert logits.shape == (12, NUM_CLASSES) and labels.shape == (12,)
    assert set(out) == {"multi_label", "validation", "test", "extra", "pool"}
    dataset = load_joint_dataset(npz_path=str(tmp_path / "tiny.npz"), seed=0)
    images, _ = dataset_to_tensors(dataset.eval, ImagePreprocessor(size, 1))
    if latent:  # the classifier reads the encoded 16x16 images, as the pipeline classifies them
        torch.testing.assert_close(pipe.unet.probabilities(logits), pipe.classify(images).probs)
    else:  # the UNet's classifier on the preprocessed test images, as the benchmark computed it before
        assert torch.equal(logits, predict_logits(pipe.unet, images))


def test_benchmarks_normalise_images_as_the_model_was_trained(tmp_path, load_benchmark):
    pipe = JointDiffusionPipeline(
        unet=tiny_joint_pipeline(NUM_CLASSES).unet, scheduler=DDPMScheduler(num_train_timesteps=20),
        intensity_normalization="minmax",
    )  # fmt: skip
    pipe.save_pretrained(tmp_path / "pipe")
    arrays = save_npz(tmp_path / "dim.npz", size=8, low=10, high=90)  # dim images: minmax and dtype / 255 differ
    test_images = list(arrays["test_images"])
    expected = pipe.classify(test_images).probs
    unnormalised = JointDiffusionPipeline(unet=pipe.unet, scheduler=pipe.scheduler).classify(test_images).probs
    assert (unnormalised - expected).abs().max() > 1e-3

    logits, _ = load_benchmark("benchmark_calibration").model_logits(
        str(tmp_path / "pipe"), seed=0, npz_path=str(tmp_path / "dim.npz")
    )["test"]
    torch.testing.assert_close(pipe.unet.probabilities(logits), expected)
    images, _, _, _ = load_benchmark("benchmark_utils").evaluation_data_and_reference(
        pipe, str(tmp_path / "dim.npz"), None, None, seed=0
    )
    torch.testing.assert_close(images, pipe.preprocess(test_images))


def test_feature_probes_read_a_latent_pipelines_unet_on_the_encoded_images(tmp_path, load_benchmark):
    pipe = tiny_latent_pipeline()
    pipe.save_pretrained(tmp_path / "latent")
    tiny_joint_pipeline(NUM_CLASSES).save_pretrained(tmp_path / "pixel")  # 8 px: read at its own size, after it
    arrays = save_npz(tmp_path / "tiny.npz", size=16)
    output = tmp_path / "probes.json"
    load_benchmark("benchmark_feature_probes").main([
        "--models", f"latent={tmp_path / 'latent'}", f"pixel={tmp_path / 'pixel'}", "--npz_path",
        str(tmp_path / "tiny.npz"), "--num_labeled", "12", "--timesteps", "0", "5", "--output", str(output),
    ])  # fmt: skip
    rows = json.loads(output.read_text())["rows"]
    assert {(r["model"], r["timestep"]) for r in rows if r["blocks"] == "encoder"} == {
        (model, t) for model in ("latent", "pixel") for t in (0, 5)
    }
    # at t = 0 the head row scores what the pipeline's classify() gives on the 16x16 val images, through the VAE
    head = next(r for r in rows if r["model"] == "latent" and r["blocks"] == "head" and r["timestep"] == 0)
    probs = pipe.classify(list(arrays["val_images"])).probs
    metrics = compute_classification_metrics(arrays["val_labels"], probs.numpy())
    assert head["roc_auc"] == pytest.approx(metrics["roc_auc"], abs=1e-6)
    assert head["balanced_accuracy"] == pytest.approx(metrics["balanced_accuracy"], abs=1e-6)
