# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The explanation app's functions without a browser: same answers as the pipelines, clear errors, readable images."""

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import DDPMScheduler

from diffusers_joint import CounterfactualPipeline, JointDiffusionPipeline
from diffusers_joint.app import ExplanationApp, load_joint_pipeline
from diffusers_joint.data import ImageReadError
from diffusers_joint.pipelines import probabilities_by_name, upscale_image
from diffusers_joint.pipelines.latent_codec import encode_images
from diffusers_joint.pipelines.pipeline_utils import preprocess_images
from tiny_models import tiny_joint_pipeline, tiny_joint_unet, tiny_latent_unet, tiny_vae

NAMES = ["normal", "pneumonia", "effusion"]


@pytest.fixture
def app() -> ExplanationApp:
    return ExplanationApp(tiny_joint_pipeline(num_classes=3, label_names=NAMES), num_inference_steps=4)


@pytest.fixture
def image() -> PIL.Image.Image:
    return PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8), mode="L")


def test_probabilities_by_name_keeps_class_order_and_values():
    unet = tiny_joint_unet(num_classes=3, label_names=NAMES)
    rows = probabilities_by_name(unet, torch.tensor([[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]]))
    assert rows == [{"normal": pytest.approx(0.2), "pneumonia": 0.5, "effusion": pytest.approx(0.3)},
                    {"normal": 1.0, "pneumonia": 0.0, "effusion": 0.0}]  # fmt: skip
    assert list(rows[0]) == NAMES and all(type(v) is float for v in rows[0].values())
    with pytest.raises(ValueError, match=r"shape \(batch, 3\)"):
        probabilities_by_name(unet, np.zeros((1, 2)))


def test_classify_returns_the_pipelines_probabilities_by_name(app, image):
    probs, confidence = app.classify(image)
    expected = app.pipeline.classify(image).probs[0]
    assert probs == pytest.approx(dict(zip(NAMES, expected.tolist())))
    assert confidence == pytest.approx(float(expected.max()))


def test_multi_label_confidence_is_the_mean_probability_of_each_decision(image):
    pipe = tiny_joint_pipeline(num_classes=3, label_names=NAMES, problem_type="multi_label_classification")
    probs, confidence = ExplanationApp(pipe).classify(image)
    p = np.array(list(probs.values()))
    assert confidence == pytest.approx(np.where(p >= 0.5, p, 1 - p).mean())


def test_counterfactual_is_reproducible_and_seed_dependent(app, image):
    first = app.counterfactual(image, "effusion", strength=0.5, seed=1)
    again = app.counterfactual(image, "effusion", strength=0.5, seed=1)
    other = app.counterfactual(image, "effusion", strength=0.5, seed=2)
    np.testing.assert_array_equal(np.asarray(first.counterfactual), np.asarray(again.counterfactual))
    assert not np.array_equal(np.asarray(first.counterfactual), np.asarray(other.counterfactual))
    assert first.input_image.size == first.counterfactual.size == first.overlay.size == (256, 256)
    assert list(first.probs_before) == NAMES and sum(first.probs_after.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("problem_type", ["single_label_classification", "multi_label_classification"])
def test_counterfactual_says_whether_the_input_is_already_the_target(image, problem_type):
    pipe = tiny_joint_pipeline(num_classes=3, label_names=NAMES, problem_type=problem_type)
    app = ExplanationApp(pipe, num_inference_steps=4)
    probs, _ = app.classify(image)
    if problem_type == "single_label_classification":
        decided = {max(probs, key=probs.get)}
    else:
        decided = {name for name, p in probs.items() if p >= 0.5}
    for target in NAMES:
        out = app.counterfactual(image, target, strength=0.5, seed=0)
        assert out.already_target == (decided == {target})  # a multi-label target is the set of that class only
        assert not (out.already_target and out.flipped)


def test_generate_gives_a_captioned_gallery_and_a_labelled_grid(app):
    gallery, grid = app.generate(["pneumonia", "normal"], samples_per_class=3, seed=0)
    assert [caption for _, caption in gallery] == ["pneumonia"] * 3 + ["normal"] * 3
    assert all(image.size == (256, 256) for image, _ in gallery)
    assert grid.height == 2 * 64 + 3 * 4 and grid.width > 3 * 64 + 4 * 4  # two rows, a label column


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda app, image: app.classify(None), "upload an image first"),
        (lambda app, image: app.counterfactual(image, "cardiomegaly"), r"Unknown target class 'cardiomegaly'.*normal"),
        (lambda app, image: app.generate([]), "at least one class"),
        (lambda app, image: app.generate(["normal", "tumour"]), r"Unknown classes \['tumour'\]"),
        (lambda app, image: app.generate(["normal"], samples_per_class=0), "at least 1"),
    ],
)
def test_bad_input_gets_a_message_that_names_it(app, image, call, match):
    with pytest.raises(ValueError, match=match):
        call(app, image)


def test_load_joint_pipeline_from_a_folder_and_clear_errors(tmp_path):
    unet = tiny_joint_unet(num_classes=3, label_names=NAMES)
    JointDiffusionPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=20)).save_pretrained(tmp_path / "p")
    pipe = load_joint_pipeline(tmp_path / "p", device="cpu")
    assert not pipe.unet.training and pipe.unet.config.label_names == NAMES
    assert ExplanationApp(pipe).num_inference_steps == 20  # capped at the scheduler's training timesteps
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no model_index.json"):
        load_joint_pipeline(tmp_path / "empty")


def test_classify_shows_calibrated_probabilities_and_says_so(image):
    pipe = tiny_joint_pipeline(num_classes=3, label_names=NAMES, classifier_temperature=3.0)
    app = ExplanationApp(pipe)
    probs, confidence = app.classify(image)
    logits = pipe.unet.classify(preprocess_images(pipe.unet, image), 0)
    calibrated = torch.softmax(logits / 3.0, dim=1)[0]
    assert list(probs.values()) == pytest.approx(calibrated.tolist(), abs=1e-6)
    assert confidence == pytest.approx(calibrated.max().item(), abs=1e-6)
    assert confidence != pytest.approx(torch.softmax(logits, dim=1).max().item(), abs=1e-6)
    assert app.classifier_temperature == 3.0
    assert app.calibration_note == "calibrated by temperature scaling with the model's classifier temperature 3"
    uncalibrated = ExplanationApp(tiny_joint_pipeline(num_classes=3, label_names=NAMES))
    assert uncalibrated.calibration_note.startswith("not calibrated (classifier temperature 1.0)")


def test_files_are_read_with_the_pipelines_saved_normalisation(tmp_path):
    unet = tiny_joint_unet(num_classes=3, label_names=NAMES).eval()
    scheduler = DDPMScheduler(num_train_timesteps=20)
    pipe = JointDiffusionPipeline(unet=unet, scheduler=scheduler, intensity_normalization="minmax")
    app = ExplanationApp(pipe, num_inference_steps=3)
    # 16-bit, in a narrow band of its range: "minmax" stretches it, the default "dtype" would leave it dark
    pixels = np.random.default_rng(1).integers(1000, 3000, (8, 8)).astype(np.uint16)
    PIL.Image.fromarray(pixels).save(tmp_path / "scan.png")
    path = str(tmp_path / "scan.png")

    probs, _ = app.classify(path)
    assert list(probs.values()) == pytest.approx(pipe.classify(path).probs[0].tolist(), abs=1e-6)
    explanation = app.counterfactual(path, "effusion", strength=0.5, seed=1)
    explain = CounterfactualPipeline(unet=unet, scheduler=scheduler, intensity_normalization="minmax")
    expected = explain(
        path, "effusion", strength=0.5, num_inference_steps=3, generator=torch.Generator().manual_seed(1)
    )
    np.testing.assert_array_equal(
        np.asarray(explanation.counterfactual), np.asarray(upscale_image(expected.images[0], 256))
    )
    stretched = np.round((pixels - pixels.min()) / np.ptp(pixels) * 255)
    shown = np.asarray(explanation.input_image)[::32, ::32]  # the 8x8 input, enlarged 32 times
    assert np.abs(shown.astype(float) - stretched).max() <= 1

    (tmp_path / "cut.png").write_bytes((tmp_path / "scan.png").read_bytes()[:50])
    with pytest.raises(ImageReadError, match=r"cut\.png: "):
        app.classify(str(tmp_path / "cut.png"))


def test_the_app_works_on_a_saved_latent_pipeline(tmp_path, image):
    """A pipeline with a VAE: the app classifies, explains and generates images at the VAE's size (16 px)."""
    pipe = JointDiffusionPipeline(
        unet=tiny_latent_unet(num_classes=3, label_names=NAMES),
        scheduler=DDPMScheduler(num_train_timesteps=20, clip_sample=False),
        vae=tiny_vae(3),
        pixel_channels=1,  # grayscale images through a 3-channel VAE
    )
    pipe.save_pretrained(tmp_path)
    app = ExplanationApp.from_pretrained(tmp_path, device="cpu", num_inference_steps=4)
    assert app.explainer.vae is app.pipeline.vae and app.explainer.pixel_channels == 1

    probs, confidence = app.classify(image)  # a 28-px image, resized to 16 px and encoded
    expected = app.pipeline.classify(image).probs[0]
    with torch.no_grad():
        latents = encode_images(app.pipeline.vae, app.pipeline.preprocess(image))
        direct = app.pipeline.unet.probabilities(app.pipeline.unet.classify(latents, 0))[0]
    torch.testing.assert_close(expected, direct)
    assert list(probs.values()) == pytest.approx(expected.tolist(), abs=1e-6)
    assert confidence == pytest.approx(float(expected.max()), abs=1e-6)

    explanation = app.counterfactual(image, "effusion", strength=0.5, seed=1)
    expected = app.explainer(
        image, "effusion", strength=0.5, num_inference_steps=4, generator=torch.Generator().manual_seed(1)
    )
    assert expected.images[0].size == (16, 16) and expected.images[0].mode == "L"
    np.testing.assert_array_equal(
        np.asarray(explanation.counterfactual), np.asarray(upscale_image(expected.images[0], 256))
    )
    assert explanation.input_image.size == explanation.overlay.size == (256, 256)
    assert explanation.l1 == pytest.approx(float(expected.l1[0]))

    gallery, _ = app.generate(["normal"], samples_per_class=2, seed=0)
    assert [image.size for image, _ in gallery] == [(256, 256)] * 2
