"""The generated lesion set: reproducible by seed, balanced, masks where the lesions are; every loader reads it."""

import inspect
import re

import numpy as np
import pytest

from diffusers_joint.data import (
    load_joint_dataset,
    load_lesion_masks,
    make_lesion_images,
    read_image,
    write_lesion_dataset,
)


@pytest.fixture(scope="module")
def lesion_set():
    return make_lesion_images(12, size=64, seed=3, return_backgrounds=True)


def test_same_seed_gives_identical_arrays_and_another_seed_different_ones(lesion_set):
    images, labels, masks, _ = lesion_set
    again = make_lesion_images(12, size=64, seed=3)
    for first, second in zip((images, labels, masks), again):
        np.testing.assert_array_equal(first, second)
    other = make_lesion_images(12, size=64, seed=4)
    assert not np.array_equal(images, other[0])
    assert images.dtype == np.uint8 and images.shape == (12, 64, 64)
    assert masks.dtype == bool and masks.shape == (12, 64, 64) and labels.dtype == np.int64


def test_classes_are_balanced_and_masks_are_empty_exactly_for_class_0(lesion_set):
    _, labels, masks, _ = lesion_set
    assert sorted(labels.tolist()) == [0] * 6 + [1] * 6
    assert labels.tolist() != sorted(labels.tolist())  # shuffled
    has_mask = masks.any(axis=(1, 2))
    np.testing.assert_array_equal(has_mask, labels == 1)
    assert np.bincount(make_lesion_images(7, size=32, seed=0)[1]).tolist() == [3, 4]


def test_masks_cover_where_the_lesion_changed_the_image(lesion_set):
    images, labels, masks, backgrounds = lesion_set
    difference = images.astype(int) - backgrounds.astype(int)
    np.testing.assert_array_equal(difference[labels == 0], 0)  # class 0: the background itself
    for change, mask in zip(difference[labels == 1], masks[labels == 1]):
        assert change[mask].min() > 0  # a brighter opacity over all of its mask
        assert np.unravel_index(change.argmax(), change.shape) in set(zip(*np.nonzero(mask)))
        assert change[mask].mean() > 4 * max(change[~mask].mean(), 0.5)
        # half-maximum support: the strongest change outside the mask is at most about half the peak
        assert change[~mask].max() <= 0.5 * change.max() + 2


def test_lesion_sits_in_a_darker_lung_field_and_is_brighter_than_its_surround(lesion_set):
    images, labels, masks, backgrounds = lesion_set
    for image, background, mask in zip(images[labels == 1], backgrounds[labels == 1], masks[labels == 1]):
        assert background[mask].mean() < background.mean()  # inside a lung field (dark)
        rows, columns = np.nonzero(mask)
        ring = np.zeros_like(mask)
        ring[max(rows.min() - 6, 0) : rows.max() + 7, max(columns.min() - 6, 0) : columns.max() + 7] = True
        ring &= ~mask
        assert image[mask].mean() > image[ring].mean()


def test_first_images_do_not_depend_on_the_set_size():
    small = make_lesion_images(4, size=32, seed=1, return_backgrounds=True)
    large = make_lesion_images(8, size=32, seed=1, return_backgrounds=True)
    np.testing.assert_array_equal(small[3], large[3][:4])  # backgrounds: image i's own seed


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_images=1), "at least 2"),
        (dict(num_images=4, size=8), "at least 16"),
        (dict(num_images=4, contrast_range=(-0.1, 0.2)), "one side of 0"),
        (dict(num_images=4, contrast_range=(0.3, 0.2)), "low <= high"),
        (dict(num_images=4, mask_threshold=1.0), "mask_threshold"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_lesion_images(**kwargs)


def test_written_set_is_read_back_by_every_loader_with_its_labels_and_masks(tmp_path):
    arrays = write_lesion_dataset(tmp_path / "lesions", num_train=6, num_test=4, size=32, seed=0)
    folder = load_joint_dataset(train_data_dir=str(tmp_path / "lesions"))
    npz = load_joint_dataset(npz_path=str(tmp_path / "lesions" / "lesions.npz"))
    hub_style = load_joint_dataset(dataset_name=str(tmp_path / "lesions"))  # datasets' imagefolder
    for dataset in (folder, npz, hub_style):
        assert dataset.image_size == (32, 32) and dataset.num_channels == 1 and dataset.label_names == ["0", "1"]
        assert list(dataset.train["label"]) == arrays["train_labels"].ravel().tolist()
        assert list(dataset.eval["label"]) == arrays["test_labels"].ravel().tolist()
    np.testing.assert_array_equal(read_image(folder.eval[1]["image"])[0][..., 0], arrays["test_images"][1])
    for source in (tmp_path / "lesions", tmp_path / "lesions" / "lesions.npz"):
        for split in ("train", "test"):
            np.testing.assert_array_equal(load_lesion_masks(source, split), arrays[f"{split}_masks"])
    with pytest.raises(ValueError, match="metadata of split 'val'"):
        load_lesion_masks(tmp_path / "lesions", "val")


def test_the_documented_defaults_are_the_defaults():
    signature = inspect.signature(make_lesion_images)
    doc = inspect.getdoc(make_lesion_images)
    for name in ("contrast_range", "lesion_sigma_range", "mask_threshold"):
        documented = re.search(rf"{name} \(.*?defaults to `?(.+?)`?\):", doc).group(1)
        assert documented == str(signature.parameters[name].default), name
