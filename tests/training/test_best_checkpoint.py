# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
import json
import os

import pytest
import torch

from diffusers_joint.training import BestCheckpoint
from tiny_models import tiny_joint_unet


def scores(accuracy, nll):
    return {"balanced_accuracy": accuracy, "nll": nll, "accuracy": accuracy}


def test_keeps_the_best_step_breaks_ties_by_nll_and_loads_its_exact_weights(tmp_path):
    best = BestCheckpoint(tmp_path / "best")
    unets = [tiny_joint_unet(seed=seed) for seed in range(4)]
    assert best.update(100, unets[0], scores(0.50, 1.0))
    assert best.update(200, unets[1], scores(0.70, 0.9))
    assert not best.update(300, unets[2], scores(0.60, 0.1))  # lower accuracy loses whatever its NLL
    assert best.update(400, unets[3], scores(0.70, 0.8))  # tie on accuracy: the lower NLL wins
    assert json.loads((tmp_path / "best" / "best.json").read_text())["step"] == 400
    target = tiny_joint_unet(seed=9)
    assert best.load_into(target) == 400
    for name, value in unets[3].state_dict().items():
        assert torch.equal(target.state_dict()[name], value), name
    # a resumed run reads the best back and keeps comparing against it
    resumed = BestCheckpoint(tmp_path / "best", resumed_step=450)
    assert resumed.best["step"] == 400 and not resumed.update(500, unets[0], scores(0.65, 0.1))


def test_a_new_run_or_one_resumed_before_the_best_step_does_not_inherit_it(tmp_path):
    """A best left by an earlier run in the folder must not be saved as this run's model."""
    earlier = BestCheckpoint(tmp_path / "best")
    assert earlier.update(300, tiny_joint_unet(seed=0), scores(0.95, 0.1))
    resumed_earlier = BestCheckpoint(tmp_path / "best", resumed_step=200)  # step 300 is trained again
    assert resumed_earlier.best is None and not (tmp_path / "best").exists()
    assert BestCheckpoint(tmp_path / "best", resumed_step=200).update(300, tiny_joint_unet(seed=0), scores(0.9, 0.1))
    new_run = BestCheckpoint(tmp_path / "best")
    assert new_run.best is None and not (tmp_path / "best").exists()
    assert new_run.update(4, tiny_joint_unet(seed=1), scores(0.50, 1.0))  # its own first step is its best
    target = tiny_joint_unet(seed=9)
    assert new_run.load_into(target) == 4
    assert torch.equal(target.state_dict()["conv_in.weight"], tiny_joint_unet(seed=1).state_dict()["conv_in.weight"])


def test_nll_metric_and_a_kill_between_the_two_renames(tmp_path):
    best = BestCheckpoint(tmp_path / "best", metric="nll")
    assert best.update(1, tiny_joint_unet(seed=0), scores(0.9, 0.5))
    assert best.update(2, tiny_joint_unet(seed=1), scores(0.1, 0.4))  # only the NLL counts
    assert not best.update(3, tiny_joint_unet(seed=2), scores(1.0, 0.45))
    os.replace(tmp_path / "best", tmp_path / "best.old")  # killed after moving the old best aside
    recovered = BestCheckpoint(tmp_path / "best", metric="nll", resumed_step=3)
    assert recovered.best["step"] == 2 and not (tmp_path / "best.old").exists()


def test_bad_metric_and_nothing_saved_yet(tmp_path):
    with pytest.raises(ValueError, match="best-checkpoint metric"):
        BestCheckpoint(tmp_path / "best", metric="accuracy")
    with pytest.raises(ValueError, match="No best checkpoint"):
        BestCheckpoint(tmp_path / "best").load_into(tiny_joint_unet())
