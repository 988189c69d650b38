#!/usr/bin/env python
"""
Generation quality of a Joint Diffusion model against the same UNet trained with the diffusion loss alone.

    # the two models: the README's main job, and the same command without the classifier loss
    accelerate launch examples/train_joint.py --output_dir joint-digits
    accelerate launch examples/train_joint.py --classifier_loss_weight 0 --output_dir plain-digits
    python benchmarks/benchmark_generation.py --joint_pipeline joint-digits --plain_pipeline plain-digits

With `--classifier_loss_weight 0` the classifier head receives no gradient and the UNet is trained exactly as a plain
diffusers `UNet2DModel` (same architecture, data, steps, schedule and seed); sampling it unguided is sampling that
plain UNet, since `JointUNet2DModel.forward` is `UNet2DModel.forward`. Does the classifier hurt or help generation?

For each model and guidance scale, [`evaluate_generation`] draws `--num_generated` samples (classes requested in
turn) and compares them with the real evaluation images on the features of an independent [`ReferenceClassifier`]
(trained here on the real training images, or loaded with `--reference_model`): Frechet distance, KID, precision,
recall, and the share of samples that the reference network (and the joint model) assigns to the requested class.
`--grid_dir` also writes a sample grid (one row per class) of each model and scale.
"""

import argparse
import json
import os
import time

import torch
from diffusers.utils import make_image_grid

from benchmark_utils import evaluation_data_and_reference, load_pipeline, print_run_config
from diffusers_joint import JointDiffusionPipeline
from diffusers_joint.evaluation import (
    evaluate_generation,
)
from diffusers_joint.pipelines import DEFAULT_GUIDANCE_SCALES

REPORTED = (
    "frechet_distance",
    "kid_mean",
    "precision",
    "recall",
    "conditional_accuracy",
    "conditional_accuracy_model",
)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--joint_pipeline", required=True, help="A pipeline trained by train_joint.py.")
    parser.add_argument("--plain_pipeline", default=None, help="The same, trained with --classifier_loss_weight 0.")
    parser.add_argument("--npz_path", default=None)
    parser.add_argument("--csv_path", default=None)
    parser.add_argument("--reference_model", default=None, help="A saved ReferenceClassifier (else one is trained).")
    parser.add_argument("--num_generated", type=int, default=500)
    parser.add_argument("--scheduler", choices=["ddpm", "ddim"], default="ddpm")
    parser.add_argument("--num_inference_steps", type=int, default=250)
    parser.add_argument("--guidance_scales", nargs="+", type=float, default=None, help="Default: 0 and the default.")
    parser.add_argument(
        "--guidance_method", choices=["x0", "features"], default="x0", help="The gradient guided samples follow."
    )
    parser.add_argument("--samples_per_class_in_grid", type=int, default=8)
    parser.add_argument("--grid_dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="Also write the results to this file.")
    return parser.parse_args()


def sample_grid(pipe: JointDiffusionPipeline, args, scale: float):
    num_classes, per_class = pipe.unet.config.num_classes, args.samples_per_class_in_grid
    images = pipe(
        class_labels=[c for c in range(num_classes) for _ in range(per_class)],
        guidance_scale=scale,
        guidance_method=args.guidance_method,
        num_inference_steps=args.num_inference_steps,
        generator=torch.Generator().manual_seed(args.seed),
    ).images
    return make_image_grid(images, rows=num_classes, cols=per_class)


def main():
    args = parse_args()
    config = print_run_config(args)
    scales = args.guidance_scales or [0.0, DEFAULT_GUIDANCE_SCALES[args.guidance_method]]
    models = {"joint": load_pipeline(args.joint_pipeline, args.scheduler)}
    if args.plain_pipeline:
        models["plain"] = load_pipeline(args.plain_pipeline, args.scheduler)
    unet = models["joint"].unet
    if unet.is_multi_label:
        raise SystemExit("This benchmark requests single classes; use evaluate_generation directly for multi-label.")

    real_images, _, reference, reference_accuracy = evaluation_data_and_reference(
        unet, args.npz_path, args.csv_path, args.reference_model, args.seed
    )

    results = {"config": config, "reference_test_accuracy": reference_accuracy, "runs": []}
    print(f"| model | guidance scale ({args.guidance_method}) | " + " | ".join(REPORTED) + " | seconds |", flush=True)
    print("| --- " * (len(REPORTED) + 3) + "|", flush=True)
    for name, pipe in models.items():
        # the plain UNet's head was never trained: guiding with it would be meaningless
        for scale in scales if name == "joint" else [0.0]:
            start = time.perf_counter()
            metrics = evaluate_generation(
                pipe,
                real_images,
                reference,
                num_generated=args.num_generated,
                num_inference_steps=args.num_inference_steps,
                guidance_scale=scale,
                guidance_method=args.guidance_method,
                seed=args.seed,
            )
            metrics["seconds"] = time.perf_counter() - start
            results["runs"].append({"model": name, **metrics})
            cells = [f"{metrics[k]:.4f}" if k in metrics else "–" for k in REPORTED]
            print(f"| {name} | {scale:g} | " + " | ".join(cells) + f" | {metrics['seconds']:.0f} |", flush=True)
            if args.grid_dir:
                os.makedirs(args.grid_dir, exist_ok=True)
                grid_name = f"samples-{name}-{args.guidance_method}-scale{scale:g}.png"
                sample_grid(pipe, args, scale).save(os.path.join(args.grid_dir, grid_name))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
