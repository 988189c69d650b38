# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Checks of a training run's output folder, made before any training time is spent."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .checkpointing import list_checkpoints

MIN_FREE_BYTES = 100 * 2**20


def check_output_dir(
    output_dir: str | os.PathLike, overwrite: bool = False, resume: bool = False, model_file: str = "model_index.json"
) -> None:
    """
    Create `output_dir` and raise when it cannot be written, has less than [`MIN_FREE_BYTES`] free, or already holds
    a trained model (its `model_file`: a pipeline's `model_index.json` by default) or the checkpoints of an earlier
    run that neither `overwrite` nor `resume` allows to replace. A new run with `overwrite` then removes those
    checkpoints ([`~training.checkpointing.remove_earlier_checkpoints`]).

    Raises:
        PermissionError: the folder cannot be created or written.
        OSError: too little free space.
        FileExistsError: a trained pipeline (or `model_file`), or checkpoints of an earlier run, are there already;
            or `resume` is asked in a folder holding a trained model and no checkpoint.
    """
    out = Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        # os.access says yes to root even on a read-only mount: try a real write.
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise PermissionError(
            f"--output_dir {out} cannot be created or written ({type(error).__name__}: {error}): choose another one."
        ) from error
    if not os.access(out, os.W_OK):
        raise PermissionError(f"--output_dir {out} is not writable: choose another folder.")
    free = shutil.disk_usage(out).free
    if free < MIN_FREE_BYTES:
        raise OSError(
            f"Only {free / 2**20:.1f} MiB free in {out}, expected at least {MIN_FREE_BYTES // 2**20} MiB for "
            "checkpoints and the model: free some space or choose another --output_dir."
        )
    kind = "pipeline" if model_file == "model_index.json" else f"model ({model_file})"
    if (out / model_file).exists() and not overwrite and not resume:
        raise FileExistsError(
            f"{out} already holds a trained {kind}. Pass --overwrite_output_dir to replace it, "
            "--resume_from_checkpoint latest to continue, or another --output_dir."
        )
    checkpoints = list_checkpoints(out)
    if (out / model_file).exists() and resume and not overwrite and not checkpoints:
        # a resume finds nothing to resume and would start a new run over the finished one
        raise FileExistsError(
            f"{out} holds a trained {kind} but no checkpoint to resume from (the run wrote none, or they were "
            "removed). Pass --overwrite_output_dir to train a new model over it, or another --output_dir."
        )
    if checkpoints and not overwrite and not resume:
        # a new run would prune them by step number and `latest` would resume them: neither is this run
        raise FileExistsError(
            f"{out} holds checkpoints of an earlier run ({', '.join(p.name for p in checkpoints)}). Pass "
            "--resume_from_checkpoint latest to continue it, --overwrite_output_dir to start a new run (they are then "
            "removed), or another --output_dir."
        )
