#!/usr/bin/env python
# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Train a Joint Diffusion model (one UNet that denoises and classifies) with Accelerate.

    accelerate launch examples/train_joint.py                      # embedded demo: scikit-learn's 8x8 digits
    accelerate launch examples/train_joint.py --npz_path pneumonia.npz --num_labeled 50 --output_dir joint-pneumonia

Modelled on diffusers' examples/unconditional_image_generation/train_unconditional.py; the logic lives in
`diffusers_joint.data`, `diffusers_joint.training` and `diffusers_joint.evaluation`.
"""

import argparse
import contextlib
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration, is_tensorboard_available, set_seed
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from diffusers_joint import JointDiffusionPipeline, JointUNet2DModel
from diffusers_joint.data import (
    CLASSIFIER_AUGMENTATIONS,
    SINGLE_LABEL,
    ImagePreprocessor,
    JointAugmentation,
    JointCollator,
    MixedBatchSampler,
    add_data_source_arguments,
    intensity_normalization_from_args,
    is_labeled,
    load_joint_dataset_from_args,
    mask_labels,
)
from diffusers_joint.data.joint_dataset import holdout_name, holdout_split
from diffusers_joint.evaluation import (
    dataset_to_tensors,
    evaluate_classifier,
    evaluate_generation,
    metrics_from_logits,
    predict_logits,
    split_shift_auc,
    train_reference_classifier,
)
from diffusers_joint.pipelines import labelled_image_grid
from diffusers_joint.training import (
    BEST_CHECKPOINT_METRICS,
    BestCheckpoint,
    DistributionAlignment,
    HubUploadError,
    JointDiffusionObjective,
    build_model_card,
    calibrate_temperature,
    check_checkpoint_fits,
    finalize_checkpoint,
    inverse_frequency_weights,
    joint_diffusion_loss,
    labeled_mask,
    negative_log_likelihood,
    push_output_to_hub,
    remove_incomplete_checkpoints,
    resolve_checkpoint,
    save_model_card,
    temporary_checkpoint_dir,
    unet_kwargs,
)

logger = get_logger(__name__, log_level="INFO")
ALIGNMENT_FILE = "fixmatch_distribution_alignment.safetensors"
SPLIT_SHIFT_WARNING_AUC = 0.6  # PneumoniaMNIST's test split against its hold-out: 0.67; MNIST-5k's: 0.49
SPLIT_SHIFT_MAX_IMAGES = 1000
# Where they apply (single-label data with unlabeled images); from the validation runs of docs/benchmarks.md#recipe.
PSEUDO_LABEL_DEFAULTS = {"fixmatch": True, "noisy_pseudo_label_weight": 1.0}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Train a Joint Diffusion model (diffusion + classification).")
    data = parser.add_argument_group("data (default: scikit-learn's 8x8 digits, embedded)")
    add_data_source_arguments(data)
    data.add_argument("--resolution", type=int, default=None, help="Default: the images' size, rounded to fit.")
    data.add_argument("--random_flip", action="store_true", help="Flip horizontally (not for lateralised images).")
    data.add_argument("--dataloader_num_workers", type=int, default=0)
    data.add_argument(
        "--validation_split",
        type=str,
        default=None,
        help="A split of the data source (e.g. `val` of a MedMNIST .npz) for calibration. Default: a seeded, "
        "stratified hold-out of --validation_fraction of the labeled training images, taken before labels are masked.",
    )
    data.add_argument(
        "--validation_fraction",
        type=float,
        default=0.1,
        help="Share of the labeled training images held out for calibration when no --validation_split is given (the "
        "unlabeled ones all train); 0: none.",
    )

    labels = parser.add_argument_group("label budget and mixed batches")
    budget = labels.add_mutually_exclusive_group()
    budget.add_argument("--num_labeled", type=int, default=None, help="Keep N labels (stratified), mask the rest.")
    budget.add_argument("--labeled_per_class", type=int, default=None, help="Keep K labels per class.")
    budget.add_argument("--labeled_fraction", type=float, default=None, help="Keep this fraction of labels.")
    labels.add_argument(
        "--labeled_batch_fraction",
        type=float,
        default=0.5,
        help="Share of every batch drawn from the labeled images when some images are unlabeled.",
    )
    labels.add_argument(
        "--diffusion_data_weighting",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="Weight each image's denoising error so that the labeled images, which mixed batches oversample, count "
        "as often as in the data (MixedBatchSampler.data_weights). Without it, with 50 labels half of the "
        "generator's training comes from those 50 images.",
    )

    model = parser.add_argument_group("model")
    model.add_argument("--pretrained_unet", type=str, default=None, help="Start from a UNet2DModel (folder or id).")
    model.add_argument("--block_out_channels", type=int, nargs="+", default=None)
    model.add_argument("--layers_per_block", type=int, default=1)
    model.add_argument("--attention_levels", type=int, nargs="*", default=None, help="Levels with attention.")
    model.add_argument(
        "--norm_num_groups",
        type=int,
        default=None,
        help="Group-norm groups. Default: the most groups (<= 32) with >= 4 channels each; one channel per group "
        "normalises away each image's brightness (grey backgrounds).",
    )
    model.add_argument("--classifier_hidden_dims", type=int, nargs="*", default=[256])
    model.add_argument("--classifier_dropout", type=float, default=0.1)
    model.add_argument("--ddpm_num_steps", type=int, default=1000)
    model.add_argument("--ddpm_beta_schedule", type=str, default="squaredcos_cap_v2")

    loss = parser.add_argument_group("loss")
    loss.add_argument(
        "--classifier_loss_weight", type=float, default=0.1, help="Weight of the classifier loss (lambda)."
    )
    loss.add_argument(
        "--diffusion_loss_weight",
        type=float,
        default=1.0,
        help="Weight of the denoising loss. 0 trains the same encoder and head on the labeled images alone "
        "(a classifier-only baseline: unlabeled images are dropped and no samples are drawn).",
    )
    loss.add_argument(
        "--classifier_augmentation",
        choices=list(CLASSIFIER_AUGMENTATIONS),
        default="medium",
        help="Augmentation of the classifier's input only (random affine; medium and strong add brightness, contrast "
        "and gamma). The diffusion loss always sees the un-augmented images. Measured with 50 labels: medium is best "
        "on chest X-rays, strong on digits.",
    )
    loss.add_argument(
        "--noisy_classifier_weight",
        type=float,
        default=1.0,
        help="Weight (relative to the clean-image term) of classifying the labeled images' noisy x_t from the "
        "denoising pass, each weighted by alpha_bar_t; 0 turns it off. Costs no extra forward pass.",
    )
    loss.add_argument(
        "--snr_gamma",
        type=float,
        default=5.0,
        help="Min-SNR weighting of the denoising loss (Hang et al., 2023); 0 gives the plain mean squared error.",
    )
    loss.add_argument(
        "--noisy_pseudo_label_weight",
        type=float,
        default=None,
        help="Weight of pseudo-labels (confidence >= --fixmatch_threshold on the classifier's view) of unlabeled "
        "images training the classifier on their noisy x_t from the denoising pass; 0 turns it off. Default: "
        f"{PSEUDO_LABEL_DEFAULTS['noisy_pseudo_label_weight']:g} for single-label data with unlabeled images.",
    )
    loss.add_argument(
        "--class_weighting",
        choices=["none", "inverse_frequency"],
        default="inverse_frequency",
        help="Weight the classification loss by inverse class frequency in the labeled set (no effect on balanced "
        "labels; on imbalanced data it moves decisions towards balanced accuracy).",
    )
    loss.add_argument(
        "--calibrate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Fit a temperature on the validation split after training, saved in the model config so that "
        "classify() and the pipelines return calibrated probabilities.",
    )
    loss.add_argument(
        "--fixmatch",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="FixMatch pseudo-labels on unlabeled images (kornia weak and strong views). Default: "
        f"{'on' if PSEUDO_LABEL_DEFAULTS['fixmatch'] else 'off'} for single-label data with unlabeled images.",
    )
    loss.add_argument("--fixmatch_threshold", type=float, default=0.95)
    loss.add_argument("--fixmatch_weight", type=float, default=1.0)
    loss.add_argument(
        "--fixmatch_distribution_alignment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="With --fixmatch: rescale pseudo-label probabilities so that their average follows the class frequencies "
        "of the labeled images (ReMixMatch's distribution alignment), against FixMatch drifting to one class. On by "
        "default: without it FixMatch collapsed to one class on PneumoniaMNIST with 50 labels (docs/benchmarks.md).",
    )
    loss.add_argument(
        "--fixmatch_alignment_momentum", type=float, default=0.99, help="Moving-average momentum of the alignment."
    )

    train = parser.add_argument_group("training")
    train.add_argument("--output_dir", type=str, default="joint-diffusion-model")
    train.add_argument("--overwrite_output_dir", action="store_true")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--train_batch_size", type=int, default=64)
    train.add_argument("--eval_batch_size", type=int, default=256)
    train.add_argument("--num_epochs", type=int, default=None)
    train.add_argument("--max_train_steps", type=int, default=None, help="Overrides --num_epochs (default 1500).")
    train.add_argument("--gradient_accumulation_steps", type=int, default=1)
    train.add_argument("--learning_rate", type=float, default=1e-3)
    train.add_argument("--lr_scheduler", type=str, default="cosine")
    train.add_argument("--lr_warmup_steps", type=int, default=100)
    train.add_argument("--adam_beta1", type=float, default=0.9)
    train.add_argument("--adam_beta2", type=float, default=0.999)
    train.add_argument("--adam_weight_decay", type=float, default=1e-4)
    train.add_argument("--adam_epsilon", type=float, default=1e-8)
    train.add_argument("--max_grad_norm", type=float, default=1.0)
    train.add_argument("--use_ema", action=argparse.BooleanOptionalAction, default=True)
    train.add_argument("--ema_max_decay", type=float, default=0.999)
    train.add_argument("--ema_inv_gamma", type=float, default=1.0)
    train.add_argument("--ema_power", type=float, default=3 / 4)
    train.add_argument("--mixed_precision", type=str, default=None, choices=["no", "fp16", "bf16"])
    train.add_argument(
        "--on_nonfinite_loss",
        choices=["stop", "skip"],
        default="stop",
        help="On a NaN / inf loss: stop (the last good checkpoint is kept) or skip the step (at most 10 in a row).",
    )

    ckpt = parser.add_argument_group("checkpoints, validation, logging, Hub")
    ckpt.add_argument("--checkpointing_steps", type=int, default=500)
    ckpt.add_argument("--checkpoints_total_limit", type=int, default=2)
    ckpt.add_argument("--resume_from_checkpoint", type=str, default=None, help="A checkpoint folder or 'latest'.")
    ckpt.add_argument("--validation_steps", type=int, default=1000)
    ckpt.add_argument(
        "--select_best_checkpoint",
        choices=BEST_CHECKPOINT_METRICS,
        default=None,
        help="Score the classifier on the validation split every --validation_steps and at the end, keep the best "
        "step's weights in <output_dir>/best-checkpoint, and save that step as the pipeline (its generator is then "
        "that step's too). balanced_accuracy: ties go to the lower NLL. Default: the last step.",
    )
    ckpt.add_argument("--num_validation_samples_per_class", type=int, default=8)
    ckpt.add_argument("--validation_inference_steps", type=int, default=250, help="DDPM steps for sample grids.")
    ckpt.add_argument(
        "--guidance_scale", type=float, default=None, help="Guidance for sample grids (default: pipeline's)."
    )
    ckpt.add_argument(
        "--evaluate_generation",
        action="store_true",
        help="Also measure class-guided samples (Frechet distance, KID, precision / recall, conditional accuracy) "
        "on an independent reference network trained on the real training images; results go to "
        "eval_results.json and the model card.",
    )
    ckpt.add_argument("--num_evaluation_samples", type=int, default=500, help="Samples for --evaluate_generation.")
    ckpt.add_argument("--report_to", type=str, default="tensorboard", help="tensorboard, wandb, all or none.")
    ckpt.add_argument("--logging_dir", type=str, default="logs")
    ckpt.add_argument("--push_to_hub", action="store_true")
    ckpt.add_argument("--hub_model_id", type=str, default=None)
    ckpt.add_argument(
        "--hub_token",
        type=str,
        default=None,
        help="Default: HF_TOKEN or the cached login, which are safer: a token on the command line shows in the "
        "process list and in `accelerate launch`'s error message when the run fails. Never logged or saved.",
    )
    ckpt.add_argument("--hub_private_repo", action="store_true")
    args = parser.parse_args(argv)

    if args.max_train_steps is None and args.num_epochs is None:
        args.max_train_steps = 1500
    if args.diffusion_loss_weight < 0:
        parser.error(f"--diffusion_loss_weight must be >= 0, got {args.diffusion_loss_weight}.")
    if args.diffusion_loss_weight == 0 and args.fixmatch:
        parser.error("--fixmatch needs unlabeled images, which --diffusion_loss_weight 0 drops.")
    if args.fixmatch_distribution_alignment and args.fixmatch is False:
        parser.error("--fixmatch_distribution_alignment aligns FixMatch pseudo-labels: drop --no-fixmatch.")
    if not 0.0 <= args.validation_fraction < 1.0:
        parser.error(f"--validation_fraction must be in [0, 1), got {args.validation_fraction}.")
    for name in ("noisy_classifier_weight", "noisy_pseudo_label_weight"):
        if (getattr(args, name) or 0) < 0:
            parser.error(f"--{name} must be >= 0, got {getattr(args, name)}.")
    if not 0.0 <= args.labeled_batch_fraction <= 1.0:
        parser.error(f"--labeled_batch_fraction must be in [0, 1], got {args.labeled_batch_fraction}.")
    if args.select_best_checkpoint and (
        args.validation_steps < 1 or (args.max_train_steps and args.validation_steps >= args.max_train_steps)
    ):
        parser.error(
            "--select_best_checkpoint compares the steps scored every --validation_steps: set it to at least 1 and "
            f"below --max_train_steps {args.max_train_steps} (got {args.validation_steps})."
        )
    if args.push_to_hub and not args.hub_model_id:
        args.hub_model_id = Path(args.output_dir).name
    return args


def pick_resolution(image_size, requested, levels):
    factor = 2 ** (levels - 1)
    size = requested or max(image_size)
    return size if size % factor == 0 else factor * math.ceil(size / factor)


MIN_FREE_BYTES = 100 * 2**20


def check_output_dir(args):
    """Fail before any training when the output folder cannot be created or written, or has too little space."""
    out = Path(args.output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        # os.access says yes to root even on a read-only mount: try a real write.
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise PermissionError(
            f"--output_dir {out} cannot be created or written ({type(error).__name__}: {error}): choose another one."
        ) from error
    if not os.access(out, os.W_OK):
        raise PermissionError(f"--output_dir {out} is not writable: choose another folder.")
    free = shutil.disk_usage(out).free
    if free < MIN_FREE_BYTES:
        raise OSError(
            f"Only {free / 2**20:.1f} MiB free in {out}, expected at least {MIN_FREE_BYTES // 2**20} MiB for "
            "checkpoints and the model: free some space or choose another --output_dir."
        )
    has_model = (out / "model_index.json").exists()
    if has_model and not args.overwrite_output_dir and args.resume_from_checkpoint is None:
        raise FileExistsError(
            f"{out} already holds a trained pipeline. Pass --overwrite_output_dir to replace it, "
            "--resume_from_checkpoint latest to continue, or another --output_dir."
        )


def main(args):
    logging_dir = os.path.join(args.output_dir, args.logging_dir)
    report_to = None if args.report_to == "none" else args.report_to
    if report_to == "tensorboard" and not is_tensorboard_available():
        warnings.warn("tensorboard is not installed (pip install tensorboard): no metric logs.", stacklevel=1)
        report_to = None
    # Several processes on a machine without GPUs (`accelerate launch --multi_gpu`, torchrun): train on the CPUs with
    # gloo, rather than as independent single-process runs that would overwrite each other's output.
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    accelerator = Accelerator(
        cpu=world_size > 1 and not torch.cuda.is_available(),
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=report_to,
        project_config=ProjectConfiguration(project_dir=args.output_dir, logging_dir=logging_dir),
        # the classifier-only baseline leaves the decoder out of the graph, which DDP must be told
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=args.diffusion_loss_weight == 0)],
    )
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    logger.info(accelerator.state, main_process_only=False)
    if world_size > 1 and accelerator.num_processes == 1:
        raise RuntimeError(
            f"Launched as {world_size} processes but Accelerate sees {accelerator.num_processes}: each would train "
            "alone and overwrite the others' output. Check the launch command and `accelerate config`."
        )
    check_output_dir(args)  # on every process: an error on the main one alone would leave the others waiting
    if accelerator.is_main_process:
        remove_incomplete_checkpoints(args.output_dir)  # what a kill while writing a checkpoint left behind
    accelerator.wait_for_everyone()
    set_seed(args.seed)

    # ---------------------------------------------------------------- data
    dataset = load_joint_dataset_from_args(args)  # reads every image first: bad files stop the run here
    normalization = intensity_normalization_from_args(args)
    train_dataset, validation_dataset = split_validation(dataset, args)
    if args.select_best_checkpoint and validation_dataset is None:
        raise ValueError(
            "--select_best_checkpoint scores steps on the validation split, and there is none: drop "
            "--validation_fraction 0 or pass --validation_split."
        )
    if args.num_labeled is not None or args.labeled_per_class is not None or args.labeled_fraction is not None:
        train_dataset = mask_labels(
            train_dataset,
            num_labeled=args.num_labeled,
            labeled_per_class=args.labeled_per_class,
            labeled_fraction=args.labeled_fraction,
            seed=args.seed,
        )
    labeled = is_labeled(train_dataset["label"])
    num_labeled = int(labeled.sum())
    if args.diffusion_loss_weight == 0:
        # Without the denoising loss unlabeled images carry no signal: train on the labeled ones alone.
        train_dataset = train_dataset.select(np.flatnonzero(labeled))
        labeled = labeled[labeled]
    logger.info(f"Data: {dataset.source}; {len(train_dataset)} training images, {num_labeled} labeled.")

    # ---------------------------------------------------------------- model
    if args.pretrained_unet:
        unet = JointUNet2DModel.from_unet(
            args.pretrained_unet,
            num_classes=dataset.num_classes,
            classifier_hidden_dims=tuple(args.classifier_hidden_dims),
            classifier_dropout=args.classifier_dropout,
            problem_type=dataset.problem_type,
            label_names=dataset.label_names,
        )
        resolution = unet.config.sample_size
    else:
        levels = len(args.block_out_channels) if args.block_out_channels else None
        resolution = pick_resolution(dataset.image_size, args.resolution, levels or 2)
        if levels is None:
            levels = len(unet_kwargs(resolution, dataset.num_channels)["block_out_channels"])
            resolution = pick_resolution(dataset.image_size, args.resolution, levels)
        unet = JointUNet2DModel(
            **unet_kwargs(
                resolution,
                dataset.num_channels,
                block_out_channels=args.block_out_channels,
                layers_per_block=args.layers_per_block,
                norm_num_groups=args.norm_num_groups,
                attention_levels=args.attention_levels,
            ),
            num_classes=dataset.num_classes,
            classifier_hidden_dims=tuple(args.classifier_hidden_dims),
            classifier_dropout=args.classifier_dropout,
            problem_type=dataset.problem_type,
            label_names=dataset.label_names,
        )
    if unet.config.num_classes != dataset.num_classes:
        raise ValueError(f"The model has {unet.config.num_classes} classes but the data has {dataset.num_classes}.")
    # Saved with the model: its classifier of x_t is then meaningful for guidance_method="noisy".
    noise_aware = args.noisy_classifier_weight > 0 and args.classifier_loss_weight > 0
    unet.register_to_config(noise_aware_classifier=noise_aware or unet.config.get("noise_aware_classifier", False))
    if unet.config.in_channels != dataset.num_channels:
        raise ValueError(
            f"The model expects {unet.config.in_channels}-channel images but the data has {dataset.num_channels}-"
            "channel images: start from a UNet with matching in_channels, or convert the images."
        )
    noise_scheduler = DDPMScheduler(num_train_timesteps=args.ddpm_num_steps, beta_schedule=args.ddpm_beta_schedule)
    ema_model = None
    if args.use_ema:
        ema_model = EMAModel(
            unet.parameters(),
            decay=args.ema_max_decay,
            use_ema_warmup=True,
            inv_gamma=args.ema_inv_gamma,
            power=args.ema_power,
            model_cls=JointUNet2DModel,
            model_config=unet.config,
        )

    def save_ema_hook(models, weights, output_dir):
        if accelerator.is_main_process and ema_model is not None:
            ema_model.save_pretrained(os.path.join(output_dir, "unet_ema"))

    def load_ema_hook(models, input_dir):
        if ema_model is not None:
            loaded = EMAModel.from_pretrained(os.path.join(input_dir, "unet_ema"), JointUNet2DModel)
            ema_model.load_state_dict(loaded.state_dict())
            ema_model.to(accelerator.device)

    accelerator.register_save_state_pre_hook(save_ema_hook)
    accelerator.register_load_state_pre_hook(load_ema_hook)

    resolve_pseudo_label_defaults(args, dataset, some_unlabeled=num_labeled < len(train_dataset))
    alignment = None
    if args.fixmatch_distribution_alignment:
        label_counts = np.bincount(np.asarray(train_dataset["label"])[labeled], minlength=dataset.num_classes)
        alignment = DistributionAlignment(torch.tensor(label_counts), momentum=args.fixmatch_alignment_momentum)
        logger.info(f"FixMatch distribution alignment towards the labeled class frequencies {label_counts.tolist()}.")

        def save_alignment_hook(models, weights, output_dir):
            if accelerator.is_main_process:
                save_file(alignment.state_dict(), os.path.join(output_dir, ALIGNMENT_FILE))

        def load_alignment_hook(models, input_dir):
            alignment.load_state_dict(load_file(os.path.join(input_dir, ALIGNMENT_FILE)))

        accelerator.register_save_state_pre_hook(save_alignment_hook)
        accelerator.register_load_state_pre_hook(load_alignment_hook)

    class_weights = None
    if args.class_weighting == "inverse_frequency":
        label_tensor = torch.as_tensor(np.asarray(train_dataset["label"])[labeled])
        class_weights = inverse_frequency_weights(label_tensor, dataset.num_classes)
        logger.info(f"Class weights of the classification loss (inverse frequency): {class_weights.tolist()}")
    augmentation = JointAugmentation(
        dataset.num_channels, args.classifier_augmentation, random_flip=args.random_flip, fixmatch=args.fixmatch
    )

    # ---------------------------------------------------------------- loader, optimizer, schedule
    # Flips and augmented views are drawn in the loop, after each step is seeded (`augmentation`), for exact resumes.
    preprocessor = ImagePreprocessor(resolution, dataset.num_channels, normalization=normalization)
    collator = JointCollator(preprocessor, dataset.problem_type, dataset.num_classes)
    batches_per_epoch = math.ceil(len(train_dataset) / args.train_batch_size)
    some_unlabeled = num_labeled < len(train_dataset)
    sampler = MixedBatchSampler(
        labeled,
        batch_size=args.train_batch_size,
        labeled_batch_fraction=args.labeled_batch_fraction if some_unlabeled and num_labeled else 0.0,
        seed=args.seed,
        num_batches=batches_per_epoch,
    )
    train_dataloader = torch.utils.data.DataLoader(
        train_dataset, batch_sampler=sampler, collate_fn=collator, num_workers=args.dataloader_num_workers
    )
    updates_per_epoch = math.ceil(batches_per_epoch / accelerator.num_processes / args.gradient_accumulation_steps)
    if args.max_train_steps is None:
        args.max_train_steps = args.num_epochs * updates_per_epoch
    num_epochs = math.ceil(args.max_train_steps / updates_per_epoch)

    data_weights = sampler.data_weights() if args.diffusion_data_weighting else None
    if data_weights is not None:
        logger.info(f"Denoising weights: {data_weights[0]:.4g} per labeled image, {data_weights[1]:.4g} per other.")

    objective = JointDiffusionObjective(unet)
    optimizer = torch.optim.AdamW(
        objective.parameters(),
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        weight_decay=args.adam_weight_decay,
        eps=args.adam_epsilon,
    )
    lr_scheduler = get_scheduler(
        args.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=args.max_train_steps * accelerator.num_processes,
    )
    objective, optimizer, train_dataloader, lr_scheduler = accelerator.prepare(
        objective, optimizer, train_dataloader, lr_scheduler
    )
    if ema_model is not None:
        ema_model.to(accelerator.device)
    if accelerator.is_main_process:
        accelerator.init_trackers("train_joint", config={k: str(v) for k, v in vars(args).items() if k != "hub_token"})

    # ---------------------------------------------------------------- resume
    global_step, first_epoch, resume_batches = 0, 0, 0
    if args.resume_from_checkpoint:
        path = resolve_checkpoint(args.output_dir, args.resume_from_checkpoint)
        if path is None:
            logger.info("No checkpoint to resume from: starting a new run.")
        else:
            logger.info(f"Resuming from {path}")
            check_checkpoint_fits(path, accelerator.unwrap_model(objective))
            accelerator.load_state(str(path))
            global_step = int(path.name.split("-")[1])
            first_epoch = global_step // updates_per_epoch
            resume_batches = (global_step % updates_per_epoch) * args.gradient_accumulation_steps

    def unwrapped_unet() -> JointUNet2DModel:
        return accelerator.unwrap_model(objective).unet

    def save_checkpoint(step):
        tmp_dir = Path(args.output_dir) / f"checkpoint-{step}.tmp"
        if accelerator.is_main_process:
            temporary_checkpoint_dir(args.output_dir, step)  # clears what a crash may have left there
        accelerator.wait_for_everyone()
        try:
            accelerator.save_state(str(tmp_dir))
        except OSError as error:  # disk full, quota, folder removed: the complete checkpoints are untouched
            shutil.rmtree(tmp_dir, ignore_errors=True)
            last = resolve_checkpoint(args.output_dir, "latest")
            raise OSError(
                f"Could not write the checkpoint of step {step} to {tmp_dir} ({error}). "
                + (f"The last complete checkpoint, {last}, is intact: " if last else "No checkpoint was written: ")
                + "free some space (or fix the folder), then rerun with --resume_from_checkpoint latest."
            ) from error
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            final = finalize_checkpoint(tmp_dir, args.checkpoints_total_limit)
            logger.info(f"Saved {final}")
        accelerator.wait_for_everyone()

    best = None
    if args.select_best_checkpoint:
        best = BestCheckpoint(Path(args.output_dir) / "best-checkpoint", args.select_best_checkpoint)
        validation_images, validation_labels = dataset_to_tensors(validation_dataset, preprocessor)

    @contextlib.contextmanager
    def ema_weights():
        """The UNet holding its EMA weights (if EMA is on) inside the block, its trained weights again after it."""
        unet = unwrapped_unet()
        if ema_model is None:
            yield unet
            return
        ema_model.store(unet.parameters())
        ema_model.copy_to(unet.parameters())
        try:
            yield unet
        finally:
            ema_model.restore(unet.parameters())

    def keep_if_best(step, unet):
        """Score the classifier on the validation split; keep its weights if they are the best so far."""
        logits = predict_logits(unet, validation_images)
        scores = metrics_from_logits(unet, logits, validation_labels)
        scores["nll"] = negative_log_likelihood(logits, validation_labels, unet.is_multi_label)
        best.update(step, unet, scores)

    def validate(step, unet):
        """Metrics on the evaluation split and a sample grid of `unet` as it is (see `ema_weights`)."""
        results = {}
        if dataset.eval is not None:
            results = evaluate_classifier(
                unet, dataset.eval, ImagePreprocessor(resolution, dataset.num_channels, normalization=normalization)
            )
        grid = (
            sample_grid(unet, noise_scheduler, args, dataset.num_classes) if args.diffusion_loss_weight > 0 else None
        )
        scalars = {f"eval/{k}": v for k, v in results.items() if isinstance(v, float)}
        accelerator.log(scalars, step=step)
        logger.info(f"step {step}: " + ", ".join(f"{k}={v:.4f}" for k, v in scalars.items()))
        return results, grid

    # ---------------------------------------------------------------- train
    logger.info(
        f"Training {args.max_train_steps} steps ({num_epochs} epochs of {updates_per_epoch} updates), batch "
        f"{args.train_batch_size} x {accelerator.num_processes} processes x {args.gradient_accumulation_steps} "
        f"accumulation, resolution {resolution}, {sum(p.numel() for p in unet.parameters()) / 1e6:.2f}M parameters"
    )
    progress_bar = tqdm(
        total=args.max_train_steps, initial=global_step, disable=not accelerator.is_local_main_process, desc="Steps"
    )
    done = global_step >= args.max_train_steps
    micro_step = global_step * args.gradient_accumulation_steps
    consecutive_skips = 0
    for epoch in range(first_epoch, num_epochs):
        if done:
            break
        sampler.set_epoch(epoch)
        objective.train()
        loader = train_dataloader
        if epoch == first_epoch and resume_batches:
            loader = accelerator.skip_first_batches(train_dataloader, resume_batches)
        for batch in loader:
            # A batch's flips, FixMatch views, noise, timesteps and dropout depend only on (seed, batch index,
            # process), so a resumed run draws exactly what the uninterrupted run would have drawn.
            torch.manual_seed(batch_seed(args.seed, micro_step, accelerator.process_index))
            micro_step += 1
            batch.update(augmentation(batch["pixel_values"]))
            with accelerator.accumulate(objective):
                out = joint_diffusion_loss(
                    objective,
                    noise_scheduler,
                    batch["pixel_values"],
                    batch["labels"],
                    classifier_loss_weight=args.classifier_loss_weight,
                    classifier_images=batch["classifier_pixel_values"],
                    noisy_classifier_weight=args.noisy_classifier_weight,
                    class_weights=class_weights,
                    noisy_pseudo_label_weight=args.noisy_pseudo_label_weight,
                    snr_gamma=args.snr_gamma or None,
                    weak_images=batch.get("weak_pixel_values"),
                    strong_images=batch.get("strong_pixel_values"),
                    fixmatch_threshold=args.fixmatch_threshold,
                    fixmatch_weight=args.fixmatch_weight,
                    diffusion_loss_weight=args.diffusion_loss_weight,
                    distribution_alignment=alignment,
                    diffusion_weights=(
                        None if data_weights is None else torch.where(labeled_mask(batch["labels"]), *data_weights)
                    ),
                )
                terms = torch.stack(
                    [
                        out.loss.detach(),
                        out.loss_diffusion,
                        out.loss_classifier,
                        out.loss_fixmatch,
                        out.loss_noisy_classifier,
                        out.loss_noisy_pseudo,
                    ]
                )
                # (processes, terms): every process takes the same path
                terms = accelerator.gather(terms.float()[None])
                if not bool(torch.isfinite(terms).all()):
                    message = nonfinite_message(global_step + 1, terms, args.output_dir)
                    if args.on_nonfinite_loss == "stop":
                        raise FloatingPointError(
                            message + " Lower --learning_rate, or pass --on_nonfinite_loss skip to skip such steps."
                        )
                    consecutive_skips += 1
                    if consecutive_skips >= MAX_CONSECUTIVE_SKIPS:
                        raise FloatingPointError(
                            f"{message} {consecutive_skips} steps in a row had a non-finite loss: training has "
                            "diverged. Resume from the last good checkpoint with a lower --learning_rate."
                        )
                    logger.warning(message + " Skipping the step (--on_nonfinite_loss skip).")
                    optimizer.zero_grad()
                    continue
                consecutive_skips = 0
                accelerator.backward(out.loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(objective.parameters(), args.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad()

            if accelerator.sync_gradients:
                if ema_model is not None:
                    ema_model.step(unwrapped_unet().parameters())
                global_step += 1
                progress_bar.update(1)
                logs = {**out.logs(), "lr": lr_scheduler.get_last_lr()[0], "step": global_step}
                if ema_model is not None:
                    logs["ema_decay"] = ema_model.cur_decay_value
                progress_bar.set_postfix(
                    loss=f"{logs['loss']:.4f}",
                    diff=f"{logs['loss_diffusion']:.4f}",
                    cls=f"{logs['loss_classifier']:.3f}",
                )
                accelerator.log(logs, step=global_step)
                if args.checkpointing_steps and global_step % args.checkpointing_steps == 0:
                    save_checkpoint(global_step)
                if (
                    accelerator.is_main_process
                    and args.validation_steps
                    and global_step % args.validation_steps == 0
                    and global_step < args.max_train_steps
                ):
                    with ema_weights() as unet:
                        if best is not None:
                            keep_if_best(global_step, unet)
                        _, grid = validate(global_step, unet)
                    if grid is not None:
                        grid.save(os.path.join(args.output_dir, f"samples-{global_step:06d}.png"))
                if global_step >= args.max_train_steps:
                    done = True
                    break
    progress_bar.close()

    # ---------------------------------------------------------------- save, evaluate, card, push
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        unet = unwrapped_unet()
        if ema_model is not None:
            ema_model.copy_to(unet.parameters())  # the saved, calibrated and evaluated model is the EMA one
        if best is not None:  # score the last step too, then save the best one
            keep_if_best(global_step, unet)
            step = best.load_into(unet)
            logger.info(f"Saving step {step}, the best on the validation split ({args.select_best_checkpoint}).")
        calibration = calibrate(unet, validation_dataset, preprocessor, args)
        results, grid = validate(global_step, unet)
        results.update(calibration)
        results.update(split_shift(validation_dataset, dataset.eval, preprocessor, unet.is_multi_label))
        if best is not None:
            results["best_checkpoint"] = best.best
        pipeline = JointDiffusionPipeline(unet=unet, scheduler=noise_scheduler, **normalization.to_config())
        pipeline.save_pretrained(args.output_dir)
        if args.evaluate_generation and dataset.eval is not None and args.diffusion_loss_weight > 0:
            results["generation"] = generation_metrics(unet, noise_scheduler, dataset, resolution, args)
        elif args.evaluate_generation:
            logger.warning("--evaluate_generation needs an evaluation split and a diffusion loss: skipped.")
        if grid is not None:
            grid.save(os.path.join(args.output_dir, "samples.png"))
        with open(os.path.join(args.output_dir, "eval_results.json"), "w") as f:
            json.dump({"step": global_step, "eval_split": dataset.eval is not None, **results}, f, indent=2)
        card = build_model_card(
            model_name=Path(args.output_dir).name,
            label_names=dataset.label_names,
            dataset_description=dataset.source,
            num_labeled=num_labeled,
            num_train_examples=len(train_dataset),
            resolution=resolution,
            channels=dataset.num_channels,
            metrics=results,
            training_settings=training_settings(args, resolution, global_step),
            dataset_id=args.dataset_name if args.dataset_name and not os.path.isdir(args.dataset_name) else None,
            repo_id=args.hub_model_id,
            sample_grid_file="samples.png" if grid is not None else None,
            medical=args.npz_path is not None,
            eval_split_name=dataset.eval_split_name,
            generation_metrics=results.get("generation"),
        )
        save_model_card(card, args.output_dir)
        saved = "the pipeline, " + ("samples.png, " if grid is not None else "") + "eval_results.json and README.md"
        logger.info(f"Saved {saved} to {args.output_dir}")
        if args.push_to_hub:
            token = args.hub_token or os.environ.get("HF_TOKEN")
            try:
                url = push_output_to_hub(args.output_dir, args.hub_model_id, token, private=args.hub_private_repo)
                logger.info(f"Pushed to {url}")
            except HubUploadError as error:
                accelerator.end_training()
                raise SystemExit(f"error: {error}") from error
    accelerator.end_training()


def resolve_pseudo_label_defaults(args, dataset, some_unlabeled):
    """
    FixMatch and noisy pseudo-labels default to PSEUDO_LABEL_DEFAULTS where they apply (single-label data with
    unlabeled images and a denoising pass) and to off elsewhere; an explicit choice that cannot apply is refused
    before any training time is spent.
    """
    multi_label = dataset.problem_type != SINGLE_LABEL
    for flag, value in (
        ("--fixmatch", args.fixmatch),
        ("--noisy_pseudo_label_weight", args.noisy_pseudo_label_weight),
    ):
        if multi_label and value:
            raise ValueError(
                f"{flag} pseudo-labels one class per image, but this dataset is multi-label ({dataset.num_classes} "
                f"independent 0/1 labels per image): train without {flag}."
            )
    applies = not multi_label and some_unlabeled and args.diffusion_loss_weight > 0
    if args.fixmatch is None:
        args.fixmatch = applies and PSEUDO_LABEL_DEFAULTS["fixmatch"]
    if args.noisy_pseudo_label_weight is None:
        args.noisy_pseudo_label_weight = PSEUDO_LABEL_DEFAULTS["noisy_pseudo_label_weight"] if applies else 0.0
    if args.fixmatch_distribution_alignment is None:  # on by default with FixMatch
        args.fixmatch_distribution_alignment = args.fixmatch
    if args.fixmatch_distribution_alignment and not args.fixmatch:
        raise ValueError("--fixmatch_distribution_alignment aligns FixMatch pseudo-labels, which are off here.")
    logger.info(
        f"Pseudo-labels: FixMatch {'on' if args.fixmatch else 'off'}, noisy pseudo-label weight "
        f"{args.noisy_pseudo_label_weight:g}."
    )


def split_validation(dataset, args):
    """(training split, validation split or None): --validation_split of the source, else a seeded hold-out."""
    if args.validation_split is not None:
        source = load_joint_dataset_from_args(
            argparse.Namespace(**{**vars(args), "eval_split": args.validation_split})
        )
        return dataset.train, source.eval
    train, validation = holdout_split(dataset.train, args.validation_fraction, args.seed)
    if validation is not None:
        logger.info(
            f"Validation (calibration) split: {holdout_name(args.validation_fraction)}, {len(validation)} images."
        )
    return train, validation


def calibrate(unet, validation_dataset, preprocessor, args):
    """Fit and decide the temperature on the validation split (--calibrate); its metrics there, for the card."""
    if validation_dataset is None:
        return {}
    images, labels = dataset_to_tensors(validation_dataset, preprocessor)
    logits = predict_logits(unet, images)
    results = {}
    if args.calibrate:  # applied only when it beats noise on held-out folds (docs/training.md#calibration)
        calibration = calibrate_temperature(logits, labels, unet.is_multi_label, seed=args.seed)
        calibration.register_to(unet)
        results["classifier_temperature"] = calibration.temperature
        results["calibration"] = calibration.to_dict()
        logger.info(calibration.describe())
    results["validation"] = metrics_from_logits(unet, logits, labels)
    return results


def split_shift(validation_dataset, eval_dataset, preprocessor, multi_label):
    """`split_shift_auc` of the evaluation split against the validation split, with a warning when they differ."""
    if validation_dataset is None or eval_dataset is None:
        return {}
    # a seeded sample of at most SPLIT_SHIFT_MAX_IMAGES a side keeps the check to seconds on large splits
    validation_dataset, eval_dataset = (
        split.shuffle(seed=0).select(range(SPLIT_SHIFT_MAX_IMAGES)) if len(split) > SPLIT_SHIFT_MAX_IMAGES else split
        for split in (validation_dataset, eval_dataset)
    )
    validation_images, validation_labels = dataset_to_tensors(validation_dataset, preprocessor)
    eval_images, eval_labels = dataset_to_tensors(eval_dataset, preprocessor)
    if min(len(validation_images), len(eval_images)) < 5:  # too few for its 5 folds
        return {}
    labels = {} if multi_label else {"labels_a": validation_labels, "labels_b": eval_labels}
    shift = split_shift_auc(validation_images, eval_images, seed=0, **labels)
    # with 100 images a side, splits drawn alike stay near 0.5 (0.51 +/- 0.02 on PneumoniaMNIST)
    if shift["roc_auc"] >= SPLIT_SHIFT_WARNING_AUC and min(shift["num_images"]) >= 100:
        logger.warning(
            f"The evaluation split is told apart from the validation split with ROC AUC {shift['roc_auc']:.2f} "
            "(0.5: alike): the temperature, and whatever was chosen on the validation split, may not carry over to "
            "it. See docs/evaluation.md#split-shift."
        )
    return {"split_shift": shift}


def generation_metrics(unet, noise_scheduler, dataset, resolution, args):
    """--evaluate_generation: judge DDIM (50 steps, eta 1) class-guided samples with a reference network, saved too."""
    normalization = intensity_normalization_from_args(args)
    preprocessor = ImagePreprocessor(resolution, dataset.num_channels, normalization=normalization)
    train_images, train_labels = dataset_to_tensors(dataset.train, preprocessor)  # all real labels of the split
    eval_images, eval_labels = dataset_to_tensors(dataset.eval, preprocessor)
    reference = train_reference_classifier(
        train_images, train_labels, dataset.num_classes, dataset.problem_type, dataset.label_names, seed=args.seed
    )
    reference.save_pretrained(os.path.join(args.output_dir, "reference_classifier"))
    pipeline = JointDiffusionPipeline(unet=unet.eval(), scheduler=DDIMScheduler.from_config(noise_scheduler.config))
    pipeline.set_progress_bar_config(disable=True)
    return evaluate_generation(
        pipeline,
        eval_images,
        reference,
        num_generated=args.num_evaluation_samples,
        num_inference_steps=min(50, args.ddpm_num_steps),
        guidance_scale=args.guidance_scale,
        real_labels=eval_labels,
        seed=args.seed,
        eta=1.0,  # deterministic 50-step DDIM left grainy backgrounds on 28 px MNIST models (docs/benchmarks.md)
    )


@torch.no_grad()
def sample_grid(unet, noise_scheduler, args, num_classes):
    """One row of class-guided samples per class, labelled with its name (DDPM with the training schedule, seeded)."""
    pipeline = JointDiffusionPipeline(unet=unet, scheduler=DDPMScheduler.from_config(noise_scheduler.config))
    pipeline.set_progress_bar_config(disable=True)
    per_class = args.num_validation_samples_per_class
    class_labels = [c for c in range(num_classes) for _ in range(per_class)] if not unet.is_multi_label else None
    kwargs = {} if args.guidance_scale is None else {"guidance_scale": args.guidance_scale}
    was_training = unet.training
    unet.eval()
    images = pipeline(
        batch_size=num_classes * per_class,
        class_labels=class_labels,
        num_inference_steps=args.validation_inference_steps,
        generator=torch.Generator(device="cpu").manual_seed(args.seed),
        output_type="pil",
        **kwargs,
    ).images
    unet.train(was_training)
    # Multi-label models sample unconditionally: rows then hold no class to name.
    row_labels = None if unet.is_multi_label else [unet.id2label[c] for c in range(num_classes)]
    return labelled_image_grid(images, rows=num_classes, row_labels=row_labels)


MAX_CONSECUTIVE_SKIPS = 10  # --on_nonfinite_loss skip: more non-finite steps in a row means divergence
LOSS_TERMS = ("loss", "diffusion", "classifier", "fixmatch", "noisy_classifier", "noisy_pseudo")


def nonfinite_message(step, terms, output_dir):
    """Name the step, every loss term (per process when there are several) and the checkpoint that is kept."""
    rows = [", ".join(f"{n}={v + 0.0:.6g}" for n, v in zip(LOSS_TERMS, row)) for row in terms.cpu().tolist()]  # no -0
    where = rows[0] if len(rows) == 1 else "; ".join(f"process {i}: {row}" for i, row in enumerate(rows))
    last = resolve_checkpoint(output_dir, "latest")
    kept = f"The last good checkpoint, {last}, is kept." if last else "No checkpoint had been written yet."
    return f"Non-finite loss at step {step} ({where}). {kept}"


def batch_seed(seed, micro_step, process_index):
    return int(np.random.SeedSequence([seed, micro_step, process_index]).generate_state(1)[0])


def training_settings(args, resolution, steps):
    keys = [
        "num_labeled", "labeled_per_class", "labeled_fraction", "labeled_batch_fraction", "diffusion_data_weighting",
        "diffusion_loss_weight", "classifier_loss_weight", "classifier_augmentation", "noisy_classifier_weight",
        "noisy_pseudo_label_weight", "class_weighting", "snr_gamma", "fixmatch", "fixmatch_distribution_alignment",
        "train_batch_size", "gradient_accumulation_steps", "learning_rate", "lr_scheduler", "use_ema", "ema_max_decay",
        "ddpm_num_steps", "ddpm_beta_schedule", "mixed_precision", "seed", "select_best_checkpoint",
    ]  # fmt: skip
    normalization = intensity_normalization_from_args(args).to_config()  # as saved with the pipeline
    return {"resolution": resolution, "steps": steps, **{k: getattr(args, k) for k in keys}, **normalization}


if __name__ == "__main__":
    main(parse_args(sys.argv[1:]))
