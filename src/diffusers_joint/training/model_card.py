# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Model cards for trained Joint Diffusion pipelines, written with huggingface_hub's `ModelCard`."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

CITATION = """@inproceedings{deja2023learning,
  title     = {Learning Data Representations with Joint Diffusion Models},
  author    = {Deja, Kamil and Trzci{\\'n}ski, Tomasz and Tomczak, Jakub M.},
  booktitle = {Machine Learning and Knowledge Discovery in Databases: Research Track (ECML PKDD)},
  year      = {2023}
}"""

METRIC_NAMES = {
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "macro_f1": "Macro F1",
    "roc_auc": "ROC AUC",
    "ece": "Expected calibration error",
    "subset_accuracy": "Subset accuracy",
    "hamming_accuracy": "Hamming accuracy",
}

TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

A **Joint Diffusion** model trained with the `diffusers-joint` package: one
`JointUNet2DModel` that generates images (unconditionally or guided towards a class), classifies images with a head on
its encoder features, and explains decisions with counterfactual images.

- **Data:** {{ dataset_description }}
- **Classes ({{ num_classes }}):** {{ class_list }}
- **Labels used:** {{ label_budget }}
- **Resolution:** {{ resolution }} x {{ resolution }}, {{ channels }} channel(s)

{{ sample_section }}

## How to use

```python
from diffusers_joint import JointDiffusionPipeline

pipe = JointDiffusionPipeline.from_pretrained("{{ repo_id }}")
images = pipe(class_labels=[0, 1], num_inference_steps=100).images   # class-guided samples
prediction = pipe.classify(images)                                   # labels, probabilities, names
```

## Evaluation

{{ metrics_table }}

## Training

| setting | value |
| --- | --- |
{{ settings_table }}

## Intended use and limitations

This model is for **research** on generative classifiers, semi-supervised learning and visual explanations. It is
**not a medical device and must not be used for clinical decisions**: it was trained on a small, curated research data
set at low resolution, has not been validated prospectively or on other populations, scanners or sites, and its
accuracy figures above hold only for the evaluation split they name. Counterfactual images show what changes the
*model's* decision, which need not be what a clinician would look at; they are not evidence of pathology. Generated
images are synthetic and must never be presented as real patient data.

## Citation

```bibtex
{{ citation }}
```
"""


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def build_model_card(
    model_name: str,
    label_names: list[str],
    dataset_description: str,
    num_labeled: int,
    num_train_examples: int,
    resolution: int,
    channels: int,
    metrics: dict[str, Any] | None = None,
    eval_split_name: str = "evaluation split",
    training_settings: dict[str, Any] | None = None,
    dataset_id: str | None = None,
    repo_id: str | None = None,
    sample_grid_file: str | None = None,
    medical: bool = False,
) -> ModelCard:
    """
    Build the model card of a trained pipeline: YAML metadata (library, tags, datasets, metrics and a `model-index`
    with the evaluation results) validated by `ModelCardData`, and a body with usage, results, training settings,
    intended use, limitations and the citation.
    """
    metrics = metrics or {}
    eval_results = [
        EvalResult(
            task_type="image-classification",
            dataset_type=dataset_id or "custom",
            dataset_name=dataset_description,
            dataset_split=eval_split_name,
            metric_type=key,
            metric_name=METRIC_NAMES[key],
            metric_value=float(value),
        )
        for key, value in metrics.items()
        if key in METRIC_NAMES and isinstance(value, (int, float)) and not math.isnan(float(value))
    ]
    tags = [
        "diffusers",
        "joint-diffusion",
        "image-classification",
        "unconditional-image-generation",
        "diffusers-joint",
    ]
    if medical:
        tags.append("medical-imaging")
    card_data = ModelCardData(
        library_name="diffusers",
        license="apache-2.0",
        tags=tags,
        datasets=[dataset_id] if dataset_id else None,
        metrics=[key for key in metrics if key in METRIC_NAMES] or None,
        pipeline_tag="unconditional-image-generation",
        model_name=model_name,
        eval_results=eval_results or None,
    )
    metric_rows = [f"| {METRIC_NAMES[k]} | {_format_value(v)} |" for k, v in metrics.items() if k in METRIC_NAMES]
    metrics_table = (
        f"On the {eval_split_name} ({metrics.get('num_examples', '?')} images), with the EMA weights:\n\n"
        "| metric | value |\n| --- | --- |\n" + "\n".join(metric_rows)
        if metric_rows
        else "No evaluation was run."
    )
    settings = training_settings or {}
    settings_table = "\n".join(
        f"| {k} | `{json.dumps(v) if not isinstance(v, str) else v}` |" for k, v in settings.items()
    )
    return ModelCard.from_template(
        card_data,
        template_str=TEMPLATE,
        model_name=model_name,
        dataset_description=dataset_description,
        num_classes=len(label_names),
        class_list=", ".join(f"`{i}`: {name}" for i, name in enumerate(label_names)),
        label_budget=f"{num_labeled} labeled of {num_train_examples} training images",
        resolution=resolution,
        channels=channels,
        sample_section=(
            f"## Samples\n\nClass-guided samples, one row per class:\n\n![samples]({sample_grid_file})"
            if sample_grid_file
            else ""
        ),
        repo_id=repo_id or "path/to/this/model",
        metrics_table=metrics_table,
        settings_table=settings_table,
        citation=CITATION,
    )


def save_model_card(card: ModelCard, output_dir: str | os.PathLike) -> str:
    """Write the card as `README.md` in `output_dir` and return its path."""
    path = os.path.join(output_dir, "README.md")
    card.save(path)
    return path
