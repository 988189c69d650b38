# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Upload a trained output folder to the Hugging Face Hub."""

from __future__ import annotations

import argparse
import os
import shlex

from accelerate import Accelerator
from diffusers.utils import logging
from huggingface_hub import create_repo, upload_folder

logger = logging.get_logger(__name__)

# Checkpoints, the spare copy of the best step's weights and logs are for resuming, not for users of the model.
HUB_IGNORE_PATTERNS = [
    "checkpoint-*", "checkpoint-*/**", "best-checkpoint/**", "logs/**", "*.tmp", "*.tmp/**", "*.old", "*.old/**",
]  # fmt: skip


def upload_command(repo_id: str, output_dir: str | os.PathLike, exclude: list[str], private: bool = False) -> str:
    """
    The `hf upload` command (huggingface_hub's CLI) that uploads `output_dir` to the model repository `repo_id`
    without the files matching `exclude`, quoted for a POSIX shell. `--exclude` is repeated per pattern: the CLI
    takes one pattern per flag.
    """
    words = ["hf", "upload", repo_id, os.fspath(output_dir), "."]
    for pattern in exclude:
        words += ["--exclude", pattern]
    if private:  # as the failed push would have created it
        words.append("--private")
    return shlex.join(words)


class HubUploadError(RuntimeError):
    """Raised when the upload fails; the local output folder is complete and untouched."""


def push_output_to_hub(
    output_dir: str | os.PathLike,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    commit_message: str = "Upload Joint Diffusion pipeline",
    ignore_patterns: list[str] | None = None,
) -> str:
    """
    Create (if needed) the model repository `repo_id` and upload `output_dir` without its checkpoints, the copy of the
    best step's weights and the logs (`HUB_IGNORE_PATTERNS`, plus `ignore_patterns`, e.g. another logging folder).

    The token comes from `token`, else from `HF_TOKEN` / the cached login; it is never logged. Returns the URL of the
    commit. Raises [`HubUploadError`] with the reason (offline mode, no network, missing permission, ...) and the
    `hf upload` command that uploads the same files later by hand.
    """
    patterns = [*HUB_IGNORE_PATTERNS, *(ignore_patterns or [])]
    try:
        repo_url = create_repo(repo_id, token=token, private=private, exist_ok=True, repo_type="model")
        commit = upload_folder(
            repo_id=repo_url.repo_id,
            folder_path=str(output_dir),
            token=token,
            commit_message=commit_message,
            ignore_patterns=patterns,
        )
    except Exception as error:  # network, offline mode, auth: all end the same way for the user
        reason = f"{type(error).__name__}: {error}"
        if token:
            reason = reason.replace(token, "***")
        raise HubUploadError(
            f"Could not push {output_dir} to the Hub repository {repo_id!r} ({reason}). The trained pipeline and its "
            f"model card are saved locally in {output_dir}; upload them later with "
            f"`{upload_command(repo_id, output_dir, patterns, private)}` once online and logged in (`hf auth login`)."
        ) from error
    logger.info(f"Pushed {output_dir} to {repo_url}")
    return str(getattr(commit, "commit_url", commit))


def push_run_to_hub(accelerator: Accelerator, args: argparse.Namespace, **upload: str) -> None:
    """
    `--push_to_hub` of a training script: upload `args.output_dir` to `args.hub_model_id` with `args.hub_token` (else
    `HF_TOKEN` or the cached login) through [`push_output_to_hub`]; a failed upload ends the run with its reason
    (`SystemExit`), the trained output kept on disk.
    """
    token = args.hub_token or os.environ.get("HF_TOKEN")
    logs = os.path.relpath(os.path.join(args.output_dir, args.logging_dir), args.output_dir)
    extra = [f"{logs}/**"] if not logs.startswith("..") else []  # a --logging_dir inside the output folder
    try:
        url = push_output_to_hub(
            args.output_dir, args.hub_model_id, token, private=args.hub_private_repo, ignore_patterns=extra, **upload
        )
    except HubUploadError as error:
        accelerator.end_training()
        raise SystemExit(f"error: {error}") from error
    logger.info(f"Pushed to {url}")
