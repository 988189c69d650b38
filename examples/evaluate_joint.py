#!/usr/bin/env python
# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Evaluate a saved Joint Diffusion pipeline: classification, generation and counterfactuals, all offline.

    python examples/evaluate_joint.py --pipeline joint-diffusion-model                    # embedded digits
    python examples/evaluate_joint.py --pipeline joint-pneumonia-50 \\
        --npz_path ../shared/data/pneumoniamnist/pneumoniamnist_balanced_28.npz --num_generated 500

Use the data flags (and --seed) the model was trained with, so that the evaluation split is the same. Generated
images and counterfactuals are judged by a `ReferenceClassifier`, a small CNN independent of the joint model and
trained only on the real labeled training images (all labels of the training split, whatever label budget the joint
model had); pass --reference_model to reuse one, otherwise one is trained and saved to the output folder. Writes
`eval_results.json` and `eval_results.md` (Markdown tables) to --output_dir.

A latent pipeline (saved with a `vae`) is evaluated the same way, on images at the VAE's resolution: its classifier
reads their latents, its samples and counterfactuals are decoded before they are judged.
"""

import argparse
import logging
import os
import sys
import time

import torch
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.utils import logging as diffusers_logging

from diffusers_joint import GuidanceConfig, JointDiffusionPipeline
from diffusers_joint.data import (
    add_data_source_arguments,
    intensity_normalization_from_args,
    load_joint_dataset_from_args,
)
from diffusers_joint.evaluation import (
    ReferenceClassifier,
    TransformersFeatureExtractor,
    compute_classification_metrics,
    dataset_to_tensors,
    evaluate_counterfactuals,
    evaluate_generation,
    results_to_markdown,
    train_reference_classifier,
    write_results_json,
)
from diffusers_joint.pipelines import GUIDANCE_METHODS

logger = diffusers_logging.get_logger("evaluate_joint")
REFERENCE_SUBFOLDER = "reference_classifier"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", type=str, required=True, help="A pipeline folder (or Hub id) to evaluate.")
    data = parser.add_argument_group("data: the same flags as examples/train_joint.py (default: embedded digits)")
    add_data_source_arguments(data)
    data.add_argument("--seed", type=int, default=0, help="Seed of the hold-out split (as in training) and sampling.")

    ref = parser.add_argument_group("reference network (independent judge)")
    ref.add_argument("--reference_model", type=str, default=None, help="A saved ReferenceClassifier folder.")
    ref.add_argument("--reference_epochs", type=int, default=10, help="Epochs when training a new one.")

    gen = parser.add_argument_group("generation")
    gen.add_argument("--skip_generation", action="store_true")
    gen.add_argument("--num_generated", type=int, default=1000, help="Class-guided samples (classes in turn).")
    gen.add_argument("--num_inference_steps", type=int, default=50)
    gen.add_argument("--scheduler", choices=["ddim", "ddpm"], default="ddim", help="ddim suits few steps.")
    gen.add_argument(
        "--guidance_scale",
        type=float,
        default=None,
        help="Guidance scale for samples and counterfactuals. Default: the pipelines' for the method and task.",
    )
    gen.add_argument(
        "--guidance_method",
        choices=list(GUIDANCE_METHODS),
        default=None,
        help="Default: the pipelines' (x0 with random views, for samples and counterfactuals).",
    )
    gen.add_argument(
        "--kid_subset_size",
        type=int,
        default=1000,
        help="Images per KID subset (at least 2; capped at the number of images compared).",
    )
    gen.add_argument(
        "--backbone",
        type=str,
        default=None,
        help="Also measure on a transformers vision model's features: a Hub id (e.g. facebook/dinov2-base) or folder.",
    )

    cf = parser.add_argument_group("counterfactuals")
    cf.add_argument("--skip_counterfactuals", action="store_true")
    cf.add_argument("--num_counterfactuals", type=int, default=100, help="Evaluation images to explain.")
    cf.add_argument(
        "--strength",
        type=float,
        default=0.5,
        help="Share of the noise schedule a counterfactual re-generates, in (0, 1]: small keeps more of the image.",
    )

    out = parser.add_argument_group("output")
    out.add_argument("--output_dir", type=str, default=None, help="Default: <pipeline>/evaluation.")
    out.add_argument("--batch_size", type=int, default=100)
    parser.add_argument(
        "--device",
        type=str,
        default=None,
        help="Device for the pipeline and the reference network, e.g. cpu, cuda, cuda:1. Default: cuda if available.",
    )
    args = parser.parse_args(argv)
    args.device = check_device(parser, args.device)
    if args.output_dir is None:
        args.output_dir = os.path.join(args.pipeline, "evaluation") if os.path.isdir(args.pipeline) else "evaluation"
    for name in ("num_generated", "num_counterfactuals", "num_inference_steps", "batch_size", "reference_epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}.")
    if not 0.0 < args.strength <= 1.0:
        parser.error(f"--strength must be in (0, 1], got {args.strength}.")
    if args.kid_subset_size < 2:
        parser.error(f"--kid_subset_size must be at least 2 (KID compares pairs), got {args.kid_subset_size}.")
    return args


def check_device(parser: argparse.ArgumentParser, device: str | None) -> str:
    """`--device`, or cuda when available and else cpu; an unknown or unavailable device is a usage error."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError:
        parser.error(f"--device must be a torch device such as cpu, cuda or cuda:1, got {device!r}.")
    available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}
    if parsed.type in available and not available[parsed.type]():
        parser.error(f"--device {device}: no {parsed.type} device is available on this machine; use --device cpu.")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        parser.error(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), from cuda:0.")
    return device


def load_reference(args, pipe, train_images, train_labels, label_names):
    """Load --reference_model, or train a reference network on the real labeled training images and save it."""
    unet = pipe.unet
    if args.reference_model:
        reference = ReferenceClassifier.from_pretrained(args.reference_model).to(args.device).eval()
        # the images' channels and size: a latent pipeline's are the VAE's, not the latents'
        expected = (pipe.pixel_channels, pipe.pixel_size, unet.config.num_classes)
        found = (reference.config.in_channels, reference.config.sample_size, reference.config.num_classes)
        if found != expected:
            raise ValueError(
                f"--reference_model has (channels, size, classes) {found} but the pipeline has {expected}: train a "
                "reference network for this data and resolution (drop --reference_model)."
            )
        return reference, args.reference_model, False
    start = time.perf_counter()
    reference = train_reference_classifier(
        train_images,
        train_labels,
        num_classes=unet.config.num_classes,
        problem_type=unet.config.problem_type,
        label_names=label_names,
        num_epochs=args.reference_epochs,
        seed=args.seed,
        device=args.device,
    )
    path = os.path.join(args.output_dir, REFERENCE_SUBFOLDER)
    reference.save_pretrained(path)
    seconds = time.perf_counter() - start
    logger.info(f"Trained a reference network on {len(train_images)} real images in {seconds:.1f}s")
    return reference, path, True


def main(args):
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    diffusers_logging.set_verbosity_info()
    os.makedirs(args.output_dir, exist_ok=True)
    torch.manual_seed(args.seed)
    timings = {}

    pipe = JointDiffusionPipeline.from_pretrained(args.pipeline).to(args.device)
    scheduler_class = DDIMScheduler if args.scheduler == "ddim" else DDPMScheduler  # whatever the pipeline saved
    pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    unet = pipe.unet.eval()
    normalization = pipe.image_normalization  # the model's own, saved with it
    if args.intensity_normalization is not None and intensity_normalization_from_args(args) != normalization:
        raise ValueError(
            f"--intensity_normalization {' '.join(args.intensity_normalization)} differs from the pipeline's "
            f"{normalization}, which the model was trained with: drop the flag."
        )
    config = normalization.to_config()
    args.intensity_normalization = [config["intensity_normalization"], *map(str, config["intensity_range"] or [])]
    dataset = load_joint_dataset_from_args(args)
    if dataset.eval is None:
        raise ValueError("The data source has no evaluation split: evaluation needs held-out images.")
    if dataset.num_classes != unet.config.num_classes:
        raise ValueError(f"The model has {unet.config.num_classes} classes but the data has {dataset.num_classes}.")
    preprocessor = pipe.image_preprocessor
    train_images, train_labels = dataset_to_tensors(dataset.train, preprocessor)
    eval_images, eval_labels = dataset_to_tensors(dataset.eval, preprocessor)
    problem_type = unet.config.problem_type
    results = {
        "pipeline": args.pipeline,
        "data": dataset.source,
        "num_eval_images": len(eval_images),
        "resolution": pipe.pixel_size,
        "seed": args.seed,
    }

    start = time.perf_counter()
    model_probs = unet.probabilities(pipe.classifier_logits(eval_images, batch_size=args.batch_size))
    results["classification"] = compute_classification_metrics(
        eval_labels, model_probs, problem_type=problem_type, label_names=list(unet.id2label.values())
    )
    timings["classification"] = time.perf_counter() - start

    start = time.perf_counter()
    reference, reference_path, trained = load_reference(args, pipe, train_images, train_labels, dataset.label_names)
    reference_metrics = compute_classification_metrics(
        eval_labels, reference.predict_proba(eval_images), problem_type=problem_type
    )
    results["reference_classifier"] = {
        "path": reference_path,
        "trained_here": trained,
        "num_train_images": len(train_images) if trained else None,
        **{k: v for k, v in reference_metrics.items() if not isinstance(v, (list, dict))},
    }
    timings["reference_classifier"] = time.perf_counter() - start

    # One guidance config for both tasks: fields left None take each task's default.
    guidance = GuidanceConfig(method=args.guidance_method, scale=args.guidance_scale)
    if not args.skip_generation:
        start = time.perf_counter()
        backbone = None
        if args.backbone:
            backbone = TransformersFeatureExtractor.from_pretrained(args.backbone, device=args.device)
        results["generation"] = evaluate_generation(
            pipe,
            eval_images,
            reference,
            num_generated=args.num_generated,
            num_inference_steps=args.num_inference_steps,
            guidance=guidance,
            real_labels=eval_labels,
            batch_size=args.batch_size,
            kid_subset_size=args.kid_subset_size,
            seed=args.seed,
            backbone=backbone,
        )
        timings["generation"] = time.perf_counter() - start

    if not args.skip_counterfactuals:
        start = time.perf_counter()
        results["counterfactuals"] = evaluate_counterfactuals(
            pipe,
            eval_images,
            eval_labels,
            reference,
            num_counterfactuals=args.num_counterfactuals,
            strength=args.strength,
            num_inference_steps=args.num_inference_steps,
            guidance=guidance,
            batch_size=args.batch_size,
            seed=args.seed,
        )
        timings["counterfactuals"] = time.perf_counter() - start

    results["seconds"] = {k: round(v, 2) for k, v in timings.items()}
    results["config"] = vars(args)
    json_path = os.path.join(args.output_dir, "eval_results.json")
    write_results_json(json_path, results)  # NaN (e.g. ROC AUC on a single-class split) as null: valid JSON
    with open(os.path.join(args.output_dir, "eval_results.md"), "w") as f:
        f.write(results_to_markdown(results, title=f"Evaluation of {args.pipeline}") + "\n")
    logger.info(f"Wrote {json_path} and eval_results.md")
    return results


if __name__ == "__main__":
    main(parse_args(sys.argv[1:]))
