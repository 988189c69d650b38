# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Markdown tables of evaluation results, for model cards and result pages, and the results' JSON file."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

METRIC_DESCRIPTIONS = {
    "num_examples": "Images",
    "num_real": "Real images",
    "num_generated": "Generated images",
    "num_counterfactuals": "Explained images",
    "change_threshold": "Change threshold, [-1, 1] units",
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "macro_f1": "Macro F1",
    "roc_auc": "ROC AUC",
    "ece": "Expected calibration error (lower is better)",
    "subset_accuracy": "Subset accuracy",
    "hamming_accuracy": "Hamming accuracy",
    "frechet_distance": "Frechet distance to real images, reference features (lower is better)",
    "kid_mean": "KID, reference features (lower is better)",
    "kid_std": "KID standard deviation over subsets",
    "precision": "Precision (share of samples on the real manifold)",
    "recall": "Recall (share of real images covered by the samples)",
    "conditional_accuracy": "Class-guided samples judged as requested by the reference network",
    "conditional_accuracy_model": "Class-guided samples judged as requested by the joint model",
    "backbone_frechet_distance": "Frechet distance to real images, transformers backbone features (lower is better)",
    "backbone_kid_mean": "KID, transformers backbone features (lower is better)",
    "backbone_precision": "Precision on transformers backbone features",
    "backbone_recall": "Recall on transformers backbone features",
    "validity_model": "Counterfactuals predicted as the target by the joint model",
    "validity_reference": "Counterfactuals predicted as the target by the reference network",
    "flip_rate_model": "Flip rate under the joint model (inputs not already the target)",
    "already_target_model": "Inputs the joint model already assigned to the target",
    "already_target_reference": "Inputs the reference network already assigned to the target",
    "l1": "Mean absolute change per pixel, [-1, 1] units",
    "l2": "Root mean squared change per pixel, [-1, 1] units",
    "changed_pixel_fraction": "Share of pixels changed by more than the threshold",
    "frechet_distance_to_target_class": "Frechet distance to real images of the target class (lower is better)",
    "guidance": "Guidance settings (GuidanceConfig)",
}

# Dict-valued settings shown in one row, as `field=value` pairs (other nested dicts are left to the JSON file).
SETTINGS_DICTS = ("guidance",)

SECTION_TITLES = {
    "classification": "Classification (joint model)",
    "reference_classifier": "Reference network (independent judge)",
    "generation": "Generation",
    "counterfactuals": "Counterfactuals",
    "seconds": "Wall time (seconds)",
}


def format_value(value: Any) -> str:
    """Numbers with 4 decimals (`n/a` for NaN), dicts as `key=value` pairs, everything else as text."""
    if isinstance(value, dict):
        return ", ".join(f"{key}={format_value(item)}" for key, item in value.items())
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def metrics_table(metrics: dict[str, Any]) -> str:
    """
    A two-column Markdown table (`metric`, `value`) of the scalar entries of `metrics` and of the settings dicts
    (`SETTINGS_DICTS`, e.g. the guidance config); other nested dicts and lists (per class values, confusion
    matrices) are left to the JSON file.
    """
    rows = [
        f"| {METRIC_DESCRIPTIONS[key] + ' ' if key in METRIC_DESCRIPTIONS else ''}(`{key}`) | {format_value(value)} |"
        for key, value in metrics.items()
        if not isinstance(value, (dict, list, tuple)) or (key in SETTINGS_DICTS and isinstance(value, dict))
    ]
    return "| metric | value |\n| --- | --- |\n" + "\n".join(rows)


def results_to_markdown(results: dict[str, Any], title: str = "Evaluation results") -> str:
    """
    Render evaluation results as Markdown: one table per section (`classification`, `reference_classifier`,
    `generation`, `counterfactuals`, then any other dict-valued entry), preceded by the scalar top-level entries.

    Args:
        results (`dict`):
            Results as written to `eval_results.json` by `examples/evaluate_joint.py`.
        title (`str`, *optional*, defaults to `"Evaluation results"`):
            The level-1 heading.

    Returns:
        `str`: the Markdown text.
    """
    lines = [f"# {title}", ""]
    header = {k: v for k, v in results.items() if not isinstance(v, dict)}
    if header:
        lines += [f"- **{key}:** {format_value(value)}" for key, value in header.items()] + [""]
    sections = [k for k in SECTION_TITLES if isinstance(results.get(k), dict)]
    sections += [k for k, v in results.items() if isinstance(v, dict) and k not in SECTION_TITLES and k != "config"]
    for key in sections:
        lines += [f"## {SECTION_TITLES.get(key, key)}", "", metrics_table(results[key]), ""]
    return "\n".join(lines)


def json_safe(value: Any) -> Any:
    """
    `value` with every non-finite float (NaN, e.g. a ROC AUC on a single-class split, or infinity) replaced by `None`
    and numpy scalars and arrays turned into Python values, recursively through dicts, lists and tuples: standard
    JSON has no NaN, and other JSON readers (browsers, `jq`) reject the bare `NaN` that `json.dump` writes.
    """
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_results_json(path: str | os.PathLike, results: dict[str, Any]) -> None:
    """
    Write `results` (e.g. `eval_results.json`) as standard JSON, indented: NaN and infinite values become `null`
    (see [`json_safe`]). A value that JSON cannot hold raises a `TypeError` before the file is touched.

    Args:
        path (`str` or `os.PathLike`):
            The file to write (replaced if it exists).
        results (`dict`):
            The results: numbers, strings, booleans, `None`, and dicts / lists of them.
    """
    text = json.dumps(json_safe(results), indent=2, allow_nan=False)  # allow_nan=False: no bare NaN slips through
    with open(path, "w") as f:
        f.write(text + "\n")
