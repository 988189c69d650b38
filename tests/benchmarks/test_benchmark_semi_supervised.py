# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression


def test_the_pixel_baseline_reads_the_data_as_the_training_runs_do(load_benchmark, digits_npz, tmp_path, monkeypatch):
    """`-- --intensity_normalization minmax --eval_split val` reach the pixel baseline as they reach train_joint.py."""
    bench = load_benchmark("benchmark_semi_supervised")
    seen = {}

    class RecordingLogisticRegression(LogisticRegression):
        def fit(self, X, y):
            seen["fit"] = X
            return super().fit(X, y)

        def predict_proba(self, X):
            seen["predict"] = X
            return super().predict_proba(X)

    monkeypatch.setattr(bench, "LogisticRegression", RecordingLogisticRegression)
    argv = ["--npz_path", str(digits_npz), "--runs_dir", str(tmp_path / "runs"), "--budgets", "50", "--seeds", "0"]
    args = bench.parse_args([*argv, "--methods", "sklearn", "--", "--intensity_normalization", "minmax"])
    args.train_args += ["--eval_split", "val"]
    results = bench.sklearn_run(args, "50", seed=0)

    # minmax maps each image's own darkest and brightest pixel to -1 and 1; the dtype range (0-255) would not reach 1
    assert seen["fit"].shape == (50, 64)
    np.testing.assert_allclose(seen["fit"].min(axis=1), -1.0)
    np.testing.assert_allclose(seen["fit"].max(axis=1), 1.0)
    with np.load(digits_npz) as data:
        val = data["val_images"].reshape(200, -1).astype(np.float64)
    low, high = val.min(axis=1, keepdims=True), val.max(axis=1, keepdims=True)
    np.testing.assert_allclose(seen["predict"], 2 * (val - low) / (high - low) - 1, atol=1e-6)
    assert results["balanced_accuracy"] > 0.8  # 50 digits, 10 classes: a linear model on pixels does this well


def test_the_pixel_baseline_writes_a_summary_and_is_not_repeated(load_benchmark, digits_npz, tmp_path, monkeypatch):
    bench = load_benchmark("benchmark_semi_supervised")
    runs = tmp_path / "runs"
    argv = ["--npz_path", str(digits_npz), "--runs_dir", str(runs), "--budgets", "50", "all", "--seeds", "0", "1"]
    monkeypatch.setattr("sys.argv", ["benchmark_semi_supervised.py", *argv, "--methods", "sklearn"])
    bench.main()
    summary = json.loads((runs / "summary.json").read_text())["summary"]
    assert summary["sklearn/50"]["seeds"] == [0, 1]
    assert summary["sklearn/all"]["balanced_accuracy"]["mean"] > summary["sklearn/50"]["balanced_accuracy"]["mean"]

    def refuse(*args, **kwargs):
        raise AssertionError("a run whose eval_results.json exists was repeated")

    monkeypatch.setattr(bench, "sklearn_run", refuse)
    bench.main()
    assert json.loads((runs / "summary.json").read_text())["summary"] == summary


def test_exactly_one_data_file_is_required(load_benchmark, monkeypatch):
    bench = load_benchmark("benchmark_semi_supervised")
    monkeypatch.setattr("sys.argv", ["benchmark_semi_supervised.py", "--methods", "sklearn"])
    with pytest.raises(SystemExit, match="exactly one of --npz_path or --csv_path"):
        bench.main()


def test_a_run_folder_made_with_other_flags_is_refused_not_reused(load_benchmark, digits_npz, tmp_path, monkeypatch):
    bench = load_benchmark("benchmark_semi_supervised")
    runs = tmp_path / "runs"
    argv = ["benchmark_semi_supervised.py", "--npz_path", str(digits_npz), "--runs_dir", str(runs), "--budgets", "50",
            "--seeds", "0", "--methods", "sklearn"]  # fmt: skip
    monkeypatch.setattr("sys.argv", argv)
    bench.main()
    record = json.loads((runs / "sklearn-50-seed0" / "benchmark_run_flags.json").read_text())
    assert record["train_joint_flags"][-4:] == ["--num_labeled", "50", "--seed", "0"]

    monkeypatch.setattr("sys.argv", [*argv, "--", "--intensity_normalization", "minmax"])
    with pytest.raises(SystemExit) as refused:
        bench.main()
    message = str(refused.value)
    assert f"{runs / 'sklearn-50-seed0'} holds results made with other flags" in message
    assert "--intensity_normalization absent -> minmax" in message and "Pass another --runs_dir, or delete" in message

    monkeypatch.setattr("sys.argv", argv)  # the same flags: reused
    monkeypatch.setattr(bench, "sklearn_run", lambda *a, **kw: pytest.fail("a run with the same flags was repeated"))
    bench.main()


def test_a_training_run_records_its_command_line_and_max_train_steps(load_benchmark, tmp_path):
    bench = load_benchmark("benchmark_semi_supervised")
    args = bench.parse_args(["--npz_path", "d.npz", "--max_train_steps", "7", "--", "--snr_gamma", "0"])
    record = bench.run_record(args, "label_only", "all", 1)
    flags = record["train_joint_flags"]
    assert "--output_dir" not in flags and flags[flags.index("--max_train_steps") + 1] == "7"
    assert flags[-2:] == ["--snr_gamma", "0"] and record["imbalance_ratio"] is None
