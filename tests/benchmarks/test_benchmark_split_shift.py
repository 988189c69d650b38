# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""benchmark_split_shift.py: a shift of brightness and contrast alone disappears under per-image normalisation."""

import argparse

import numpy as np
from sklearn.datasets import load_digits


def test_per_image_normalisation_removes_a_contrast_shift_that_the_raw_pixels_show(tmp_path, load_benchmark):
    benchmark = load_benchmark("benchmark_split_shift")
    data = load_digits()
    order = np.random.default_rng(0).permutation(len(data.images))  # the same writers in both splits
    images, labels = data.images[order], data.target[order]
    np.savez(
        tmp_path / "shifted.npz",
        train_images=(images[:800] * 15).astype(np.uint8), train_labels=labels[:800],
        test_images=(images[800:1000] * 8 + 60).astype(np.uint8), test_labels=labels[800:1000],  # another grey scale
    )  # fmt: skip
    args = argparse.Namespace(
        npz_path=str(tmp_path / "shifted.npz"), csv_path=None, per_image_normalizations=["minmax", "zscore"]
    )
    result = benchmark.measure(args, seed=0)
    assert result["validation_vs_test"]["roc_auc"] > 0.95
    for name in ("minmax", "zscore"):
        assert result["per_image_normalizations"][name]["validation_vs_test"]["roc_auc"] < 0.6, name

    summary = benchmark.summarize_shift([result["validation_vs_test"]] * 2)
    assert summary["roc_auc"] == {"mean": result["validation_vs_test"]["roc_auc"], "std": 0.0}
    assert len(summary["roc_auc_per_class"]) == 10
