# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Bad files are found before training: every one listed with its path and reason, or skipped with a warning."""

import io

import datasets
import numpy as np
import PIL.Image
import pytest

from diffusers_joint.data import BadImagesError, load_joint_dataset
from diffusers_joint.data.image_check import find_bad_images


@pytest.fixture
def folder_with_bad_files(tmp_path, digits):
    images, targets = digits
    for i in range(12):
        (tmp_path / str(targets[i] % 2)).mkdir(exist_ok=True)
        PIL.Image.fromarray(images[i]).save(tmp_path / str(targets[i] % 2) / f"{i}.png")
    good = (tmp_path / "0" / "0.png").read_bytes()
    (tmp_path / "0" / "truncated.png").write_bytes(good[: len(good) // 2])
    PIL.Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(tmp_path / "1" / "rgba.png")
    np.save(tmp_path / "1" / "volume.npy", np.zeros((4, 8, 8), np.int16))
    return tmp_path


def test_every_bad_file_is_listed_with_its_path_and_reason(folder_with_bad_files):
    with pytest.raises(BadImagesError) as caught:
        load_joint_dataset(train_data_dir=str(folder_with_bad_files))
    message = str(caught.value)
    assert "3 of 15 images cannot be used" in message and "--skip_bad_images" in message
    bad = dict(caught.value.bad)
    assert set(bad) == {str(folder_with_bad_files / p) for p in ("0/truncated.png", "1/rgba.png", "1/volume.npy")}
    assert "runcated" in bad[str(folder_with_bad_files / "0/truncated.png")]
    assert "alpha channel" in bad[str(folder_with_bad_files / "1/rgba.png")]
    assert "3-D volume" in bad[str(folder_with_bad_files / "1/volume.npy")]


def test_skip_bad_images_drops_them_with_a_warning_naming_them(folder_with_bad_files, caplog):
    data = load_joint_dataset(
        train_data_dir=str(folder_with_bad_files), skip_bad_images=True, eval_holdout_fraction=0.25
    )
    assert len(data.train) + len(data.eval) == 12
    kept = list(data.train["image"]) + list(data.eval["image"])
    assert not any(p.endswith(("truncated.png", "rgba.png", "volume.npy")) for p in kept)
    err = caplog.text
    assert "Skipping 3 images" in err and "truncated.png" in err and "volume.npy" in err


def test_images_stored_in_a_dataset_are_named_by_row(digits):
    images, _ = digits
    encoded = []
    for image in images[:4]:
        buffer = io.BytesIO()
        PIL.Image.fromarray(image).save(buffer, format="PNG")
        encoded.append({"bytes": buffer.getvalue(), "path": None})
    encoded[2] = {"bytes": encoded[2]["bytes"][:40], "path": None}
    dataset = datasets.Dataset.from_dict({"image": encoded}, features=datasets.Features({"image": datasets.Image()}))
    bad = find_bad_images(dataset, "eval")
    assert [(i, where) for i, where, _ in bad] == [(2, "eval row 2")]


def test_values_the_normalisation_cannot_take_are_found_too(tmp_path, digits):
    images, targets = digits
    for i in range(6):
        (tmp_path / str(i % 2)).mkdir(exist_ok=True)
        np.save(tmp_path / str(i % 2) / f"{i}.npy", images[i] / 255.0)
    np.save(tmp_path / "1" / "hounsfield.npy", np.full((8, 8), -1000.0))  # float, not in [0, 1]
    with pytest.raises(BadImagesError, match=r"hounsfield\.npy: pixel values -1000\.\.-1000 are outside"):
        load_joint_dataset(train_data_dir=str(tmp_path))
