"""The autoencoder: built at f4 / f8, loaded from safetensors only, its loss learns real images, its latents scaled."""

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from diffusers_joint.data import load_digits_dataset
from diffusers_joint.pipelines.latent_codec import encode_images
from diffusers_joint.training import (
    AutoencoderObjective,
    autoencoder_loss,
    create_autoencoder,
    latent_scaling_factor,
    load_vae,
)

SHARED_NPZ = os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared", "data", "pneumoniamnist", "pneumoniamnist_balanced_28.npz"
)


def tiny_autoencoder(in_channels=1, factor=4, seed=0, **overrides):
    torch.manual_seed(seed)
    channels = (8, 16, 16) if factor == 4 else (8, 16, 16, 16)
    return create_autoencoder(
        in_channels, factor, **{"latent_channels": 2, "block_out_channels": channels, **overrides}
    )


def digits_16px(count=128):
    images = np.stack([np.asarray(image, dtype=np.float32) for image in load_digits_dataset().train[:count]["image"]])
    images = torch.from_numpy(images)[:, None] / 255 * 2 - 1
    return F.interpolate(images, size=16, mode="bilinear", align_corners=False)


@pytest.mark.parametrize("factor, blocks", [(4, 3), (8, 4)])
def test_downsampling_factor_sets_the_blocks_and_the_latent_size(factor, blocks):
    vae = tiny_autoencoder(factor=factor, resolution=32)
    assert len(vae.config.block_out_channels) == blocks and vae.config.sample_size == 32
    with torch.no_grad():
        latents = vae.encode(torch.zeros(2, 1, 32, 32)).latent_dist.mode()
        assert latents.shape == (2, 2, 32 // factor, 32 // factor)
        assert vae.decode(latents).sample.shape == (2, 1, 32, 32)


def test_default_widths_and_groups():
    vae = create_autoencoder(3, 8)
    assert tuple(vae.config.block_out_channels) == (64, 128, 256, 256) and vae.config.norm_num_groups == 16
    assert vae.config.in_channels == vae.config.out_channels == 3 and vae.config.latent_channels == 4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(downsampling_factor=2), r"downsampling factor in \(4, 8\).*got 2"),
        (dict(downsampling_factor=16), "got 16"),
        (dict(downsampling_factor=8, block_out_channels=(8, 16, 16)), "takes 4 blocks.*got 3"),
        (dict(latent_channels=0), "latent_channels"),
        (dict(resolution=30), "multiple of the downsampling factor 4"),
        (dict(block_out_channels=(8, 16, 16), norm_num_groups=3), "norm_num_groups=3"),
    ],
)
def test_bad_settings_raise_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_autoencoder(1, **kwargs)


def test_load_vae_reads_a_saved_autoencoder_offline_from_safetensors_only(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    vae = tiny_autoencoder()
    vae.register_to_config(scaling_factor=1.7)
    vae.save_pretrained(tmp_path / "vae")
    vae.save_pretrained(tmp_path / "pipeline" / "vae")
    loaded = load_vae(tmp_path / "vae")
    assert loaded.config.scaling_factor == 1.7
    for key, value in vae.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert load_vae(tmp_path / "pipeline", subfolder="vae").config.latent_channels == 2
    vae.save_pretrained(tmp_path / "pickled", safe_serialization=False)  # a .bin only: refused
    with pytest.raises(OSError, match="diffusion_pytorch_model.safetensors"):
        load_vae(tmp_path / "pickled")
    with pytest.raises(OSError, match="Cannot load an AutoencoderKL from"):
        load_vae(tmp_path / "missing")


def test_loss_terms_and_weights():
    vae = tiny_autoencoder(resolution=16)
    images = digits_16px(4)
    torch.manual_seed(1)
    loss, terms = autoencoder_loss(vae, images, kl_weight=0.0)
    assert set(terms) == {"loss", "loss_l1", "loss_kl", "loss_ssim"}
    assert terms["loss"] == pytest.approx(float(terms["loss_l1"])) and terms["loss_ssim"] == 0 and terms["loss_kl"] > 0
    torch.manual_seed(1)
    weighted, weighted_terms = autoencoder_loss(vae, images, kl_weight=0.01, ssim_weight=0.5)
    expected = terms["loss_l1"] + 0.01 * terms["loss_kl"] + 0.5 * weighted_terms["loss_ssim"]
    assert weighted.item() == pytest.approx(float(expected), rel=1e-5) and 0 < weighted_terms["loss_ssim"] <= 2
    torch.manual_seed(1)
    objective_loss, _ = AutoencoderObjective(vae, 0.01, 0.5)(images)
    assert objective_loss.item() == pytest.approx(weighted.item())
    with pytest.raises(ValueError, match="non-negative"):
        AutoencoderObjective(vae, kl_weight=-1)


def train_steps(vae, images, steps, lr=2e-3, batch_size=32, seed=0):
    optimizer = torch.optim.Adam(vae.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = images[torch.randint(len(images), (batch_size,), generator=generator)]
        loss, _ = autoencoder_loss(vae, batch, kl_weight=1e-6)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def reconstruction_l1(vae, images):
    with torch.no_grad():
        return float((vae.decode(vae.encode(images).latent_dist.mode()).sample - images).abs().mean())


def test_loss_goes_down_on_real_digits():
    images = digits_16px(256)
    vae = tiny_autoencoder(resolution=16)
    before = reconstruction_l1(vae, images[:64])
    train_steps(vae, images, steps=40)
    after = reconstruction_l1(vae, images[:64])
    assert after < 0.5 * before, (before, after)  # measured 0.73 -> 0.29


@pytest.mark.shared_data
def test_loss_goes_down_on_pneumoniamnist():
    if not os.path.isfile(SHARED_NPZ):
        pytest.skip(f"{SHARED_NPZ} is absent (real data beside the repository; see ../shared/data/README.md)")
    with np.load(SHARED_NPZ) as archive:
        images = torch.from_numpy(archive["train_images"][:256].astype(np.float32))[:, None] / 255 * 2 - 1
    vae = tiny_autoencoder(resolution=28)
    images = F.interpolate(images, size=32, mode="bilinear", align_corners=False)
    before = reconstruction_l1(vae, images[:64])
    train_steps(vae, images, steps=40)
    after = reconstruction_l1(vae, images[:64])
    assert after < 0.7 * before, (before, after)  # measured 0.31 -> 0.17


def test_scaling_factor_gives_the_latents_training_encodes_unit_variance():
    vae = tiny_autoencoder(resolution=16)
    images = digits_16px(40)
    factor = latent_scaling_factor(vae, images, batch_size=16)
    assert factor == pytest.approx(latent_scaling_factor(vae, images, batch_size=7), rel=1e-6)  # batching aside
    # Training and the pipelines encode the posterior's mode: those latents, scaled, have unit variance. (Measured on
    # posterior samples, as before, this untrained VAE's mode latents came out with std 0.2: its posterior is wide.)
    vae.register_to_config(scaling_factor=factor, shift_factor=0.3)
    assert float(encode_images(vae, images).detach().std()) == pytest.approx(1.0, rel=1e-4)
    assert latent_scaling_factor(vae, images) == pytest.approx(factor, rel=1e-5)  # neither the shift nor the factor
    with pytest.raises(ValueError, match="non-empty"):
        latent_scaling_factor(vae, torch.zeros(0, 1, 16, 16))
