#!/usr/bin/env python
"""
Semi-supervised classification: Joint Diffusion against the same network trained on the labels alone.

    python benchmarks/benchmark_semi_supervised.py \
        --npz_path ../shared/data/pneumoniamnist/pneumoniamnist_balanced_28.npz \
        --budgets 50 all --seeds 0 1 2 --methods label_only sklearn joint --runs_dir bench-runs/pneumonia

For every label budget (a number of labeled training images, stratified, or `all`) and seed, each method is trained
on the same labeled subset (`mask_labels` with that seed) and scored on the evaluation split:
- `joint`: `examples/train_joint.py` as a user runs it (diffusion loss on every image, cross-entropy on the labeled
  ones, mixed batches);
- `joint_fixmatch`: the same with plain FixMatch pseudo-labels (`--fixmatch --no-fixmatch_distribution_alignment`);
- `joint_fixmatch_da`: the same with FixMatch and its distribution alignment (`--fixmatch`, the script's default);
- `label_only`: the same script, encoder and head with `--diffusion_loss_weight 0 --classifier_loss_weight 1`, i.e.
  the joint model's classifier trained on the labeled images alone, same steps, batch and schedule;
- `sklearn`: logistic regression on the raw pixels of the labeled images (scikit-learn), read as `train_joint.py`
  reads them: the flags after `--` (for example `--intensity_normalization` or `--eval_split`) reach it too.

Each training run is a subprocess writing to `<runs_dir>/<method>-<budget>-seed<seed>/`; a run whose
`eval_results.json` exists is not repeated, so the benchmark can be stopped and continued; each folder records the
flags its run was made with (`benchmark_run_flags.json`), and one made with other flags (another `--max_train_steps`,
flags after `--`, ...) is refused with the differing flags rather than reported under the new ones. The summary
(mean and standard deviation over seeds of ROC AUC, balanced accuracy and accuracy) is printed as a Markdown table and
written, with every run's numbers, to `<runs_dir>/summary.json`; `--plot` also draws balanced accuracy against labels.

`--import_results` adds the runs and summary of an earlier `summary.json`, such as the committed
`benchmarks/results/semi_supervised_*.json`: its runs join those found in `--runs_dir` (a run found there wins), and
a cell (method and budget) with no run at all takes that file's summary entry. This is how results survive the loss of
a runs folder: commit the `summary.json` a run writes, and later runs extend it.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from benchmark_utils import check_reused_run, library_versions, save_figure, without_output_dir, write_run_flags
from diffusers_joint.data import (
    ImagePreprocessor,
    intensity_normalization_from_args,
    is_labeled,
    load_joint_dataset_from_args,
    mask_labels_from_args,
    split_validation_from_args,
)
from diffusers_joint.evaluation import compute_classification_metrics, dataset_to_tensors

ROOT = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = ROOT / "examples" / "train_joint.py"
METHODS = ("joint", "joint_fixmatch", "joint_fixmatch_da", "label_only", "sklearn")
METHOD_FLAGS = {
    "joint": [],
    "joint_fixmatch": ["--fixmatch", "--no-fixmatch_distribution_alignment"],
    "joint_fixmatch_da": ["--fixmatch", "--fixmatch_distribution_alignment"],
    "label_only": ["--diffusion_loss_weight", "0", "--classifier_loss_weight", "1"],
}
REPORTED = ("roc_auc", "balanced_accuracy", "accuracy", "ece", "ece_uncalibrated")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--npz_path", default=None)
    parser.add_argument("--csv_path", default=None)
    parser.add_argument("--budgets", nargs="+", default=["50", "all"], help="Numbers of labeled images, or `all`.")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=["label_only", "sklearn", "joint"])
    parser.add_argument("--max_train_steps", type=int, default=1000)
    parser.add_argument("--train_batch_size", type=int, default=32)
    parser.add_argument("--runs_dir", default="bench-runs/semi-supervised")
    parser.add_argument("--plot", default=None, help="Write a PNG of balanced accuracy against labels here.")
    parser.add_argument(
        "--imbalance_ratio",
        type=float,
        default=None,
        help="With --npz_path: train on an imbalanced copy (written to --runs_dir) that keeps every image of the "
        "last class and drops images of the others until each has 1/R as many; the test split is untouched.",
    )
    parser.add_argument("--only_summary", action="store_true", help="Summarise the runs that exist; train nothing.")
    parser.add_argument(
        "--import_results",
        default=None,
        help="An earlier summary.json whose runs (and summary cells without runs) join this summary.",
    )
    parser.add_argument(
        "train_args", nargs=argparse.REMAINDER, help="After `--`: extra flags for every train_joint.py run."
    )
    args = parser.parse_args(argv)
    args.train_args = [a for a in args.train_args if a != "--"]
    return args


def make_imbalanced_npz(npz_path: str, ratio: float, out_path: Path, seed: int = 0) -> Path:
    """Copy of a MedMNIST-style file whose train and val splits keep the last class whole and 1/ratio of the others."""
    rng = np.random.default_rng(seed)
    with np.load(npz_path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    for split in ("train", "val"):
        if f"{split}_labels" not in arrays:
            continue
        labels = arrays[f"{split}_labels"].reshape(-1)
        majority = labels.max()
        keep = [np.flatnonzero(labels == majority)]
        for c in np.unique(labels[labels != majority]):
            members = np.flatnonzero(labels == c)
            count = min(len(members), int(round(len(keep[0]) / ratio)))
            keep.append(rng.choice(members, size=count, replace=False))
        keep = np.sort(np.concatenate(keep))
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = (
            arrays[f"{split}_images"][keep],
            arrays[f"{split}_labels"][keep],
        )
    np.savez_compressed(out_path, **arrays)
    return out_path


def data_flags(args) -> list[str]:
    flags = []
    if args.npz_path:
        flags += ["--npz_path", args.npz_path]
    if args.csv_path:
        flags += ["--csv_path", args.csv_path]
    return flags


def budget_flags(budget: str) -> list[str]:
    return [] if budget == "all" else ["--num_labeled", budget]


def train_flags(args, method: str, budget: str, seed: int, run_dir: Path) -> list[str]:
    """The `train_joint.py` flags of one run, the extra flags after `--` last."""
    return [
        *data_flags(args), *budget_flags(budget), *METHOD_FLAGS[method],
        "--seed", str(seed), "--max_train_steps", str(args.max_train_steps),
        "--train_batch_size", str(args.train_batch_size), "--validation_steps", "0", "--checkpointing_steps", "0",
        "--report_to", "none", "--overwrite_output_dir", "--output_dir", str(run_dir), *args.train_args,
    ]  # fmt: skip


def run_record(args, method: str, budget: str, seed: int) -> dict:
    """
    The flags a run's results depend on, as its folder records them: the `train_joint.py` command line (for the
    pixel baseline the data, budget and seed flags and those after `--`), and `--imbalance_ratio`.
    """
    if method == "sklearn":
        flags = [*data_flags(args), *budget_flags(budget), "--seed", str(seed), *args.train_args]
    else:
        flags = without_output_dir(train_flags(args, method, budget, seed, Path("unused")))
    return {"train_joint_flags": flags, "imbalance_ratio": args.imbalance_ratio}


def train_run(args, method: str, budget: str, seed: int, run_dir: Path) -> dict:
    command = [sys.executable, str(TRAIN_SCRIPT), *train_flags(args, method, budget, seed, run_dir)]
    print("+", " ".join(command), flush=True)
    start = time.perf_counter()
    with open(run_dir.with_suffix(".log"), "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    results = json.loads((run_dir / "eval_results.json").read_text())
    results["wall_seconds"] = time.perf_counter() - start
    (run_dir / "eval_results.json").write_text(json.dumps(results, indent=2))
    return results


def train_joint_arguments(args, budget: str, seed: int) -> argparse.Namespace:
    """What `train_joint.py` parses for the joint run of this budget and seed, extra flags included."""
    spec = importlib.util.spec_from_file_location("train_joint", TRAIN_SCRIPT)
    train_joint = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_joint)
    return train_joint.parse_args(train_flags(args, "joint", budget, seed, Path(args.runs_dir) / "unused"))


def sklearn_run(args, budget: str, seed: int) -> dict:
    """
    Logistic regression on the pixels of exactly the labeled images the other methods train on, read as
    `train_joint.py` reads them (its data flags after `--`, such as `--intensity_normalization` or `--eval_split`,
    included) and scored on the same evaluation split.
    """
    train_args = train_joint_arguments(args, budget, seed)
    dataset = load_joint_dataset_from_args(train_args)
    train, _ = split_validation_from_args(train_args, dataset)
    train = mask_labels_from_args(train, train_args)
    normalization = intensity_normalization_from_args(train_args)
    preprocessor = ImagePreprocessor(dataset.image_size, dataset.num_channels, normalization=normalization)
    keep = np.flatnonzero(is_labeled(train["label"]))
    images, labels = dataset_to_tensors(train.select(keep), preprocessor)
    test_images, test_labels = dataset_to_tensors(dataset.eval, preprocessor)
    start = time.perf_counter()
    model = LogisticRegression(max_iter=2000, C=1.0).fit(images.flatten(1).numpy(), labels.numpy())
    probs = model.predict_proba(test_images.flatten(1).numpy())
    full = np.zeros((len(probs), dataset.num_classes))
    full[:, model.classes_] = probs  # a tiny budget may miss a class
    results = compute_classification_metrics(test_labels.numpy(), full)
    results["wall_seconds"] = time.perf_counter() - start
    return results


def merge_runs(runs: list[dict], imported: list[dict]) -> list[dict]:
    """The runs of this folder plus the imported ones it does not have (same method, budget and seed)."""
    have = {(r["method"], r["budget"], r["seed"]) for r in runs}
    return runs + [r for r in imported if (r["method"], r["budget"], r["seed"]) not in have]


def summarise(runs: list[dict], budgets, methods, imported_summary: dict | None = None) -> tuple[dict, str]:
    """Mean and standard deviation over seeds per cell; a cell with no run takes `imported_summary`'s entry."""
    header = "| labels | method | seeds | ROC AUC | balanced accuracy | accuracy | ECE | ECE before calibration |"
    summary, lines = {}, [header + " minutes per run |"]
    lines.append("| --- " * 9 + "|")
    for budget in budgets:
        for method in methods:
            key = f"{method}/{budget}"
            rows = [r for r in runs if r["budget"] == budget and r["method"] == method]
            rows.sort(key=lambda r: r["seed"])
            if rows:
                entry = {"seeds": [r["seed"] for r in rows]}
                for name in (*REPORTED, "wall_seconds"):
                    values = np.array([r["results"].get(name, np.nan) for r in rows], dtype=float)
                    spread = values.std(ddof=1) if len(values) > 1 else 0.0
                    entry[name] = {"mean": float(values.mean()), "std": float(spread)}
            elif imported_summary and key in imported_summary:
                entry = imported_summary[key]
            else:
                continue
            summary[key] = entry
            cells = [f"{entry[k]['mean']:.3f} ± {entry[k]['std']:.3f}" if k in entry else "n/a" for k in REPORTED]
            seconds = entry.get("wall_seconds", {}).get("mean")  # imported cells may carry no timing
            minutes = f"{seconds / 60:.1f}" if seconds is not None and np.isfinite(seconds) else "n/a"
            seeds = len(entry["seeds"])
            lines.append(f"| {budget} | {method} | {seeds} | " + " | ".join(cells) + f" | {minutes} |")
    return summary, "\n".join(lines)


def plot(summary: dict, budgets, methods, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numeric = [b for b in budgets if b != "all"]
    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=100)
    for index, method in enumerate(methods):
        color = f"C{index}"
        xs, ys, es = [], [], []
        for budget in numeric:
            entry = summary.get(f"{method}/{budget}")
            if entry:
                xs.append(int(budget))
                ys.append(entry["balanced_accuracy"]["mean"])
                es.append(entry["balanced_accuracy"]["std"])
        if xs:
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, color=color, label=method)
        if f"{method}/all" in summary:  # every label: a dotted line of the same colour
            label = None if xs else f"{method} (all labels)"
            ax.axhline(summary[f"{method}/all"]["balanced_accuracy"]["mean"], color=color, linestyle=":", label=label)
    ax.set_xscale("log")
    ticks = sorted({int(b) for b in numeric})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    save_figure(fig, ax, "labeled training images (dotted: all labels)", "balanced accuracy (test)", title, path)


def main():
    args = parse_args()
    if bool(args.npz_path) == bool(args.csv_path):
        raise SystemExit("Give exactly one of --npz_path or --csv_path.")
    print(json.dumps(vars(args)), flush=True)
    runs_dir = Path(args.runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    if args.imbalance_ratio:
        if not args.npz_path:
            raise SystemExit("--imbalance_ratio needs --npz_path.")
        args.npz_path = str(make_imbalanced_npz(args.npz_path, args.imbalance_ratio, runs_dir / "imbalanced.npz"))
    runs = []
    for budget in args.budgets:
        for seed in args.seeds:
            for method in args.methods:
                run_dir = runs_dir / f"{method}-{budget}-seed{seed}"
                result_file = run_dir / "eval_results.json"
                record = run_record(args, method, budget, seed)
                if result_file.exists():  # reused: only when made with the same flags
                    check_reused_run(run_dir, record)
                elif method == "sklearn" and not args.only_summary:
                    run_dir.mkdir(exist_ok=True)
                    result_file.write_text(json.dumps(sklearn_run(args, budget, seed), indent=2))
                    write_run_flags(run_dir, record)
                elif not args.only_summary:
                    train_run(args, method, budget, seed, run_dir)
                    write_run_flags(run_dir, record)
                if result_file.exists():
                    results = json.loads(result_file.read_text())
                    runs.append({"method": method, "budget": budget, "seed": seed, "results": results})
                    reported = [k for k in REPORTED if results.get(k) is not None]  # null: undefined (was NaN)
                    print(f"{method:>15} {budget:>5} seed {seed}: " + ", ".join(
                        f"{k}={results[k]:.4f}" for k in reported), flush=True)  # fmt: skip
    imported = json.loads(Path(args.import_results).read_text()) if args.import_results else {}
    runs = merge_runs(runs, imported.get("runs", []))
    summary, table = summarise(runs, args.budgets, args.methods, imported.get("summary"))
    print(table)
    (runs_dir / "summary.json").write_text(
        json.dumps({"config": vars(args), "versions": library_versions(), "summary": summary, "runs": runs}, indent=2)
    )
    if args.plot:
        plot(summary, args.budgets, args.methods, args.plot, Path(args.npz_path or args.csv_path).name)


if __name__ == "__main__":
    main()
