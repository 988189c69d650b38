# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The intensity normalisation is saved with the pipelines and applied by `classify` and counterfactuals."""

import json

import numpy as np
import PIL.Image
import pytest
import torch
from pipeline_test_utils import make_scheduler, make_unet

from diffusers_joint import JointDiffusionPipeline
from diffusers_joint.data import ImageReadError
from diffusers_joint.data.intensity import IntensityNormalization
from diffusers_joint.pipelines import CounterfactualPipeline

HU = np.random.RandomState(0).randint(-1024, 2000, size=(3, 8, 8)).astype(np.int16)  # CT-like, Hounsfield units


def _window_pipeline():
    return JointDiffusionPipeline(
        unet=make_unet(), scheduler=make_scheduler(), intensity_normalization="window", intensity_range=[-1000, 400]
    )


def test_normalisation_round_trips_and_is_applied_after_from_pretrained(tmp_path):
    pipe = _window_pipeline()
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert (index["intensity_normalization"], index["intensity_range"]) == ("window", [-1000.0, 400.0])

    loaded = JointDiffusionPipeline.from_pretrained(tmp_path)
    assert loaded.image_normalization == IntensityNormalization("window", (-1000, 400))
    windowed = np.clip((HU.astype(np.float64) + 1000) / 1400, 0, 1).astype(np.float32)  # by hand
    expected = loaded.classify(torch.from_numpy(windowed[:, None])).probs  # tensors in [0, 1] are not normalised
    torch.testing.assert_close(loaded.classify(list(HU)).probs, expected)
    # the default (the dtype's range) refuses Hounsfield units rather than squashing them to a near-constant image
    default = JointDiffusionPipeline(unet=loaded.unet, scheduler=loaded.scheduler)
    with pytest.raises(ValueError, match="dtype int16 with values .*--intensity_normalization window"):
        default.classify(list(HU))

    counterfactuals = CounterfactualPipeline.from_pretrained(tmp_path)
    counterfactuals.set_progress_bar_config(disable=True)
    assert counterfactuals.image_normalization == loaded.image_normalization
    out = counterfactuals(list(HU), target_class=1, strength=0.2, num_inference_steps=5, output_type="pt",
                          generator=torch.Generator().manual_seed(0))  # fmt: skip
    torch.testing.assert_close(torch.as_tensor(out.original_probs), expected)


def test_pipelines_saved_without_a_normalisation_load_with_the_dtype_range(tmp_path):
    JointDiffusionPipeline(unet=make_unet(), scheduler=make_scheduler()).save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    del index["intensity_normalization"], index["intensity_range"]  # as saved before this option existed
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    pipe = JointDiffusionPipeline.from_pretrained(tmp_path)
    assert pipe.image_normalization == IntensityNormalization("dtype")
    images8 = np.random.RandomState(1).randint(0, 256, size=(2, 8, 8)).astype(np.uint8)
    as_tensor = torch.from_numpy(images8[:, None] / 255).float()
    torch.testing.assert_close(pipe.classify(list(images8)).probs, pipe.classify(as_tensor).probs)


def test_classify_reads_file_paths_and_names_a_bad_file(tmp_path):
    pipe = JointDiffusionPipeline(unet=make_unet(), scheduler=make_scheduler())
    image16 = np.random.RandomState(2).randint(0, 65536, size=(8, 8)).astype(np.uint16)
    PIL.Image.fromarray(image16).save(tmp_path / "x.png")
    torch.testing.assert_close(pipe.classify([tmp_path / "x.png"]).probs, pipe.classify(image16).probs)
    (tmp_path / "broken.png").write_bytes((tmp_path / "x.png").read_bytes()[:60])
    # ImageReadError as such (not wrapped), so that callers such as the app can tell a bad file from other errors
    with pytest.raises(ImageReadError, match=r"^Cannot use the image .*broken\.png: .*(truncated|Truncated)") as info:
        pipe.classify([str(tmp_path / "x.png"), str(tmp_path / "broken.png")])
    assert info.value.path == str(tmp_path / "broken.png")
    counterfactuals = CounterfactualPipeline(unet=pipe.unet, scheduler=pipe.scheduler)
    with pytest.raises(ImageReadError, match=r"broken\.png"):
        counterfactuals(str(tmp_path / "broken.png"), target_class=1, num_inference_steps=2)


def test_an_invalid_saved_normalisation_is_refused():
    with pytest.raises(ValueError, match="needs a window LOW HIGH"):
        JointDiffusionPipeline(unet=make_unet(), scheduler=make_scheduler(), intensity_normalization="window")


def test_the_image_preprocessor_turns_images_into_the_inputs_preprocess_gives():
    pipe = _window_pipeline()
    preprocessor = pipe.image_preprocessor
    assert preprocessor.normalization == IntensityNormalization("window", (-1000, 400))
    assert (preprocessor.resolution, preprocessor.num_channels) == (pipe.pixel_size, pipe.pixel_channels)
    torch.testing.assert_close(preprocessor.batch(list(HU)), pipe.preprocess(list(HU)))
    default = JointDiffusionPipeline(unet=pipe.unet, scheduler=pipe.scheduler).image_preprocessor
    assert (default.normalization.mode, default.random_flip) == ("dtype", False)
