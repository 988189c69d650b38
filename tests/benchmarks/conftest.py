import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.fixture
def benchmark_module(monkeypatch):
    """Import a script of benchmarks/ afresh, with that folder on the path as when it runs."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))

    def load(name: str):
        sys.modules.pop(name, None)
        return __import__(name)

    return load
