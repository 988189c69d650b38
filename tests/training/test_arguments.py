import argparse

import pytest
import torch

from diffusers_joint.data import load_digits_dataset
from diffusers_joint.training import JointLossConfig, JointLossSetup, check_joint_loss_arguments
from diffusers_joint.training.arguments import (
    add_joint_loss_arguments,
    add_model_arguments,
    create_joint_unet_from_args,
    joint_loss_from_args,
)
from diffusers_joint.training.pseudo_labels import PseudoLabelSettings


def loss_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train_joint.py")
    add_joint_loss_arguments(parser)
    return parser


def test_classifier_weight_ramps_from_zero_over_the_warm_up_then_stays_at_the_flag():
    config = JointLossConfig(classifier_loss_weight=0.1, feature_consistency_weight=2.0)
    setup = JointLossSetup(config, PseudoLabelSettings(True, 1.0, True), classifier_weight_warmup_steps=4)
    weights = [setup.config_at(step).classifier_loss_weight for step in range(6)]
    assert weights == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1, 0.1])
    assert setup.config_at(2).feature_consistency_weight == 2.0  # only the classifier weight moves
    assert setup.config_at(4) is config
    assert JointLossSetup(config, PseudoLabelSettings(True, 1.0, True)).config_at(0) is config  # no warm-up


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--classifier_weight_warmup_steps", "-1"], "--classifier_weight_warmup_steps must be >= 0, got -1"),
        (["--feature_consistency_weight", "-0.5"], "--feature_consistency_weight must be >= 0, got -0.5"),
        (["--classifier_loss_weight", "-1"], "--classifier_loss_weight must be >= 0, got -1.0"),
        (["--fixmatch_weight", "-1"], "--fixmatch_weight must be >= 0, got -1.0"),
        (["--snr_gamma", "-1"], "--snr_gamma must be >= 0, got -1.0"),
        (["--fixmatch_threshold", "1.5"], "--fixmatch_threshold is a confidence and must be in [0, 1], got 1.5"),
        (["--fixmatch_threshold", "-0.2"], "--fixmatch_threshold is a confidence and must be in [0, 1], got -0.2"),
        (["--fixmatch_alignment_momentum", "1"], "--fixmatch_alignment_momentum must be in [0, 1), got 1.0"),
        (["--fixmatch_alignment_momentum", "-0.1"], "--fixmatch_alignment_momentum must be in [0, 1), got -0.1"),
    ],
)
def test_negative_schedule_and_consistency_flags_are_refused(flags, message, capsys):
    parser = loss_parser()
    with pytest.raises(SystemExit):
        check_joint_loss_arguments(parser, parser.parse_args(flags))
    assert message in capsys.readouterr().err


def test_classifier_feature_stages_flag_reaches_the_saved_config():
    parser = argparse.ArgumentParser(prog="train_joint.py")
    add_model_arguments(parser)
    parser.set_defaults(resolution=None)
    digits = load_digits_dataset()
    flags = ["--block_out_channels", "8", "16"]
    unet = create_joint_unet_from_args(digits, parser.parse_args([*flags, "--classifier_feature_stages", "-1"]))
    assert unet.config.classifier_feature_stages == [-1]
    assert unet.classifier_stages == [2] and unet.feature_dim == 16
    assert create_joint_unet_from_args(digits, parser.parse_args(flags)).feature_dim == 8 + 16 + 16


def test_a_class_without_a_label_is_named_before_training_when_fixmatch_aligns_distributions():
    digits = load_digits_dataset()
    args = loss_parser().parse_args([])  # FixMatch and its distribution alignment are on by default
    few = torch.tensor([0, 1, 2, 3, 4])  # 5 labels for 10 classes
    missing = r"Classes \['5', '6', '7', '8', '9'\] have no labeled training image"
    with pytest.raises(ValueError, match=missing) as error:
        joint_loss_from_args(args, digits, few, some_unlabeled=True)
    assert "--no-fixmatch_distribution_alignment" in str(error.value)
    args = loss_parser().parse_args(["--no-fixmatch_distribution_alignment"])
    assert joint_loss_from_args(args, digits, few, some_unlabeled=True).alignment is None
    assert joint_loss_from_args(loss_parser().parse_args([]), digits, torch.arange(10), True).alignment is not None
