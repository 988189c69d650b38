# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Label manifests: CSV / JSON Lines tables of image paths and labels."""

import json

import numpy as np
import PIL.Image
import pytest

from diffusers_joint.data import MULTI_LABEL, SINGLE_LABEL, load_joint_dataset


@pytest.fixture
def image_paths(tmp_path, digits):
    images, targets = digits
    (tmp_path / "images").mkdir()
    for i in range(20):
        PIL.Image.fromarray(images[i]).save(tmp_path / "images" / f"{i}.png")
    return tmp_path, targets[:20]


def test_csv_of_paths_and_class_names(image_paths):
    root, targets = image_paths
    rows = ["path,diagnosis"] + [f"images/{i}.png,{'' if i == 5 else f'class_{t % 3}'}" for i, t in enumerate(targets)]
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    data = load_joint_dataset(manifest=str(root / "labels.csv"), label_column="diagnosis", eval_holdout_fraction=0.2)
    assert data.problem_type == SINGLE_LABEL and data.label_names == ["class_0", "class_1", "class_2"]
    assert data.source == "label manifest labels.csv" and (len(data.train), len(data.eval)) == (16, 4)
    labels = {r["image"]: r["label"] for split in (data.train, data.eval) for r in split}
    assert labels[str(root / "images" / "5.png")] == -1  # empty cell: unlabeled
    assert labels[str(root / "images" / "0.png")] == targets[0] % 3


def test_integer_classes_sort_as_numbers_and_absolute_paths_work(image_paths, tmp_path_factory):
    root, targets = image_paths
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    rows = ["file_name,label"] + [f"{root / 'images' / f'{i}.png'},{[2, 10][i % 2]}" for i in range(20)]
    (elsewhere / "m.csv").write_text("\n".join(rows) + "\n")
    data = load_joint_dataset(manifest=str(elsewhere / "m.csv"), eval_holdout_fraction=0.2)
    assert data.label_names == ["2", "10"]


def test_multi_label_jsonl(image_paths):
    root, targets = image_paths
    import json

    with open(root / "m.jsonl", "w") as f:
        for i, t in enumerate(targets):
            f.write(json.dumps({"file_name": f"images/{i}.png", "A": int(t % 2), "B": 1.0 if t > 4 else 0.0}) + "\n")
    data = load_joint_dataset(manifest=str(root / "m.jsonl"), label_column=["A", "B"], eval_holdout_fraction=0.2)
    assert data.problem_type == MULTI_LABEL and data.label_names == ["A", "B"]
    assert np.isin(np.asarray(data.train["label"]), (0, 1)).all()


@pytest.mark.parametrize(
    "table, kwargs, message",
    [
        ("name,label\nimages/0.png,1\n", {}, r"column of image file names \('file_name' or 'image'"),
        ("file_name,A,B\nimages/0.png,1,maybe\n", {"label_column": ["A", "B"]}, r"0 / 1 .* 'B', got 'maybe' at row 2"),
        ("file_name,A\n,1\n", {"label_column": ["A"]}, "Row 2 of m.csv has no file name"),
    ],
)
def test_bad_manifests_raise(image_paths, table, kwargs, message):
    root, _ = image_paths
    (root / "m.csv").write_text(table)
    with pytest.raises(ValueError, match=message):
        load_joint_dataset(manifest=str(root / "m.csv"), **kwargs)


def test_several_label_columns_need_a_manifest_or_folder():
    with pytest.raises(ValueError, match="Several label columns"):
        load_joint_dataset(label_column=["a", "b"])


def test_a_split_column_gives_the_evaluation_split(image_paths):
    root, targets = image_paths
    split = ["train"] * 14 + ["test"] * 6
    rows = ["file_name,label,split"] + [f"images/{i}.png,{t % 2},{s}" for i, (t, s) in enumerate(zip(targets, split))]
    (root / "m.csv").write_text("\n".join(rows) + "\n")
    data = load_joint_dataset(manifest=str(root / "m.csv"))
    assert (len(data.train), len(data.eval)) == (14, 6) and data.eval_split_name == "'test' split"
    assert data.eval["image"][0] == str(root / "images" / "14.png")
    with pytest.raises(ValueError, match=r"Expected 'val' rows in the 'split' column of m.csv, got \['test'"):
        load_joint_dataset(manifest=str(root / "m.csv"), eval_split="val")
    (root / "m.csv").write_text("\n".join(rows[:-1] + [rows[-1].replace(",test", ",val")]) + "\n")
    with pytest.raises(ValueError, match=r"one evaluation split, got also \['val'\]"):
        load_joint_dataset(manifest=str(root / "m.csv"))


@pytest.mark.parametrize("unlabeled", ["-1", "-1.0"])
def test_minus_one_next_to_class_names_means_unlabeled(image_paths, unlabeled):
    root, _ = image_paths
    labels = ["normal", "pneumonia", unlabeled, "", "normal"] * 4
    rows = ["file_name,label"] + [f"images/{i}.png,{label}" for i, label in enumerate(labels)]
    (root / "m.csv").write_text("\n".join(rows) + "\n")
    data = load_joint_dataset(manifest=str(root / "m.csv"), eval_holdout_fraction=0.0)
    assert data.label_names == ["normal", "pneumonia"]
    assert data.train["label"] == [0, 1, -1, -1, 0] * 4


def test_float_formatted_integer_labels_are_numbers(image_paths):
    root, _ = image_paths
    # what pandas writes for an integer column with missing values: 1.0, 10.0, and -1.0 for unlabeled
    labels = [f"{i % 12}.0" if i % 5 else ("-1.0" if i % 2 else "") for i in range(20)]
    rows = ["file_name,label"] + [f"images/{i}.png,{label}" for i, label in enumerate(labels)]
    (root / "m.csv").write_text("\n".join(rows) + "\n")
    data = load_joint_dataset(manifest=str(root / "m.csv"), eval_holdout_fraction=0.0)
    classes = sorted({i % 12 for i in range(20) if i % 5})
    assert data.label_names == [str(c) for c in classes]  # sorted as numbers: 9 before 10
    assert data.train["label"] == [classes.index(i % 12) if i % 5 else -1 for i in range(20)]


def test_a_json_array_of_rows_and_json_lines_in_a_json_file(image_paths):
    root, targets = image_paths
    rows = [{"file_name": f"images/{i}.png", "label": int(t % 2)} for i, t in enumerate(targets)]
    (root / "array.json").write_text(json.dumps(rows, indent=1))  # json.dump(rows, f), pretty-printed
    (root / "lines.json").write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    for name in ("array.json", "lines.json"):
        data = load_joint_dataset(manifest=str(root / name), eval_holdout_fraction=0.0)
        assert data.label_names == ["0", "1"] and data.train["label"] == [int(t % 2) for t in targets]


@pytest.mark.parametrize(
    "name, text, expected",
    [
        (
            "m.jsonl",
            '[{"file_name": "images/0.png", "label": 0}]',
            r"row 1 of .*m\.jsonl to be a JSON object.*got list",
        ),
        ("m.jsonl", '[\n{"file_name": "images/0.png", "label": 0}\n]', r"Line 1 of .*m\.jsonl is not valid JSON"),
        ("m.json", '["images/0.png", "images/1.png"]', r"row 1 of .*m\.json to be a JSON object.*got str"),
    ],
)
def test_json_manifests_of_another_layout_raise_naming_the_file_and_the_layout(image_paths, name, text, expected):
    root, _ = image_paths
    (root / name).write_text(text)
    with pytest.raises(ValueError, match=expected + r".*Expected JSON Lines, one object per line"):
        load_joint_dataset(manifest=str(root / name))
