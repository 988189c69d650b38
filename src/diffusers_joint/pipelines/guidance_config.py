# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
[`GuidanceConfig`]: how the Joint Diffusion pipelines guide, in one value, and the defaults it resolves to.

The defaults differ by method and by task (`"generation"` or `"counterfactual"`). Each default follows a stated rule;
the measurements behind the values are on the experiment page, docs/experiments/guidance.md.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Any

from ..data.augmentations import CLASSIFIER_AUGMENTATIONS
from ..models import JointUNet2DModel

GUIDANCE_METHODS = ("x0", "noisy", "features")
GUIDANCE_TASKS = ("generation", "counterfactual")
# Strengths of random views for "x0" guidance: the classifier augmentations that transform the image.
GUIDANCE_AUGMENTATIONS = tuple(name for name, settings in CLASSIFIER_AUGMENTATIONS.items() if settings is not None)
# The augmentation value that turns random views off (`None` means "the method's default").
NO_VIEWS = "none"

# Random views for "x0" guidance only: the other methods read x_t or features, which cannot be transformed. "medium"
# is the strength that raised the share of samples an independent network judges as requested.
DEFAULT_GUIDANCE_AUGMENTATIONS = {"x0": "medium", "noisy": None, "features": None}

# Generation: per method, the largest scale whose samples keep 0.9x the unguided samples' precision (realism).
DEFAULT_GUIDANCE_SCALES = {"x0": 10.0, "noisy": 3.0, "features": 10.0}
# Counterfactuals must also stay close to their input: per method, the scale past which validity under an independent
# network stops rising while the edits keep growing.
DEFAULT_COUNTERFACTUAL_GUIDANCE_SCALES = {"x0": 10.0, "noisy": 40.0, "features": 10.0}

# Generation: the longest reuse of the classifier's direction that keeps the share judged as requested and the
# precision of recomputing it at every step ("x0"); methods not measured with reuse recompute at every step.
# Counterfactuals always recompute at every step, since reuse cost them validity.
DEFAULT_GUIDANCE_CACHE_INTERVALS = {"x0": 2, "noisy": 1, "features": 1}

# Generation: the temperature that lifts the share judged as requested without losing most of the samples' variety
# (recall) ("x0"); methods not measured with it read the plain log-probability. Counterfactuals read it at 1: an edit
# should stop pushing once the decision flips.
DEFAULT_GUIDANCE_TEMPERATURES = {"x0": 2.0, "noisy": 1.0, "features": 1.0}


def check_guidance_method(guidance_method: str) -> None:
    """Raise a `ValueError` when `guidance_method` is not one of [`GUIDANCE_METHODS`]."""
    if guidance_method not in GUIDANCE_METHODS:
        raise ValueError(f"`guidance_method` must be one of {GUIDANCE_METHODS}, got {guidance_method!r}.")


def check_guidance_task(task: str) -> None:
    """Raise a `ValueError` when `task` is not one of [`GUIDANCE_TASKS`]."""
    if task not in GUIDANCE_TASKS:
        raise ValueError(f"`task` must be one of {GUIDANCE_TASKS}, got {task!r}.")


def check_guidance_augmentation(guidance_augmentation: str | None, guidance_method: str) -> None:
    """
    Raise a `ValueError` unless `guidance_augmentation` is `None` or one of [`GUIDANCE_AUGMENTATIONS`], used with
    `guidance_method="x0"` (the only method whose classifier reads an image it can transform).
    """
    if guidance_augmentation is None:
        return
    if guidance_augmentation not in GUIDANCE_AUGMENTATIONS:
        raise ValueError(
            f"`guidance_augmentation` must be None or one of {GUIDANCE_AUGMENTATIONS}, got {guidance_augmentation!r}."
        )
    if guidance_method != "x0":
        raise ValueError(
            f'`guidance_augmentation` needs `guidance_method="x0"` (the classifier reads the denoised estimate, which '
            f"can be shifted and rotated), got {guidance_method!r}."
        )


def default_guidance_method(unet: JointUNet2DModel | None = None, task: str = "generation") -> str:
    """
    The method the pipelines use when none is given, for `task` `"generation"` or `"counterfactual"`: `"x0"`, with
    random views of the denoised estimate ([`DEFAULT_GUIDANCE_AUGMENTATIONS`]), for every model (`unet` does not
    change it). The rule: the method whose samples an independent network judges as requested most often at the
    same kept precision, and whose counterfactuals it accepts most often, also for models trained with the noise-aware
    classification term; see docs/experiments/guidance.md.
    """
    check_guidance_task(task)
    return "x0"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class GuidanceConfig:
    r"""
    How the Joint Diffusion pipelines guide samples and counterfactuals with the joint model's classifier, in one
    value. Every field left `None` takes the default for its method and task when the config is resolved
    ([`GuidanceConfig.resolve`]), so `GuidanceConfig()` is the pipelines' default guidance.

    Args:
        method (`str`, *optional*):
            `"x0"` (the classifier reads the denoised estimate, with a bounded step and random views), `"noisy"` (the
            classifier reads `x_t` at timestep t; for models trained with the noise-aware term) or `"features"`
            (shift the encoder representations, as in the Joint Diffusion paper). Default: [`default_guidance_method`].
        scale (`float`, *optional*):
            Strength of the guidance, >= 0; 0 gives plain sampling (no gradient computed). Defaults to the method's
            value in [`DEFAULT_GUIDANCE_SCALES`] for generation (10.0 for `"x0"`, 3.0 for `"noisy"`, 10.0 for
            `"features"`) and in [`DEFAULT_COUNTERFACTUAL_GUIDANCE_SCALES`] for counterfactuals (10.0 for `"x0"`,
            40.0 for `"noisy"`, 10.0 for `"features"`). The pipelines also take it as `guidance_scale`, as
            diffusers' pipelines do.
        augmentation (`str`, *optional*):
            With `"x0"`: `"light"`, `"medium"` or `"strong"` has the classifier read a random shift, rotation and
            scaling of the denoised estimate at every step (the geometry of the classifier augmentation of that name),
            so that guidance follows the shape rather than a pixel pattern that fools the classifier; `"none"` reads
            the estimate as it is. Default: the method's value in [`DEFAULT_GUIDANCE_AUGMENTATIONS`] (no views for
            the other methods, which cannot take them). The views are drawn from the pipeline's `generator`.
        cache_interval (`int`, *optional*):
            Compute the classifier's direction (its gradient, or the feature shifts) at the first of every this many
            steps and reuse it for the steps in between, which then cost one plain forward pass. For generation it
            defaults to 2 for `"x0"` and 1 for the other methods ([`DEFAULT_GUIDANCE_CACHE_INTERVALS`]);
            counterfactuals recompute it at every step.
        temperature (`float`, *optional*):
            Guidance follows `T * log p_T(class | image)`, the classifier's log-probability at temperature T (see
            `guidance.class_log_prob`): at T = 1 its gradient vanishes as soon as the classifier is confident, at
            T > 1 it keeps pushing, which makes the class clearer at the cost of variety. For generation it defaults
            to 2 for `"x0"` and 1 for the other methods ([`DEFAULT_GUIDANCE_TEMPERATURES`]); counterfactuals read
            the classifier at 1.

    The rules behind the defaults, and the measurements, are on the experiment page docs/experiments/guidance.md.

    Raises:
        `ValueError`: a field out of range (an unknown method or augmentation, a negative or non-finite scale, a
            cache interval that is not a positive integer, a temperature that is not a finite number > 0), or, on
            [`GuidanceConfig.resolve`], random views with a method other than `"x0"`.

    Example:

    ```py
    >>> from diffusers_joint import GuidanceConfig

    >>> GuidanceConfig().resolve("generation")
    GuidanceConfig(method='x0', scale=10.0, augmentation='medium', cache_interval=2, temperature=2.0)
    >>> GuidanceConfig(method="noisy").resolve("counterfactual")
    GuidanceConfig(method='noisy', scale=40.0, augmentation='none', cache_interval=1, temperature=1.0)
    >>> config = GuidanceConfig(scale=4.0, temperature=1.0)
    >>> GuidanceConfig.from_dict(config.to_dict()) == config
    True
    ```
    """

    method: str | None = None
    scale: float | None = None
    augmentation: str | None = None
    cache_interval: int | None = None
    temperature: float | None = None

    def __post_init__(self):
        if self.method is not None:
            check_guidance_method(self.method)
        if self.scale is not None and (not _is_number(self.scale) or not math.isfinite(self.scale) or self.scale < 0):
            raise ValueError(f"`scale` must be a finite number >= 0 (0 disables guidance), got {self.scale!r}.")
        if self.augmentation is not None and self.augmentation != NO_VIEWS:
            if self.augmentation not in GUIDANCE_AUGMENTATIONS:
                raise ValueError(
                    f"`augmentation` must be None, {NO_VIEWS!r} or one of {GUIDANCE_AUGMENTATIONS}, got "
                    f"{self.augmentation!r}."
                )
        interval = self.cache_interval
        if interval is not None and (not isinstance(interval, int) or isinstance(interval, bool) or interval < 1):
            raise ValueError(f"`cache_interval` must be a positive integer, got {self.cache_interval!r}.")
        if self.temperature is not None and (
            not _is_number(self.temperature) or not math.isfinite(self.temperature) or self.temperature <= 0
        ):
            raise ValueError(f"`temperature` must be a finite number > 0, got {self.temperature!r}.")

    @property
    def is_resolved(self) -> bool:
        """Whether every field is set (as [`GuidanceConfig.resolve`] leaves it)."""
        return None not in dataclasses.astuple(self)

    @property
    def views(self) -> str | None:
        """The strength of the random views the classifier reads, `None` for no views (a resolved config only)."""
        if not self.is_resolved:
            raise ValueError(f"Resolve the guidance config first (`GuidanceConfig.resolve(task)`), got {self}.")
        return None if self.augmentation == NO_VIEWS else self.augmentation

    def resolve(self, task: str = "generation") -> GuidanceConfig:
        """
        The config with every `None` field replaced by its default for the method and `task` (`"generation"` or
        `"counterfactual"`), checked; no random views are written `"none"`, so resolving a resolved config returns it
        unchanged (it is saved and reloaded as it ran).

        Raises:
            `ValueError`: an unknown `task`, or random views with a method other than `"x0"`.
        """
        check_guidance_task(task)
        generation = task == "generation"
        method = default_guidance_method(task=task) if self.method is None else self.method
        scale = self.scale
        if scale is None:
            scale = (DEFAULT_GUIDANCE_SCALES if generation else DEFAULT_COUNTERFACTUAL_GUIDANCE_SCALES)[method]
        augmentation = self.augmentation
        if augmentation is None:
            augmentation = DEFAULT_GUIDANCE_AUGMENTATIONS[method] or NO_VIEWS
        elif augmentation != NO_VIEWS:
            check_guidance_augmentation(augmentation, method)
        cache_interval = self.cache_interval
        if cache_interval is None:
            cache_interval = DEFAULT_GUIDANCE_CACHE_INTERVALS[method] if generation else 1
        temperature = self.temperature
        if temperature is None:
            temperature = DEFAULT_GUIDANCE_TEMPERATURES[method] if generation else 1.0
        return GuidanceConfig(method, float(scale), augmentation, cache_interval, float(temperature))

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serialisable dict (what the evaluation results and benchmarks save)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> GuidanceConfig:
        """
        The config of a dict of fields, as [`GuidanceConfig.to_dict`] writes it; missing fields are `None` (the
        default). Raises a `ValueError` naming any unknown key.
        """
        if not isinstance(config, dict):
            raise TypeError(f"`config` must be a dict of GuidanceConfig fields, got {type(config).__name__}.")
        fields = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(config) - set(fields))
        if unknown:
            raise ValueError(f"Unknown GuidanceConfig fields {unknown}; the fields are {fields}.")
        return cls(**config)


# Keyword arguments of the pipelines and evaluation functions before GuidanceConfig, and the field each one sets.
DEPRECATED_GUIDANCE_KWARGS = {
    "guidance_method": "method",
    "guidance_augmentation": "augmentation",
    "guidance_cache_interval": "cache_interval",
    "guidance_temperature": "temperature",
}


def guidance_config_from_arguments(
    guidance: GuidanceConfig | dict[str, Any] | None,
    guidance_scale: float | None = None,
    deprecated_kwargs: dict[str, Any] | None = None,
    caller: str = "__call__",
) -> GuidanceConfig:
    """
    The one [`GuidanceConfig`] of a call: `guidance` (a config, a dict of its fields, or `None` for the defaults)
    with `guidance_scale` as its scale, and any of the deprecated `guidance_method`, `guidance_augmentation`,
    `guidance_cache_interval` and `guidance_temperature` keyword arguments, which still work with a `FutureWarning`.
    Not resolved: the caller resolves it for its task.

    Raises:
        `TypeError`: `guidance` of another type, or a keyword argument `caller` does not take.
        `ValueError`: a setting given twice (`guidance_scale` and `guidance.scale`, or an old keyword argument and its
            field), or a value out of range.
    """
    if guidance is None:
        guidance = GuidanceConfig()
    elif isinstance(guidance, dict):
        guidance = GuidanceConfig.from_dict(guidance)
    elif not isinstance(guidance, GuidanceConfig):
        raise TypeError(f"`guidance` must be a GuidanceConfig, a dict of its fields or None, got {guidance!r}.")
    changes = {}
    deprecated_kwargs = dict(deprecated_kwargs or {})
    unexpected = sorted(set(deprecated_kwargs) - set(DEPRECATED_GUIDANCE_KWARGS))
    if unexpected:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unexpected[0]!r}.")
    for name, value in deprecated_kwargs.items():
        field = DEPRECATED_GUIDANCE_KWARGS[name]
        warnings.warn(
            f"`{name}` is deprecated and will be removed in diffusers-joint 0.2.0; pass "
            f"`guidance=GuidanceConfig({field}=...)` instead.",
            FutureWarning,
            stacklevel=3,
        )
        if value is not None:
            changes[field] = value
    if guidance_scale is not None:
        changes["scale"] = guidance_scale
    for field, value in changes.items():
        given = getattr(guidance, field)
        if given is not None:
            name = "guidance_scale" if field == "scale" else f"the deprecated guidance_{field}"
            raise ValueError(f"`{name}` ({value!r}) and `guidance.{field}` ({given!r}) both set it: pass it once.")
    return dataclasses.replace(guidance, **changes)
