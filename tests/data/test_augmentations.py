# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
import kornia
import pytest
import torch

from diffusers_joint.data import (
    CLASSIFIER_AUGMENTATIONS,
    JointAugmentation,
    classifier_augmentation,
    latent_augmentation,
    strong_augmentation,
)


@pytest.fixture
def images(digits):
    arrays, _ = digits
    return torch.tensor(arrays[:16], dtype=torch.float32)[:, None] / 255 * 2 - 1


def test_classifier_augmentation_changes_images_within_range_and_none_is_identity(images):
    torch.manual_seed(0)
    assert torch.equal(classifier_augmentation("none")(images), images)
    change = {}
    for strength in ("light", "medium", "strong"):
        out = classifier_augmentation(strength)(images)
        assert out.shape == images.shape and out.min() >= -1 and out.max() <= 1
        change[strength] = (out - images).abs().mean().item()
    # Small geometric moves: closer to the original than an unrelated digit is, stronger moves change more.
    unrelated = (images - images.roll(1, dims=0)).abs().mean().item()
    assert 0 < change["light"] < change["strong"] < unrelated
    with pytest.raises(ValueError, match="Unknown augmentation strength 'huge'"):
        classifier_augmentation("huge")
    assert set(CLASSIFIER_AUGMENTATIONS) == {"none", "light", "medium", "strong"}


def test_joint_augmentation_touches_only_the_classifier_views_and_depends_only_on_the_seed(images):
    augment = JointAugmentation(num_channels=1, strength="medium", fixmatch=True)
    torch.manual_seed(0)
    out = augment(images)
    assert torch.equal(out["pixel_values"], images)  # the diffusion input is never augmented
    assert out["weak_pixel_values"] is out["classifier_pixel_values"]
    assert not torch.equal(out["classifier_pixel_values"], images)
    assert not torch.equal(out["strong_pixel_values"], out["weak_pixel_values"])
    torch.rand(7)  # whatever ran before: only the seed counts
    torch.manual_seed(0)
    again = augment(images)
    assert all(torch.equal(out[key], again[key]) for key in out)
    assert set(JointAugmentation(1, "none")(images)) == {"pixel_values", "classifier_pixel_values"}
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        augment(images[0])


def test_random_flip_flips_the_diffusion_input_of_some_images_only(images):
    torch.manual_seed(0)
    out = JointAugmentation(num_channels=1, strength="none", random_flip=True)(images)
    flipped = [torch.equal(a, b.flip(-1)) for a, b in zip(out["pixel_values"], images)]
    kept = [torch.equal(a, b) for a, b in zip(out["pixel_values"], images)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


def test_strong_view_works_on_colour_images():
    torch.manual_seed(0)
    colour = torch.rand(4, 3, 16, 16) * 2 - 1
    out = JointAugmentation(num_channels=3, strength="light", fixmatch=True)(colour)
    assert out["strong_pixel_values"].shape == colour.shape
    assert out["strong_pixel_values"].min() >= -1 and out["strong_pixel_values"].max() <= 1


def test_latent_augmentation_moves_latents_geometrically_without_a_range():
    torch.manual_seed(0)
    latents = torch.randn(8, 4, 16, 16) * 3  # scaled latents are not confined to [-1, 1]
    assert torch.equal(latent_augmentation("none")(latents), latents)
    out = latent_augmentation("medium")(latents)
    assert out.shape == latents.shape and not torch.equal(out, latents)
    assert out.abs().max() > 1  # nothing clipped to an image range
    # an affine map only: a constant latent stays constant (no brightness, contrast or gamma)
    constant = torch.full((2, 4, 16, 16), 2.5)
    torch.testing.assert_close(latent_augmentation("strong")(constant), constant)
    with pytest.raises(ValueError, match="Unknown augmentation strength 'huge'"):
        latent_augmentation("huge")


def test_joint_augmentation_in_latent_space_augments_the_classifier_view_and_cuts_out_the_strong_view():
    torch.manual_seed(0)
    latents = torch.randn(4, 4, 8, 8) * 2
    out = JointAugmentation(num_channels=1, strength="medium", latent_space=True)(latents)
    assert torch.equal(out["pixel_values"], latents)
    assert out["classifier_pixel_values"].shape == latents.shape
    assert not torch.equal(out["classifier_pixel_values"], latents) and out["classifier_pixel_values"].abs().max() > 1
    strong = JointAugmentation(num_channels=1, fixmatch=True, latent_space=True)(latents)["strong_pixel_values"]
    assert strong.shape == latents.shape and (strong == 0).any() and not (latents == 0).any()  # cutout to 0


@pytest.mark.parametrize("version, warned", [("0.7.3", True), ("0.9.0", True), ("0.9.2", False), ("0.10.0rc1", False)])
def test_a_kornia_with_harsher_randaugment_is_warned_about(monkeypatch, caplog, version, warned):
    monkeypatch.setattr(kornia, "__version__", version)
    with caplog.at_level("WARNING"):
        strong_augmentation(num_channels=1)
    assert (f"kornia {version}'s RandAugment shears" in caplog.text) is warned
