"""Latent joint training's library side: the frozen VAE, its scaling factor, the latent UNet, encoding, records."""

import argparse
import json

import datasets
import pytest
import torch
from accelerate import Accelerator

from diffusers_joint.data import ImagePreprocessor, load_joint_dataset
from diffusers_joint.evaluation import dataset_to_tensors
from diffusers_joint.pipelines.latent_codec import encode_images
from diffusers_joint.training import (
    VAE_RECORD_FILE,
    add_model_arguments,
    build_model_card,
    cache_latents,
    check_checkpoint_vae,
    create_autoencoder,
    create_latent_joint_unet,
    encode_pixel_views,
    encode_tensors,
    ensure_scaling_factor,
    has_scaling_factor,
    latent_scaling_factor,
    load_frozen_vae,
    prepare_latent_space,
    scaling_subset,
    weights_fingerprint,
)


def save_tiny_vae(folder, in_channels=1, scaling_factor=True, seed=0):
    torch.manual_seed(seed)
    vae = create_autoencoder(in_channels, 4, latent_channels=2, block_out_channels=(8, 16, 16), resolution=16)
    vae.save_pretrained(folder)
    if not scaling_factor:  # as a config written without one (diffusers then fills in its default)
        config = json.loads((folder / "config.json").read_text())
        del config["scaling_factor"]
        (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def digits():
    return load_joint_dataset()


def model_args(*argv):
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    parser.add_argument("--resolution", type=int, default=None)
    return parser.parse_args(["--block_out_channels", "8", "16", "--attention_levels", *argv])


def test_the_vae_is_loaded_frozen_and_a_missing_scaling_factor_is_computed_and_recorded(tmp_path):
    vae = load_frozen_vae(save_tiny_vae(tmp_path / "vae", scaling_factor=False), pixel_channels=1)
    assert not vae.training and not any(p.requires_grad for p in vae.parameters())
    assert not has_scaling_factor(vae)  # diffusers' 0.18215 filled in for the missing key is not taken
    images = torch.rand(32, 1, 16, 16) * 2 - 1
    expected = latent_scaling_factor(vae, images, batch_size=8)
    assert ensure_scaling_factor(vae, images, batch_size=8)
    assert vae.config.scaling_factor == expected != 0.18215
    assert has_scaling_factor(vae)  # recorded: not computed twice
    assert not ensure_scaling_factor(vae, images)
    vae.save_pretrained(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["scaling_factor"] == expected


def test_a_recorded_scaling_factor_is_kept(tmp_path):
    vae = load_frozen_vae(save_tiny_vae(tmp_path / "vae"), pixel_channels=1)
    assert has_scaling_factor(vae)
    latent = prepare_latent_space(Accelerator(cpu=True), vae, tmp_path / "vae", 1)
    assert not latent.computed_scaling_factor and vae.config.scaling_factor == 0.18215
    assert (
        "(the VAE's own)" in latent.describe() and "latents of 2 x 4 x 4 (downsampling factor 4)" in latent.describe()
    )


def test_a_vae_for_other_image_channels_is_refused_naming_both(tmp_path):
    folder = save_tiny_vae(tmp_path / "vae", in_channels=2)
    with pytest.raises(ValueError, match="The images have 1 channels but `vae.config.in_channels` is 2"):
        load_frozen_vae(folder, pixel_channels=1)
    # grayscale images through an RGB VAE are converted (repeated on encoding)
    load_frozen_vae(save_tiny_vae(tmp_path / "rgb", in_channels=3), pixel_channels=1)


def test_the_latent_unet_diffuses_the_vae_latents_at_the_resolution_over_the_factor(tmp_path, digits):
    vae = load_frozen_vae(save_tiny_vae(tmp_path / "vae"), pixel_channels=1)
    vae.register_to_config(sample_size=64)  # a VAE made for another size is set to the training resolution
    unet = create_latent_joint_unet(digits, vae, model_args("--resolution", "16"))
    assert unet.config.in_channels == unet.config.out_channels == 2
    assert unet.config.sample_size == 4 and vae.config.sample_size == 16
    # default: the images' 8 px, over the factor 4
    unet = create_latent_joint_unet(digits, vae, model_args())
    assert unet.config.sample_size == 2 and vae.config.sample_size == 8


@pytest.mark.parametrize(
    "resolution, message",
    [
        ("18", "--resolution 18 is not a multiple of the VAE's downsampling factor 4"),
        ("12", r"--resolution 12 makes latents of 12 // 4 = 3 but the UNet's sample_size is 4"),
    ],
)
def test_a_resolution_the_vae_or_the_unet_cannot_take_is_refused_naming_the_values(
    tmp_path, digits, resolution, message
):
    vae = load_frozen_vae(save_tiny_vae(tmp_path / "vae"), pixel_channels=1)
    with pytest.raises(ValueError, match=message):
        create_latent_joint_unet(digits, vae, model_args("--resolution", resolution))


def test_every_view_of_a_batch_is_encoded_and_a_shared_view_once(tmp_path):
    vae = load_frozen_vae(save_tiny_vae(tmp_path / "vae"), pixel_channels=1)
    images, view = torch.rand(2, 4, 1, 16, 16) * 2 - 1
    batch = {
        "pixel_values": images,
        "classifier_pixel_values": view,
        "weak_pixel_values": view,
        "labels": torch.ones(4),
    }
    out = encode_pixel_views(vae, batch)
    assert out["labels"] is batch["labels"] and "strong_pixel_values" not in out
    assert out["pixel_values"].shape == (4, 2, 4, 4) and out["pixel_values"].dtype == torch.float32
    assert torch.equal(out["pixel_values"], encode_images(vae, images))  # the posterior mean: no random draw
    assert out["weak_pixel_values"] is out["classifier_pixel_values"]
    assert torch.allclose(encode_tensors(vae, view, batch_size=3), out["classifier_pixel_values"], atol=1e-6)
    assert batch["pixel_values"] is images  # the caller's batch is left alone


def test_a_resume_must_use_the_vae_the_checkpoint_was_written_with(tmp_path, caplog):
    vae = load_frozen_vae(save_tiny_vae(tmp_path / "vae"), pixel_channels=1)
    record = prepare_latent_space(Accelerator(cpu=True), vae, tmp_path / "vae", 1).record
    pixel, latent = tmp_path / "checkpoint-1", tmp_path / "checkpoint-2"
    pixel.mkdir(), latent.mkdir()
    (latent / VAE_RECORD_FILE).write_text(json.dumps(record))
    check_checkpoint_vae(pixel, None)
    check_checkpoint_vae(latent, record)
    with pytest.raises(ValueError, match="written by a pixel-space run"):
        check_checkpoint_vae(pixel, record)
    with pytest.raises(
        ValueError, match=f"written by a latent run with --pretrained_vae_model_name_or_path {tmp_path}"
    ):
        check_checkpoint_vae(latent, None)
    other = {**record, "config": {**record["config"], "scaling_factor": 0.5}}
    with pytest.raises(ValueError, match="scaling_factor: 0.18215 then, 0.5 now"):
        check_checkpoint_vae(latent, other)
    retrained = load_frozen_vae(save_tiny_vae(tmp_path / "vae2", seed=1), pixel_channels=1)
    with pytest.raises(ValueError, match="its weights differ"):
        check_checkpoint_vae(latent, {**record, "weights_sha256": weights_fingerprint(retrained)})
    check_checkpoint_vae(latent, {**record, "pretrained_vae_model_name_or_path": "moved/vae"})  # same VAE, moved


def test_the_model_card_names_the_latent_space_and_pixel_cards_have_none():
    common = dict(model_name="m", label_names=["a", "b"], dataset_description="d", num_labeled=2,
                  num_train_examples=4, resolution=16, channels=1)  # fmt: skip
    pixel = str(build_model_card(**common))
    assert "Latent space" not in pixel and "CounterfactualPipeline.from_joint_pipeline(pipe)" in pixel
    assert "channel(s)\n- **Input intensities:**" in pixel
    latent = str(build_model_card(**common, latent_space="`AutoencoderKL` from `vae-x`"))
    assert "channel(s)\n- **Latent space:** `AutoencoderKL` from `vae-x`\n- **Input intensities:**" in latent
    assert "CounterfactualPipeline.from_joint_pipeline(pipe)" in latent


def test_cached_latents_are_exactly_the_encoded_preprocessed_images_with_their_labels(tmp_path):
    vae = load_frozen_vae(save_tiny_vae(tmp_path / "vae"), 1)
    train = load_joint_dataset(seed=0).train.select(range(20))
    preprocessor = ImagePreprocessor(16, 1)
    cached = cache_latents(train, preprocessor, vae, weights_fingerprint(vae), batch_size=8)
    assert "image" not in cached.column_names and cached["label"] == train["label"]
    images, _ = dataset_to_tensors(train, preprocessor, labeled_only=False)
    expected = encode_tensors(vae, images)
    rows = torch.stack([row["latents"] for row in cached])
    assert rows.shape == (20, 2, 4, 4) and rows.dtype == torch.float32
    torch.testing.assert_close(rows, expected, rtol=0, atol=1e-6)


def test_a_vae_rescaled_for_another_run_does_not_reuse_the_cached_latents(tmp_path):
    """Same weights, another scaling factor (computed per run when the VAE records none): the cache is on disk."""
    vae = load_frozen_vae(save_tiny_vae(tmp_path / "vae"), 1)
    load_joint_dataset(seed=0).train.select(range(12)).save_to_disk(tmp_path / "train")
    train = datasets.load_from_disk(tmp_path / "train")  # disk-backed: map() writes and finds its cache files
    preprocessor = ImagePreprocessor(16, 1)
    first = cache_latents(train, preprocessor, vae, weights_fingerprint(vae), batch_size=8)
    first = torch.stack([row["latents"] for row in first])
    vae.register_to_config(scaling_factor=vae.config.scaling_factor * 2)
    rescaled = cache_latents(train, preprocessor, vae, weights_fingerprint(vae), batch_size=8)
    torch.testing.assert_close(torch.stack([row["latents"] for row in rescaled]), 2 * first, rtol=0, atol=1e-5)


def test_scaling_images_are_a_seeded_sample_of_every_class():
    sorted_by_class = datasets.Dataset.from_dict({"label": [0] * 50 + [1] * 50})
    subset = scaling_subset(sorted_by_class, 20, seed=0)
    assert len(subset) == 20 and set(subset["label"]) == {0, 1}  # the first 20 rows would all be class 0
    assert subset["label"] == scaling_subset(sorted_by_class, 20, seed=0)["label"]
    assert len(scaling_subset(sorted_by_class, 500, seed=0)) == 100
