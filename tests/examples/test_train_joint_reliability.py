# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Faults in real runs of examples/train_joint.py (tiny model, 8x8 digits, a few steps): SIGKILL at chosen moments and
resume, non-finite losses, unusable output folders, models that do not fit the data. Faults are injected from the
outside by tests/examples/fault_injection.py.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_script_utils import SCRIPT, TINY

from diffusers_joint import JointDiffusionPipeline, JointUNet2DModel
from diffusers_joint.training import list_checkpoints, resolve_checkpoint

INJECT = Path(__file__).resolve().parent / "fault_injection.py"
TINY = [*TINY, "--num_labeled", "30"]
TIMEOUT = 300
WEIGHT_FILES = ("model.safetensors", "unet_ema/diffusion_pytorch_model.safetensors")


def env(**extra):
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1", **extra}


def command(args, num_processes=1):
    # One process: plain `python` (Accelerate needs no launcher for it, and its import time is halved). Several: the
    # torchrun-based launcher; `--cpu` would select the single-process one (accelerate 1.15 then ignores
    # --num_processes), and train_joint.py runs torchrun's processes on the CPUs with gloo when there is no GPU.
    launch = [sys.executable]
    if num_processes > 1:
        launch += ["-m", "accelerate.commands.launch", "--num_processes", str(num_processes), "--multi_gpu"]
    return launch + [str(INJECT), str(SCRIPT), *TINY, *map(str, args)]


def run(args, num_processes=1, check=True, **extra_env):
    # Own process group, so that a hung run is killed whole (launcher and workers) at the timeout.
    process = subprocess.Popen(
        command(args, num_processes),
        env=env(**extra_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(f"train_joint.py hung for {TIMEOUT} s:\n{stderr[-4000:]}") from None
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    if check and result.returncode != 0:
        raise AssertionError(f"train_joint.py failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result


def run_and_kill(args, kill_when, num_processes=1, **extra_env):
    """
    Start a run in its own process group and SIGKILL the whole group (launcher and every worker) once `kill_when()`;
    returns what it had logged.
    """
    with tempfile.TemporaryFile("w+") as log:  # a file, not a pipe: a chatty run can never block on a full pipe
        process = subprocess.Popen(
            command(args, num_processes),
            env=env(**extra_env),
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + TIMEOUT
        try:
            while not kill_when():
                if process.poll() is not None:
                    log.seek(0)
                    raise AssertionError(f"the run ended before the kill:\n{log.read()[-4000:]}")
                if time.monotonic() > deadline:
                    raise AssertionError("the moment to kill never came")
                time.sleep(0.002)
        finally:
            with contextlib.suppress(ProcessLookupError):  # a run that just ended by itself has nothing left to kill
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
        log.seek(0)
        return log.read()


def load_weights(folder):
    return {name: load_file(Path(folder) / name) for name in WEIGHT_FILES}


def assert_same_weights(expected, actual):
    for name in expected:
        assert expected[name].keys() == actual[name].keys(), name
        for key in expected[name]:
            assert torch.equal(expected[name][key], actual[name][key]), (name, key)


# ---------------------------------------------------------------- kill and resume

STEPS = ["--max_train_steps", "5", "--checkpointing_steps", "1", "--checkpoints_total_limit", "10"]


@pytest.mark.slow
def test_sigkill_at_any_moment_then_resume_gives_the_uninterrupted_weights(tmp_path):
    reference = tmp_path / "reference"
    run(["--output_dir", reference, *STEPS])

    out = tmp_path / "killed"
    # 1. SIGKILL while checkpoint-3 is half-written: model and EMA saved, optimizer just written, scheduler and
    #    random states not yet. The previous checkpoint must stay complete and be the one resumed from.
    marker = tmp_path / "paused"
    run_and_kill(
        ["--output_dir", out, *STEPS], marker.exists, FAULT_PAUSE_IN="checkpoint-3.tmp", FAULT_MARKER=str(marker)
    )
    partial = out / "checkpoint-3.tmp"
    assert (partial / "optimizer.bin").is_file() and not (partial / "scheduler.bin").exists()
    assert [p.name for p in list_checkpoints(out)] == ["checkpoint-1", "checkpoint-2"]
    assert resolve_checkpoint(out, "latest").name == "checkpoint-2"  # the .tmp is never taken for a checkpoint
    assert_same_weights(load_weights(reference / "checkpoint-2"), load_weights(out / "checkpoint-2"))
    JointUNet2DModel.from_pretrained(out / "checkpoint-2" / "unet_ema")  # loadable as a model too

    # 2. Resume, and SIGKILL again at an arbitrary moment of training, as soon as checkpoint-3 is complete.
    log = run_and_kill(
        ["--output_dir", out, *STEPS, "--resume_from_checkpoint", "latest"], (out / "checkpoint-3").exists
    )
    assert f"Removing {partial}, an incomplete checkpoint left by a stopped run" in log  # cleaned up on start
    assert f"Resuming from {out / 'checkpoint-2'}" in log
    assert_same_weights(load_weights(reference / "checkpoint-3"), load_weights(out / "checkpoint-3"))

    # 3. Resume to the end: bit-for-bit the weights of the uninterrupted run (model, EMA and the saved pipeline).
    result = run(["--output_dir", out, *STEPS, "--resume_from_checkpoint", "latest"])
    assert "Resuming from" in result.stderr
    assert_same_weights(load_weights(reference / "checkpoint-5"), load_weights(out / "checkpoint-5"))
    final = "unet/diffusion_pytorch_model.safetensors"
    assert_same_weights({final: load_file(reference / final)}, {final: load_file(out / final)})
    assert not list(out.glob("*.tmp")) and not list(out.glob("*.old"))


@pytest.mark.slow
def test_a_run_resumed_in_a_later_epoch_gives_the_uninterrupted_weights(tmp_path):
    """Epochs of 6 updates: the resumed process must draw epoch 1's batches at steps 7 and 8, not replay epoch 0's."""
    steps = ["--max_train_steps", "8", "--checkpointing_steps", "1", "--checkpoints_total_limit", "10"]
    short_epochs = ["--train_batch_size", "256", *steps]
    reference = tmp_path / "reference"
    result = run(["--output_dir", reference, *short_epochs])
    assert "(2 epochs of 6 updates)" in result.stderr
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(reference / "checkpoint-2", resumed / "checkpoint-2")
    run(["--output_dir", resumed, *short_epochs, "--resume_from_checkpoint", "latest"])
    for step in (3, 6, 7, 8):
        checkpoint = f"checkpoint-{step}"
        assert_same_weights(load_weights(reference / checkpoint), load_weights(resumed / checkpoint))


# ---------------------------------------------------------------- numerical faults


@pytest.mark.slow
def test_nonfinite_loss_stops_naming_step_terms_and_the_kept_checkpoint(tmp_path):
    out = tmp_path / "nan"
    args = ["--output_dir", out, "--max_train_steps", "5", "--checkpointing_steps", "1"]
    result = run(args, check=False, FAULT_NAN_AT="3")
    assert result.returncode != 0
    message = next(line for line in result.stderr.splitlines() if "Non-finite loss" in line)
    assert "FloatingPointError: Non-finite loss at step 3 (loss=nan, diffusion=nan, classifier=" in message
    assert "fixmatch=0, noisy_classifier=" in message and "noisy_pseudo=0, feature_consistency=0)" in message
    assert f"The last good checkpoint, {out / 'checkpoint-2'}, is kept." in message
    assert "--on_nonfinite_loss skip" in message
    assert [p.name for p in list_checkpoints(out)] == ["checkpoint-1", "checkpoint-2"]
    weights = load_weights(out / "checkpoint-2")
    assert all(torch.isfinite(t).all() for w in weights.values() for t in w.values())
    assert not (out / "model_index.json").exists()


@pytest.mark.slow
def test_nonfinite_loss_skip_mode_skips_the_step_and_finishes(tmp_path):
    out = tmp_path / "skip"
    args = ["--output_dir", out, "--max_train_steps", "4", "--on_nonfinite_loss", "skip", "--checkpointing_steps", "0"]
    result = run(args, FAULT_NAN_AT="2,3")
    warnings = [line for line in result.stderr.splitlines() if "Non-finite loss" in line]
    assert len(warnings) == 2, warnings
    assert (
        "Non-finite loss at step 2 (loss=nan" in warnings[0] and "Non-finite loss at step 3 (loss=nan" in warnings[1]
    )
    assert "Skipping the step" in warnings[0] and "No checkpoint had been written yet." in warnings[0]
    pipe = JointDiffusionPipeline.from_pretrained(out)
    assert all(torch.isfinite(p).all() for p in pipe.unet.parameters())
    assert '"step": 4' in (out / "eval_results.json").read_text()  # the 2 skipped steps count, without an update

    # A diverged run does not skip forever.
    diverged = [*args, "--output_dir", tmp_path / "diverged", "--max_train_steps", "20"]
    result = run(diverged, check=False, FAULT_NAN_AT=",".join(map(str, range(1, 40))))
    assert result.returncode != 0 and "11 steps in a row had a non-finite loss" in result.stderr  # 10 skipped


@pytest.mark.slow
def test_a_run_with_a_skipped_step_resumes_to_the_uninterrupted_weights(tmp_path):
    # The NaN of the 2nd loss falls in step 2: the resumed run starts after it, at the batches of step 3.
    args = ["--max_train_steps", "4", "--on_nonfinite_loss", "skip", "--checkpointing_steps", "2"]
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    run(["--output_dir", reference, *args], FAULT_NAN_AT="2")
    resumed.mkdir()
    shutil.copytree(reference / "checkpoint-2", resumed / "checkpoint-2")
    run(["--output_dir", resumed, *args, "--resume_from_checkpoint", "latest"])
    assert_same_weights(load_weights(reference / "checkpoint-4"), load_weights(resumed / "checkpoint-4"))


# ---------------------------------------------------------------- output folder


@pytest.mark.slow
def test_disk_full_while_writing_a_checkpoint_keeps_the_last_one_and_says_how_to_resume(tmp_path):
    out = tmp_path / "full"
    args = ["--output_dir", out, "--max_train_steps", "5", "--checkpointing_steps", "1", "--no-use_ema"]
    result = run(args, check=False, FAULT_ENOSPC_IN="checkpoint-3.tmp")
    assert result.returncode != 0
    assert f"Could not write the checkpoint of step 3 to {out / 'checkpoint-3.tmp'}" in result.stderr
    assert "No space left on device" in result.stderr
    assert f"The last complete checkpoint, {out / 'checkpoint-2'}, is intact" in result.stderr
    assert "--resume_from_checkpoint latest" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-1", "checkpoint-2"]  # the partial one is removed


# ---------------------------------------------------------------- a model that does not fit the data


def tiny_unet_kwargs(**overrides):
    from diffusers_joint.training import unet_kwargs

    return {**unet_kwargs(8, 1, block_out_channels=(8, 16), attention_levels=[]), **overrides}


@pytest.mark.slow
@pytest.mark.parametrize("mismatch", ["num_classes", "channels", "resume"])
def test_a_model_that_does_not_fit_the_data_fails_before_training(tmp_path, mismatch):
    from diffusers import UNet2DModel
    from safetensors.torch import save_file

    from diffusers_joint.training import JointDiffusionObjective

    args = ["--output_dir", tmp_path / "out", "--max_train_steps", "2"]
    if mismatch == "num_classes":
        JointUNet2DModel(**tiny_unet_kwargs(), num_classes=3).save_pretrained(tmp_path / "pretrained")
        args += ["--pretrained_unet", tmp_path / "pretrained"]
        expected = "num_classes=3 in the model but 10 in the data"
    elif mismatch == "channels":
        UNet2DModel(**tiny_unet_kwargs(in_channels=3, out_channels=3)).save_pretrained(tmp_path / "pretrained")
        args += ["--pretrained_unet", tmp_path / "pretrained"]
        expected = "The model expects 3-channel images but the data has 1-channel images"
    else:  # a checkpoint of a run on data with 3 classes, in the folder a 10-class run resumes from
        three_classes = JointDiffusionObjective(JointUNet2DModel(**tiny_unet_kwargs(), num_classes=3))
        (tmp_path / "out" / "checkpoint-7").mkdir(parents=True)
        save_file(three_classes.state_dict(), tmp_path / "out" / "checkpoint-7" / "model.safetensors")
        args += ["--resume_from_checkpoint", "latest", "--classifier_hidden_dims"]  # a linear head, as saved
        expected = "checkpoint-7 was written for a different model than this run builds (unet.classifier.layers.0"
    result = run(args, check=False)
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Training 2 steps" not in result.stderr and not (tmp_path / "out" / "checkpoint-1").exists()
