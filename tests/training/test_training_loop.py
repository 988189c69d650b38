"""The model-independent steps of a training loop: the schedule of a (resumed) run, its epochs and its updates."""

import torch
from accelerate import Accelerator

from diffusers_joint.data import MixedBatchSampler
from diffusers_joint.training import (
    apply_gradients,
    create_lr_scheduler,
    resumable_epochs,
    training_schedule,
    updates_per_epoch,
)


def test_schedule_counts_updates_and_where_a_resumed_run_starts():
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=2)
    schedule = training_schedule(accelerator, batches_per_epoch=10, max_train_steps=12, global_step=7)
    assert (schedule.updates_per_epoch, schedule.num_epochs) == (5, 3)
    assert (schedule.first_epoch, schedule.resume_batches) == (1, 4)  # 2 updates of epoch 1 done, 2 batches each
    # an epoch's last, partial accumulation still updates: 11 batches are 6 updates, as the loop steps them
    assert updates_per_epoch(accelerator, batches_per_epoch=11) == 6


def test_resumed_epochs_skip_the_batches_already_trained_on():
    accelerator = Accelerator(cpu=True)
    loader = torch.utils.data.DataLoader(range(12), batch_sampler=MixedBatchSampler([False] * 12, 4, seed=0))
    full = [[b.tolist() for b in epoch_loader] for _, epoch_loader in resumable_epochs(
        accelerator, loader, training_schedule(accelerator, len(loader), 6))]  # fmt: skip
    resumed = [[b.tolist() for b in epoch_loader] for _, epoch_loader in resumable_epochs(
        accelerator, loader, training_schedule(accelerator, len(loader), 6, global_step=4))]  # fmt: skip
    assert len(full) == 2 and full[0] != full[1]  # seeded per epoch
    assert resumed == [full[1][1:]]


def test_a_resumed_process_draws_the_batches_of_the_uninterrupted_run_through_a_prepared_loader():
    """Accelerate's loader restarts its epoch count in a new process; the resumed epochs must not replay epoch 0."""
    accelerator = Accelerator(cpu=True)

    def prepared_loader():  # a new process prepares a new loader
        sampler = MixedBatchSampler([False] * 12, 4, seed=0)
        return accelerator.prepare(torch.utils.data.DataLoader(range(12), batch_sampler=sampler))

    def batches(global_step):
        loader = prepared_loader()
        schedule = training_schedule(accelerator, len(loader), 9, global_step=global_step)
        return [
            [b.tolist() for b in epoch_loader] for _, epoch_loader in resumable_epochs(accelerator, loader, schedule)
        ]

    full = batches(0)
    assert len(full) == 3 and full[0] != full[1] != full[2]
    assert batches(3) == full[1:]  # resumed at an epoch's start
    assert batches(5) == [full[1][2:], full[2]]  # resumed within an epoch


def test_apply_gradients_steps_clips_and_zeroes():
    accelerator = Accelerator(cpu=True)
    model = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = create_lr_scheduler(accelerator, optimizer, "constant", warmup_steps=0, max_train_steps=10)
    loss = model(torch.tensor([[30.0, 40.0]])).sum()  # gradient (30, 40), norm 50
    apply_gradients(accelerator, model, optimizer, scheduler, loss, max_grad_norm=5.0)
    assert torch.allclose(model.weight, -torch.tensor([[3.0, 4.0]]), atol=1e-4)  # clipped to norm 5
    assert model.weight.grad is None or not model.weight.grad.any()
