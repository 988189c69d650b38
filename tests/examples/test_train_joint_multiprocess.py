# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Real 2-process CPU runs (gloo) of examples/train_joint.py: one trains with batches that hold no labeled image on one
process, saves one pipeline, writes the card and pushes (to a fake Hub) from the main process only, and never writes
the Hub token anywhere; one is killed (launcher and workers) and resumed, and ends with the uninterrupted weights.
"""

from collections import defaultdict

import pytest
import torch
from safetensors.torch import load_file
from test_train_joint_reliability import assert_same_weights, load_weights, run, run_and_kill

from diffusers_joint import JointDiffusionPipeline

FAKE_TOKEN = "hf_FakeTokenForTests0123456789abcdefXYZ"


@pytest.mark.slow
def test_two_processes_train_with_unlabeled_only_batches_and_write_once(tmp_path):
    out = tmp_path / "two-procs"
    events = tmp_path / "events.txt"
    args = [
        "--output_dir", out, "--max_train_steps", "4", "--checkpointing_steps", "2",
        # random batches of 16 over 1,437 images of which 30 labeled: most per-process batches hold no label
        "--num_labeled", "30", "--labeled_batch_fraction", "0",
        "--push_to_hub", "--hub_model_id", "user/joint-test", "--hub_token", FAKE_TOKEN,
        "--report_to", "tensorboard",
    ]  # fmt: skip
    result = run(args, num_processes=2, FAULT_RECORD=str(events))
    assert "DistributedType.MULTI_CPU  Backend: gloo" in result.stderr and "Num processes: 2" in result.stderr

    by_event = defaultdict(list)
    labeled = defaultdict(list)
    for line in events.read_text().splitlines():
        rank, event, *rest = line.split()
        by_event[event].append(rank)
        if event == "loss":
            labeled[rank].append(int(rest[0]))
    # Every process trained every step; at some step one process had no labeled image while the other had some,
    # so their graphs differed, and gradient synchronisation neither hung nor failed.
    assert len(labeled["0"]) == len(labeled["1"]) == 4
    assert any((a == 0) != (b == 0) for a, b in zip(labeled["0"], labeled["1"])), labeled
    # Only the main process writes the output, the model card, and uploads.
    for event in ("save_pretrained", "save_model_card", "create_repo", "upload_folder"):
        assert by_event[event] == ["0"], (event, by_event[event])
    assert "0 create_repo True" in events.read_text()  # the token did reach the Hub client

    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    pipe = JointDiffusionPipeline.from_pretrained(out)
    assert pipe.unet.config.num_classes == 10
    assert all(torch.isfinite(p).all() for p in pipe.unet.parameters())

    # The token is in no file written (tensorboard logs with the run's config included) and in no log line.
    written = [p for p in out.rglob("*") if p.is_file()]
    assert any("events.out.tfevents" in p.name for p in written), "tensorboard logged nothing: the check is void"
    assert not [p for p in written if FAKE_TOKEN.encode() in p.read_bytes()]
    assert FAKE_TOKEN not in result.stdout and FAKE_TOKEN not in result.stderr


@pytest.mark.slow
def test_two_processes_killed_and_resumed_end_with_the_uninterrupted_weights(tmp_path):
    steps = ["--max_train_steps", "4", "--checkpointing_steps", "1", "--checkpoints_total_limit", "10"]
    reference = tmp_path / "reference"
    run(["--output_dir", reference, *steps], num_processes=2)

    out = tmp_path / "killed"
    run_and_kill(["--output_dir", out, *steps], (out / "checkpoint-2").exists, num_processes=2)
    assert not (out / "model_index.json").exists()  # killed mid-run, not after it
    result = run(["--output_dir", out, *steps, "--resume_from_checkpoint", "latest"], num_processes=2)
    assert "Num processes: 2" in result.stderr and "Resuming from" in result.stderr

    assert_same_weights(load_weights(reference / "checkpoint-4"), load_weights(out / "checkpoint-4"))
    final = "unet/diffusion_pytorch_model.safetensors"
    assert_same_weights({final: load_file(reference / final)}, {final: load_file(out / final)})
