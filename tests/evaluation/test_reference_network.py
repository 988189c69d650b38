"""The reference network: trains on real digits, is deterministic, and round-trips through safetensors."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from diffusers_joint.evaluation import ReferenceClassifier, train_reference_classifier


@pytest.fixture(scope="module")
def digits_split():
    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None] * 2 - 1
    labels = torch.from_numpy(digits.target).long()
    train, test = train_test_split(np.arange(len(labels)), test_size=0.2, random_state=0, stratify=labels)
    return images[train], labels[train], images[test], labels[test]


@pytest.fixture(scope="module")
def reference(digits_split):
    train_x, train_y, _, _ = digits_split
    return train_reference_classifier(train_x, train_y, label_names=[str(i) for i in range(10)], seed=0)


def test_trains_to_high_accuracy_on_real_digits(reference, digits_split):
    _, _, test_x, test_y = digits_split
    accuracy = (reference.predict_proba(test_x).argmax(dim=1) == test_y).float().mean().item()
    assert accuracy > 0.9
    features = reference.extract_features(test_x)
    assert features.shape == (len(test_x), reference.config.feature_dim)
    assert not reference.training


def test_save_and_load_round_trip_exactly(reference, digits_split, tmp_path):
    _, _, test_x, _ = digits_split
    reference.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").exists() and (tmp_path / "config.json").exists()
    loaded = ReferenceClassifier.from_pretrained(tmp_path)
    assert loaded.config.label_names == [str(i) for i in range(10)]
    assert loaded.config.sample_size == 8 and loaded.config.in_channels == 1
    for key, value in reference.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    assert torch.equal(loaded.extract_features(test_x), reference.extract_features(test_x))


def test_training_is_seeded_and_leaves_the_global_random_state_alone(digits_split):
    train_x, train_y, _, _ = digits_split
    x, y = train_x[:200], train_y[:200]
    state = torch.get_rng_state()
    first = train_reference_classifier(x, y, num_classes=10, num_epochs=1, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    second = train_reference_classifier(x, y, num_classes=10, num_epochs=1, seed=3)
    other = train_reference_classifier(x, y, num_classes=10, num_epochs=1, seed=4)
    probe = train_x[:16]
    assert torch.equal(first.predict_proba(probe), second.predict_proba(probe))
    assert not torch.equal(first.predict_proba(probe), other.predict_proba(probe))


def test_unlabeled_rows_are_dropped_and_multi_label_works():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(40, 3, 12, 12, generator=generator) * 2 - 1
    labels = torch.randint(0, 2, (40, 4), generator=generator)
    labels[:5] = -1  # unlabeled rows
    model = train_reference_classifier(
        images, labels, problem_type="multi_label_classification", num_epochs=1, batch_size=16
    )
    assert model.config.num_classes == 4 and model.is_multi_label
    probs = model.predict_proba(images[:3])
    assert probs.shape == (3, 4) and ((probs > 0) & (probs < 1)).all()
    with pytest.raises(ValueError, match="No labeled image"):
        train_reference_classifier(images[:5], labels[:5], problem_type="multi_label_classification")


def test_inputs_are_checked_and_resized():
    model = ReferenceClassifier(in_channels=1, sample_size=8, num_classes=3)
    assert model(torch.zeros(2, 1, 16, 16)).shape == (2, 3)  # resized to 8x8
    with pytest.raises(ValueError, match=r"\(batch, 1, height, width\)"):
        model(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="label names"):
        ReferenceClassifier(num_classes=3, label_names=["a", "b"])


def test_the_group_normalised_network_trains_and_round_trips_its_setting(digits_split, tmp_path):
    train_x, train_y, test_x, test_y = digits_split
    model = train_reference_classifier(train_x, train_y, norm_num_groups=8, seed=0)
    assert sum(isinstance(m, torch.nn.GroupNorm) for m in model.modules()) == 4  # two stages, two convolutions each
    assert (model.predict_proba(test_x).argmax(1) == test_y).float().mean() > 0.9
    model.save_pretrained(tmp_path)
    loaded = ReferenceClassifier.from_pretrained(tmp_path)
    assert loaded.config.norm_num_groups == 8
    torch.testing.assert_close(loaded.predict_proba(test_x), model.predict_proba(test_x), rtol=0, atol=0)
    plain = ReferenceClassifier()
    assert not any(isinstance(m, torch.nn.GroupNorm) for m in plain.modules())
