#!/usr/bin/env python
"""
Render the headline tables of docs/results.md from the committed results in benchmarks/results/.

    python benchmarks/make_results_page.py           # rewrite the tables of docs/results.md in place
    python benchmarks/make_results_page.py --check   # exit 1, naming the tables, if the page and the JSON disagree

Each table sits between `<!-- results-table: NAME -->` and `<!-- /results-table -->`; everything else on the page is
written by hand. tests/docs/test_results_page.py runs the check, so a headline number cannot go stale: change a
results file and the page must be regenerated with it.
"""

import argparse
import json
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
PAGE = ROOT / "docs" / "results.md"

MARKED_TABLE = re.compile(
    r"(?P<open><!-- results-table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(?P<close><!-- /results-table -->)", re.S
)
MINUS = "\u2212"  # the typographic minus of the hand-written pages


class Results:
    """The committed results files, each read once."""

    def __init__(self, results_dir: Path):
        self.results_dir = Path(results_dir)
        self._files: dict[str, dict] = {}

    def __call__(self, name: str) -> dict:
        if name not in self._files:
            path = self.results_dir / name
            if not path.is_file():
                raise FileNotFoundError(f"results file {path} not found: the results page is rendered from it")
            self._files[name] = json.loads(path.read_text(encoding="utf-8"))  # the summaries hold NaN for n/a
        return self._files[name]


# ------------------------------------------------------------------------------------------------ formatting


def number(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}".replace("-", MINUS)


def signed(value: float, digits: int = 1) -> str:
    """A difference with its sign; no sign for a tie."""
    text = f"{value:+.{digits}f}"
    return text[1:] if float(text) == 0 else text.replace("-", MINUS)


def mean_std(entry: dict) -> str:
    return f"{entry['mean']:.3f} ± {entry['std']:.3f}"


def significant(value: float) -> str:
    """Three significant digits: Fréchet distances and KIDs range from 0.03 to 30 across the data sets."""
    return f"{value:#.3g}"


def ratio_range(values: list[float]) -> str:
    return f"{min(values):.2f}–{max(values):.2f}× ({', '.join(f'{v:.2f}' for v in values)})"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def flag(command: str, name: str, default: str) -> str:
    """The value of `--name` in a recorded command line (the last one, as argparse keeps), or `default`."""
    words, value = shlex.split(command), default
    for i, word in enumerate(words[:-1]):
        if word == f"--{name}":
            value = words[i + 1]
    return value


def training(command: str) -> str:
    labels = flag(command, "num_labeled", "all")
    steps, batch, seed = (flag(command, n, "?") for n in ("max_train_steps", "train_batch_size", "seed"))
    return f"{labels} labels, {steps} × {batch}, seed {seed}"


def guidance_setting(run: dict) -> str:
    # runs since GuidanceConfig record it as one "guidance" entry; older ones as flat guidance_* keys
    guidance = run.get("guidance") or {
        k.removeprefix("guidance_"): v for k, v in run.items() if k.startswith("guidance_")
    }
    views = guidance.get("augmentation") or "none"
    interval = guidance.get("cache_interval", 1)
    parts = [f"`{guidance['method']}` {guidance['scale']:g}", f"`{views}` views"]
    parts.append("direction every step" if interval == 1 else f"direction every {interval}nd step")
    parts.append(f"T = {guidance.get('temperature', 1.0):g}")
    if "strength" in run:
        region = "region kept" if run.get("mask_image") == "auto" else "every pixel free"
        parts += [f"strength {run['strength']:g}", region]
    parts.append(f"DDPM {run['num_inference_steps']}")
    return ", ".join(parts)


# ------------------------------------------------------------------------------------------------ the tables

SEMI_SUPERVISED_FILES = {
    "MNIST-5k": "semi_supervised_mnist.json",
    "PneumoniaMNIST": "semi_supervised_pneumonia.json",
    "Fashion-MNIST (2000 steps)": "semi_supervised_fashion.json",
}
BUDGETS = ("10", "50", "250", "all")


def measured_budgets(summary: dict) -> list[str]:
    """The label budgets of `BUDGETS` a semi-supervised summary holds (Fashion-MNIST was run with 50 labels only)."""
    return [budget for budget in BUDGETS if f"joint/{budget}" in summary]


def semi_supervised(results: Results) -> str:
    rows = []
    for data, file in SEMI_SUPERVISED_FILES.items():
        summary = results(file)["summary"]
        for budget in measured_budgets(summary):
            entries = [
                summary[f"{method}/{budget}"]["balanced_accuracy"] for method in ("joint", "label_only", "sklearn")
            ]
            best = max(round(entry["mean"], 3) for entry in entries)  # ties as printed are all bold
            cells = [f"**{mean_std(e)}**" if round(e["mean"], 3) == best else mean_std(e) for e in entries]
            # the lead from the printed means, so that it matches what a reader subtracts
            lead = 100 * (round(entries[0]["mean"], 3) - round(entries[1]["mean"], 3))
            rows.append([data, budget, *cells, signed(lead)])
    header = [
        "data",
        "labels",
        "joint",
        "same network, labels only",
        "logistic regression on pixels",
        "joint lead, points",
    ]
    return markdown_table(header, rows)


GENERATION_MODELS = [
    ("MNIST-5k", "generation_mnist.json", "mn50-default-4000", "joint"),
    ("MNIST-5k", "generation_mnist.json", "mn-plain-4000", "plain UNet"),
    ("MNIST-5k", "generation_mnist.json", "mn50-default-4000-s1", "joint"),
    ("MNIST-5k", "generation_mnist.json", "mn-plain-4000-s1", "plain UNet"),
    ("PneumoniaMNIST", "generation_pneumonia.json", "pn-default-2000", "joint"),
    ("PneumoniaMNIST", "generation_pneumonia.json", "pn-plain-2000", "plain UNet"),
]


def generation(results: Results) -> str:
    rows = []
    for data, file, key, model in GENERATION_MODELS:
        entry = results(file)["models"][key]
        run = entry["samplers"]["ddpm:100"]
        distances = [significant(run["frechet_distance"]), significant(run["kid_mean"])]
        quality = [f"{run['precision']:.3f}", f"{run['recall']:.3f}"]
        rows.append([data, training(entry["train_command"]), model, f"{run['num_generated']:,}", *distances, *quality])
    header = ["data", "training", "model", "samples", "Fréchet distance ↓", "KID ↓", "precision", "recall"]
    return markdown_table(header, rows)


GUIDED_GENERATION_RUNS = [("MNIST-5k, all labels, 1000 × 32", "mnist")]


def guided_generation(results: Results) -> str:
    rows = []
    for model, key in GUIDED_GENERATION_RUNS:
        run = results("explanations.json")["guidance"][key]
        rows.append(
            [model, guidance_setting(run), f"{run['num_generated']:,}",
             f"**{run['reference_conditional_accuracy']:.3f}** ({run['unguided_reference_conditional_accuracy']:.3f})",
             f"{run['model_conditional_accuracy']:.3f}",
             f"{run['precision']:.3f} ({run['precision'] / run['unguided_precision']:.2f}×)",
             f"{run['recall']:.3f} ({run['unguided_recall']:.3f})", f"{run['guided_step_ratio']:.2f}×"]
        )  # fmt: skip
    header = ["model", "guidance (the defaults)", "samples", "judged as requested by the reference network (unguided)",
              "by the model", "precision (× unguided)", "recall (unguided)", "guided / unguided step"]  # fmt: skip
    return markdown_table(header, rows)


COUNTERFACTUAL_RUNS = [
    ("PneumoniaMNIST, 50 labels, 1000 × 32", "pneumonia_50_labels", "defaults"),
    ("PneumoniaMNIST, 50 labels, 1000 × 32", "pneumonia", "for X-rays"),
    ("MNIST-5k, all labels, 1000 × 32", "mnist", "for 28 px digits"),
    ("8×8 digits, the README's model", "digits_8x8", "defaults"),
]


def counterfactuals(results: Results) -> str:
    rows = []
    for model, key, use in COUNTERFACTUAL_RUNS:
        run = results("explanations.json")["counterfactuals"][key]
        rows.append(
            [model, f"{use}: {guidance_setting(run)}", str(run["n"]), f"{run['validity_model']:.3f}",
             f"**{run['validity_reference']:.3f}**", f"{run['l1']:.3f}", f"{run['localization']:.2f}"]
        )  # fmt: skip
    header = ["model", "setting", "test images", "validity: model", "validity: reference network", "mean L1",
              "localization"]  # fmt: skip
    return markdown_table(header, rows)


FORWARD, PLAIN_STEP = "a full UNet forward", "a plain `UNet2DModel` step"
COST_RATIOS = [
    ("encoder-only pass (`encode`)", "encoder_only / full_forward", FORWARD),
    ("`classify()`", "classify / full_forward", FORWARD),
    ("joint training step, no labeled image in the batch", "joint_step_0pct / plain_step", PLAIN_STEP),
    ("joint training step, 25 % labeled", "joint_step_25pct / plain_step", PLAIN_STEP),
    ("joint training step, every image labeled", "joint_step_100pct / plain_step", PLAIN_STEP),
    ("guided sampling step, the default (`x0`, `medium` views, direction every 2nd step)",
     "guided_x0_medium_views_step / unguided_step", "an unguided step"),
    ("the same, direction at every step", "guided_x0_medium_views_every_step / unguided_step", "an unguided step"),
    ("`x0` guidance without views", "guided_x0_step / unguided_step", "an unguided step"),
    ("`noisy` guidance", "guided_noisy_step / unguided_step", "an unguided step"),
    ("`features` guidance", "guided_features_step / unguided_step", "an unguided step"),
]  # fmt: skip


def cost(results: Results) -> str:
    runs = results("explanations.json")["guidance_cache_validation"]["benchmark_cost_runs"]["ratios"]
    rows = [[what, ratio_range([run[key] for run in runs]), against] for what, key, against in COST_RATIOS]
    return markdown_table(["case", f"ratio, {len(runs)} runs", "against"], rows)


def limits(results: Results) -> str:
    """The measured cases where the joint model does no better than the simpler alternative."""
    rows = []
    for data, file in SEMI_SUPERVISED_FILES.items():
        summary = results(file)["summary"]
        for budget in measured_budgets(summary):
            joint, alone = (summary[f"{m}/{budget}"]["balanced_accuracy"] for m in ("joint", "label_only"))
            if round(joint["mean"], 3) <= round(alone["mean"], 3):
                rows.append(
                    [f"{data}, {budget} labels: balanced accuracy", mean_std(joint), mean_std(alone),
                     "the same network on the labels alone"]
                )  # fmt: skip
    six = results("seeds_pneumonia_50_2000_steps.json")["summary"]["seeds_0_5"]
    rows.append(
        ["PneumoniaMNIST, 50 labels, 2000 × 32, six seeds: balanced accuracy",
         *(mean_std(six[m]["test_balanced_accuracy"]) for m in ("joint", "label_only")),
         "the same network on the labels alone"]
    )  # fmt: skip
    shift = results("split_shift.json")
    pneumonia, mnist = shift["pneumoniamnist_balanced_28.npz"], shift["mnist_5k.csv.gz"]
    rows.append(
        ["PneumoniaMNIST: test X-rays told apart from the validation hold-out (ROC AUC, 0.5 = alike)",
         mean_std(pneumonia["validation_vs_test_roc_auc"]), mean_std(mnist["validation_vs_test_roc_auc"]),
         "the same on MNIST-5k"]
    )  # fmt: skip
    rows.append(
        ["PneumoniaMNIST: rank correlation of validation and test over the tuned recipes",
         number(pneumonia["recipe_ranking"]["spearman"]), number(mnist["recipe_ranking"]["spearman"]),
         "the same on MNIST-5k"]
    )  # fmt: skip
    site = results("semi_supervised_pneumonia_site_adaptation.json")["summary"]
    with_site, without = (site[k]["balanced_accuracy"] for k in ("joint + unlabeled test half", "joint"))
    rows.append(
        ["PneumoniaMNIST, 50 labels, plus 234 unlabeled X-rays of the test site: balanced accuracy",
         mean_std(with_site), mean_std(without), "the same seeds without them"]
    )  # fmt: skip
    for data, file, joint_key, plain_key in (
        ("MNIST-5k, seed 0", "generation_mnist.json", "mn50-default-4000", "mn-plain-4000"),
        ("MNIST-5k, seed 1", "generation_mnist.json", "mn50-default-4000-s1", "mn-plain-4000-s1"),
        ("PneumoniaMNIST", "generation_pneumonia.json", "pn-default-2000", "pn-plain-2000"),
    ):
        models = results(file)["models"]
        joint, plain = (models[k]["samplers"]["ddpm:100"]["frechet_distance"] for k in (joint_key, plain_key))
        rows.append([f"{data}: Fréchet distance of unguided samples ↓", significant(joint), significant(plain),
                     "the same UNet trained without the classifier"])  # fmt: skip
    guided = results("explanations.json")["guidance"]["mnist"]
    rows.append(["MNIST-5k: recall (variety) of guided samples", f"{guided['recall']:.3f}",
                 f"{guided['unguided_recall']:.3f}", "the same model's unguided samples"])  # fmt: skip
    runs = results("explanations.json")["guidance_cache_validation"]["benchmark_cost_runs"]["ratios"]
    labeled_steps = [run["joint_step_100pct / plain_step"] for run in runs]
    rows.append(["training step, every image labeled", ratio_range(labeled_steps), "1×", PLAIN_STEP])
    return markdown_table(["where", "diffusers-joint", "alternative", "the alternative is"], rows)


TABLES: dict[str, Callable[[Results], str]] = {
    "semi-supervised": semi_supervised,
    "generation": generation,
    "guided-generation": guided_generation,
    "counterfactuals": counterfactuals,
    "cost": cost,
    "limits": limits,
}


# ------------------------------------------------------------------------------------------------ the page


def render_tables(results_dir: Path = RESULTS_DIR) -> dict[str, str]:
    """Every headline table, as Markdown, from the results files in `results_dir`."""
    results = Results(results_dir)
    return {name: make(results) for name, make in TABLES.items()}


def fill_page(text: str, tables: dict[str, str]) -> str:
    """`text` with the body of every marked table replaced by its rendering; every table must be marked once."""
    seen = [match.group("name") for match in MARKED_TABLE.finditer(text)]
    unknown = sorted(set(seen) - set(tables))
    if unknown:
        raise ValueError(f"the page marks unknown tables {unknown}; known: {sorted(tables)}")
    missing = sorted(set(tables) - set(seen))
    if missing or len(seen) != len(set(seen)):
        raise ValueError(f"every table must be marked exactly once; missing {missing}, marked {seen}")
    return MARKED_TABLE.sub(lambda m: m.group("open") + tables[m.group("name")] + m.group("close"), text)


def stale_tables(text: str, tables: dict[str, str]) -> list[str]:
    """The names of the marked tables of `text` whose body differs from their rendering."""
    fill_page(text, tables)  # the same marker checks
    return [m.group("name") for m in MARKED_TABLE.finditer(text) if m.group("body") != tables[m.group("name")]]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--page", type=Path, default=PAGE)
    parser.add_argument("--results_dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--check", action="store_true", help="Change nothing; exit 1 if a table is stale.")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    text = args.page.read_text(encoding="utf-8")
    tables = render_tables(args.results_dir)
    if args.check:
        stale = stale_tables(text, tables)
        if stale:
            print(f"{args.page}: tables {stale} differ from {args.results_dir}; run {Path(__file__).name}")
            return 1
        print(f"{args.page}: every table matches {args.results_dir}")
        return 0
    args.page.write_text(fill_page(text, tables), encoding="utf-8")
    print(f"{args.page}: {len(tables)} tables written from {args.results_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
