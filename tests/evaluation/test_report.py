"""Markdown tables of evaluation results and generation metrics on model cards."""

import json
import math

import numpy as np
import pytest
from huggingface_hub import ModelCard

from diffusers_joint.evaluation import json_safe, metrics_table, results_to_markdown, write_results_json
from diffusers_joint.training import build_model_card


def test_metrics_table_keeps_scalars_and_describes_known_metrics():
    table = metrics_table({"accuracy": 0.5, "roc_auc": math.nan, "confusion_matrix": [[1]], "steps": 3, "x": True})
    lines = table.splitlines()
    assert lines[:2] == ["| metric | value |", "| --- | --- |"]
    assert "| Accuracy (`accuracy`) | 0.5000 |" in lines
    assert "| ROC AUC (`roc_auc`) | n/a |" in lines
    assert "| (`steps`) | 3 |" in lines and "| (`x`) | True |" in lines  # no description: the key alone
    assert not any("confusion_matrix" in line for line in lines)


def test_results_to_markdown_orders_sections():
    results = {
        "pipeline": "p",
        "counterfactuals": {"l1": 0.25},
        "classification": {"accuracy": 1.0},
        "generation": {"frechet_distance": 2.0},
        "config": {"seed": 0},
    }
    text = results_to_markdown(results, title="T")
    assert text.startswith("# T\n\n- **pipeline:** p")
    order = [text.index(h) for h in ("## Classification", "## Generation", "## Counterfactuals")]
    assert order == sorted(order)
    assert "seed" not in text  # the run configuration stays in the JSON


def test_model_card_carries_generation_metrics():
    card = build_model_card(
        model_name="m",
        label_names=["a", "b"],
        dataset_description="toy",
        num_labeled=2,
        num_train_examples=4,
        resolution=8,
        channels=1,
        metrics={"accuracy": 0.75, "num_examples": 4},
        generation_metrics={"frechet_distance": 12.5, "precision": 0.5, "kid_std": 0.1, "num_generated": 20},
    )
    card = ModelCard(str(card))  # parse back what would be saved
    results = card.data.eval_results
    by_type = {(r.task_type, r.metric_type): r.metric_value for r in results}
    assert by_type[("image-classification", "accuracy")] == 0.75
    assert by_type[("unconditional-image-generation", "frechet_distance")] == 12.5
    assert by_type[("unconditional-image-generation", "precision")] == 0.5
    assert ("unconditional-image-generation", "kid_std") not in by_type
    assert "20 class-guided samples" in card.text and "| 12.5000 |" in card.text


def _strict_json(text):
    """Parse as standard JSON: the bare NaN / Infinity that Python's json writes by default are refused."""
    return json.loads(text, parse_constant=lambda token: pytest.fail(f"non-standard JSON token {token}"))


def test_results_json_writes_nan_and_infinity_as_null(tmp_path):
    results = {
        "step": 3,
        "classification": {"roc_auc": math.nan, "accuracy": 0.5, "per_class": [0.25, float("inf")]},
        "psnr": np.float32("inf"),
        "counts": np.array([1, 2]),
        "pair": (np.float64("nan"), -math.inf),
        "note": None,
    }
    path = tmp_path / "eval_results.json"
    write_results_json(path, results)
    assert _strict_json(path.read_text()) == {
        "step": 3,
        "classification": {"roc_auc": None, "accuracy": 0.5, "per_class": [0.25, None]},
        "psnr": None,
        "counts": [1, 2],
        "pair": [None, None],
        "note": None,
    }
    assert math.isnan(results["classification"]["roc_auc"])  # the caller's results are left as they are
    assert json_safe({"a": [math.nan, 1.0]}) == {"a": [None, 1.0]}


def test_results_json_refuses_what_json_cannot_hold_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "eval_results.json"
    path.write_text("{}\n")
    with pytest.raises(TypeError):
        write_results_json(path, {"model": object()})
    assert path.read_text() == "{}\n"
