# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Fixtures for the pipeline tests: tiny seeded models, one of them briefly trained on real 8x8 digits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pipeline_test_utils import NUM_TRAIN_TIMESTEPS, load_digit_tensors, make_scheduler, make_unet

from diffusers_joint import JointUNet2DModel


@pytest.fixture
def unet() -> JointUNet2DModel:
    return make_unet(num_classes=3, label_names=["cat", "dog", "bird"])


@pytest.fixture(scope="session")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    return load_digit_tensors()


@pytest.fixture(scope="session")
def digits_judge(digits):
    """
    An independent judge: logistic regression on the real 8x8 digits, never trained on anything a joint model made.
    Called with images in [-1, 1] and their target classes, it returns the mean probability it gives the targets.
    """
    from sklearn.linear_model import LogisticRegression

    images, labels = digits
    judge = LogisticRegression(max_iter=2000).fit(images.flatten(1).numpy(), labels.numpy())

    def target_probability(batch: torch.Tensor, targets: list[int]) -> float:
        probs = judge.predict_proba(batch.detach().float().flatten(1).numpy())
        return float(probs[range(len(targets)), targets].mean())

    return target_probability


@pytest.fixture(scope="session")
def trained_digits_unet(digits) -> JointUNet2DModel:
    """
    The tiny model trained briefly on real 8x8 digits with the Joint Diffusion loss and its noise-aware term,
    `MSE(eps) + CE(classify(x0, t=0), y) + mean(abar_t * CE(classify(x_t, t), y))`. Takes a few seconds; shared by the
    whole session.
    """
    images, labels = digits
    # One thread: float sums then run in one order, so the same model comes out whatever the machine's core count
    # (with two threads the fixture once trained into a model whose feature guidance was too weak for the tests).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_digits_unet(images, labels)
    finally:
        torch.set_num_threads(threads)


def _train_digits_unet(images: torch.Tensor, labels: torch.Tensor) -> JointUNet2DModel:
    unet = make_unet(num_classes=10, label_names=[str(i) for i in range(10)])
    unet.train()
    scheduler = make_scheduler()
    optimizer = torch.optim.AdamW(unet.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        index = torch.randint(0, len(images), (64,), generator=generator)
        x0, y = images[index], labels[index]
        noise = torch.randn(x0.shape, generator=generator)
        timesteps = torch.randint(0, NUM_TRAIN_TIMESTEPS, (len(x0),), generator=generator)
        noise_pred, features = unet.forward_with_features(scheduler.add_noise(x0, noise, timesteps), timesteps)
        noisy_ce = F.cross_entropy(unet.classifier(features), y, reduction="none")
        loss = F.mse_loss(noise_pred, noise) + F.cross_entropy(unet.classify(x0, 0), y)
        loss = loss + (scheduler.alphas_cumprod[timesteps] * noisy_ce).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return unet.eval().requires_grad_(False)
