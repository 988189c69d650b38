# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""benchmarks/benchmark_calibration.py: models without their data, or no pool model, are refused before any work."""

import pytest


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--npz_model", "m"], "--npz_model m needs --npz_path, the data it was trained on"),
        (["--csv_model", "m"], "--csv_model m needs --csv_path, the data it was trained on"),
        (["--csv_model", "m", "--csv_path", "d.csv", "--overconfident_npz_model", "o"],
         "--overconfident_npz_model o needs --npz_path"),
        (["--csv_model", "m", "--csv_path", "d.csv", "--npz_path", "d.npz"],
         "--npz_path is the data of --npz_model / --overconfident_npz_model: pass the model too, or drop it"),
        (["--digits_model", "m"], "pass at least one (--digits_model is not one: it is reported only)"),
        ([], "the rule is chosen on the pools of --npz_model and --csv_model: pass at least one."),
    ],
)  # fmt: skip
def test_models_need_their_data_and_a_pool_model(load_benchmark, capsys, flags, message):
    benchmark = load_benchmark("benchmark_calibration")
    with pytest.raises(SystemExit):
        benchmark.parse_args(flags)
    assert message in capsys.readouterr().err


def test_a_pool_model_with_its_data_is_accepted(load_benchmark):
    benchmark = load_benchmark("benchmark_calibration")
    args = benchmark.parse_args(["--npz_model", "m", "--npz_path", "d.npz", "--digits_model", "digits"])
    assert (args.npz_model, args.npz_path, args.digits_model) == ("m", "d.npz", "digits")
