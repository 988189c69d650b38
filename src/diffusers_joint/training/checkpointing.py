# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Crash-safe training checkpoints: written to a temporary folder, then renamed into place."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import torch
from diffusers.utils import logging
from safetensors import safe_open

logger = logging.get_logger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
INCOMPLETE_PATTERN = re.compile(r"^checkpoint-(\d+)\.(tmp|old)$")


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


def replace_directory(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """
    Put the folder `source` in place of `target`, which may exist, with renames only: a kill at any moment leaves
    either `target` or `<target>.old` whole (see [`restore_replaced_directory`]).
    """
    source, target = Path(source), Path(target)
    if target.exists():
        old = target.with_name(target.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(source, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(source, target)


def restore_replaced_directory(target: str | os.PathLike) -> None:
    """Undo a [`replace_directory`] killed between its two renames, and drop a leftover `<target>.old`."""
    target = Path(target)
    old = target.with_name(target.name + ".old")
    if old.exists() and not target.exists():
        os.replace(old, target)
    shutil.rmtree(old, ignore_errors=True)


def finalize_checkpoint(tmp_dir: str | os.PathLike, total_limit: int | None = None) -> Path:
    """
    Atomically publish `checkpoint-<step>.tmp` as `checkpoint-<step>`, then keep at most `total_limit` checkpoints
    (`None`: all), the one just published always among them.

    The rename is atomic on POSIX file systems, so a kill at any moment leaves either the previous set of complete
    checkpoints or the new one, never a half-written `checkpoint-<step>`.

    Raises:
        ValueError: `total_limit` is below 1 (it would remove the checkpoint just written); nothing is published.
    """
    if total_limit is not None and total_limit < 1:
        raise ValueError(
            f"total_limit must be at least 1 (or None to keep every checkpoint), got {total_limit}: fewer would "
            "remove the checkpoint just written."
        )
    tmp_dir = Path(tmp_dir)
    final = tmp_dir.with_suffix("")
    replace_directory(tmp_dir, final)  # re-saving the same step (e.g. after a resume) replaces the old copy
    if total_limit is not None:
        checkpoints = list_checkpoints(final.parent)
        others = [path for path in checkpoints if path.name != final.name]  # oldest first; the new one is kept
        for stale in others[: max(0, len(checkpoints) - total_limit)]:
            logger.info(f"Removing old checkpoint {stale}")
            shutil.rmtree(stale, ignore_errors=True)
    return final


def remove_earlier_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """
    Remove the checkpoints an earlier run left in `output_dir`, for a new run started there with
    `--overwrite_output_dir`: its checkpoints must not be pruned in their place, nor resumed as `latest`. Returns the
    removed folders.
    """
    removed = list_checkpoints(output_dir)
    for path in removed:
        logger.warning(f"Removing {path}, a checkpoint of an earlier run in the output folder of this new run.")
        shutil.rmtree(path)
    return removed


def remove_incomplete_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """
    Clean up what a run killed while writing a checkpoint left in `output_dir`; call it before resuming.

    A `checkpoint-<step>.tmp` folder is a checkpoint that was never finished: it is removed. A `checkpoint-<step>.old`
    folder is the complete previous copy of a step that was being replaced (see [`finalize_checkpoint`]): it is put
    back when the kill came before the new copy was in place, and removed otherwise. Returns the removed folders.
    """
    root = Path(output_dir)
    if not root.is_dir():
        return []
    removed = []
    for path in sorted(root.iterdir()):
        match = INCOMPLETE_PATTERN.match(path.name)
        if match is None or not path.is_dir():
            continue
        final = root / f"checkpoint-{match.group(1)}"
        if match.group(2) == "old" and not final.exists():
            logger.warning(f"Restoring {final} from {path}, left by a run stopped while replacing it.")
            os.replace(path, final)
            continue
        logger.warning(f"Removing {path}, an incomplete checkpoint left by a stopped run.")
        shutil.rmtree(path)
        removed.append(path)
    return removed


def check_checkpoint_fits(checkpoint_dir: str | os.PathLike, model: torch.nn.Module) -> None:
    """
    Raise a `ValueError` naming the mismatched tensors when the weights saved in `checkpoint_dir` (Accelerate's
    `model.safetensors`) do not fit `model`, for example a checkpoint of a run with another number of classes, image
    channels or architecture. Reads only the file's header, so it is cheap to call before `accelerator.load_state`.
    """
    weights = Path(checkpoint_dir) / "model.safetensors"
    if not weights.is_file():
        raise ValueError(
            f"{checkpoint_dir} holds no model.safetensors, so it is not a complete checkpoint of this script. Remove "
            "it, or resume from another checkpoint."
        )
    try:
        with safe_open(str(weights), framework="pt") as f:
            saved = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
    except Exception as error:
        message = f"Cannot read {weights} ({error}): the checkpoint is corrupted. Resume from another one."
        raise ValueError(message) from error
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    wrong = [f"{k}: saved {saved[k]}, model {v}" for k, v in expected.items() if k in saved and saved[k] != v]
    missing = sorted(expected.keys() - saved.keys())
    unexpected = sorted(saved.keys() - expected.keys())
    if wrong or missing or unexpected:
        details = "; ".join(
            wrong[:5]
            + [f"missing {missing[:5]}"] * bool(missing)
            + [f"unexpected {unexpected[:5]}"] * bool(unexpected)
        )
        raise ValueError(
            f"The checkpoint {checkpoint_dir} was written for a different model than this run builds ({details}). "
            "Resume with the same data (classes, channels) and model options as the run that wrote it, or train "
            "into another --output_dir."
        )
