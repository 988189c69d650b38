"""PSNR and SSIM on hand-made cases, and the reconstruction quality of an autoencoder."""

import math

import pytest
import torch

from diffusers_joint.evaluation import evaluate_autoencoder, psnr, ssim
from diffusers_joint.training import create_autoencoder


def test_psnr_of_a_constant_error():
    images = torch.rand(3, 1, 8, 8) * 2 - 1
    assert psnr(images + 0.1, images) == pytest.approx(20 * math.log10(2 / 0.1))  # 26.02 dB on [-1, 1]
    assert psnr(images + 0.1, images, data_range=1.0) == pytest.approx(20 * math.log10(1 / 0.1))
    # per image, then averaged: errors 0.1 and 0.2
    errors = torch.tensor([0.1, 0.2])[:, None, None, None]
    expected = (20 * math.log10(2 / 0.1) + 20 * math.log10(2 / 0.2)) / 2
    assert psnr(images[:2] + errors, images[:2]) == pytest.approx(expected)
    assert psnr(images, images) == pytest.approx(100.0)
    # one exact image is capped, not infinite: the mean stays finite and above the others
    assert psnr(images + errors[[0, 0, 0]] * torch.tensor([0, 1, 1])[:, None, None, None], images) == pytest.approx(
        (100 + 2 * 20 * math.log10(2 / 0.1)) / 3
    )


def test_ssim_is_one_for_identical_images_and_drops_with_noise():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, 1, 16, 16, generator=generator) * 2 - 1
    assert ssim(images, images) == pytest.approx(1.0, abs=1e-5)
    noisy = (images + 0.5 * torch.randn(images.shape, generator=generator)).clamp(-1, 1)
    assert ssim(noisy, images) < 0.8
    # a constant offset only changes the luminance term: SSIM stays high but below 1
    assert 0.9 < ssim((images + 0.05).clamp(-1, 1), images) < 1.0
    assert ssim(images[:, :, :5, :5], images[:, :, :5, :5]) == pytest.approx(1.0, abs=1e-5)  # window shrinks to fit


def test_shapes_must_match():
    with pytest.raises(ValueError, match="same shape"):
        psnr(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))
    with pytest.raises(ValueError, match="low < high"):
        ssim(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), value_range=(1, 1))


def test_evaluate_autoencoder_reports_psnr_ssim_l1_and_restores_the_mode():
    torch.manual_seed(0)
    vae = create_autoencoder(1, 4, latent_channels=2, block_out_channels=(8, 16, 16), resolution=16).train()
    images = torch.rand(5, 1, 16, 16) * 2 - 1
    results = evaluate_autoencoder(vae, images, batch_size=2)
    assert set(results) == {"psnr", "ssim", "l1", "num_examples"} and results["num_examples"] == 5
    assert vae.training  # back in the mode it was given in
    with torch.no_grad():
        vae.eval()
        reconstructions = vae.decode(vae.encode(images).latent_dist.mode()).sample.clamp(-1, 1)
    assert results["psnr"] == pytest.approx(psnr(reconstructions, images), rel=1e-4)
    assert results["l1"] == pytest.approx(float((reconstructions - images).abs().mean()), rel=1e-4)
