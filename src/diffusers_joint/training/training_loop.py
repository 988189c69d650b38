# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The steps of an Accelerate training loop that do not depend on the model: schedule, resumable epochs, updates."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from accelerate import Accelerator
from diffusers.optimization import get_scheduler


@dataclass
class TrainingSchedule:
    """How many optimiser updates an epoch holds, how many epochs a run takes, and where a resumed run starts."""

    updates_per_epoch: int
    num_epochs: int
    first_epoch: int
    resume_batches: int


def updates_per_epoch(accelerator: Accelerator, batches_per_epoch: int) -> int:
    """
    Optimiser updates in one epoch of `batches_per_epoch` batches, counted over every process (the length of the
    loader before `accelerator.prepare` shards it), with the accelerator's gradient accumulation.
    """
    return math.ceil(batches_per_epoch / accelerator.num_processes / accelerator.gradient_accumulation_steps)


def training_schedule(
    accelerator: Accelerator, batches_per_epoch: int, max_train_steps: int, global_step: int = 0
) -> TrainingSchedule:
    """
    The [`TrainingSchedule`] of `max_train_steps` updates, resumed at `global_step`; `batches_per_epoch` counts the
    batches of every process, the length of the loader before `accelerator.prepare` shards it.
    """
    per_epoch = updates_per_epoch(accelerator, batches_per_epoch)
    return TrainingSchedule(
        updates_per_epoch=per_epoch,
        num_epochs=math.ceil(max_train_steps / per_epoch),
        first_epoch=global_step // per_epoch,
        resume_batches=(global_step % per_epoch) * accelerator.gradient_accumulation_steps,
    )


def resumable_epochs(
    accelerator: Accelerator, dataloader: torch.utils.data.DataLoader, schedule: TrainingSchedule
) -> Iterator[tuple[int, torch.utils.data.DataLoader]]:
    """
    `(epoch, loader)` for every epoch from `schedule.first_epoch`: the batch sampler is set to the epoch (seeded
    batches, so a resumed run draws the batches the uninterrupted one drew), and a resumed run's first epoch skips the
    batches already trained on. `dataloader` is the prepared loader or a plain one.
    """
    for epoch in range(schedule.first_epoch, schedule.num_epochs):
        set_epoch(dataloader, epoch)
        if epoch == schedule.first_epoch and schedule.resume_batches:
            yield epoch, accelerator.skip_first_batches(dataloader, schedule.resume_batches)
        else:
            yield epoch, dataloader


def set_epoch(dataloader: torch.utils.data.DataLoader, epoch: int) -> None:
    """Set the epoch of `dataloader`'s batch sampler, through Accelerate's loader when it is a prepared one."""
    if hasattr(dataloader, "set_epoch"):
        # Accelerate's loader sets its sampler to its own epoch count at every iteration, which restarts at 0 in a
        # resumed process: a sampler set directly would be overwritten with the wrong epoch
        dataloader.set_epoch(epoch)
    sampler = dataloader.batch_sampler
    getattr(sampler, "batch_sampler", sampler).set_epoch(epoch)  # the sampler inside a per-process shard too


def create_lr_scheduler(
    accelerator: Accelerator, optimizer: torch.optim.Optimizer, name: str, warmup_steps: int, max_train_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """diffusers' `get_scheduler`, its steps counted over every process as `accelerator.prepare` steps it."""
    return get_scheduler(
        name,
        optimizer=optimizer,
        num_warmup_steps=warmup_steps * accelerator.num_processes,
        num_training_steps=max_train_steps * accelerator.num_processes,
    )


def apply_gradients(
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler,
    loss: torch.Tensor,
    max_grad_norm: float | None = None,
) -> None:
    """Back-propagate `loss`, clip the gradients to `max_grad_norm` on synchronising steps, step and zero them."""
    accelerator.backward(loss)
    if accelerator.sync_gradients and max_grad_norm:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    lr_scheduler.step()
    optimizer.zero_grad()
