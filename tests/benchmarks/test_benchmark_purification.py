import json

import numpy as np
import torch
from diffusers import DDPMScheduler
from sklearn.metrics import confusion_matrix

from diffusers_joint import JointDiffusionPipeline
from diffusers_joint.data import ImagePreprocessor, load_joint_dataset
from diffusers_joint.data.joint_dataset import holdout_split
from diffusers_joint.evaluation import dataset_to_tensors
from tiny_models import tiny_joint_pipeline, tiny_latent_unet, tiny_vae


def test_purification_rows_score_the_runs_hold_out(tmp_path, digits_npz, load_benchmark):
    benchmark_purification = load_benchmark("benchmark_purification")
    tiny_joint_pipeline().save_pretrained(tmp_path / "model")
    output = tmp_path / "purification.json"
    benchmark_purification.main([
        "--models", str(tmp_path / "model"), "--seeds", "3", "--npz_path", str(digits_npz), "--split", "validation",
        "--strengths", "0.25", "0.5", "--num_inference_steps", "20", "--num_draws", "2", "--output", str(output),
    ])  # fmt: skip
    rows = json.loads(output.read_text())["rows"]
    assert [(r["variant"], r.get("strength")) for r in rows] == [
        ("clean", None),
        ("purified", 0.25),
        ("ensemble", 0.25),
        ("purified", 0.5),
        ("ensemble", 0.5),
    ]
    # the clean row is the model's own classification of seed 3's 10 % hold-out (80 of 800 digits), not another split
    pipe = benchmark_purification.load_pipeline(str(tmp_path / "model"), "ddim")
    holdout = holdout_split(load_joint_dataset(npz_path=digits_npz, seed=3).train, 0.1, 3)[1]
    images, labels = dataset_to_tensors(holdout, ImagePreprocessor(8, 1))
    expected = confusion_matrix(labels.numpy(), pipe.classify(images).labels.numpy(), labels=range(10))
    assert expected.sum() == 80 and rows[0]["confusion_matrix"] == expected.tolist()


def test_purified_probabilities_are_seeded_and_change_with_strength(load_benchmark):
    benchmark_purification = load_benchmark("benchmark_purification")
    pipe = benchmark_purification.CounterfactualPipeline.from_joint_pipeline(tiny_joint_pipeline())
    images = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def probs(strength, seed):
        generator = torch.Generator().manual_seed(seed)
        return benchmark_purification.purified_probs(pipe, images, strength, 20, generator, batch_size=4)

    first = probs(0.5, seed=0)
    assert first.shape == (6, 10) and torch.allclose(first.sum(1), torch.ones(6))
    assert torch.equal(first, probs(0.5, seed=0))  # seeded: the same draws again
    assert not torch.allclose(first, probs(0.5, seed=1))
    clean = pipe.classify(images).probs
    # a larger strength moves the images, and so the probabilities, further from the clean ones
    assert (probs(1.0, 0) - clean).abs().sum() > (probs(0.1, 0) - clean).abs().sum()


def test_purification_reads_a_latent_pipelines_decoded_image_size(tmp_path, digits_npz, load_benchmark):
    # the 8x8 digits are resized to the VAE's 16x16 grayscale images, not to the UNet's 4-channel 8x8 latents
    benchmark_purification = load_benchmark("benchmark_purification")
    pipe = JointDiffusionPipeline(
        unet=tiny_latent_unet(), scheduler=DDPMScheduler(num_train_timesteps=1000, clip_sample=False), vae=tiny_vae()
    )
    pipe.save_pretrained(tmp_path / "model")
    output = tmp_path / "purification.json"
    benchmark_purification.main([
        "--models", str(tmp_path / "model"), "--seeds", "0", "--npz_path", str(digits_npz), "--split", "test",
        "--strengths", "0.5", "--num_inference_steps", "4", "--num_draws", "1", "--output", str(output),
    ])  # fmt: skip
    rows = json.loads(output.read_text())["rows"]
    test_size = len(load_joint_dataset(npz_path=digits_npz, seed=0).eval)
    assert [r["variant"] for r in rows] == ["clean", "purified", "ensemble"]
    assert all(np.sum(r["confusion_matrix"]) == test_size for r in rows)
