# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""`JointDiffusionPipeline`: unconditional or classifier-guided sampling from a [`JointUNet2DModel`]."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput
from diffusers.utils import logging, replace_example_docstring
from diffusers.utils.torch_utils import randn_tensor

from .guidance import ClassifierGuidance
from .guidance_config import GuidanceConfig, guidance_config_from_arguments
from .pipeline_utils import (
    ClassLabels,
    JointClassifierMixin,
    check_batch_size,
    check_output_type,
    postprocess_images,
    prepare_class_targets,
    unet_sample_size,
)

logger = logging.get_logger(__name__)

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> import torch
        >>> from diffusers import DDIMScheduler
        >>> from diffusers_joint import JointUNet2DModel
        >>> from diffusers_joint.pipelines import JointDiffusionPipeline

        >>> unet = JointUNet2DModel(
        ...     sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16), layers_per_block=1,
        ...     norm_num_groups=4, down_block_types=("DownBlock2D", "DownBlock2D"),
        ...     up_block_types=("UpBlock2D", "UpBlock2D"), num_classes=3, label_names=["cat", "dog", "bird"],
        ... )  # or JointUNet2DModel.from_pretrained(...) for a trained model
        >>> pipe = JointDiffusionPipeline(unet=unet, scheduler=DDIMScheduler(num_train_timesteps=100))

        >>> # two guided samples per class, given by index or by name
        >>> output = pipe(class_labels=[0, 0, "dog", "dog", 2, 2], num_inference_steps=10,
        ...               generator=torch.Generator().manual_seed(0))
        >>> len(output.images), output.class_labels.tolist()
        (6, [0, 0, 1, 1, 2, 2])

        >>> # guidance settings in one value; fields left None take the defaults for generation
        >>> from diffusers_joint import GuidanceConfig
        >>> noisy = pipe(class_labels=[0, 1], guidance=GuidanceConfig(method="noisy", temperature=1.0),
        ...              num_inference_steps=10, generator=torch.Generator().manual_seed(0))

        >>> # the joint model also classifies
        >>> pipe.classify(output.images).probs.shape
        torch.Size([6, 3])

        >>> # in latent space: the UNet diffuses the latents of a VAE (here 4 channels at 8x8 for 16x16 images)
        >>> from diffusers import AutoencoderKL
        >>> vae = AutoencoderKL(
        ...     in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * 2,
        ...     up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=4,
        ...     norm_num_groups=4, sample_size=16,
        ... )  # or AutoencoderKL.from_pretrained(...), trained with examples/train_autoencoder.py
        >>> latent_unet = JointUNet2DModel(
        ...     sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        ...     norm_num_groups=4, down_block_types=("DownBlock2D", "DownBlock2D"),
        ...     up_block_types=("UpBlock2D", "UpBlock2D"), num_classes=3, label_names=["cat", "dog", "bird"],
        ... )
        >>> scheduler = DDIMScheduler(num_train_timesteps=100, clip_sample=False)  # latents exceed [-1, 1]
        >>> latent_pipe = JointDiffusionPipeline(
        ...     unet=latent_unet, scheduler=scheduler, vae=vae
        ... )
        >>> latent_pipe.pixel_size, latent_pipe.pixel_channels
        (16, 1)
        >>> samples = latent_pipe(class_labels=["dog", "bird"], num_inference_steps=10, output_type="pt",
        ...                       generator=torch.Generator().manual_seed(0)).images
        >>> samples.shape  # decoded: the VAE's images, not the latents
        torch.Size([2, 1, 16, 16])
        >>> latent_pipe.classify(samples).probs.shape  # images are encoded before the classifier reads them
        torch.Size([2, 3])
        ```
"""


@dataclass
class JointDiffusionPipelineOutput(ImagePipelineOutput):
    """
    Output of [`JointDiffusionPipeline`].

    Args:
        images (`list[PIL.Image.Image]`, `np.ndarray` or `torch.Tensor`):
            The samples: PIL images, a float array `(batch, height, width, channels)` in [0, 1], or a tensor
            `(batch, channels, height, width)` in [0, 1].
        class_labels (`torch.Tensor`, *optional*):
            The requested classes: indices of shape `(batch,)` (single-label models) or multi-hot targets of shape
            `(batch, num_classes)` (multi-label models); `None` for unconditional sampling.
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    class_labels: torch.Tensor | None = None


class JointDiffusionPipeline(JointClassifierMixin, DiffusionPipeline):
    r"""
    Pipeline for unconditional and classifier-guided image generation with a Joint Diffusion model (Deja et al.,
    2023): the UNet's own classifier steers the samples towards requested classes, with no separate noisy classifier.

    This model inherits from [`~diffusers.DiffusionPipeline`]. Check the superclass documentation for the generic
    methods implemented for all pipelines (downloading, saving, running on a particular device, etc.).

    Three guidance methods are available (see [`~pipelines.guidance`]), chosen and set with a [`GuidanceConfig`]:

    - `"x0"` (default): classifier guidance on the denoised estimate. At each step the classifier scores
      `x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)` at timestep 0 (as it was trained) and the noise
      prediction becomes `eps - scale * sqrt(1 - abar_t) * grad_{x_t} log p(y | x0_hat)`, the gradient taken with the
      noise prediction held fixed (one extra backward pass through the encoder per step).
    - `"noisy"`: classifier guidance proper, for models trained with the noise-aware classification term
      (`train_joint.py --noisy_classifier_weight`): the classifier reads the encoder features of `x_t` at timestep t
      from the pass that predicts the noise, and `eps - scale * sqrt(1 - abar_t) * grad_{x_t} log p(y | x_t, t)`
      (one backward pass through the encoder per step).
    - `"features"`: the Joint Diffusion paper's variant. The pooled encoder representations of `x_t` are moved by
      `scale * grad log p(y | features)` and the decoder denoises with the shifted representations (one extra encoder
      pass per step, no backward pass through the UNet).

    With a `vae`, the pipeline is a latent one (as in latent diffusion): the UNet denoises the VAE's scaled latents,
    the guidance and the classifier act on latents, and the samples are decoded into images of the VAE's size,
    `pixel_size` (the UNet's `sample_size` times `vae_scale_factor`).

    Parameters:
        unet ([`JointUNet2DModel`]):
            The joint model: a `UNet2DModel` that predicts noise, with a classifier head on its encoder.
        scheduler ([`~diffusers.SchedulerMixin`]):
            A scheduler used with `unet` to denoise, for example [`~diffusers.DDPMScheduler`] or
            [`~diffusers.DDIMScheduler`]. `"x0"` and `"noisy"` guidance need a scheduler with `alphas_cumprod` and
            `prediction_type="epsilon"`.
        intensity_normalization (`str`, *optional*, defaults to `"dtype"`):
            How input images' intensities map to [-1, 1], as in training (see
            [`~data.intensity.IntensityNormalization`]): `"dtype"` (the dtype's range), `"minmax"`, `"percentile"` or
            `"window"`. Saved in `model_index.json`, so `from_pretrained` restores it.
        intensity_range (`list[float]`, *optional*):
            The percentiles (`"percentile"`) or the window `[low, high]` (`"window"`).
        vae ([`~diffusers.AutoencoderKL`], *optional*):
            The autoencoder of a latent pipeline; `None` (the default, and pipelines saved without one) diffuses
            images. Its `latent_channels` must equal the UNet's `in_channels`, and its `sample_size` the UNet's
            `sample_size` times `2 ** (len(block_out_channels) - 1)`; otherwise a `ValueError` names both values.
            Latents are `(mode - shift_factor) * scaling_factor` of the VAE's config (see
            [`~pipelines.latent_codec`]).
        pixel_channels (`int`, *optional*):
            Channels of the images of a latent pipeline, saved in `model_index.json`: the VAE's `in_channels` by
            default. Set 1 for grayscale images with a 3-channel VAE (such as most Hub VAEs): the channel is repeated
            on encoding and the decoded channels are averaged. Without a VAE it must be `None` or the UNet's
            `in_channels`.
    """

    model_cpu_offload_seq = "unet->vae"

    def check_inputs(self, batch_size: int, num_inference_steps: int, output_type: str, generator: Any = None) -> None:
        check_batch_size(batch_size)
        if isinstance(generator, list) and len(generator) not in (1, batch_size):
            raise ValueError(
                f"Got a list of {len(generator)} generators, but {batch_size} images: pass one generator per image "
                "(or a single one)."
            )
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"`num_inference_steps` must be a positive integer, got {num_inference_steps!r}.")
        check_output_type(output_type)

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        batch_size: int = 1,
        class_labels: ClassLabels | None = None,
        guidance_scale: float | None = None,
        guidance: GuidanceConfig | dict[str, Any] | None = None,
        num_inference_steps: int = 1000,
        generator: torch.Generator | list[torch.Generator] | None = None,
        eta: float = 0.0,
        output_type: str = "pil",
        return_dict: bool = True,
        **kwargs,
    ) -> JointDiffusionPipelineOutput | tuple:
        r"""
        The call function to the pipeline for generation.

        Args:
            batch_size (`int`, *optional*, defaults to 1):
                The number of images to generate. Ignored when `class_labels` is given (one image per label).
            class_labels (`int`, `str`, `list`, `torch.Tensor` or `np.ndarray`, *optional*):
                Classes to guide the samples towards, one image per entry: class indices or class names (see
                `unet.label2id`). For multi-label models each entry is a class or a list of classes (the target set:
                listed labels pulled towards present, the others towards absent), or pass a `(batch, num_classes)`
                multi-hot tensor (1 present, 0 absent, -1 either). `None` samples unconditionally.
            guidance_scale (`float`, *optional*):
                Strength of classifier guidance, as `guidance.scale` (give it in one place); 0 gives plain sampling
                (no gradient computed, identical to unguided sampling with the same generator). Defaults to the
                method's value in `DEFAULT_GUIDANCE_SCALES`.
            guidance ([`GuidanceConfig`] or `dict`, *optional*):
                How to guide: the method, scale, random views, reuse of the classifier's direction and the temperature
                at which the classifier is read. Fields left `None` (and `guidance=None`) take the defaults for
                generation ([`GuidanceConfig.resolve`]): `"x0"` guidance with `"medium"` random views. The views are
                drawn from `generator`, so results stay reproducible. The rules behind the defaults are on
                docs/experiments/guidance.md. The former `guidance_method`, `guidance_augmentation`,
                `guidance_cache_interval` and `guidance_temperature` arguments still work, with a `FutureWarning`.
            num_inference_steps (`int`, *optional*, defaults to 1000):
                The number of denoising steps, as for [`~diffusers.DDPMPipeline`] (use e.g. 50 with a DDIM scheduler).
            generator (`torch.Generator` or `list[torch.Generator]`, *optional*):
                A [`torch.Generator`](https://pytorch.org/docs/stable/generated/torch.Generator.html) to make
                generation deterministic.
            eta (`float`, *optional*, defaults to 0.0):
                DDIM's eta (η): 0 is deterministic DDIM, 1 adds DDPM's noise at every step; schedulers without it
                (e.g. DDPM) ignore it. With few-step DDIM, small and briefly trained models often draw cleaner
                images with η = 1 (see the benchmarks).
            output_type (`str`, *optional*, defaults to `"pil"`):
                `"pil"` (`PIL.Image`), `"np"` (`np.ndarray` `(batch, height, width, channels)`) or `"pt"`
                (`torch.Tensor` `(batch, channels, height, width)`), all in [0, 1]; a latent pipeline returns the
                decoded images, at `pixel_size` with `pixel_channels`, never latents.
            return_dict (`bool`, *optional*, defaults to `True`):
                Whether to return a [`JointDiffusionPipelineOutput`] instead of a tuple `(images, class_labels)`.

        Examples:

        Returns:
            [`JointDiffusionPipelineOutput`] or `tuple`: the images and the requested class labels.
        """
        guidance = guidance_config_from_arguments(guidance, guidance_scale, kwargs).resolve("generation")
        targets = None
        if class_labels is not None:
            targets = prepare_class_targets(self.unet, class_labels, name="class_labels")
            batch_size = len(targets)
        self.check_inputs(batch_size, num_inference_steps, output_type, generator)

        sample_size = unet_sample_size(self.unet)
        if isinstance(sample_size, int):
            image_shape = (batch_size, self.unet.config.in_channels, sample_size, sample_size)
        else:
            image_shape = (batch_size, self.unet.config.in_channels, *sample_size)  # latents for a latent pipeline

        device = self._execution_device
        if device.type == "mps":
            # randn does not work reproducibly on mps
            image = randn_tensor(image_shape, generator=generator, dtype=self.unet.dtype).to(device)
        else:
            image = randn_tensor(image_shape, generator=generator, device=device, dtype=self.unet.dtype)
        image = image * self.scheduler.init_noise_sigma
        if targets is not None:
            targets = targets.to(device)

        self.scheduler.set_timesteps(num_inference_steps, device=device)
        # Started after the initial noise, so guided and unguided sampling start from the same noise.
        classifier_guidance = ClassifierGuidance.start(self.unet, self.scheduler, targets, guidance, generator)
        step_kwargs = classifier_guidance.step_kwargs(eta, generator)
        for t in self.progress_bar(self.scheduler.timesteps):
            # 1. predict noise, guided towards the targets
            model_input = self.scheduler.scale_model_input(image, t)
            noise_pred = classifier_guidance.noise_prediction(model_input, t)
            # 2. compute previous image: x_t -> x_t-1
            image = self.scheduler.step(noise_pred, t, image, **step_kwargs).prev_sample

        if self.vae is not None:  # latent pipelines: decode to images (pixel pipelines keep the sample as it is)
            image = self.latents_to_images(image)
        image = postprocess_images(image, output_type)
        class_labels = targets.cpu() if targets is not None else None

        # Offload all models
        self.maybe_free_model_hooks()

        if not return_dict:
            return (image, class_labels)
        return JointDiffusionPipelineOutput(images=image, class_labels=class_labels)
