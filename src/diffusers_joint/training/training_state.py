# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""A run's full state in Accelerate checkpoints: written atomically, resumed at the exact batch and random draw."""

from __future__ import annotations

import os
import shutil
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


def register_alignment_checkpointing(accelerator: Accelerator, alignment: DistributionAlignment) -> None:
    """Save FixMatch's distribution alignment (safetensors) in every checkpoint and load it back on resume."""

    def save_hook(models, weights, output_dir):
        if accelerator.is_main_process:
            save_file(alignment.state_dict(), os.path.join(output_dir, ALIGNMENT_FILE))

    def load_hook(models, input_dir):
        alignment.load_state_dict(load_file(os.path.join(input_dir, ALIGNMENT_FILE)))

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


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
