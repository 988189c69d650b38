# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Classifier guidance with the classifier of a [`JointUNet2DModel`], shared by the Joint Diffusion pipelines.

Three methods are implemented, one function per concept; which one runs, and how, is a [`GuidanceConfig`] (defaults
per method and task in `guidance_config`; the measurements behind them are on docs/experiments/guidance.md).

- `"x0"`, classifier guidance on the predicted clean image (the classifier read at the denoised estimate,
  as in "universal guidance"): the joint classifier is trained on clean images at timestep 0, so at every step the
  noisy sample `x_t` is mapped to its denoised estimate `x0_hat = (x_t - sqrt(1 - abar_t) * eps) / sqrt(abar_t)`, the
  classifier scores `x0_hat`, and the noise prediction is shifted so that `x0_hat` moves by `scale * g`, where `g` is
  the gradient of the target log-probability at `x0_hat` with its root mean square clipped to 1
  ([`bounded_x0_guidance`]). The move of `x0_hat` is therefore at most `scale` (root mean square, in [-1, 1] pixel
  units) at every noise level; classifier guidance's usual `eps - scale * sqrt(1 - abar_t) * grad_x_t` would move it
  by `scale * (1 - abar_t) / abar_t * g`, which explodes at high noise. With random views (the config's
  `augmentation`), the classifier reads a random shift, rotation and scaling of `x0_hat` at every step
  ([`random_affine_views`], the geometry the classifier was trained to ignore), so the gradient cannot rely on a pixel
  pattern at one exact position: over the steps it averages over views, as in "expectation over transformation".
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

Every method can compute its direction (gradient or shifts) once and reuse it for the next steps of a trajectory
(the config's `cache_interval`, applied by [`ClassifierGuidance`]).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from diffusers.utils import logging
from kornia.geometry.transform import get_affine_matrix2d, warp_affine

from ..data.augmentations import CLASSIFIER_AUGMENTATIONS
from ..models import JointUNet2DModel
from .guidance_config import GuidanceConfig, check_guidance_augmentation, check_guidance_method

logger = logging.get_logger(__name__)


@contextlib.contextmanager
def gradients_enabled() -> Iterator[None]:
    """
    Gradients on, also inside a caller's `torch.inference_mode()` (where `torch.enable_grad()` alone cannot give
    them): guidance differentiates the classifier whatever context the pipeline is called in.
    """
    with torch.inference_mode(False), torch.enable_grad():
        yield


def _normal_tensors(*tensors):
    """
    The tensors detached, as autograd may save them: those made under inference mode cannot be saved for backward,
    so they are copied (the others are not).
    """
    return tuple(
        (t.detach().clone() if t.is_inference() else t.detach()) if torch.is_tensor(t) else t for t in tensors
    )


def augmentation_generator(
    generator: torch.Generator | list[torch.Generator] | None,
) -> torch.Generator | list[torch.Generator]:
    """
    The CPU generator(s) of the random views of [`random_affine_views`], each seeded by one draw from `generator`, so
    that the same generator gives the same images: one per entry of a list of generators (so each image's views, like
    its noise, depend on its own generator only, as diffusers' generator lists promise), one for a single generator
    (or a list of one), from torch's global generator when `generator` is `None`.
    """
    if isinstance(generator, list) and len(generator) > 1:
        return [augmentation_generator(source) for source in generator]
    source = generator[0] if isinstance(generator, list) else generator
    device = source.device if source is not None else "cpu"
    seed = torch.randint(0, 2**62, (1,), generator=source, device=device)
    return torch.Generator().manual_seed(int(seed))


def random_affine_views(
    images: torch.Tensor, strength: str, generator: torch.Generator | list[torch.Generator]
) -> torch.Tensor:
    """
    A random shift, rotation and scaling of each image, with the geometry of the classifier augmentation `strength`
    ([`CLASSIFIER_AUGMENTATIONS`]: e.g. `"medium"` shifts by up to 10 % of the size, rotates by up to 10 degrees and
    scales by 0.9 to 1.1), border pixels repeated. Differentiable in `images`; the parameters are drawn from
    `generator` (on the CPU; a list gives each image's from its own), not from torch's global generator. Unlike the
    training augmentation, values are not clipped to [-1, 1]: early in sampling most of the denoised estimate lies
    outside it, and clipping would stop the gradient there.
    """
    settings = CLASSIFIER_AUGMENTATIONS[strength]
    batch, _, height, width = images.shape
    if isinstance(generator, list):
        if len(generator) != batch:
            raise ValueError(f"Got {len(generator)} view generators for {batch} images: pass one per image.")
        uniform = torch.cat([torch.rand(1, 4, generator=g) for g in generator]) * 2 - 1
    else:
        uniform = torch.rand(batch, 4, generator=generator) * 2 - 1
    translations = uniform[:, :2] * settings["translate"] * torch.tensor([width, height])
    angle = uniform[:, 2] * settings["degrees"]
    low, high = settings["scale"]
    scale = (low + (uniform[:, 3:] + 1) / 2 * (high - low)).expand(batch, 2)
    center = torch.tensor([(width - 1) / 2, (height - 1) / 2]).expand(batch, 2)
    matrix = get_affine_matrix2d(translations, center, scale, angle)[:, :2]
    views = warp_affine(images.float(), matrix.to(images.device), (height, width), padding_mode="border")
    return views.to(images.dtype)


def alpha_prod_at(scheduler, timestep: torch.Tensor | int | float, sample: torch.Tensor) -> torch.Tensor:
    """
    The cumulative product `abar_t` of the scheduler's noise schedule at `timestep`, as a scalar tensor on the device
    of `sample`, in float32 at least: in float16 `abar_t` of the cleanest timesteps rounds to 1, and `1 - abar_t` to 0.

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
    dtype = torch.promote_types(sample.dtype, torch.float32)
    return torch.as_tensor(alphas_cumprod[index]).to(device=sample.device, dtype=dtype)


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
    with gradients_enabled():
        sample, noise_pred, alpha_prod, targets = _normal_tensors(sample, noise_pred, alpha_prod, targets)
        x0 = predicted_original_sample(sample, noise_pred, alpha_prod)
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
    # the coefficient in float32 (alpha_prod's dtype): float16 has no 1e-12, and 1 - abar_t of ~1e-4 loses its digits
    coefficient = (alpha_prod / (1 - alpha_prod).clamp(min=1e-12)).sqrt()
    return noise_pred - (coefficient * step.to(coefficient.dtype)).to(noise_pred.dtype)


def apply_classifier_guidance(
    noise_pred: torch.Tensor, grad: torch.Tensor, alpha_prod: torch.Tensor, guidance_scale: float
) -> torch.Tensor:
    """
    The classifier-guided noise prediction `eps - scale * sqrt(1 - abar_t) * grad_x_t log p(y | x_t)`
    (Dhariwal & Nichol, 2021, eq. 14): the score moves towards higher class probability.
    """
    shift = guidance_scale * (1 - alpha_prod).sqrt() * grad.to(alpha_prod.dtype)
    return noise_pred - shift.to(noise_pred.dtype)


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
    with gradients_enabled():
        sample, timestep, targets = _normal_tensors(sample, timestep, targets)
        x_t = sample.requires_grad_(True)
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
    head, and the gradient of the target log-probability with respect to the pooled features is split by stage
    ([`JointUNet2DModel.feature_channels`]). Shift `i` is `guidance_scale * grad_i`, of shape `(batch, channels_i)`,
    and zero for a stage the head does not read ([`JointUNet2DModel.classifier_stages`]). The log-probability is read
    at `temperature` ([`class_log_prob`]).
    """
    with torch.no_grad():
        features = unet.extract_features(sample, timestep)
    with gradients_enabled():
        features, targets = _normal_tensors(features, targets)
        features = features.float().requires_grad_(True)
        log_prob = class_log_prob(unet.classifier(features.to(unet.dtype)), targets, unet.is_multi_label, temperature)
        (grad,) = torch.autograd.grad(log_prob.sum(), features)
    channels, stages = unet.feature_channels, unet.classifier_stages
    shifts = [sample.new_zeros(sample.shape[0], c) for c in channels]
    for stage, g in zip(stages, grad.split([channels[i] for i in stages], dim=1)):
        shifts[stage] = guidance_scale * g.to(sample.dtype)
    return shifts


def scheduler_step_kwargs(
    scheduler, guided: bool, eta: float | None = None, generator: torch.Generator | list | None = None
) -> dict:
    """
    Extra keyword arguments for `scheduler.step`.

    Schedulers that clip the predicted clean sample but keep the unclipped noise prediction for the direction term
    (DDIM with `clip_sample=True`) would clip away the guidance's move of `x0` and keep only its opposite move in the
    noise term, pushing samples *away* from the target. When guiding, such schedulers are asked to recompute the noise
    from the clipped sample (`use_clipped_model_output=True`), as in Dhariwal & Nichol's DDIM sampler. `eta` (DDIM's
    stochasticity, 0 deterministic, 1 as DDPM) and `generator` are passed to schedulers that take them.
    """
    parameters = inspect.signature(scheduler.step).parameters
    kwargs = {}
    if guided and "use_clipped_model_output" in parameters:
        kwargs["use_clipped_model_output"] = True
    if eta is not None and "eta" in parameters:
        kwargs["eta"] = eta
    if generator is not None and "generator" in parameters:  # PNDM, UniPC, Heun, LMS and DEIS draw no noise
        kwargs["generator"] = generator
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
    The classifier guidance of one sampling trajectory: the model, its scheduler, what to guide towards and how (a
    resolved [`GuidanceConfig`]), and the generator of the random views. Build it with [`ClassifierGuidance.start`]
    where the trajectory starts and ask it for each step's noise prediction ([`ClassifierGuidance.noise_prediction`]).
    With the config's `cache_interval=k` the classifier's direction is computed at the first of every `k` steps and
    reused for the next `k - 1` ([`guided_prediction_and_direction`]), which saves its backward pass on those steps.
    The classifier is read at the config's `temperature` ([`class_log_prob`]).

    Example:

    ```py
    >>> config = GuidanceConfig(scale=3.0).resolve("generation")
    >>> guidance = ClassifierGuidance.start(unet, scheduler, targets, config, generator)
    >>> for t in scheduler.timesteps:
    ...     noise_pred = guidance.noise_prediction(scheduler.scale_model_input(sample, t), t)
    ...     sample = scheduler.step(noise_pred, t, sample, **guidance.step_kwargs()).prev_sample
    ```
    """

    unet: JointUNet2DModel
    scheduler: object
    targets: torch.Tensor | None
    config: GuidanceConfig
    views_generator: torch.Generator | list[torch.Generator] | None = None
    _direction: torch.Tensor | list[torch.Tensor] | None = field(default=None, init=False, repr=False)
    _steps: int = field(default=0, init=False, repr=False)

    @classmethod
    def start(
        cls,
        unet: JointUNet2DModel,
        scheduler,
        targets: torch.Tensor | None,
        config: GuidanceConfig,
        generator: torch.Generator | list[torch.Generator] | None = None,
    ) -> ClassifierGuidance:
        """
        Guide with `config`, resolved for the task ([`GuidanceConfig.resolve`]); when the trajectory is guided with
        random views, take the views' generator from `generator` ([`augmentation_generator`], one draw). Call it after
        drawing the trajectory's initial noise, so that guided and unguided trajectories start from the same noise.
        """
        if not isinstance(config, GuidanceConfig) or not config.is_resolved:
            raise ValueError(f"`config` must be a resolved GuidanceConfig (GuidanceConfig.resolve), got {config!r}.")
        guidance = cls(unet, scheduler, targets, config)
        if guidance.is_active and config.views:
            guidance.views_generator = augmentation_generator(generator)
        return guidance

    @property
    def is_active(self) -> bool:
        """Whether the trajectory is guided at all (targets given and a non-zero scale)."""
        return self.targets is not None and self.config.scale != 0

    def step_kwargs(self, eta: float | None = None, generator: torch.Generator | list | None = None) -> dict:
        """The extra keyword arguments for `scheduler.step` ([`scheduler_step_kwargs`])."""
        return scheduler_step_kwargs(self.scheduler, guided=self.is_active, eta=eta, generator=generator)

    def noise_prediction(self, sample: torch.Tensor, timestep: torch.Tensor | int) -> torch.Tensor:
        """
        The guided noise prediction at `sample` (`x_t`, scaled for the model) and `timestep`; the classifier's
        direction is recomputed at every `cache_interval`-th call and reused in between.
        """
        if not self.is_active:
            return self.unet(sample, timestep).sample
        config = self.config
        reuse = self._direction if self._steps % config.cache_interval else None
        self._steps += 1
        noise_pred, self._direction = guided_prediction_and_direction(
            self.unet,
            self.scheduler,
            sample,
            timestep,
            self.targets,
            config.scale,
            config.method,
            config.views,
            self.views_generator,
            direction=reuse,
            guidance_temperature=config.temperature,
        )
        return noise_pred
