#!/usr/bin/env python
# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Train a Joint Diffusion model (one UNet that denoises and classifies) with Accelerate.

    accelerate launch examples/train_joint.py                      # embedded demo: scikit-learn's 8x8 digits
    accelerate launch examples/train_joint.py --npz_path pneumonia.npz --num_labeled 50 --output_dir joint-pneumonia
    accelerate launch examples/train_joint.py --pretrained_vae_model_name_or_path vae-lesions128 --resolution 128 ...

With `--pretrained_vae_model_name_or_path` (an `examples/train_autoencoder.py` folder or a Hub VAE) the UNet diffuses
the frozen VAE's latents: the classifier's views are augmented in pixel space, then encoded; the saved pipeline holds
the VAE and takes and returns pixel images.

Modelled on diffusers' examples/unconditional_image_generation/train_unconditional.py: a straight `main` over
`diffusers_joint.data`, `diffusers_joint.training`, `diffusers_joint.evaluation` and `diffusers_joint.pipelines`.
"""

import argparse
import logging
import os
import sys
from pathlib import Path

import numpy as np
import torch
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from diffusers import DDPMScheduler
from tqdm.auto import tqdm

from diffusers_joint import JointDiffusionPipeline
from diffusers_joint.data import (
    ImagePreprocessor,
    JointAugmentation,
    JointCollator,
    LatentCollator,
    add_data_source_arguments,
    add_label_budget_arguments,
    add_training_image_arguments,
    intensity_normalization_from_args,
    is_labeled,
    load_joint_dataset_from_args,
    mask_labels_from_args,
    mixed_batch_dataloader,
    split_validation_from_args,
)
from diffusers_joint.evaluation import (
    calibrate_classifier,
    check_split_shift,
    dataset_to_tensors,
    evaluate_classifier,
    evaluate_generation_with_reference,
    metrics_from_logits,
    predict_logits,
    validation_scores,
    write_results_json,
)
from diffusers_joint.pipelines import class_sample_grid
from diffusers_joint.training import (
    BEST_CHECKPOINT_METRICS,
    BestCheckpoint,
    JointDiffusionObjective,
    NonFiniteLossGuard,
    add_checkpoint_arguments,
    add_joint_loss_arguments,
    add_learning_rate_arguments,
    add_logging_and_hub_arguments,
    add_model_arguments,
    add_run_arguments,
    add_vae_arguments,
    batch_seed,
    build_model_card,
    check_joint_loss_arguments,
    check_output_dir,
    create_accelerator,
    create_ema_model,
    create_joint_unet_from_args,
    create_latent_joint_unet,
    create_lr_scheduler,
    ema_weights,
    float_in,
    has_scaling_factor,
    int_at_least,
    joint_diffusion_loss,
    joint_loss_from_args,
    labeled_mask,
    load_frozen_vae,
    prepare_latent_space,
    push_run_to_hub,
    register_alignment_checkpointing,
    register_run_settings_checkpointing,
    register_vae_checkpointing,
    remove_earlier_checkpoints,
    remove_incomplete_checkpoints,
    resumable_epochs,
    resume_training_state,
    run_settings,
    save_model_card,
    save_training_checkpoint,
    scaling_subset,
    training_schedule,
    training_settings_from_args,
    updates_per_epoch,
)

logger = get_logger(__name__, log_level="INFO")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Train a Joint Diffusion model (diffusion + classification).")
    data = parser.add_argument_group("data (default: scikit-learn's 8x8 digits, embedded)")
    add_data_source_arguments(data)
    add_training_image_arguments(data)
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
    add_label_budget_arguments(labels)
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

    add_model_arguments(parser.add_argument_group("model"))
    add_vae_arguments(parser.add_argument_group("latent space (default: pixel space)"))
    add_joint_loss_arguments(parser.add_argument_group("loss"))

    train = parser.add_argument_group("training")
    add_run_arguments(train, output_dir="joint-diffusion-model", train_batch_size=64, eval_batch_size=256)
    train.add_argument("--num_epochs", type=int_at_least(1), default=None)
    train.add_argument(
        "--max_train_steps", type=int_at_least(1), default=None, help="Overrides --num_epochs (default 600)."
    )
    add_learning_rate_arguments(train, learning_rate=1e-3, lr_scheduler="cosine")
    train.add_argument("--adam_beta1", type=float, default=0.9)
    train.add_argument("--adam_beta2", type=float, default=0.999)
    train.add_argument("--adam_weight_decay", type=float, default=1e-4)
    train.add_argument("--adam_epsilon", type=float, default=1e-8)
    train.add_argument("--max_grad_norm", type=float_in(0, low_open=True), default=1.0)
    train.add_argument("--use_ema", action=argparse.BooleanOptionalAction, default=True)
    train.add_argument("--ema_max_decay", type=float_in(0, 1), default=0.999)
    train.add_argument("--ema_inv_gamma", type=float, default=1.0)
    train.add_argument("--ema_power", type=float, default=3 / 4)
    train.add_argument("--mixed_precision", type=str, default=None, choices=["no", "fp16", "bf16"])
    train.add_argument(
        "--on_nonfinite_loss",
        choices=["stop", "skip"],
        default="stop",
        help="On a NaN / inf loss: stop (the last good checkpoint is kept) or skip the update (at most 10 in a row; "
        "the step still counts).",
    )

    ckpt = parser.add_argument_group("checkpoints, validation, logging, Hub")
    add_checkpoint_arguments(ckpt)
    ckpt.add_argument(
        "--validation_steps",
        type=int_at_least(0, ", or 0 for none"),
        default=1000,
        help="Score the classifier on the evaluation split and draw a sample grid every this many optimizer steps "
        "(both also come at the end); 0: only at the end.",
    )
    ckpt.add_argument(
        "--select_best_checkpoint",
        choices=BEST_CHECKPOINT_METRICS,
        default=None,
        help="Score the classifier on the validation split every --validation_steps and at the end, keep the best "
        "step's weights in <output_dir>/best-checkpoint, and save that step as the pipeline (its generator is then "
        "that step's too). balanced_accuracy: ties go to the lower NLL. Default: the last step.",
    )
    ckpt.add_argument(
        "--num_validation_samples_per_class", type=int_at_least(1), default=8, help="Sample grid images per class."
    )
    ckpt.add_argument(
        "--validation_inference_steps",
        type=int_at_least(1),
        default=100,
        help="DDPM steps for sample grids (strided).",
    )
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
    ckpt.add_argument(
        "--num_evaluation_samples", type=int_at_least(1), default=500, help="Samples for --evaluate_generation."
    )
    add_logging_and_hub_arguments(ckpt)
    args = parser.parse_args(argv)

    if args.max_train_steps is None and args.num_epochs is None:
        args.max_train_steps = 600
    check_joint_loss_arguments(parser, args)
    if not 0.0 <= args.validation_fraction < 1.0:
        parser.error(f"--validation_fraction must be in [0, 1), got {args.validation_fraction}.")
    if args.vae_scaling_images < 1:
        parser.error(f"--vae_scaling_images must be at least 1, got {args.vae_scaling_images}.")
    if args.cache_latents and not args.pretrained_vae_model_name_or_path:
        parser.error("--cache_latents caches a VAE's latents: pass --pretrained_vae_model_name_or_path too.")
    if not 0.0 <= args.labeled_batch_fraction <= 1.0:
        parser.error(f"--labeled_batch_fraction must be in [0, 1], got {args.labeled_batch_fraction}.")
    error = best_checkpoint_steps_error(args)  # with --num_epochs checked again once the steps are known
    if error:
        parser.error(error)
    if args.push_to_hub and not args.hub_model_id:
        args.hub_model_id = Path(args.output_dir).name
    return args


def best_checkpoint_steps_error(args) -> str | None:
    """Why --validation_steps cannot serve --select_best_checkpoint with this --max_train_steps, or None."""
    if args.select_best_checkpoint and (
        args.validation_steps < 1 or (args.max_train_steps and args.validation_steps >= args.max_train_steps)
    ):
        steps = f"--max_train_steps {args.max_train_steps}"
        if args.num_epochs is not None and args.max_train_steps is not None:
            steps = f"the {args.max_train_steps} steps of --num_epochs {args.num_epochs}"
        return (
            "--select_best_checkpoint compares the steps scored every --validation_steps: set it to at least 1 and "
            f"below {steps if args.max_train_steps else '--max_train_steps'} (got {args.validation_steps})."
        )
    return None


def main(args):
    # ---------------------------------------------------------------- setup
    accelerator = create_accelerator(
        args.output_dir,
        args.logging_dir,
        args.report_to,
        args.mixed_precision,
        args.gradient_accumulation_steps,
        find_unused_parameters=args.diffusion_loss_weight == 0,
    )
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    logger.info(accelerator.state, main_process_only=False)
    # on every process: an error on the main one alone would leave the others waiting
    check_output_dir(args.output_dir, args.overwrite_output_dir, resume=args.resume_from_checkpoint is not None)
    if accelerator.is_main_process:
        remove_incomplete_checkpoints(args.output_dir)  # what a kill while writing a checkpoint left behind
        if args.resume_from_checkpoint is None:  # a new run, with --overwrite_output_dir
            remove_earlier_checkpoints(args.output_dir)
    accelerator.wait_for_everyone()
    set_seed(args.seed)

    # ---------------------------------------------------------------- data
    dataset = load_joint_dataset_from_args(args)  # reads every image first: bad files stop the run here
    normalization = intensity_normalization_from_args(args)
    train_dataset, validation_dataset = split_validation_from_args(args, dataset)
    train_dataset = mask_labels_from_args(train_dataset, args)
    labeled = is_labeled(train_dataset["label"])
    num_labeled = int(labeled.sum())
    if args.diffusion_loss_weight == 0:  # without the denoising loss unlabeled images carry no signal
        train_dataset, labeled = train_dataset.select(np.flatnonzero(labeled)), labeled[labeled]
    some_unlabeled = num_labeled < len(train_dataset)
    logger.info(f"Data: {dataset.source}; {len(train_dataset)} training images, {num_labeled} labeled.")

    # ---------------------------------------------------------------- model
    vae = None  # latent runs: the frozen VAE, sized to the training resolution with the UNet
    if args.pretrained_vae_model_name_or_path:
        vae = load_frozen_vae(args.pretrained_vae_model_name_or_path, dataset.num_channels, args.vae_subfolder)
        unet = create_latent_joint_unet(dataset, vae, args)
        resolution = vae.config.sample_size  # of the images; the UNet's is the latents'
    else:
        unet = create_joint_unet_from_args(dataset, args)
        resolution = unet.config.sample_size
    # Saved with the model: its classifier of x_t is then meaningful for GuidanceConfig(method="noisy").
    noise_aware = args.noisy_classifier_weight > 0 and args.classifier_loss_weight > 0
    unet.register_to_config(noise_aware_classifier=noise_aware or unet.config.get("noise_aware_classifier", False))
    # Scaled latents are not confined to [-1, 1]: no clipping of the predicted sample, as in diffusers' latent scripts.
    noise_scheduler = DDPMScheduler(
        num_train_timesteps=args.ddpm_num_steps, beta_schedule=args.ddpm_beta_schedule, clip_sample=vae is None
    )
    ema_model = None
    if args.use_ema:
        warmup = dict(decay=args.ema_max_decay, inv_gamma=args.ema_inv_gamma, power=args.ema_power)
        ema_model = create_ema_model(unet, accelerator, **warmup)

    labeled_targets = torch.as_tensor(np.asarray(train_dataset["label"])[labeled])
    loss = joint_loss_from_args(args, dataset, labeled_targets, some_unlabeled)
    # the settled pseudo-label choices, as the model card records them
    args.fixmatch, args.fixmatch_distribution_alignment = loss.pseudo_labels.fixmatch, loss.alignment is not None
    args.noisy_pseudo_label_weight = loss.config.noisy_pseudo_label_weight
    if loss.alignment is not None:
        register_alignment_checkpointing(accelerator, loss.alignment)
    augmentation = JointAugmentation(
        dataset.num_channels,
        args.classifier_augmentation,
        random_flip=args.random_flip,
        fixmatch=args.fixmatch,
        latent_space=args.cache_latents,
    )

    # ---------------------------------------------------------------- loader, optimiser, schedule
    # Flips and augmented views are drawn in the loop, after each step is seeded, for exact resumes.
    preprocessor = ImagePreprocessor(resolution, dataset.num_channels, normalization=normalization)
    collator = JointCollator(preprocessor, dataset.problem_type, dataset.num_classes)
    latent = None
    if vae is not None:  # frozen, on the device in the weight dtype, never prepared or optimised
        scaling_images = None
        if not has_scaling_factor(vae):
            subset = scaling_subset(train_dataset, args.vae_scaling_images, args.seed)
            scaling_images = dataset_to_tensors(subset, preprocessor, labeled_only=False)[0]
        latent = prepare_latent_space(
            accelerator,
            vae,
            args.pretrained_vae_model_name_or_path
            + (f" (subfolder {args.vae_subfolder})" if args.vae_subfolder else ""),
            dataset.num_channels,
            scaling_images,
            batch_size=args.eval_batch_size,
        )
    register_vae_checkpointing(accelerator, latent.record if latent else None)  # a resume needs the same VAE
    if args.cache_latents:  # encoded once; the loop's views are then drawn in latent space
        train_dataset = latent.cache(train_dataset, preprocessor, args.eval_batch_size)
        collator = LatentCollator(dataset.problem_type, dataset.num_classes)
    train_dataloader = mixed_batch_dataloader(
        train_dataset,
        labeled,
        collator,
        args.train_batch_size,
        args.labeled_batch_fraction,
        args.seed,
        num_workers=args.dataloader_num_workers,
    )
    sampler, batches_per_epoch = train_dataloader.batch_sampler, len(train_dataloader)  # of every process
    if args.max_train_steps is None:
        args.max_train_steps = args.num_epochs * updates_per_epoch(accelerator, batches_per_epoch)
        error = best_checkpoint_steps_error(args)  # before any training time is spent
        if error:
            raise ValueError(error)
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
    lr_scheduler = create_lr_scheduler(
        accelerator, optimizer, args.lr_scheduler, args.lr_warmup_steps, args.max_train_steps
    )
    objective, optimizer, train_dataloader, lr_scheduler = accelerator.prepare(
        objective, optimizer, train_dataloader, lr_scheduler
    )
    unet = accelerator.unwrap_model(objective).unet
    if ema_model is not None:
        ema_model.to(accelerator.device)
    if accelerator.is_main_process:
        accelerator.init_trackers("train_joint", config={k: str(v) for k, v in vars(args).items() if k != "hub_token"})

    # ---------------------------------------------------------------- resume
    register_run_settings_checkpointing(accelerator, run_settings(args))  # a resume must train the same run
    global_step = resume_training_state(
        accelerator, accelerator.unwrap_model(objective), args.output_dir, args.resume_from_checkpoint
    )
    schedule = training_schedule(accelerator, batches_per_epoch, args.max_train_steps, global_step)
    # (images, labels), read once: scored for --select_best_checkpoint and calibrated on at the end
    validation = dataset_to_tensors(validation_dataset, preprocessor) if validation_dataset is not None else None
    if latent is not None:  # both splits encoded once
        validation = latent.encode_split(validation, args.eval_batch_size)
        if dataset.eval is not None:
            evaluation = dataset_to_tensors(dataset.eval, preprocessor)
            latent.evaluation = latent.encode_split(evaluation, args.eval_batch_size)
    best_folder = Path(args.output_dir) / "best-checkpoint"
    best = None
    if args.select_best_checkpoint:
        resumed_step = global_step if args.resume_from_checkpoint else None
        best = BestCheckpoint(best_folder, args.select_best_checkpoint, resumed_step)

    # ---------------------------------------------------------------- train
    logger.info(
        f"Training {args.max_train_steps} steps ({schedule.num_epochs} epochs of {schedule.updates_per_epoch} "
        f"updates), batch {args.train_batch_size} x {accelerator.num_processes} processes x "
        f"{args.gradient_accumulation_steps} accumulation, resolution {resolution}, "
        f"{sum(p.numel() for p in unet.parameters()) / 1e6:.2f}M parameters"
    )
    progress_bar = tqdm(
        total=args.max_train_steps, initial=global_step, disable=not accelerator.is_local_main_process, desc="Steps"
    )
    guard = NonFiniteLossGuard(args.on_nonfinite_loss, args.output_dir)
    micro_step = global_step * args.gradient_accumulation_steps
    for _, loader in resumable_epochs(accelerator, train_dataloader, schedule):
        if global_step >= args.max_train_steps:
            break
        objective.train()
        for batch in loader:
            torch.manual_seed(batch_seed(args.seed, micro_step, accelerator.process_index))
            micro_step += 1
            batch.update(augmentation(batch["pixel_values"]))
            if latent is not None and not args.cache_latents:  # augmented images, then encoded: the loss runs
                batch = latent.encode(batch)  # unchanged on latents
            with accelerator.accumulate(objective):
                out = joint_diffusion_loss(
                    objective,
                    noise_scheduler,
                    batch["pixel_values"],
                    batch["labels"],
                    loss.config_at(global_step),
                    classifier_images=batch["classifier_pixel_values"],
                    weak_images=batch.get("weak_pixel_values"),
                    strong_images=batch.get("strong_pixel_values"),
                    class_weights=loss.class_weights,
                    distribution_alignment=loss.alignment,
                    diffusion_weights=(
                        None if data_weights is None else torch.where(labeled_mask(batch["labels"]), *data_weights)
                    ),
                )
                # (processes, terms): every process takes the same path. A skipped step still counts, without an
                # update (as a mixed-precision overflow does), so steps and batches stay aligned for a resume
                skipped = guard.skip_step(global_step + 1, accelerator.gather(out.terms()[None]))
                if skipped:
                    optimizer.zero_grad()
                else:
                    accelerator.backward(out.loss)
                    if accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(objective.parameters(), args.max_grad_norm)
                    optimizer.step()
                    lr_scheduler.step()
                    optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            if ema_model is not None and not skipped:
                ema_model.step(unet.parameters())
            global_step += 1
            progress_bar.update(1)
            logs = {**out.logs(), "lr": lr_scheduler.get_last_lr()[0], "step": global_step}
            if ema_model is not None:
                logs["ema_decay"] = ema_model.cur_decay_value
            progress_bar.set_postfix(
                loss=f"{logs['loss']:.4f}", diff=f"{logs['loss_diffusion']:.4f}", cls=f"{logs['loss_classifier']:.3f}"
            )
            accelerator.log(logs, step=global_step)
            if args.checkpointing_steps and global_step % args.checkpointing_steps == 0:
                save_training_checkpoint(accelerator, args.output_dir, global_step, args.checkpoints_total_limit)
            if accelerator.is_main_process and args.validation_steps and global_step % args.validation_steps == 0:
                if global_step < args.max_train_steps:
                    with ema_weights(unet, ema_model):
                        if best is not None:
                            best.update(global_step, unet, validation_scores(unet, *validation, args.eval_batch_size))
                        _, grid = validate(
                            accelerator, global_step, unet, noise_scheduler, dataset, preprocessor, args, latent
                        )
                    if grid is not None:
                        grid.save(os.path.join(args.output_dir, f"samples-{global_step:06d}.png"))
            if global_step >= args.max_train_steps:
                break
    progress_bar.close()

    # ---------------------------------------------------------------- finish: save, evaluate, card, push
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if ema_model is not None:
            ema_model.copy_to(unet.parameters())  # the saved, calibrated and evaluated model is the EMA one
        if best is not None:  # score the last step too, then save the best one
            best.update(global_step, unet, validation_scores(unet, *validation, args.eval_batch_size))
            step = best.load_into(unet)
            logger.info(f"Saving step {step}, the best on the validation split ({args.select_best_checkpoint}).")
        splits = (train_dataset, validation_dataset, validation)
        finish(accelerator, unet, noise_scheduler, dataset, splits, preprocessor, global_step, best, args, latent)
    accelerator.end_training()


def validate(accelerator, step, unet, noise_scheduler, dataset, preprocessor, args, latent=None):
    """
    Metrics on the evaluation split and a sample grid of `unet` as it is (see `ema_weights`); a latent run passes its
    `LatentSpace`: scored on the evaluation latents it holds, its grid decoded.
    """
    if latent is not None and latent.evaluation is not None:
        logits = predict_logits(unet, latent.evaluation[0], args.eval_batch_size)
        results = metrics_from_logits(unet, logits, latent.evaluation[1])
    else:
        results = {}
        if dataset.eval is not None:
            results = evaluate_classifier(unet, dataset.eval, preprocessor, args.eval_batch_size)
    grid = None
    if args.diffusion_loss_weight > 0:
        grid_settings = dict(num_inference_steps=args.validation_inference_steps, guidance_scale=args.guidance_scale)
        grid_settings.update(latent.pipeline_components() if latent else {})
        grid = class_sample_grid(
            unet, noise_scheduler, args.num_validation_samples_per_class, seed=args.seed, **grid_settings
        )
    scalars = {f"eval/{k}": v for k, v in results.items() if isinstance(v, float)}
    accelerator.log(scalars, step=step)
    logger.info(f"step {step}: " + ", ".join(f"{k}={v:.4f}" for k, v in scalars.items()))
    return results, grid


def finish(accelerator, unet, noise_scheduler, dataset, splits, preprocessor, step, best, args, latent=None):
    """Calibrate, evaluate and save the pipeline, its results, sample grid and model card; push when asked."""
    train_dataset, validation_dataset, validation = splits
    components = {}  # a latent pipeline's VAE, saved in full precision
    if latent is not None:
        if latent.vae.dtype != torch.float32:
            latent.vae.to(dtype=torch.float32)
        components = latent.pipeline_components()
    calibration = {}
    if validation is not None:
        calibration = calibrate_classifier(
            unet, *validation, fit=args.calibrate, seed=args.seed, batch_size=args.eval_batch_size
        )
    results, grid = validate(accelerator, step, unet, noise_scheduler, dataset, preprocessor, args, latent)
    results.update(calibration)
    results.update(check_split_shift(validation_dataset, dataset.eval, preprocessor, unet.is_multi_label))
    if best is not None:
        results["best_checkpoint"] = best.best
    normalization = preprocessor.normalization.to_config()  # the training images' intensity mapping
    pipeline = JointDiffusionPipeline(unet=unet, scheduler=noise_scheduler, **components, **normalization)
    pipeline.save_pretrained(args.output_dir)
    if args.evaluate_generation and dataset.eval is not None and args.diffusion_loss_weight > 0:
        results["generation"] = evaluate_generation_with_reference(
            unet,
            noise_scheduler,
            dataset.train,  # every real label of the split
            dataset.eval,
            preprocessor,
            num_classes=dataset.num_classes,
            problem_type=dataset.problem_type,
            label_names=dataset.label_names,
            num_generated=args.num_evaluation_samples,
            guidance_scale=args.guidance_scale,
            seed=args.seed,
            reference_dir=os.path.join(args.output_dir, "reference_classifier"),
            **components,
        )
    elif args.evaluate_generation:
        logger.warning("--evaluate_generation needs an evaluation split and a diffusion loss: skipped.")
    if grid is not None:
        grid.save(os.path.join(args.output_dir, "samples.png"))
    # NaN (e.g. ROC AUC on a single-class split) as null: valid JSON
    # the saved model's step: with --select_best_checkpoint the best one, and the last trained step besides
    saved_step = step if best is None else int(best.best["step"])
    trained = {} if best is None else {"trained_steps": step}
    results_file = os.path.join(args.output_dir, "eval_results.json")
    write_results_json(
        results_file, {"step": saved_step, **trained, "eval_split": dataset.eval is not None, **results}
    )
    card = build_model_card(
        model_name=Path(args.output_dir).name,
        label_names=dataset.label_names,
        dataset_description=dataset.source,
        num_labeled=int(is_labeled(train_dataset["label"]).sum()),
        num_train_examples=len(train_dataset),
        resolution=preprocessor.resolution,  # of the images, also for a latent model
        channels=dataset.num_channels,
        metrics=results,
        training_settings=training_settings_from_args(args, preprocessor.resolution, saved_step, **trained),
        dataset_id=args.dataset_name if args.dataset_name and not os.path.isdir(args.dataset_name) else None,
        repo_id=args.hub_model_id,
        sample_grid_file="samples.png" if grid is not None else None,
        medical=args.npz_path is not None,
        eval_split_name=dataset.eval_split_name,
        generation_metrics=results.get("generation"),
        latent_space=latent.describe() if latent else None,
    )
    save_model_card(card, args.output_dir)
    saved = "the pipeline, " + ("samples.png, " if grid is not None else "") + "eval_results.json and README.md"
    logger.info(f"Saved {saved} to {args.output_dir}")
    if args.push_to_hub:
        push_run_to_hub(accelerator, args)


if __name__ == "__main__":
    main(parse_args(sys.argv[1:]))
