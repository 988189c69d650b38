"""The output folder is checked before any training time is spent."""

import pytest

from diffusers_joint.training import check_output_dir, remove_earlier_checkpoints
from diffusers_joint.training import output_dir as output_dir_module


def test_output_dir_problems_are_reported_before_training(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    # running as root, chmod cannot make a folder unwritable: a path under a regular file cannot be created by anyone
    with pytest.raises(PermissionError, match=r"--output_dir .*a_file/out cannot be created or written"):
        check_output_dir(blocker / "out")

    def read_only(*a, **k):
        raise OSError(30, "Read-only file system")

    with monkeypatch.context() as patch:
        patch.setattr(output_dir_module.tempfile, "TemporaryFile", read_only)
        with pytest.raises(PermissionError, match="cannot be created or written.*Read-only file system"):
            check_output_dir(tmp_path / "out")

    class Usage:
        free = 5 * 2**20

    with monkeypatch.context() as patch:
        patch.setattr(output_dir_module.shutil, "disk_usage", lambda path: Usage)
        with pytest.raises(OSError, match=r"Only 5.0 MiB free in .*expected at least 100 MiB"):
            check_output_dir(tmp_path / "out")
    check_output_dir(tmp_path / "out")  # a usable folder passes


def test_a_trained_pipeline_is_replaced_only_when_asked(tmp_path):
    (tmp_path / "model_index.json").write_text("{}")
    with pytest.raises(FileExistsError, match="already holds a trained pipeline.*--overwrite_output_dir"):
        check_output_dir(tmp_path)
    check_output_dir(tmp_path, overwrite=True)
    # resuming a finished run that wrote no checkpoint would train a new model over it
    with pytest.raises(FileExistsError, match="trained pipeline but no checkpoint to resume from.*--overwrite_output"):
        check_output_dir(tmp_path, resume=True)
    (tmp_path / "checkpoint-4").mkdir()
    (tmp_path / "checkpoint-4" / "model.safetensors").write_bytes(b"x")
    check_output_dir(tmp_path, resume=True)
    assert (tmp_path / "model_index.json").read_text() == "{}"  # checking never touches what is there


def test_another_model_file_marks_a_trained_model(tmp_path):
    (tmp_path / "diffusion_pytorch_model.safetensors").write_text("")
    check_output_dir(tmp_path)  # not a pipeline folder
    with pytest.raises(
        FileExistsError, match=r"already holds a trained model \(diffusion_pytorch_model.safetensors\)"
    ):
        check_output_dir(tmp_path, model_file="diffusion_pytorch_model.safetensors")
    with pytest.raises(FileExistsError, match="no checkpoint to resume from"):
        check_output_dir(tmp_path, resume=True, model_file="diffusion_pytorch_model.safetensors")


def test_checkpoints_of_an_earlier_run_are_resumed_or_removed_never_mixed_with_a_new_run(tmp_path):
    for name in ("checkpoint-2", "checkpoint-4", "logs"):
        (tmp_path / name).mkdir()
    (tmp_path / "checkpoint-4" / "model.safetensors").write_bytes(b"x")
    with pytest.raises(FileExistsError, match=r"checkpoints of an earlier run \(checkpoint-2, checkpoint-4\)"):
        check_output_dir(tmp_path)
    check_output_dir(tmp_path, resume=True)
    check_output_dir(tmp_path, overwrite=True)
    assert [p.name for p in remove_earlier_checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs"]  # only the checkpoints go
    check_output_dir(tmp_path)  # a new run may now start there
