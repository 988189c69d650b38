# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
import os

import datasets
import numpy as np
import PIL.Image
import pytest

from diffusers_joint.data import (
    MULTI_LABEL,
    SINGLE_LABEL,
    BadImagesError,
    is_labeled,
    load_joint_dataset,
    load_npz_dataset,
)


def write_npz(path: os.PathLike, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return os.fspath(path)


def _medmnist_arrays(images, labels):
    return {
        "train_images": images[:60],
        "train_labels": labels[:60],
        "val_images": images[60:70],
        "val_labels": labels[60:70],
        "test_images": images[70:90],
        "test_labels": labels[70:90],
    }


def test_grayscale_single_label(tmp_path, digits):
    images, targets = digits
    path = write_npz(tmp_path / "gray.npz", **_medmnist_arrays(images, targets[:, None]))
    data = load_joint_dataset(npz_path=path)
    assert data.problem_type == SINGLE_LABEL
    assert (len(data.train), len(data.eval)) == (60, 20)
    assert data.train.column_names == ["image", "label"]
    assert data.num_channels == 1 and data.image_size == (8, 8)
    assert data.label_names == [str(i) for i in range(10)]
    assert data.source == f"{os.path.basename(path)} (MedMNIST-style .npz)" and os.sep not in data.source
    row = data.train[5]
    assert isinstance(row["image"], PIL.Image.Image) and row["image"].mode == "L"
    np.testing.assert_array_equal(np.asarray(row["image"]), images[5])
    assert row["label"] == targets[5]
    assert np.asarray(data.eval["label"]).tolist() == targets[70:90].tolist()
    assert data.eval_split_name == "'test' split"
    val = load_joint_dataset(npz_path=path, eval_split="val")
    assert len(val.eval) == 10 and val.eval_split_name == "'val' split"


def test_colour_images(tmp_path, digits):
    images, targets = digits
    colour = np.stack([images, 255 - images, images // 2], axis=-1)
    path = write_npz(tmp_path / "colour.npz", **_medmnist_arrays(colour, targets[:, None]))
    data = load_npz_dataset(path)
    assert data.num_channels == 3
    image = data.train[0]["image"]
    assert image.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(image), colour[0])


def test_multi_label(tmp_path, digits):
    images, targets = digits
    # Three binary attributes per real digit: even, greater than 4, a multiple of 3.
    multi = np.stack([targets % 2 == 0, targets > 4, targets % 3 == 0], axis=1).astype(np.uint8)
    path = write_npz(tmp_path / "multi.npz", **_medmnist_arrays(images, multi))
    data = load_npz_dataset(path)
    assert data.problem_type == MULTI_LABEL
    assert data.label_names == ["0", "1", "2"]
    assert data.train[3]["label"] == multi[3].tolist()


def test_no_eval_split_holds_out(tmp_path, digits):
    images, targets = digits
    path = write_npz(tmp_path / "train_only.npz", train_images=images[:100], train_labels=targets[:100, None])
    data = load_npz_dataset(path, eval_holdout_fraction=0.2, seed=0)
    assert (len(data.train), len(data.eval)) == (80, 20)
    assert data.eval_split_name == "seeded 20% hold-out of the training split"


def test_missing_key_names_the_key(tmp_path, digits):
    images, targets = digits
    path = write_npz(tmp_path / "missing.npz", train_images=images[:10], test_images=images[10:20])
    with pytest.raises(ValueError, match="train_labels"):
        load_npz_dataset(path)
    with pytest.raises(ValueError, match="val_images"):
        load_npz_dataset(write_npz(tmp_path / "m2.npz", **_medmnist_arrays(images, targets)), split="val2")


def test_mismatched_counts_name_the_keys(tmp_path, digits):
    images, targets = digits
    path = write_npz(tmp_path / "bad.npz", train_images=images[:10], train_labels=targets[:9, None])
    with pytest.raises(ValueError, match=r"train_images has 10 and train_labels has 9"):
        load_npz_dataset(path)


def test_empty_split_and_missing_file(tmp_path, digits):
    images, targets = digits
    path = write_npz(tmp_path / "empty.npz", train_images=images[:0], train_labels=targets[:0, None])
    with pytest.raises(ValueError, match="empty"):
        load_npz_dataset(path)
    with pytest.raises(ValueError, match="does not exist"):
        load_npz_dataset(tmp_path / "nope.npz")


def test_pickled_object_arrays_are_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, train_images=np.array([object()], dtype=object), train_labels=np.zeros((1, 1)))
    with pytest.raises(ValueError):
        load_npz_dataset(path)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (
            lambda t: t[:10, None, None],
            r"train_labels to be integers of shape \(N, 1\).*\(N, L\).*got shape \(10, 1, 1\)",
        ),
        (lambda t: t[:10, None].astype(np.float32), r"integers .*dtype float32"),
        (lambda t: np.full((10, 1), -5), r"class indices >= 0 \(or -1 for unlabeled\).*got -5"),
        (lambda t: np.full((10, 3), 2), r"multi-label rows of 0/1"),
    ],
)
def test_labels_of_the_wrong_shape_type_or_range_say_what_is_expected(tmp_path, digits, labels, message):
    images, targets = digits
    path = write_npz(tmp_path / "bad.npz", train_images=images[:10], train_labels=labels(targets))
    with pytest.raises(ValueError, match=message):
        load_npz_dataset(path)


def test_non_finite_float_images_are_refused(tmp_path, digits):
    images, targets = digits
    floats = images[:10].astype(np.float32)
    floats[3, 2, 2] = np.nan
    path = write_npz(tmp_path / "nan.npz", train_images=floats, train_labels=targets[:10, None])
    with pytest.raises(ValueError, match=r"finite pixel values in train_images.*1 are NaN or infinite"):
        load_npz_dataset(path)


def test_images_of_the_wrong_layout_say_what_is_expected(tmp_path, digits):
    images, targets = digits
    two_channels = np.stack([images[:10]] * 2, axis=-1)
    path = write_npz(tmp_path / "bad.npz", train_images=two_channels, train_labels=targets[:10, None])
    with pytest.raises(
        ValueError, match=r"\(N, H, W\) \(grayscale\) or \(N, H, W, 3\) \(colour\), got \(10, 8, 8, 2\)"
    ):
        load_npz_dataset(path)


@pytest.mark.parametrize("source", ["npz", "dataset"])
def test_multi_label_rows_with_an_unknown_finding_become_unlabeled(tmp_path, digits, caplog, source):
    images, _ = digits
    labels = np.random.default_rng(0).integers(0, 2, size=(40, 3))
    labels[::4, 1] = -1  # CheXpert-style "uncertain": one finding unknown, the others known
    labels[1] = -1  # an unlabeled image
    if source == "npz":
        arrays = dict(train_images=images[:30], train_labels=labels[:30], test_images=images[30:40])
        path = write_npz(tmp_path / "partial.npz", **arrays, test_labels=labels[30:40])
        kwargs = {"npz_path": path}
    else:
        split = datasets.Dataset.from_dict({"image": list(images[:40]), "label": labels.tolist()})
        datasets.DatasetDict(train=split.select(range(30)), test=split.select(range(30, 40))).save_to_disk(
            tmp_path / "d"
        )
        kwargs = {"dataset_name": str(tmp_path / "d")}
    with caplog.at_level("WARNING"):
        data = load_joint_dataset(**kwargs)
    train, test = np.asarray(data.train["label"]), np.asarray(data.eval["label"])
    # the rule of the classifier loss, which counts a row only when every finding is known
    for split, expected in ((train, labels[:30]), (test, labels[30:40])):
        known = (expected != -1).all(axis=1)
        np.testing.assert_array_equal(split[known], expected[known])
        assert (split[~known] == -1).all() and (is_labeled(split) == known).all()
    assert "8 of 30 multi-label rows" in caplog.text and "2 of 10 multi-label rows" in caplog.text


def test_npz_images_outside_the_normalisation_are_named_before_training(tmp_path, caplog):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, size=(40, 8, 8)).astype(np.float32)
    images[17] *= 255  # one float image stored 0-255
    labels = (np.arange(40) % 2)[:, None]
    path = write_npz(tmp_path / "one_bad.npz", train_images=images[:30], train_labels=labels[:30],
                     test_images=images[30:], test_labels=labels[30:])  # fmt: skip
    with pytest.raises(BadImagesError, match=r"1 of 40 images") as caught:
        load_joint_dataset(npz_path=path)
    assert [where for where, _ in caught.value.bad] == [f"{path} train row 17"]
    with caplog.at_level("WARNING"):
        data = load_joint_dataset(npz_path=path, skip_bad_images=True)
    assert len(data.train) == 29 and f"{path} train row 17" in caplog.text
    kept = np.stack([np.asarray(image) for image in data.train["image"]])
    np.testing.assert_array_equal(kept, np.delete(images[:30], 17, axis=0))
