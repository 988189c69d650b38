# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
train_joint.py on medical image files: 16-bit PNGs and DICOM made from real PneumoniaMNIST X-rays (../shared/data), a
metadata.csv with two label columns, and a folder with a corrupt PNG (tiny model, a few steps).
"""

import json
import re
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from train_script_utils import ROOT, launch

from diffusers_joint import JointDiffusionPipeline
from medical_files import PATIENT_DATA, write_dicom

pytestmark = pytest.mark.slow  # each test trains (or starts) a tiny model through `accelerate launch`: 10-30 s

PNEUMONIA = ROOT.parent / "shared" / "data" / "pneumoniamnist" / "pneumoniamnist_balanced_28.npz"


@pytest.fixture(scope="module")
def xrays():
    """40 training and 20 evaluation PneumoniaMNIST X-rays (uint8, 28x28), half of each class."""
    if not PNEUMONIA.is_file():
        pytest.skip(f"{PNEUMONIA} not found: the shared real data (../shared/data) is absent here")
    splits = {}
    with np.load(PNEUMONIA) as data:
        for split, key, count in (("train", "train", 20), ("test", "val", 10)):
            labels = data[f"{key}_labels"][:, 0]
            keep = np.sort(np.concatenate([np.flatnonzero(labels == c)[:count] for c in (0, 1)]))
            splits[split] = (data[f"{key}_images"][keep], labels[keep])
    return splits


def _folder(root: Path, xrays, write) -> list[tuple[Path, np.ndarray]]:
    """`root/<split>/<label>/<i>.<ext>` written by `write(path_without_suffix, image)`; returns (path, image) pairs."""
    written = []
    for split, (images, labels) in xrays.items():
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = root / split / ("pneumonia" if label else "normal")
            folder.mkdir(parents=True, exist_ok=True)
            written.append((write(folder / f"{i:03d}", image), image))
    return written


def _train_flags(out):
    steps = ["--max_train_steps", "3", "--checkpointing_steps", "0", "--train_batch_size", "8"]
    return ["--output_dir", str(out), *steps]


@pytest.mark.shared_data
def test_16_bit_copies_of_real_xrays_train_and_classify_like_the_8_bit_originals(tmp_path, xrays):
    def write16(stem, image):
        path = stem.with_suffix(".png")
        PIL.Image.fromarray(image.astype(np.uint16) * 257).save(path)  # 0-65535, as X-ray exports are
        return path

    written = _folder(tmp_path / "xray16", xrays, write16)
    out = tmp_path / "model"
    launch("--train_data_dir", str(tmp_path / "xray16"), *_train_flags(out))
    assert json.loads((out / "model_index.json").read_text())["intensity_normalization"] == "dtype"
    pipe = JointDiffusionPipeline.from_pretrained(out)
    paths = [str(path) for path, _ in written]
    probs16 = pipe.classify(paths).probs
    probs8 = pipe.classify([image for _, image in written]).probs
    difference = (probs16 - probs8).abs().max().item()
    print(f"max probability difference, 16-bit files vs 8-bit originals: {difference:.3g}")
    assert difference <= 2e-3
    assert probs8.std(dim=0).max() > 0  # the images are told apart, not collapsed to one input


def _write_dicom(stem: Path, image: np.ndarray, monochrome1: bool) -> Path:
    """A DICOM file of a real X-ray as 12-bit data in 16-bit words, with (made-up) patient data."""
    stored = np.round(image.astype(np.float64) * 4095 / 255).astype(np.uint16)
    if monochrome1:
        stored = 4095 - stored
    return write_dicom(stem.with_suffix(".dcm"), stored, bits_stored=12, monochrome1=monochrome1)


@pytest.mark.shared_data
def test_dicom_files_of_real_xrays_train_and_classify_without_leaking_patient_data(tmp_path, xrays):
    pytest.importorskip("pydicom", reason="DICOM support is the `dicom` extra: pip install -e '.[dicom]'")
    counter = iter(range(10**6))
    written = _folder(tmp_path / "dicom", xrays, lambda stem, image: _write_dicom(stem, image, next(counter) % 4 == 0))
    out = tmp_path / "model"
    result = launch("--train_data_dir", str(tmp_path / "dicom"), *_train_flags(out))
    pipe = JointDiffusionPipeline.from_pretrained(out)
    paths = [str(path) for path, _ in written[:8]]
    probs = pipe.classify(paths).probs
    # 12 bits stored: the dtype normalisation reads 0-4095 as the full range, MONOCHROME1 files inverted back
    twelve_bit = [np.round(image.astype(np.float64) * 4095 / 255) / 4095 for _, image in written[:8]]
    stored = torch.from_numpy(np.stack(twelve_bit)[:, None]).float()
    torch.testing.assert_close(probs, pipe.classify(stored).probs, atol=1e-5, rtol=0)

    outputs = [result.stdout, result.stderr]
    outputs += [p.read_text(errors="ignore") for p in out.rglob("*") if p.is_file() and p.suffix != ".safetensors"]
    for secret in PATIENT_DATA:
        assert not any(secret in text for text in outputs), secret


def test_a_corrupt_png_stops_the_run_before_the_first_step_and_is_named(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i in range(20):
        (tmp_path / "data" / str(digits.target[i] % 2)).mkdir(parents=True, exist_ok=True)
        image = (digits.images[i] * 16).clip(0, 255).astype(np.uint8)
        PIL.Image.fromarray(image).save(tmp_path / "data" / str(digits.target[i] % 2) / f"{i}.png")
    good = (tmp_path / "data" / "0" / "0.png").read_bytes()
    (tmp_path / "data" / "1" / "scan_0042.png").write_bytes(good[: len(good) // 2])
    out = tmp_path / "out"
    result = launch("--train_data_dir", str(tmp_path / "data"), *_train_flags(out), check=False)
    assert result.returncode != 0
    assert "1 of 21 images cannot be used" in result.stderr
    assert f"{tmp_path / 'data' / '1' / 'scan_0042.png'}: " in result.stderr and "truncated" in result.stderr
    assert "Steps" not in result.stderr and not (out / "model_index.json").exists()

    skipped = launch("--train_data_dir", str(tmp_path / "data"), *_train_flags(out), "--skip_bad_images")
    assert "Skipping 1 images" in skipped.stderr and "scan_0042.png" in skipped.stderr
    assert (out / "model_index.json").exists()


def test_a_metadata_csv_with_two_label_columns_trains_a_multi_label_model(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    (tmp_path / "data" / "images").mkdir(parents=True)
    lines = ["file_name,even,large"]
    for i in range(40):
        image = (digits.images[i] * 16).clip(0, 255).astype(np.uint8)
        PIL.Image.fromarray(image).save(tmp_path / "data" / "images" / f"{i}.png")
        target = digits.target[i]
        labels = ",".join(("", "") if i % 5 == 0 else (str(int(target % 2 == 0)), str(int(target > 4))))
        lines.append(f"images/{i}.png,{labels}")
    (tmp_path / "data" / "metadata.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    result = launch(
        "--train_data_dir", str(tmp_path / "data"), "--label_column", "even", "--label_column", "large",
        *_train_flags(out),
    )  # fmt: skip
    # 8 of the 40 rows have empty cells (unlabeled) and all stay in training; of the 32 labeled rows, 4 are held out
    # for evaluation and 3 (10 % of the other 28) for calibration
    train, labeled = map(int, re.search(r"(\d+) training images, (\d+) labeled", result.stderr).groups())
    assert (train, train - labeled) == (33, 8)
    pipe = JointDiffusionPipeline.from_pretrained(out)
    assert pipe.unet.is_multi_label and pipe.unet.config.label_names == ["even", "large"]
    assert pipe.classify(str(tmp_path / "data" / "images" / "1.png")).probs.shape == (1, 2)
