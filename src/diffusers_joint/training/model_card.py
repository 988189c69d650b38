# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Model cards for trained Joint Diffusion pipelines, written with huggingface_hub's `ModelCard`."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..data.intensity import IntensityNormalization
from .calibration import TemperatureCalibration

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

# Generation metrics of `diffusers_joint.evaluation.evaluate_generation` (features of an independent reference network)
GENERATION_METRIC_NAMES = {
    "frechet_distance": "Frechet distance, reference-network features (lower is better)",
    "kid_mean": "KID, reference-network features (lower is better)",
    "precision": "Precision (samples on the real-image manifold)",
    "recall": "Recall (real images covered by the samples)",
    "conditional_accuracy": "Class-guided samples judged as requested by the reference network",
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
- **Resolution:** {{ resolution }} x {{ resolution }}, {{ channels }} channel(s){% if latent_space %}
- **Latent space:** {{ latent_space }}{% endif %}
- **Input intensities:** {{ intensity_description }}
- **Calibration:** {{ calibration_description }}

{{ sample_section }}

## How to use

Install the `diffusers-joint` package (it provides the model and pipeline classes), then:

```python
from diffusers_joint import CounterfactualPipeline, JointDiffusionPipeline

pipe = JointDiffusionPipeline.from_pretrained("{{ repo_id }}")
images = pipe(class_labels=[0, 1], num_inference_steps=250).images   # class-guided samples
prediction = pipe.classify(images)                                   # labels, probabilities, names

explain = CounterfactualPipeline.from_joint_pipeline(pipe)           # the same model (and VAE, if latent)
out = explain(image=images[0], target_class=1, strength=0.5)         # counterfactual towards class 1
out.difference_heatmaps[0]                                           # where the image had to change
```

## Try it in a browser

The explanation app classifies an image, explains the decision with a counterfactual and generates samples. In a clone
of the `diffusers-joint` repository:

```bash
pip install -e ".[app]"
python examples/app.py --pipeline {{ repo_id }}   # then open http://127.0.0.1:7860
```

To serve it as a Hugging Face Space, write the Space's files and upload them:

```bash
python examples/make_space.py --model_id {{ repo_id }} --output_dir space
hf upload {{ space_id }} space . --repo-type space
```

## Evaluation

{{ metrics_table }}

## Training

{{ selection_note }}| setting | value |
| --- | --- |
{{ settings_table }}

## Intended use

Research on generative classifiers, semi-supervised learning with few labels, class-guided generation and visual
counterfactual explanations, and teaching. Not for decisions about people.

## Limitations

- The metrics above hold only for the evaluation split they name ({{ eval_split_name }}); performance on other data,
  populations or acquisition settings is unknown.
- It was trained on {{ num_train_examples }} images at {{ resolution }} x {{ resolution }} pixels, of which
  {{ num_labeled }} were labeled; small label budgets give results that vary with which images were labeled.
- Counterfactual images show which change of the input changes *this model's* decision. They explain the model,
  not the data: a plausible-looking counterfactual is not evidence that the change is what defines the class.
- Generated images are synthetic and may reproduce biases and artefacts of the training data.
{{ medical_section }}
## Citation

```bibtex
{{ citation }}
```
"""


MEDICAL_SECTION = """
## Medical disclaimer

This model is **not a medical device and must not be used for clinical decisions**, diagnosis or triage. It was
trained on a small, curated research data set at low resolution and has not been validated prospectively or on other
populations, scanners or sites. Its counterfactuals show what changes the *model's* decision, which need not be what a
clinician would look at; they are not evidence of pathology. Generated images are synthetic and must never be
presented as real patient data."""


# How each intensity normalisation maps stored values to [0, 1] (see `IntensityNormalization`).
INTENSITY_DESCRIPTIONS = {
    "dtype": "the nominal range of the stored values (0-255 for 8-bit images, 0-65535 for 16-bit ones, [0, 1] for "
    "float images, the Bits Stored or VOI range of DICOM)",
    "minmax": "each image's own minimum and maximum",
    "percentile": "each image's percentiles {low:g} and {high:g}, values beyond them clipped",
    "window": "the fixed window {low:g} to {high:g} in the stored units (e.g. Hounsfield units), values beyond it "
    "clipped",
}


def describe_intensity_normalization(normalization: IntensityNormalization) -> str:
    """One sentence for the card: how the model's inputs were normalised, and that the pipeline applies it."""
    low, high = normalization.value_range or (None, None)
    how = INTENSITY_DESCRIPTIONS[normalization.mode].format(low=low, high=high)
    return (
        f"`{normalization.mode}` normalisation: {how}, mapped to [0, 1]. It is saved with the pipeline "
        "(`intensity_normalization` and `intensity_range` in `model_index.json`) and applied to every image given to "
        "`classify`, the pipelines and the explanation app: PNG / TIFF of 8 or 16 bits or float, `.npy`, DICOM."
    )


def describe_calibration(classifier_temperature: float | None, metrics: dict[str, Any]) -> str:
    """
    For the card: the classifier temperature, what it does, and the calibration error it gave; with a `calibration`
    record in `metrics` (a [`TemperatureCalibration`] as a dict), also how the temperature was decided.
    """
    decision = metrics.get("calibration")
    decision = f" {TemperatureCalibration.from_dict(decision).describe()}" if isinstance(decision, dict) else ""
    if classifier_temperature is None or classifier_temperature == 1.0:
        return (
            "not calibrated (`classifier_temperature` 1.0): the probabilities are the classifier's raw softmax "
            "(sigmoid for multi-label models)." + decision
        )
    text = (
        f"temperature scaling with `classifier_temperature` {classifier_temperature:.4g}, fitted on a validation "
        f"split held out from training. `pipe.classify()` and the explanation app show calibrated probabilities, "
        f"`softmax(logits / {classifier_temperature:.4g})`; `unet.probabilities(logits, calibrated=False)` gives the "
        "raw ones."
    )
    ece, before = metrics.get("ece"), metrics.get("ece_uncalibrated")
    if isinstance(ece, float) and isinstance(before, float) and not math.isnan(ece) and not math.isnan(before):
        text += f" Expected calibration error on the evaluation split: {ece:.4f} ({before:.4f} before calibration)."
    return text + decision


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
    generation_metrics: dict[str, Any] | None = None,
    latent_space: str | None = None,
) -> ModelCard:
    """
    Build the model card of a trained pipeline: YAML metadata (library, tags, datasets, metrics and a `model-index`
    with the evaluation results) validated by `ModelCardData`, and a body with the data, the label budget, a sample
    grid, usage, results, training settings, intended use, limitations, a medical disclaimer (`medical=True`) and the
    citation.

    Args:
        model_name (`str`):
            Title of the card and name in the `model-index`.
        label_names (`list[str]`):
            Class names, index-aligned with the model's logits.
        dataset_description (`str`):
            Where the data came from (shown in the card and used as the `model-index` dataset name).
        num_labeled (`int`):
            Number of labeled training images.
        num_train_examples (`int`):
            Number of training images, labeled or not.
        resolution (`int`):
            Image height and width the model works at.
        channels (`int`):
            Image channels.
        metrics (`dict`, *optional*):
            Evaluation results, as returned by `evaluate_classifier`; the scalar metrics named in `METRIC_NAMES` go to
            the `model-index` (NaN values are left out). A `classifier_temperature` (the calibration the training
            script fits), `ece_uncalibrated` and a `calibration` record (how the temperature was decided, see
            [`TemperatureCalibration`]) are described under *Calibration*; without a temperature the card says that
            the model is not calibrated.
        eval_split_name (`str`, *optional*, defaults to `"evaluation split"`):
            Name of the split the metrics were computed on.
        training_settings (`dict`, *optional*):
            Settings shown in the training table. Its `intensity_normalization` and `intensity_range` (the pipeline's
            config of the same names; default `"dtype"`) are also described under *Input intensities*, and its
            `use_ema` says whether the results are those of the EMA weights. With a `trained_steps` (the last step of
            a run that saved an earlier, selected step as `steps`), the card says which step was selected and how.
        dataset_id (`str`, *optional*):
            Hub id of the data set, if it has one (goes to the `datasets` metadata).
        repo_id (`str`, *optional*):
            Hub id of the model, used in the usage example.
        sample_grid_file (`str`, *optional*):
            File name of a sample grid next to the card, shown in the card.
        medical (`bool`, *optional*, defaults to `False`):
            Add the `medical-imaging` tag and the medical disclaimer.
        generation_metrics (`dict`, *optional*):
            Generation results of `diffusers_joint.evaluation.evaluate_generation`; those named in
            `GENERATION_METRIC_NAMES` get their own table and `model-index` entries (task unconditional generation).
        latent_space (`str`, *optional*):
            For a latent model, which VAE it diffuses the latents of, with their shape and scaling factor (see
            `describe_latent_space`); `resolution` and `channels` are then the images'.

    Returns:
        `huggingface_hub.ModelCard`: save it with [`save_model_card`].
    """
    metrics = metrics or {}
    generation_metrics = generation_metrics or {}
    settings = training_settings or {}
    card_data = _card_data(
        model_name, metrics, generation_metrics, dataset_description, eval_split_name, dataset_id, medical
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
        latent_space=latent_space,
        intensity_description=describe_intensity_normalization(
            IntensityNormalization(settings.get("intensity_normalization") or "dtype", settings.get("intensity_range"))
        ),
        calibration_description=describe_calibration(metrics.get("classifier_temperature"), metrics),
        sample_section=_sample_section(sample_grid_file),
        repo_id=repo_id or "path/to/this/model",
        space_id=f"{repo_id}-demo" if repo_id else f"your-name/{model_name}-demo",
        metrics_table=_metrics_table(metrics, eval_split_name, settings.get("use_ema"))
        + _generation_table(generation_metrics, eval_split_name),
        eval_split_name=eval_split_name,
        num_train_examples=num_train_examples,
        num_labeled=num_labeled,
        medical_section=MEDICAL_SECTION if medical else "",
        selection_note=_selection_note(settings),
        settings_table=_settings_table(settings),
        citation=CITATION,
    )


def _card_data(
    model_name: str,
    metrics: dict[str, Any],
    generation_metrics: dict[str, Any],
    dataset_description: str,
    eval_split_name: str,
    dataset_id: str | None,
    medical: bool,
) -> ModelCardData:
    """The card's YAML metadata: library, tags, data set, metric names and the `model-index` results."""
    where = {
        "dataset_type": dataset_id or "custom",
        "dataset_name": dataset_description,
        "dataset_split": eval_split_name,
    }
    eval_results = _eval_results("image-classification", metrics, METRIC_NAMES, where) + _eval_results(
        "unconditional-image-generation", generation_metrics, GENERATION_METRIC_NAMES, where
    )
    tags = [
        "diffusers",
        "joint-diffusion",
        "image-classification",
        "unconditional-image-generation",
        "diffusers-joint",
    ]
    if medical:
        tags.append("medical-imaging")
    return ModelCardData(
        library_name="diffusers",
        license="apache-2.0",
        tags=tags,
        datasets=[dataset_id] if dataset_id else None,
        metrics=[key for key in metrics if key in METRIC_NAMES] or None,
        pipeline_tag="unconditional-image-generation",
        model_name=model_name,
        eval_results=eval_results or None,
    )


def _eval_results(task_type: str, values: dict[str, Any], names: dict[str, str], where: dict) -> list[EvalResult]:
    """`model-index` entries of the finite scalar `values` named in `names`."""
    return [
        EvalResult(task_type=task_type, metric_type=key, metric_name=names[key], metric_value=float(value), **where)
        for key, value in values.items()
        if key in names and isinstance(value, (int, float)) and not math.isnan(float(value))
    ]


def _metrics_table(metrics: dict[str, Any], eval_split_name: str, use_ema: bool | None = None) -> str:
    """
    The classification results as a Markdown table, or a line saying that no evaluation was run. Which weights were
    evaluated is said from the run's `use_ema` setting, and not at all when it is unknown.
    """
    rows = [f"| {METRIC_NAMES[k]} | {_format_value(v)} |" for k, v in metrics.items() if k in METRIC_NAMES]
    if not rows:
        return "No evaluation was run."
    weights = {True: ", with the EMA weights", False: ", with the trained weights (no EMA)"}.get(use_ema, "")
    return (
        f"On the {eval_split_name} ({metrics.get('num_examples', '?')} images){weights}:\n\n"
        "| metric | value |\n| --- | --- |\n" + "\n".join(rows)
    )


def _generation_table(generation_metrics: dict[str, Any], eval_split_name: str) -> str:
    """The generation results as a Markdown table after the classification ones; empty without any."""
    rows = [
        f"| {GENERATION_METRIC_NAMES[k]} | {_format_value(v)} |"
        for k, v in generation_metrics.items()
        if k in GENERATION_METRIC_NAMES
    ]
    if not rows:
        return ""
    return (
        f"\n\n{generation_metrics.get('num_generated', '?')} class-guided samples against "
        f"{generation_metrics.get('num_real', '?')} real images of the {eval_split_name}, on the features of a "
        "small reference classifier trained separately on the real training images:\n\n"
        "| metric | value |\n| --- | --- |\n" + "\n".join(rows)
    )


def _selection_note(settings: dict[str, Any]) -> str:
    """A paragraph saying that the saved weights are a selected step's rather than the last one's; empty otherwise."""
    if "trained_steps" not in settings:
        return ""
    metric = settings.get("select_best_checkpoint")
    by = f" by {metric}" if metric else ""
    return (
        f"The saved weights (and the results above) are those of step {settings.get('steps', '?')}, the best step on "
        f"the validation split{by} (`--select_best_checkpoint`) of the {settings['trained_steps']} steps trained.\n\n"
    )


def _settings_table(settings: dict[str, Any]) -> str:
    return "\n".join(f"| {k} | `{json.dumps(v) if not isinstance(v, str) else v}` |" for k, v in settings.items())


def _sample_section(sample_grid_file: str | None) -> str:
    if not sample_grid_file:
        return ""
    return f"## Samples\n\nClass-guided samples, one row per class:\n\n![samples]({sample_grid_file})"


def save_model_card(card: ModelCard, output_dir: str | os.PathLike) -> str:
    """Write the card as `README.md` in `output_dir` and return its path."""
    path = os.path.join(output_dir, "README.md")
    card.save(path)
    return path
