import json
from pathlib import Path

import kornia
import pytest
import torch


def test_the_curve_is_read_from_the_log_and_the_final_results(tmp_path, load_benchmark):
    read_curve = load_benchmark("benchmark_learning_curve").read_curve
    log = tmp_path / "run.log"
    log.write_text(
        "Steps: 10%|#  | 1/10 [00:01<00:09]\r"
        "2026-12-05 12:00:00,000 - INFO - __main__ - step 2: eval/accuracy=0.5000, eval/balanced_accuracy=0.4000\n"
        "noise\n"
        "2026-12-05 12:00:01,000 - INFO - __main__ - step 4: eval/accuracy=0.7000, eval/balanced_accuracy=0.6500\n"
    )
    results = tmp_path / "eval_results.json"
    results.write_text(json.dumps({"step": 6, "accuracy": 0.8, "balanced_accuracy": 0.75, "calibration": {}}))
    assert read_curve(log, results) == {
        "step": [2, 4, 6], "accuracy": [0.5, 0.7, 0.8], "balanced_accuracy": [0.4, 0.65, 0.75],
    }  # fmt: skip
    assert read_curve(log)["step"] == [2, 4]
    empty = tmp_path / "empty.log"
    empty.write_text("no validation here\n")
    with pytest.raises(ValueError, match="--validation_steps"):
        read_curve(empty)


@pytest.mark.slow
def test_a_short_run_gives_a_curve_per_method(tmp_path, digits_npz, load_benchmark):
    main = load_benchmark("benchmark_learning_curve").main
    output = tmp_path / "curves.json"
    main([
        "--npz_path", str(digits_npz), "--eval_split", "val", "--methods", "joint", "label_only",
        "--num_labeled", "30", "--max_train_steps", "4", "--validation_steps", "2", "--train_batch_size", "8",
        "--runs_dir", str(tmp_path / "runs"), "--output", str(output), "--plot", str(tmp_path / "curves.png"),
        "--", "--num_validation_samples_per_class", "1", "--validation_inference_steps", "2",
        "--block_out_channels", "8", "16", "--classifier_hidden_dims", "16",
    ])  # fmt: skip
    record = json.loads(output.read_text())
    # A seeded run is reproducible only with the same releases (kornia 0.9.2 changed RandAugment's operations).
    assert record["versions"]["kornia"] == kornia.__version__ and record["versions"]["torch"] == torch.__version__
    curves = record["curves"]
    assert sorted(curves) == ["joint/30/seed0", "label_only/30/seed0"]
    for curve in curves.values():
        assert curve["step"] == [2, 4]
        assert all(0 <= value <= 1 for value in curve["balanced_accuracy"])
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_a_run_folder_made_with_other_flags_is_refused_not_reused(tmp_path, load_benchmark, monkeypatch, capsys):
    bench = load_benchmark("benchmark_learning_curve")
    trained = []

    def fake_training(command, **kwargs):  # what train_joint.py leaves: results and a validation line in the log
        run_dir = command[command.index("--output_dir") + 1]
        trained.append(run_dir)
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        (Path(run_dir) / "eval_results.json").write_text(json.dumps({"step": 4, "balanced_accuracy": 0.5}))
        kwargs["stdout"].write("step 2: eval/balanced_accuracy=0.4000\n")

    monkeypatch.setattr(bench.subprocess, "run", fake_training)
    flags = ["--npz_path", "d.npz", "--methods", "joint", "--runs_dir", str(tmp_path / "runs"), "--validation_steps",
             "2", "--max_train_steps", "4"]  # fmt: skip
    bench.main(flags)
    run_dir = tmp_path / "runs" / "joint-50-seed0"
    assert trained == [str(run_dir)]
    recorded = json.loads((run_dir / "benchmark_run_flags.json").read_text())["train_joint_flags"]
    assert recorded[recorded.index("--max_train_steps") + 1] == "4" and "--output_dir" not in recorded

    bench.main(flags)  # the same flags: reused
    assert len(trained) == 1
    with pytest.raises(
        SystemExit,
        match=r"joint-50-seed0 holds results made with other flags than this run's \(--max_train_steps 4 -> 8\)",
    ):
        bench.main([*flags, "--max_train_steps", "8"])
    assert len(trained) == 1


def test_a_run_folder_without_a_record_is_reused_with_a_warning(tmp_path, load_benchmark, capsys):
    utils = load_benchmark("benchmark_utils")
    utils.check_reused_run(tmp_path, {"train_joint_flags": ["--seed", "0"]})
    assert "without checking its flags: it has no benchmark_run_flags.json" in capsys.readouterr().out
    utils.write_run_flags(tmp_path, {"train_joint_flags": ["--seed", "0", "--fixmatch"]})
    utils.check_reused_run(tmp_path, {"train_joint_flags": ["--fixmatch", "--seed", "0"]})  # order does not matter
    with pytest.raises(SystemExit, match="--fixmatch set -> absent"):
        utils.check_reused_run(tmp_path, {"train_joint_flags": ["--seed", "0"]})
