# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Latent pipelines: a tiny seeded VAE (16x16 images, 8x8x4 latents) with a tiny joint UNet on its latents."""

import json

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler

from diffusers_joint import CounterfactualPipeline, JointDiffusionPipeline
from diffusers_joint.pipelines.latent_codec import decode_latents, encode_images, vae_scale_factor
from tiny_models import tiny_joint_pipeline, tiny_latent_unet, tiny_vae

NAMES = ["normal", "lesion", "other"]


def latent_pipeline(cls=JointDiffusionPipeline, channels: int = 1, **kwargs):
    pipe = cls(
        unet=tiny_latent_unet(num_classes=3, label_names=NAMES).eval(),
        scheduler=DDPMScheduler(num_train_timesteps=20, clip_sample=False),
        vae=tiny_vae(channels),
        **kwargs,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def pixel_images(count: int = 3, size: int = 16, channels: int = 1, seed: int = 0) -> torch.Tensor:
    """Images in [-1, 1] with some negative values, so the pipelines read them as [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, channels, size, size, generator=generator) * 2 - 1


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_codec_scales_and_shifts_as_the_vae_config_says():
    vae = tiny_vae(scaling_factor=0.5, shift_factor=0.3)
    images = pixel_images()
    mode = vae.encode(images).latent_dist.mode()
    latents = encode_images(vae, images)
    torch.testing.assert_close(latents, (mode - 0.3) * 0.5)
    # decoding undoes the scaling and the shift: the VAE's own reconstruction, clamped to [-1, 1]
    torch.testing.assert_close(decode_latents(vae, latents), vae.decode(mode).sample.clamp(-1, 1))
    # the mode is deterministic; a posterior sample follows its generator
    torch.testing.assert_close(encode_images(vae, images), latents)
    drawn = encode_images(vae, images, sample_posterior=True, generator=generator(1))
    assert not torch.allclose(drawn, latents)
    torch.testing.assert_close(drawn, encode_images(vae, images, sample_posterior=True, generator=generator(1)))
    assert vae_scale_factor(vae) == 2 and latents.shape == (3, 4, 8, 8)


def test_samples_are_decoded_images_of_the_vaes_size():
    pipe = latent_pipeline()
    assert (pipe.pixel_size, pipe.pixel_channels, pipe.vae_scale_factor) == (16, 1, 2)
    output = pipe(class_labels=[0, "lesion"], num_inference_steps=4, generator=generator(), output_type="pt")
    assert output.images.shape == (2, 1, 16, 16)
    assert output.images.min() >= 0 and output.images.max() <= 1
    pil = pipe(class_labels=[0, 1], num_inference_steps=4, generator=generator()).images
    assert [(image.size, image.mode) for image in pil] == [((16, 16), "L")] * 2
    # the decoder made them: the latents handed to vae.decode come back as the images
    decoded = []
    original_decode = pipe.vae.decode
    pipe.vae.decode = lambda z, *a, **k: decoded.append(z) or original_decode(z, *a, **k)
    images = pipe(class_labels=[0, 1], num_inference_steps=4, generator=generator(), output_type="pt").images
    assert len(decoded) == 1 and decoded[0].shape == (2, 4, 8, 8)
    torch.testing.assert_close(images, output.images)
    torch.testing.assert_close(images, (original_decode(decoded[0]).sample.clamp(-1, 1) + 1) / 2)


def test_classify_encodes_pixel_images():
    pipe = latent_pipeline()
    images = pixel_images(4)
    probs = pipe.classify(images).probs
    with torch.no_grad():
        expected = pipe.unet.probabilities(pipe.unet.classify(encode_images(pipe.vae, images), 0))
    torch.testing.assert_close(probs, expected)
    torch.testing.assert_close(pipe.classify(images, batch_size=1).probs, probs)
    # PIL images and arrays of another size are resized to the VAE's resolution first, as in training
    array = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    from_pil = pipe.classify([PIL.Image.fromarray(array, mode="L")]).probs
    torch.testing.assert_close(from_pil, pipe.classify([array]).probs)
    with torch.no_grad():
        pixels = pipe.preprocess([array])
        assert pixels.shape == (1, 1, 16, 16)
        expected = pipe.unet.probabilities(pipe.unet.classify(encode_images(pipe.vae, pixels), 0))
    torch.testing.assert_close(from_pil, expected)
    torch.testing.assert_close(pipe.unet.probabilities(pipe.classifier_logits(pixels)), expected)


def test_latent_tensors_are_not_taken_for_images():
    pipe = latent_pipeline()
    with pytest.raises(ValueError, match="4 channels but the model expects in_channels=1"):
        pipe.classify(torch.randn(2, 4, 8, 8))


@pytest.mark.parametrize("mask_image", ["auto", None, "left"])
def test_counterfactuals_are_in_pixel_space_at_the_inputs_size(mask_image):
    pipe = latent_pipeline(CounterfactualPipeline)
    images = pixel_images(2)
    mask = None
    if mask_image == "left":  # only the right half may change
        mask = torch.zeros(1, 1, 16, 16)
        mask[..., 8:] = 1
        mask_image = mask
    kwargs = dict(target_class="lesion", strength=0.6, num_inference_steps=10, mask_image=mask_image)
    output = pipe(images, generator=generator(), output_type="pt", **kwargs)
    assert output.images.shape == output.difference.shape == output.abs_difference.shape == (2, 1, 16, 16)
    assert [m.size for m in output.difference_heatmaps + output.difference_overlays] == [(16, 16)] * 4
    counterfactuals = output.images * 2 - 1
    torch.testing.assert_close(output.difference, counterfactuals - images, atol=1e-6, rtol=0)
    torch.testing.assert_close(output.l1, output.abs_difference.mean(dim=(1, 2, 3)))
    # probabilities of the pixel images, read through their latents
    torch.testing.assert_close(output.original_probs, pipe.classify(images).probs)
    counterfactual_probs = pipe.unet.probabilities(pipe.classifier_logits(counterfactuals))
    torch.testing.assert_close(output.counterfactual_probs, counterfactual_probs, atol=1e-5, rtol=0)
    if mask_image is None:
        assert output.masks is None
    else:
        assert output.masks.shape == (2, 1, 16, 16)
        # outside the mask the input comes back exactly, although the VAE does not reconstruct it exactly
        outside = (output.masks == 0).expand_as(output.difference)
        assert outside.any() and (output.difference[outside].abs() < 1e-6).all()
        if mask is not None:
            torch.testing.assert_close(output.masks, mask.expand(2, -1, -1, -1))
    # seeded: the same generator gives the same explanation
    again = pipe(images, generator=generator(), output_type="pt", **kwargs)
    torch.testing.assert_close(again.images, output.images)


def test_latent_pipeline_round_trips_through_save_pretrained(tmp_path):
    pipe = latent_pipeline(pixel_channels=1, intensity_normalization="minmax")
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["vae"] == ["diffusers", "AutoencoderKL"] and index["pixel_channels"] == 1
    assert (tmp_path / "vae" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = JointDiffusionPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert isinstance(loaded.vae, AutoencoderKL) and loaded.vae.config.sample_size == 16
    for name, tensor in pipe.vae.state_dict().items():
        torch.testing.assert_close(loaded.vae.state_dict()[name], tensor, rtol=0, atol=0)
    assert (loaded.pixel_size, loaded.pixel_channels) == (16, 1)
    assert loaded.image_normalization == pipe.image_normalization
    kwargs = dict(class_labels=[0, 1], num_inference_steps=4, output_type="pt")
    torch.testing.assert_close(
        loaded(generator=generator(), **kwargs).images, pipe(generator=generator(), **kwargs).images
    )
    images = pixel_images()
    torch.testing.assert_close(loaded.classify(images).probs, pipe.classify(images).probs)
    explainer = CounterfactualPipeline.from_pretrained(tmp_path)
    explainer.set_progress_bar_config(disable=True)
    reference = CounterfactualPipeline.from_joint_pipeline(pipe)
    reference.set_progress_bar_config(disable=True)
    cf_kwargs = dict(target_class=1, num_inference_steps=8, output_type="pt")
    torch.testing.assert_close(
        explainer(images, generator=generator(), **cf_kwargs).images,
        reference(images, generator=generator(), **cf_kwargs).images,
    )


def test_pixel_pipelines_saved_before_the_vae_still_load(tmp_path):
    pipe = tiny_joint_pipeline(num_classes=3, label_names=NAMES)
    pipe.save_pretrained(tmp_path)
    index_path = tmp_path / "model_index.json"
    index = json.loads(index_path.read_text())
    assert index["vae"] == [None, None] and index["pixel_channels"] is None  # diffusers' record of "no component"
    assert not (tmp_path / "vae").exists()
    assert JointDiffusionPipeline.from_pretrained(tmp_path).vae is None
    del index["vae"], index["pixel_channels"]  # as written before pipelines took a vae
    index_path.write_text(json.dumps(index))
    for cls in (JointDiffusionPipeline, CounterfactualPipeline):
        loaded = cls.from_pretrained(tmp_path)
        assert loaded.vae is None and (loaded.pixel_size, loaded.pixel_channels, loaded.vae_scale_factor) == (8, 1, 1)
    loaded = JointDiffusionPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    kwargs = dict(class_labels=[0, 1], num_inference_steps=4, output_type="pt")
    torch.testing.assert_close(
        loaded(generator=generator(), **kwargs).images, pipe(generator=generator(), **kwargs).images
    )


def test_mismatched_vaes_are_refused_at_construction():
    scheduler = DDPMScheduler(num_train_timesteps=20)
    unet = tiny_latent_unet(num_classes=3)
    with pytest.raises(ValueError, match=r"vae.config.latent_channels=3 but unet.config.in_channels=4"):
        JointDiffusionPipeline(unet=unet, scheduler=scheduler, vae=tiny_vae(latent_channels=3))
    with pytest.raises(ValueError, match=r"vae.config.sample_size=32 makes latents of 32 // 2 = 16 but "):
        CounterfactualPipeline(unet=unet, scheduler=scheduler, vae=tiny_vae(sample_size=32))
    with pytest.raises(ValueError, match=r"unet.config.sample_size=8.*sample_size=16\)"):
        JointDiffusionPipeline(unet=unet, scheduler=scheduler, vae=tiny_vae(sample_size=32))
    with pytest.raises(ValueError, match=r"The images have 2 channels but `vae.config.in_channels` is 3"):
        JointDiffusionPipeline(unet=unet, scheduler=scheduler, vae=tiny_vae(3), pixel_channels=2)
    with pytest.raises(ValueError, match=r"The images have 3 channels but `vae.config.in_channels` is 1"):
        JointDiffusionPipeline(unet=unet, scheduler=scheduler, vae=tiny_vae(1), pixel_channels=3)
    with pytest.raises(ValueError, match=r"`pixel_channels`=3 differs from unet.config.in_channels=1"):
        JointDiffusionPipeline(
            unet=tiny_latent_unet(in_channels=1, out_channels=1), scheduler=scheduler, pixel_channels=3
        )


def test_a_unet_without_sample_size_is_named_in_the_error():
    pixel = tiny_joint_pipeline(num_classes=3, scheduler=DDIMScheduler(num_train_timesteps=20), sample_size=None)
    latent = JointDiffusionPipeline(
        unet=tiny_latent_unet(3, sample_size=None),
        scheduler=DDIMScheduler(num_train_timesteps=20, clip_sample=False),
        vae=tiny_vae(1),
    )
    latent.set_progress_bar_config(disable=True)
    calls = [
        lambda: pixel(class_labels=[0], num_inference_steps=2),
        lambda: latent.pixel_size,
        lambda: latent.classify(pixel_images(1)),
        lambda: latent(class_labels=[0], num_inference_steps=2),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"no `sample_size`.*unet\.config\.sample_size"):
            call()


def test_grayscale_images_with_a_three_channel_vae():
    pipe = latent_pipeline(channels=3, pixel_channels=1)
    assert (pipe.pixel_size, pipe.pixel_channels, pipe.vae.config.in_channels) == (16, 1, 3)
    images = pixel_images(2)
    # encoding repeats the channel, decoding averages the three
    latents = encode_images(pipe.vae, images)
    torch.testing.assert_close(latents, encode_images(pipe.vae, images.repeat(1, 3, 1, 1)))
    with torch.no_grad():
        rgb = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample
    assert rgb.shape == (2, 3, 16, 16) and decode_latents(pipe.vae, latents).shape == (2, 3, 16, 16)
    expected = rgb.mean(dim=1, keepdim=True).clamp(-1, 1)
    torch.testing.assert_close(decode_latents(pipe.vae, latents, pixel_channels=1), expected)
    samples = pipe(class_labels=[0, 1], num_inference_steps=4, generator=generator()).images
    assert [image.mode for image in samples] == ["L", "L"]
    gray = PIL.Image.fromarray(np.random.default_rng(1).integers(0, 256, (16, 16), dtype=np.uint8), mode="L")
    with torch.no_grad():
        expected = pipe.unet.classify(encode_images(pipe.vae, pipe.preprocess(gray).repeat(1, 3, 1, 1)), 0)
    torch.testing.assert_close(pipe.classify(gray).probs, pipe.unet.probabilities(expected))
    explainer = CounterfactualPipeline.from_joint_pipeline(pipe)
    explainer.set_progress_bar_config(disable=True)
    output = explainer(gray, target_class=2, num_inference_steps=8, generator=generator(), output_type="np")
    assert output.images.shape == (1, 16, 16, 1) and output.difference.shape == (1, 1, 16, 16)
    with pytest.raises(ValueError, match=r"The images have 2 channels but the VAE takes vae.config.in_channels=3"):
        encode_images(pipe.vae, torch.zeros(1, 2, 16, 16))


def test_from_joint_pipeline_shares_components_and_settings():
    pipe = latent_pipeline(channels=3, pixel_channels=1, intensity_normalization="percentile", intensity_range=[1, 99])
    pipe.vae.to(torch.float64)
    explainer = CounterfactualPipeline.from_joint_pipeline(pipe)
    assert explainer.unet is pipe.unet and explainer.vae is pipe.vae and explainer.scheduler is pipe.scheduler
    assert explainer.pixel_channels == 1 and explainer.image_normalization == pipe.image_normalization
    assert pipe.vae.dtype == torch.float64  # left alone (from_pipe would cast to float32)
    # images are handled in the VAE's dtype and latents in the UNet's
    assert explainer.pixel_dtype == torch.float64
    images = pixel_images(2).double()
    assert explainer.images_to_latents(images).dtype == torch.float32
    output = explainer(images, target_class=0, num_inference_steps=8, generator=generator(), output_type="pt")
    assert output.images.shape == (2, 1, 16, 16)


def test_ddim_and_guidance_methods_run_on_latents():
    pipe = latent_pipeline()
    pipe.scheduler = DDIMScheduler(num_train_timesteps=20, clip_sample=False)
    for method in ("x0", "noisy", "features"):
        images = pipe(
            class_labels=[0, 1],
            num_inference_steps=4,
            guidance={"method": method},
            generator=generator(),
            output_type="pt",
        ).images
        assert images.shape == (2, 1, 16, 16) and torch.isfinite(images).all()


def test_a_scheduler_that_clips_to_the_pixel_range_is_warned_about(caplog):
    unet, vae = tiny_latent_unet(num_classes=3), tiny_vae()
    with caplog.at_level("WARNING"):
        JointDiffusionPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=20, clip_sample=False), vae=vae)
    assert "clip_sample" not in caplog.text
    with caplog.at_level("WARNING"):
        JointDiffusionPipeline(unet=unet, scheduler=DDIMScheduler(num_train_timesteps=20), vae=vae)
    assert "clips its predicted clean sample to +-1.0 (clip_sample=True)" in caplog.text
