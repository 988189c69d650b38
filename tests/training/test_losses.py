import pytest
import torch
from diffusers import DDPMScheduler
from diffusers.training_utils import compute_snr
from sklearn.datasets import load_digits

from diffusers_joint import JointUNet2DModel
from diffusers_joint.training import (
    JointDiffusionObjective,
    JointLossConfig,
    diffusion_target,
    inverse_frequency_weights,
    joint_diffusion_loss,
    min_snr_weights,
    noise_level_weights,
)
from tiny_models import tiny_joint_unet


def tiny_unet(**overrides) -> JointUNet2DModel:
    return tiny_joint_unet(**{"classifier_hidden_dims": (32,), **overrides})


def digits(n=64):
    data = load_digits()
    images = torch.tensor(data.images[:n], dtype=torch.float32)[:, None] / 16 * 2 - 1
    return images, torch.tensor(data.target[:n])


SCHEDULER = DDPMScheduler(num_train_timesteps=100)


def loss_config(fixmatch_threshold: float, **weights) -> JointLossConfig:
    return JointLossConfig(fixmatch_threshold=fixmatch_threshold, **{"classifier_loss_weight": 1.0, **weights})


def test_all_unlabeled_batch_gives_finite_loss_and_zero_but_present_classifier_grads():
    unet = tiny_unet()
    images, _ = digits(8)
    labels = torch.full((8,), -1)
    out = joint_diffusion_loss(
        JointDiffusionObjective(unet), SCHEDULER, images, labels, JointLossConfig(classifier_loss_weight=1.0)
    )
    assert torch.isfinite(out.loss)
    assert out.num_labeled == 0 and out.loss_classifier.item() == 0.0
    out.loss.backward()
    # every parameter takes part in the graph (needed by DDP), the head with an exactly zero gradient
    for name, param in unet.named_parameters():
        assert param.grad is not None, name
    assert all(p.grad.abs().sum() == 0 for p in unet.classifier.parameters())
    assert unet.conv_in.weight.grad.abs().sum() > 0


def test_loss_is_mse_plus_weighted_cross_entropy_on_labeled_images_only():
    unet = tiny_unet().eval()
    images, labels = digits(6)
    labels[::2] = -1
    torch.manual_seed(3)
    out = joint_diffusion_loss(
        JointDiffusionObjective(unet), SCHEDULER, images, labels, JointLossConfig(classifier_loss_weight=0.5)
    )
    # recompute by hand with the same random draws
    torch.manual_seed(3)
    noise = torch.randn_like(images)
    timesteps = torch.randint(0, 100, (6,)).long()
    noisy = SCHEDULER.add_noise(images, noise, timesteps)
    with torch.no_grad():
        mse = torch.nn.functional.mse_loss(unet(noisy, timesteps).sample, noise)
        ce = torch.nn.functional.cross_entropy(unet.classify(images[1::2]), labels[1::2])
    assert out.num_labeled == 3
    torch.testing.assert_close(out.loss_diffusion, mse)
    torch.testing.assert_close(out.loss_classifier, ce)
    torch.testing.assert_close(out.loss.detach(), mse + 0.5 * ce)


def test_multi_label_uses_binary_cross_entropy():
    unet = tiny_unet(num_classes=3, problem_type="multi_label_classification").eval()
    images, _ = digits(4)
    labels = torch.tensor([[1, 0, 1], [0, 0, 0], [-1, -1, -1], [1, 1, 1]])
    torch.manual_seed(0)
    out = joint_diffusion_loss(
        JointDiffusionObjective(unet), SCHEDULER, images, labels, JointLossConfig(classifier_loss_weight=1.0)
    )
    with torch.no_grad():
        logits = unet.classify(images[[0, 1, 3]])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels[[0, 1, 3]].float())
    assert out.num_labeled == 3
    torch.testing.assert_close(out.loss_classifier, expected)


def test_fixmatch_pseudo_labels_follow_the_threshold():
    unet = tiny_unet().eval()
    images, labels = digits(8)
    labels[4:] = -1
    objective = JointDiffusionObjective(unet)
    common = dict(weak_images=images, strong_images=images.flip(-1))
    everything = joint_diffusion_loss(objective, SCHEDULER, images, labels, loss_config(0.0), **common)
    nothing = joint_diffusion_loss(objective, SCHEDULER, images, labels, loss_config(1.0), **common)
    assert everything.num_pseudo_labeled == 4 and everything.loss_fixmatch > 0
    assert nothing.num_pseudo_labeled == 0 and nothing.loss_fixmatch == 0


def test_out_of_range_labels_raise():
    unet = tiny_unet()
    images, labels = digits(4)
    labels[0] = 10
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        joint_diffusion_loss(JointDiffusionObjective(unet), SCHEDULER, images, labels)


def test_training_lowers_both_losses_on_real_digits():
    unet = tiny_unet()
    objective = JointDiffusionObjective(unet)
    optimizer = torch.optim.AdamW(objective.parameters(), lr=3e-3)
    images, labels = digits(256)
    torch.manual_seed(0)
    history = []
    for _ in range(60):
        batch = torch.randint(0, 256, (64,))
        out = joint_diffusion_loss(
            objective, SCHEDULER, images[batch], labels[batch], JointLossConfig(classifier_loss_weight=1.0)
        )
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        history.append((out.loss_diffusion.item(), out.loss_classifier.item()))
    first = torch.tensor(history[:10]).mean(0)
    last = torch.tensor(history[-10:]).mean(0)
    assert last[0] < 0.7 * first[0], (first, last)
    assert last[1] < 0.7 * first[1], (first, last)


def test_zero_diffusion_weight_is_the_classifier_alone():
    """`diffusion_loss_weight=0` (the label-only baseline): encoder and head on cross-entropy, decoder untouched."""
    unet = tiny_unet().eval()
    images, labels = digits(6)
    calls = []
    unet.register_forward_hook(lambda *_: calls.append("full forward"))
    out = joint_diffusion_loss(
        JointDiffusionObjective(unet),
        SCHEDULER,
        images,
        labels,
        JointLossConfig(classifier_loss_weight=2.0, diffusion_loss_weight=0),
    )
    assert not calls, "the noisy-image forward pass must be skipped"
    expected = 2.0 * torch.nn.functional.cross_entropy(unet.classify(images), labels)
    torch.testing.assert_close(out.loss, expected)
    assert out.loss_diffusion.item() == 0.0
    out.loss.backward()
    assert unet.conv_in.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in unet.up_blocks.parameters())
    assert all(p.grad is None for p in unet.conv_out.parameters())
    with pytest.raises(ValueError, match="diffusion_loss_weight must be >= 0"):
        JointLossConfig(diffusion_loss_weight=-1)


def test_noise_aware_term_reads_the_denoising_pass_weighted_by_alpha_bar():
    unet = tiny_unet().eval()
    images, labels = digits(6)
    labels[::2] = -1
    encoder_calls = []
    unet.conv_in.register_forward_hook(lambda *_: encoder_calls.append(1))
    torch.manual_seed(3)
    out = joint_diffusion_loss(
        JointDiffusionObjective(unet),
        SCHEDULER,
        images,
        labels,
        JointLossConfig(classifier_loss_weight=0.5, noisy_classifier_weight=2.0),
    )
    assert len(encoder_calls) == 2, "one noisy pass (denoising and noisy classification) and one clean pass"
    torch.manual_seed(3)
    noise = torch.randn_like(images)
    timesteps = torch.randint(0, 100, (6,)).long()
    noisy = SCHEDULER.add_noise(images, noise, timesteps)
    with torch.no_grad():
        ce_noisy = torch.nn.functional.cross_entropy(
            unet.classify(noisy, timesteps)[1::2], labels[1::2], reduction="none"
        )
        ce = torch.nn.functional.cross_entropy(unet.classify(images[1::2]), labels[1::2])
    expected_noisy = (ce_noisy * SCHEDULER.alphas_cumprod[timesteps[1::2]]).mean()
    torch.testing.assert_close(out.loss_noisy_classifier, expected_noisy)
    torch.testing.assert_close(out.loss.detach(), out.loss_diffusion + 0.5 * (ce + 2.0 * expected_noisy))


def test_noise_aware_term_is_zero_and_finite_without_labels_and_off_by_default():
    unet = tiny_unet()
    images, _ = digits(8)
    unlabeled = torch.full((8,), -1)
    out = joint_diffusion_loss(
        JointDiffusionObjective(unet),
        SCHEDULER,
        images,
        unlabeled,
        JointLossConfig(classifier_loss_weight=1.0, noisy_classifier_weight=1),
    )
    assert out.loss_noisy_classifier.item() == 0.0 and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in unet.parameters() if p.grad is not None)
    assert all(p.grad.abs().sum() == 0 for p in unet.classifier.parameters())
    _, labels = digits(8)
    off = joint_diffusion_loss(JointDiffusionObjective(unet), SCHEDULER, images, labels)
    assert off.loss_noisy_classifier.item() == 0.0
    with pytest.raises(ValueError, match="noisy_classifier_weight must be >= 0"):
        JointLossConfig(noisy_classifier_weight=-1)


def test_noise_level_weights_fall_from_one_to_almost_zero():
    cosine = DDPMScheduler(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2")  # the training default
    weights = noise_level_weights(cosine, torch.tensor([0, 50, 99]))
    assert weights[0] > 0.99 and weights[0] > weights[1] > weights[2] and weights[2] < 0.01


def test_classifier_images_change_the_classifier_term_only():
    """The augmented view reaches the classifier; the diffusion loss reads the clean images."""
    unet = tiny_unet().eval()
    images, labels = digits(6)
    objective = JointDiffusionObjective(unet)
    torch.manual_seed(0)
    plain = joint_diffusion_loss(objective, SCHEDULER, images, labels)
    torch.manual_seed(0)
    augmented = joint_diffusion_loss(objective, SCHEDULER, images, labels, classifier_images=images.flip(-1))
    torch.testing.assert_close(plain.loss_diffusion, augmented.loss_diffusion, rtol=0, atol=0)
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(unet.classify(images.flip(-1)), labels)
    torch.testing.assert_close(augmented.loss_classifier, expected)
    assert not torch.isclose(plain.loss_classifier, augmented.loss_classifier)
    with pytest.raises(ValueError, match="classifier_images must have the shape"):
        joint_diffusion_loss(objective, SCHEDULER, images, labels, classifier_images=images[:2])


def test_class_weights_come_from_the_labeled_rows_only():
    labels = torch.tensor([0, 0, 0, 1, -1, -1, -1, -1, -1, -1])  # the unlabeled rows would make class 1 look common
    weights = inverse_frequency_weights(labels, num_classes=3)
    torch.testing.assert_close(weights, torch.tensor([4 / 9, 4 / 3, 1.0]))  # class 2 has no label: weight 1
    multi = torch.tensor([[1, 0], [1, 0], [1, 1], [0, 0], [-1, -1]])
    torch.testing.assert_close(inverse_frequency_weights(multi, 2), torch.tensor([1 / 3, 3.0]))
    with pytest.raises(ValueError, match="need labeled images"):
        inverse_frequency_weights(torch.full((4,), -1), 2)


def test_class_weights_weight_the_cross_entropy():
    unet = tiny_unet().eval()
    images, labels = digits(6)
    weights = torch.linspace(0.5, 2.0, 10)
    torch.manual_seed(0)
    out = joint_diffusion_loss(JointDiffusionObjective(unet), SCHEDULER, images, labels, class_weights=weights)
    with torch.no_grad():
        ce = torch.nn.functional.cross_entropy(unet.classify(images), labels, reduction="none")
    torch.testing.assert_close(out.loss_classifier, (ce * weights[labels]).mean())


def test_diffusion_target_follows_the_prediction_type():
    images, _ = digits(4)
    noise = torch.randn_like(images)
    t = torch.tensor([1, 30, 60, 99])
    torch.testing.assert_close(diffusion_target(SCHEDULER, images, noise, t), noise)
    v_scheduler = DDPMScheduler(num_train_timesteps=100, prediction_type="v_prediction")
    abar = v_scheduler.alphas_cumprod[t][:, None, None, None]
    expected_v = abar.sqrt() * noise - (1 - abar).sqrt() * images
    torch.testing.assert_close(diffusion_target(v_scheduler, images, noise, t), expected_v)


def test_noisy_pseudo_labels_train_the_noisy_view_of_confident_unlabeled_images():
    unet = tiny_unet().eval()
    images, labels = digits(8)
    labels[4:] = -1
    objective = JointDiffusionObjective(unet)
    common = dict(classifier_loss_weight=1.0, noisy_pseudo_label_weight=1.0)
    everything = joint_diffusion_loss(objective, SCHEDULER, images, labels, loss_config(0.0, **common))
    nothing = joint_diffusion_loss(objective, SCHEDULER, images, labels, loss_config(1.0, **common))
    assert everything.num_pseudo_labeled == 4 and everything.loss_noisy_pseudo > 0
    assert everything.loss_fixmatch == 0  # no strong views: FixMatch is off
    assert nothing.num_pseudo_labeled == 0 and nothing.loss_noisy_pseudo == 0
    multi = tiny_unet(num_classes=3, problem_type="multi_label_classification")
    with pytest.raises(ValueError, match="single-label problems only"):
        joint_diffusion_loss(
            JointDiffusionObjective(multi), SCHEDULER, images, torch.full((8, 3), -1), loss_config(0.95, **common)
        )


def test_min_snr_weighting_down_weights_nearly_clean_timesteps():
    t = torch.tensor([1, 50, 99])
    weights = min_snr_weights(SCHEDULER, t, snr_gamma=5.0)
    assert weights[0] < 0.1 and weights[2] == 1.0  # SNR far above 5 at t = 1, below 5 at t = 99
    unet = tiny_unet().eval()
    images, labels = digits(6)
    torch.manual_seed(0)
    out = joint_diffusion_loss(
        JointDiffusionObjective(unet), SCHEDULER, images, labels, JointLossConfig(snr_gamma=5.0)
    )
    torch.manual_seed(0)
    noise = torch.randn_like(images)
    timesteps = torch.randint(0, 100, (6,)).long()
    with torch.no_grad():
        error = (unet(SCHEDULER.add_noise(images, noise, timesteps), timesteps).sample - noise).pow(2).mean((1, 2, 3))
    torch.testing.assert_close(out.loss_diffusion, (error * min_snr_weights(SCHEDULER, timesteps, 5.0)).mean())
    with pytest.raises(ValueError, match="snr_gamma must be > 0"):
        min_snr_weights(SCHEDULER, t, snr_gamma=0)


def test_min_snr_weights_of_each_prediction_type_are_min_snr_gamma_on_the_x0_error():
    """Min-SNR-gamma weights the x0 error by min(SNR, gamma) whatever the network predicts (Hang et al., 2023)."""
    t = torch.tensor([0, 5, 50, 99])
    snr = compute_snr(SCHEDULER, t)
    target = snr.clamp(max=5.0)
    for prediction_type, x0_error_per_unit in (("epsilon", 1 / snr), ("v_prediction", 1 / (snr + 1)), ("sample", 1)):
        scheduler = DDPMScheduler(num_train_timesteps=100, prediction_type=prediction_type)
        # the prediction's error is x0_error_per_unit times the x0 error: the weight undoes it
        torch.testing.assert_close(min_snr_weights(scheduler, t, 5.0), target * x0_error_per_unit)


def test_diffusion_weights_weight_each_image_of_the_denoising_term():
    unet = tiny_unet().eval()
    objective = JointDiffusionObjective(unet)
    images, labels = digits(2)

    def loss(weights):
        torch.manual_seed(0)  # the same noise and timesteps for every call
        return joint_diffusion_loss(objective, SCHEDULER, images, labels, diffusion_weights=weights).loss_diffusion

    first, second = loss(torch.tensor([2.0, 0.0])), loss(torch.tensor([0.0, 2.0]))
    assert first != second
    torch.testing.assert_close(loss(None), (first + second) / 2)
    torch.testing.assert_close(loss(torch.tensor([0.5, 1.5])), (first + 3 * second) / 4)
    with pytest.raises(ValueError, match=r"diffusion_weights must have shape \(2,\)"):
        loss(torch.ones(3))


def test_feature_consistency_pulls_noisy_features_of_unlabeled_images_towards_their_clean_features():
    unet = tiny_unet().eval()
    images, labels = digits(8)
    labels[4:] = -1
    objective = JointDiffusionObjective(unet)
    config = loss_config(0.95, feature_consistency_weight=1.0)

    torch.manual_seed(0)
    out = joint_diffusion_loss(objective, SCHEDULER, images, labels, config)
    torch.manual_seed(0)
    noise = torch.randn_like(images)
    timesteps = torch.randint(0, 100, (8,)).long()
    with torch.no_grad():
        _, noisy = unet.forward_with_features(SCHEDULER.add_noise(images, noise, timesteps), timesteps)
        clean = unet.extract_features(images[4:])
    distance = 1 - torch.nn.functional.cosine_similarity(noisy[4:], clean, dim=1)
    expected = (distance * noise_level_weights(SCHEDULER, timesteps[4:])).mean()
    torch.testing.assert_close(out.loss_feature_consistency, expected)
    assert out.loss_feature_consistency > 0 and out.num_pseudo_labeled == 0  # label-free: no pseudo-labels

    torch.manual_seed(0)
    all_labeled = joint_diffusion_loss(objective, SCHEDULER, images, digits(8)[1], config)
    assert all_labeled.loss_feature_consistency == 0
    torch.manual_seed(0)
    off = joint_diffusion_loss(objective, SCHEDULER, images, labels, loss_config(0.95))
    assert off.loss_feature_consistency == 0
    torch.testing.assert_close(out.loss.detach() - off.loss.detach(), expected)

    # Only the noisy pass learns: the term's gradient is that of the noisy features towards fixed clean ones.
    unet.zero_grad()
    (out.loss - off.loss).backward()  # every other term is the same in both, so this is the term's gradient
    term_grad = unet.conv_in.weight.grad.clone()
    unet.zero_grad()
    _, noisy = unet.forward_with_features(SCHEDULER.add_noise(images, noise, timesteps), timesteps)
    fixed_target = 1 - torch.nn.functional.cosine_similarity(noisy[4:], clean, dim=1)
    (fixed_target * noise_level_weights(SCHEDULER, timesteps[4:])).mean().backward()
    assert term_grad.abs().sum() > 0
    torch.testing.assert_close(term_grad, unet.conv_in.weight.grad)
    with pytest.raises(ValueError, match="feature_consistency_weight must be >= 0"):
        JointLossConfig(feature_consistency_weight=-1.0)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("classifier_loss_weight", -0.1, "classifier_loss_weight must be >= 0, got -0.1"),
        ("fixmatch_weight", -1.0, "fixmatch_weight must be >= 0, got -1.0"),
        ("fixmatch_threshold", 1.5, r"fixmatch_threshold is a confidence and must be in \[0, 1\], got 1.5"),
        ("fixmatch_threshold", -0.2, r"fixmatch_threshold is a confidence and must be in \[0, 1\], got -0.2"),
        ("snr_gamma", -1.0, r"snr_gamma must be > 0 \(None: no Min-SNR weighting\), got -1.0"),
    ],
)
def test_out_of_range_loss_config_values_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        JointLossConfig(**{field: value})
    JointLossConfig(classifier_loss_weight=0.0, fixmatch_weight=0.0, fixmatch_threshold=1.0, snr_gamma=None)
