#!/usr/bin/env python
"""
Does the validation split speak for the test split? Three measurements per data set:

    python benchmarks/benchmark_split_shift.py \
        --npz_path ../shared/data/pneumoniamnist/pneumoniamnist_balanced_28.npz \
        --tuning_results benchmarks/results/recipe_tuning_validation.json --tuning_key pneumonia

- `split_shift_auc`: how well a logistic regression on the pixels tells the test images from the validation hold-out
  (train_joint.py's seeded 10 % of the training split, the same for every seed of `benchmark_semi_supervised.py`),
  overall and per class, with the training images against the hold-out as the no-shift control;
- logistic regression on the pixels of every training image (after the hold-out), scored on the hold-out and on the
  test split: the same model on both, so the gap is the splits', not a model's;
- with `--tuning_results`: how the recipe variants of `recipe_tuning_validation.json` rank on validation against
  how they rank on test (Spearman correlation of their 3-seed means);
- with `--per_image_normalizations`: the same shift measured after each per-image intensity normalisation (the
  package's `minmax` and `percentile` modes, a z-score, histogram equalisation, CLAHE): whether the shift is one of
  brightness and contrast that normalising each image would remove.

The results join `--output` under the data file's name (other data sets' entries are kept).
"""

import argparse
import json
from pathlib import Path

import kornia
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from benchmark_utils import VALIDATION_FRACTION
from diffusers_joint.data import ImagePreprocessor, IntensityNormalization, load_joint_dataset
from diffusers_joint.data.joint_dataset import holdout_split
from diffusers_joint.evaluation import compute_classification_metrics, dataset_to_tensors, split_shift_auc


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--npz_path", default=None)
    parser.add_argument("--csv_path", default=None)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="Seeds of the hold-out split.")
    parser.add_argument("--tuning_results", default=None, help="recipe_tuning_validation.json, for the ranking.")
    parser.add_argument("--tuning_key", default=None, help="Its data set key: `mnist` or `pneumonia`.")
    parser.add_argument(
        "--per_image_normalizations",
        nargs="+",
        choices=list(PER_IMAGE_NORMALIZATIONS),
        default=[],
        help="Also measure the shift after these per-image intensity normalisations.",
    )
    parser.add_argument("--output", default="benchmarks/results/split_shift.json")
    args = parser.parse_args()
    if bool(args.npz_path) == bool(args.csv_path):
        parser.error("Give exactly one of --npz_path or --csv_path.")
    if bool(args.tuning_results) != bool(args.tuning_key):
        parser.error("--tuning_results and --tuning_key go together.")
    return args


def _zscore(images: torch.Tensor) -> torch.Tensor:
    mean, std = images.mean(dim=(1, 2, 3), keepdim=True), images.std(dim=(1, 2, 3), keepdim=True)
    return (images - mean) / std.clamp_min(1e-6)


def _in_unit_range(transform):
    """A transform of [0, 1] images, applied to the preprocessor's [-1, 1] ones."""
    return lambda images: transform((images + 1) / 2) * 2 - 1


# Per-image intensity normalisations: the package's modes (through the preprocessor) or a map of the [-1, 1] tensors.
PER_IMAGE_NORMALIZATIONS = {
    "minmax": IntensityNormalization("minmax"),
    "percentile": IntensityNormalization("percentile"),
    "zscore": _zscore,
    "equalize": _in_unit_range(kornia.enhance.equalize),
    "clahe": _in_unit_range(lambda x: kornia.enhance.equalize_clahe(x, clip_limit=2.0, grid_size=(4, 4))),
}


def average_ranks(values) -> np.ndarray:
    values = np.asarray(values)
    ranks = np.empty(len(values))
    ranks[values.argsort(kind="stable")] = np.arange(len(values), dtype=float)
    for value in np.unique(values):  # ties share their mean rank
        ranks[values == value] = ranks[values == value].mean()
    return ranks


def spearman(x, y) -> float:
    """Spearman's rank correlation."""
    return float(np.corrcoef(average_ranks(x), average_ranks(y))[0, 1])


def recipe_ranking(path: str, key: str) -> dict:
    """Mean validation and test balanced accuracy of every variant with test scores, and their rank correlation."""
    variants = json.loads(Path(path).read_text())["variants"]
    rows = {}
    for name, variant in variants.items():
        runs = variant.get(key, {}).get("runs", {}).values()
        if runs and all("test_balanced_accuracy" in run for run in runs):
            rows[name] = {
                "validation": float(np.mean([run["validation_balanced_accuracy"] for run in runs])),
                "test": float(np.mean([run["test_balanced_accuracy"] for run in runs])),
                "seeds": len(runs),
            }
    validation, test = [r["validation"] for r in rows.values()], [r["test"] for r in rows.values()]
    return {
        "variants": rows,
        "spearman": spearman(validation, test),
        "validation_range": [min(validation), max(validation)],
        "test_range": [min(test), max(test)],
    }


def measure(args, seed: int) -> dict:
    dataset = load_joint_dataset(npz_path=args.npz_path, csv_path=args.csv_path, seed=seed)
    train, validation = holdout_split(dataset.train, VALIDATION_FRACTION, seed)
    preprocessor = ImagePreprocessor(dataset.image_size, dataset.num_channels)
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = (
        dataset_to_tensors(split, preprocessor) for split in (train, validation, dataset.eval)
    )
    control = np.random.default_rng(seed).choice(len(train_x), size=len(val_x), replace=False)
    pixels = LogisticRegression(max_iter=2000).fit(train_x.flatten(1).numpy(), train_y.numpy())

    def balanced_accuracy(images, labels):
        probs = pixels.predict_proba(images.flatten(1).numpy())
        return compute_classification_metrics(labels.numpy(), probs)["balanced_accuracy"]

    normalized = {}
    for name in args.per_image_normalizations:
        normalization = PER_IMAGE_NORMALIZATIONS[name]
        if isinstance(normalization, IntensityNormalization):
            per_image = ImagePreprocessor(dataset.image_size, dataset.num_channels, normalization=normalization)
            train_n, val_n, test_n = (dataset_to_tensors(s, per_image)[0] for s in (train, validation, dataset.eval))
        else:
            train_n, val_n, test_n = (normalization(images) for images in (train_x, val_x, test_x))
        normalized[name] = {
            "validation_vs_test": split_shift_auc(val_n, test_n, val_y, test_y, seed=seed),
            "train_vs_validation": split_shift_auc(train_n[control], val_n, train_y[control], val_y, seed=seed),
        }
    return {
        "validation_vs_test": split_shift_auc(val_x, test_x, val_y, test_y, seed=seed),
        "train_vs_validation": split_shift_auc(train_x[control], val_x, train_y[control], val_y, seed=seed),
        "pixel_logistic_regression": {
            "validation_balanced_accuracy": balanced_accuracy(val_x, val_y),
            "test_balanced_accuracy": balanced_accuracy(test_x, test_y),
        },
        "per_image_normalizations": normalized,
    }


def summarize_shift(results: list[dict]) -> dict:
    """Mean and standard deviation over seeds of each `split_shift_auc` result's ROC AUC, and its mean per class."""
    aucs = [r["roc_auc"] for r in results]
    return {
        "roc_auc": {"mean": float(np.mean(aucs)), "std": float(np.std(aucs, ddof=1))},
        "roc_auc_per_class": {
            str(label): float(np.mean([r["per_class"][label] for r in results])) for label in results[0]["per_class"]
        },
    }


def main():
    args = parse_args()
    name = Path(args.npz_path or args.csv_path).name
    per_seed = {seed: measure(args, seed) for seed in args.seeds}
    entry = {"command": f"python benchmarks/benchmark_split_shift.py {' '.join(map(str, _flags(args)))}"}
    entry["per_seed"] = per_seed
    for key in ("validation_vs_test", "train_vs_validation"):
        summary = summarize_shift([r[key] for r in per_seed.values()])
        entry[f"{key}_roc_auc"], entry[f"{key}_roc_auc_per_class"] = summary["roc_auc"], summary["roc_auc_per_class"]
    if args.per_image_normalizations:
        entry["per_image_normalizations"] = {
            mode: {
                key: summarize_shift([r["per_image_normalizations"][mode][key] for r in per_seed.values()])
                for key in ("validation_vs_test", "train_vs_validation")
            }
            for mode in args.per_image_normalizations
        }
    for split in ("validation", "test"):
        values = [r["pixel_logistic_regression"][f"{split}_balanced_accuracy"] for r in per_seed.values()]
        entry[f"pixel_logistic_regression_{split}"] = {
            "mean": float(np.mean(values)),
            "std": float(np.std(values, ddof=1)),
        }
    if args.tuning_results:
        entry["recipe_ranking"] = recipe_ranking(args.tuning_results, args.tuning_key)
    print(json.dumps({name: {k: v for k, v in entry.items() if k != "per_seed"}}, indent=2))
    output = Path(args.output)
    results = json.loads(output.read_text()) if output.exists() else {}
    results[name] = entry
    output.write_text(json.dumps(results, indent=2) + "\n")


def _flags(args) -> list:
    flags = ["--npz_path", args.npz_path] if args.npz_path else ["--csv_path", args.csv_path]
    flags += ["--seeds", *args.seeds]
    if args.tuning_results:
        flags += ["--tuning_results", args.tuning_results, "--tuning_key", args.tuning_key]
    if args.per_image_normalizations:
        flags += ["--per_image_normalizations", *args.per_image_normalizations]
    return flags


if __name__ == "__main__":
    main()
