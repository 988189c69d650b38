# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
import numpy as np
import pytest
import torch

from diffusers_joint.data import MixedBatchSampler


@pytest.fixture
def known() -> np.ndarray:
    mask = np.zeros(100, dtype=bool)
    mask[[3, 17, 42, 58, 99]] = True
    return mask


def test_every_batch_has_the_labeled_share(known):
    sampler = MixedBatchSampler(known, batch_size=8, labeled_batch_fraction=0.25, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 13
    for batch in batches:
        assert len(batch) == 8
        assert known[batch].sum() == 2
    # The 5 labeled examples are cycled through, each visited about equally often.
    counts = np.bincount(np.concatenate(batches)[known[np.concatenate(batches)]], minlength=100)[known]
    assert counts.min() >= 5 and counts.max() <= 6


def test_deterministic_per_seed_and_epoch(known):
    sampler = MixedBatchSampler(known, batch_size=8, seed=1)
    epoch0 = list(sampler)
    assert list(sampler) == epoch0
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch1 != epoch0
    resumed = MixedBatchSampler(known, batch_size=8, seed=1)
    resumed.set_epoch(1)
    assert list(resumed) == epoch1
    assert list(MixedBatchSampler(known, batch_size=8, seed=2)) != epoch0


def test_num_batches_and_edge_fractions(known):
    assert len(MixedBatchSampler(known, batch_size=7, num_batches=3)) == 3
    all_labeled = list(MixedBatchSampler(known, batch_size=4, labeled_batch_fraction=1.0, num_batches=4))
    assert all(known[b].all() for b in all_labeled)
    plain = list(MixedBatchSampler(known, batch_size=10, labeled_batch_fraction=0.0))
    # Plain random batches: one full pass over the data in 10 batches.
    assert sorted(np.concatenate(plain).tolist()) == list(range(100))
    none_known = list(MixedBatchSampler(np.zeros(20, dtype=bool), batch_size=5, labeled_batch_fraction=0.5))
    assert sorted(np.concatenate(none_known).tolist()) == list(range(20))


def test_fully_labeled_data_uses_all_examples_for_the_unlabeled_part():
    batches = list(MixedBatchSampler(np.ones(12, dtype=bool), batch_size=4, labeled_batch_fraction=0.5))
    assert len(batches) == 3 and all(len(b) == 4 for b in batches)


def test_data_weights_make_every_example_count_as_often_as_in_the_data(known):
    sampler = MixedBatchSampler(known, batch_size=10, labeled_batch_fraction=0.5, num_batches=400)
    labeled_weight, unlabeled_weight = sampler.data_weights()
    assert (labeled_weight, unlabeled_weight) == pytest.approx((0.1, 1.9))  # 5 % of the data, half of each batch
    total = np.zeros(100)
    for epoch in range(5):
        sampler.set_epoch(epoch)
        for batch in sampler:
            weights = np.where(known[batch], labeled_weight, unlabeled_weight)
            assert weights.mean() == pytest.approx(1.0)  # the weighted batch mean keeps the loss's scale
            np.add.at(total, batch, weights)
    # Unweighted, each labeled example is drawn 19 times as often as an unlabeled one; weighted, all count alike.
    assert total.max() / total.min() < 1.2
    assert MixedBatchSampler(known, batch_size=10, labeled_batch_fraction=0.0).data_weights() == (1.0, 1.0)
    assert MixedBatchSampler(known, batch_size=10, labeled_batch_fraction=1.0).data_weights() == (1.0, 1.0)
    # Fully labeled data: both parts draw from every example, so each is already drawn as often as any other.
    all_known = np.ones(100, dtype=bool)
    assert MixedBatchSampler(all_known, batch_size=8, labeled_batch_fraction=0.25).data_weights() == (1.0, 1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 4, "labeled_batch_fraction": 1.5}, r"\[0, 1\]"),
        ({"batch_size": 4, "labeled_batch_fraction": -0.1}, r"\[0, 1\]"),
    ],
)
def test_bad_arguments(known, kwargs, message):
    with pytest.raises(ValueError, match=message):
        MixedBatchSampler(known, **kwargs)


def test_works_with_a_dataloader_and_accelerate(known):
    from accelerate import Accelerator

    dataset = torch.utils.data.TensorDataset(torch.arange(100), torch.from_numpy(known))
    sampler = MixedBatchSampler(known, batch_size=8, labeled_batch_fraction=0.5, num_batches=5)
    loader = Accelerator(cpu=True).prepare(torch.utils.data.DataLoader(dataset, batch_sampler=sampler))
    batches = list(loader)
    assert len(loader) == 5 and len(batches) == 5
    for indices, is_known in batches:
        assert indices.shape == (8,)
        assert is_known.sum().item() == 4


def test_mixed_batch_dataloader_mixes_labeled_and_unlabeled_images_only_when_both_exist():
    from diffusers_joint.data import mixed_batch_dataloader

    labeled = np.array([True] * 4 + [False] * 36)
    loader = mixed_batch_dataloader(list(range(40)), labeled, lambda rows: rows, batch_size=8, seed=0)
    assert len(loader) == 5 and loader.batch_sampler.labeled_batch_fraction == 0.5
    assert all(sum(labeled[i] for i in batch) == 4 for batch in loader)  # half of every batch labeled
    everything = mixed_batch_dataloader(list(range(40)), np.ones(40, bool), lambda rows: rows, batch_size=8)
    assert everything.batch_sampler.labeled_batch_fraction == 0.0
    assert sorted(i for batch in everything for i in batch) == list(range(40))  # plain shuffled epochs
