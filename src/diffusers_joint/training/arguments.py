# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The loss flags of the training script, and the [`JointLossConfig`] they make."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace

import torch
from diffusers.optimization import SchedulerType
from diffusers.utils import logging

from ..data.arguments import float_in, int_at_least, intensity_normalization_from_args
from ..data.augmentations import CLASSIFIER_AUGMENTATIONS
from ..data.joint_dataset import SINGLE_LABEL, JointDataset
from ..models import JointUNet2DModel
from .distribution_alignment import DistributionAlignment
from .losses import JointLossConfig, inverse_frequency_weights
from .pseudo_labels import PSEUDO_LABEL_DEFAULTS, PseudoLabelSettings, resolve_pseudo_label_settings
from .unet_config import create_joint_unet

logger = logging.get_logger(__name__)


# create_joint_unet's keyword arguments, each the flag of the same name
MODEL_FLAGS = (
    "pretrained_unet", "resolution", "block_out_channels", "layers_per_block", "norm_num_groups", "attention_levels",
    "classifier_hidden_dims", "classifier_dropout", "classifier_feature_stages",
)  # fmt: skip
# JointLossConfig's fields set by the flag of the same name (the noisy pseudo-label weight is settled first)
LOSS_FLAGS = ("diffusion_loss_weight", "classifier_loss_weight", "noisy_classifier_weight",
              "feature_consistency_weight", "fixmatch_threshold", "fixmatch_weight")  # fmt: skip


# The beta schedules of diffusers' DDPM and DDIM schedulers.
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid")


def add_model_arguments(group: argparse._ActionsContainer) -> None:
    """Add the flags of the UNet, its classifier head and the noise schedule to `group`."""
    group.add_argument("--pretrained_unet", type=str, default=None, help="Start from a UNet2DModel (folder or id).")
    group.add_argument("--block_out_channels", type=int, nargs="+", default=None)
    group.add_argument("--layers_per_block", type=int, default=1)
    group.add_argument("--attention_levels", type=int, nargs="*", default=None, help="Levels with attention.")
    group.add_argument(
        "--norm_num_groups",
        type=int,
        default=None,
        help="Group-norm groups. Default: the most groups (<= 32) with >= 4 channels each; one channel per group "
        "normalises away each image's brightness (grey backgrounds).",
    )
    group.add_argument("--classifier_hidden_dims", type=int, nargs="*", default=[256])
    group.add_argument("--classifier_dropout", type=float_in(0, 1, high_open=True), default=0.1)
    group.add_argument(
        "--classifier_feature_stages",
        type=int,
        nargs="+",
        default=None,
        help="Encoder stages the classifier head reads: indices of the down blocks, then the mid block (-1 is the "
        "last stage). Default: every stage.",
    )
    group.add_argument("--ddpm_num_steps", type=int_at_least(1), default=1000, help="Timesteps of the DDPM schedule.")
    group.add_argument("--ddpm_beta_schedule", choices=BETA_SCHEDULES, default="squaredcos_cap_v2")


def create_joint_unet_from_args(dataset: JointDataset, args: argparse.Namespace) -> JointUNet2DModel:
    """[`create_joint_unet`] with the flags of [`add_model_arguments`] and `args.resolution`."""
    return create_joint_unet(dataset, **{name: getattr(args, name) for name in MODEL_FLAGS})


def add_joint_loss_arguments(group: argparse._ActionsContainer) -> None:
    """Add the flags of the loss terms, the classifier's augmentation, pseudo-labels and calibration to `group`."""
    group.add_argument(
        "--classifier_loss_weight", type=float, default=0.1, help="Weight of the classifier loss (lambda)."
    )
    group.add_argument(
        "--classifier_weight_warmup_steps",
        type=int,
        default=0,
        help="Raise the classifier loss weight linearly from 0 to --classifier_loss_weight over this many optimizer "
        "steps, so that the denoising loss shapes the encoder first; 0 (default) uses the full weight from the start. "
        "Measured in docs/experiments/features-and-labels.md.",
    )
    group.add_argument(
        "--diffusion_loss_weight",
        type=float,
        default=1.0,
        help="Weight of the denoising loss. 0 trains the same encoder and head on the labeled images alone "
        "(a classifier-only baseline: unlabeled images are dropped and no samples are drawn).",
    )
    group.add_argument(
        "--classifier_augmentation",
        choices=list(CLASSIFIER_AUGMENTATIONS),
        default="medium",
        help="Augmentation of the classifier's input only (random affine; medium and strong add brightness, contrast "
        "and gamma). The diffusion loss always sees the un-augmented images. Which strength suits which data: "
        "docs/experiments/recipe.md.",
    )
    group.add_argument(
        "--noisy_classifier_weight",
        type=float,
        default=1.0,
        help="Weight (relative to the clean-image term) of classifying the labeled images' noisy x_t from the "
        "denoising pass, each weighted by alpha_bar_t; 0 turns it off. Costs no extra forward pass.",
    )
    group.add_argument(
        "--snr_gamma",
        type=float,
        default=5.0,
        help="Min-SNR weighting of the denoising loss (Hang et al., 2023); 0 gives the plain mean squared error.",
    )
    group.add_argument(
        "--noisy_pseudo_label_weight",
        type=float,
        default=None,
        help="Weight of pseudo-labels (confidence >= --fixmatch_threshold on the classifier's view) of unlabeled "
        "images training the classifier on their noisy x_t from the denoising pass; 0 turns it off. Default: "
        f"{PSEUDO_LABEL_DEFAULTS['noisy_pseudo_label_weight']:g} for single-label data with unlabeled images.",
    )
    group.add_argument(
        "--feature_consistency_weight",
        type=float,
        default=0.0,
        help="Weight of pulling the pooled encoder features of unlabeled images' noisy x_t (denoising pass) towards "
        "those of their clean view, by cosine distance weighted by alpha_bar_t; label-free, no extra forward pass. "
        "Off by default: measured in docs/experiments/features-and-labels.md.",
    )
    group.add_argument(
        "--class_weighting",
        choices=["none", "inverse_frequency"],
        default="inverse_frequency",
        help="Weight the classification loss by inverse class frequency in the labeled set (no effect on balanced "
        "labels; on imbalanced data it moves decisions towards balanced accuracy).",
    )
    group.add_argument(
        "--calibrate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Fit a temperature on the validation split after training, saved in the model config so that "
        "classify() and the pipelines return calibrated probabilities.",
    )
    group.add_argument(
        "--fixmatch",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="FixMatch pseudo-labels on unlabeled images (kornia weak and strong views). Default: "
        f"{'on' if PSEUDO_LABEL_DEFAULTS['fixmatch'] else 'off'} for single-label data with unlabeled images.",
    )
    group.add_argument(
        "--fixmatch_threshold", type=float, default=0.95, help="Confidence a pseudo-label needs, in [0, 1]."
    )
    group.add_argument(
        "--fixmatch_weight",
        type=float,
        default=1.0,
        help="Weight (>= 0) of the FixMatch term, relative to the labeled one.",
    )
    group.add_argument(
        "--fixmatch_distribution_alignment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="With --fixmatch: rescale pseudo-label probabilities so that their average follows the class frequencies "
        "of the labeled images (ReMixMatch's distribution alignment), against FixMatch drifting to one class. On by "
        "default with FixMatch (docs/experiments/recipe.md).",
    )
    group.add_argument(
        "--fixmatch_alignment_momentum",
        type=float,
        default=0.99,
        help="Moving-average momentum of the alignment, in [0, 1).",
    )


@dataclass
class JointLossSetup:
    """What a training run passes to [`joint_diffusion_loss`] besides the batch."""

    config: JointLossConfig
    pseudo_labels: PseudoLabelSettings
    class_weights: torch.Tensor | None = None
    alignment: DistributionAlignment | None = None
    classifier_weight_warmup_steps: int = 0

    def config_at(self, step: int) -> JointLossConfig:
        """The loss weights of optimizer step `step` (0-based): the classifier weight ramps up over the warm-up."""
        if step >= self.classifier_weight_warmup_steps:
            return self.config
        ramp = step / self.classifier_weight_warmup_steps
        return replace(self.config, classifier_loss_weight=self.config.classifier_loss_weight * ramp)


def joint_loss_from_args(
    args: argparse.Namespace, dataset: JointDataset, labeled_targets: torch.Tensor, some_unlabeled: bool
) -> JointLossSetup:
    """
    The loss of the flags of [`add_joint_loss_arguments`] for `dataset`, whose labeled training images have the
    labels `labeled_targets`: pseudo-labels settled where they apply ([`resolve_pseudo_label_settings`]), class
    weights (`--class_weighting`) and FixMatch's distribution alignment towards the labeled class frequencies.

    Raises:
        ValueError: distribution alignment is on (FixMatch's default) and a class has no labeled image; the message
            names the classes and the flags that fix it.
    """
    pseudo_labels = resolve_pseudo_label_settings(
        args.fixmatch,
        args.noisy_pseudo_label_weight,
        args.fixmatch_distribution_alignment,
        multi_label=dataset.problem_type != SINGLE_LABEL,
        num_classes=dataset.num_classes,
        some_unlabeled=some_unlabeled,
        diffusion=args.diffusion_loss_weight > 0,
    )
    alignment = None
    if pseudo_labels.distribution_alignment:
        label_counts = torch.bincount(labeled_targets, minlength=dataset.num_classes)
        if (label_counts == 0).any():  # checked here, before any training time is spent
            missing = [dataset.label_names[i] for i in torch.nonzero(label_counts == 0).flatten().tolist()]
            raise ValueError(
                f"Classes {missing} have no labeled training image ({int(label_counts.sum())} labels for "
                f"{dataset.num_classes} classes), but FixMatch's distribution alignment (on by default) aligns the "
                "pseudo-labels towards the labeled class frequencies and needs each class at least once. Give every "
                "class a label (e.g. --labeled_per_class 1, or a larger --num_labeled), or pass "
                "--no-fixmatch_distribution_alignment."
            )
        alignment = DistributionAlignment(label_counts, momentum=args.fixmatch_alignment_momentum)
        logger.info(f"FixMatch distribution alignment towards the labeled class frequencies {label_counts.tolist()}.")
    class_weights = None
    if args.class_weighting == "inverse_frequency":
        class_weights = inverse_frequency_weights(labeled_targets, dataset.num_classes)
        logger.info(f"Class weights of the classification loss (inverse frequency): {class_weights.tolist()}")
    config = joint_loss_config_from_args(args, pseudo_labels)
    return JointLossSetup(config, pseudo_labels, class_weights, alignment, args.classifier_weight_warmup_steps)


def check_joint_loss_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit through `parser.error` on loss flags that contradict each other or are out of range."""
    try:  # the weights and threshold that JointLossConfig checks, named as flags
        JointLossConfig(**{name: getattr(args, name) for name in LOSS_FLAGS})
    except ValueError as error:
        parser.error(f"--{error}")
    if args.diffusion_loss_weight == 0 and args.fixmatch:
        parser.error("--fixmatch needs unlabeled images, which --diffusion_loss_weight 0 drops.")
    if args.fixmatch_distribution_alignment and args.fixmatch is False:
        parser.error("--fixmatch_distribution_alignment aligns FixMatch pseudo-labels: drop --no-fixmatch.")
    for name in ("noisy_pseudo_label_weight", "classifier_weight_warmup_steps", "snr_gamma"):  # None / 0: off
        if (getattr(args, name) or 0) < 0:
            parser.error(f"--{name} must be >= 0, got {getattr(args, name)}.")
    if not 0.0 <= args.fixmatch_alignment_momentum < 1.0:
        parser.error(f"--fixmatch_alignment_momentum must be in [0, 1), got {args.fixmatch_alignment_momentum}.")


def joint_loss_config_from_args(args: argparse.Namespace, pseudo_labels: PseudoLabelSettings) -> JointLossConfig:
    """The [`JointLossConfig`] of the flags of [`add_joint_loss_arguments`], with the settled pseudo-label weight."""
    return JointLossConfig(
        **{name: getattr(args, name) for name in LOSS_FLAGS},
        noisy_pseudo_label_weight=pseudo_labels.noisy_pseudo_label_weight,
        snr_gamma=args.snr_gamma or None,  # 0 on the command line: no Min-SNR weighting
    )


def training_settings_from_args(
    args: argparse.Namespace, resolution: int, steps: int, trained_steps: int | None = None
) -> dict:
    """
    The settings of a training run that its model card records (`training_settings` of [`build_model_card`]):
    `steps` is the saved model's step; `trained_steps`, the last step trained, is recorded when it is given (a run
    that saved the best step of `--select_best_checkpoint`).
    """
    keys = [
        "num_labeled", "labeled_per_class", "labeled_fraction", "labeled_batch_fraction", "diffusion_data_weighting",
        "diffusion_loss_weight", "classifier_loss_weight", "classifier_weight_warmup_steps", "classifier_augmentation",
        "noisy_classifier_weight", "noisy_pseudo_label_weight", "feature_consistency_weight", "class_weighting",
        "snr_gamma", "fixmatch", "fixmatch_distribution_alignment",
        "train_batch_size", "gradient_accumulation_steps", "learning_rate", "lr_scheduler", "use_ema", "ema_max_decay",
        "ddpm_num_steps", "ddpm_beta_schedule", "mixed_precision", "seed", "select_best_checkpoint",
    ]  # fmt: skip
    normalization = intensity_normalization_from_args(args).to_config()  # as saved with the pipeline
    settings = {"resolution": resolution, "steps": steps}
    if trained_steps is not None:
        settings["trained_steps"] = trained_steps
    settings.update({k: getattr(args, k) for k in keys}, **normalization)
    if getattr(args, "pretrained_vae_model_name_or_path", None):  # latent runs only: pixel cards stay as they were
        settings["pretrained_vae_model_name_or_path"] = args.pretrained_vae_model_name_or_path
    return settings


def add_run_arguments(
    group: argparse._ActionsContainer, output_dir: str, train_batch_size: int, eval_batch_size: int
) -> None:
    """Add the output folder (and whether to replace it), the seed and the batch sizes, with these defaults."""
    group.add_argument("--output_dir", type=str, default=output_dir)
    group.add_argument("--overwrite_output_dir", action="store_true")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument(
        "--train_batch_size", type=int_at_least(1), default=train_batch_size, help="Images per process."
    )
    group.add_argument(
        "--eval_batch_size",
        type=int_at_least(1),
        default=eval_batch_size,
        help="Images per forward pass when classifying, scoring, calibrating or encoding without gradients.",
    )


def add_checkpoint_arguments(group: argparse._ActionsContainer) -> None:
    """Add how often checkpoints are written, how many are kept, and which one to resume from."""
    group.add_argument(
        "--checkpointing_steps",
        type=int_at_least(0, ", or 0 for none"),
        default=500,
        help="Write a resumable checkpoint every this many optimizer steps; 0: none.",
    )
    group.add_argument(
        "--checkpoints_total_limit",
        type=int_at_least(1),
        default=2,
        help="Keep only this many of the newest checkpoints (the one just written always among them).",
    )
    group.add_argument("--resume_from_checkpoint", type=str, default=None, help="A checkpoint folder or 'latest'.")


def add_logging_and_hub_arguments(group: argparse._ActionsContainer) -> None:
    """Add the metric trackers and the Hub upload flags (the token is never logged or saved)."""
    group.add_argument("--report_to", type=str, default="tensorboard", help="tensorboard, wandb, all or none.")
    group.add_argument("--logging_dir", type=str, default="logs")
    group.add_argument("--push_to_hub", action="store_true")
    group.add_argument("--hub_model_id", type=str, default=None)
    group.add_argument(
        "--hub_token",
        type=str,
        default=None,
        help="Default: HF_TOKEN or the cached login, which are safer: a token on the command line shows in the "
        "process list and in `accelerate launch`'s error message when the run fails. Never logged or saved.",
    )
    group.add_argument("--hub_private_repo", action="store_true")


def add_learning_rate_arguments(group: argparse._ActionsContainer, learning_rate: float, lr_scheduler: str) -> None:
    """Add gradient accumulation, the learning rate and diffusers' `get_scheduler` schedule with its warm-up."""
    group.add_argument(
        "--gradient_accumulation_steps", type=int_at_least(1), default=1, help="Batches per optimizer step."
    )
    group.add_argument("--learning_rate", type=float_in(0, low_open=True), default=learning_rate)
    group.add_argument("--lr_scheduler", choices=[kind.value for kind in SchedulerType], default=lr_scheduler)
    group.add_argument("--lr_warmup_steps", type=int_at_least(0), default=100)
