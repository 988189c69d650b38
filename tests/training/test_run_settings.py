"""A checkpoint records the flags that decide what its run trains; a resume that changes one is refused."""

import argparse
import json
import logging

import pytest

from diffusers_joint.training import RUN_SETTINGS_FILE, check_resumed_settings, run_settings


def settings(**changes) -> dict:
    args = argparse.Namespace(
        seed=0, num_labeled=50, learning_rate=1e-3, block_out_channels=(8, 16), max_train_steps=20,
        npz_path="data/x.npz", output_dir="out", report_to="none", hub_token="secret", checkpointing_steps=10,
    )  # fmt: skip
    return run_settings(argparse.Namespace(**{**vars(args), **changes}))


def test_the_recorded_settings_leave_out_where_the_run_writes_and_never_hold_the_token():
    recorded = settings()
    assert "seed" in recorded and "max_train_steps" in recorded
    assert not {"hub_token", "output_dir", "report_to", "checkpointing_steps"} & recorded.keys()


def test_a_resume_with_changed_training_flags_is_refused_naming_each(tmp_path):
    (tmp_path / RUN_SETTINGS_FILE).write_text(json.dumps(settings()))
    check_resumed_settings(tmp_path, settings())  # the same flags (a tuple is recorded as a list)
    check_resumed_settings(tmp_path, settings(output_dir="elsewhere", report_to="tensorboard", checkpointing_steps=5))
    with pytest.raises(ValueError, match=r"--num_labeled 50 -> 500; --seed 0 -> 1\. Pass the flags it was started"):
        check_resumed_settings(tmp_path, settings(num_labeled=500, seed=1))


def test_a_longer_run_or_moved_data_is_resumed_with_a_warning(tmp_path, caplog):
    (tmp_path / RUN_SETTINGS_FILE).write_text(json.dumps(settings()))
    with caplog.at_level(logging.WARNING):
        check_resumed_settings(tmp_path, settings(max_train_steps=40, npz_path="/elsewhere/x.npz"))
    assert "--max_train_steps 20 -> 40" in caplog.text and "learning-rate schedule" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        check_resumed_settings(tmp_path / "missing", settings())  # a checkpoint from before settings were recorded
    assert "records no run settings" in caplog.text
