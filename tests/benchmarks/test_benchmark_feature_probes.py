import json
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

from tiny_models import tiny_joint_pipeline

ROOT = Path(__file__).resolve().parents[2]


def digits_npz(path: Path) -> Path:
    """Scikit-learn's 8x8 digits in the MedMNIST layout (uint8), split 800 / 200 / 200."""
    data = load_digits()
    images = (data.images * 15).astype(np.uint8)
    labels = data.target[:, None]
    np.savez(
        path,
        train_images=images[:800], train_labels=labels[:800],
        val_images=images[800:1000], val_labels=labels[800:1000],
        test_images=images[1000:1200], test_labels=labels[1000:1200],
    )  # fmt: skip
    return path


def test_probes_of_a_tiny_model_on_the_validation_split(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    sys.modules.pop("benchmark_feature_probes", None)
    import benchmark_feature_probes

    tiny_joint_pipeline().save_pretrained(tmp_path / "model")
    output = tmp_path / "probes.json"
    benchmark_feature_probes.main([
        "--models", f"tiny={tmp_path / 'model'}", "--npz_path", str(digits_npz(tmp_path / "digits.npz")),
        "--num_labeled", "30", "--all_labels", "--timesteps", "0", "5", "--clean_input", "--output", str(output),
    ])  # fmt: skip
    rows = json.loads(output.read_text())["rows"]
    pixels = {r["labels"]: r for r in rows if r["model"] == "pixels"}
    assert sorted(pixels) == ["30", "all"]
    # all 720 training labels beat 30 of them, for the pixels and for the features of the encoder
    assert pixels["all"]["balanced_accuracy"] > pixels["30"]["balanced_accuracy"] > 0.3
    encoder = {(r["labels"], r["timestep"], r["input"]): r for r in rows if r["blocks"] == "encoder"}
    assert sorted(encoder) == sorted(
        (labels, t, kind) for labels in ("30", "all") for t, kind in ((0, "x_t"), (5, "x_t"), (5, "x_0"))
    )
    assert encoder[("all", 0, "x_t")]["balanced_accuracy"] > encoder[("30", 0, "x_t")]["balanced_accuracy"]
    heads = [r for r in rows if r["blocks"] == "head"]
    assert len(heads) == 6 and all(r["balanced_accuracy"] < 0.3 for r in heads)  # an untrained head
