# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""What a training step does with a NaN or infinite loss: stop, or skip a bounded number of steps."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from diffusers.utils import logging

from .checkpointing import resolve_checkpoint
from .losses import LOSS_TERMS

logger = logging.get_logger(__name__)

NONFINITE_POLICIES = ("stop", "skip")
# More non-finite steps in a row than this means divergence, not a bad batch.
MAX_CONSECUTIVE_SKIPS = 10


def nonfinite_message(
    step: int, terms: torch.Tensor, output_dir: str | os.PathLike, term_names: Sequence[str] = LOSS_TERMS
) -> str:
    """Name the step, every loss term (per process when there are several) and the checkpoint that is kept."""
    rows = [", ".join(f"{n}={v + 0.0:.6g}" for n, v in zip(term_names, row)) for row in terms.cpu().tolist()]  # no -0
    where = rows[0] if len(rows) == 1 else "; ".join(f"process {i}: {row}" for i, row in enumerate(rows))
    last = resolve_checkpoint(output_dir, "latest")
    kept = f"The last good checkpoint, {last}, is kept." if last else "No checkpoint had been written yet."
    return f"Non-finite loss at step {step} ({where}). {kept}"


class NonFiniteLossGuard:
    """
    Checks the loss terms of every step (`(processes, terms)`, gathered, so every process takes the same path).

    With `policy="stop"` a non-finite term raises a `FloatingPointError` naming the step, the terms and the last
    good checkpoint; with `"skip"` the step's update is skipped with a warning, and more than
    [`MAX_CONSECUTIVE_SKIPS`] in a row raise. The training scripts still count a skipped step, as Accelerate counts
    one whose update a mixed-precision overflow skipped: steps and batches stay aligned, so a resume is exact.
    `term_names` name the columns of `terms` in the messages (the joint loss's by default).
    """

    def __init__(
        self,
        policy: str,
        output_dir: str | os.PathLike,
        max_consecutive_skips: int = MAX_CONSECUTIVE_SKIPS,
        term_names: Sequence[str] = LOSS_TERMS,
    ):
        if policy not in NONFINITE_POLICIES:
            raise ValueError(f"policy must be one of {NONFINITE_POLICIES}, got {policy!r}.")
        self.policy = policy
        self.output_dir = output_dir
        self.max_consecutive_skips = max_consecutive_skips
        self.term_names = tuple(term_names)
        self.consecutive_skips = 0

    def skip_step(self, step: int, terms: torch.Tensor) -> bool:
        """`True` when the step must be skipped; raises when training must stop."""
        if bool(torch.isfinite(terms).all()):
            self.consecutive_skips = 0
            return False
        message = nonfinite_message(step, terms, self.output_dir, self.term_names)
        if self.policy == "stop":
            raise FloatingPointError(
                message + " Lower --learning_rate, or pass --on_nonfinite_loss skip to skip such steps."
            )
        self.consecutive_skips += 1
        if self.consecutive_skips > self.max_consecutive_skips:
            raise FloatingPointError(
                f"{message} {self.consecutive_skips} steps in a row had a non-finite loss: training has "
                "diverged. Resume from the last good checkpoint with a lower --learning_rate."
            )
        logger.warning(message + " Skipping the step (--on_nonfinite_loss skip).")
        return True
