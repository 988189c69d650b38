import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler
from sklearn.datasets import load_digits

from diffusers_joint.evaluation.feature_probes import (
    block_features,
    block_names,
    linear_probe,
    probe_timesteps,
    select_features,
)
from tiny_models import tiny_joint_unet


def digits(count: int = 400):
    data = load_digits()
    order = np.random.default_rng(0).permutation(len(data.target))[:count]
    images = torch.tensor(data.images[order], dtype=torch.float32).unsqueeze(1) / 8 - 1  # 0..16 -> [-1, 1]
    return images, torch.as_tensor(data.target[order])


def test_clean_encoder_features_are_the_classifier_input():
    unet = tiny_joint_unet().eval()
    images, _ = digits(16)
    features = block_features(unet, images, batch_size=5)
    assert list(features) == ["down_0", "down_1", "mid"]
    assert [f.shape[1] for f in features.values()] == unet.feature_channels
    torch.testing.assert_close(select_features(features, "encoder"), unet.extract_features(images).detach())


def test_noisy_features_are_seeded_and_differ_from_clean_ones():
    unet = tiny_joint_unet().eval()
    scheduler = DDPMScheduler(num_train_timesteps=100)
    images, _ = digits(8)
    first = block_features(unet, images, 50, scheduler, seed=3)
    torch.testing.assert_close(first["mid"], block_features(unet, images, 50, scheduler, seed=3)["mid"])
    assert not torch.allclose(first["mid"], block_features(unet, images, 50, scheduler, seed=4)["mid"])
    assert not torch.allclose(first["mid"], block_features(unet, images)["mid"])


def test_decoder_features_add_the_up_blocks():
    unet = tiny_joint_unet().eval()
    images, _ = digits(4)
    features = block_features(unet, images, decoder=True)
    assert list(features) == block_names(unet, decoder=True) == ["down_0", "down_1", "mid", "up_0", "up_1"]
    torch.testing.assert_close(select_features(features, "encoder"), unet.extract_features(images).detach())


def test_linear_probe_separates_separable_features_and_not_random_labels():
    rng = np.random.default_rng(0)
    labels = torch.as_tensor(rng.integers(0, 3, size=300))
    features = torch.randn(300, 6, generator=torch.Generator().manual_seed(0))
    separable = features + 8 * torch.nn.functional.one_hot(labels, 6).float()
    assert linear_probe(separable[:200], labels[:200], separable[200:], labels[200:])["balanced_accuracy"] == 1.0
    chance = linear_probe(features[:200], labels[:200], features[200:], labels[200:])["balanced_accuracy"]
    assert chance < 0.6


def test_probe_timesteps_scores_every_block_and_the_head():
    unet = tiny_joint_unet().eval()
    scheduler = DDPMScheduler(num_train_timesteps=100)
    images, labels = digits(300)
    rows = probe_timesteps(unet, scheduler, (images[:200], labels[:200]), (images[200:], labels[200:]), [0, 10])
    assert [(r["timestep"], r["blocks"]) for r in rows[:5]] == [
        (0, "down_0"), (0, "down_1"), (0, "mid"), (0, "encoder"), (0, "head"),
    ]  # fmt: skip
    assert len(rows) == 10
    # an untrained network's random features still beat chance (10 classes) under a probe; its head does not
    encoder = next(r for r in rows if r["timestep"] == 0 and r["blocks"] == "encoder")
    head = next(r for r in rows if r["timestep"] == 0 and r["blocks"] == "head")
    assert encoder["balanced_accuracy"] > 0.5 > head["balanced_accuracy"]


def test_bad_requests_are_refused():
    unet = tiny_joint_unet().eval()
    images, labels = digits(8)
    with pytest.raises(ValueError, match="need the `scheduler`"):
        block_features(unet, images, 10)
    with pytest.raises(ValueError, match="timestep in"):
        block_features(unet, images, 100, DDPMScheduler(num_train_timesteps=100))
    with pytest.raises(ValueError, match="Unknown blocks"):
        select_features(block_features(unet, images), "up_0")
    with pytest.raises(ValueError, match="at least two classes"):
        linear_probe(torch.zeros(4, 2), torch.zeros(4), torch.zeros(2, 2), torch.zeros(2))


def test_clean_input_with_a_timestep_embedding_needs_no_scheduler_and_no_noise():
    unet = tiny_joint_unet().eval()
    images, _ = digits(8)
    first = block_features(unet, images, 50, noisy=False)
    torch.testing.assert_close(first["mid"], block_features(unet, images, 50, noisy=False, seed=9)["mid"])
    assert not torch.allclose(first["mid"], block_features(unet, images)["mid"])


def test_the_head_row_reads_the_stages_the_head_was_built_on():
    unet = tiny_joint_unet(classifier_feature_stages=[-1]).eval()
    images, labels = digits(60)
    rows = probe_timesteps(unet, None, (images[:40], labels[:40]), (images[40:], labels[40:]), [0], noisy=False)
    head = next(r for r in rows if r["blocks"] == "head")
    with torch.no_grad():
        probs = unet.probabilities(unet.classify(images[40:])).numpy()
    assert head["accuracy"] == pytest.approx(float((probs.argmax(1) == labels[40:].numpy()).mean()))
