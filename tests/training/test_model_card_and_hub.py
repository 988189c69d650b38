import argparse
import math
import re
import shlex

import pytest
import yaml
from diffusers import DDPMScheduler
from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.repocard_data import model_index_to_eval_results

from diffusers_joint import JointDiffusionPipeline
from diffusers_joint.training import HubUploadError, build_model_card, push_output_to_hub, save_model_card
from diffusers_joint.training import hub as hub_module
from tiny_models import tiny_latent_unet, tiny_vae


def make_card(**overrides):
    kwargs = dict(
        model_name="joint-pneumonia",
        label_names=["normal", "pneumonia"],
        dataset_description="PneumoniaMNIST (balanced)",
        num_labeled=50,
        num_train_examples=2428,
        resolution=28,
        channels=1,
        metrics={"accuracy": 0.91, "balanced_accuracy": 0.9, "roc_auc": 0.96, "ece": math.nan, "num_examples": 468},
        eval_split_name="test split",
        training_settings={"classifier_loss_weight": 0.1, "steps": 100},
        sample_grid_file="samples.png",
        medical=True,
    )
    return build_model_card(**{**kwargs, **overrides})


def test_model_card_metadata_and_body(tmp_path):
    card = make_card()
    path = save_model_card(card, tmp_path)
    loaded = ModelCard.load(path)  # parses and validates the YAML header
    data = loaded.data.to_dict()
    assert data["library_name"] == "diffusers"
    assert "medical-imaging" in data["tags"]
    results = {m["type"]: m["value"] for m in data["model-index"][0]["results"][0]["metrics"]}
    assert results == {"accuracy": 0.91, "balanced_accuracy": 0.9, "roc_auc": 0.96}  # NaN left out
    text = loaded.text
    assert "50 labeled of 2428" in text
    assert "must not be used for clinical decisions" in text
    assert "![samples](samples.png)" in text
    assert "Learning Data Representations with Joint Diffusion Models" in text
    assert "| Balanced accuracy | 0.9000 |" in text


def test_model_card_yaml_and_model_index_parse_and_round_trip(tmp_path):
    path = save_model_card(make_card(repo_id="user/joint-pneumonia"), tmp_path)
    text = open(path, encoding="utf-8").read()
    assert text.startswith("---\n")
    header = yaml.safe_load(text.split("---\n")[1])  # plain YAML, as the Hub reads it
    data = ModelCardData(**header)  # and valid for huggingface_hub
    name, results = model_index_to_eval_results(header["model-index"])
    assert name == "joint-pneumonia"
    assert {r.metric_type for r in results} == {"accuracy", "balanced_accuracy", "roc_auc"}
    assert all(r.task_type == "image-classification" and r.dataset_split == "test split" for r in results)
    assert data.to_dict()["pipeline_tag"] == "unconditional-image-generation"
    assert ModelCard.load(path).data.eval_results[0].metric_value == 0.91


def test_model_card_shows_how_to_launch_the_app_on_the_model(tmp_path):
    text = ModelCard.load(save_model_card(make_card(repo_id="user/joint-pneumonia"), tmp_path)).text
    assert 'pip install -e ".[app]"' in text
    assert "python examples/app.py --pipeline user/joint-pneumonia" in text
    assert "python examples/make_space.py --model_id user/joint-pneumonia --output_dir space" in text
    assert "hf upload user/joint-pneumonia-demo space . --repo-type space" in text


def test_model_card_states_data_budget_use_limitations_and_usage():
    text = make_card(repo_id="user/joint-pneumonia").text
    for needle in (
        "**Data:** PneumoniaMNIST (balanced)",
        "**Labels used:** 50 labeled of 2428 training images",
        "`0`: normal, `1`: pneumonia",
        "## Intended use",
        "## Limitations",
        "## Medical disclaimer",
        "(test split)",
        'JointDiffusionPipeline.from_pretrained("user/joint-pneumonia")',
        "explain = CounterfactualPipeline.from_joint_pipeline(pipe)",
    ):
        assert needle in text, needle
    plain = make_card(medical=False, sample_grid_file=None, metrics=None)
    assert "## Medical disclaimer" not in plain.text and "## Limitations" in plain.text
    assert "![samples]" not in plain.text and "No evaluation was run." in plain.text
    assert "medical-imaging" not in plain.data.to_dict()["tags"]
    assert "model-index" not in plain.data.to_dict()


def test_model_card_usage_code_runs_on_a_latent_pipeline(tmp_path):
    # the card's snippet, pointed at a saved tiny latent pipeline: its counterfactual keeps the VAE
    pipe = JointDiffusionPipeline(
        unet=tiny_latent_unet(2), scheduler=DDPMScheduler(num_train_timesteps=1000, clip_sample=False), vae=tiny_vae()
    )
    pipe.save_pretrained(tmp_path / "latent")
    text = make_card(repo_id="user/joint-latent").text
    code = re.search(r"## How to use.*?```python\n(.*?)```", text, re.DOTALL).group(1)
    namespace = {}
    exec(code.replace("user/joint-latent", str(tmp_path / "latent")), namespace)
    assert namespace["explain"].vae is not None
    assert namespace["out"].difference_heatmaps[0].size == (16, 16)  # pixel space, the VAE's image size
    assert len(namespace["prediction"].labels) == 2


def test_push_uploads_without_checkpoints(monkeypatch, tmp_path):
    calls = {}

    class Url(str):
        repo_id = "user/joint"

    monkeypatch.setattr(
        hub_module, "create_repo", lambda repo_id, **kw: calls.setdefault("create", (repo_id, kw)) and Url("u")
    )
    monkeypatch.setattr(hub_module, "upload_folder", lambda **kw: calls.setdefault("upload", kw) and "commit-url")
    push_output_to_hub(tmp_path, "user/joint", token="hf_secret", private=True)
    assert calls["create"][0] == "user/joint" and calls["create"][1]["private"] is True
    assert calls["upload"]["folder_path"] == str(tmp_path)
    assert "checkpoint-*" in calls["upload"]["ignore_patterns"]


def test_the_upload_and_the_command_to_retry_it_leave_out_the_same_files(monkeypatch, tmp_path):
    """Checkpoints, the best step's spare weights and the logs (also of another --logging_dir) stay local."""
    from fnmatch import fnmatch

    for name in ("model_index.json", "checkpoint-2/model.safetensors", "best-checkpoint/best.json", "tb/run/events"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    calls = {}

    def fail(**kw):
        calls["patterns"] = kw["ignore_patterns"]
        raise OSError("no network")

    monkeypatch.setattr(hub_module, "create_repo", lambda repo_id, **kw: type("Url", (str,), {"repo_id": repo_id})())
    monkeypatch.setattr(hub_module, "upload_folder", fail)
    with pytest.raises(HubUploadError) as info:
        push_output_to_hub(tmp_path, "user/joint", ignore_patterns=["tb/**"])
    uploaded = [n for n in ("model_index.json", "checkpoint-2/model.safetensors", "best-checkpoint/best.json",
                            "tb/run/events") if not any(fnmatch(n, p) for p in calls["patterns"])]  # fmt: skip
    assert uploaded == ["model_index.json"]
    command = re.search(r"`(hf upload .*?)`", str(info.value)).group(1)
    assert parse_hf_upload(command)["exclude"] == tuple(calls["patterns"])


def parse_hf_upload(command):
    """The parameters `hf upload` reads from `command`, parsed offline by huggingface_hub's own CLI."""
    from huggingface_hub.cli.hf import app

    args = shlex.split(command)
    assert args[:2] == ["hf", "upload"]
    context = app.make_context("hf", args[1:])
    name, upload, rest = app.resolve_command(context, args[1:])
    return upload.make_context(name, rest, parent=context).params


@pytest.mark.parametrize("private", [False, True])
def test_the_retry_command_parses_with_the_installed_hf_cli(monkeypatch, tmp_path, private):
    # one pattern per --exclude: `--exclude 'a' 'b'` read 'b' as the path in the repository
    monkeypatch.setattr(hub_module, "create_repo", lambda repo_id, **kw: (_ for _ in ()).throw(OSError("offline")))
    output_dir = tmp_path / "joint run"  # a space, quoted for the shell
    with pytest.raises(HubUploadError) as info:
        push_output_to_hub(output_dir, "user/joint", private=private, ignore_patterns=["tb/**"])
    command = re.search(r"`(hf upload .*?)`", str(info.value)).group(1)
    params = parse_hf_upload(command)
    assert (params["repo_id"], params["local_path"], params["path_in_repo"]) == ("user/joint", str(output_dir), ".")
    assert params["exclude"] == (*hub_module.HUB_IGNORE_PATTERNS, "tb/**")
    assert bool(params["private"]) is private


def test_push_offline_fails_clearly_without_leaking_the_token(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUploadError) as info:
        push_output_to_hub(tmp_path, "user/joint", token="hf_supersecrettoken")
    message = str(info.value)
    assert "saved locally" in message and str(tmp_path) in message
    assert "hf_supersecrettoken" not in message


@pytest.mark.parametrize(
    "settings, weights",
    [({"use_ema": True}, "), with the EMA weights:"), ({"use_ema": False}, "), with the trained weights (no EMA):"),
     ({}, "):")],
)  # fmt: skip
def test_model_card_says_which_weights_were_evaluated(settings, weights):
    text = make_card(training_settings={"steps": 100, **settings}, metrics={"accuracy": 0.9, "num_examples": 50}).text
    assert f"On the test split (50 images{weights}" in text
    assert ("EMA weights" in text) == bool(settings.get("use_ema"))


def test_model_card_says_when_a_selected_step_was_saved_rather_than_the_last():
    settings = {"steps": 40, "trained_steps": 100, "select_best_checkpoint": "balanced_accuracy"}
    text = make_card(training_settings=settings).text
    assert "are those of step 40, the best step on the validation split by balanced_accuracy" in text
    assert "of the 100 steps trained" in text and "| steps | `40` |" in text and "| trained_steps | `100` |" in text
    assert "the best step" not in make_card(training_settings={"steps": 100}).text


def test_model_card_states_the_intensity_normalisation_and_the_calibration():
    settings = {"steps": 100, "intensity_normalization": "window", "intensity_range": [-1000.0, 400.0]}
    metrics = {"accuracy": 0.9, "ece": 0.021, "ece_uncalibrated": 0.087, "classifier_temperature": 1.8342}
    text = make_card(training_settings=settings, metrics=metrics).text
    assert "**Input intensities:** `window` normalisation: the fixed window -1000 to 400 in the stored units" in text
    assert "**Calibration:** temperature scaling with `classifier_temperature` 1.834, fitted on a validation" in text
    assert "`softmax(logits / 1.834)`" in text and "calibrated=False" in text
    assert "Expected calibration error on the evaluation split: 0.0210 (0.0870 before calibration)." in text
    assert "| intensity_range | `[-1000.0, 400.0]` |" in text  # and in the settings table

    plain = make_card(training_settings={"steps": 100}, metrics={"accuracy": 0.9}).text
    assert "**Input intensities:** `dtype` normalisation: the nominal range of the stored values" in plain
    assert "**Calibration:** not calibrated (`classifier_temperature` 1.0)" in plain
    percentile = make_card(training_settings={"intensity_normalization": "percentile", "intensity_range": [1, 99]})
    assert "each image's percentiles 1 and 99, values beyond them clipped" in percentile.text


def test_a_training_run_leaves_its_logging_folder_out_of_the_upload(monkeypatch, tmp_path):
    captured = {}
    monkeypatch.setattr(hub_module, "push_output_to_hub", lambda *a, **kw: captured.update(kw) or "url")
    args = argparse.Namespace(
        output_dir=str(tmp_path), logging_dir="tb", hub_token=None, hub_model_id="user/joint", hub_private_repo=False
    )
    hub_module.push_run_to_hub(None, args)
    assert captured["ignore_patterns"] == ["tb/**"]
    hub_module.push_run_to_hub(None, argparse.Namespace(**{**vars(args), "logging_dir": str(tmp_path.parent / "x")}))
    assert captured["ignore_patterns"] == []  # logs outside the output folder are not in the upload anyway


def test_autoencoder_card_leaves_nan_metrics_out_of_the_model_index():
    from diffusers_joint.training import build_autoencoder_model_card

    config = {"sample_size": 16, "block_out_channels": [8, 16], "latent_channels": 4, "scaling_factor": 0.5}
    metrics = {"psnr": float("inf"), "ssim": float("nan"), "l1": 0.25, "num_examples": 10}
    card = build_autoencoder_model_card("ae", config, "digits", 100, 1, metrics=metrics)
    results = model_index_to_eval_results(card.data.to_dict()["model-index"])[1]
    assert [(r.metric_type, r.metric_value) for r in results] == [("l1", 0.25)]
    assert "nan" not in str(card).lower() and "inf" not in card.content.split("---")[1].lower()
    assert "| PSNR (dB, data range 2) | n/a |" in card.text and "| SSIM | n/a |" in card.text
