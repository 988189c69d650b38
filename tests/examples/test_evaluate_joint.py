"""End-to-end runs of examples/evaluate_joint.py on a tiny saved pipeline and the embedded digits."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from diffusers_joint import JointDiffusionPipeline
from diffusers_joint.data.digits import load_digits_dataset
from diffusers_joint.evaluation import ReferenceClassifier
from tiny_models import tiny_joint_unet, tiny_latent_unet, tiny_vae

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "evaluate_joint.py"
FAST = [
    "--num_generated", "20",
    "--num_inference_steps", "2",
    "--num_counterfactuals", "12",
    "--reference_epochs", "1",
    "--kid_subset_size", "10",
    "--batch_size", "64",
]  # fmt: skip


def load_script():
    spec = importlib.util.spec_from_file_location("evaluate_joint", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory):
    unet = tiny_joint_unet(label_names=[str(i) for i in range(10)])
    path = tmp_path_factory.mktemp("tiny") / "pipeline"
    JointDiffusionPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=20)).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def cli_run(tiny_pipeline, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "results"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(SCRIPT), "--pipeline", str(tiny_pipeline), "--output_dir", str(out), *FAST]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return out


def test_cli_writes_json_markdown_and_reference_network(cli_run):
    results = json.loads((cli_run / "eval_results.json").read_text())
    assert results["num_eval_images"] == 360 and results["resolution"] == 8
    classification = results["classification"]
    assert classification["num_examples"] == 360 and 0 <= classification["accuracy"] <= 1
    assert len(classification["confusion_matrix"]) == 10
    reference = results["reference_classifier"]
    assert reference["trained_here"] and reference["num_train_images"] == 1437
    assert reference["accuracy"] > 0.3  # one epoch on real digits; an untrained judge would sit near 0.1
    generation = results["generation"]
    assert generation["num_generated"] == 20 and generation["num_real"] == 360
    assert generation["frechet_distance"] > 0 and generation["class_guided"]
    for key in ("kid_mean", "precision", "recall", "conditional_accuracy", "conditional_accuracy_model"):
        assert 0 <= generation[key] <= 1 or key == "kid_mean", key
    assert set(generation["conditional_accuracy_per_class"]) == {str(c) for c in range(10)}
    counterfactuals = results["counterfactuals"]
    assert counterfactuals["num_counterfactuals"] == 12
    for key in ("validity_model", "validity_reference", "l1", "l2", "changed_pixel_fraction"):
        assert 0 <= counterfactuals[key] <= 2, key
    assert counterfactuals["l1"] > 0  # the images were re-noised and denoised
    assert set(results["seconds"]) == {"classification", "reference_classifier", "generation", "counterfactuals"}

    markdown = (cli_run / "eval_results.md").read_text()
    for heading in ("## Classification", "## Reference network", "## Generation", "## Counterfactuals"):
        assert heading in markdown
    assert "| Balanced accuracy (`balanced_accuracy`) |" in markdown
    assert "| Real images (`num_real`) | 360 |" in markdown
    assert f"{generation['frechet_distance']:.4f}" in markdown
    ReferenceClassifier.from_pretrained(cli_run / "reference_classifier")


def test_reuses_a_saved_reference_network_and_skips_sections(cli_run, tiny_pipeline, tmp_path):
    script = load_script()
    reference_path = str(cli_run / "reference_classifier")
    args = script.parse_args(
        ["--pipeline", str(tiny_pipeline), "--output_dir", str(tmp_path), "--reference_model", reference_path,
         "--skip_generation", "--skip_counterfactuals"]
    )  # fmt: skip
    results = script.main(args)
    assert "generation" not in results and "counterfactuals" not in results
    assert results["reference_classifier"]["path"] == reference_path
    assert not results["reference_classifier"]["trained_here"]
    first = json.loads((cli_run / "eval_results.json").read_text())
    assert results["reference_classifier"]["accuracy"] == first["reference_classifier"]["accuracy"]
    assert results["classification"]["accuracy"] == first["classification"]["accuracy"]
    assert not (tmp_path / "reference_classifier").exists()
    assert json.loads((tmp_path / "eval_results.json").read_text())["classification"] == results["classification"]


def test_mismatched_reference_network_is_refused(tiny_pipeline, tmp_path):
    script = load_script()
    ReferenceClassifier(in_channels=3, sample_size=8, num_classes=10).save_pretrained(tmp_path / "rgb")
    args = script.parse_args(
        ["--pipeline", str(tiny_pipeline), "--output_dir", str(tmp_path / "out"), "--reference_model",
         str(tmp_path / "rgb"), "--skip_generation", "--skip_counterfactuals"]
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"\(channels, size, classes\) \(3, 8, 10\)"):
        script.main(args)


def test_the_pipelines_intensity_normalisation_is_used_and_a_different_flag_refused(tiny_pipeline, tmp_path):
    script = load_script()
    flags = ["--pipeline", str(tiny_pipeline), "--output_dir", str(tmp_path), "--skip_generation",
             "--skip_counterfactuals", "--reference_epochs", "1"]  # fmt: skip
    args = script.parse_args([*flags, "--intensity_normalization", "minmax"])
    with pytest.raises(ValueError, match=r"differs from the pipeline's IntensityNormalization\('dtype'\)"):
        script.main(args)
    args = script.parse_args([*flags, "--intensity_normalization", "dtype"])  # the same as saved: accepted
    assert script.main(args)["num_eval_images"] == 360


def test_training_script_puts_generation_metrics_in_results_and_model_card(tmp_path):
    out = tmp_path / "joint"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(ROOT / "examples" / "train_joint.py"), "--output_dir", str(out),
           "--block_out_channels", "8", "16", "--attention_levels", "--classifier_hidden_dims", "16",
           "--train_batch_size", "16", "--ddpm_num_steps", "20", "--validation_steps", "0",
           "--num_validation_samples_per_class", "1", "--validation_inference_steps", "2", "--lr_warmup_steps", "0",
           "--report_to", "none", "--max_train_steps", "2", "--checkpointing_steps", "0",
           "--evaluate_generation", "--num_evaluation_samples", "20"]  # fmt: skip
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    generation = json.loads((out / "eval_results.json").read_text())["generation"]
    assert generation["num_generated"] == 20 and generation["num_real"] == 360
    assert generation["scheduler"] == "DDIMScheduler" and generation["num_inference_steps"] == 20
    card = (out / "README.md").read_text()
    assert "type: unconditional-image-generation" in card and "type: frechet_distance" in card
    assert f"| {generation['frechet_distance']:.4f} |" in card
    ReferenceClassifier.from_pretrained(out / "reference_classifier")


def test_backbone_adds_metrics_on_a_transformers_model(cli_run, tiny_pipeline, tmp_path):
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    config = Dinov2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                          image_size=16, patch_size=8)  # fmt: skip
    Dinov2Model(config).save_pretrained(tmp_path / "tiny-dinov2")  # no image processor: ImageNet statistics
    script = load_script()
    args = script.parse_args(
        ["--pipeline", str(tiny_pipeline), "--output_dir", str(tmp_path / "out"), "--reference_model",
         str(cli_run / "reference_classifier"), "--backbone", str(tmp_path / "tiny-dinov2"), "--skip_counterfactuals",
         "--num_generated", "10", "--num_inference_steps", "2", "--kid_subset_size", "5"]
    )  # fmt: skip
    generation = script.main(args)["generation"]
    assert generation["backbone_model"] == str(tmp_path / "tiny-dinov2")
    assert generation["backbone_frechet_distance"] > 0 and 0 <= generation["backbone_precision"] <= 1
    markdown = (tmp_path / "out" / "eval_results.md").read_text()
    assert "| Frechet distance to real images, transformers backbone features (lower is better)" in markdown


def test_a_latent_pipeline_is_evaluated_on_images_at_the_vaes_size(tmp_path):
    """A pipeline with a VAE (16-px images, 8x8 latents): every section runs, the classifier reads the latents."""
    path = tmp_path / "latent"
    pipe = JointDiffusionPipeline(
        unet=tiny_latent_unet(label_names=[str(i) for i in range(10)]),
        scheduler=DDPMScheduler(num_train_timesteps=20, clip_sample=False),
        vae=tiny_vae(3),
        pixel_channels=1,
    )
    pipe.save_pretrained(path)
    script = load_script()
    args = script.parse_args(
        ["--pipeline", str(path), "--output_dir", str(tmp_path / "out"), "--num_generated", "10",
         "--num_inference_steps", "2", "--num_counterfactuals", "6", "--reference_epochs", "1",
         "--kid_subset_size", "5"]
    )  # fmt: skip
    results = script.main(args)
    assert results["resolution"] == 16 and results["num_eval_images"] == 360
    assert results["generation"]["num_generated"] == 10 and results["counterfactuals"]["num_counterfactuals"] == 6
    reference = ReferenceClassifier.from_pretrained(tmp_path / "out" / "reference_classifier")
    assert (reference.config.in_channels, reference.config.sample_size) == (1, 16)
    # the same decisions as the pipeline's classify on the evaluation images (8-px digits, resized and encoded)
    dataset = load_digits_dataset()
    predicted = pipe.classify(list(dataset.eval["image"])).labels.numpy()
    accuracy = float((predicted == np.asarray(dataset.eval["label"])).mean())
    assert results["classification"]["accuracy"] == pytest.approx(accuracy)


def test_the_scheduler_flag_is_used_whatever_the_pipeline_saved(cli_run, tmp_path):
    script = load_script()
    unet = tiny_joint_unet(label_names=[str(i) for i in range(10)])
    JointDiffusionPipeline(unet=unet, scheduler=DDIMScheduler(num_train_timesteps=20)).save_pretrained(tmp_path / "p")
    args = script.parse_args(
        ["--pipeline", str(tmp_path / "p"), "--output_dir", str(tmp_path / "out"), "--scheduler", "ddpm",
         "--reference_model", str(cli_run / "reference_classifier"), "--skip_counterfactuals", *FAST]
    )  # fmt: skip
    assert script.main(args)["generation"]["scheduler"] == "DDPMScheduler"


def test_device_flag_defaults_to_cuda_when_available_and_refuses_unknown_devices(monkeypatch, capsys, tiny_pipeline):
    script = load_script()
    flags = ["--pipeline", str(tiny_pipeline)]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert script.parse_args(flags).device == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert script.parse_args(flags).device == "cpu"
    assert script.parse_args([*flags, "--device", "cpu"]).device == "cpu"
    for device, message in (("gpu0", "--device must be a torch device such as cpu, cuda or cuda:1, got 'gpu0'"),
                            ("cuda", "--device cuda: no cuda device is available on this machine")):  # fmt: skip
        with pytest.raises(SystemExit):
            script.parse_args([*flags, "--device", device])
        assert message in capsys.readouterr().err


def test_the_pipeline_and_the_reference_network_run_on_the_device(monkeypatch, tiny_pipeline, tmp_path):
    script = load_script()
    moved, trained_on = [], []
    to = JointDiffusionPipeline.to
    monkeypatch.setattr(JointDiffusionPipeline, "to", lambda self, *a, **kw: moved.append(a) or to(self, *a, **kw))
    train = script.train_reference_classifier
    monkeypatch.setattr(
        script, "train_reference_classifier", lambda *a, **kw: trained_on.append(kw["device"]) or train(*a, **kw)
    )
    args = script.parse_args(
        ["--pipeline", str(tiny_pipeline), "--output_dir", str(tmp_path), "--skip_generation",
         "--skip_counterfactuals", "--reference_epochs", "1", "--device", "cpu"]
    )  # fmt: skip
    script.main(args)
    assert moved == [("cpu",)] and trained_on == ["cpu"]


def test_results_json_is_standard_json_when_a_metric_is_undefined(tmp_path):
    # a single-class test split: ROC AUC is undefined (NaN), written as null
    script = load_script()
    unet = tiny_joint_unet(num_classes=2, label_names=["normal", "pneumonia"])
    JointDiffusionPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=20)).save_pretrained(tmp_path / "p")
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "one_class.npz",
        train_images=rng.integers(0, 256, (20, 8, 8), dtype=np.uint8),
        train_labels=np.array([[0], [1]] * 10),
        test_images=rng.integers(0, 256, (6, 8, 8), dtype=np.uint8),
        test_labels=np.ones((6, 1), dtype=int),
    )
    args = script.parse_args(
        ["--pipeline", str(tmp_path / "p"), "--npz_path", str(tmp_path / "one_class.npz"), "--output_dir",
         str(tmp_path / "out"), "--skip_generation", "--skip_counterfactuals", "--reference_epochs", "1"]
    )  # fmt: skip
    script.main(args)
    text = (tmp_path / "out" / "eval_results.json").read_text()
    results = json.loads(text, parse_constant=lambda token: pytest.fail(f"non-standard JSON token {token}"))
    assert results["classification"]["roc_auc"] is None and results["reference_classifier"]["roc_auc"] is None
    assert "| ROC AUC (`roc_auc`) | n/a |" in (tmp_path / "out" / "eval_results.md").read_text()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--strength", "0"], "--strength must be in (0, 1], got 0.0"),
        (["--strength", "-0.5"], "--strength must be in (0, 1], got -0.5"),
        (["--strength", "1.5"], "--strength must be in (0, 1], got 1.5"),
        (["--kid_subset_size", "1"], "--kid_subset_size must be at least 2 (KID compares pairs), got 1"),
    ],
)
def test_strength_and_kid_subset_size_out_of_range_are_refused_at_parse_time(capsys, flags, message):
    with pytest.raises(SystemExit):
        load_script().parse_args(["--pipeline", "unused", *flags])
    assert message in capsys.readouterr().err
    load_script().parse_args(["--pipeline", "unused", "--strength", "1", "--kid_subset_size", "2"])
