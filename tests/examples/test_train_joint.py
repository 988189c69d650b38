"""End-to-end runs of examples/train_joint.py through `accelerate launch` (tiny model, a few steps)."""

import json
import re
import shutil

import numpy as np
import PIL.Image
import pytest
import torch
from safetensors.torch import load_file
from train_script_utils import launch

from diffusers_joint import JointDiffusionPipeline
from diffusers_joint.training import TemperatureCalibration


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "joint-digits"
    result = launch("--output_dir", str(out), "--max_train_steps", "4", "--checkpointing_steps", "2",
                    "--num_labeled", "30")  # fmt: skip
    return out, result


def test_output_folder_is_a_loadable_pipeline_with_card_and_results(trained):
    out, _ = trained
    for name in ("model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                 "scheduler/scheduler_config.json", "samples.png", "README.md", "eval_results.json"):  # fmt: skip
        assert (out / name).exists(), name
    assert not list(out.rglob("*.bin")) or all("checkpoint-" in str(p) for p in out.rglob("*.bin"))
    pipe = JointDiffusionPipeline.from_pretrained(out)
    assert pipe.unet.config.num_classes == 10
    assert pipe.unet.config.label_names == [str(i) for i in range(10)]
    results = json.loads((out / "eval_results.json").read_text())
    assert results["step"] == 4 and results["num_examples"] == 360
    # calibrated on the validation hold-out (10 % of the training split), the temperature saved in the config
    assert results["validation"]["num_examples"] == 144 and "ece_uncalibrated" in results
    assert pipe.unet.config.classifier_temperature == pytest.approx(results["classifier_temperature"])
    # ... when it beats noise on held-out folds; the decision is recorded in the results and the config
    calibration = TemperatureCalibration.from_dict(results["calibration"])
    assert calibration.num_validation == 144 and calibration.temperature == results["classifier_temperature"]
    assert pipe.unet.config.classifier_calibration == results["calibration"]
    # the test split is drawn like the validation hold-out: a pixel classifier cannot tell them apart
    shift = results["split_shift"]
    assert shift["num_images"] == [144, 360] and abs(shift["roc_auc"] - 0.5) < 0.1
    assert sorted(shift["per_class"], key=int) == [str(c) for c in range(10)]
    # trained with the noise-aware term (the default), recorded for guidance_method="noisy"
    assert pipe.unet.config.noise_aware_classifier
    card = (out / "README.md").read_text()
    assert "30 labeled of 1293" in card and "fixed stratified 20% test split" in card
    temperature = pipe.unet.config.classifier_temperature
    if calibration.applied:
        assert f"**Calibration:** temperature scaling with `classifier_temperature` {temperature:.4g}" in card
    else:
        assert "**Calibration:** not calibrated (`classifier_temperature` 1.0)" in card
    assert calibration.describe() in card
    assert "**Input intensities:** `dtype` normalisation" in card
    images = pipe(batch_size=2, num_inference_steps=2, output_type="pt").images
    assert images.shape == (2, 1, 8, 8) and torch.isfinite(images).all()
    assert [p.name for p in sorted(out.glob("checkpoint-*"))] == ["checkpoint-2", "checkpoint-4"]
    with PIL.Image.open(out / "samples.png") as grid:  # readable: 8x8 samples enlarged to 64 px, padded, labelled
        assert grid.height == 10 * 64 + 11 * 4 and grid.width > 64 + 2 * 4 + 8


def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(trained, tmp_path):
    out, _ = trained
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    shutil.copytree(out / "checkpoint-2", interrupted / "checkpoint-2")  # as if killed after step 2
    launch("--output_dir", str(interrupted), "--max_train_steps", "4", "--checkpointing_steps", "2",
           "--num_labeled", "30", "--resume_from_checkpoint", "latest")  # fmt: skip
    for name in ("model.safetensors", "unet_ema/diffusion_pytorch_model.safetensors"):
        expected = load_file(out / "checkpoint-4" / name)
        resumed = load_file(interrupted / "checkpoint-4" / name)
        assert expected.keys() == resumed.keys()
        for key in expected:
            assert torch.equal(expected[key], resumed[key]), (name, key)


def test_resume_continues_at_the_right_step(trained):
    out, _ = trained
    result = launch("--output_dir", str(out), "--max_train_steps", "6", "--checkpointing_steps", "2",
                    "--num_labeled", "30", "--resume_from_checkpoint", "latest")  # fmt: skip
    assert "Resuming from" in result.stderr and "checkpoint-4" in result.stderr
    assert json.loads((out / "eval_results.json").read_text())["step"] == 6
    assert [p.name for p in sorted(out.glob("checkpoint-*"))] == ["checkpoint-4", "checkpoint-6"]


def test_existing_output_is_not_overwritten_by_accident(trained):
    out, _ = trained
    result = launch("--output_dir", str(out), "--max_train_steps", "1", check=False)
    assert result.returncode != 0
    assert "already holds a trained pipeline" in result.stderr


def test_fixmatch_alignment_and_data_weighting_are_checkpointed_and_resume_exactly(tmp_path):
    flags = [
        "--max_train_steps",
        "4",
        "--checkpointing_steps",
        "2",
        "--num_labeled",
        "30",
        "--fixmatch",
        "--fixmatch_threshold",
        "0.5",
        "--random_flip",
        "--diffusion_data_weighting",
    ]  # fmt: skip (alignment: on by default with FixMatch)
    full, interrupted = tmp_path / "full", tmp_path / "interrupted"
    result = launch("--output_dir", str(full), *flags)
    assert "distribution alignment towards the labeled class frequencies [3, 3, 3, 3, 3, 3, 3, 3, 3, 3]" in (
        result.stderr
    )
    # 30 labeled of 1,293 training images fill half of each batch of 32: weighted down to their share of the data
    assert f"Denoising weights: {30 / 1293 / 0.5:.4g} per labeled image, {1263 / 1293 / 0.5:.4g} per other." in (
        result.stderr
    )
    state = load_file(full / "checkpoint-4" / "fixmatch_distribution_alignment.safetensors")
    assert not torch.equal(state["running_mean"], state["target"])  # it followed the classifier
    interrupted.mkdir()
    shutil.copytree(full / "checkpoint-2", interrupted / "checkpoint-2")
    launch("--output_dir", str(interrupted), *flags, "--resume_from_checkpoint", "latest")
    for name in ("model.safetensors", "fixmatch_distribution_alignment.safetensors"):
        expected, resumed = load_file(full / "checkpoint-4" / name), load_file(interrupted / "checkpoint-4" / name)
        assert all(torch.equal(expected[key], resumed[key]) for key in expected), name


def test_contradicting_pseudo_label_flags_are_refused_before_the_data_is_read(tmp_path):
    refused = launch("--output_dir", str(tmp_path / "out"), "--no-fixmatch", "--fixmatch_distribution_alignment",
                     check=False)  # fmt: skip
    assert refused.returncode != 0 and "drop --no-fixmatch" in refused.stderr
    assert not (tmp_path / "out").exists()


def test_fixmatch_on_multi_label_data_is_refused_before_training(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images[:64] * 16).clip(0, 255).astype(np.uint8)
    targets = digits.target[:64]
    # Three binary attributes per digit (MedMNIST's multi-label layout: one 0/1 column per label).
    labels = np.stack([targets % 2 == 0, targets > 4, targets % 3 == 0], axis=1).astype(np.uint8)
    npz = tmp_path / "multi.npz"
    np.savez(npz, train_images=images[:48], train_labels=labels[:48], test_images=images[48:], test_labels=labels[48:])
    flags = ["--npz_path", str(npz), "--max_train_steps", "2", "--checkpointing_steps", "0"]

    for fixmatch in (["--fixmatch"], ["--fixmatch", "--no-fixmatch_distribution_alignment"]):
        out = tmp_path / "refused"
        refused = launch("--output_dir", str(out), *flags, *fixmatch, check=False)
        assert refused.returncode != 0
        assert "this dataset is multi-label (3 independent 0/1 labels per image)" in refused.stderr
        assert "train without --fixmatch" in refused.stderr
        assert "Step" not in refused.stderr and not (out / "model_index.json").exists()

    out = tmp_path / "trained"
    launch("--output_dir", str(out), *flags)
    assert JointDiffusionPipeline.from_pretrained(out).unet.is_multi_label


def test_select_best_checkpoint_saves_the_best_validation_step(tmp_path):
    out = tmp_path / "best-run"
    # learning rate 1 diverges: an earlier step is the best, so the saved weights must not be the last (EMA) ones
    result = launch("--output_dir", str(out), "--max_train_steps", "6", "--validation_steps", "2",
                    "--checkpointing_steps", "0", "--num_labeled", "30", "--learning_rate", "1",
                    "--select_best_checkpoint", "nll")  # fmt: skip
    record = json.loads((out / "best-checkpoint" / "best.json").read_text())
    assert record["step"] in (2, 4) and f"Saving step {record['step']}, the best" in result.stderr
    results = json.loads((out / "eval_results.json").read_text())
    assert results["best_checkpoint"] == record
    # the saved model's step, the best one, not the last step trained
    assert results["step"] == record["step"] and results["trained_steps"] == 6
    card = (out / "README.md").read_text()
    assert f"| steps | `{record['step']}` |" in card and "| trained_steps | `6` |" in card
    assert f"are those of step {record['step']}, the best step on the validation split by nll" in card
    saved = load_file(out / "unet" / "diffusion_pytorch_model.safetensors")
    best = load_file(out / "best-checkpoint" / "diffusion_pytorch_model.safetensors")
    assert saved.keys() == best.keys() and all(torch.equal(saved[k], best[k]) for k in saved)
    # every scored step was compared: the kept one has the highest balanced accuracy among those logged as best
    kept = [int(line.split("Step ")[1].split(" ")[0]) for line in result.stderr.splitlines() if "best so far" in line]
    assert kept[0] == 2 and kept[-1] == record["step"]

    for bad in (["--validation_steps", "0"], ["--max_train_steps", "4", "--validation_steps", "4"]):
        refused = launch("--output_dir", str(tmp_path / "refused"), "--select_best_checkpoint", "nll", *bad,
                         check=False)  # fmt: skip
        assert refused.returncode != 0 and "--select_best_checkpoint compares the steps" in refused.stderr


def test_select_best_checkpoint_with_num_epochs_checks_validation_steps_before_training(tmp_path):
    # one epoch of the digits at batch 16 is about 100 steps: a validation every 1000 steps would never come
    refused = launch("--output_dir", str(tmp_path / "refused"), "--select_best_checkpoint", "nll", "--num_epochs", "1",
                     "--validation_steps", "1000", "--checkpointing_steps", "0", check=False)  # fmt: skip
    assert refused.returncode != 0
    assert re.search(r"below the \d+ steps of --num_epochs 1 \(got 1000\)", refused.stderr), refused.stderr[-2000:]
    assert "Steps:" not in refused.stderr and not (tmp_path / "refused" / "model_index.json").exists()


def test_a_shifted_evaluation_split_is_recorded_and_warned_about(tmp_path, trained):
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images * 15).astype(np.uint8)  # 0..16 -> 0..240
    labels = digits.target[:, None].astype(np.int64)
    brighter = np.clip(images[1200:].astype(int) + 15, 0, 255).astype(np.uint8)  # a site whose scanner reads brighter
    brighter, test_labels = np.concatenate([brighter, brighter]), np.concatenate([labels[1200:], labels[1200:]])
    npz = tmp_path / "shifted.npz"
    np.savez(
        npz, train_images=images[:1200], train_labels=labels[:1200], test_images=brighter, test_labels=test_labels
    )
    out = tmp_path / "out"
    result = launch(
        "--npz_path", str(npz), "--max_train_steps", "2", "--checkpointing_steps", "0", "--output_dir", str(out)
    )
    shift = json.loads((out / "eval_results.json").read_text())["split_shift"]
    assert shift["num_images"] == [120, 1000] and shift["roc_auc"] > 0.9  # 1,194 test images, a sample of 1,000
    assert "The evaluation split is told apart from the validation split with ROC AUC" in result.stderr
    assert "told apart" not in trained[1].stderr  # the embedded digits' splits are alike: no warning


def test_classifier_weight_warm_up_and_feature_consistency_train_and_are_recorded_on_the_card(tmp_path):
    out = tmp_path / "scheduled"
    launch("--output_dir", str(out), "--max_train_steps", "3", "--checkpointing_steps", "0", "--num_labeled", "30",
           "--classifier_weight_warmup_steps", "2", "--feature_consistency_weight", "1")  # fmt: skip
    card = (out / "README.md").read_text()
    assert "| classifier_weight_warmup_steps | `2` |" in card and "| feature_consistency_weight | `1.0` |" in card
    assert json.loads((out / "eval_results.json").read_text())["step"] == 3


def test_num_epochs_trains_whole_epochs_of_accumulated_updates(tmp_path):
    out = tmp_path / "one-epoch"
    result = launch("--output_dir", str(out), "--num_epochs", "1", "--train_batch_size", "256",
                    "--gradient_accumulation_steps", "2", "--num_labeled", "30")  # fmt: skip
    match = re.search(r"Training (\d+) steps \((\d+) epochs of (\d+) updates\)", result.stderr)
    steps, epochs, per_epoch = map(int, match.groups())
    # 1,293 training digits in batches of 256 are 6 batches, so 3 updates of 2 accumulated batches
    assert (steps, epochs, per_epoch) == (3, 1, 3)
    assert json.loads((out / "eval_results.json").read_text())["step"] == 3


def test_results_json_is_standard_json_when_a_metric_is_undefined(tmp_path):
    # a single-class evaluation split: ROC AUC is undefined (NaN), written as null, not as a bare NaN
    rng = np.random.default_rng(0)
    npz = tmp_path / "one_class.npz"
    np.savez(
        npz,
        train_images=rng.integers(0, 256, (40, 8, 8), dtype=np.uint8),
        train_labels=np.array([[0], [1]] * 20),
        test_images=rng.integers(0, 256, (8, 8, 8), dtype=np.uint8),
        test_labels=np.ones((8, 1), dtype=int),
    )
    out = tmp_path / "out"
    launch("--npz_path", str(npz), "--max_train_steps", "1", "--checkpointing_steps", "0", "--output_dir", str(out))
    text = (out / "eval_results.json").read_text()
    results = json.loads(text, parse_constant=lambda token: pytest.fail(f"non-standard JSON token {token}"))
    assert results["roc_auc"] is None and results["step"] == 1


def test_a_resume_that_changes_what_the_run_trains_is_refused(trained):
    out, _ = trained
    assert (out / "checkpoint-4" / "run_settings.json").is_file()
    result = launch("--output_dir", str(out), "--max_train_steps", "6", "--checkpointing_steps", "2",
                    "--num_labeled", "40", "--resume_from_checkpoint", "latest", check=False)  # fmt: skip
    assert result.returncode != 0
    assert "Cannot resume" in result.stderr and "--num_labeled 30 -> 40" in result.stderr
