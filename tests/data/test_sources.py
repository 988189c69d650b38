# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
import datasets
import numpy as np
import PIL.Image
import pytest

from diffusers_joint.data import SINGLE_LABEL, BadImagesError, IntensityNormalization, load_joint_dataset
from diffusers_joint.data.sources import _from_datasets


def _digit_dataset(images, labels, label_name="digit", names=None):
    feature = datasets.ClassLabel(names=names) if names else datasets.Value("int64")
    features = datasets.Features({"picture": datasets.Image(), label_name: feature, "extra": datasets.Value("int64")})
    return datasets.Dataset.from_dict(
        {
            "picture": [PIL.Image.fromarray(img) for img in images],
            label_name: [int(x) for x in labels],
            "extra": list(range(len(labels))),
        },
        features,
    )


def test_save_to_disk_with_custom_columns(tmp_path, digits):
    images, targets = digits
    names = [f"digit_{i}" for i in range(10)]
    splits = datasets.DatasetDict(
        train=_digit_dataset(images[:50], targets[:50], names=names),
        test=_digit_dataset(images[50:70], targets[50:70], names=names),
    )
    splits.save_to_disk(tmp_path / "saved")
    data = load_joint_dataset(dataset_name=str(tmp_path / "saved"), image_column="picture", label_column="digit")
    assert data.train.column_names == ["image", "label"]
    assert (len(data.train), len(data.eval)) == (50, 20) and data.eval_split_name == "'test' split"
    assert data.label_names == names
    assert data.train[4]["label"] == targets[4]
    np.testing.assert_array_equal(np.asarray(data.train[4]["image"]), images[4])


def test_local_dataset_folder_is_named_by_its_base_name(tmp_path, digits):
    # `source` goes into model cards: the folder's name only, never the local path leading to it
    images, targets = digits
    folder = tmp_path / "private" / "hospital_export"
    _digit_dataset(images[:20], targets[:20], names=list("0123456789")).save_to_disk(folder)
    data = load_joint_dataset(
        dataset_name=str(folder) + "/", image_column="picture", label_column="digit", eval_holdout_fraction=0.25
    )
    assert data.source == "hospital_export"
    assert str(tmp_path) not in data.source


def test_plain_int_labels_are_remapped_and_held_out(tmp_path, digits):
    images, targets = digits
    keep = np.isin(targets, [3, 7])
    original = targets[keep][:40] * 10  # labels 30 and 70
    _digit_dataset(images[keep][:40], original).save_to_disk(tmp_path / "single")
    data = load_joint_dataset(
        dataset_name=str(tmp_path / "single"), image_column="picture", label_column="digit", eval_holdout_fraction=0.25
    )
    assert data.problem_type == SINGLE_LABEL
    assert data.label_names == ["30", "70"]
    assert (len(data.train), len(data.eval)) == (30, 10)
    assert data.eval_split_name == "seeded 25% hold-out of the training split"
    all_labels = np.concatenate([np.asarray(data.train["label"]), np.asarray(data.eval["label"])])
    assert sorted(set(all_labels.tolist())) == [0, 1]
    assert np.bincount(np.asarray(data.eval["label"])).tolist() == [5, 5]


def test_missing_label_column_lists_the_columns(tmp_path, digits):
    images, targets = digits
    _digit_dataset(images[:10], targets[:10]).save_to_disk(tmp_path / "d")
    with pytest.raises(ValueError, match=r"'label'.*\['picture', 'digit', 'extra'\]"):
        load_joint_dataset(dataset_name=str(tmp_path / "d"), image_column="picture")


def test_imagefolder_class_names_from_folders(tmp_path, digits):
    images, targets = digits
    root = tmp_path / "folder"
    for name, digit in (("cat_zero", 0), ("cat_one", 1)):
        (root / name).mkdir(parents=True)
        for i, index in enumerate(np.flatnonzero(targets == digit)[:6]):
            PIL.Image.fromarray(images[index]).save(root / name / f"{i}.png")
    data = load_joint_dataset(train_data_dir=str(root), cache_dir=str(tmp_path / "cache"), eval_holdout_fraction=1 / 3)
    assert data.label_names == ["cat_one", "cat_zero"]
    assert (len(data.train), len(data.eval)) == (8, 4)
    assert data.num_channels == 1 and data.image_size == (8, 8)
    assert data.source.startswith("imagefolder")
    assert np.bincount(np.asarray(data.train["label"])).tolist() == [4, 4]


def test_more_than_one_source_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="at most one data source"):
        load_joint_dataset(dataset_name="x", npz_path="y.npz")


@pytest.mark.parametrize("empty_split", ["train", "test"])
def test_empty_split_is_named(tmp_path, digits, empty_split):
    images, targets = digits
    sizes = {"train": 20, "test": 10, empty_split: 0}
    splits = datasets.DatasetDict(
        {name: _digit_dataset(images[:size], targets[:size], names=list("0123456789")) for name, size in sizes.items()}
    )
    splits.save_to_disk(tmp_path / "saved")
    # `datasets` cannot even reload a saved empty split; an in-memory one reaches our own check.
    with pytest.raises(ValueError, match=r"one of its splits is empty \(0 examples\)"):
        load_joint_dataset(dataset_name=str(tmp_path / "saved"), image_column="picture", label_column="digit")
    kind = "training" if empty_split == "train" else "evaluation"
    with pytest.raises(ValueError, match=rf"The {kind} split of in-memory is empty \(0 examples\)"):
        _from_datasets(splits, "in-memory", None, "picture", "digit", 0.1, 0)


def test_empty_csv_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(ValueError, match=r"at least 2 rows .* got a table of shape"):
        load_joint_dataset(csv_path=str(path))


def _array_dataset(images: np.ndarray, labels: list, dtype: str) -> datasets.Dataset:
    features = datasets.Features(
        {"image": datasets.Array2D(images.shape[1:], dtype), "label": datasets.Value("int64")}
    )
    return datasets.Dataset.from_dict({"image": images, "label": labels}, features)


def test_array_images_keep_their_full_range(tmp_path):
    rng = np.random.default_rng(0)
    ct = rng.integers(0, 4096, size=(6, 8, 8)).astype(np.uint16)  # 12-bit, as CT is stored
    signed = rng.uniform(-1, 1, size=(6, 8, 8)).astype(np.float32)
    labels = [0, 1, 0, 1, 0, 1]
    for name, images, dtype in (("u16", ct, "uint16"), ("f32", signed, "float32")):
        split = _array_dataset(images, labels, dtype)
        datasets.DatasetDict(train=split.select(range(4)), test=split.select([4, 5])).save_to_disk(tmp_path / name)
    data = load_joint_dataset(dataset_name=str(tmp_path / "u16"))
    assert data.train[0]["image"].mode == "I;16"
    np.testing.assert_array_equal(np.asarray(data.train[0]["image"]), ct[0])
    # float images outside [0, 1] go through the intensity normalisation: refused by the default, kept by minmax
    with pytest.raises(BadImagesError, match=r"train row 0: .*pixel values -0\.9.*outside the nominal range 0\.\.1"):
        load_joint_dataset(dataset_name=str(tmp_path / "f32"))
    data = load_joint_dataset(
        dataset_name=str(tmp_path / "f32"), intensity_normalization=IntensityNormalization("minmax")
    )
    assert data.eval[1]["image"].mode == "F"
    np.testing.assert_array_equal(np.asarray(data.eval[1]["image"]), signed[5])


@pytest.mark.parametrize("dtype", ["int32", "float64"])
def test_array_images_that_cannot_be_kept_are_refused_with_their_dtype_and_range(tmp_path, dtype):
    images = np.random.default_rng(0).integers(-1024, 3072, size=(4, 8, 8, 3)).astype(dtype)
    features = datasets.Features({"image": datasets.Array3D((8, 8, 3), dtype), "label": datasets.Value("int64")})
    datasets.Dataset.from_dict({"image": images, "label": [0, 1, 0, 1]}, features).save_to_disk(tmp_path / "d")
    with pytest.raises(ValueError, match=rf"{dtype}.*-10\d\d\.\.30\d\d"):
        load_joint_dataset(dataset_name=str(tmp_path / "d"))


def test_string_minus_one_labels_of_a_dataset_mean_unlabeled(digits):
    images, _ = digits
    labels = ["benign", "malignant", "-1", "benign"] * 5
    features = datasets.Features({"picture": datasets.Image(), "digit": datasets.Value("string")})
    split = datasets.Dataset.from_dict(
        {"picture": [PIL.Image.fromarray(img) for img in images[:20]], "digit": labels}, features
    )
    data = _from_datasets(datasets.DatasetDict(train=split), "in-memory", None, "picture", "digit", 0.0, 0)
    assert data.label_names == ["benign", "malignant"] and data.train["label"] == [0, 1, -1, 0] * 5
