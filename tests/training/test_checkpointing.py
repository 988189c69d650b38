import os

import pytest
import torch
from safetensors.torch import save_file

from diffusers_joint.training import (
    JointDiffusionObjective,
    check_checkpoint_fits,
    finalize_checkpoint,
    list_checkpoints,
    remove_incomplete_checkpoints,
    resolve_checkpoint,
    temporary_checkpoint_dir,
)
from tiny_models import tiny_joint_unet


def write_checkpoint(root, step, total_limit=2):
    tmp = temporary_checkpoint_dir(root, step)
    tmp.mkdir()
    (tmp / "model.safetensors").write_text(f"weights of step {step}")
    return finalize_checkpoint(tmp, total_limit=total_limit)


def test_pruning_never_removes_the_checkpoint_just_written(tmp_path):
    for step in (2, 4, 6):
        write_checkpoint(tmp_path, step, total_limit=None)
    # re-saving step 4 (a resume from checkpoint-2) with a limit of 1: the new copy of step 4 is the one kept
    final = write_checkpoint(tmp_path, 4, total_limit=1)
    assert list_checkpoints(tmp_path) == [final] and (final / "model.safetensors").read_text() == "weights of step 4"
    for limit in (0, -1):
        with pytest.raises(ValueError, match=f"total_limit must be at least 1 .*got {limit}"):
            write_checkpoint(tmp_path, 8, total_limit=limit)
        assert list_checkpoints(tmp_path) == [final]


def test_checkpoints_are_published_atomically_and_rotated(tmp_path):
    for step in (100, 200, 300):
        write_checkpoint(tmp_path, step)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-200", "checkpoint-300"]
    assert not list(tmp_path.glob("*.tmp"))
    # a crash half-way through writing checkpoint-400 leaves only a .tmp folder, which is ignored
    partial = temporary_checkpoint_dir(tmp_path, 400)
    partial.mkdir()
    assert resolve_checkpoint(tmp_path, "latest").name == "checkpoint-300"
    # the next attempt at the same step starts from a clean folder
    assert not temporary_checkpoint_dir(tmp_path, 400).exists()


def test_numeric_order_not_lexical(tmp_path):
    for step in (900, 1000):
        write_checkpoint(tmp_path, step)
    assert resolve_checkpoint(tmp_path, "latest").name == "checkpoint-1000"


def test_resaving_a_step_replaces_it(tmp_path):
    write_checkpoint(tmp_path, 5)
    tmp = temporary_checkpoint_dir(tmp_path, 5)
    tmp.mkdir()
    (tmp / "model.safetensors").write_text("new")
    final = finalize_checkpoint(tmp)
    assert (final / "model.safetensors").read_text() == "new"


def test_resolve(tmp_path):
    assert resolve_checkpoint(tmp_path, "latest") is None
    write_checkpoint(tmp_path, 7)
    assert resolve_checkpoint(tmp_path, "checkpoint-7").name == "checkpoint-7"
    with pytest.raises(ValueError, match=r"available: \['checkpoint-7'\]"):
        resolve_checkpoint(tmp_path, "checkpoint-8")


def test_remove_incomplete_checkpoints_after_a_kill(tmp_path):
    write_checkpoint(tmp_path, 1)
    write_checkpoint(tmp_path, 2)
    # killed while writing step 3: a partial .tmp folder
    (tmp_path / "checkpoint-3.tmp").mkdir()
    (tmp_path / "checkpoint-3.tmp" / "model.safetensors").write_text("half")
    # killed while replacing step 2 (finalize_checkpoint moved the old copy aside, the new one not yet in place)
    os.replace(tmp_path / "checkpoint-2", tmp_path / "checkpoint-2.old")
    (tmp_path / "checkpoint-2.tmp").mkdir()
    assert resolve_checkpoint(tmp_path, "latest").name == "checkpoint-1"
    removed = remove_incomplete_checkpoints(tmp_path)
    assert sorted(p.name for p in removed) == ["checkpoint-2.tmp", "checkpoint-3.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-1", "checkpoint-2"]
    assert (tmp_path / "checkpoint-2" / "model.safetensors").read_text() == "weights of step 2"  # the old copy is back
    # an .old next to its complete replacement is just removed
    (tmp_path / "checkpoint-1.old").mkdir()
    remove_incomplete_checkpoints(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-1", "checkpoint-2"]
    assert remove_incomplete_checkpoints(tmp_path / "missing") == []


def tiny_objective(num_classes):
    unet = tiny_joint_unet(num_classes, seed=None, classifier_hidden_dims=())
    return JointDiffusionObjective(unet)


def test_check_checkpoint_fits_names_what_differs(tmp_path):
    save_file(tiny_objective(3).state_dict(), tmp_path / "model.safetensors")
    check_checkpoint_fits(tmp_path, tiny_objective(3))
    with pytest.raises(
        ValueError, match=r"different model .*unet.classifier.layers.0.weight: saved \(3, 40\), model \(10, 40\)"
    ):
        check_checkpoint_fits(tmp_path, tiny_objective(10))
    with pytest.raises(ValueError, match=r"missing \['0.unet.*unexpected \['unet."):
        check_checkpoint_fits(tmp_path, torch.nn.Sequential(tiny_objective(3)))
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 4)
    with pytest.raises(ValueError, match="the checkpoint is corrupted"):
        check_checkpoint_fits(tmp_path, tiny_objective(3))
    with pytest.raises(ValueError, match="holds no model.safetensors"):
        check_checkpoint_fits(tmp_path / "nowhere", tiny_objective(3))
