# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Classifier guidance with the classifier of a [`JointUNet2DModel`], shared by the Joint Diffusion pipelines.

Three methods are implemented, one function per concept:

Generation and counterfactuals default to `"x0"` with random views of the denoised estimate
([`default_guidance_method`], [`DEFAULT_GUIDANCE_AUGMENTATIONS`]).

- `"x0"`, classifier guidance on the predicted clean image (the classifier read at the denoised estimate,
  as in "universal guidance"): the joint classifier is trained on clean images at timestep 0, so at every step the
  noisy sample `x_t` is mapped to its denoised estimate `x0_hat = (x_t - sqrt(1 - abar_t) * eps) / sqrt(abar_t)`, the
  classifier scores `x0_hat`, and the noise prediction is shifted so that `x0_hat` moves by `scale * g`, where `g` is
  the gradient of the target log-probability at `x0_hat` with its root mean square clipped to 1
  ([`bounded_x0_guidance`]). The move of `x0_hat` is therefore at most `scale` (root mean square, in [-1, 1] pixel
  units) at every noise level; classifier guidance's usual `eps - scale * sqrt(1 - abar_t) * grad_x_t` would move it
  by `scale * (1 - abar_t) / abar_t * g`, which explodes at high noise. With `guidance_augmentation`, the classifier
  reads a random shift, rotation and scaling of `x0_hat` at every step ([`random_affine_views`], the geometry the
  classifier was trained to ignore), so the gradient cannot rely on a pixel pattern at one exact position: over the
  steps it averages over views, as in "expectation over transformation".
- `"noisy"`, classifier guidance proper (Dhariwal & Nichol, 2021) without a second network: the joint classifier
  reads the encoder features of `x_t` at timestep t, from the same forward pass that predicts the noise, and the
  gradient of the target log-probability with respect to `x_t` (through the encoder only) shifts the noise prediction
  as above. It needs a model trained with the noise-aware classification term (`--noisy_classifier_weight`), whose
  classifier means something at every noise level.
- `"features"`, the Joint Diffusion variant (Deja et al., 2023) that edits the UNet's own representations: the
  pooled encoder features of `x_t` are moved along the gradient of the target log-probability, and the decoder
  denoises with the shifted representations (see [`JointUNet2DModel.shift_encoder_features`]).

Every method reads the classifier through a temperature ([`class_log_prob`]'s `temperature`): at 1 a confident
classifier's gradient vanishes once it is convinced, whether or not the image is yet a clear member of the class, and
pushes mostly away from the runner-up class; above 1 the push lasts longer and is spread over every other class.
Generation with `"x0"` reads it at temperature 2 by default ([`DEFAULT_GUIDANCE_TEMPERATURES`]).

Every method can compute its direction (gradient or shifts) once and reuse it for the next steps of a trajectory
(`cache_interval` of [`ClassifierGuidance`]); generation with `"x0"` recomputes it at every 2nd step by default
([`DEFAULT_GUIDANCE_CACHE_INTERVALS`]).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from diffusers.utils import logging
from kornia.geometry.transform import get_affine_matrix2d, warp_affine

from ..data.augmentations import CLASSIFIER_AUGMENTATIONS
from ..models import JointUNet2DModel

logger = logging.get_logger(__name__)

GUIDANCE_METHODS = ("x0", "noisy", "features")
GUIDANCE_TASKS = ("generation", "counterfactual")
# Strengths of random views for "x0" guidance: the classifier augmentations that transform the image.
GUIDANCE_AUGMENTATIONS = tuple(name for name, settings in CLASSIFIER_AUGMENTATIONS.items() if settings is not None)

# Random views by default for "x0" guidance only (the other methods read x_t or features, which are not transformed):
# on MNIST-5k, "medium" raised the share of guided samples an independent network judges as requested, see
# docs/benchmarks.md#explanations.
DEFAULT_GUIDANCE_AUGMENTATIONS = {"x0": "medium", "noisy": None, "features": None}

# Default guidance scales per method: see docs/benchmarks.md#explanations for the measurements behind them. For
# generation, the largest measured scale whose samples keep 0.9x the unguided samples' precision (realism). On the
# 4000-step MNIST-5k model (validation, 1,000 samples) "x0" with "medium" views at scale 10 has 0.766 judged as
# requested by an independent network at 0.91x precision (scale 3: 0.69, 0.93x; "noisy" 3: 0.68, 0.90x); "noisy" 10
# and 30 reach 0.76 and 0.81 but keep only 0.87x and 0.84x (200 samples).
DEFAULT_GUIDANCE_SCALES = {"x0": 10.0, "noisy": 3.0, "features": 10.0}
# Counterfactuals must also stay close to their input. "noisy" was chosen on PneumoniaMNIST's validation split (region
# kept, strength 0.5): validity under an independent network 0.78 / 0.865 / 0.895 / 0.90 at scale 10 / 20 / 30 / 40,
# mean L1 0.145 to 0.159. "x0" (now the default) with "medium" views at scale 10: PneumoniaMNIST 0.965 (L1 0.168;
# scale 20: 0.965, L1 0.174), 8x8 digits 0.917 with 0.979 of the model's decisions flipped (scale 20: 0.917, 0.958).
# For 28 px digits, "strong" views at scale 20 did better (MNIST-5k, strength 0.8: 0.88 against 0.845 for the default),
# and the default views and scale at guidance_temperature 3 better still (0.96; see DEFAULT_GUIDANCE_TEMPERATURES).
DEFAULT_COUNTERFACTUAL_GUIDANCE_SCALES = {"x0": 10.0, "noisy": 40.0, "features": 10.0}

# How often generation recomputes the classifier's direction ([`ClassifierGuidance`]); it is reused in between. On the
# 4000-step MNIST-5k model, "x0" guidance recomputed every 2nd step kept the share judged as requested and the
# precision of every step's gradient, and cut a guided step from 1.58x to 1.20x an unguided one. The other methods
# were not measured with reuse. Counterfactuals recompute at every step: reuse cost them 3 points of validity under an
# independent network and 6 under the model (MNIST-5k, docs/benchmarks.md#explanations-strong-views).
DEFAULT_GUIDANCE_CACHE_INTERVALS = {"x0": 2, "noisy": 1, "features": 1}

# The temperature at which generation reads the classifier ([`class_log_prob`]). On the all-label MNIST-5k model ("x0",
# medium views, scale 10; validation, 200 samples) the share an independent network judges as requested was 0.885 /
# 0.94 / 0.955 / 0.99 at T = 1 / 1.5 / 2 / 3, with precision kept, but recall (the real digits' variety the samples
# cover) fell from 0.875 to 0.86 / 0.80 / 0.63: T = 2 lifts the requested class without losing most of the variety
# (50 labels: 0.825 to 0.94, recall 0.94 to 0.83; docs/benchmarks.md#explanations-guidance-temperature). "noisy" and
# "features" were not measured with it. Counterfactuals read the classifier at 1 (resolve_guidance_temperature): at 3
# the X-ray edits grew and the 8x8 digit edits convinced the independent network less.
DEFAULT_GUIDANCE_TEMPERATURES = {"x0": 2.0, "noisy": 1.0, "features": 1.0}


def check_guidance_method(guidance_method: str) -> None:
    """Raise a `ValueError` when `guidance_method` is not one of [`GUIDANCE_METHODS`]."""
    if guidance_method not in GUIDANCE_METHODS:
        raise ValueError(f"`guidance_method` must be one of {GUIDANCE_METHODS}, got {guidance_method!r}.")


def check_guidance_task(task: str) -> None:
    """Raise a `ValueError` when `task` is not one of [`GUIDANCE_TASKS`]."""
    if task not in GUIDANCE_TASKS:
        raise ValueError(f"`task` must be one of {GUIDANCE_TASKS}, got {task!r}.")


def default_guidance_method(unet: JointUNet2DModel, task: str = "generation") -> str:
    """
    The method the pipelines use when none is given, for `task` `"generation"` or `"counterfactual"`: `"x0"`, with
    random views of the denoised estimate ([`DEFAULT_GUIDANCE_AUGMENTATIONS`]), for every model.

    - Generation: on MNIST-5k (4000-step model, 1,000 samples, validation) it beat `"noisy"` at the same scale on the
      share of samples an independent network judges as requested, and kept more of the unguided samples' precision.
    - Counterfactuals: it beat `"noisy"` (scale 40) on the validation splits, also for models trained with the
      noise-aware term: an independent network accepted 0.965 of the PneumoniaMNIST edits against 0.77, and 0.917 of
      the 8x8 digits edits against 0.882 (docs/benchmarks.md#explanations-strong-views).
    """
    check_guidance_task(task)
    return "x0"


def resolve_guidance_method(guidance_method: str | None, unet: JointUNet2DModel, task: str = "generation") -> str:
    """`guidance_method`, or the default for `task` ([`default_guidance_method`]) when it is `None`; checked."""
    guidance_method = default_guidance_method(unet, task) if guidance_method is None else guidance_method
    check_guidance_method(guidance_method)
    return guidance_method


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


def resolve_guidance_augmentation(guidance_augmentation: str | None, guidance_method: str) -> str | None:
    """
    The random views to use: `guidance_augmentation`, the method's default in [`DEFAULT_GUIDANCE_AUGMENTATIONS`] when
    it is `None`, or no views for `"none"`. Raises a `ValueError` as [`check_guidance_augmentation`] does.
    """
    check_guidance_method(guidance_method)
    if guidance_augmentation is None:
        return DEFAULT_GUIDANCE_AUGMENTATIONS[guidance_method]
    if guidance_augmentation == "none":
        return None
    check_guidance_augmentation(guidance_augmentation, guidance_method)
    return guidance_augmentation


def resolve_guidance_cache_interval(
    guidance_cache_interval: int | None, guidance_method: str, task: str = "generation"
) -> int:
    """
    How many steps one computation of the classifier's direction serves: `guidance_cache_interval`, or when it is
    `None` the method's default for generation ([`DEFAULT_GUIDANCE_CACHE_INTERVALS`]) and 1 for counterfactuals.
    Raises a `ValueError` unless the result is a positive integer.
    """
    check_guidance_method(guidance_method)
    check_guidance_task(task)
    if guidance_cache_interval is None:
        return DEFAULT_GUIDANCE_CACHE_INTERVALS[guidance_method] if task == "generation" else 1
    is_int = isinstance(guidance_cache_interval, int) and not isinstance(guidance_cache_interval, bool)
    if not is_int or guidance_cache_interval < 1:
        raise ValueError(f"`guidance_cache_interval` must be a positive integer, got {guidance_cache_interval!r}.")
    return guidance_cache_interval


def resolve_guidance_temperature(
    guidance_temperature: float | None, guidance_method: str, task: str = "generation"
) -> float:
    """
    The temperature at which guidance reads the classifier ([`class_log_prob`]): `guidance_temperature`, or when it is
    `None` the method's default for generation ([`DEFAULT_GUIDANCE_TEMPERATURES`]) and 1 for counterfactuals. Raises
    a `ValueError` unless the result is a finite number > 0.
    """
    check_guidance_method(guidance_method)
    check_guidance_task(task)
    if guidance_temperature is None:
        return DEFAULT_GUIDANCE_TEMPERATURES[guidance_method] if task == "generation" else 1.0
    is_number = isinstance(guidance_temperature, (int, float)) and not isinstance(guidance_temperature, bool)
    if not is_number or not math.isfinite(guidance_temperature) or guidance_temperature <= 0:
        raise ValueError(f"`guidance_temperature` must be a finite number > 0, got {guidance_temperature!r}.")
    return float(guidance_temperature)


def augmentation_generator(generator: torch.Generator | list[torch.Generator] | None) -> torch.Generator:
    """
    A CPU generator for the random views of [`random_affine_views`], seeded by one draw from `generator` (its first
    entry for a list), so that the same generator gives the same images; from torch's global generator when
    `generator` is `None`.
    """
    source = generator[0] if isinstance(generator, list) else generator
    device = source.device if source is not None else "cpu"
    seed = torch.randint(0, 2**62, (1,), generator=source, device=device)
    return torch.Generator().manual_seed(int(seed))


def random_affine_views(images: torch.Tensor, strength: str, generator: torch.Generator) -> torch.Tensor:
    """
    A random shift, rotation and scaling of each image, with the geometry of the classifier augmentation `strength`
    ([`CLASSIFIER_AUGMENTATIONS`]: e.g. `"medium"` shifts by up to 10 % of the size, rotates by up to 10 degrees and
    scales by 0.9 to 1.1), border pixels repeated. Differentiable in `images`; the parameters are drawn from
    `generator` (on the CPU), not from torch's global generator. Unlike the training augmentation, values are not
    clipped to [-1, 1]: early in sampling most of the denoised estimate lies outside it, and clipping would stop the
    gradient there.
    """
    settings = CLASSIFIER_AUGMENTATIONS[strength]
    batch, _, height, width = images.shape
    uniform = torch.rand(batch, 4, generator=generator) * 2 - 1
    translations = uniform[:, :2] * settings["translate"] * torch.tensor([width, height])
    angle = uniform[:, 2] * settings["degrees"]
    low, high = settings["scale"]
    scale = (low + (uniform[:, 3:] + 1) / 2 * (high - low)).expand(batch, 2)
    center = torch.tensor([(width - 1) / 2, (height - 1) / 2]).expand(batch, 2)
    matrix = get_affine_matrix2d(translations, center, scale, angle)[:, :2]
    views = warp_affine(images.float(), matrix.to(images.device), (height, width), padding_mode="border")
    return views.to(images.dtype)


def resolve_guidance_scale(
    guidance_scale: float | None, guidance_method: str, defaults: dict[str, float] = DEFAULT_GUIDANCE_SCALES
) -> float:
    """
    Return the guidance scale to use: `guidance_scale`, or the method's value in `defaults` when it is `None`
    ([`DEFAULT_GUIDANCE_SCALES`] for generation, [`DEFAULT_COUNTERFACTUAL_GUIDANCE_SCALES`] for counterfactuals).
    Raises a `ValueError` for an unknown method or a negative scale.
    """
    check_guidance_method(guidance_method)
    if guidance_scale is None:
        return defaults[guidance_method]
    if not isinstance(guidance_scale, (int, float)) or isinstance(guidance_scale, bool):
        raise ValueError(f"`guidance_scale` must be a non-negative number, got {guidance_scale!r}.")
    if not math.isfinite(guidance_scale) or guidance_scale < 0:
        raise ValueError(f"`guidance_scale` must be a finite number >= 0 (0 disables guidance), got {guidance_scale}.")
    return float(guidance_scale)


def alpha_prod_at(scheduler, timestep: torch.Tensor | int | float, sample: torch.Tensor) -> torch.Tensor:
    """
    The cumulative product `abar_t` of the scheduler's noise schedule at `timestep`, as a scalar tensor on the device
    and dtype of `sample`.

    Works for every scheduler that exposes `alphas_cumprod` indexed by training timestep (DDPM, DDIM, PNDM, DPM-Solver,
    Euler, ...). Non-integer timesteps are rounded to the nearest training timestep.
    """
    alphas_cumprod = getattr(scheduler, "alphas_cumprod", None)
    if alphas_cumprod is None:
        raise ValueError(
            "Classifier guidance needs a scheduler with `alphas_cumprod` (for example DDPMScheduler or "
            f"DDIMScheduler), got {type(scheduler).__name__}."
        )
    index = int(torch.as_tensor(timestep).float().round().item())
    index = min(max(index, 0), len(alphas_cumprod) - 1)
    return torch.as_tensor(alphas_cumprod[index]).to(device=sample.device, dtype=sample.dtype)


def predicted_original_sample(
    sample: torch.Tensor, noise_pred: torch.Tensor, alpha_prod: torch.Tensor, clip_sample: bool = False
) -> torch.Tensor:
    """
    The denoised estimate `x0_hat = (x_t - sqrt(1 - abar_t) * eps) / sqrt(abar_t)`, optionally clamped to [-1, 1].

    Clamping stops the gradient for pixels outside [-1, 1], which early in sampling is most of them, so guidance leaves
    it off by default.
    """
    x0 = (sample - (1 - alpha_prod).sqrt() * noise_pred) / alpha_prod.sqrt()
    return x0.clamp(-1, 1) if clip_sample else x0


def class_log_prob(
    logits: torch.Tensor, targets: torch.Tensor, is_multi_label: bool, temperature: float = 1.0
) -> torch.Tensor:
    """
    Log-probability of the target of each sample under the classifier, shape `(batch,)`; with a `temperature` T,
    `T * log p_T`, where `p_T` reads `logits / T`.

    Guidance follows the gradient of this value. At T = 1 it is `(onehot - softmax) * dlogits`, which vanishes as soon
    as the classifier is confident and points mostly away from the runner-up class; at T > 1 it is
    `(onehot - softmax(logits / T)) * dlogits`: the same push while the classifier is unsure, a push that lasts until
    the logits' margin is T times larger, and one spread over every other class. The factor T keeps the guidance scale
    comparable across temperatures.

    Args:
        logits (`torch.Tensor` of shape `(batch, num_classes)`):
            Classifier logits.
        targets (`torch.Tensor`):
            Single-label: class indices of shape `(batch,)`; the result is `log_softmax(logits)[target]`.
            Multi-label: a target set of shape `(batch, num_classes)` with 1 (label wanted), 0 (label not wanted) or
            -1 (either is fine); the result is the sum of `log sigmoid` over the wanted labels and of
            `log (1 - sigmoid)` over the unwanted ones, i.e. the log-probability of the exact set when no entry is -1.
        is_multi_label (`bool`):
            Whether the classifier is a multi-label (sigmoid) classifier.
        temperature (`float`, *optional*, defaults to 1.0):
            The temperature T (see above); 1 gives the plain log-probability.
    """
    logits = logits.float() / temperature
    if is_multi_label:
        targets = targets.to(logits)
        mask = (targets >= 0).to(logits)
        log_probs = -F.binary_cross_entropy_with_logits(logits, targets.clamp(min=0), reduction="none")
        return temperature * (log_probs * mask).sum(dim=1)
    return temperature * logits.log_softmax(dim=1).gather(1, targets.long().view(-1, 1)).squeeze(1)


def x0_guidance_gradient(
    unet: JointUNet2DModel,
    sample: torch.Tensor,
    noise_pred: torch.Tensor,
    alpha_prod: torch.Tensor,
    targets: torch.Tensor,
    guidance_augmentation: str | None = None,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """
    Gradient of `log p(target | x0_hat)` with respect to the denoised estimate `x0_hat`, shape of `sample` (of
    `T * log p_T` at a `temperature` T, see [`class_log_prob`]).

    The classifier reads `x0_hat` at timestep 0, as it was trained: one forward and backward pass through the encoder
    only. The noise prediction is treated as a constant, so this is also `sqrt(abar_t)` times the gradient with respect
    to `x_t`. With `guidance_augmentation` it reads a random view of `x0_hat` instead ([`random_affine_views`], drawn
    from `generator`), and the gradient flows back through the transformation.
    """
    with torch.enable_grad():
        x0 = predicted_original_sample(sample.detach(), noise_pred.detach(), alpha_prod)
        x0 = x0.detach().requires_grad_(True)
        view = x0 if guidance_augmentation is None else random_affine_views(x0, guidance_augmentation, generator)
        log_prob = class_log_prob(unet.classify(view, 0), targets, unet.is_multi_label, temperature)
        (grad,) = torch.autograd.grad(log_prob.sum(), x0)
    return grad.to(sample.dtype)


def bounded_x0_guidance(
    noise_pred: torch.Tensor, grad_x0: torch.Tensor, alpha_prod: torch.Tensor, guidance_scale: float
) -> torch.Tensor:
    """
    The noise prediction that moves the denoised estimate `x0_hat` by `guidance_scale * g`, where `g` is `grad_x0`
    with its root mean square per image clipped to 1.

    Since `x0_hat = (x_t - sqrt(1 - abar_t) * eps) / sqrt(abar_t)`, that is
    `eps - sqrt(abar_t / (1 - abar_t)) * guidance_scale * g`. The root-mean-square move of `x0_hat` never exceeds
    `guidance_scale` (in [-1, 1] pixel units), whatever the noise level or the classifier's confidence.
    """
    dims = tuple(range(1, grad_x0.ndim))
    rms = grad_x0.to(torch.promote_types(grad_x0.dtype, torch.float32)).pow(2).mean(dim=dims, keepdim=True).sqrt()
    step = guidance_scale * grad_x0 / rms.clamp(min=1.0).to(grad_x0.dtype)
    return noise_pred - (alpha_prod / (1 - alpha_prod).clamp(min=1e-12)).sqrt() * step


def apply_classifier_guidance(
    noise_pred: torch.Tensor, grad: torch.Tensor, alpha_prod: torch.Tensor, guidance_scale: float
) -> torch.Tensor:
    """
    The classifier-guided noise prediction `eps - scale * sqrt(1 - abar_t) * grad_x_t log p(y | x_t)`
    (Dhariwal & Nichol, 2021, eq. 14): the score moves towards higher class probability.
    """
    return noise_pred - guidance_scale * (1 - alpha_prod).sqrt() * grad


def noisy_guidance_gradient(
    unet: JointUNet2DModel,
    sample: torch.Tensor,
    timestep: torch.Tensor | int,
    targets: torch.Tensor,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    One forward pass gives the noise prediction and the classifier's logits of `x_t` at `timestep`
    ([`JointUNet2DModel.forward_with_features`]); returns the noise prediction and the gradient of the target
    log-probability with respect to `x_t` (a backward pass through the encoder only), at `temperature`
    ([`class_log_prob`]).
    """
    with torch.enable_grad():
        x_t = sample.detach().requires_grad_(True)
        noise_pred, features = unet.forward_with_features(x_t, timestep)
        log_prob = class_log_prob(unet.classifier(features), targets, unet.is_multi_label, temperature)
        (grad,) = torch.autograd.grad(log_prob.sum(), x_t)
    return noise_pred.detach(), grad.to(sample.dtype)


def feature_guidance_shifts(
    unet: JointUNet2DModel,
    sample: torch.Tensor,
    timestep: torch.Tensor | int,
    targets: torch.Tensor,
    guidance_scale: float,
    temperature: float = 1.0,
) -> list[torch.Tensor]:
    """
    Per-stage shifts of the encoder representations towards the target, for
    [`JointUNet2DModel.shift_encoder_features`].

    The encoder runs once on `x_t` at `timestep` (without gradient), the pooled features are fed to the classifier
    head, and the gradient of the target log-probability with respect to the pooled features is split by
    [`JointUNet2DModel.feature_channels`]. Shift `i` is `guidance_scale * grad_i`, of shape `(batch, channels_i)`. The
    log-probability is read at `temperature` ([`class_log_prob`]).
    """
    with torch.no_grad():
        features = unet.extract_features(sample, timestep)
    with torch.enable_grad():
        features = features.detach().float().requires_grad_(True)
        log_prob = class_log_prob(unet.classifier(features.to(unet.dtype)), targets, unet.is_multi_label, temperature)
        (grad,) = torch.autograd.grad(log_prob.sum(), features)
    return [guidance_scale * g.to(sample.dtype) for g in grad.split(unet.feature_channels, dim=1)]


def scheduler_step_kwargs(scheduler, guided: bool, eta: float | None = None) -> dict:
    """
    Extra keyword arguments for `scheduler.step`.

    Schedulers that clip the predicted clean sample but keep the unclipped noise prediction for the direction term
    (DDIM with `clip_sample=True`) would clip away the guidance's move of `x0` and keep only its opposite move in the
    noise term, pushing samples *away* from the target. When guiding, such schedulers are asked to recompute the noise
    from the clipped sample (`use_clipped_model_output=True`), as in Dhariwal & Nichol's DDIM sampler. `eta` (DDIM's
    stochasticity, 0 deterministic, 1 as DDPM) is passed to schedulers that take it.
    """
    parameters = inspect.signature(scheduler.step).parameters
    kwargs = {}
    if guided and "use_clipped_model_output" in parameters:
        kwargs["use_clipped_model_output"] = True
    if eta is not None and "eta" in parameters:
        kwargs["eta"] = eta
    return kwargs


def guided_noise_prediction(
    unet: JointUNet2DModel,
    scheduler,
    sample: torch.Tensor,
    timestep: torch.Tensor | int,
    targets: torch.Tensor | None,
    guidance_scale: float,
    guidance_method: str = "x0",
    guidance_augmentation: str | None = None,
    generator: torch.Generator | None = None,
    guidance_temperature: float = 1.0,
) -> torch.Tensor:
    """
    The noise prediction for one denoising step, guided towards `targets` with `guidance_method`.

    With `targets=None` or `guidance_scale == 0` this is exactly `unet(sample, timestep).sample`, and no gradient is
    computed.

    Args:
        unet ([`JointUNet2DModel`]):
            The joint model: denoiser and classifier.
        scheduler ([`~diffusers.SchedulerMixin`]):
            The scheduler; `"x0"` guidance reads `abar_t` from its `alphas_cumprod`.
        sample (`torch.Tensor` of shape `(batch, channels, height, width)`):
            The noisy sample `x_t` (after `scheduler.scale_model_input`).
        timestep (`torch.Tensor` or `int`):
            The current timestep.
        targets (`torch.Tensor`, *optional*):
            Targets as in [`class_log_prob`].
        guidance_scale (`float`):
            Strength of the guidance; 0 disables it.
        guidance_method (`str`, *optional*, defaults to `"x0"`):
            `"x0"` (bounded classifier guidance on the denoised estimate), `"noisy"` (the classifier reads `x_t`) or
            `"features"` (shift the encoder representations).
        guidance_augmentation (`str`, *optional*):
            With `"x0"`: one of [`GUIDANCE_AUGMENTATIONS`]; the classifier then reads a random view of the
            denoised estimate ([`random_affine_views`]). `None` reads it as it is.
        generator (`torch.Generator`, *optional*):
            Draws the random views (see [`augmentation_generator`]); torch's global generator when `None`.
        guidance_temperature (`float`, *optional*, defaults to 1.0):
            The temperature at which the classifier is read ([`class_log_prob`]).
    """
    check_guidance_method(guidance_method)
    check_guidance_augmentation(guidance_augmentation, guidance_method)
    if targets is None or guidance_scale == 0:
        return unet(sample, timestep).sample
    noise_pred, _ = guided_prediction_and_direction(
        unet,
        scheduler,
        sample,
        timestep,
        targets,
        guidance_scale,
        guidance_method,
        guidance_augmentation,
        generator,
        guidance_temperature=guidance_temperature,
    )
    return noise_pred


def guided_prediction_and_direction(
    unet: JointUNet2DModel,
    scheduler,
    sample: torch.Tensor,
    timestep: torch.Tensor | int,
    targets: torch.Tensor,
    guidance_scale: float,
    guidance_method: str,
    guidance_augmentation: str | None = None,
    generator: torch.Generator | None = None,
    direction: torch.Tensor | list[torch.Tensor] | None = None,
    guidance_temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor | list[torch.Tensor]]:
    """
    The guided noise prediction of [`guided_noise_prediction`] and the classifier's direction it applied: the gradient
    at `x0_hat` (`"x0"`), the gradient at `x_t` (`"noisy"`) or the feature shifts (`"features"`). Given a `direction`
    from an earlier step, it is applied again instead of being computed, which costs one plain forward pass: the
    `"x0"` step stays bounded and the `"noisy"` step is rescaled for the current noise level. The classifier is read
    at `guidance_temperature` ([`class_log_prob`]).
    """
    if guidance_method == "features":
        shifts = direction
        if shifts is None:
            shifts = feature_guidance_shifts(unet, sample, timestep, targets, guidance_scale, guidance_temperature)
        with unet.shift_encoder_features(shifts):
            return unet(sample, timestep).sample, shifts
    prediction_type = getattr(scheduler.config, "prediction_type", "epsilon")
    if prediction_type != "epsilon":
        raise ValueError(
            f'`guidance_method="{guidance_method}"` needs a scheduler with prediction_type="epsilon", got '
            f'{prediction_type!r}; use `guidance_method="features"` instead.'
        )
    alpha_prod = alpha_prod_at(scheduler, timestep, sample)
    if guidance_method == "noisy":
        if unet.config.out_channels != unet.config.in_channels:
            raise ValueError('`guidance_method="noisy"` needs a model that predicts the noise only (no variance).')
        if direction is None:
            noise_pred, grad = noisy_guidance_gradient(unet, sample, timestep, targets, guidance_temperature)
        else:
            noise_pred, grad = unet(sample, timestep).sample, direction
        return apply_classifier_guidance(noise_pred, grad, alpha_prod, guidance_scale), grad
    model_output = unet(sample, timestep).sample
    # Models with a learned variance predict (eps, variance) stacked on the channel axis; only eps is guided.
    noise_pred, variance = model_output[:, : sample.shape[1]], model_output[:, sample.shape[1] :]
    grad = direction
    if grad is None:
        grad = x0_guidance_gradient(
            unet, sample, noise_pred, alpha_prod, targets, guidance_augmentation, generator, guidance_temperature
        )
    noise_pred = bounded_x0_guidance(noise_pred, grad, alpha_prod, guidance_scale)
    return (torch.cat([noise_pred, variance], dim=1) if variance.shape[1] else noise_pred), grad


@dataclass
class ClassifierGuidance:
    """
    The classifier guidance of one sampling trajectory: the model, its scheduler, what to guide towards and how, and
    the generator of the random views. Build it with [`ClassifierGuidance.start`] where the trajectory starts and ask
    it for each step's noise prediction ([`ClassifierGuidance.noise_prediction`]). With `cache_interval=k` the
    classifier's direction is computed at the first of every `k` steps and reused for the next `k - 1`
    ([`guided_prediction_and_direction`]), which saves its backward pass on those steps. The classifier is read at
    `temperature` ([`class_log_prob`]).

    Example:

    ```py
    >>> guidance = ClassifierGuidance.start(unet, scheduler, targets, 3.0, "x0", "medium", generator)
    >>> for t in scheduler.timesteps:
    ...     noise_pred = guidance.noise_prediction(scheduler.scale_model_input(sample, t), t)
    ...     sample = scheduler.step(noise_pred, t, sample, **guidance.step_kwargs()).prev_sample
    ```
    """

    unet: JointUNet2DModel
    scheduler: object
    targets: torch.Tensor | None
    scale: float
    method: str = "x0"
    augmentation: str | None = None
    views_generator: torch.Generator | None = None
    cache_interval: int = 1
    temperature: float = 1.0
    _direction: torch.Tensor | list[torch.Tensor] | None = field(default=None, init=False, repr=False)
    _steps: int = field(default=0, init=False, repr=False)

    @classmethod
    def start(
        cls,
        unet: JointUNet2DModel,
        scheduler,
        targets: torch.Tensor | None,
        scale: float,
        method: str = "x0",
        augmentation: str | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        cache_interval: int = 1,
        temperature: float = 1.0,
    ) -> ClassifierGuidance:
        """
        Check the settings and, when the trajectory is guided with random views, take the views' generator from
        `generator` ([`augmentation_generator`], one draw). Call it after drawing the trajectory's initial noise, so
        that guided and unguided trajectories start from the same noise.
        """
        check_guidance_method(method)
        check_guidance_augmentation(augmentation, method)
        cache_interval = resolve_guidance_cache_interval(cache_interval, method)
        temperature = resolve_guidance_temperature(temperature, method)
        guidance = cls(
            unet,
            scheduler,
            targets,
            scale,
            method,
            augmentation,
            cache_interval=cache_interval,
            temperature=temperature,
        )
        if guidance.is_active and augmentation:
            guidance.views_generator = augmentation_generator(generator)
        return guidance

    @property
    def is_active(self) -> bool:
        """Whether the trajectory is guided at all (targets given and a non-zero scale)."""
        return self.targets is not None and self.scale != 0

    def step_kwargs(self, eta: float | None = None) -> dict:
        """The extra keyword arguments for `scheduler.step` ([`scheduler_step_kwargs`])."""
        return scheduler_step_kwargs(self.scheduler, guided=self.is_active, eta=eta)

    def noise_prediction(self, sample: torch.Tensor, timestep: torch.Tensor | int) -> torch.Tensor:
        """
        The guided noise prediction at `sample` (`x_t`, scaled for the model) and `timestep`; the classifier's
        direction is recomputed at every `cache_interval`-th call and reused in between.
        """
        if not self.is_active:
            return self.unet(sample, timestep).sample
        reuse = self._direction if self._steps % self.cache_interval else None
        self._steps += 1
        noise_pred, self._direction = guided_prediction_and_direction(
            self.unet,
            self.scheduler,
            sample,
            timestep,
            self.targets,
            self.scale,
            self.method,
            self.augmentation,
            self.views_generator,
            direction=reuse,
            guidance_temperature=self.temperature,
        )
        return noise_pred
