# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Unit tests of the classifier-guidance math."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from pipeline_test_utils import make_scheduler, make_unet

from diffusers_joint.pipelines import GUIDANCE_METHODS, GuidanceConfig, guidance
from diffusers_joint.pipelines.guidance_config import check_guidance_augmentation


def test_alpha_prod_matches_scheduler_schedule():
    for cls in (DDPMScheduler, DDIMScheduler):
        scheduler = make_scheduler(cls)
        scheduler.set_timesteps(10)
        sample = torch.zeros(1, dtype=torch.float64)
        for t in scheduler.timesteps:
            value = guidance.alpha_prod_at(scheduler, t, sample)
            assert value.dtype == torch.float64
            assert guidance.alpha_prod_at(scheduler, t, sample.half()).dtype == torch.float32  # never below float32
            assert value.item() == pytest.approx(scheduler.alphas_cumprod[int(t)].item())


def test_x0_guidance_stays_finite_and_as_in_float32_for_a_float16_model():
    # abar at timestep 0 of 1000 is 0.9999: 1 in float16, so 1 - abar and the clamp's 1e-12 were 0 and the shift inf
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    noise_pred, grad = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8) * 0.1
    for timestep in (0, 999):
        expected = guidance.bounded_x0_guidance(
            noise_pred, grad, guidance.alpha_prod_at(scheduler, timestep, noise_pred), 0.5
        )
        half = guidance.bounded_x0_guidance(
            noise_pred.half(), grad.half(), guidance.alpha_prod_at(scheduler, timestep, noise_pred.half()), 0.5
        )
        assert half.dtype == torch.float16 and torch.isfinite(half).all()
        torch.testing.assert_close(half.float(), expected, rtol=2e-3, atol=2e-3)


def test_alpha_prod_needs_alphas_cumprod():
    with pytest.raises(ValueError, match="alphas_cumprod"):
        guidance.alpha_prod_at(object(), 3, torch.zeros(1))


def test_predicted_original_sample_inverts_add_noise():
    scheduler = make_scheduler()
    x0 = torch.rand(2, 1, 8, 8) * 2 - 1
    noise = torch.randn(2, 1, 8, 8)
    t = torch.tensor([30, 30])
    noisy = scheduler.add_noise(x0, noise, t)
    alpha_prod = guidance.alpha_prod_at(scheduler, 30, noisy)
    assert torch.allclose(guidance.predicted_original_sample(noisy, noise, alpha_prod), x0, atol=1e-4)
    clipped = guidance.predicted_original_sample(noisy, -3 * noise, alpha_prod, clip_sample=True)
    assert clipped.abs().max() <= 1


def test_class_log_prob_single_and_multi_label():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 3.0]])
    single = guidance.class_log_prob(logits, torch.tensor([0, 1]), is_multi_label=False)
    expected = logits.log_softmax(1)[[0, 1], [0, 1]]
    assert torch.allclose(single, expected)

    targets = torch.tensor([[1.0, 0.0, 1.0], [1.0, -1.0, -1.0]])
    multi = guidance.class_log_prob(logits, targets, is_multi_label=True)
    p = logits.sigmoid()
    expected = torch.stack(
        [p[0, 0].log() + (1 - p[0, 1]).log() + p[0, 2].log(), p[1, 0].log()]  # -1 entries are ignored
    )
    assert torch.allclose(multi, expected, atol=1e-5)


def test_class_log_prob_temperature_keeps_the_unsure_push_and_lasts_when_confident():
    targets = torch.tensor([0, 0])
    logits = torch.tensor([[0.0, 0.0, 0.0], [12.0, 0.0, 0.0]], requires_grad=True)  # unsure, confident
    assert torch.equal(
        guidance.class_log_prob(logits, targets, False, 1.0), guidance.class_log_prob(logits, targets, False)
    )
    warm = guidance.class_log_prob(logits, targets, False, temperature=3.0)
    assert torch.allclose(warm, 3.0 * (logits / 3.0).log_softmax(1)[:, 0])
    (plain_grad,) = torch.autograd.grad(guidance.class_log_prob(logits, targets, False).sum(), logits)
    (warm_grad,) = torch.autograd.grad(warm.sum(), logits)
    assert torch.allclose(warm_grad[0], plain_grad[0])  # the same push while the classifier is unsure
    assert warm_grad[1, 0] > 100 * plain_grad[1, 0] > 0  # a push that does not vanish once it is confident

    multi_logits = torch.tensor([[0.0, 12.0]], requires_grad=True)
    multi_targets = torch.tensor([[1.0, 1.0]])
    (plain_multi,) = torch.autograd.grad(
        guidance.class_log_prob(multi_logits, multi_targets, True).sum(), multi_logits
    )
    (warm_multi,) = torch.autograd.grad(
        guidance.class_log_prob(multi_logits, multi_targets, True, temperature=3.0).sum(), multi_logits
    )
    assert torch.allclose(warm_multi[0, 0], plain_multi[0, 0]) and warm_multi[0, 1] > 100 * plain_multi[0, 1] > 0


def test_x0_gradient_equals_autograd_through_denoised_estimate():
    unet = make_unet()
    scheduler = make_scheduler()
    sample = torch.randn(3, 1, 8, 8)
    noise_pred = torch.randn(3, 1, 8, 8)
    targets = torch.tensor([0, 1, 2])
    alpha_prod = guidance.alpha_prod_at(scheduler, 20, sample)
    grad = guidance.x0_guidance_gradient(unet, sample, noise_pred, alpha_prod, targets)

    x0 = guidance.predicted_original_sample(sample, noise_pred, alpha_prod).requires_grad_(True)
    log_prob = unet.classify(x0, 0).log_softmax(1)[torch.arange(3), targets].sum()
    (expected,) = torch.autograd.grad(log_prob, x0)
    assert grad.abs().max() > 0
    assert torch.allclose(grad, expected, atol=1e-6)

    warm = guidance.x0_guidance_gradient(unet, sample, noise_pred, alpha_prod, targets, temperature=4.0)
    log_prob = 4.0 * (unet.classify(x0, 0) / 4.0).log_softmax(1)[torch.arange(3), targets].sum()
    (expected,) = torch.autograd.grad(log_prob, x0)
    assert torch.allclose(warm, expected, atol=1e-6)


@pytest.mark.parametrize("timestep", [0, 10, 50, 99])
@pytest.mark.parametrize("gradient_size", [1e-3, 0.1, 10.0, 1e3])
def test_bounded_x0_step_never_moves_x0_hat_more_than_the_scale(timestep, gradient_size):
    scheduler = make_scheduler()
    generator = torch.Generator().manual_seed(timestep)
    sample = torch.randn(4, 1, 8, 8, generator=generator, dtype=torch.float64)
    noise_pred = torch.randn(4, 1, 8, 8, generator=generator, dtype=torch.float64)
    grad = gradient_size * torch.randn(4, 1, 8, 8, generator=generator, dtype=torch.float64)
    alpha_prod = guidance.alpha_prod_at(scheduler, timestep, sample)
    scale = 0.5
    guided = guidance.bounded_x0_guidance(noise_pred, grad, alpha_prod, scale)
    move = guidance.predicted_original_sample(sample, guided, alpha_prod) - guidance.predicted_original_sample(
        sample, noise_pred, alpha_prod
    )
    rms_move = move.pow(2).mean(dim=(1, 2, 3)).sqrt()
    assert bool((rms_move <= scale * (1 + 1e-6)).all()), rms_move
    # Along the gradient, and exactly scale * grad while the gradient is small.
    assert bool(((move * grad).sum(dim=(1, 2, 3)) > 0).all())
    if gradient_size < 1:
        assert torch.allclose(move, scale * grad, atol=1e-9)
    else:
        assert torch.allclose(rms_move, torch.full_like(rms_move, scale))


def test_classifier_guidance_update_follows_dhariwal_nichol():
    noise_pred = torch.randn(2, 1, 8, 8)
    grad = torch.randn(2, 1, 8, 8)
    alpha_prod = torch.tensor(0.36)
    guided = guidance.apply_classifier_guidance(noise_pred, grad, alpha_prod, 2.0)
    assert torch.allclose(guided, noise_pred - 2.0 * 0.8 * grad)


def test_x0_guidance_step_raises_target_log_prob_of_denoised_estimate():
    # Sign check: moving x_t along the guided direction increases log p(target | x0_hat) to first order.
    unet = make_unet().double()
    scheduler = make_scheduler()
    sample = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    targets = torch.tensor([0, 1, 2, 0])
    t = torch.tensor(10)
    alpha_prod = guidance.alpha_prod_at(scheduler, t, sample)
    with torch.no_grad():
        noise_pred = unet(sample, t).sample
        guided = guidance.guided_noise_prediction(unet, scheduler, sample, t, targets, 0.01, "x0")
        before = guidance.predicted_original_sample(sample, noise_pred, alpha_prod)
        after = guidance.predicted_original_sample(sample, guided, alpha_prod)

        def log_prob(x0):
            return guidance.class_log_prob(unet.classify(x0, 0), targets, False)

        assert bool((log_prob(after) > log_prob(before)).all())


def test_feature_shifts_have_stage_shapes_and_raise_log_prob():
    unet = make_unet()
    sample = torch.randn(2, 1, 8, 8)
    targets = torch.tensor([2, 1])
    shifts = guidance.feature_guidance_shifts(unet, sample, 5, targets, guidance_scale=0.5)
    assert [tuple(s.shape) for s in shifts] == [(2, c) for c in unet.feature_channels]
    with torch.no_grad():
        features = unet.extract_features(sample, 5)
        before = guidance.class_log_prob(unet.classifier(features), targets, False)
        after = guidance.class_log_prob(unet.classifier(features + torch.cat(shifts, 1)), targets, False)
    assert bool((after > before).all())


def test_feature_guidance_changes_prediction_through_decoder():
    unet = make_unet()
    scheduler = make_scheduler()
    sample = torch.randn(2, 1, 8, 8)
    targets = torch.tensor([2, 1])
    with torch.no_grad():
        plain = unet(sample, 5).sample
        guided = guidance.guided_noise_prediction(unet, scheduler, sample, 5, targets, 50.0, "features")
    assert not torch.allclose(plain, guided)


@pytest.mark.parametrize("method", GUIDANCE_METHODS)
def test_zero_scale_or_no_targets_is_plain_prediction(method):
    unet = make_unet()
    scheduler = make_scheduler()
    sample = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        plain = unet(sample, 7).sample
        zero = guidance.guided_noise_prediction(unet, scheduler, sample, 7, torch.tensor([0, 1]), 0.0, method)
        none = guidance.guided_noise_prediction(unet, scheduler, sample, 7, None, 3.0, method)
    assert torch.equal(plain, zero)
    assert torch.equal(plain, none)


def test_invalid_method_and_prediction_type():
    unet = make_unet()
    with torch.no_grad(), pytest.raises(ValueError, match="guidance_method"):
        guidance.guided_noise_prediction(unet, make_scheduler(), torch.randn(1, 1, 8, 8), 3, torch.tensor([0]), 1, "a")
    scheduler = make_scheduler(prediction_type="v_prediction")
    with torch.no_grad(), pytest.raises(ValueError, match="v_prediction"):
        guidance.guided_noise_prediction(unet, scheduler, torch.randn(1, 1, 8, 8), 3, torch.tensor([0]), 1.0, "x0")


def test_random_views_are_reproducible_differentiable_and_never_clipped():
    images = (torch.rand(4, 1, 8, 8) * 2 - 1).requires_grad_(True)
    first = guidance.random_affine_views(images, "medium", torch.Generator().manual_seed(0))
    again = guidance.random_affine_views(images, "medium", torch.Generator().manual_seed(0))
    other = guidance.random_affine_views(images, "medium", torch.Generator().manual_seed(1))
    assert torch.equal(first, again) and not torch.allclose(first, other)
    (grad,) = torch.autograd.grad(first.sum(), images)
    assert grad.abs().sum() > 0
    # Early denoised estimates lie far outside [-1, 1]; a view must keep their values, not clip them.
    flat = torch.full((2, 1, 8, 8), 3.0)
    assert torch.allclose(guidance.random_affine_views(flat, "strong", torch.Generator().manual_seed(0)), flat)


def test_augmented_x0_guidance_differs_from_plain_and_is_reproducible():
    unet = make_unet()
    scheduler = make_scheduler()
    sample = torch.randn(2, 1, 8, 8)
    targets = torch.tensor([0, 2])
    with torch.no_grad():
        plain = guidance.guided_noise_prediction(unet, scheduler, sample, 30, targets, 1.0, "x0")
        views = [
            guidance.guided_noise_prediction(
                unet, scheduler, sample, 30, targets, 1.0, "x0", "medium", torch.Generator().manual_seed(seed)
            )
            for seed in (0, 0, 1)
        ]
    assert torch.equal(views[0], views[1])
    assert not torch.allclose(views[0], views[2]) and not torch.allclose(views[0], plain)


def test_trajectory_guidance_draws_its_views_generator_once_and_only_when_guided():
    unet = make_unet()
    scheduler = make_scheduler()
    sample = torch.randn(2, 1, 8, 8)
    targets = torch.tensor([0, 2])
    generator = torch.Generator().manual_seed(0)
    config = GuidanceConfig("x0", 1.0, "medium", 1, 1.0)
    trajectory = guidance.ClassifierGuidance.start(unet, scheduler, targets, config, generator)
    views = guidance.augmentation_generator(torch.Generator().manual_seed(0))
    with torch.no_grad():
        for t in (30, 20):  # the views' draws go on from step to step, as in one trajectory
            expected = guidance.guided_noise_prediction(
                unet, scheduler, sample, t, targets, 1.0, "x0", "medium", views
            )
            assert torch.equal(trajectory.noise_prediction(sample, t), expected)
    # Unguided trajectories (scale 0 or no targets) take nothing from the pipeline's generator.
    for scale, trajectory_targets in ((0.0, targets), (1.0, None)):
        generator = torch.Generator().manual_seed(0)
        config = GuidanceConfig("x0", scale, "medium", 1, 1.0)
        unguided = guidance.ClassifierGuidance.start(unet, scheduler, trajectory_targets, config, generator)
        assert not unguided.is_active and unguided.views_generator is None
        assert torch.equal(
            torch.rand(3, generator=generator), torch.rand(3, generator=torch.Generator().manual_seed(0))
        )
    with pytest.raises(ValueError, match="must be a resolved GuidanceConfig"):
        guidance.ClassifierGuidance.start(unet, scheduler, targets, GuidanceConfig(scale=1.0), generator)


@pytest.mark.parametrize(
    ("augmentation", "method", "message"),
    [
        ("medium", "noisy", 'needs `guidance_method="x0"`'),
        ("none", "x0", "must be None or one of"),
        ("huge", "x0", "huge"),
    ],
)
def test_guidance_augmentation_needs_x0_and_a_known_strength(augmentation, method, message):
    with pytest.raises(ValueError, match=message):
        check_guidance_augmentation(augmentation, method)


@pytest.mark.parametrize("method", ["x0", "noisy", "features"])
def test_cached_direction_is_computed_every_interval_and_reapplied_in_between(method, monkeypatch):
    unet = make_unet()
    scheduler = make_scheduler()
    scheduler.set_timesteps(10)
    sample = torch.randn(2, 1, 8, 8)
    targets = torch.tensor([0, 2])
    computed = []
    for name in ("x0_guidance_gradient", "noisy_guidance_gradient", "feature_guidance_shifts"):
        original = getattr(guidance, name)

        def counting(*args, _original=original, _name=name, **kwargs):
            computed.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(guidance, name, counting)
    config = GuidanceConfig(method, 2.0, "none", cache_interval=2, temperature=1.0)
    trajectory = guidance.ClassifierGuidance.start(unet, scheduler, targets, config)
    timesteps = scheduler.timesteps[:5]
    direction = None
    with torch.no_grad():
        for step, t in enumerate(timesteps):
            prediction = trajectory.noise_prediction(sample, t)
            # a reuse step applies the last computed direction at this step's noise level and computes nothing
            expected, direction = guidance.guided_prediction_and_direction(
                unet, scheduler, sample, t, targets, 2.0, method, direction=direction if step % 2 else None
            )
            assert torch.equal(prediction, expected)
    # steps 0, 2 and 4 compute the direction, in the trajectory and in the check
    assert len(computed) == 3 * 2
    plain = unet(sample, timesteps[1]).sample
    assert not torch.allclose(plain, trajectory.noise_prediction(sample, timesteps[1]))  # reuse still guides


def test_feature_shifts_are_zero_for_stages_the_head_does_not_read():
    unet = make_unet(classifier_feature_stages=[-1])
    sample = torch.randn(2, 1, 8, 8)
    shifts = guidance.feature_guidance_shifts(unet, sample, 5, torch.tensor([2, 1]), guidance_scale=0.5)
    assert [tuple(s.shape) for s in shifts] == [(2, c) for c in unet.feature_channels]
    assert not shifts[0].any() and not shifts[1].any() and shifts[2].abs().sum() > 0
    with torch.no_grad():
        features = unet.extract_features(sample, 5)
        before = guidance.class_log_prob(unet.classifier(features), torch.tensor([2, 1]), False)
        after = guidance.class_log_prob(unet.classifier(features + shifts[2]), torch.tensor([2, 1]), False)
    assert bool((after > before).all())
