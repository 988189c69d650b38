# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The training script and the flags that make it tiny (8x8 digits, two levels of 8/16 channels), for the tests."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "train_joint.py"
TINY = [
    "--block_out_channels", "8", "16",
    "--attention_levels",
    "--classifier_hidden_dims", "16",
    "--train_batch_size", "16",
    "--ddpm_num_steps", "20",
    "--validation_steps", "0",
    "--num_validation_samples_per_class", "1",
    "--validation_inference_steps", "2",
    "--lr_warmup_steps", "0",
    "--report_to", "none",
]  # fmt: skip


def launch(*args, check=True):
    """Run the script through `accelerate launch` on one CPU process with the tiny flags and `args`."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--cpu", str(SCRIPT)]
    result = subprocess.run(cmd + TINY + list(args), env=env, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"train_joint.py failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result
