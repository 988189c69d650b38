import pytest

from diffusers_joint.training import (
    finalize_checkpoint,
    list_checkpoints,
    resolve_checkpoint,
    temporary_checkpoint_dir,
)


def write_checkpoint(root, step):
    tmp = temporary_checkpoint_dir(root, step)
    tmp.mkdir()
    (tmp / "model.safetensors").write_text(f"weights of step {step}")
    return finalize_checkpoint(tmp, total_limit=2)


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
