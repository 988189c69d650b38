# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""benchmarks/benchmark_latent.py on a tiny latent pipeline and a tiny generated lesion set."""

import importlib.util
import json

import pytest
import torch
from diffusers import DDPMScheduler

from diffusers_joint import JointDiffusionPipeline
from diffusers_joint.data import write_lesion_dataset
from tiny_models import tiny_latent_unet, tiny_vae


@pytest.fixture
def lesion_pipeline(tmp_path):
    write_lesion_dataset(tmp_path / "lesions", num_train=40, num_test=12, size=16, seed=0)
    pipe = JointDiffusionPipeline(
        unet=tiny_latent_unet(2).eval(),
        scheduler=DDPMScheduler(num_train_timesteps=20, clip_sample=False),
        vae=tiny_vae(),
    )
    pipe.save_pretrained(tmp_path / "pipe")
    return tmp_path / "pipe", tmp_path / "lesions" / "lesions.npz"


def test_the_lesion_part_writes_every_key_with_its_command_and_the_figures(load_benchmark, lesion_pipeline, tmp_path):
    benchmark = load_benchmark("benchmark_latent")
    pipe, npz = lesion_pipeline
    out = tmp_path / "latent.json"
    out.write_text(json.dumps({"autoencoder_psnr_db_lesions128": 31.0, "commands": {"x": "y"}}))
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None  # the figures need the docs extra
    figures = ["--figures_dir", str(tmp_path)] if has_matplotlib else []
    benchmark.main(["reference", "--npz_path", str(npz), "--json", str(out), "--reference_epochs", "1",
                    "--reference_size", "8", "--reference_holdout", "10",
                    "--save_reference", str(tmp_path / "ref")])  # fmt: skip
    assert json.loads((tmp_path / "ref" / "config.json").read_text())["norm_num_groups"] == 8
    benchmark.main(["lesions", "--pipeline", str(pipe), "--npz_path", str(npz), "--json", str(out),
                    "--num_counterfactuals", "4", "--num_generated", "4", "--reference_model", str(tmp_path / "ref"),
                    "--num_inference_steps", "10", *figures])  # fmt: skip
    results = json.loads(out.read_text())
    assert results["autoencoder_psnr_db_lesions128"] == 31.0 and results["commands"]["x"] == "y"  # kept
    for key in ("balanced_accuracy", "cf_validity_model", "cf_validity_reference", "pointing_game", "mask_iou",
                "guided_reference_accuracy"):  # fmt: skip
        value = results[f"lesions128_{key}"]
        assert 0 <= value <= 1, key
        assert results["commands"][f"lesions128_{key}"].startswith("python ")
    assert results["lesions128_num_counterfactuals"] == 4
    assert 0 <= results["lesions128_reference_holdout_balanced_accuracy"] <= 1
    if has_matplotlib:
        assert (tmp_path / "latent_lesion_counterfactuals.png").is_file()
        assert (tmp_path / "latent_lesion_samples.png").is_file()


def test_balanced_picks_take_half_of_each_class(load_benchmark):
    benchmark = load_benchmark("benchmark_latent")
    labels = torch.tensor([0] * 10 + [1] * 3)
    pick = benchmark.balanced_picks(labels, 6, seed=0)
    assert len(pick) == 6 and (labels[pick] == 1).sum() == 3
    assert list(pick) == sorted(set(pick.tolist()))


def test_masks_of_another_size_than_the_pipelines_images_are_refused(load_benchmark, lesion_pipeline, tmp_path):
    benchmark = load_benchmark("benchmark_latent")
    pipe, _ = lesion_pipeline
    write_lesion_dataset(tmp_path / "big", num_train=8, num_test=4, size=32, seed=0)
    with pytest.raises(ValueError, match="The masks are 32 px but the pipeline makes 16-px images"):
        benchmark.main(["lesions", "--pipeline", str(pipe), "--npz_path", str(tmp_path / "big" / "lesions.npz"),
                        "--json", str(tmp_path / "x.json"), "--reference_model", "unused"])  # fmt: skip
