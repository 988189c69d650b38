#!/usr/bin/env python
"""
Calibration on small validation splits: does the temperature decision ever make test probabilities worse?

    python benchmarks/benchmark_calibration.py \
        --npz_model runs/pneumonia-all-seed0 --npz_path ../shared/data/pneumoniamnist/pneumoniamnist_balanced_28.npz \
        --csv_model runs/mnist5k-all-seed0 --csv_path ../shared/data/mnist5k/mnist_5k.csv.gz \
        --digits_model runs/digits-main --output benchmarks/results/calibration.json

Each model is a `train_joint.py` output trained with `--seed` `--data_seed` (default 0). Its raw logits are computed
once on a pool of labeled images it did not train on (its validation hold-out, plus the `.npz` file's `val` split) and
on the test split. Then:

1. Choosing the rule, on the pool only: `--num_selection_subsets` validation subsets of 50-150 images per model
   (seeds from 1000), each scored on the rest of the pool. Every candidate rule (always apply the fitted temperature,
   shrink it towards 1, or apply it only when a cross-validated NLL gain beats noise) is scored by the share of
   subsets whose ECE on the rest of the pool got worse by more than `--worse_by`, and by its mean ECE there. The
   chosen rule is the one with the lowest mean ECE among those with a share of at most `--max_share_worse` ("never",
   no temperature at all, is scored for reference but not chosen).
2. Reporting, once, on the test split: `--num_subsets` fresh subsets per model (seeds from 0), plus the digits main
   job's own validation split, with the old rule (always apply) and the chosen one; and the large-split case (the
   `.npz` model's own validation hold-out and its whole pool).
"""

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from benchmark_utils import VALIDATION_FRACTION, print_run_config
from diffusers_joint import JointDiffusionPipeline
from diffusers_joint.data import load_joint_dataset
from diffusers_joint.data.joint_dataset import holdout_split
from diffusers_joint.evaluation import dataset_to_tensors
from diffusers_joint.training import calibrate_temperature, fit_temperature
from diffusers_joint.training.calibration import MIN_FITTED_TEMPERATURE, calibration_error

SIZES = (50, 150)  # the small validation splits
NOISE_MULTIPLIERS = (0.0, 0.5, 1.0, 2.0)
SHRINKAGE_SIZES = (50, 100, 200)
# the cross-validated rule with a floor on the fitted temperature (1: never sharpen)
BOUNDED_NOISE_MULTIPLIERS = (1.0, 2.0)
MIN_TEMPERATURES = (0.5, 0.75, 0.9, 1.0)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--npz_model", default=None, help="A pool model trained on --npz_path.")
    parser.add_argument("--npz_path", default=None)
    parser.add_argument("--csv_model", default=None, help="A pool model trained on --csv_path.")
    parser.add_argument("--csv_path", default=None)
    parser.add_argument("--digits_model", default=None, help="The main job's output (embedded digits).")
    parser.add_argument(
        "--overconfident_npz_model",
        default=None,
        help="A model of --npz_path whose fitted temperature softens (e.g. the tutorial's 50-label run): reported "
        "only, to check that the chosen rule still applies a temperature where one helps.",
    )
    parser.add_argument("--data_seed", type=int, default=0, help="The models' train_joint.py --seed.")
    parser.add_argument("--num_subsets", type=int, default=20, help="Reported subsets per pool model.")
    parser.add_argument("--num_selection_subsets", type=int, default=40, help="Subsets per model to choose the rule.")
    parser.add_argument("--worse_by", type=float, default=0.005, help="An ECE rise beyond this counts as worse.")
    parser.add_argument("--max_share_worse", type=float, default=0.10)
    parser.add_argument("--output", default="benchmarks/results/calibration.json")
    args = parser.parse_args(argv)
    # each model is scored on the data it was trained on: checked here, before any logits are computed
    for model, path in (("npz_model", "npz_path"), ("overconfident_npz_model", "npz_path"), ("csv_model", "csv_path")):
        if getattr(args, model) and not getattr(args, path):
            parser.error(f"--{model} {getattr(args, model)} needs --{path}, the data it was trained on.")
    for path, models in (("npz_path", ("npz_model", "overconfident_npz_model")), ("csv_path", ("csv_model",))):
        if getattr(args, path) and not any(getattr(args, model) for model in models):
            parser.error(f"--{path} is the data of --{' / --'.join(models)}: pass the model too, or drop it.")
    if not (args.npz_model or args.csv_model):
        given = " (--digits_model is not one: it is reported only)" if args.digits_model else ""
        parser.error(f"the rule is chosen on the pools of --npz_model and --csv_model: pass at least one{given}.")
    return args


def model_logits(model_path: str, seed: int, npz_path=None, csv_path=None) -> dict:
    """Raw logits of the model's validation hold-out, its extra pool images (`.npz` `val`) and its test split."""
    pipe = JointDiffusionPipeline.from_pretrained(model_path)  # a latent pipeline classifies its VAE's encodings
    pipe.unet.eval()
    preprocessor = pipe.image_preprocessor
    dataset = load_joint_dataset(npz_path=npz_path, csv_path=csv_path, seed=seed)
    _, validation = holdout_split(dataset.train, VALIDATION_FRACTION, seed)  # what train_joint.py calibrated on
    splits = {"validation": validation, "test": dataset.eval}
    if npz_path:
        splits["extra"] = load_joint_dataset(npz_path=npz_path, eval_split="val", seed=seed).eval
    out = {"multi_label": pipe.unet.is_multi_label}
    for name, split in splits.items():
        images, labels = dataset_to_tensors(split, preprocessor)
        out[name] = (pipe.classifier_logits(images, batch_size=256), labels)
    pool = [out["validation"]] + ([out["extra"]] if "extra" in out else [])
    out["pool"] = (torch.cat([p[0] for p in pool]), torch.cat([p[1] for p in pool]))
    return out


def draw_subset(num_pool: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    size = int(rng.integers(SIZES[0], SIZES[1] + 1))
    return np.sort(rng.choice(num_pool, size=size, replace=False))


def candidate_temperatures(logits, labels, multi_label, seed) -> dict[str, float]:
    """The temperature every candidate rule applies to this validation split."""
    n = len(labels)
    fitted = fit_temperature(logits, labels, multi_label)
    temperatures = {"always": fitted, "never": 1.0}
    for n0 in SHRINKAGE_SIZES:  # log T shrunk towards 0 with weight n / (n + n0)
        temperatures[f"shrink_n0={n0}"] = math.exp(math.log(fitted) * n / (n + n0))
    for z in NOISE_MULTIPLIERS:
        decision = calibrate_temperature(
            logits, labels, multi_label, seed=seed, noise_multiplier=z, min_temperature=MIN_FITTED_TEMPERATURE
        )
        temperatures[f"cv_z={z:g}"] = decision.temperature
    for z in BOUNDED_NOISE_MULTIPLIERS:
        for bound in MIN_TEMPERATURES:
            decision = calibrate_temperature(
                logits, labels, multi_label, seed=seed, noise_multiplier=z, min_temperature=bound
            )
            temperatures[f"cv_z={z:g},min_t={bound:g}"] = decision.temperature
    return temperatures


def score_rules(runs: list[dict], worse_by: float) -> dict[str, dict]:
    """Per rule: share of runs whose ECE rose by more than `worse_by`, and mean ECE (uncalibrated for reference)."""
    scores = {}
    for rule in runs[0]["ece"]:
        ece = np.array([r["ece"][rule] for r in runs])
        before = np.array([r["ece_uncalibrated"] for r in runs])
        scores[rule] = {
            "share_worse_ece": float(np.mean(ece > before + worse_by)),
            "mean_ece": float(ece.mean()),
            "share_applied": float(np.mean([r["temperature"][rule] != 1.0 for r in runs])),
        }
    return scores


def evaluate_split(logits, labels, multi_label, seed, target, rules=None) -> dict:
    """Temperatures of the rules on (logits, labels) and the ECE each gives on `target` (logits, labels)."""
    temperatures = candidate_temperatures(logits, labels, multi_label, seed)
    if rules is not None:
        temperatures = {k: v for k, v in temperatures.items() if k in rules}
    target_logits, target_labels = target
    return {
        "num_validation": len(labels),
        "temperature": temperatures,
        "ece_uncalibrated": calibration_error(target_logits, target_labels, multi_label),
        "ece": {k: calibration_error(target_logits / t, target_labels, multi_label) for k, t in temperatures.items()},
    }


def selection_runs(models: dict, num_subsets: int) -> list[dict]:
    """Validation side only: subsets of each pool, scored on the rest of the pool."""
    runs = []
    for name, data in models.items():
        logits, labels = data["pool"]
        for seed in range(1000, 1000 + num_subsets):
            subset = draw_subset(len(labels), seed)
            rest = np.setdiff1d(np.arange(len(labels)), subset)
            run = evaluate_split(
                logits[subset], labels[subset], data["multi_label"], seed, (logits[rest], labels[rest])
            )
            runs.append({"model": name, "seed": seed, **run})
    return runs


def choose_rule(scores: dict, max_share_worse: float) -> str:
    """Among the rules that fit a temperature ("never" is the reference: it gives up every large-split gain)."""
    safe = [rule for rule, s in scores.items() if s["share_worse_ece"] <= max_share_worse and rule != "never"]
    return min(safe, key=lambda rule: (scores[rule]["mean_ece"], rule))


def large_split_difference(models: dict, rule: str, seed: int, num_draws: int = 2000) -> dict:
    """
    Test ECE of the chosen rule minus that of always applying the fitted temperature, on the `.npz` model's own
    validation hold-out: the difference and its bootstrap 95 % interval over test images.
    """
    if "pneumoniamnist" not in models:
        return {}
    data = models["pneumoniamnist"]
    temperatures = candidate_temperatures(*data["validation"], data["multi_label"], seed)
    logits, labels = data["test"]
    rng = np.random.default_rng(seed)

    def difference(index):
        chosen = calibration_error(logits[index] / temperatures[rule], labels[index], data["multi_label"])
        return chosen - calibration_error(logits[index] / temperatures["always"], labels[index], data["multi_label"])

    draws = [difference(torch.as_tensor(rng.integers(0, len(labels), len(labels)))) for _ in range(num_draws)]
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"difference": difference(torch.arange(len(labels))), "bootstrap_95": [float(low), float(high)]}


def main():
    args = parse_args()
    config = print_run_config(args)
    start = time.perf_counter()
    models = {}
    if args.npz_model:
        models["pneumoniamnist"] = model_logits(args.npz_model, args.data_seed, npz_path=args.npz_path)
    if args.csv_model:
        models["mnist5k"] = model_logits(args.csv_model, args.data_seed, csv_path=args.csv_path)
    digits = model_logits(args.digits_model, args.data_seed) if args.digits_model else None

    selection = selection_runs(models, args.num_selection_subsets)
    selection_scores = score_rules(selection, args.worse_by)
    rule = choose_rule(selection_scores, args.max_share_worse)
    print(json.dumps({"selection": selection_scores, "chosen": rule}, indent=2), flush=True)

    # validation side too: the .npz model's own hold-out (train_joint.py's calibration split) scored on the val split
    large_selection = {}
    if "pneumoniamnist" in models:
        data = models["pneumoniamnist"]
        large_selection = evaluate_split(*data["validation"], data["multi_label"], args.data_seed, data["extra"])

    rules = ("always", rule)
    runs = []
    for name, data in models.items():
        logits, labels = data["pool"]
        for seed in range(args.num_subsets):
            subset = draw_subset(len(labels), seed)
            run = evaluate_split(logits[subset], labels[subset], data["multi_label"], seed, data["test"], rules)
            runs.append({"model": name, "seed": seed, **run})
    if digits is not None:  # the README's main job: its own validation hold-out, as train_joint.py calibrates
        run = evaluate_split(*digits["validation"], digits["multi_label"], args.data_seed, digits["test"], rules)
        runs.append({"model": "digits_main_job", "seed": args.data_seed, **run})
    test_scores = score_rules(runs, args.worse_by)

    large = {}
    if "pneumoniamnist" in models:
        data = models["pneumoniamnist"]
        for split in ("validation", "pool"):
            large[split] = evaluate_split(*data[split], data["multi_label"], args.data_seed, data["test"], rules)

    overconfident = {}
    if args.overconfident_npz_model:
        data = model_logits(args.overconfident_npz_model, args.data_seed, npz_path=args.npz_path)
        rules_and_old = (*rules, "cv_z=2")
        overconfident = evaluate_split(
            *data["validation"], data["multi_label"], args.data_seed, data["test"], rules_and_old
        )
        overconfident["model"] = args.overconfident_npz_model

    ece = np.array([r["ece"][rule] for r in runs])
    before = np.array([r["ece_uncalibrated"] for r in runs])
    result = {
        "small_validation_runs": len(runs),
        "share_worse_ece": float(np.mean(ece > before + args.worse_by)),
        "mean_ece_uncalibrated": float(before.mean()),
        "mean_ece_calibrated": float(ece.mean()),
        "commands": [],  # filled in by hand with the training commands and this one
        "rule": rule,
        "old_rule": {
            "share_worse_ece": test_scores["always"]["share_worse_ece"],
            "mean_ece_calibrated": test_scores["always"]["mean_ece"],
        },
        "test_scores": test_scores,
        "large_split_pneumoniamnist": large,
        "large_split_test_ece_difference": large_split_difference(models, rule, args.data_seed),
        "overconfident_model": overconfident,
        "selection": {
            "how": f"{args.num_selection_subsets} subsets of {SIZES[0]}-{SIZES[1]} images per pool model (seeds "
            "from 1000), each scored on the rest of the pool (never the test split); the rule with the lowest mean "
            f"ECE among those that fit a temperature with share_worse_ece <= {args.max_share_worse} ('never', "
            "applying no temperature at all, is scored as the reference but not chosen: it would give up every "
            "large-split gain).",
            "scores": selection_scores,
            "large_split_pneumoniamnist_validation_to_val_split": large_selection,
            "runs": selection,
        },
        "pools": {
            name: {
                "pool": len(data["pool"][1]),
                "validation": len(data["validation"][1]),
                "test": len(data["test"][1]),
            }
            for name, data in {**models, **({"digits_main_job": digits} if digits else {})}.items()
        },
        "runs": runs,
        "config": config,
        "wall_seconds": time.perf_counter() - start,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k not in ("runs", "selection", "config")}, indent=2))


if __name__ == "__main__":
    main()
