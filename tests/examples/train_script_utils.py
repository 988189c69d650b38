# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The training script and the flags that make it tiny (8x8 digits, two levels of 8/16 channels), for the tests."""

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
