# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""A run's full state in Accelerate checkpoints: written atomically, resumed at the exact batch and random draw."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from diffusers.utils import logging
from safetensors.torch import load_file, save_file

from .checkpointing import (
    check_checkpoint_fits,
    checkpoint_step,
    finalize_checkpoint,
    resolve_checkpoint,
    temporary_checkpoint_dir,
)
from .distribution_alignment import DistributionAlignment

logger = logging.get_logger(__name__)

ALIGNMENT_FILE = "fixmatch_distribution_alignment.safetensors"
RUN_SETTINGS_FILE = "run_settings.json"

# Flags a resumed run may change freely: where and how often it writes, logs and evaluates, and the Hub upload (the
# token is never written). Every other flag decides what the run trains.
RESUMABLE_FLAGS = (
    "output_dir", "overwrite_output_dir", "resume_from_checkpoint", "logging_dir", "report_to", "tracker_project_name",
    "push_to_hub", "hub_model_id", "hub_private_repo", "hub_token", "checkpointing_steps", "checkpoints_total_limit",
    "validation_steps", "num_validation_samples_per_class", "validation_inference_steps", "guidance_scale",
    "dataloader_num_workers", "eval_batch_size", "evaluate_generation", "num_evaluation_samples", "calibrate",
    "select_best_checkpoint", "on_nonfinite_loss", "cache_dir", "max_eval_images", "scaling_images",
)  # fmt: skip
# Flags whose change is allowed with a warning: the run's length (its learning-rate schedule then differs from an
# uninterrupted run's), the precision, and where the same data and models are read from.
WARNED_FLAGS = (
    "max_train_steps", "num_epochs", "mixed_precision", "npz_path", "csv_path", "train_data_dir", "manifest",
    "dataset_name", "pretrained_vae_model_name_or_path", "pretrained_unet",
)  # fmt: skip


def register_alignment_checkpointing(accelerator: Accelerator, alignment: DistributionAlignment) -> None:
    """Save FixMatch's distribution alignment (safetensors) in every checkpoint and load it back on resume."""

    def save_hook(models, weights, output_dir):
        if accelerator.is_main_process:
            save_file(alignment.state_dict(), os.path.join(output_dir, ALIGNMENT_FILE))

    def load_hook(models, input_dir):
        alignment.load_state_dict(load_file(os.path.join(input_dir, ALIGNMENT_FILE)))

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


def run_settings(args: argparse.Namespace) -> dict:
    """The flags of `args` that decide what a run trains (all but [`RESUMABLE_FLAGS`]), JSON-serialisable."""
    return {key: value for key, value in sorted(vars(args).items()) if key not in RESUMABLE_FLAGS}


def register_json_record(
    accelerator: Accelerator, file_name: str, record: dict | None, check: Callable[[str, dict | None], None]
) -> None:
    """
    Write `record` as the JSON file `file_name` in every checkpoint (nothing when it is `None`), and on resume call
    `check(checkpoint_folder, record)` before the state is loaded.
    """

    def save_hook(models, weights, output_dir):
        if record is not None and accelerator.is_main_process:
            Path(output_dir, file_name).write_text(json.dumps(record, indent=2, default=str))

    def load_hook(models, input_dir):
        check(input_dir, record)

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


def register_run_settings_checkpointing(accelerator: Accelerator, settings: dict) -> None:
    """
    Write `settings` ([`run_settings`]) as `run_settings.json` in every checkpoint, and on resume check that the
    checkpoint was written with the same ones ([`check_resumed_settings`]).
    """
    register_json_record(accelerator, RUN_SETTINGS_FILE, settings, check_resumed_settings)


def check_resumed_settings(checkpoint: str | os.PathLike, settings: dict) -> None:
    """
    Raise when `settings` differ from those `checkpoint` was written with in a flag that decides what the run trains
    (data, label budget, seed, loss, model, optimiser, batch); warn for [`WARNED_FLAGS`]. A checkpoint written before
    settings were recorded is resumed with a warning.

    Raises:
        ValueError: names each changed flag with its checkpointed and its new value.
    """
    path = Path(checkpoint, RUN_SETTINGS_FILE)
    if not path.is_file():
        logger.warning(f"{checkpoint} records no run settings (an older checkpoint): the flags cannot be checked.")
        return
    saved = json.loads(path.read_text())
    current = json.loads(json.dumps(settings, default=str))  # as saved: tuples as lists
    changed = {key: (saved.get(key), current.get(key)) for key in saved.keys() | current.keys()}
    changed = {key: values for key, values in sorted(changed.items()) if values[0] != values[1]}
    described = {key: f"--{key} {old!r} -> {new!r}" for key, (old, new) in changed.items()}
    warned = [described[key] for key in changed if key in WARNED_FLAGS]
    if warned:
        logger.warning(
            f"Resuming {checkpoint} with changed flags: {'; '.join(warned)}. A changed length restarts the "
            "learning-rate schedule's shape, so the run no longer equals an uninterrupted one."
        )
    refused = [described[key] for key in changed if key not in WARNED_FLAGS]
    if refused:
        raise ValueError(
            f"Cannot resume {checkpoint} with flags that change what it trains: {'; '.join(refused)}. Pass the "
            f"flags it was started with (recorded in {path}), or start a new run in another --output_dir."
        )


def save_training_checkpoint(
    accelerator: Accelerator, output_dir: str | os.PathLike, step: int, total_limit: int | None = None
) -> None:
    """
    `accelerator.save_state` into `checkpoint-<step>.tmp`, renamed into place once complete (keeping the newest
    `total_limit`). A failed write (disk full, quota) leaves the complete checkpoints untouched and raises an
    `OSError` that names the last one and how to resume.
    """
    tmp_dir = Path(output_dir) / f"checkpoint-{step}.tmp"
    if accelerator.is_main_process:
        temporary_checkpoint_dir(output_dir, step)  # clears what a crash may have left there
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(tmp_dir))
    except OSError as error:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        last = resolve_checkpoint(output_dir, "latest")
        raise OSError(
            f"Could not write the checkpoint of step {step} to {tmp_dir} ({error}). "
            + (f"The last complete checkpoint, {last}, is intact: " if last else "No checkpoint was written: ")
            + "free some space (or fix the folder), then rerun with --resume_from_checkpoint latest."
        ) from error
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        final = finalize_checkpoint(tmp_dir, total_limit)
        logger.info(f"Saved {final}")
    accelerator.wait_for_everyone()


def resume_training_state(
    accelerator: Accelerator, model: torch.nn.Module, output_dir: str | os.PathLike, resume_from_checkpoint: str | None
) -> int:
    """
    Load the checkpoint `resume_from_checkpoint` names (a folder, or `"latest"` in `output_dir`) after checking that
    it fits `model`; returns its global step (0 when there is nothing to resume from).
    """
    if not resume_from_checkpoint:
        return 0
    path = resolve_checkpoint(output_dir, resume_from_checkpoint)
    if path is None:
        logger.info("No checkpoint to resume from: starting a new run.")
        return 0
    logger.info(f"Resuming from {path}")
    check_checkpoint_fits(path, model)
    accelerator.load_state(str(path))
    return checkpoint_step(path)


def batch_seed(seed: int, micro_step: int, process_index: int) -> int:
    """
    The seed of one batch's random draws (flips, views, noise, timesteps, dropout): a function of the run's seed,
    the batch index and the process only, so a resumed run draws exactly what the uninterrupted run would have.
    """
    return int(np.random.SeedSequence([seed, micro_step, process_index]).generate_state(1)[0])
