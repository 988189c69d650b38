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
`--grid_dir` also writes a sample grid (one row per class) of each model, sampler and scale. Each row also reports
`dark_background_share`: the share of samples whose border is as dark as the real images' (within 0.1).

`--samplers ddpm:1000 ddim:50` measures each model with each sampler (scheduler and number of steps); unguided
samples are `--guidance_scales 0`.
"""

import argparse
import json
import os
import shlex
import sys
import time

import torch
from diffusers.utils import make_image_grid

from benchmark_utils import add_split_argument, evaluation_data_and_reference, load_pipeline, print_run_config
from diffusers_joint import JointDiffusionPipeline
from diffusers_joint.evaluation import (
    evaluate_generation,
)
from diffusers_joint.pipelines import DEFAULT_GUIDANCE_SCALES, GUIDANCE_METHODS, GuidanceConfig

REPORTED = (
    "dark_background_share",
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
    parser.add_argument(
        "--samplers",
        nargs="+",
        type=parse_sampler,
        default=[("ddpm", 250, 0.0)],
        help="Samplers as SCHEDULER:STEPS[:eta=ETA] (ddpm or ddim), e.g. ddpm:1000 ddim:50 ddim:50:eta=1.",
    )
    parser.add_argument("--guidance_scales", nargs="+", type=float, default=None, help="Default: 0 and the default.")
    parser.add_argument(
        "--guidance_method", choices=list(GUIDANCE_METHODS), default="x0", help="The gradient guided samples follow."
    )
    parser.add_argument("--samples_per_class_in_grid", type=int, default=8)
    parser.add_argument("--grid_dir", default=None)
    add_split_argument(parser, "Real images to compare with")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="Also write the results to this file.")
    return parser.parse_args()


def parse_sampler(text: str) -> tuple[str, int, float]:
    name, steps, *rest = text.split(":") + [""]
    eta = rest[0].removeprefix("eta=") if rest[0] else "0"
    try:
        if name not in ("ddpm", "ddim") or int(steps) < 1 or len(rest) > 2 or (rest[0] and "eta=" not in rest[0]):
            raise ValueError
        return name, int(steps), float(eta)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected SCHEDULER:STEPS[:eta=ETA] with SCHEDULER ddpm or ddim, got {text!r}"
        ) from None


def sample_grid(pipe: JointDiffusionPipeline, args, scale: float, num_inference_steps: int, eta: float):
    num_classes, per_class = pipe.unet.config.num_classes, args.samples_per_class_in_grid
    images = pipe(
        class_labels=[c for c in range(num_classes) for _ in range(per_class)],
        guidance=GuidanceConfig(method=args.guidance_method, scale=scale),
        num_inference_steps=num_inference_steps,
        generator=torch.Generator().manual_seed(args.seed),
        eta=eta,
    ).images
    # make_image_grid pastes onto RGB: grayscale samples go back to one channel, a third of the file
    return make_image_grid(images, rows=num_classes, cols=per_class).convert(images[0].mode)


def main():
    args = parse_args()
    config = print_run_config(args)
    command = "python " + shlex.join(sys.argv)
    scales = args.guidance_scales or [0.0, DEFAULT_GUIDANCE_SCALES[args.guidance_method]]
    paths = {"joint": args.joint_pipeline, **({"plain": args.plain_pipeline} if args.plain_pipeline else {})}
    joint = load_pipeline(args.joint_pipeline, "ddpm")
    if joint.unet.is_multi_label:
        raise SystemExit("This benchmark requests single classes; use evaluate_generation directly for multi-label.")

    real_images, _, reference, reference_accuracy = evaluation_data_and_reference(
        joint, args.npz_path, args.csv_path, args.reference_model, args.seed, split=args.split
    )

    results = {"config": config, "command": command, "reference_test_accuracy": reference_accuracy, "runs": []}
    header = f"| model | sampler | guidance scale ({args.guidance_method}) | "
    print(header + " | ".join(REPORTED) + " | seconds |", flush=True)
    print("| --- " * (len(REPORTED) + 4) + "|", flush=True)
    for scheduler, steps, eta in args.samplers:
        for name, path in paths.items():
            pipe = load_pipeline(path, scheduler)
            # the plain UNet's head was never trained: guiding with it would be meaningless
            for scale in scales if name == "joint" else [0.0]:
                start = time.perf_counter()
                metrics = evaluate_generation(
                    pipe,
                    real_images,
                    reference,
                    num_generated=args.num_generated,
                    num_inference_steps=steps,
                    guidance=GuidanceConfig(method=args.guidance_method, scale=scale),
                    seed=args.seed,
                    eta=eta,
                )
                metrics["seconds"] = time.perf_counter() - start
                sampler = f"{scheduler}:{steps}" + (f":eta={eta:g}" if scheduler == "ddim" else "")
                results["runs"].append({"model": name, "sampler": sampler, "command": command, **metrics})
                cells = [f"{metrics[k]:.4f}" if k in metrics else "–" for k in REPORTED]
                row = f"| {name} | {sampler} | {scale:g} | " + " | ".join(cells)
                print(row + f" | {metrics['seconds']:.0f} |", flush=True)
                if args.grid_dir:
                    os.makedirs(args.grid_dir, exist_ok=True)
                    grid_name = f"samples-{name}-{sampler.replace(':', '-')}-{args.guidance_method}-scale{scale:g}.png"
                    sample_grid(pipe, args, scale, steps, eta).save(os.path.join(args.grid_dir, grid_name))
                if args.json:  # after every row: a long sweep keeps what it measured
                    with open(args.json, "w") as f:
                        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
