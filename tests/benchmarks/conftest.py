# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def load_benchmark():
    """Imports a script of benchmarks/ by name, with its helper modules importable as when it runs as a script."""

    def load(name: str):
        if str(BENCHMARKS) not in sys.path:
            sys.path.insert(0, str(BENCHMARKS))
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def digits_npz(tmp_path) -> Path:
    """Scikit-learn's 8x8 digits in the MedMNIST layout (uint8), split 800 / 200 / 200."""
    data = load_digits()
    images = (data.images * 15).astype(np.uint8)
    labels = data.target[:, None]
    path = tmp_path / "digits.npz"
    np.savez(
        path,
        train_images=images[:800], train_labels=labels[:800],
        val_images=images[800:1000], val_labels=labels[800:1000],
        test_images=images[1000:1200], test_labels=labels[1000:1200],
    )  # fmt: skip
    return path
