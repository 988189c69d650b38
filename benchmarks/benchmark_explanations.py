#!/usr/bin/env python
"""
Explanations judged by an independent network: class-guided samples and counterfactuals, written to one JSON file.

    # guided generation on MNIST-5k: share judged as requested, realism against unguided samples, cost of a step
    python benchmarks/benchmark_explanations.py guidance --name mnist --pipeline joint-mnist \
        --csv_path ../shared/data/mnist5k/mnist_5k.csv.gz --json benchmarks/results/explanations.json
    # counterfactuals of test images (benchmark_counterfactuals.py compares them with a pixel-space attack)
    python benchmarks/benchmark_explanations.py counterfactuals --name pneumonia --pipeline joint-pneumonia \
        --npz_path ../shared/data/pneumoniamnist/pneumoniamnist_balanced_28.npz \
        --json benchmarks/results/explanations.json

The judge is a [`ReferenceClassifier`] trained on the real training images (or loaded with `--reference_model`),
never on anything the joint model made.
- `guidance`: `--num_generated` samples, classes requested in turn, guided with the pipelines' default method and
  scale (or `--guidance_method` / `--guidance_scale`), and as many unguided ones with the same seed. Reports the share
  the reference network (and the model) assigns to the requested class, precision and recall of both sets on the
  reference features, and `guided_step_ratio`: the median time of a guided sampling trajectory of `--timing_steps`
  steps over an unguided one (the mean cost of a guided step, counting steps that reuse the classifier's direction),
  interleaved in this run on a batch of `--timing_batch_size`.
- `counterfactuals`: [`evaluate_counterfactuals`] with the pipeline's defaults (or the flags): validity under the
  model and the reference network, L1, localisation (share of pixels carrying 80 % of the change) and the strength
  used.

Each call adds or replaces its `--name` entry under `guidance` or `counterfactuals` in `--json`, with the command.
"""

import argparse
import dataclasses
import inspect
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

from benchmark_utils import add_split_argument, evaluation_data_and_reference, load_pipeline, print_run_config
from diffusers_joint.evaluation import evaluate_counterfactuals, evaluate_generation
from diffusers_joint.pipelines import (
    GUIDANCE_AUGMENTATIONS,
    GUIDANCE_METHODS,
    CounterfactualPipeline,
    GuidanceConfig,
    JointDiffusionPipeline,
)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["guidance", "counterfactuals"])
    parser.add_argument("--name", required=True, help="The entry's key, e.g. the data set.")
    parser.add_argument("--pipeline", required=True, help="A pipeline saved by train_joint.py.")
    parser.add_argument("--npz_path", default=None)
    parser.add_argument("--csv_path", default=None)
    parser.add_argument("--reference_model", default=None, help="A saved ReferenceClassifier (else one is trained).")
    parser.add_argument("--scheduler", choices=["ddpm", "ddim"], default="ddpm")
    parser.add_argument("--num_inference_steps", type=int, default=None, help="Default: the pipeline's.")
    parser.add_argument("--guidance_method", choices=list(GUIDANCE_METHODS), default=None)
    parser.add_argument("--guidance_scale", type=float, default=None)
    parser.add_argument(
        "--guidance_augmentation",
        choices=[*GUIDANCE_AUGMENTATIONS, "none"],
        default=None,
        help="With --guidance_method x0: the classifier reads random views of the denoised estimate. Default: the "
        "method's (GuidanceConfig).",
    )
    parser.add_argument(
        "--guidance_cache_interval",
        type=int,
        default=None,
        help="Recompute the classifier's direction every this many steps. Default: the pipeline's.",
    )
    parser.add_argument(
        "--guidance_temperature",
        type=float,
        default=None,
        help="The temperature at which guidance reads the classifier. Default: the pipeline's.",
    )
    parser.add_argument("--num_generated", type=int, default=1000)
    parser.add_argument("--timing_batch_size", type=int, default=16)
    parser.add_argument("--timing_repeats", type=int, default=10)
    parser.add_argument("--timing_steps", type=int, default=10, help="Steps of each timed sampling trajectory.")
    parser.add_argument("--num_counterfactuals", type=int, default=200)
    parser.add_argument("--strength", type=float, default=None, help="Default: the pipeline's.")
    parser.add_argument(
        "--search_strengths",
        choices=["yes", "no"],
        default=None,
        help="Retry images that did not flip with larger strengths (steps of 0.1). Default: the pipeline's.",
    )
    parser.add_argument("--mask_image", choices=["auto", "none"], default=None, help="Default: the pipeline's.")
    add_split_argument(parser, "Images to judge against or explain")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", required=True, help="The results file to add the entry to.")
    return parser.parse_args()


def call_defaults(pipeline_cls) -> dict:
    """The keyword defaults of a pipeline's `__call__`: what a user gets without flags."""
    parameters = inspect.signature(pipeline_cls.__call__).parameters
    return {name: p.default for name, p in parameters.items() if p.default is not inspect.Parameter.empty}


def guidance_from_args(args) -> GuidanceConfig:
    """The guidance of the flags; those not given take the pipelines' defaults for each task."""
    return GuidanceConfig(
        method=args.guidance_method,
        scale=args.guidance_scale,
        augmentation=args.guidance_augmentation,
        cache_interval=args.guidance_cache_interval,
        temperature=args.guidance_temperature,
    )


def step_ratio(
    pipe: JointDiffusionPipeline, guidance: GuidanceConfig, batch_size: int, repeats: int, steps: int
) -> float:
    """Median seconds of a guided sampling trajectory of `steps` steps over an unguided one, interleaved."""
    labels = [i % pipe.unet.config.num_classes for i in range(batch_size)]
    scale = guidance.scale

    def trajectory(guidance_scale: float) -> float:
        start = time.perf_counter()
        pipe(
            class_labels=labels,
            guidance=dataclasses.replace(guidance, scale=guidance_scale),  # no views are drawn at scale 0
            num_inference_steps=steps,
            generator=torch.Generator().manual_seed(0),
            output_type="pt",
        )
        return time.perf_counter() - start

    trajectory(0.0), trajectory(scale)  # warm-up
    unguided, guided = [], []
    for _ in range(repeats):
        unguided.append(trajectory(0.0))
        guided.append(trajectory(scale))
    return statistics.median(guided) / statistics.median(unguided)


def guidance(args, pipe, real_images, real_labels, reference) -> dict:
    defaults = call_defaults(JointDiffusionPipeline)
    steps = args.num_inference_steps or defaults["num_inference_steps"]
    common = {"num_generated": args.num_generated, "num_inference_steps": steps, "seed": args.seed}
    guided = evaluate_generation(
        pipe,
        real_images,
        reference,
        guidance=guidance_from_args(args),
        **common,
    )
    unguided = evaluate_generation(pipe, real_images, reference, guidance_scale=0.0, **common)
    return {
        "reference_conditional_accuracy": guided["conditional_accuracy"],
        "model_conditional_accuracy": guided["conditional_accuracy_model"],
        "precision": guided["precision"],
        "unguided_precision": unguided["precision"],
        "recall": guided["recall"],
        "unguided_recall": unguided["recall"],
        "unguided_reference_conditional_accuracy": unguided["conditional_accuracy"],
        "guided_step_ratio": step_ratio(
            pipe,
            GuidanceConfig.from_dict(guided["guidance"]),
            args.timing_batch_size,
            args.timing_repeats,
            args.timing_steps,
        ),
        "guidance": guided["guidance"],
        "num_generated": args.num_generated,
        "num_inference_steps": steps,
    }


def counterfactuals(args, pipe, test_images, test_labels, reference) -> dict:
    defaults = call_defaults(CounterfactualPipeline)
    results = evaluate_counterfactuals(
        pipe,
        test_images,
        test_labels,
        reference,
        num_counterfactuals=args.num_counterfactuals,
        strength=args.strength or defaults["strength"],
        num_inference_steps=args.num_inference_steps or defaults["num_inference_steps"],
        guidance=guidance_from_args(args),
        seed=args.seed,
        search_strengths=defaults["search_strengths"]
        if args.search_strengths is None
        else args.search_strengths == "yes",
        max_strength=defaults["max_strength"],
        mask_image=defaults["mask_image"]
        if args.mask_image is None
        else {"auto": "auto", "none": None}[args.mask_image],
    )
    keys = ("validity_model", "validity_reference", "flip_rate_model", "l1", "l2", "localization", "mean_strength")
    settings = (
        "guidance",
        "strength",
        "search_strengths",
        "mask_image",
        "num_inference_steps",
    )
    return {**{k: results[k] for k in keys}, **{k: results[k] for k in settings}, "n": results["num_counterfactuals"]}


def main():
    args = parse_args()
    config = print_run_config(args)
    torch.manual_seed(args.seed)
    pipe = load_pipeline(args.pipeline, args.scheduler)
    test_images, test_labels, reference, reference_accuracy = evaluation_data_and_reference(
        pipe, args.npz_path, args.csv_path, args.reference_model, args.seed, split=args.split
    )
    start = time.perf_counter()
    part = guidance if args.part == "guidance" else counterfactuals
    entry = part(args, pipe, test_images, test_labels, reference)
    entry.update(
        {
            "reference_test_accuracy": reference_accuracy,
            "split": args.split,
            "seconds": time.perf_counter() - start,
            "threads": config["threads"],
            "command": "python " + shlex.join(sys.argv),
        }
    )
    print(json.dumps(entry, indent=2))
    path = Path(args.json)
    results = json.loads(path.read_text()) if path.exists() else {}
    results.setdefault(args.part, {})[args.name] = entry
    path.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
