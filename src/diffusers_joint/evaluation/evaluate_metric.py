# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
`JointClassificationMetric`: [`compute_classification_metrics`] as a local 🤗 Evaluate metric.

`evaluate.load("accuracy")` fetches the metric's script from the Hub; this class is defined here and never touches
the network. It adds Evaluate's batching (`add_batch` inside an evaluation loop, then `compute`) and its gathering of
predictions across processes (`num_process` / `process_id`) to the package's metrics.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

from ..models.unet_2d_joint import MULTI_LABEL, PROBLEM_TYPES, SINGLE_LABEL
from ..training.model_card import CITATION
from .classification import compute_classification_metrics

_DESCRIPTION = (
    "Accuracy, balanced accuracy, macro F1, ROC AUC, expected calibration error and confusion matrix of a "
    "single-label or multi-label classifier, computed with scikit-learn."
)
_INPUTS = """
Args:
    predictions (`list[list[float]]`): class probabilities, one row of `num_classes` values per example (softmax for
        single-label, sigmoid for multi-label problems).
    references (`list[int]` or `list[list[int]]`): class indices (single-label) or multi-hot rows (multi-label).
Returns:
    `dict`: see `diffusers_joint.evaluation.compute_classification_metrics`.
"""


class JointClassificationMetric(evaluate.Metric):
    r"""
    Classification metrics of a joint model (or any classifier) as an `evaluate.Metric` that runs locally.

    Args:
        problem_type (`str`, *optional*, defaults to `"single_label_classification"`):
            `"single_label_classification"` or `"multi_label_classification"`.
        label_names (`list[str]`, *optional*):
            Names used as keys of the per-label AUCs of multi-label problems.
        kwargs:
            Passed to `evaluate.Metric` (e.g. `num_process`, `process_id`, `experiment_id`, `cache_dir`).

    Examples:

    ```py
    >>> from diffusers_joint.evaluation import JointClassificationMetric

    >>> metric = JointClassificationMetric()
    >>> metric.add_batch(predictions=[[0.9, 0.1], [0.2, 0.8]], references=[0, 1])
    >>> metric.add_batch(predictions=[[0.6, 0.4]], references=[1])
    >>> round(metric.compute()["accuracy"], 4)
    0.6667
    ```
    """

    def __init__(self, problem_type: str = SINGLE_LABEL, label_names: list[str] | None = None, **kwargs):
        if problem_type not in PROBLEM_TYPES:
            raise ValueError(f"Unknown problem_type {problem_type!r}; expected one of {PROBLEM_TYPES}.")
        # set before `super().__init__`, which calls `_info` to build the features
        self.problem_type = problem_type
        self.label_names = label_names
        super().__init__(**kwargs)

    def _info(self) -> evaluate.MetricInfo:
        if self.problem_type == MULTI_LABEL:
            references = datasets.Sequence(datasets.Value("int64"))
        else:
            references = datasets.Value("int64")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=CITATION,
            inputs_description=_INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("float64")), "references": references}
            ),
        )

    def _compute(self, predictions, references) -> dict:
        return compute_classification_metrics(
            np.asarray(references), np.asarray(predictions, dtype=np.float64), self.problem_type, self.label_names
        )
