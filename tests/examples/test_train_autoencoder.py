"""End-to-end runs of examples/train_autoencoder.py and examples/make_lesion_dataset.py (tiny, a few steps)."""

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

from diffusers_joint.data import load_joint_dataset, load_lesion_masks, write_lesion_dataset
from diffusers_joint.training import create_autoencoder, has_scaling_factor

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--resolution", "16", "--block_out_channels", "8", "16", "16", "--latent_channels", "2",
    "--train_batch_size", "16", "--lr_warmup_steps", "0", "--learning_rate", "1e-3", "--report_to", "none",
    "--max_eval_images", "64", "--scaling_images", "64",
]  # fmt: skip
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


SCRIPT = ROOT / "examples" / "train_autoencoder.py"


def launch(*args, check=True):
    """Run the script through `accelerate launch` on one CPU process with the tiny flags and `args`."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--cpu", str(SCRIPT)]
    result = subprocess.run(cmd + TINY + list(args), env=ENV, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"train_autoencoder.py failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "vae-digits"
    launch("--output_dir", str(out), "--max_train_steps", "4", "--checkpointing_steps", "2", "--random_flip")
    return out


def test_output_is_a_loadable_autoencoder_with_card_results_and_scaling_factor(trained):
    for name in ("config.json", "diffusion_pytorch_model.safetensors", "README.md", "eval_results.json"):
        assert (trained / name).is_file(), name
    assert not list(trained.glob("*.bin"))
    vae = AutoencoderKL.from_pretrained(trained, use_safetensors=True)
    assert vae.config.in_channels == 1 and vae.config.latent_channels == 2 and vae.config.sample_size == 16
    results = json.loads((trained / "eval_results.json").read_text())
    assert results["step"] == 4 and results["num_examples"] == 64 and results["eval_split"].startswith("fixed")
    assert 0 < results["psnr"] < 60 and 0 < results["ssim"] <= 1
    assert (
        vae.config.scaling_factor == pytest.approx(results["scaling_factor"]) and results["scaling_factor"] != 0.18215
    )
    card = (trained / "README.md").read_text()
    assert "AutoencoderKL" in card and "downsampling factor 4" in card and f"{results['psnr']:.4g}" in card
    assert "2 x 4 x 4" in card and "scikit-learn digits" in card
    assert [p.name for p in sorted(trained.glob("checkpoint-*"))] == ["checkpoint-2", "checkpoint-4"]


def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(trained, tmp_path):
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    shutil.copytree(trained / "checkpoint-2", interrupted / "checkpoint-2")  # as if killed after step 2
    result = launch("--output_dir", str(interrupted), "--max_train_steps", "4", "--checkpointing_steps", "2",
                    "--random_flip", "--resume_from_checkpoint", "latest")  # fmt: skip
    assert "Resuming from" in result.stderr
    expected, resumed = (
        load_file(trained / "checkpoint-4" / "model.safetensors"),
        load_file(interrupted / "checkpoint-4" / "model.safetensors"),
    )
    assert expected.keys() == resumed.keys()
    for key in expected:
        assert torch.equal(expected[key], resumed[key]), key
    assert json.loads((interrupted / "eval_results.json").read_text()) == json.loads(
        (trained / "eval_results.json").read_text()
    )


def test_a_run_with_a_skipped_step_resumes_to_the_uninterrupted_weights(tmp_path):
    # The NaN of the 1st loss falls in step 1, before checkpoint-2: the step counts, so both runs align on batches.
    inject = [sys.executable, str(ROOT / "tests" / "examples" / "fault_injection.py"), str(SCRIPT), *TINY]
    args = ["--max_train_steps", "4", "--checkpointing_steps", "2", "--on_nonfinite_loss", "skip"]
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    env = {**ENV, "FAULT_NAN_AT": "1"}
    result = subprocess.run([*inject, *args, "--output_dir", str(reference)], env=env, capture_output=True, text=True)
    assert result.returncode == 0 and "Non-finite loss at step 1" in result.stderr, result.stderr[-3000:]
    resumed.mkdir()
    shutil.copytree(reference / "checkpoint-2", resumed / "checkpoint-2")
    result = subprocess.run([*inject, *args, "--output_dir", str(resumed), "--resume_from_checkpoint", "latest"],
                            env=ENV, capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    expected = load_file(reference / "checkpoint-4" / "model.safetensors")
    actual = load_file(resumed / "checkpoint-4" / "model.safetensors")
    assert all(torch.equal(expected[name], actual[name]) for name in expected)


def test_existing_autoencoder_is_not_overwritten_by_accident(trained):
    result = launch("--output_dir", str(trained), "--max_train_steps", "1", check=False)
    assert result.returncode != 0 and "already holds a trained model" in result.stderr


def test_fine_tunes_a_pretrained_rgb_vae_on_grayscale_images_and_keeps_its_scaling_factor(tmp_path):
    torch.manual_seed(0)
    rgb = create_autoencoder(3, 4, latent_channels=2, block_out_channels=(8, 16, 16), resolution=16)
    rgb.register_to_config(scaling_factor=0.5)
    rgb.save_pretrained(tmp_path / "rgb-vae")
    out = tmp_path / "fine-tuned"
    launch("--output_dir", str(out), "--max_train_steps", "1", "--checkpointing_steps", "0",
           "--pretrained_vae_model_name_or_path", str(tmp_path / "rgb-vae"))  # fmt: skip
    vae = AutoencoderKL.from_pretrained(out)
    assert vae.config.scaling_factor == 0.5 and vae.config.in_channels == 3  # gray repeated to 3 channels
    results = json.loads((out / "eval_results.json").read_text())
    assert results["scaling_factor"] == 0.5 and results["psnr"] > 0


def test_a_pretrained_vae_without_a_scaling_factor_gets_one_computed_and_recorded(tmp_path):
    torch.manual_seed(0)
    rgb = create_autoencoder(3, 4, latent_channels=2, block_out_channels=(8, 16, 16), resolution=16)
    rgb.save_pretrained(tmp_path / "rgb-vae")
    config = json.loads((tmp_path / "rgb-vae" / "config.json").read_text())
    del config["scaling_factor"]  # as a VAE written without one
    (tmp_path / "rgb-vae" / "config.json").write_text(json.dumps(config))
    out = tmp_path / "fine-tuned"
    launch("--output_dir", str(out), "--max_train_steps", "1", "--checkpointing_steps", "0",
           "--pretrained_vae_model_name_or_path", str(tmp_path / "rgb-vae"))  # fmt: skip
    vae = AutoencoderKL.from_pretrained(out)
    # computed on the (gray, repeated) training images, not diffusers' 0.18215 filled in for the missing key
    assert has_scaling_factor(vae) and vae.config.scaling_factor != 0.18215
    assert json.loads((out / "eval_results.json").read_text())["scaling_factor"] == vae.config.scaling_factor


def test_bad_flags_are_refused_before_anything_runs(tmp_path):
    """The launched script's parser (tests/training/test_autoencoder_arguments.py checks every flag)."""
    cmd = [sys.executable, str(SCRIPT), "--output_dir", str(tmp_path / "out"), "--downsampling_factor", "2"]
    result = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "--downsampling_factor must be one of (4, 8), got 2" in result.stderr
    assert not (tmp_path / "out").exists()


def test_make_lesion_dataset_writes_a_set_train_joint_reads_with_its_masks(tmp_path):
    out = tmp_path / "lesions"
    cmd = [sys.executable, str(ROOT / "examples" / "make_lesion_dataset.py"), "--output_dir", str(out),
           "--num_train", "8", "--num_test", "4", "--size", "32", "--seed", "5"]  # fmt: skip
    result = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300, check=True)
    assert "train: 8 images (4 with a lesion)" in result.stdout
    dataset = load_joint_dataset(train_data_dir=str(out))
    assert len(dataset.train) == 8 and len(dataset.eval) == 4 and dataset.image_size == (32, 32)
    masks = load_lesion_masks(out, "train")
    np.testing.assert_array_equal(masks.any(axis=(1, 2)), np.asarray(dataset.train["label"]) == 1)
    expected = write_lesion_dataset(tmp_path / "again", num_train=8, num_test=4, size=32, seed=5)  # same seed
    with np.load(out / "lesions.npz") as written:
        assert sorted(written.files) == sorted(expected)
        for key in written.files:
            np.testing.assert_array_equal(written[key], expected[key])
