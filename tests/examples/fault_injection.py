# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Run examples/train_joint.py (or train_autoencoder.py) with test-only fault injection and call recording, from the
outside (no hook in the library or the script): `python fault_injection.py <script> <script args...>`, also under
`accelerate launch`.

Environment variables (all optional):

- `FAULT_PAUSE_IN`: when `torch.save` (which Accelerate uses for optimizer.bin) writes a file whose path contains this
  string, write the file, create the file `FAULT_MARKER`, and sleep: the test then SIGKILLs the run while the
  checkpoint folder is half-written, at a moment it chose.
- `FAULT_ENOSPC_IN`: `torch.save` into a path containing this string fails as on a full disk (ENOSPC).
- `FAULT_NAN_AT`: comma-separated 1-based calls of `joint_diffusion_loss` (or of the autoencoder's objective) whose
  loss terms are replaced by NaN.
- `FAULT_RECORD`: a file to which every process appends one line per event: `<rank> loss <num_labeled> <terms...>`
  for every loss (the terms of `JointLossOutput`, full precision), `<rank> save_pretrained`,
  `<rank> save_model_card`, `<rank> create_repo <token_given>` and `<rank> upload_folder`.
  The Hub calls are replaced by fakes (the tests run offline).
"""

import errno
import os
import runpy
import sys
import time

import torch

import diffusers_joint.training as training
from diffusers_joint import JointDiffusionPipeline
from diffusers_joint.training import hub

RANK = os.environ.get("RANK", "0")


def record(*event):
    path = os.environ.get("FAULT_RECORD")
    if path:
        with open(path, "a") as f:
            f.write(" ".join([RANK, *map(str, event)]) + "\n")


pause_in = os.environ.get("FAULT_PAUSE_IN")
if pause_in:
    real_save = torch.save

    def pausing_save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        if pause_in in str(f):
            open(os.environ["FAULT_MARKER"], "w").close()
            time.sleep(600)  # killed here by the test

    torch.save = pausing_save

enospc_in = os.environ.get("FAULT_ENOSPC_IN")
if enospc_in:
    real_save_for_enospc = torch.save

    def full_disk_save(obj, f, *args, **kwargs):
        if enospc_in in str(f):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(f))
        return real_save_for_enospc(obj, f, *args, **kwargs)

    torch.save = full_disk_save

nan_at = {int(i) for i in os.environ.get("FAULT_NAN_AT", "").split(",") if i}
real_loss = training.joint_diffusion_loss
calls = 0


def faulty_loss(*args, **kwargs):
    global calls
    calls += 1
    out = real_loss(*args, **kwargs)
    terms = (out.loss, out.loss_diffusion, out.loss_classifier, out.loss_fixmatch, out.loss_noisy_classifier,
             out.loss_noisy_pseudo, out.loss_feature_consistency)  # fmt: skip
    record("loss", out.num_labeled, *(repr(float(t.detach())) for t in terms))
    if calls in nan_at:
        out.loss = out.loss * float("nan")
        out.loss_diffusion = out.loss_diffusion * float("nan")
    return out


training.joint_diffusion_loss = faulty_loss

real_autoencoder_forward = training.AutoencoderObjective.forward
autoencoder_calls = 0


def faulty_autoencoder_forward(self, images):
    global autoencoder_calls
    autoencoder_calls += 1
    loss, terms = real_autoencoder_forward(self, images)
    if autoencoder_calls in nan_at:
        loss, terms = loss * float("nan"), {name: value * float("nan") for name, value in terms.items()}
    return loss, terms


training.AutoencoderObjective.forward = faulty_autoencoder_forward

real_save_pretrained = JointDiffusionPipeline.save_pretrained
real_save_model_card = training.save_model_card


def recording_save_pretrained(self, *args, **kwargs):
    record("save_pretrained")
    return real_save_pretrained(self, *args, **kwargs)


def recording_save_model_card(*args, **kwargs):
    record("save_model_card")
    return real_save_model_card(*args, **kwargs)


class FakeRepoUrl(str):
    repo_id = "user/joint-test"


def fake_create_repo(repo_id, token=None, **kwargs):
    record("create_repo", token is not None)
    return FakeRepoUrl(f"https://huggingface.co/{repo_id}")


def fake_upload_folder(**kwargs):
    record("upload_folder")
    return "https://huggingface.co/user/joint-test/commit/0"


JointDiffusionPipeline.save_pretrained = recording_save_pretrained
training.save_model_card = recording_save_model_card
hub.create_repo = fake_create_repo
hub.upload_folder = fake_upload_folder

script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
