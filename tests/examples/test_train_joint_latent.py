"""
examples/train_joint.py with `--pretrained_vae_model_name_or_path`: latent joint training on a tiny saved VAE (8x8
digits at 16 px, an f4 VAE with 2 latent channels), a few steps.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL
from safetensors.torch import load_file
from train_script_utils import SCRIPT, TINY, launch

from diffusers_joint import CounterfactualPipeline, JointDiffusionPipeline
from diffusers_joint.training import create_autoencoder

INJECT = Path(__file__).resolve().parent / "fault_injection.py"
STEPS = ["--max_train_steps", "4", "--checkpointing_steps", "2", "--num_labeled", "30", "--resolution", "16"]


def save_tiny_vae(folder, in_channels=1, record_scaling_factor=False):
    torch.manual_seed(0)
    vae = create_autoencoder(in_channels, 4, latent_channels=2, block_out_channels=(8, 16, 16), resolution=16)
    vae.save_pretrained(folder)
    if not record_scaling_factor:  # as a config without one: the run computes it on training images
        config = json.loads((folder / "config.json").read_text())
        del config["scaling_factor"]
        (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def vae_folder(tmp_path_factory):
    return save_tiny_vae(tmp_path_factory.mktemp("vae") / "vae-digits")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, vae_folder):
    out = tmp_path_factory.mktemp("run") / "latent-digits"
    result = launch("--output_dir", str(out), *STEPS, "--pretrained_vae_model_name_or_path", str(vae_folder))
    return out, result


def test_the_saved_latent_pipeline_samples_and_classifies_pixel_images(trained, vae_folder):
    out, result = trained
    assert (out / "vae" / "diffusion_pytorch_model.safetensors").is_file()
    pipe = JointDiffusionPipeline.from_pretrained(out)
    assert isinstance(pipe.vae, AutoencoderKL) and pipe.config.pixel_channels == 1
    assert pipe.unet.config.in_channels == 2 and pipe.unet.config.sample_size == 4
    assert pipe.scheduler.config.clip_sample is False
    # the scaling factor the run computed (the VAE recorded none) is logged and saved with the pipeline's VAE
    factor = pipe.vae.config.scaling_factor
    assert factor != 0.18215 and "The VAE records no scaling_factor" in result.stderr
    assert json.loads((out / "vae" / "config.json").read_text())["scaling_factor"] == factor
    # ... and the VAE is the one given, unchanged (frozen)
    given = AutoencoderKL.from_pretrained(vae_folder, use_safetensors=True).state_dict()
    assert all(torch.equal(given[key], value) for key, value in pipe.vae.state_dict().items())
    images = pipe(batch_size=2, num_inference_steps=2, output_type="pt").images
    assert images.shape == (2, 1, 16, 16) and torch.isfinite(images).all()
    prediction = pipe.classify(np.zeros((8, 8), dtype=np.uint8))  # a pixel image, any size: resized, encoded
    assert prediction.probs.shape == (1, 10)
    explained = CounterfactualPipeline.from_joint_pipeline(pipe)(
        image=images[:1], target_class=1, strength=0.5, num_inference_steps=2, output_type="pt"
    )
    assert explained.images.shape == (1, 1, 16, 16)
    results = json.loads((out / "eval_results.json").read_text())
    assert results["step"] == 4 and results["num_examples"] == 360 and results["validation"]["num_examples"] == 144
    assert "split_shift" in results and (out / "samples.png").is_file()
    card = (out / "README.md").read_text()
    assert f"**Latent space:** `AutoencoderKL` from `{vae_folder}`" in card
    assert "latents of 2 x 4 x 4 (downsampling factor 4)" in card and f"`scaling_factor` {factor:.6g}" in card
    assert "**Resolution:** 16 x 16, 1 channel(s)" in card
    record = json.loads((out / "checkpoint-2" / "vae.json").read_text())
    assert record["pretrained_vae_model_name_or_path"] == str(vae_folder)
    assert record["config"]["scaling_factor"] == factor


def test_a_resumed_latent_run_ends_with_the_same_weights_as_an_uninterrupted_one(trained, vae_folder, tmp_path):
    out, _ = trained
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    shutil.copytree(out / "checkpoint-2", interrupted / "checkpoint-2")  # as if killed after step 2
    result = launch("--output_dir", str(interrupted), *STEPS, "--pretrained_vae_model_name_or_path", str(vae_folder),
                    "--resume_from_checkpoint", "latest")  # fmt: skip
    assert "Resuming from" in result.stderr
    for name in ("checkpoint-4/model.safetensors", "checkpoint-4/unet_ema/diffusion_pytorch_model.safetensors",
                 "unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"):  # fmt: skip
        expected, resumed = load_file(out / name), load_file(interrupted / name)
        assert expected.keys() == resumed.keys()
        assert all(torch.equal(expected[key], resumed[key]) for key in expected), name


def test_a_resume_without_the_vae_the_checkpoint_was_written_with_is_refused(trained, tmp_path):
    out, _ = trained
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    shutil.copytree(out / "checkpoint-2", interrupted / "checkpoint-2")
    other = save_tiny_vae(tmp_path / "other-vae", record_scaling_factor=True)  # same weights, another scaling
    refused = launch("--output_dir", str(interrupted), *STEPS, "--pretrained_vae_model_name_or_path", str(other),
                     "--resume_from_checkpoint", "latest", check=False)  # fmt: skip
    assert refused.returncode != 0 and "is not the same (scaling_factor:" in refused.stderr


@pytest.mark.parametrize(
    "vae_channels, resolution, message",
    [
        (2, "16", "The images have 1 channels but `vae.config.in_channels` is 2"),
        (1, "18", "--resolution 18 is not a multiple of the VAE's downsampling factor 4"),
    ],
)
def test_a_vae_that_does_not_fit_the_images_fails_before_training(tmp_path, vae_channels, resolution, message):
    folder = save_tiny_vae(tmp_path / "vae", in_channels=vae_channels)
    result = launch("--output_dir", str(tmp_path / "out"), "--max_train_steps", "1", "--resolution", resolution,
                    "--pretrained_vae_model_name_or_path", str(folder), check=False)  # fmt: skip
    assert result.returncode != 0 and message in result.stderr
    assert not list((tmp_path / "out").glob("checkpoint-*"))


@pytest.mark.slow
def test_the_latent_loss_goes_down_over_a_short_run(tmp_path, vae_folder):
    record = tmp_path / "record.txt"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    args = ["--output_dir", str(tmp_path / "out"), "--max_train_steps", "60", "--checkpointing_steps", "0",
            "--resolution", "16", "--learning_rate", "3e-3", "--no-use_ema",
            "--pretrained_vae_model_name_or_path", str(vae_folder)]  # fmt: skip
    cmd = [sys.executable, str(INJECT), str(SCRIPT), *TINY, *args]
    result = subprocess.run(cmd, env={**env, "FAULT_RECORD": str(record)}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    terms = np.array(
        [[float(v) for v in line.split()[3:]] for line in record.read_text().splitlines() if " loss " in line]
    )
    assert len(terms) == 60
    first, last = terms[:10].mean(axis=0), terms[-10:].mean(axis=0)
    assert last[0] < 0.8 * first[0], (first, last)  # the total loss
    assert last[1] < first[1], (first, last)  # the denoising term on latents


def test_a_cached_latent_run_trains_on_latents_encoded_once_and_resumes_exactly(tmp_path, vae_folder):
    cached = [*STEPS, "--pretrained_vae_model_name_or_path", str(vae_folder), "--cache_latents"]
    out = tmp_path / "cached"
    result = launch("--output_dir", str(out), *cached)
    assert "Encoding the training images" in result.stderr
    pipe = JointDiffusionPipeline.from_pretrained(out)
    assert pipe.unet.config.in_channels == 2 and pipe.vae is not None
    assert pipe.classify(np.zeros((8, 8), dtype=np.uint8)).probs.shape == (1, 10)
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    shutil.copytree(out / "checkpoint-2", interrupted / "checkpoint-2")  # as if killed after step 2
    launch("--output_dir", str(interrupted), *cached, "--resume_from_checkpoint", "latest")
    expected = load_file(out / "unet/diffusion_pytorch_model.safetensors")
    resumed = load_file(interrupted / "unet/diffusion_pytorch_model.safetensors")
    assert all(torch.equal(expected[key], resumed[key]) for key in expected)
    # without a VAE there is nothing to cache
    refused = launch("--output_dir", str(tmp_path / "pixel"), *STEPS, "--cache_latents", check=False)
    assert refused.returncode != 0 and "--cache_latents caches a VAE's latents" in refused.stderr
