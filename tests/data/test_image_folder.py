# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Image folders of any format, labelled by class folders or by a metadata.csv / metadata.jsonl."""

import json

import numpy as np
import PIL.Image
import pytest

from diffusers_joint.data import MULTI_LABEL, SINGLE_LABEL, ImagePreprocessor, load_joint_dataset


def _write(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        np.save(path, image)
    else:
        PIL.Image.fromarray(image).save(path)


def test_class_folders_of_mixed_formats_with_train_and_test(tmp_path, digits):
    images, targets = digits
    for split, rows in (("train", range(0, 30)), ("test", range(30, 40))):
        for i in rows:
            suffix = (".png", ".tif", ".npy")[i % 3]
            image16 = images[i].astype(np.uint16) * 257  # a 16-bit copy of the 8-bit digit
            _write(tmp_path / split / f"digit_{targets[i]}" / f"{i}{suffix}", image16)
    data = load_joint_dataset(train_data_dir=str(tmp_path))
    assert data.problem_type == SINGLE_LABEL and data.label_names == sorted({f"digit_{t}" for t in targets[:40]})
    assert (len(data.train), len(data.eval)) == (30, 10) and data.eval_split_name == "'test' split"
    assert data.num_channels == 1 and data.image_size == (8, 8) and data.source == f"imagefolder {tmp_path.name}"
    for row in data.train.select(range(3)):
        index = int(row["image"].rsplit("/", 1)[-1].split(".")[0])
        assert data.label_names[row["label"]] == f"digit_{targets[index]}"
        pixels = ImagePreprocessor(8, 1)(row["image"])
        np.testing.assert_allclose((pixels.numpy()[0] + 1) / 2, images[index] / 255.0, atol=1e-6)


def test_metadata_csv_with_two_label_columns_is_multi_label(tmp_path, digits):
    images, targets = digits
    lines = ["file_name,even,large,note"]
    for i in range(20):
        _write(tmp_path / "scans" / f"{i}.png", images[i])
        even, large = ("", "") if i == 3 else (int(targets[i] % 2 == 0), int(targets[i] > 4))
        lines.append(f"scans/{i}.png,{even},{large},free text")
    (tmp_path / "metadata.csv").write_text("\n".join(lines) + "\n")
    data = load_joint_dataset(
        train_data_dir=str(tmp_path), label_column=["even", "large"], eval_holdout_fraction=0.25, seed=0
    )
    assert data.problem_type == MULTI_LABEL and data.label_names == ["even", "large"]
    rows = {r["image"].rsplit("/", 1)[-1]: r["label"] for split in (data.train, data.eval) for r in split}
    assert rows["3.png"] == [-1, -1]  # empty cells: unlabeled
    assert rows["0.png"] == [int(targets[0] % 2 == 0), int(targets[0] > 4)]
    assert (~data.labeled_mask("train")).sum() + (~data.labeled_mask("eval")).sum() == 1


def test_metadata_jsonl_single_label_with_missing_labels(tmp_path, digits):
    images, targets = digits
    with open(tmp_path / "metadata.jsonl", "w") as f:
        for i in range(12):
            _write(tmp_path / f"{i}.png", images[i])
            f.write(json.dumps({"file_name": f"{i}.png", "finding": None if i < 2 else f"d{targets[i] % 2}"}) + "\n")
    data = load_joint_dataset(train_data_dir=str(tmp_path), label_column="finding", eval_holdout_fraction=0.25)
    assert data.label_names == ["d0", "d1"]
    assert sorted(np.concatenate([data.train["label"], data.eval["label"]]).tolist()).count(-1) == 2


@pytest.mark.parametrize(
    "setup, kwargs, message",
    [
        ("loose", {}, "one sub-folder per class"),
        ("classes", {"label_column": ["a", "b"]}, "needs a metadata.csv"),
        ("metadata", {"label_column": ["even", "missing"]}, r"label column\(s\) \['missing'\]"),
        ("empty", {}, "Found no image files"),
    ],
)
def test_folder_errors_say_what_is_expected(tmp_path, digits, setup, kwargs, message):
    images, _ = digits
    if setup == "loose":
        _write(tmp_path / "0.png", images[0])
    elif setup == "classes":
        _write(tmp_path / "a" / "0.png", images[0])
    elif setup == "metadata":
        _write(tmp_path / "0.png", images[0])
        (tmp_path / "metadata.csv").write_text("file_name,even\n0.png,1\n")
    with pytest.raises(ValueError, match=message):
        load_joint_dataset(train_data_dir=str(tmp_path), **kwargs)


def test_hidden_files_and_macos_folders_are_skipped(tmp_path, digits):
    images, _ = digits
    apple_double = b"\x00\x05\x16\x07" + b"\x00" * 60  # what macOS writes beside each file on other file systems
    for name in ("benign", "malignant"):
        for i in range(3):
            _write(tmp_path / name / f"{i}.png", images[i])
            (tmp_path / name / f"._{i}.png").write_bytes(apple_double)
            (tmp_path / "__MACOSX" / name).mkdir(parents=True, exist_ok=True)
            (tmp_path / "__MACOSX" / name / f"._{i}.png").write_bytes(apple_double)
    data = load_joint_dataset(train_data_dir=str(tmp_path), eval_holdout_fraction=0.0)
    assert data.label_names == ["benign", "malignant"] and len(data.train) == 6
    assert not any("._" in path or "__MACOSX" in path for path in data.train["image"])


def test_a_class_left_without_images_by_skip_bad_images_is_refused(tmp_path, digits):
    images, _ = digits
    for i in range(4):
        _write(tmp_path / "benign" / f"{i}.png", images[i])
        _write(tmp_path / "normal" / f"{i}.png", images[i])
        (tmp_path / "malignant").mkdir(exist_ok=True)
        (tmp_path / "malignant" / f"{i}.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"every training image of the class\(es\) \['malignant'\] was skipped"):
        load_joint_dataset(train_data_dir=str(tmp_path), skip_bad_images=True, eval_holdout_fraction=0.0)
    (tmp_path / "malignant" / "0.png").unlink()
    _write(tmp_path / "malignant" / "0.png", images[0])  # one readable image: the class stays, ids unchanged
    data = load_joint_dataset(train_data_dir=str(tmp_path), skip_bad_images=True, eval_holdout_fraction=0.0)
    assert (
        data.label_names == ["benign", "malignant", "normal"]
        and sorted(data.train["label"]) == [0] * 4 + [1] + [2] * 4
    )
