# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Tests of `GuidanceConfig`: defaults per method and task, validation, saving, and the pipelines' use of it."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from pipeline_test_utils import make_scheduler, make_unet

import diffusers_joint
from diffusers_joint.pipelines import (
    DEFAULT_COUNTERFACTUAL_GUIDANCE_SCALES,
    DEFAULT_GUIDANCE_AUGMENTATIONS,
    DEFAULT_GUIDANCE_CACHE_INTERVALS,
    DEFAULT_GUIDANCE_SCALES,
    DEFAULT_GUIDANCE_TEMPERATURES,
    CounterfactualPipeline,
    GuidanceConfig,
    JointDiffusionPipeline,
)
from diffusers_joint.pipelines.guidance_config import guidance_config_from_arguments


def test_exported_from_the_package_and_the_pipelines():
    assert diffusers_joint.GuidanceConfig is GuidanceConfig
    assert "GuidanceConfig" in diffusers_joint.__all__ and "GuidanceConfig" in diffusers_joint.pipelines.__all__


@pytest.mark.parametrize("method", ["x0", "noisy", "features"])
def test_defaults_per_method_for_generation(method):
    resolved = GuidanceConfig(method=method).resolve("generation")
    assert resolved == GuidanceConfig(
        method,
        DEFAULT_GUIDANCE_SCALES[method],
        DEFAULT_GUIDANCE_AUGMENTATIONS[method] or "none",
        DEFAULT_GUIDANCE_CACHE_INTERVALS[method],
        DEFAULT_GUIDANCE_TEMPERATURES[method],
    )
    assert resolved.is_resolved and resolved.views == DEFAULT_GUIDANCE_AUGMENTATIONS[method]


@pytest.mark.parametrize("method", ["x0", "noisy", "features"])
def test_defaults_per_method_for_counterfactuals(method):
    # counterfactuals recompute the direction at every step and read the classifier at temperature 1
    resolved = GuidanceConfig(method=method).resolve("counterfactual")
    augmentation = DEFAULT_GUIDANCE_AUGMENTATIONS[method] or "none"
    assert resolved == GuidanceConfig(method, DEFAULT_COUNTERFACTUAL_GUIDANCE_SCALES[method], augmentation, 1, 1.0)


def test_the_default_values_and_method():
    assert GuidanceConfig().resolve() == GuidanceConfig("x0", 10.0, "medium", 2, 2.0)
    assert GuidanceConfig().resolve("counterfactual") == GuidanceConfig("x0", 10.0, "medium", 1, 1.0)
    assert GuidanceConfig(method="noisy").resolve() == GuidanceConfig("noisy", 3.0, "none", 1, 1.0)
    assert GuidanceConfig(method="noisy").resolve("counterfactual").scale == 40.0


def test_given_fields_are_kept_and_resolving_twice_changes_nothing():
    config = GuidanceConfig(scale=4, augmentation="strong", cache_interval=3, temperature=2)
    resolved = config.resolve("counterfactual")
    assert resolved == GuidanceConfig("x0", 4.0, "strong", 3, 2.0)
    assert isinstance(resolved.scale, float) and isinstance(resolved.temperature, float)
    assert resolved.resolve("counterfactual") == resolved and resolved.resolve("generation") == resolved
    # "none" turns the views off, and stays off when the resolved config is resolved again
    no_views = GuidanceConfig(augmentation="none").resolve()
    assert no_views.augmentation == "none" and no_views.views is None and no_views.resolve() == no_views


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"method": "pixels"}, "`guidance_method` must be one of"),
        ({"scale": -1}, r"`scale` must be a finite number >= 0 \(0 disables guidance\), got -1"),
        ({"scale": float("nan")}, "got nan"),
        ({"scale": float("inf")}, "got inf"),
        ({"scale": True}, "`scale` must be"),
        ({"scale": "3"}, "`scale` must be"),
        ({"augmentation": "huge"}, "`augmentation` must be None, 'none' or one of .*got 'huge'"),
        *[
            ({"cache_interval": value}, "`cache_interval` must be a positive integer")
            for value in (0, -1, 1.5, True, "2")
        ],
        *[
            ({"temperature": value}, "`temperature` must be a finite number > 0")
            for value in (0, -1.0, float("nan"), float("inf"), True, "3")
        ],
    ],
)
def test_bad_values_raise_when_built(fields, message):
    with pytest.raises(ValueError, match=message):
        GuidanceConfig(**fields)


def test_views_need_x0_and_an_unknown_task_raises_when_resolved():
    with pytest.raises(ValueError, match='needs `guidance_method="x0"`'):
        GuidanceConfig(method="noisy", augmentation="medium").resolve()
    assert GuidanceConfig(method="features", augmentation="none").resolve().views is None
    with pytest.raises(ValueError, match="`task` must be one of"):
        GuidanceConfig().resolve("editing")
    with pytest.raises(ValueError, match="Resolve the guidance config first"):
        GuidanceConfig().views  # noqa: B018


def test_to_dict_from_dict_round_trip_through_json():
    for config in (GuidanceConfig(), GuidanceConfig(method="noisy", scale=2.5), GuidanceConfig().resolve()):
        saved = json.loads(json.dumps(config.to_dict()))
        assert saved.keys() == {"method", "scale", "augmentation", "cache_interval", "temperature"}
        assert GuidanceConfig.from_dict(saved) == config
    assert GuidanceConfig.from_dict({"scale": 1.0}) == GuidanceConfig(scale=1.0)
    with pytest.raises(ValueError, match=r"Unknown GuidanceConfig fields \['guidance_scale'\]"):
        GuidanceConfig.from_dict({"guidance_scale": 1.0})
    with pytest.raises(TypeError, match="must be a dict"):
        GuidanceConfig.from_dict([("scale", 1.0)])


def test_arguments_of_a_call_make_one_config():
    assert guidance_config_from_arguments(None) == GuidanceConfig()
    assert guidance_config_from_arguments({"method": "noisy"}, 2.0) == GuidanceConfig(method="noisy", scale=2.0)
    with pytest.raises(ValueError, match=r"`guidance_scale` \(2.0\) and `guidance.scale` \(3.0\) both set it"):
        guidance_config_from_arguments(GuidanceConfig(scale=3.0), 2.0)
    with pytest.raises(TypeError, match="must be a GuidanceConfig, a dict of its fields or None"):
        guidance_config_from_arguments("x0")
    with pytest.raises(TypeError, match="got an unexpected keyword argument 'guidance_strength'"):
        guidance_config_from_arguments(None, None, {"guidance_strength": 1.0})
    with pytest.warns(FutureWarning, match="`guidance_method` is deprecated"):
        old = guidance_config_from_arguments(None, 1.0, {"guidance_method": "noisy", "guidance_temperature": 3})
    assert old == GuidanceConfig(method="noisy", scale=1.0, temperature=3)
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="the deprecated guidance_method"):
        guidance_config_from_arguments(GuidanceConfig(method="x0"), None, {"guidance_method": "noisy"})


@pytest.fixture
def pipelines():
    unet = make_unet(num_classes=3)
    generate = JointDiffusionPipeline(unet=unet, scheduler=make_scheduler())
    explain = CounterfactualPipeline(unet=unet, scheduler=make_scheduler())
    for pipe in (generate, explain):
        pipe.set_progress_bar_config(disable=True)
    return generate, explain


def generated(pipe, **kwargs):
    generator = torch.Generator().manual_seed(0)
    return pipe(class_labels=[0, 1, 2], num_inference_steps=6, generator=generator, output_type="pt", **kwargs).images


def explained(pipe, **kwargs):
    images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(0)
    out = pipe(images, [1, 2, 0], num_inference_steps=10, generator=generator, output_type="pt", **kwargs)
    return out.images


def test_default_calls_equal_explicit_configs(pipelines):
    generate, explain = pipelines
    default = generated(generate)
    for explicit in (GuidanceConfig(), GuidanceConfig("x0", 10.0, "medium", 2, 2.0), {"scale": 10.0}):
        assert torch.equal(generated(generate, guidance=explicit), default)
    assert torch.equal(generated(generate, guidance_scale=10.0), default)
    assert not torch.equal(generated(generate, guidance=GuidanceConfig(temperature=1.0)), default)
    default = explained(explain)
    for explicit in (GuidanceConfig(), GuidanceConfig("x0", 10.0, "medium", 1, 1.0)):
        assert torch.equal(explained(explain, guidance=explicit), default)
    assert not torch.equal(explained(explain, guidance=GuidanceConfig(cache_interval=2)), default)


@pytest.mark.parametrize(
    ("old", "config"),
    [
        ({"guidance_method": "noisy"}, GuidanceConfig(method="noisy")),
        (
            {"guidance_augmentation": "strong", "guidance_cache_interval": 3, "guidance_temperature": 1.5},
            GuidanceConfig(augmentation="strong", cache_interval=3, temperature=1.5),
        ),
        ({"guidance_method": "features", "guidance_augmentation": None}, GuidanceConfig(method="features")),
    ],
)
def test_old_keyword_arguments_warn_and_give_the_same_output(pipelines, old, config):
    generate, explain = pipelines
    for run in (generated, explained):
        pipe = generate if run is generated else explain
        with pytest.warns(FutureWarning, match="is deprecated and will be removed in diffusers-joint 0.2.0"):
            with_old = run(pipe, **old)
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)  # the new way warns about nothing
            with_config = run(pipe, guidance=config)
        assert torch.equal(with_old, with_config)


def test_unknown_keyword_arguments_still_raise(pipelines):
    generate, explain = pipelines
    with pytest.raises(TypeError, match="unexpected keyword argument 'guidance_strength'"):
        generated(generate, guidance_strength=2.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'strenght'"):
        explained(explain, strenght=0.5)
