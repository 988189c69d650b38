#!/usr/bin/env python
"""
Diffusion-driven input purification (DDA, Gao et al., CVPR 2023; DiffPure, Nie et al., ICML 2022): does projecting an
image back towards the training distribution with the joint model's own denoiser help its classifier on a shifted
test split?

    python benchmarks/benchmark_purification.py \
        --models runs/joint-50-seed0 runs/joint-50-seed1 runs/joint-50-seed2 --seeds 0 1 2 \
        --npz_path ../shared/data/pneumoniamnist/pneumoniamnist_balanced_28.npz --split validation \
        --strengths 0.025 0.05 0.1 0.2 --num_draws 4 --output purification.json

Each image is noised to `strength` of the training timesteps (the DDIM grid's nearest step: timestep 45 of 1000 for
0.05 with the default 200-step grid) and denoised by deterministic DDIM over `strength * --num_inference_steps` steps
with guidance off: [`CounterfactualPipeline`] with `guidance_scale=0` and no mask, which is SDEdit. The classifier then
reads the result at t = 0. Per model, strength and number of noise draws, three rows: `clean` (the model's ordinary
`classify`), `purified` (the mean probabilities over the draws) and `ensemble` (the mean of the clean and purified
probabilities, DDA's rule). A label-only network has no denoiser, so this only exists for joint models.

`--split validation` scores the seeded 10 % hold-out of the training split that `train_joint.py --seed S` held out
(so `--seeds` must give each model's training seed); `test` the test split, once, for the chosen setting.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmark_utils import VALIDATION_FRACTION, load_pipeline, print_run_config
from diffusers_joint.data import ImagePreprocessor, load_joint_dataset
from diffusers_joint.data.joint_dataset import holdout_split
from diffusers_joint.evaluation import compute_classification_metrics, dataset_to_tensors
from diffusers_joint.pipelines import CounterfactualPipeline


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, help="train_joint.py outputs of joint models.")
    parser.add_argument("--seeds", type=int, nargs="+", required=True, help="Each model's train_joint.py --seed.")
    parser.add_argument("--npz_path", default=None)
    parser.add_argument("--csv_path", default=None)
    parser.add_argument("--split", choices=["validation", "test"], default="validation")
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.025, 0.05, 0.1, 0.2])
    parser.add_argument(
        "--num_inference_steps", type=int, default=200, help="DDIM grid; a strength s runs int(s * steps) of it."
    )
    parser.add_argument("--num_draws", type=int, default=4, help="Noise draws averaged per image.")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--output", default="purification.json")
    args = parser.parse_args(argv)
    if bool(args.npz_path) == bool(args.csv_path):
        parser.error("Give exactly one of --npz_path or --csv_path.")
    if len(args.models) != len(args.seeds):
        parser.error(f"Give one --seeds entry per model: {len(args.models)} models, {len(args.seeds)} seeds.")
    return args


def evaluation_split(args, seed: int, preprocessor: ImagePreprocessor) -> tuple[torch.Tensor, torch.Tensor]:
    """The images the runs were validated on (the seeded hold-out), or the test split."""
    dataset = load_joint_dataset(npz_path=args.npz_path, csv_path=args.csv_path, seed=seed)
    if args.split == "test":
        return dataset_to_tensors(dataset.eval, preprocessor)
    return dataset_to_tensors(holdout_split(dataset.train, VALIDATION_FRACTION, seed)[1], preprocessor)


def purified_probs(
    pipe: CounterfactualPipeline,
    images: torch.Tensor,
    strength: float,
    num_inference_steps: int,
    generator: torch.Generator,
    batch_size: int,
) -> torch.Tensor:
    """Classifier probabilities of the images after one noise-and-denoise pass without guidance."""
    probs = []
    for start in range(0, len(images), batch_size):
        output = pipe(
            images[start : start + batch_size],
            target_class=0,  # read by guidance only, which is off
            strength=strength,
            guidance_scale=0.0,
            num_inference_steps=num_inference_steps,
            mask_image=None,
            generator=generator,
            output_type="pt",
        )
        probs.append(output.counterfactual_probs)
    return torch.cat(probs)


def scores(labels: np.ndarray, probs: torch.Tensor) -> dict:
    metrics = compute_classification_metrics(labels, probs.numpy())
    return {
        "balanced_accuracy": metrics["balanced_accuracy"],
        "roc_auc": metrics["roc_auc"],
        "confusion_matrix": metrics["confusion_matrix"],
    }


def main(argv=None):
    args = parse_args(argv)
    config = print_run_config(args)
    start = time.perf_counter()
    rows = []
    for path, seed in zip(args.models, args.seeds):
        pipe = CounterfactualPipeline.from_joint_pipeline(load_pipeline(path, "ddim"))
        pipe.set_progress_bar_config(disable=True)
        images, labels = evaluation_split(args, seed, pipe.image_preprocessor)
        labels = labels.numpy()
        clean = pipe.classify(images).probs.float()
        rows.append({"model": path, "seed": seed, "variant": "clean", **scores(labels, clean)})
        print(json.dumps(rows[-1]), flush=True)
        for strength in args.strengths:
            generator = torch.Generator().manual_seed(seed)
            draws = [
                purified_probs(pipe, images, strength, args.num_inference_steps, generator, args.batch_size)
                for _ in range(args.num_draws)
            ]
            purified = torch.stack(draws).mean(0)
            for variant, probs in (("purified", purified), ("ensemble", (clean + purified) / 2)):
                row = {"model": path, "seed": seed, "variant": variant, "strength": strength}
                rows.append({**row, "num_draws": args.num_draws, **scores(labels, probs)})
                print(json.dumps(rows[-1]), flush=True)
    summary = {}
    for row in rows:
        key = row["variant"] if row["variant"] == "clean" else f"{row['variant']}@{row['strength']}"
        summary.setdefault(key, []).append(row["balanced_accuracy"])
    lines = ["| variant | balanced accuracy, mean | per model |", "| --- | --- | --- |"]
    for key, values in summary.items():
        lines.append(f"| {key} | {np.mean(values):.3f} | {', '.join(f'{v:.3f}' for v in values)} |")
    print("\n".join(lines))
    result = {"config": config, "rows": rows, "wall_seconds": time.perf_counter() - start}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
