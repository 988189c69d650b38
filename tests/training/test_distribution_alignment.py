import pytest
import torch
from safetensors.torch import load_file, save_file
from test_losses import SCHEDULER, digits, tiny_unet

from diffusers_joint.training import (
    DistributionAlignment,
    JointDiffusionObjective,
    JointLossConfig,
    joint_diffusion_loss,
)


def test_update_and_alignment_match_hand_computed_values():
    alignment = DistributionAlignment(torch.tensor([3, 3]), momentum=0.5)
    probs = torch.tensor([[0.9, 0.1], [0.7, 0.3]])
    alignment.update(probs)
    # running mean: 0.5 * [0.5, 0.5] + 0.5 * [0.8, 0.2] = [0.65, 0.35]
    torch.testing.assert_close(alignment.running_mean, torch.tensor([0.65, 0.35], dtype=torch.float64))
    # [0.9, 0.1] * [0.5 / 0.65, 0.5 / 0.35] = [0.6923, 0.1429], renormalised
    expected = torch.tensor([0.9 / 0.65, 0.1 / 0.35])
    torch.testing.assert_close(alignment(probs[:1]), (expected / expected.sum())[None])
    assert alignment(probs).dtype == probs.dtype


def test_prior_comes_from_class_counts_and_a_balanced_model_is_left_alone():
    alignment = DistributionAlignment(torch.tensor([10, 30]), momentum=0.0)
    torch.testing.assert_close(alignment.target, torch.tensor([0.25, 0.75], dtype=torch.float64))
    probs = torch.tensor([[0.2, 0.8], [0.3, 0.7]])  # mean [0.25, 0.75]: already the prior
    alignment.update(probs)
    torch.testing.assert_close(alignment(probs), probs)


def test_empty_batch_leaves_the_average_unchanged():
    alignment = DistributionAlignment(torch.tensor([1, 1, 1]), momentum=0.9)
    alignment.update(torch.zeros(0, 3))
    torch.testing.assert_close(alignment.running_mean, torch.full((3,), 1 / 3, dtype=torch.float64))


def test_state_round_trips_through_safetensors_exactly(tmp_path):
    alignment = DistributionAlignment(torch.tensor([2, 5, 3]), momentum=0.7)
    alignment.update(torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]]))
    save_file(alignment.state_dict(), tmp_path / "alignment.safetensors")
    restored = DistributionAlignment(torch.tensor([2, 5, 3]), momentum=0.7)
    restored.load_state_dict(load_file(tmp_path / "alignment.safetensors"))
    assert torch.equal(restored.running_mean, alignment.running_mean)
    other_run = DistributionAlignment(torch.tensor([5, 2, 3]))
    with pytest.raises(ValueError, match="other labeled images"):
        other_run.load_state_dict(alignment.state_dict())


@pytest.mark.parametrize(
    "target, message", [([4, 0], "positive"), ([1], "at least 2"), ([1.0, float("nan")], "finite")]
)
def test_bad_prior_raises(target, message):
    with pytest.raises(ValueError, match=message):
        DistributionAlignment(torch.tensor(target))


def test_bad_momentum_and_shape_raise():
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        DistributionAlignment(torch.tensor([1, 1]), momentum=1.0)
    with pytest.raises(ValueError, match=r"shape \(batch, 2\)"):
        DistributionAlignment(torch.tensor([1, 1])).update(torch.ones(4, 3))


def test_alignment_stops_a_one_class_classifier_from_pseudo_labeling_everything():
    """The FixMatch failure it exists for: a head sure of one class pseudo-labels every unlabeled image with it."""
    unet = tiny_unet(num_classes=2).eval()
    with torch.no_grad():
        unet.classifier.layers[-1].bias.copy_(torch.tensor([8.0, -8.0]))  # class 0 for every image, p > 0.99
    images, _ = digits(8)
    labels = torch.tensor([0, 1, -1, -1, -1, -1, -1, -1])
    objective = JointDiffusionObjective(unet)
    common = dict(weak_images=images, strong_images=images.flip(-1))
    config = JointLossConfig(fixmatch_threshold=0.95)
    plain = joint_diffusion_loss(objective, SCHEDULER, images, labels, config, **common)
    assert plain.num_pseudo_labeled == 6
    alignment = DistributionAlignment(torch.tensor([1, 1]), momentum=0.0)
    aligned = joint_diffusion_loss(
        objective, SCHEDULER, images, labels, config, distribution_alignment=alignment, **common
    )
    assert aligned.num_pseudo_labeled == 0
    assert alignment.running_mean[0] > 0.99  # it saw what the classifier predicts
