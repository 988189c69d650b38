"""examples/train_joint.py's flags checked while the command line is parsed, before any data is read or step taken."""

import importlib.util

import pytest
from train_script_utils import SCRIPT, TINY

import diffusers_joint.evaluation.calibrate as calibrate_module
import diffusers_joint.evaluation.predict as predict_module


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("train_joint_flags", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def refused(script, capsys, *flags):
    with pytest.raises(SystemExit):
        script.parse_args(list(flags))
    return capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--num_validation_samples_per_class", "0"], "--num_validation_samples_per_class: must be at least 1, got 0"),
        (["--validation_inference_steps", "0"], "--validation_inference_steps: must be at least 1, got 0"),
        (["--evaluate_generation", "--num_evaluation_samples", "0"], "--num_evaluation_samples: must be at least 1"),
        (["--train_batch_size", "0"], "--train_batch_size: must be at least 1, got 0"),
        (["--gradient_accumulation_steps", "0"], "--gradient_accumulation_steps: must be at least 1, got 0"),
        (["--ddpm_num_steps", "0"], "--ddpm_num_steps: must be at least 1, got 0"),
        (["--validation_steps", "-1"], "--validation_steps: must be at least 0, or 0 for none, got -1"),
        (["--checkpointing_steps", "-1"], "--checkpointing_steps: must be at least 0, or 0 for none, got -1"),
        (["--checkpoints_total_limit", "0"], "--checkpoints_total_limit: must be at least 1, got 0"),
        (["--max_train_steps", "0"], "--max_train_steps: must be at least 1, got 0"),
        (["--num_epochs", "0"], "--num_epochs: must be at least 1, got 0"),
        (["--learning_rate", "-1"], "--learning_rate: must be in (0, inf], got -1"),
        (["--ema_max_decay", "1.5"], "--ema_max_decay: must be in [0, 1], got 1.5"),
        (["--classifier_dropout", "1"], "--classifier_dropout: must be in [0, 1), got 1"),
        (["--max_grad_norm", "-1"], "--max_grad_norm: must be in (0, inf], got -1"),
        (["--lr_warmup_steps", "-1"], "--lr_warmup_steps: must be at least 0, got -1"),
        (["--resolution", "0"], "--resolution: must be at least 1, got 0"),
        (["--dataloader_num_workers", "-1"], "--dataloader_num_workers: must be at least 0, got -1"),
        (["--lr_scheduler", "bogus"], "--lr_scheduler: invalid choice: 'bogus'"),
        (["--ddpm_beta_schedule", "bogus"], "--ddpm_beta_schedule: invalid choice: 'bogus'"),
    ],
)
def test_flags_that_would_fail_after_training_are_refused_at_parse_time(script, capsys, flags, message):
    assert message in refused(script, capsys, *flags)


def test_zero_validation_and_checkpointing_steps_still_mean_none(script):
    args = script.parse_args(["--validation_steps", "0", "--checkpointing_steps", "0"])
    assert args.validation_steps == 0 and args.checkpointing_steps == 0


def test_eval_batch_size_is_used_for_every_classification_pass(script, monkeypatch, tmp_path, capsys):
    batch_sizes = []
    predict = predict_module.predict_logits

    def recording(unet, images, batch_size=256):
        batch_sizes.append(batch_size)
        return predict(unet, images, batch_size)

    for module in (predict_module, calibrate_module, script):
        monkeypatch.setattr(module, "predict_logits", recording)
    flags = ["--output_dir", str(tmp_path / "out"), "--max_train_steps", "2", "--validation_steps", "1",
             "--checkpointing_steps", "0", "--select_best_checkpoint", "nll", "--eval_batch_size", "7"]  # fmt: skip
    script.main(script.parse_args([*TINY, *flags]))
    # the evaluation split at steps 1 and 2, the validation scores at steps 1 and 2, the calibration
    assert len(batch_sizes) >= 5 and set(batch_sizes) == {7}
    assert "--eval_batch_size: must be at least 1, got 0" in refused(script, capsys, "--eval_batch_size", "0")
