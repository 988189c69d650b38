# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Crash-safe training checkpoints: written to a temporary folder, then renamed into place."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from diffusers.utils import logging

logger = logging.get_logger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints in `output_dir`, oldest first (`checkpoint-<step>`; partial `.tmp` ones ignored)."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := CHECKPOINT_PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def checkpoint_step(path: str | os.PathLike) -> int:
    """The global step encoded in a checkpoint folder's name."""
    match = CHECKPOINT_PATTERN.match(Path(path).name)
    if match is None:
        raise ValueError(f"{path} is not a checkpoint folder (expected a name like 'checkpoint-500').")
    return int(match.group(1))


def resolve_checkpoint(output_dir: str | os.PathLike, resume_from_checkpoint: str) -> Path | None:
    """
    The checkpoint to resume from: `"latest"` picks the newest complete one in `output_dir` (or `None` when there is
    none, so a first run can pass `latest` unconditionally); anything else is a path that must exist.
    """
    if resume_from_checkpoint == "latest":
        checkpoints = list_checkpoints(output_dir)
        return checkpoints[-1] if checkpoints else None
    path = Path(resume_from_checkpoint)
    if not path.is_dir():
        path = Path(output_dir) / resume_from_checkpoint
    if not path.is_dir():
        raise ValueError(
            f"Checkpoint {resume_from_checkpoint!r} does not exist; available: "
            f"{[p.name for p in list_checkpoints(output_dir)] or 'none'}. Use 'latest' to pick the newest."
        )
    return path


def temporary_checkpoint_dir(output_dir: str | os.PathLike, step: int) -> Path:
    """A fresh temporary folder to write the checkpoint of `step` into (removed first if a crash left it)."""
    tmp = Path(output_dir) / f"checkpoint-{step}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    return tmp


def finalize_checkpoint(tmp_dir: str | os.PathLike, total_limit: int | None = None) -> Path:
    """
    Atomically publish `checkpoint-<step>.tmp` as `checkpoint-<step>`, then keep at most `total_limit` checkpoints.

    The rename is atomic on POSIX file systems, so a kill at any moment leaves either the previous set of complete
    checkpoints or the new one, never a half-written `checkpoint-<step>`.
    """
    tmp_dir = Path(tmp_dir)
    final = tmp_dir.with_suffix("")
    if final.exists():  # re-saving the same step (e.g. after a resume): replace the old copy
        old = final.with_name(final.name + ".old")
        os.replace(final, old)
        os.replace(tmp_dir, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp_dir, final)
    if total_limit is not None:
        checkpoints = list_checkpoints(final.parent)
        for stale in checkpoints[: max(0, len(checkpoints) - total_limit)]:
            logger.info(f"Removing old checkpoint {stale}")
            shutil.rmtree(stale, ignore_errors=True)
    return final
