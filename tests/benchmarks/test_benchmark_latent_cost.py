# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The latent-against-pixel cost benchmark runs end to end at a tiny size and writes every figure it promises."""

import json
import math

import pytest

TINY = [
    "--resolution", "16", "--batch_size", "2", "--repeats", "1", "--sampling_batch_size", "2",
    "--sampling_steps", "2", "--block_out_channels", "8", "16", "--vae_block_out_channels", "8", "8", "8", "8",
    "--device", "cpu",
]  # fmt: skip
CASES = {
    "train_step_pixel",
    "train_step_latent_with_encode",
    "train_step_latent_cached",
    "vae_encode",
    "sampling_pixel",
    "sampling_latent",
    "vae_decode",
}


def test_tiny_run_writes_ratios_throughput_and_memory(tmp_path, load_benchmark):
    benchmark = load_benchmark("benchmark_latent_cost")
    out = tmp_path / "latent_cost.json"
    benchmark.main(TINY + ["--json", str(out)])
    report = json.loads(out.read_text())
    for key in (
        "step_ratio_latent_vs_pixel_16",
        "step_ratio_latent_cached_vs_pixel_16",
        "sampling_ratio_latent_vs_pixel_16",
    ):
        assert math.isfinite(report[key]) and report[key] > 0, key
    for key in ("median_seconds", "images_per_second", "peak_memory_mib", "peak_memory_rise_mib"):
        assert set(report[key]) == CASES, key
    assert all(math.isfinite(v) and v > 0 for v in report["images_per_second"].values())
    assert all(v > 0 for v in report["peak_memory_mib"].values())
    assert report["command"].startswith("python benchmarks/benchmark_latent_cost.py --resolution 16")
    config = report["config"]
    assert config["device"] == "cpu" and config["precision"] == "fp32" and config["threads"] >= 1
    assert config["torch"] and config["latent_size"] == 2 and config["vae_scale_factor"] == 8
    # the same UNet widths in both spaces, only the inputs differ
    pixel, latent = config["pixel_unet"], config["latent_unet"]
    for name in ("block_out_channels", "layers_per_block", "down_block_types", "norm_num_groups"):
        assert pixel[name] == latent[name], name
    assert (pixel["sample_size"], pixel["in_channels"]) == (16, 1)
    assert (latent["sample_size"], latent["in_channels"]) == (2, 4)


def test_a_resolution_the_autoencoder_cannot_divide_is_refused(capsys, load_benchmark):
    benchmark = load_benchmark("benchmark_latent_cost")
    with pytest.raises(SystemExit) as error:
        benchmark.parse_args(["--resolution", "20", "--downsampling_factor", "8"])
    assert error.value.code == 2
    assert "--resolution 20 is not a multiple of --downsampling_factor 8" in capsys.readouterr().err
