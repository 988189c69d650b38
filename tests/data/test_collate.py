# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
import numpy as np
import PIL.Image
import pytest
import torch

from diffusers_joint.data import (
    MULTI_LABEL,
    SINGLE_LABEL,
    ImagePreprocessor,
    JointCollator,
    LatentCollator,
)


@pytest.fixture
def rows(digits):
    images, targets = digits
    labels = [int(t) for t in targets[:6]]
    labels[1] = labels[4] = -1
    return [{"image": PIL.Image.fromarray(images[i]), "label": labels[i]} for i in range(6)]


def test_single_label_batch(rows):
    collate = JointCollator(ImagePreprocessor(16, 1), SINGLE_LABEL, num_classes=10)
    batch = collate(rows)
    assert set(batch) == {"pixel_values", "labels", "labeled_mask"}
    assert batch["pixel_values"].shape == (6, 1, 16, 16) and batch["pixel_values"].dtype == torch.float32
    assert batch["pixel_values"].min() >= -1 and batch["pixel_values"].max() <= 1
    assert batch["pixel_values"].min() < -0.9 and batch["pixel_values"].max() > 0.5
    assert batch["labels"].dtype == torch.long
    assert batch["labels"].tolist() == [row["label"] for row in rows]
    assert batch["labeled_mask"].dtype == torch.bool
    assert batch["labeled_mask"].tolist() == [True, False, True, True, False, True]


def test_multi_label_batch(rows):
    multi_rows = [{"image": r["image"], "label": [1, 0, 1] if i % 2 else [-1, -1, -1]} for i, r in enumerate(rows)]
    batch = JointCollator(ImagePreprocessor(8, 3), MULTI_LABEL, num_classes=3)(multi_rows)
    assert batch["pixel_values"].shape == (6, 3, 8, 8)
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape == (6, 3)
    assert batch["labeled_mask"].tolist() == [False, True] * 3
    with pytest.raises(ValueError, match="length 4"):
        JointCollator(ImagePreprocessor(8, 1), MULTI_LABEL, num_classes=4)(multi_rows)


def test_bad_labels_and_problem_type(rows):
    with pytest.raises(ValueError, match="problem_type"):
        JointCollator(ImagePreprocessor(8, 1), "regression", num_classes=10)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        JointCollator(ImagePreprocessor(8, 1), SINGLE_LABEL, num_classes=5)(rows)


def test_end_to_end_with_masked_labels_and_mixed_sampler():
    from diffusers_joint.data import MixedBatchSampler, is_labeled, load_joint_dataset, mask_labels

    data = load_joint_dataset()
    train = mask_labels(data.train, labeled_per_class=1, seed=0)
    known = is_labeled(train["label"])
    assert known.sum() == 10
    sampler = MixedBatchSampler(known, batch_size=8, labeled_batch_fraction=0.25, num_batches=3)
    collate = JointCollator(ImagePreprocessor(8, 1), SINGLE_LABEL, data.num_classes)
    loader = torch.utils.data.DataLoader(train, batch_sampler=sampler, collate_fn=collate)
    batches = list(loader)
    assert len(batches) == 3
    for batch in batches:
        assert batch["pixel_values"].shape == (8, 1, 8, 8)
        assert batch["labeled_mask"].tolist() == [True] * 2 + [False] * 6
        assert (batch["labels"][:2] >= 0).all() and (batch["labels"][2:] == -1).all()


def test_same_seed_same_label_subset_and_same_batches_end_to_end():
    from diffusers_joint.data import MixedBatchSampler, is_labeled, load_joint_dataset, mask_labels

    data = load_joint_dataset()

    def batches(seed, epoch):
        train = mask_labels(data.train, num_labeled=20, seed=seed)
        sampler = MixedBatchSampler(is_labeled(train["label"]), batch_size=8, seed=seed, num_batches=3)
        sampler.set_epoch(epoch)
        preprocessor = ImagePreprocessor(8, 1, random_flip=True)
        collate = JointCollator(preprocessor, SINGLE_LABEL, 10, generator=torch.Generator().manual_seed(seed))
        loader = torch.utils.data.DataLoader(train, batch_sampler=sampler, collate_fn=collate)
        return np.flatnonzero(is_labeled(train["label"])), list(loader)

    subset, first = batches(seed=3, epoch=1)
    same_subset, again = batches(seed=3, epoch=1)
    np.testing.assert_array_equal(subset, same_subset)
    for a, b in zip(first, again, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key
    other_subset, other = batches(seed=4, epoch=1)
    assert not np.array_equal(subset, other_subset)
    assert not torch.equal(first[0]["pixel_values"], other[0]["pixel_values"])
    _, next_epoch = batches(seed=3, epoch=2)
    assert not torch.equal(first[0]["pixel_values"], next_epoch[0]["pixel_values"])


def test_latent_collator_stacks_cached_latents_and_collates_labels_as_the_image_collator(rows):
    latents = [torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(i)) for i in range(len(rows))]
    cached = [{"latents": z, "label": row["label"]} for z, row in zip(latents, rows)]
    batch = LatentCollator(SINGLE_LABEL, num_classes=10)(cached)
    assert torch.equal(batch["pixel_values"], torch.stack(latents))
    expected = JointCollator(ImagePreprocessor(16, 1), SINGLE_LABEL, num_classes=10)(rows)
    assert torch.equal(batch["labels"], expected["labels"])
    assert torch.equal(batch["labeled_mask"], expected["labeled_mask"])
    with pytest.raises(ValueError, match="cached latents in 'latents'"):
        LatentCollator(SINGLE_LABEL, num_classes=10)(rows)
