#!/usr/bin/env python
"""
Learning curves: validation balanced accuracy against training steps, for the joint model and its baselines.

    python benchmarks/benchmark_learning_curve.py --npz_path fashion_mnist_10k.npz --eval_split val \
        --methods joint label_only --num_labeled 50 --seeds 0 --max_train_steps 2000 --validation_steps 250 \
        --runs_dir bench-runs/curves --output curves.json --plot curves.png

Each run is `examples/train_joint.py` with `--validation_steps`, which scores the classifier (EMA weights) on the
evaluation split every that many steps; the curve is read back from the run's log (`step N: eval/...`), and the last
point from its `eval_results.json`. Pass `--eval_split val` (or another split that is not the test split) while
choosing settings. One run with a cosine schedule over `--max_train_steps` is not the same as a shorter run at each of
its steps: the learning rate is still high mid-way, so compare curves of equal length, or separate runs, for budgets.
A run whose `eval_results.json` exists is not repeated; its folder records its flags (`benchmark_run_flags.json`), and
a run folder made with other flags is refused rather than reported under the new ones.
"""

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from benchmark_semi_supervised import METHOD_FLAGS
from benchmark_utils import check_reused_run, library_versions, save_figure, without_output_dir, write_run_flags

ROOT = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = ROOT / "examples" / "train_joint.py"
VALIDATION_LINE = re.compile(r"step (\d+): (eval/.*)$")
METRIC = re.compile(r"eval/(\w+)=([-+0-9.eE]+|nan)")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--npz_path", default=None)
    parser.add_argument("--csv_path", default=None)
    parser.add_argument("--eval_split", default=None, help="train_joint.py --eval_split (e.g. val).")
    parser.add_argument("--methods", nargs="+", choices=list(METHOD_FLAGS), default=["joint", "label_only"])
    parser.add_argument("--num_labeled", type=int, default=50)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--max_train_steps", type=int, default=2000)
    parser.add_argument("--validation_steps", type=int, default=250)
    parser.add_argument("--train_batch_size", type=int, default=32)
    parser.add_argument("--runs_dir", default="bench-runs/curves")
    parser.add_argument("--output", default=None, help="Write the curves to this JSON file.")
    parser.add_argument("--plot", default=None, help="Draw balanced accuracy against steps to this PNG.")
    parser.add_argument("--only_summary", action="store_true", help="Read the runs that exist; train nothing.")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="After `--`: extra flags for every run.")
    args = parser.parse_args(argv)
    args.train_args = [a for a in args.train_args if a != "--"]
    if bool(args.npz_path) == bool(args.csv_path):
        parser.error("Give exactly one of --npz_path or --csv_path.")
    return args


def read_curve(log_path: Path, results_path: Path | None = None) -> dict[str, list[float]]:
    """
    `{"step": [...], <metric>: [...]}` from a train_joint.py log's `step N: eval/<metric>=<value>, ...` lines, plus
    the last step from `eval_results.json` (calibrated metrics there; a temperature changes no decision, so balanced
    accuracy and ROC AUC are comparable along the curve).
    """
    points: dict[int, dict[str, float]] = {}
    for line in log_path.read_text(errors="replace").replace("\r", "\n").splitlines():
        match = VALIDATION_LINE.search(line)
        if match:
            points[int(match.group(1))] = {name: float(value) for name, value in METRIC.findall(match.group(2))}
    if results_path is not None and results_path.exists():
        results = json.loads(results_path.read_text())
        points[int(results["step"])] = {k: v for k, v in results.items() if isinstance(v, float)}
    if not points:
        raise ValueError(f"Found no validation line (`step N: eval/...`) in {log_path}: was --validation_steps set?")
    steps = sorted(points)
    names = sorted(set.intersection(*(set(points[s]) for s in steps)))
    return {"step": steps, **{name: [points[s][name] for s in steps] for name in names}}


def train_flags(args, method: str, seed: int, run_dir: Path) -> list[str]:
    """The `train_joint.py` flags of one run, the extra flags after `--` last."""
    return [
        *(["--npz_path", args.npz_path] if args.npz_path else ["--csv_path", args.csv_path]),
        *(["--eval_split", args.eval_split] if args.eval_split else []),
        "--num_labeled", str(args.num_labeled), *METHOD_FLAGS[method], "--seed", str(seed),
        "--max_train_steps", str(args.max_train_steps), "--train_batch_size", str(args.train_batch_size),
        "--validation_steps", str(args.validation_steps), "--checkpointing_steps", "0", "--report_to", "none",
        "--overwrite_output_dir", "--output_dir", str(run_dir), *args.train_args,
    ]  # fmt: skip


def train_run(args, method: str, seed: int, run_dir: Path) -> None:
    command = [sys.executable, str(TRAIN_SCRIPT), *train_flags(args, method, seed, run_dir)]
    print("+", " ".join(command), flush=True)
    with open(run_dir.with_suffix(".log"), "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})


def plot(curves: dict, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=100)
    for name, curve in curves.items():
        ax.plot(curve["step"], curve["balanced_accuracy"], marker="o", markersize=3, label=name)
    save_figure(fig, ax, "training steps (batch 32)", "balanced accuracy (validation)", title, path)


def main(argv=None):
    args = parse_args(argv)
    runs_dir = Path(args.runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    curves = {}
    for seed in args.seeds:
        for method in args.methods:
            run_dir = runs_dir / f"{method}-{args.num_labeled}-seed{seed}"
            record = {"train_joint_flags": without_output_dir(train_flags(args, method, seed, run_dir))}
            if (run_dir / "eval_results.json").exists():  # reused: only when made with the same flags
                check_reused_run(run_dir, record)
            elif not args.only_summary:
                train_run(args, method, seed, run_dir)
                write_run_flags(run_dir, record)
            if run_dir.with_suffix(".log").exists():
                curves[f"{method}/{args.num_labeled}/seed{seed}"] = read_curve(
                    run_dir.with_suffix(".log"), run_dir / "eval_results.json"
                )
    for name, curve in curves.items():
        points = ", ".join(f"{s}: {a:.3f}" for s, a in zip(curve["step"], curve["balanced_accuracy"]))
        print(f"{name}: {points}")
    if args.output:
        Path(args.output).write_text(
            json.dumps({"config": vars(args), "versions": library_versions(), "curves": curves}, indent=2)
        )
    if args.plot:
        plot(curves, args.plot, Path(args.npz_path or args.csv_path).name)


if __name__ == "__main__":
    main()
