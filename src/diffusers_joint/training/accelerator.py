# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The Accelerator of a training run: trackers that are installed, CPU processes that train together."""

from __future__ import annotations

import os
import warnings

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration, is_tensorboard_available


def create_accelerator(
    output_dir: str | os.PathLike,
    logging_dir: str = "logs",
    report_to: str | None = "tensorboard",
    mixed_precision: str | None = None,
    gradient_accumulation_steps: int = 1,
    find_unused_parameters: bool = False,
) -> Accelerator:
    """
    An `Accelerator` logging to `report_to` (`"none"` or a tracker that is not installed: no logs, with a warning
    for tensorboard). Launched as several processes without a GPU (`accelerate launch --multi_gpu`, torchrun), the
    processes train together on the CPUs with gloo rather than as independent runs that would overwrite each other's
    output; `find_unused_parameters` tells DDP that some parameters may take no part in a step (the classifier-only
    baseline leaves the decoder out of the graph).

    Raises:
        RuntimeError: launched as several processes that Accelerate does not see as one run.
    """
    report_to = None if report_to == "none" else report_to
    if report_to == "tensorboard" and not is_tensorboard_available():
        warnings.warn("tensorboard is not installed (pip install tensorboard): no metric logs.", stacklevel=2)
        report_to = None
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    accelerator = Accelerator(
        cpu=world_size > 1 and not torch.cuda.is_available(),
        gradient_accumulation_steps=gradient_accumulation_steps,
        mixed_precision=mixed_precision,
        log_with=report_to,
        project_config=ProjectConfiguration(project_dir=output_dir, logging_dir=os.path.join(output_dir, logging_dir)),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=find_unused_parameters)],
    )
    if world_size > 1 and accelerator.num_processes == 1:
        raise RuntimeError(
            f"Launched as {world_size} processes but Accelerate sees {accelerator.num_processes}: each would train "
            "alone and overwrite the others' output. Check the launch command and `accelerate config`."
        )
    return accelerator
