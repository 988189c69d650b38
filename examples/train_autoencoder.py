#!/usr/bin/env python
# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Train a diffusers `AutoencoderKL` (the image encoder / decoder of latent Joint Diffusion) with Accelerate.

    accelerate launch examples/train_autoencoder.py --train_data_dir lesions128 --output_dir vae-lesions128
    accelerate launch examples/train_autoencoder.py --npz_path pneumonia.npz --resolution 64 --downsampling_factor 4

It reads every data source `examples/train_joint.py` reads, with the same flags and intensity handling (labels are not
used). Loss: L1 + `--kl_weight` x KL (+ `--ssim_weight` x (1 - SSIM)); no perceptual network, so nothing is
downloaded. The output folder is a `AutoencoderKL.from_pretrained` folder (safetensors, `scaling_factor` recorded in
its config) with a model card (README.md) and eval_results.json (PSNR and SSIM on the evaluation split). Pass it to
`train_joint.py --pretrained_vae_model_name_or_path`.
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
from tqdm.auto import tqdm

from diffusers_joint.data import (
    ImagePreprocessor,
    JointCollator,
    add_data_source_arguments,
    add_training_image_arguments,
    intensity_normalization_from_args,
    load_joint_dataset_from_args,
    mixed_batch_dataloader,
    random_horizontal_flip,
)
from diffusers_joint.evaluation import dataset_to_tensors, evaluate_autoencoder, write_results_json
from diffusers_joint.training import (
    AUTOENCODER_LOSS_TERMS,
    AutoencoderObjective,
    NonFiniteLossGuard,
    add_autoencoder_arguments,
    add_checkpoint_arguments,
    add_learning_rate_arguments,
    add_logging_and_hub_arguments,
    add_run_arguments,
    apply_gradients,
    batch_seed,
    build_autoencoder_model_card,
    check_autoencoder_arguments,
    check_output_dir,
    create_accelerator,
    create_autoencoder_from_args,
    create_lr_scheduler,
    has_scaling_factor,
    push_run_to_hub,
    record_scaling_factor,
    register_run_settings_checkpointing,
    remove_earlier_checkpoints,
    remove_incomplete_checkpoints,
    resumable_epochs,
    resume_training_state,
    run_settings,
    save_model_card,
    save_training_checkpoint,
    scaling_subset,
    training_schedule,
)

logger = get_logger(__name__, log_level="INFO")
MODEL_FILE = "diffusion_pytorch_model.safetensors"
SETTINGS = (
    "downsampling_factor", "latent_channels", "block_out_channels", "layers_per_block", "kl_weight", "ssim_weight",
    "train_batch_size", "learning_rate", "lr_scheduler", "max_train_steps", "seed",
    "pretrained_vae_model_name_or_path",
)  # fmt: skip


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Train an AutoencoderKL for latent Joint Diffusion.")
    data = parser.add_argument_group("data (default: scikit-learn's 8x8 digits, embedded)")
    add_data_source_arguments(data)
    add_training_image_arguments(data)

    add_autoencoder_arguments(parser.add_argument_group("model and loss"))

    train = parser.add_argument_group("training")
    add_run_arguments(train, output_dir="autoencoder", train_batch_size=16, eval_batch_size=32)
    train.add_argument("--max_train_steps", type=int, default=5000)
    add_learning_rate_arguments(train, learning_rate=1e-4, lr_scheduler="constant_with_warmup")
    train.add_argument("--adam_weight_decay", type=float, default=0.0)
    train.add_argument("--max_grad_norm", type=float, default=1.0)
    train.add_argument("--mixed_precision", type=str, default=None, choices=["no", "fp16", "bf16"])
    train.add_argument("--on_nonfinite_loss", choices=["stop", "skip"], default="stop")
    train.add_argument("--max_eval_images", type=int, default=1000, help="Images of the evaluation split scored.")
    train.add_argument("--scaling_images", type=int, default=512, help="Training images for the scaling factor.")

    ckpt = parser.add_argument_group("checkpoints, logging, Hub")
    add_checkpoint_arguments(ckpt)
    add_logging_and_hub_arguments(ckpt)
    args = parser.parse_args(argv)

    check_autoencoder_arguments(parser, args)
    for name in ("max_train_steps", "train_batch_size", "max_eval_images"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}.")
    if args.push_to_hub and not args.hub_model_id:
        args.hub_model_id = Path(args.output_dir).name
    return args


def main(args):
    accelerator = create_accelerator(
        args.output_dir, args.logging_dir, args.report_to, args.mixed_precision, args.gradient_accumulation_steps
    )
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    resume = args.resume_from_checkpoint is not None
    check_output_dir(args.output_dir, args.overwrite_output_dir, resume=resume, model_file=MODEL_FILE)
    if accelerator.is_main_process:
        remove_incomplete_checkpoints(args.output_dir)
        if not resume:  # a new run, with --overwrite_output_dir
            remove_earlier_checkpoints(args.output_dir)
    accelerator.wait_for_everyone()
    set_seed(args.seed)

    # ---------------------------------------------------------------- data and model
    dataset = load_joint_dataset_from_args(args)
    vae, resolution = create_autoencoder_from_args(dataset, args)
    # A 3-channel VAE on grayscale data gets the gray channel repeated (ImagePreprocessor), scored on all three.
    channels = vae.config.in_channels
    preprocessor = ImagePreprocessor(
        resolution, channels, normalization=intensity_normalization_from_args(args)
    )  # flips are drawn in the loop, after each step is seeded: a resumed run draws the same ones
    collator = JointCollator(preprocessor, dataset.problem_type, dataset.num_classes)
    everything = np.zeros(len(dataset.train), dtype=bool)  # labels play no part: plain shuffled batches
    train_dataloader = mixed_batch_dataloader(
        dataset.train,
        everything,
        collator,
        args.train_batch_size,
        seed=args.seed,
        num_workers=args.dataloader_num_workers,
    )
    batches_per_epoch = len(train_dataloader)  # of every process: prepare shards the loader
    objective = AutoencoderObjective(vae, args.kl_weight, args.ssim_weight)
    optimizer = torch.optim.AdamW(objective.parameters(), lr=args.learning_rate, weight_decay=args.adam_weight_decay)
    lr_scheduler = create_lr_scheduler(
        accelerator, optimizer, args.lr_scheduler, args.lr_warmup_steps, args.max_train_steps
    )
    objective, optimizer, train_dataloader, lr_scheduler = accelerator.prepare(
        objective, optimizer, train_dataloader, lr_scheduler
    )
    vae = accelerator.unwrap_model(objective).vae
    if accelerator.is_main_process:
        tracked = {k: str(v) for k, v in vars(args).items() if k != "hub_token"}
        accelerator.init_trackers("train_autoencoder", config=tracked)
    register_run_settings_checkpointing(accelerator, run_settings(args))  # a resume must train the same run
    step = resume_training_state(
        accelerator, accelerator.unwrap_model(objective), args.output_dir, args.resume_from_checkpoint
    )
    schedule = training_schedule(accelerator, batches_per_epoch, args.max_train_steps, step)

    # ---------------------------------------------------------------- train
    latent_size = resolution // 2 ** (len(vae.config.block_out_channels) - 1)
    logger.info(
        f"Data: {dataset.source}, {len(dataset.train)} training images. Training {args.max_train_steps} steps at "
        f"{resolution} px, latents {vae.config.latent_channels} x {latent_size} x {latent_size}, "
        f"{sum(p.numel() for p in vae.parameters()) / 1e6:.2f}M parameters"
    )
    progress_bar = tqdm(total=args.max_train_steps, initial=step, disable=not accelerator.is_local_main_process)
    guard = NonFiniteLossGuard(args.on_nonfinite_loss, args.output_dir, term_names=AUTOENCODER_LOSS_TERMS)
    micro_step = step * args.gradient_accumulation_steps
    for _, loader in resumable_epochs(accelerator, train_dataloader, schedule):
        objective.train()
        for batch in loader:
            torch.manual_seed(batch_seed(args.seed, micro_step, accelerator.process_index))  # flips, posterior samples
            micro_step += 1
            pixel_values = random_horizontal_flip(batch["pixel_values"]) if args.random_flip else batch["pixel_values"]
            with accelerator.accumulate(objective):
                loss, terms = objective(pixel_values)
                gathered = accelerator.gather(torch.stack([terms[name] for name in AUTOENCODER_LOSS_TERMS])[None])
                if guard.skip_step(step + 1, gathered):  # counted without an update, as in train_joint.py
                    optimizer.zero_grad()
                else:
                    apply_gradients(accelerator, objective, optimizer, lr_scheduler, loss, args.max_grad_norm)
            if not accelerator.sync_gradients:
                continue
            step += 1
            progress_bar.update(1)
            logs = {name: value.item() for name, value in terms.items()} | {"lr": lr_scheduler.get_last_lr()[0]}
            progress_bar.set_postfix(loss=f"{logs['loss']:.4f}", l1=f"{logs['loss_l1']:.4f}")
            accelerator.log(logs, step=step)
            if args.checkpointing_steps and step % args.checkpointing_steps == 0:
                save_training_checkpoint(accelerator, args.output_dir, step, args.checkpoints_total_limit)
            if step >= args.max_train_steps:
                break
        if step >= args.max_train_steps:
            break
    progress_bar.close()

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        finish(accelerator, vae, dataset, preprocessor, step, args)
    accelerator.end_training()


def finish(accelerator, vae, dataset, preprocessor, step, args):
    """Record the scaling factor, score the evaluation split, save the autoencoder, its card and results; push."""
    vae.eval()
    # a pretrained VAE keeps the factor its latents were scaled by, if it records one (else diffusers' default, SD's)
    if not args.pretrained_vae_model_name_or_path or not has_scaling_factor(vae):
        subset = scaling_subset(dataset.train, args.scaling_images, args.seed)
        images, _ = dataset_to_tensors(subset, preprocessor, labeled_only=False)
        record_scaling_factor(vae, images, args.eval_batch_size)
    results = {}
    if dataset.eval is not None:
        subset = dataset.eval.select(range(min(args.max_eval_images, len(dataset.eval))))
        images, _ = dataset_to_tensors(subset, preprocessor, labeled_only=False)
        results = evaluate_autoencoder(vae, images, args.eval_batch_size)
        logger.info(
            f"step {step}: PSNR {results['psnr']:.2f} dB, SSIM {results['ssim']:.4f} on {dataset.eval_split_name}"
        )
    vae.save_pretrained(args.output_dir, safe_serialization=True)
    results = {"step": step, "eval_split": dataset.eval_split_name if dataset.eval is not None else None, **results}
    results["scaling_factor"] = vae.config.scaling_factor
    write_results_json(os.path.join(args.output_dir, "eval_results.json"), results)  # NaN as null: valid JSON
    settings = {key: getattr(args, key) for key in SETTINGS} | {"steps": step, "resolution": preprocessor.resolution}
    settings["intensity_normalization"] = intensity_normalization_from_args(args).mode
    card = build_autoencoder_model_card(
        model_name=Path(args.output_dir).name,
        vae_config=dict(vae.config),
        dataset_description=dataset.source,
        num_train_examples=len(dataset.train),
        channels=vae.config.in_channels,
        metrics=results,
        eval_split_name=dataset.eval_split_name,
        training_settings=settings,
        repo_id=args.hub_model_id,
    )
    save_model_card(card, args.output_dir)
    logger.info(f"Saved the autoencoder, eval_results.json and README.md to {args.output_dir}")
    if args.push_to_hub:
        push_run_to_hub(accelerator, args, commit_message="Upload AutoencoderKL")


if __name__ == "__main__":
    main(parse_args(sys.argv[1:]))
