#!/usr/bin/env python
"""
Linear probes on the frozen features of trained joint models: which blocks, at which noise level, separate the classes.

    python benchmarks/benchmark_feature_probes.py \
        --models joint=runs/joint50-s0 label_only=runs/labelonly50-s0 diffusion_only=runs/diffonly-s0 \
        --npz_path fashion_mnist_10k.npz --split validation --num_labeled 50 --seed 0 \
        --timesteps 0 10 25 50 100 200 400 --output probes.json

For every model and timestep, the pooled features of every block (down blocks, mid block and, with `--decoder`, the
up blocks) of `x_t` are read once (`diffusers_joint.evaluation.feature_probes`), and a standardised logistic
regression is fitted on them:
- `--num_labeled` labeled images: the same images `train_joint.py --num_labeled N --seed S` trained on (the seeded
  10 % validation hold-out removed first, then `mask_labels` with that seed);
- `--all_labels`: also every labeled training image, the usual linear-probe protocol (feature quality alone).
A latent pipeline's UNet is probed on the VAE's latents of the images (`x_t` noises the latents, as in its
training). The probes and the model's own head (read at the same timestep) are scored on `--split`: `validation` (the
`.npz` file's `val` split, else the seeded hold-out) while choosing settings, `test` once. Logistic regression on the
raw pixels of the same labeled images (those of the first model's size and normalisation) is the floor. The rows are
printed as a Markdown table and written to `--output`.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from benchmark_utils import VALIDATION_FRACTION, load_pipeline, print_run_config
from diffusers_joint.data import ImagePreprocessor, is_labeled, load_joint_dataset, mask_labels
from diffusers_joint.data.joint_dataset import holdout_split
from diffusers_joint.evaluation import compute_classification_metrics, dataset_to_tensors, probe_timesteps


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, help="name=path of train_joint.py outputs.")
    parser.add_argument("--npz_path", default=None)
    parser.add_argument("--csv_path", default=None)
    parser.add_argument("--split", choices=["validation", "test"], default="validation")
    parser.add_argument("--num_labeled", type=int, default=50)
    parser.add_argument("--all_labels", action="store_true", help="Also fit probes on every training label.")
    parser.add_argument("--seed", type=int, default=0, help="The runs' train_joint.py --seed.")
    parser.add_argument("--timesteps", type=int, nargs="+", default=[0, 10, 25, 50, 100, 200, 400])
    parser.add_argument("--decoder", action="store_true", help="Probe the up blocks too (a full UNet pass).")
    parser.add_argument(
        "--clean_input",
        action="store_true",
        help="Also read the clean images with each timestep's embedding (no noise), besides x_t.",
    )
    parser.add_argument("--regularization", type=float, default=1.0, help="Logistic regression C.")
    parser.add_argument("--output", default="probes.json")
    args = parser.parse_args(argv)
    if bool(args.npz_path) == bool(args.csv_path):
        parser.error("Give exactly one of --npz_path or --csv_path.")
    return args


def probe_data(args, preprocessor: ImagePreprocessor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The labeled training images of each probe, and the images they are scored on."""
    dataset = load_joint_dataset(npz_path=args.npz_path, csv_path=args.csv_path, seed=args.seed)
    train, holdout = holdout_split(dataset.train, VALIDATION_FRACTION, args.seed)  # what train_joint.py trains on
    if args.split == "test":
        evaluation = dataset.eval
    elif args.npz_path:
        evaluation = load_joint_dataset(npz_path=args.npz_path, eval_split="val", seed=args.seed).eval
    else:
        evaluation = holdout
    few = mask_labels(train, num_labeled=args.num_labeled, seed=args.seed)
    data = {
        f"{args.num_labeled}": dataset_to_tensors(few.select(np.flatnonzero(is_labeled(few["label"]))), preprocessor),
        "eval": dataset_to_tensors(evaluation, preprocessor),
    }
    if args.all_labels:
        data["all"] = dataset_to_tensors(train, preprocessor)
    return data


@torch.no_grad()
def unet_inputs(pipe, data: dict, batch_size: int = 256) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """What the UNet reads of each probe's images: the images, or a latent pipeline's latents of them."""
    return {
        key: (torch.cat([pipe.images_to_latents(chunk).float().cpu() for chunk in images.split(batch_size)]), labels)
        for key, (images, labels) in data.items()
    }


def pixel_baseline(train: tuple[torch.Tensor, torch.Tensor], evaluation: tuple[torch.Tensor, torch.Tensor]) -> dict:
    """Logistic regression on raw pixels, as benchmark_semi_supervised.py's `sklearn` method."""
    model = LogisticRegression(max_iter=2000, C=1.0).fit(train[0].flatten(1).numpy(), train[1].numpy())
    labels = evaluation[1].numpy()
    probs = np.zeros((len(labels), int(max(labels.max(), train[1].max())) + 1))
    probs[:, model.classes_] = model.predict_proba(evaluation[0].flatten(1).numpy())
    return compute_classification_metrics(labels, probs)


def main(argv=None):
    args = parse_args(argv)
    config = print_run_config(args)
    start = time.perf_counter()
    models = dict(spec.split("=", 1) for spec in args.models)
    rows = []
    for name, path in models.items():
        pipe = load_pipeline(path, "ddpm")
        data = probe_data(args, pipe.image_preprocessor)  # each model's own size and normalisation
        if not rows:
            for budget in [b for b in data if b != "eval"]:
                metrics = pixel_baseline(data[budget], data["eval"])
                rows.append({"model": "pixels", "labels": budget, "timestep": None, "blocks": "pixels", **{
                    k: metrics[k] for k in ("balanced_accuracy", "roc_auc", "accuracy")}})  # fmt: skip
        data = unet_inputs(pipe, data)
        for budget in [b for b in data if b != "eval"]:
            for noisy in (True, False) if args.clean_input else (True,):
                timesteps = args.timesteps if noisy else [t for t in args.timesteps if t > 0]
                for row in probe_timesteps(
                    pipe.unet,
                    pipe.scheduler,
                    data[budget],
                    data["eval"],
                    timesteps,
                    decoder=args.decoder,
                    noisy=noisy,
                    seed=args.seed,
                    regularization=args.regularization,
                ):
                    rows.append({"model": name, "labels": budget, **row})
                    print(json.dumps(rows[-1]), flush=True)
    lines = ["| model | labels | t | input | blocks | balanced accuracy | ROC AUC |", "| --- " * 7 + "|"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['labels']} | {r['timestep']} | {r.get('input', '')} | {r['blocks']} | "
            f"{r['balanced_accuracy']:.3f} | "
            f"{r['roc_auc']:.3f} |"
        )
    print("\n".join(lines))
    result = {"config": config, "models": models, "rows": rows, "wall_seconds": time.perf_counter() - start}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
