# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Temperature scaling (Guo et al., 2017): one scalar that calibrates the classifier's probabilities, and the decision
whether a temperature fitted on a (possibly small) validation split is safe to apply.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import ModelMixin
from diffusers.utils import logging

from .losses import classification_loss

logger = logging.get_logger(__name__)

# The range a temperature is fitted in
MIN_FITTED_TEMPERATURE = 0.05
MAX_FITTED_TEMPERATURE = 20.0

# The rule's defaults, chosen on validation data only (benchmarks/benchmark_calibration.py, docs/experiments/
# calibration.md): below MIN_VALIDATION_SIZE images the temperature stays 1; above, it is fitted no lower than
# MIN_TEMPERATURE and applied only when the cross-validated NLL gain exceeds NOISE_MULTIPLIER standard errors.
MIN_VALIDATION_SIZE = 50
NUM_FOLDS = 5
NOISE_MULTIPLIER = 2.0
MIN_TEMPERATURE = 1.0  # never sharpen: near-error-free small splits fit T -> 0 (docs/experiments/calibration.md)

APPLIED = "applied"
NOT_SIGNIFICANT = "not_significant"
TOO_FEW_IMAGES = "too_few_images"
DECISIONS = (APPLIED, NOT_SIGNIFICANT, TOO_FEW_IMAGES)


def fit_temperature(
    logits: torch.Tensor,
    labels: torch.Tensor,
    multi_label: bool = False,
    max_iter: int = 200,
    min_temperature: float = MIN_FITTED_TEMPERATURE,
) -> float:
    """
    The temperature `T` that minimises the negative log-likelihood of `softmax(logits / T)` (or the per-label sigmoid)
    on held-out labeled data. It changes probabilities, never the predicted class.

    Args:
        logits (`torch.Tensor` of shape `(N, num_classes)`):
            Uncalibrated logits of validation images.
        labels (`torch.Tensor`):
            `(N,)` class indices, or `(N, num_classes)` 0/1 rows for multi-label problems.
        multi_label (`bool`, *optional*, defaults to `False`):
            Sigmoid / binary cross-entropy instead of softmax / cross-entropy.
        max_iter (`int`, *optional*, defaults to 200):
            L-BFGS iterations.
        min_temperature (`float`, *optional*, defaults to 0.05):
            Lowest temperature returned. The NLL is unimodal in the temperature, so clamping the optimum gives the
            best temperature within the bound.

    Returns:
        `float`: the fitted temperature, in [`min_temperature`, 20].

    Example:

    ```py
    >>> import torch
    >>> from diffusers_joint.training import fit_temperature

    >>> labels = torch.arange(100) % 2
    >>> logits = torch.nn.functional.one_hot(labels, 2).float() * 20  # over-confident
    >>> logits[:30] = logits[:30].flip(1)  # ... and wrong on 30 %
    >>> fit_temperature(logits, labels) > 1
    True
    ```
    """
    _check_logits_and_labels(logits, labels)
    _check_min_temperature(min_temperature)
    logits = logits.detach().float()
    log_temperature = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([log_temperature], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = classification_loss(logits / log_temperature.exp(), labels, multi_label)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_temperature.detach().exp().clamp(min_temperature, MAX_FITTED_TEMPERATURE))


def negative_log_likelihood(logits: torch.Tensor, labels: torch.Tensor, multi_label: bool = False) -> float:
    """Mean negative log-likelihood of `labels` under the logits (cross-entropy or binary cross-entropy)."""
    if multi_label:
        return float(F.binary_cross_entropy_with_logits(logits.float(), labels.float()))
    return float(F.cross_entropy(logits.float(), labels.long()))


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, num_bins: int = 15) -> float:
    """Top-label expected calibration error with `num_bins` equal-width confidence bins (Guo et al., 2017)."""
    return _binned_calibration_error(probs.max(axis=1), probs.argmax(axis=1) == labels, num_bins)


def binary_calibration_error(labels: np.ndarray, probs: np.ndarray, num_bins: int = 15) -> float:
    """
    Expected calibration error of multi-label predictions: every (example, label) pair is a binary prediction, decided
    positive at probability >= 0.5 as the multi-label metrics decide it, with confidence max(p, 1 - p).
    """
    labels, probs = np.asarray(labels).reshape(-1), np.asarray(probs, dtype=np.float64).reshape(-1)
    return _binned_calibration_error(np.maximum(probs, 1 - probs), (probs >= 0.5) == (labels == 1), num_bins)


def _binned_calibration_error(confidence: np.ndarray, correct: np.ndarray, num_bins: int) -> float:
    correct = correct.astype(np.float64)
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    bins = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, num_bins - 1)
    error = 0.0
    for b in range(num_bins):
        in_bin = bins == b
        if in_bin.any():
            error += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(error)


def calibration_error(logits: torch.Tensor, labels: torch.Tensor, multi_label: bool = False) -> float:
    """
    Expected calibration error of the probabilities of `logits` (15 bins), as
    [`~diffusers_joint.evaluation.compute_classification_metrics`] reports it: top-label for softmax models, every
    (image, label) pair as a binary prediction for multi-label ones.
    """
    if multi_label:
        return binary_calibration_error(labels.long().numpy(), logits.float().sigmoid().numpy())
    return expected_calibration_error(labels.long().numpy(), logits.float().softmax(1).numpy())


@dataclasses.dataclass
class TemperatureCalibration:
    """
    What [`calibrate_temperature`] decided, and the figures it decided on (all on the validation split).

    Attributes:
        temperature (`float`): the temperature to apply (1.0 when the fitted one was not applied).
        fitted_temperature (`float`): the temperature that minimises the NLL on the whole validation split.
        decision (`str`): `"applied"`, `"not_significant"` (the held-out NLL gain was within noise) or
            `"too_few_images"` (fewer than `min_validation_size` images; no check was run).
        num_validation (`int`): validation images.
        nll_uncalibrated, nll_calibrated (`float`): mean NLL on the validation split without and with `temperature`.
        ece_uncalibrated, ece_calibrated (`float`): expected calibration error there, likewise.
        held_out_nll_gain (`float` or `None`): mean NLL per image that temperatures fitted on the other folds saved on
            each held-out fold (positive: better); `None` when no check was run.
        held_out_nll_gain_standard_error (`float` or `None`): its standard error over images.
        min_validation_size, num_folds, noise_multiplier, min_temperature (`int`, `int`, `float`, `float`): the rule's
            settings (records saved before `min_temperature` existed load with no bound, 0.05).
        seed (`int`): seed of the fold assignment.
    """

    temperature: float
    fitted_temperature: float
    decision: str
    num_validation: int
    nll_uncalibrated: float
    nll_calibrated: float
    ece_uncalibrated: float
    ece_calibrated: float
    held_out_nll_gain: float | None
    held_out_nll_gain_standard_error: float | None
    min_validation_size: int
    num_folds: int
    noise_multiplier: float
    seed: int
    min_temperature: float = MIN_FITTED_TEMPERATURE

    def __post_init__(self):
        if self.decision not in DECISIONS:
            raise ValueError(f"`decision` must be one of {DECISIONS}, got {self.decision!r}.")

    @property
    def applied(self) -> bool:
        return self.decision == APPLIED

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable values, as saved in `eval_results.json` and the model config."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TemperatureCalibration:
        """The inverse of [`~TemperatureCalibration.to_dict`]; unknown keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def register_to(self, unet: ModelMixin) -> None:
        """
        Save the decision in a [`~diffusers_joint.JointUNet2DModel`]'s config: `classifier_temperature` (what
        `classify()`, the pipelines and the app apply) and `classifier_calibration` (this record).
        """
        unet.register_to_config(classifier_temperature=self.temperature, classifier_calibration=self.to_dict())

    def describe(self) -> str:
        """The decision in plain words, for logs and the model card."""
        fitted = f"Temperature {self.fitted_temperature:.2f} fitted on {self.num_validation} validation images"
        if self.min_temperature > MIN_FITTED_TEMPERATURE and self.fitted_temperature == self.min_temperature:
            fitted += " (the lowest allowed: sharper probabilities were not fitted)"
        if self.decision == TOO_FEW_IMAGES:
            return (
                f"{fitted} was not applied: at least {self.min_validation_size} validation images are needed to check "
                "that a temperature helps."
            )
        gain = (
            f"{self.held_out_nll_gain:+.4f} per image, noise +/- {self.held_out_nll_gain_standard_error:.4f}, "
            f"{self.num_folds} folds"
        )
        if self.decision == NOT_SIGNIFICANT:
            return (
                f"{fitted} was not applied: on held-out folds it did not lower the negative log-likelihood by more "
                f"than noise ({gain})."
            )
        return (
            f"{fitted} was applied: on held-out folds it lowered the negative log-likelihood by more than noise "
            f"({gain}); on the validation split the calibration error went from {self.ece_uncalibrated:.4f} to "
            f"{self.ece_calibrated:.4f}."
        )


def calibrate_temperature(
    logits: torch.Tensor,
    labels: torch.Tensor,
    multi_label: bool = False,
    *,
    seed: int = 0,
    min_validation_size: int = MIN_VALIDATION_SIZE,
    num_folds: int = NUM_FOLDS,
    noise_multiplier: float = NOISE_MULTIPLIER,
    min_temperature: float = MIN_TEMPERATURE,
) -> TemperatureCalibration:
    """
    Fit a temperature on validation logits and decide whether applying it is safe.

    A temperature fitted on few images can make the probabilities worse. It is applied only when `num_folds`-fold
    cross-validation shows a gain: on each fold, the temperature fitted on the other folds must lower the held-out
    negative log-likelihood, on average over all images, by more than `noise_multiplier` standard errors. Below
    `min_validation_size` images the temperature stays 1 (with a warning).

    Args:
        logits, labels, multi_label:
            As for [`fit_temperature`]: validation logits `(N, num_classes)`, their labels, and whether the model is
            multi-label.
        seed (`int`, *optional*, defaults to 0):
            Seed of the (class-stratified) fold assignment: the decision is deterministic given it.
        min_validation_size (`int`, *optional*, defaults to `MIN_VALIDATION_SIZE`):
            Fewest images to fit and check a temperature on.
        num_folds (`int`, *optional*, defaults to `NUM_FOLDS`):
            Folds of the held-out check.
        noise_multiplier (`float`, *optional*, defaults to `NOISE_MULTIPLIER`):
            Standard errors the held-out gain must exceed; 0 applies any temperature that helps on held-out folds.
        min_temperature (`float`, *optional*, defaults to `MIN_TEMPERATURE`):
            Lowest temperature fitted, in the check and in the end (1 never sharpens the probabilities). A split the
            model classifies almost without error pulls the fit towards ever sharper probabilities.

    Returns:
        [`TemperatureCalibration`]: the temperature to apply and why.

    Example:

    ```py
    >>> import torch
    >>> from diffusers_joint.training import calibrate_temperature

    >>> labels = torch.arange(400) % 2
    >>> logits = torch.nn.functional.one_hot(labels, 2).float() * 8  # over-confident ...
    >>> logits[:80] = logits[:80].flip(1)  # ... and wrong on 20 %
    >>> calibration = calibrate_temperature(logits, labels)
    >>> calibration.decision, calibration.temperature > 1
    ('applied', True)
    >>> calibrate_temperature(logits[:20], labels[:20]).temperature  # too few images to check
    1.0
    ```
    """
    _check_logits_and_labels(logits, labels)
    if num_folds < 2:
        raise ValueError(f"`num_folds` must be at least 2, got {num_folds}.")
    if min_validation_size < num_folds:
        raise ValueError(
            f"`min_validation_size` ({min_validation_size}) must be at least `num_folds` ({num_folds}): every fold "
            "needs an image."
        )
    if noise_multiplier < 0:
        raise ValueError(f"`noise_multiplier` must be >= 0, got {noise_multiplier}.")
    _check_min_temperature(min_temperature)
    logits = logits.detach().float().cpu()
    labels = labels.detach().cpu()
    fitted = fit_temperature(logits, labels, multi_label, min_temperature=min_temperature)
    gain = standard_error = None
    if len(logits) < min_validation_size:
        decision = TOO_FEW_IMAGES
        logger.warning(
            f"Only {len(logits)} validation images: the classifier temperature stays 1 (at least "
            f"{min_validation_size} are needed to check that a fitted one, here {fitted:.3f}, helps)."
        )
    else:
        gain, standard_error = held_out_nll_gain(logits, labels, multi_label, num_folds, seed, min_temperature)
        decision = APPLIED if gain > noise_multiplier * standard_error and gain > 0 else NOT_SIGNIFICANT
    temperature = fitted if decision == APPLIED else 1.0
    return TemperatureCalibration(
        temperature=temperature,
        fitted_temperature=fitted,
        decision=decision,
        num_validation=len(logits),
        nll_uncalibrated=negative_log_likelihood(logits, labels, multi_label),
        nll_calibrated=negative_log_likelihood(logits / temperature, labels, multi_label),
        ece_uncalibrated=calibration_error(logits, labels, multi_label),
        ece_calibrated=calibration_error(logits / temperature, labels, multi_label),
        held_out_nll_gain=gain,
        held_out_nll_gain_standard_error=standard_error,
        min_validation_size=min_validation_size,
        num_folds=num_folds,
        noise_multiplier=noise_multiplier,
        seed=seed,
        min_temperature=min_temperature,
    )


def held_out_nll_gain(
    logits: torch.Tensor,
    labels: torch.Tensor,
    multi_label: bool,
    num_folds: int,
    seed: int,
    min_temperature: float = MIN_FITTED_TEMPERATURE,
) -> tuple[float, float]:
    """
    Mean and standard error over images of the NLL each image loses when its logits are divided by the temperature
    fitted on the other folds (positive: the temperature helps). Folds are stratified by class for softmax models.
    """
    fold = _fold_assignment(labels, multi_label, num_folds, seed)
    gains = torch.empty(len(logits))
    for k in range(num_folds):
        held_out = fold == k
        temperature = fit_temperature(
            logits[~held_out], labels[~held_out], multi_label, min_temperature=min_temperature
        )
        gains[held_out] = _per_image_nll(logits[held_out], labels[held_out], multi_label) - _per_image_nll(
            logits[held_out] / temperature, labels[held_out], multi_label
        )
    standard_error = float(gains.std() / math.sqrt(len(gains))) if len(gains) > 1 else math.inf
    return float(gains.mean()), standard_error


def _fold_assignment(labels: torch.Tensor, multi_label: bool, num_folds: int, seed: int) -> torch.Tensor:
    """Fold index per image: a seeded shuffle, dealt out class by class so every fold gets each class's share."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    if not multi_label:  # a stable sort by class keeps the shuffled order within each class
        order = order[torch.sort(labels[order].long(), stable=True).indices]
    fold = torch.empty(len(labels), dtype=torch.long)
    fold[order] = torch.arange(len(labels)) % num_folds
    return fold


def _per_image_nll(logits: torch.Tensor, labels: torch.Tensor, multi_label: bool) -> torch.Tensor:
    if multi_label:
        return F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none").sum(1)
    return F.cross_entropy(logits, labels.long(), reduction="none")


def _check_min_temperature(min_temperature: float) -> None:
    if not MIN_FITTED_TEMPERATURE <= min_temperature <= 1.0:
        raise ValueError(
            f"`min_temperature` must be in [{MIN_FITTED_TEMPERATURE}, 1] (1: never sharpen), got {min_temperature}."
        )


def _check_logits_and_labels(logits: torch.Tensor, labels: torch.Tensor) -> None:
    if len(logits) == 0 or len(logits) != len(labels):
        raise ValueError(
            f"Expected as many labels as logits (at least one), got {len(logits)} logits and {len(labels)} labels."
        )
