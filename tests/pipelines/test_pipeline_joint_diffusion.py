# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Tests of `JointDiffusionPipeline`: sampling, guidance, classification, serialization and validation."""

from __future__ import annotations

import json

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DEISMultistepScheduler,
    HeunDiscreteScheduler,
    LMSDiscreteScheduler,
    PNDMScheduler,
    UniPCMultistepScheduler,
)
from pipeline_test_utils import make_scheduler, make_unet, record_guidance_calls

from diffusers_joint.pipelines import (
    DEFAULT_COUNTERFACTUAL_GUIDANCE_SCALES,
    DEFAULT_GUIDANCE_AUGMENTATIONS,
    DEFAULT_GUIDANCE_CACHE_INTERVALS,
    DEFAULT_GUIDANCE_SCALES,
    DEFAULT_GUIDANCE_TEMPERATURES,
    CounterfactualPipeline,
    GuidanceConfig,
    JointClassificationOutput,
    JointDiffusionPipeline,
    JointDiffusionPipelineOutput,
    default_guidance_method,
)
from tiny_models import tiny_joint_pipeline


def make_pipe(unet, scheduler_cls=DDPMScheduler) -> JointDiffusionPipeline:
    pipe = JointDiffusionPipeline(unet=unet, scheduler=make_scheduler(scheduler_cls))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sample(pipe, seed=0, **kwargs):
    kwargs = {"num_inference_steps": 10, "output_type": "pt", **kwargs}
    return pipe(generator=torch.Generator().manual_seed(seed), **kwargs)


@pytest.mark.parametrize("output_type", ["pil", "np", "pt"])
def test_output_types_and_shapes(unet, output_type):
    output = sample(make_pipe(unet), class_labels=[0, "dog", 2, 2], output_type=output_type)
    assert isinstance(output, JointDiffusionPipelineOutput)
    assert output.class_labels.tolist() == [0, 1, 2, 2]
    images = output.images
    if output_type == "pil":
        assert len(images) == 4 and all(isinstance(im, PIL.Image.Image) for im in images)
        assert images[0].size == (8, 8) and images[0].mode == "L"
    elif output_type == "np":
        assert isinstance(images, np.ndarray) and images.shape == (4, 8, 8, 1)
        assert images.min() >= 0 and images.max() <= 1
    else:
        assert torch.is_tensor(images) and images.shape == (4, 1, 8, 8)
        assert images.min() >= 0 and images.max() <= 1


def test_unconditional_batch_size_and_tuple_output(unet):
    pipe = make_pipe(unet)
    output = sample(pipe, batch_size=3)
    assert output.images.shape == (3, 1, 8, 8) and output.class_labels is None
    images, labels = sample(pipe, batch_size=2, return_dict=False)
    assert images.shape == (2, 1, 8, 8) and labels is None
    images, labels = sample(pipe, batch_size=7, class_labels="bird", return_dict=False)
    assert images.shape == (1, 1, 8, 8) and labels.tolist() == [2]


@pytest.mark.parametrize("method", ["x0", "noisy", "features"])
def test_same_generator_same_images(unet, method):
    pipe = make_pipe(unet)
    first = sample(pipe, seed=3, class_labels=[0, 1], guidance=GuidanceConfig(method=method)).images
    second = sample(pipe, seed=3, class_labels=[0, 1], guidance=GuidanceConfig(method=method)).images
    other = sample(pipe, seed=4, class_labels=[0, 1], guidance=GuidanceConfig(method=method)).images
    assert torch.equal(first, second)
    assert not torch.allclose(first, other)


@pytest.mark.parametrize("scheduler_cls", [DDPMScheduler, DDIMScheduler])
@pytest.mark.parametrize("method", ["x0", "noisy", "features"])
def test_zero_scale_equals_unguided_and_nonzero_scale_changes_samples(unet, scheduler_cls, method):
    pipe = make_pipe(unet, scheduler_cls)
    unguided = sample(pipe, batch_size=3).images
    zero = sample(pipe, class_labels=[0, 1, 2], guidance_scale=0, guidance=GuidanceConfig(method=method)).images
    guided = sample(pipe, class_labels=[0, 1, 2], guidance=GuidanceConfig(method=method)).images
    assert torch.equal(unguided, zero)
    assert (guided - zero).abs().max() > 1e-3


NOISELESS_STEP_SCHEDULERS = [
    PNDMScheduler,
    UniPCMultistepScheduler,
    HeunDiscreteScheduler,
    LMSDiscreteScheduler,
    DEISMultistepScheduler,
]


@pytest.mark.parametrize("scheduler_cls", NOISELESS_STEP_SCHEDULERS)
def test_schedulers_that_draw_no_noise_generate_and_explain(unet, scheduler_cls):
    # their step() takes no `generator`, which both pipelines passed to every scheduler
    scheduler = scheduler_cls.from_config(make_scheduler().config, timestep_spacing="leading")
    pipe = JointDiffusionPipeline(unet=unet, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    guided = sample(pipe, class_labels=[0, 1])
    assert torch.isfinite(guided.images).all()
    assert not torch.equal(guided.images, sample(pipe, class_labels=[0, 1], guidance_scale=0).images)
    explainer = CounterfactualPipeline.from_joint_pipeline(pipe)
    out = explainer(guided.images * 2 - 1, target_class=2, num_inference_steps=10, output_type="pt",
                    generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert torch.isfinite(out.images).all() and torch.isfinite(out.counterfactual_probs).all()


@pytest.mark.parametrize("method", ["x0", "noisy", "features"])
def test_a_float16_model_guides_as_the_float32_one(method):
    # abar of the last timestep rounds to 1 in float16: the default x0 guidance's shift was inf, every pixel clipped
    outputs = {}
    for dtype in (torch.float32, torch.float16):
        pipe = JointDiffusionPipeline(unet=make_unet(), scheduler=DDIMScheduler(num_train_timesteps=1000))
        pipe.to(dtype)
        pipe.set_progress_bar_config(disable=True)
        images = sample(pipe, class_labels=[0, 1], guidance=GuidanceConfig(method=method)).images.float()
        explainer = CounterfactualPipeline.from_joint_pipeline(pipe)
        generator = torch.Generator().manual_seed(0)
        explained = explainer(images * 2 - 1, target_class=2, num_inference_steps=10, output_type="pt",
                              guidance=GuidanceConfig(method=method), generator=generator)  # fmt: skip
        outputs[dtype] = images, explained.counterfactual_probs.float()
    (images, probs), (half_images, half_probs) = outputs[torch.float32], outputs[torch.float16]
    assert (half_images - images).abs().mean() < 0.01  # measured 2e-4 to 3e-4
    torch.testing.assert_close(half_probs, probs, rtol=0, atol=0.02)


def test_guidance_augmentation_is_reproducible_and_off_at_zero_scale(unet):
    pipe = make_pipe(unet)
    labels = [0, 1, 2]
    first = sample(
        pipe, seed=3, class_labels=labels, guidance=GuidanceConfig(method="x0", augmentation="medium")
    ).images
    second = sample(
        pipe, seed=3, class_labels=labels, guidance=GuidanceConfig(method="x0", augmentation="medium")
    ).images
    plain = sample(pipe, seed=3, class_labels=labels, guidance=GuidanceConfig(method="x0", augmentation="none")).images
    default = sample(pipe, seed=3, class_labels=labels).images  # "x0" with "medium" views, the defaults
    assert torch.equal(first, second) and torch.equal(first, default) and not torch.allclose(first, plain)
    zero = sample(
        pipe, seed=3, class_labels=labels, guidance_scale=0, guidance=GuidanceConfig(augmentation="medium")
    ).images
    assert torch.equal(zero, sample(pipe, seed=3, batch_size=3).images)
    with pytest.raises(ValueError, match='needs `guidance_method="x0"`'):
        sample(pipe, class_labels=labels, guidance=GuidanceConfig(method="noisy", augmentation="medium"))


def test_zero_scale_computes_no_gradient(unet, monkeypatch):
    pipe = make_pipe(unet)

    def fail(*args, **kwargs):
        raise AssertionError("a gradient was computed")

    monkeypatch.setattr(torch.autograd, "grad", fail)
    sample(pipe, class_labels=[0, 1], guidance_scale=0.0)
    with pytest.raises(AssertionError, match="gradient"):
        sample(pipe, class_labels=[0, 1], guidance_scale=1.0)


def test_save_and_load_round_trip(unet, tmp_path):
    pipe = make_pipe(unet)
    pipe.save_pretrained(tmp_path)
    assert (tmp_path / "model_index.json").is_file()
    assert (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == "JointDiffusionPipeline"
    library, class_name = index["unet"]
    assert library.split(".")[0] == "diffusers_joint" and class_name == "JointUNet2DModel"

    loaded = JointDiffusionPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.unet.id2label == unet.id2label
    assert isinstance(loaded.scheduler, DDPMScheduler)
    for method in ("x0", "noisy", "features"):
        expected = sample(pipe, seed=5, class_labels=[2, 0], guidance=GuidanceConfig(method=method)).images
        actual = sample(loaded, seed=5, class_labels=[2, 0], guidance=GuidanceConfig(method=method)).images
        assert torch.allclose(expected, actual, atol=1e-6)


def test_classify_accepts_pil_numpy_and_tensors(unet):
    pipe = make_pipe(unet)
    tensors = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    uint8 = ((tensors + 1) * 127.5).round().to(torch.uint8)[:, 0].numpy()  # (5, 8, 8)
    pil = [PIL.Image.fromarray(a, mode="L") for a in uint8]

    from_tensor = pipe.classify(tensors)
    from_pil = pipe.classify(pil)
    from_numpy = pipe.classify(uint8[..., None])  # (B, H, W, C) uint8
    from_rgb = pipe.classify([im.convert("RGB").resize((16, 16)) for im in pil])  # converted and resized
    assert isinstance(from_tensor, JointClassificationOutput)
    assert from_tensor.probs.shape == (5, 3)
    assert torch.allclose(from_tensor.probs.sum(1), torch.ones(5), atol=1e-5)
    for other in (from_pil, from_numpy):
        assert torch.allclose(from_tensor.probs, other.probs, atol=1e-4)
        assert torch.equal(from_tensor.labels, other.labels)
    assert from_rgb.probs.shape == (5, 3)
    assert torch.equal(from_tensor.labels, from_tensor.probs.argmax(1))
    assert from_tensor.label_names == [unet.id2label[i] for i in from_tensor.labels.tolist()]
    chunked = pipe.classify(tensors, batch_size=2)
    assert torch.allclose(chunked.probs, from_tensor.probs, atol=1e-6)


def test_a_list_of_tensors_in_minus_one_to_one_gives_the_inputs_of_the_stacked_batch():
    pipe = tiny_joint_pipeline(num_classes=3)
    images = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    # The second image has no negative value: in the list it is still read as [-1, 1], as in the batch.
    images[1] = images[1].abs()
    torch.testing.assert_close(pipe.preprocess(list(images)), pipe.preprocess(images), rtol=0, atol=0)
    torch.testing.assert_close(pipe.preprocess(list(images)), images)
    torch.testing.assert_close(pipe.classify(list(images)).probs, pipe.classify(images).probs)
    # Tensors without negative values are in [0, 1], in a list as in a batch.
    torch.testing.assert_close(pipe.preprocess(list(images[1:])), images[1:] * 2 - 1)


def test_classify_rejects_tensor_with_wrong_channels(unet):
    with pytest.raises(ValueError, match="3 channels but the model expects in_channels=1"):
        make_pipe(unet).classify(torch.rand(2, 3, 8, 8))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"class_labels": ["cat", "wolf"]}, "Unknown class name 'wolf'.*0: 'cat', 1: 'dog', 2: 'bird'"),
        ({"class_labels": [0, 3]}, r"Class index 3 .* expected an index in \[0, 3\)"),
        ({"class_labels": [-1]}, "Class index -1"),
        ({"class_labels": [0.5]}, "class indices"),
        ({"class_labels": []}, "must not be empty"),
        ({"guidance": {"method": "pixels"}}, "guidance_method"),
        ({"guidance": {"scale": -1.0}}, "must be a finite number >= 0"),
        ({"guidance": {"temperature": 0}}, "`temperature` must be a finite number > 0, got 0"),
        ({"guidance_scale": -0.5}, "must be a finite number >= 0"),
        ({"guidance_scale": float("inf")}, r"must be a finite number >= 0 .*got inf"),
        ({"output_type": "latent"}, "output_type"),
        ({"batch_size": 0}, "batch_size"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
    ],
)
def test_invalid_inputs_raise(unet, kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample(make_pipe(unet), **kwargs)


@pytest.mark.parametrize("method", ["x0", "noisy", "features"])
def test_guidance_works_inside_inference_mode(unet, method):
    # torch.enable_grad() cannot undo a caller's inference_mode: guidance raised "does not require grad"
    pipe = make_pipe(unet)
    explainer = CounterfactualPipeline.from_joint_pipeline(pipe)
    images = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    outputs = []
    for context in (torch.no_grad, torch.inference_mode):
        with context():
            generated = sample(pipe, class_labels=[0, 1], guidance=GuidanceConfig(method=method)).images
            generator = torch.Generator().manual_seed(0)
            explained = explainer(images, target_class=2, num_inference_steps=5, output_type="pt",
                                  guidance=GuidanceConfig(method=method), generator=generator)  # fmt: skip
        outputs.append((generated, explained.images))
    torch.testing.assert_close(outputs[1], outputs[0], rtol=0, atol=0)


def test_with_a_list_of_generators_each_image_depends_on_its_own_generator_only(unet):
    # the guidance views were drawn for the whole batch from the first generator, so an image changed with its batch
    pipe = make_pipe(unet)
    explainer = CounterfactualPipeline.from_joint_pipeline(pipe)
    images = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def generators(*seeds):
        return [torch.Generator().manual_seed(seed) for seed in seeds]

    pair = pipe(class_labels=[0, 1], generator=generators(3, 4), num_inference_steps=10, output_type="pt").images
    alone = pipe(class_labels=[1], generator=generators(4), num_inference_steps=10, output_type="pt").images
    torch.testing.assert_close(pair[1:], alone, rtol=0, atol=1e-5)
    pair = explainer(images, target_class=2, generator=generators(3, 4), num_inference_steps=10, output_type="pt")
    alone = explainer(images[1:], target_class=2, generator=generators(4), num_inference_steps=10, output_type="pt")
    torch.testing.assert_close(pair.images[1:], alone.images, rtol=0, atol=1e-5)


def test_a_list_of_generators_needs_one_per_image_or_a_single_one(unet):
    pipe = make_pipe(unet)
    generators = [torch.Generator().manual_seed(i) for i in range(2)]
    with pytest.raises(ValueError, match="Got a list of 2 generators, but 3 images"):
        pipe(class_labels=[0, 1, 2], generator=generators, num_inference_steps=2, output_type="pt")
    pipe(class_labels=[0, 1], generator=generators, num_inference_steps=2, output_type="pt")
    pipe(class_labels=[0, 1, 2], generator=generators[:1], num_inference_steps=2, output_type="pt")
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer, got True"):
        pipe.classify(torch.zeros(2, 1, 8, 8), batch_size=True)


def test_multi_label_targets_and_classification():
    unet = make_unet(num_classes=3, problem_type="multi_label_classification", label_names=["a", "b", "c"])
    pipe = make_pipe(unet)
    output = sample(pipe, class_labels=[[0, "c"], 1, []])
    assert output.class_labels.tolist() == [[1, 0, 1], [0, 1, 0], [0, 0, 0]]
    multi_hot = torch.tensor([[1.0, -1.0, 0.0]])
    assert sample(pipe, class_labels=multi_hot).class_labels.tolist() == [[1, -1, 0]]
    with pytest.raises(ValueError, match=r"shape \(batch, 3\)"):
        sample(pipe, class_labels=torch.ones(2, 4))
    # a 1-D tensor or array is one class per image, as the same list (it was read as one multi-hot row)
    for labels in (torch.tensor([0, 1, 1]), np.array([0, 1, 1])):
        assert sample(pipe, class_labels=labels).class_labels.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 0]]

    result = pipe.classify(output.images)
    assert result.labels.shape == (3, 3)
    assert torch.equal(result.labels, (result.probs >= 0.5).long())
    assert result.label_names == [[n for n, on in zip("abc", row) if on] for row in result.labels.tolist()]


# ---------------------------------------------------------------- trained model: guidance works

MIN_GAIN = {"x0": 0.2, "noisy": 0.2, "features": 0.03}


@pytest.mark.parametrize("method", ["x0", "noisy", "features", "x0 none"])
@pytest.mark.parametrize("scheduler_cls", [DDPMScheduler, DDIMScheduler])
def test_guidance_raises_target_probability(trained_digits_unet, digits_judge, method, scheduler_cls):
    pipe = make_pipe(trained_digits_unet, scheduler_cls)
    targets = list(range(10)) * 2
    steps = 25 if scheduler_cls is DDIMScheduler else 50
    method, _, augmentation = method.partition(" ")
    plain = sample(pipe, class_labels=targets, guidance_scale=0, num_inference_steps=steps).images
    guided = sample(
        pipe,
        class_labels=targets,
        guidance=GuidanceConfig(method=method, augmentation=augmentation or None),
        num_inference_steps=steps,
    ).images
    # Judged by a classifier trained on real digits alone (not the model's own, which guidance could merely fool).
    # Unguided samples hit the requested class about one time in ten. x0 and noisy guidance clearly beat that;
    # feature-space guidance is much weaker (see the guidance module), but must still move samples to the target.
    p_plain = digits_judge(plain * 2 - 1, targets)
    p_guided = digits_judge(guided * 2 - 1, targets)
    assert p_guided > p_plain + MIN_GAIN[method], (p_plain, p_guided)


def test_default_methods_for_generation_and_counterfactuals(unet, tmp_path, monkeypatch):
    # "x0" for both tasks, whether or not the classifier was trained on noisy inputs.
    assert default_guidance_method(unet) == default_guidance_method(unet, "counterfactual") == "x0"
    unet.register_to_config(noise_aware_classifier=True)
    make_pipe(unet).save_pretrained(tmp_path)
    pipe = JointDiffusionPipeline.from_pretrained(tmp_path)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.unet.config.noise_aware_classifier
    assert default_guidance_method(pipe.unet) == "x0"
    assert default_guidance_method(pipe.unet, "counterfactual") == "x0"
    with pytest.raises(ValueError, match="`task` must be one of"):
        default_guidance_method(pipe.unet, "explanation")
    calls = record_guidance_calls(monkeypatch)
    sample(pipe, class_labels=[0, 1], num_inference_steps=4)
    # "x0" with "medium" views at temperature 2, its direction computed at every 2nd step and reused in between
    x0 = (
        "x0",
        DEFAULT_GUIDANCE_SCALES["x0"],
        DEFAULT_GUIDANCE_AUGMENTATIONS["x0"],
        DEFAULT_GUIDANCE_TEMPERATURES["x0"],
    )
    assert calls == [(*x0, True), (*x0, False)] * 2
    assert DEFAULT_GUIDANCE_AUGMENTATIONS["x0"] == "medium" and DEFAULT_GUIDANCE_CACHE_INTERVALS["x0"] == 2
    assert DEFAULT_GUIDANCE_TEMPERATURES["x0"] == 2.0
    calls.clear()
    sample(pipe, class_labels=[0, 1], num_inference_steps=2, guidance=GuidanceConfig(method="noisy"))
    assert calls == [("noisy", DEFAULT_GUIDANCE_SCALES["noisy"], None, 1.0, True)] * 2
    calls.clear()
    sample(pipe, class_labels=[0, 1], num_inference_steps=2, guidance=GuidanceConfig(cache_interval=1, temperature=1))
    assert calls == [(*x0[:3], 1.0, True)] * 2
    with pytest.raises(ValueError, match="`cache_interval` must be a positive integer, got 0"):
        sample(pipe, class_labels=[0, 1], guidance={"cache_interval": 0})
    with pytest.raises(ValueError, match="`temperature` must be a finite number > 0, got 0"):
        sample(pipe, class_labels=[0, 1], guidance={"temperature": 0})


def test_default_scales_and_temperature_are_documented():
    # the pipelines take one GuidanceConfig, whose docstring documents the defaults
    doc = " ".join(GuidanceConfig.__doc__.split())
    assert "GuidanceConfig" in JointDiffusionPipeline.__call__.__doc__
    for defaults in (DEFAULT_GUIDANCE_SCALES, DEFAULT_COUNTERFACTUAL_GUIDANCE_SCALES):
        scales = ", ".join(f'{scale} for `"{method}"`' for method, scale in defaults.items())
        assert scales in doc, scales
    assert f'to {DEFAULT_GUIDANCE_TEMPERATURES["x0"]:g} for `"x0"` and 1 for the other methods' in doc
    assert {DEFAULT_GUIDANCE_TEMPERATURES[method] for method in ("noisy", "features")} == {1.0}
    assert f'to {DEFAULT_GUIDANCE_CACHE_INTERVALS["x0"]:g} for `"x0"` and 1 for the other methods' in doc
    assert {DEFAULT_GUIDANCE_CACHE_INTERVALS[method] for method in ("noisy", "features")} == {1}


# ---------------------------------------------------------------- safe loading


def test_pipeline_loading_refuses_pickled_weights_unless_allowed(unet, tmp_path, caplog):
    make_pipe(unet).save_pretrained(tmp_path, safe_serialization=False)
    assert (tmp_path / "unet" / "diffusion_pytorch_model.bin").is_file()
    assert not list(tmp_path.rglob("*.safetensors"))
    with pytest.raises(OSError, match=r"holds only pickled weights.*use_safetensors=False"):
        JointDiffusionPipeline.from_pretrained(tmp_path)
    loaded = JointDiffusionPipeline.from_pretrained(tmp_path, use_safetensors=False)  # explicitly allowed
    assert torch.equal(loaded.unet.conv_in.weight, unet.conv_in.weight)


@pytest.mark.parametrize("damage", ["truncated", "bad_header", "bad_length"])
def test_pipeline_loading_names_a_damaged_weights_file(unet, tmp_path, damage):
    make_pipe(unet).save_pretrained(tmp_path)
    weights = tmp_path / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    if damage == "truncated":
        data = data[: len(data) - 100]
    elif damage == "bad_header":
        data[8:16] = b"\x00garbage"  # the JSON header no longer parses
    else:
        data[:8] = (2**40).to_bytes(8, "little")  # header length beyond the end of the file
    weights.write_bytes(bytes(data))
    with pytest.raises(OSError, match=r"unet[/\\]diffusion_pytorch_model.safetensors is truncated or corrupted"):
        JointDiffusionPipeline.from_pretrained(tmp_path)


def test_eta_makes_ddim_stochastic_and_is_ignored_by_ddpm(unet):
    ddim = make_pipe(unet, DDIMScheduler)
    deterministic = sample(ddim, seed=0, batch_size=2, eta=0.0).images
    stochastic = sample(ddim, seed=0, batch_size=2, eta=1.0).images
    assert torch.equal(stochastic, sample(ddim, seed=0, batch_size=2, eta=1.0).images)
    assert (stochastic - deterministic).abs().max() > 1e-3
    assert torch.equal(deterministic, sample(ddim, seed=0, batch_size=2).images)  # 0 is the default
    ddpm = make_pipe(unet)
    assert torch.equal(sample(ddpm, seed=0, batch_size=2, eta=1.0).images, sample(ddpm, seed=0, batch_size=2).images)


def test_trained_model_draws_the_datas_dark_background(trained_digits_unet, digits):
    """Generation, not only shapes: after brief training the samples' borders move to the digits' black border."""
    from diffusers_joint.evaluation import border_means

    real, _ = digits
    target = border_means(real).mean()
    untrained = sample(make_pipe(make_unet(num_classes=10)), batch_size=32, num_inference_steps=50).images * 2 - 1
    trained = sample(make_pipe(trained_digits_unet), batch_size=32, num_inference_steps=50).images * 2 - 1
    gap_untrained = (border_means(untrained) - target).abs().mean()
    gap_trained = (border_means(trained) - target).abs().mean()
    assert gap_trained < 0.5 * gap_untrained, (target, gap_untrained, gap_trained)


def test_scheduler_settings_and_prediction_type_round_trip(unet, tmp_path):
    scheduler = DDPMScheduler(
        num_train_timesteps=30, beta_schedule="linear", prediction_type="v_prediction", clip_sample=False
    )
    JointDiffusionPipeline(unet=unet, scheduler=scheduler).save_pretrained(tmp_path)
    loaded = JointDiffusionPipeline.from_pretrained(tmp_path).scheduler
    for key in ("num_train_timesteps", "beta_schedule", "prediction_type", "clip_sample"):
        assert loaded.config[key] == scheduler.config[key], key
    torch.testing.assert_close(loaded.alphas_cumprod, scheduler.alphas_cumprod)
