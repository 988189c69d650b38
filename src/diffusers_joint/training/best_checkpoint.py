# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Keep the weights of the training step whose classifier scored best on the validation split."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

from diffusers.utils import logging

from ..models.unet_2d_joint import JointUNet2DModel
from .checkpointing import replace_directory, restore_replaced_directory

logger = logging.get_logger(__name__)

BEST_CHECKPOINT_METRICS = ("balanced_accuracy", "nll")


class BestCheckpoint:
    """
    The UNet of the best validation step so far, saved (safetensors) in `folder` with a `best.json` naming the step
    and its metrics. Writes are atomic (a temporary folder renamed over the old one), so a kill at any moment leaves
    the previous best intact, and a resumed run reads it back and keeps comparing against it.

    Args:
        folder (`str` or `os.PathLike`):
            Where the best weights live, e.g. `<output_dir>/best-checkpoint`.
        metric (`str`, *optional*, defaults to `"balanced_accuracy"`):
            `"balanced_accuracy"` (higher is better, ties go to the lower negative log-likelihood) or `"nll"` (lower is
            better), both from the classifier's uncalibrated logits on the validation split.
        resumed_step (`int`, *optional*):
            The step a resumed run starts from: the best saved in `folder` is kept if it comes from that step or an
            earlier one. `None` (a new run): a best left in `folder` by an earlier run is removed, with a warning, so
            that it can neither beat this run's steps nor be saved as this run's model.
    """

    def __init__(self, folder: str | os.PathLike, metric: str = "balanced_accuracy", resumed_step: int | None = None):
        if metric not in BEST_CHECKPOINT_METRICS:
            raise ValueError(f"Expected a best-checkpoint metric in {BEST_CHECKPOINT_METRICS}, got {metric!r}.")
        self.folder = Path(folder)
        self.metric = metric
        restore_replaced_directory(self.folder)  # killed between the two renames of `update`
        record = self.folder / "best.json"
        self.best: dict | None = json.loads(record.read_text()) if record.exists() else None
        if self.best is not None and (resumed_step is None or self.best["step"] > resumed_step):
            # another run's weights (or those of steps this resumed run trains again) are not this run's best
            which = "an earlier run" if resumed_step is None else f"a step after the resumed step {resumed_step}"
            logger.warning(f"Removing {self.folder}, the best checkpoint of {which} (step {self.best['step']}).")
            shutil.rmtree(self.folder, ignore_errors=True)  # every process of a multi-process run builds one
            self.best = None

    def _score(self, metrics: dict) -> tuple[float, float]:
        nll = metrics["nll"] if math.isfinite(metrics["nll"]) else math.inf
        if self.metric == "nll":
            return (-nll, 0.0)
        accuracy = metrics["balanced_accuracy"]
        return (accuracy if math.isfinite(accuracy) else -math.inf, -nll)

    def update(self, step: int, unet: JointUNet2DModel, metrics: dict) -> bool:
        """Save `unet` as the new best if `metrics` (with `balanced_accuracy` and `nll`) beat the best so far."""
        if self.best is not None and self._score(metrics) <= self._score(self.best["metrics"]):
            return False
        record = {"step": step, "metric": self.metric, "metrics": {k: metrics[k] for k in BEST_CHECKPOINT_METRICS}}
        tmp = self.folder.with_name(self.folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        unet.save_pretrained(tmp)
        (tmp / "best.json").write_text(json.dumps(record, indent=2))
        replace_directory(tmp, self.folder)
        self.best = record
        logger.info(
            f"Step {step} is the best so far on the validation split: "
            + ", ".join(f"{k} {v:.4f}" for k, v in record["metrics"].items())
        )
        return True

    def load_into(self, unet: JointUNet2DModel) -> int:
        """Copy the best weights into `unet` (same architecture); returns the step they come from."""
        if self.best is None:
            raise ValueError(f"No best checkpoint has been saved in {self.folder} yet.")
        best = JointUNet2DModel.from_pretrained(self.folder)
        unet.load_state_dict(best.state_dict())
        return int(self.best["step"])
