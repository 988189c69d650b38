# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""`CounterfactualPipeline`: visual counterfactual explanations with a [`JointUNet2DModel`]."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline, ImagePipelineOutput
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils import logging, replace_example_docstring
from diffusers.utils.torch_utils import randn_tensor

from .change_maps import change_localization, change_region, difference_heatmap, overlay_heatmap
from .guidance import ClassifierGuidance
from .guidance_config import GuidanceConfig, guidance_config_from_arguments
from .pipeline_utils import (
    ClassLabels,
    ImageInput,
    JointClassifierMixin,
    check_output_type,
    labels_from_probs,
    postprocess_images,
    prepare_class_targets,
    probs_from_logits,
)

logger = logging.get_logger(__name__)

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> import torch
        >>> from diffusers import DDIMScheduler
        >>> from diffusers_joint import JointUNet2DModel
        >>> from diffusers_joint.pipelines import CounterfactualPipeline

        >>> unet = JointUNet2DModel(
        ...     sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16), layers_per_block=1,
        ...     norm_num_groups=4, down_block_types=("DownBlock2D", "DownBlock2D"),
        ...     up_block_types=("UpBlock2D", "UpBlock2D"), num_classes=3, label_names=["cat", "dog", "bird"],
        ... )  # or JointUNet2DModel.from_pretrained(...) for a trained model
        >>> pipe = CounterfactualPipeline(unet=unet, scheduler=DDIMScheduler(num_train_timesteps=100))

        >>> images = torch.rand(2, 1, 8, 8) * 2 - 1  # or PIL images / numpy arrays
        >>> output = pipe(images, target_class="dog", strength=0.5, num_inference_steps=20,
        ...               search_strengths=True, generator=torch.Generator().manual_seed(0))
        >>> output.difference.shape  # counterfactual - input, in [-1, 1] pixel units
        (2, 1, 8, 8)
        >>> output.difference_heatmaps[0].mode
        'RGB'
        >>> output.counterfactual_probs.shape, output.flipped.shape, output.strengths.shape
        ((2, 3), (2,), (2,))

        >>> # By default (mask_image="auto") only the region a first pass changed is edited; the rest is the input
        >>> bool(((output.difference != 0) <= (output.masks == 1)).all())
        True

        >>> # in latent space: encode, noise, guided denoising of the latents, decode; the maps are in pixel space
        >>> from diffusers import AutoencoderKL
        >>> vae = AutoencoderKL(
        ...     in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        ...     up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=4,
        ...     norm_num_groups=4, sample_size=16,
        ... )  # a 3-channel VAE, as on the Hub; pixel_channels=1 puts grayscale images through it
        >>> latent_unet = JointUNet2DModel(
        ...     sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        ...     norm_num_groups=4, down_block_types=("DownBlock2D", "DownBlock2D"),
        ...     up_block_types=("UpBlock2D", "UpBlock2D"), num_classes=3, label_names=["cat", "dog", "bird"],
        ... )
        >>> scheduler = DDIMScheduler(num_train_timesteps=100, clip_sample=False)  # latents exceed [-1, 1]
        >>> latent_pipe = CounterfactualPipeline(
        ...     unet=latent_unet, scheduler=scheduler, vae=vae, pixel_channels=1
        ... )
        >>> output = latent_pipe(torch.rand(2, 1, 16, 16), target_class="dog", num_inference_steps=20,
        ...                      generator=torch.Generator().manual_seed(0))
        >>> output.difference.shape, output.masks.shape  # at the images' size, not the latents'
        ((2, 1, 16, 16), (2, 1, 16, 16))
        ```
"""


def _bool_as_float(mask):
    """A boolean mask (`diff > t`) as 0 / 1 floats, which diffusers' image processor can resize (bool it cannot)."""
    if isinstance(mask, (list, tuple)):
        return [_bool_as_float(m) for m in mask]
    if torch.is_tensor(mask) and mask.dtype == torch.bool:
        return mask.float()
    if isinstance(mask, np.ndarray) and mask.dtype == np.bool_:
        return mask.astype(np.float32)
    return mask


@dataclass
class CounterfactualPipelineOutput(ImagePipelineOutput):
    """
    Output of [`CounterfactualPipeline`]. Array fields are `torch.Tensor` for `output_type="pt"` and `np.ndarray`
    otherwise, float32 when floating whatever the model's dtype; `batch` is the number of input images and `K` the
    number of classes.

    Args:
        images (`list[PIL.Image.Image]`, `np.ndarray` or `torch.Tensor`):
            The counterfactuals, in `output_type` (arrays and tensors in [0, 1]).
        difference (`np.ndarray` or `torch.Tensor` of shape `(batch, channels, height, width)`):
            Signed change, counterfactual minus input, both in the model's [-1, 1] pixel range at the pipeline's
            `pixel_size` (the input after preprocessing). Always in pixel space, latent pipelines included: the
            decoded counterfactual minus the input itself (not its reconstruction by the VAE).
        abs_difference (`np.ndarray` or `torch.Tensor` of shape `(batch, channels, height, width)`):
            `abs(difference)`.
        difference_heatmaps (`list[PIL.Image.Image]`):
            RGB heat maps of `abs_difference` (averaged over channels, each scaled to its own maximum, "hot" colormap:
            black = unchanged, white = largest change), at `pixel_size`; see [`difference_heatmap`].
        original_probs (`np.ndarray` or `torch.Tensor` of shape `(batch, K)`):
            Classifier probabilities of the inputs (softmax, or sigmoid for multi-label models); a latent pipeline's
            classifier reads the latents of the images, as in `classify`.
        counterfactual_probs (`np.ndarray` or `torch.Tensor` of shape `(batch, K)`):
            Classifier probabilities of the counterfactuals (of the returned images: re-encoded by a latent
            pipeline).
        original_labels (`np.ndarray` or `torch.Tensor`):
            Predicted classes of the inputs: `(batch,)` indices, or `(batch, K)` multi-hot decisions at 0.5.
        counterfactual_labels (`np.ndarray` or `torch.Tensor`):
            Predicted classes of the counterfactuals, as `original_labels`.
        target_classes (`np.ndarray` or `torch.Tensor`):
            The requested classes: `(batch,)` indices, or `(batch, K)` multi-hot targets (1 wanted, 0 unwanted,
            -1 either).
        flipped (`np.ndarray` or `torch.Tensor` of shape `(batch,)`, `bool`):
            Whether the counterfactual is predicted as the target while the input was not: single-label,
            `counterfactual_label == target != original_label`; multi-label, the counterfactual's decisions match the
            target on every specified label (entries not -1) and the input's did not. An input already predicted as
            the target is never "flipped".
        l1 (`np.ndarray` or `torch.Tensor` of shape `(batch,)`):
            Mean absolute difference per image, `abs_difference.mean()` over channels and pixels, in [-1, 1] units
            (so at most 2).
        l2 (`np.ndarray` or `torch.Tensor` of shape `(batch,)`):
            Root-mean-square difference per image, `sqrt((difference ** 2).mean())` over channels and pixels, in
            [-1, 1] units.
        strengths (`np.ndarray` or `torch.Tensor` of shape `(batch,)`):
            The strength that produced each counterfactual (with `search_strengths`, the first that flipped the image,
            or the last one tried; `strength` for inputs already predicted as the target).
        localization (`np.ndarray` or `torch.Tensor` of shape `(batch,)`):
            Share of the pixels that carry 80 % of the absolute change (see [`change_localization`]): small when the
            edit is concentrated, about 0.8 when it is spread evenly over the image.
        difference_overlays (`list[PIL.Image.Image]`):
            The heat maps laid over the inputs (see [`overlay_heatmap`]), at `pixel_size`.
        masks (`np.ndarray` or `torch.Tensor` of shape `(batch, 1, height, width)`, *optional*):
            The region each counterfactual was allowed to change (1) when `mask_image` was given; `None` otherwise.
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    difference: np.ndarray | torch.Tensor
    abs_difference: np.ndarray | torch.Tensor
    difference_heatmaps: list[PIL.Image.Image]
    original_probs: np.ndarray | torch.Tensor
    counterfactual_probs: np.ndarray | torch.Tensor
    original_labels: np.ndarray | torch.Tensor
    counterfactual_labels: np.ndarray | torch.Tensor
    target_classes: np.ndarray | torch.Tensor
    flipped: np.ndarray | torch.Tensor
    l1: np.ndarray | torch.Tensor
    l2: np.ndarray | torch.Tensor
    strengths: np.ndarray | torch.Tensor
    localization: np.ndarray | torch.Tensor
    difference_overlays: list[PIL.Image.Image]
    masks: np.ndarray | torch.Tensor | None = None


@dataclass
class _StrengthSearch:
    """The state of [`CounterfactualPipeline`]'s search over strengths: each image's best counterfactual so far."""

    counterfactuals: torch.Tensor
    original_probs: torch.Tensor
    original_labels: torch.Tensor
    counterfactual_probs: torch.Tensor
    flipped: torch.Tensor
    strengths: torch.Tensor
    masks: torch.Tensor | None


class CounterfactualPipeline(JointClassifierMixin, DiffusionPipeline):
    r"""
    Pipeline for visual counterfactual explanations with a Joint Diffusion model: "what would this image look like if
    the model classified it as `target_class`?".

    Each image is noised part of the way, as in diffusers' image-to-image pipelines (`strength`), and denoised with
    classifier guidance from the joint model's own classifier towards the target class (see
    [`JointDiffusionPipeline`] for the guidance methods). The output holds the counterfactuals, the signed and absolute
    differences to the input, heat maps of the changes, the classifier's probabilities before and after, whether the
    decision flipped, distances, and the strength used. With `search_strengths`, images that did not flip are retried
    with larger strengths.

    With a `vae` (a latent pipeline, see [`JointDiffusionPipeline`]) each image is encoded (the posterior's mode, so
    the same image gives the same latents), its latents are noised and guided back down, and the result is decoded.
    The differences, heat maps, masks and distances are computed in pixel space at `pixel_size`, and the
    probabilities come from the classifier on the latents of the pixel images (input and returned counterfactual).

    This model inherits from [`~diffusers.DiffusionPipeline`]. Check the superclass documentation for the generic
    methods implemented for all pipelines (downloading, saving, running on a particular device, etc.).

    Parameters:
        unet ([`JointUNet2DModel`]):
            The joint model: a `UNet2DModel` that predicts noise, with a classifier head on its encoder.
        scheduler ([`~diffusers.SchedulerMixin`]):
            A scheduler used with `unet` to denoise, for example [`~diffusers.DDIMScheduler`] or
            [`~diffusers.DDPMScheduler`].
        intensity_normalization (`str`, *optional*, defaults to `"dtype"`):
            How input images' intensities map to [-1, 1], saved with the model (see [`JointDiffusionPipeline`]).
        intensity_range (`list[float]`, *optional*):
            Its percentiles or window.
        vae ([`~diffusers.AutoencoderKL`], *optional*):
            The autoencoder of a latent pipeline (see [`JointDiffusionPipeline`]); `None` works on the images.
        pixel_channels (`int`, *optional*):
            Channels of the images of a latent pipeline (1 for grayscale images through a 3-channel VAE); see
            [`JointDiffusionPipeline`].
    """

    model_cpu_offload_seq = "unet->vae"

    def get_timesteps(self, num_inference_steps: int, strength: float) -> tuple[torch.Tensor, int]:
        """The last `int(num_inference_steps * strength)` timesteps, as in diffusers' image-to-image pipelines."""
        init_timestep = min(int(num_inference_steps * strength), num_inference_steps)
        t_start = max(num_inference_steps - init_timestep, 0)
        timesteps = self.scheduler.timesteps[t_start * self.scheduler.order :]
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(t_start * self.scheduler.order)
        return timesteps, num_inference_steps - t_start

    @staticmethod
    def _check_strength(strength: float, name: str) -> float:
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 < strength <= 1:
            raise ValueError(f"`{name}` must be a number in (0, 1], got {strength!r}.")
        return float(strength)

    def strength_schedule(
        self, strength: float, search_strengths: bool | Sequence[float], max_strength: float, num_inference_steps: int
    ) -> list[float]:
        """
        The strengths to try, in order: `strength`, then (with `search_strengths`) either steps of 0.1 up to
        `max_strength` (`search_strengths=True`, `max_strength` itself included) or the given values greater than
        `strength` and at most `max_strength`, in increasing order.
        """
        strength = self._check_strength(strength, "strength")
        max_strength = self._check_strength(max_strength, "max_strength")
        if int(num_inference_steps * strength) < 1:
            raise ValueError(
                f"`strength` * `num_inference_steps` must be at least 1 to run a denoising step, got "
                f"{strength} * {num_inference_steps}; raise one of them."
            )
        schedule = [strength]
        if search_strengths is False or search_strengths is None:
            return schedule
        if max_strength < strength:
            raise ValueError(f"`max_strength` ({max_strength}) must be >= `strength` ({strength}) to search.")
        if search_strengths is True:
            steps = int(np.floor((max_strength - strength) / 0.1 + 1e-6))
            candidates = [round(strength + 0.1 * (i + 1), 6) for i in range(steps)] + [max_strength]
        elif isinstance(search_strengths, (list, tuple, np.ndarray)):
            candidates = [self._check_strength(s, "search_strengths") for s in search_strengths]
        else:
            raise ValueError(
                f"`search_strengths` must be a bool or a sequence of strengths in (0, 1], got {search_strengths!r}."
            )
        schedule += sorted({s for s in candidates if strength < s <= max_strength})
        return schedule

    def _denoise(
        self,
        image: torch.Tensor,
        targets: torch.Tensor,
        strength: float,
        num_inference_steps: int,
        guidance: GuidanceConfig,
        generator: torch.Generator | list[torch.Generator] | None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """
        Noise `image` (the UNet's input: images in [-1, 1], or latents) to `strength` and denoise it with `guidance`
        (resolved); returns the UNet's output space, unclamped. With a `mask` (1 = may change) at the input's
        resolution, the input noised to the next step's level replaces the sample outside the mask after every step
        (RePaint's blending), and the input itself after the last, so those entries come back unchanged.
        """
        device = image.device
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps, _ = self.get_timesteps(num_inference_steps, strength)
        noise = randn_tensor(image.shape, generator=generator, device=device, dtype=image.dtype)
        sample = self.scheduler.add_noise(image, noise, timesteps[:1].repeat(len(image)))
        classifier_guidance = ClassifierGuidance.start(self.unet, self.scheduler, targets, guidance, generator)
        step_kwargs = classifier_guidance.step_kwargs(generator=generator)
        for i, t in enumerate(self.progress_bar(timesteps)):
            noise_pred = classifier_guidance.noise_prediction(self.scheduler.scale_model_input(sample, t), t)
            sample = self.scheduler.step(noise_pred, t, sample, **step_kwargs).prev_sample
            if mask is not None:
                known = image
                if i + 1 < len(timesteps):
                    noise = randn_tensor(image.shape, generator=generator, device=device, dtype=image.dtype)
                    known = self.scheduler.add_noise(image, noise, timesteps[i + 1 : i + 2].repeat(len(image)))
                sample = mask * sample + (1 - mask) * known
        return sample

    def _latent_mask(self, mask: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """A pixel mask at the latents' resolution: a latent may change when any pixel it spans may."""
        if self.vae is None:
            return mask
        return F.adaptive_max_pool2d(mask.to(latents.dtype), latents.shape[-2:])

    def _counterfactual(
        self,
        image: torch.Tensor,
        latents: torch.Tensor,
        targets: torch.Tensor,
        strength: float,
        mask: torch.Tensor | str | None,
        generator: torch.Generator | list[torch.Generator] | None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """
        One counterfactual per image (pixels in [-1, 1]) at `strength` from the UNet's inputs `latents` (the images
        themselves without a VAE), and the pixel mask it was edited under (`"auto"`: found first).
        """
        if isinstance(mask, str):  # "auto": edit again, only where an unrestricted edit changed the image
            first = self.latents_to_images(self._denoise(latents, targets, strength, generator=generator, **kwargs))
            # Against the VAE's reconstruction, not the input: its error is everywhere and is not the edit's.
            reference = image if self.vae is None else self.latents_to_images(latents)
            mask = change_region((first - reference).abs()).to(image.dtype)
        latent_mask = None if mask is None else self._latent_mask(mask, latents)
        result = self._denoise(latents, targets, strength, generator=generator, mask=latent_mask, **kwargs)
        result = self.latents_to_images(result)
        if mask is not None and self.vae is not None:
            # Decoding changes every pixel a little: outside the mask the input comes back exactly, as without a VAE.
            result = mask * result + (1 - mask) * image
        return result, mask

    def prepare_mask(self, mask_image, batch_size: int) -> torch.Tensor | str | None:
        """`None`, `"auto"`, or the mask as a `(batch, 1, size, size)` tensor of 0 and 1 (white / >= 0.5 = 1)."""
        if mask_image is None or (isinstance(mask_image, str) and mask_image == "auto"):
            return mask_image
        if isinstance(mask_image, str):
            raise ValueError(f'`mask_image` must be "auto", an image, an array or a tensor, got {mask_image!r}.')
        processor = VaeImageProcessor(
            vae_scale_factor=1, do_normalize=False, do_binarize=True, do_convert_grayscale=True
        )
        size = self.pixel_size
        height, width = (size, size) if isinstance(size, int) else size
        mask = processor.preprocess(_bool_as_float(mask_image), height=height, width=width)
        if len(mask) == 1:
            mask = mask.expand(batch_size, -1, -1, -1)
        if len(mask) != batch_size:
            raise ValueError(f"Got {len(mask)} masks for {batch_size} images: pass one mask, or one per image.")
        return mask.to(device=self._execution_device, dtype=self.pixel_dtype)

    def _probs(self, images: torch.Tensor) -> torch.Tensor:
        """Probabilities of images in pixel space (encoded first by a latent pipeline), on the CPU."""
        return probs_from_logits(self.unet, self.unet.classify(self.images_to_latents(images), 0)).cpu()

    def _matches_target(self, labels: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Whether predicted labels equal the targets (multi-label: on every label whose target is not -1)."""
        if self.unet.is_multi_label:
            return ((labels == targets) | (targets < 0)).all(dim=1)
        return labels == targets

    def prepare_inputs(
        self,
        image: ImageInput,
        target_class: ClassLabels,
        generator: torch.Generator | list[torch.Generator] | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        The images in pixel space (`(batch, pixel_channels, pixel_size, pixel_size)` in [-1, 1], on the execution
        device) and their targets, one per image; checks that a list of generators has one per image.
        """
        device = self._execution_device
        original = self.preprocess(image, name="image").to(device=device, dtype=self.pixel_dtype)
        batch_size = len(original)
        targets = prepare_class_targets(self.unet, target_class, name="target_class", num_images=batch_size)
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(
                f"Got a list of {len(generator)} generators, but {batch_size} images: pass one generator per image."
            )
        return original, targets.to(device)

    def _search_strengths(
        self,
        original: torch.Tensor,
        targets: torch.Tensor,
        schedule: list[float],
        mask: torch.Tensor | str | None,
        generator: torch.Generator | list[torch.Generator] | None,
        num_inference_steps: int,
        guidance: GuidanceConfig,
    ) -> _StrengthSearch:
        """
        Counterfactuals at each strength of `schedule` in turn, for the images that have not flipped yet; inputs
        already predicted as the target are edited once and never retried.
        """
        batch_size = len(original)
        latents = self.images_to_latents(original)  # once: the mode of the posterior does not change between passes
        original_probs = self._probs(original)
        search = _StrengthSearch(
            counterfactuals=original.clone(),
            original_probs=original_probs,
            original_labels=labels_from_probs(self.unet, original_probs),
            counterfactual_probs=original_probs.clone(),
            flipped=torch.zeros(batch_size, dtype=torch.bool),
            strengths=torch.zeros(batch_size),
            masks=None if mask is None else torch.ones_like(original[:, :1]),
        )
        already_target = self._matches_target(search.original_labels, targets.cpu())
        pending = torch.arange(batch_size)
        for current_strength in schedule:
            subset_generator = [generator[i] for i in pending.tolist()] if isinstance(generator, list) else generator
            result, used_mask = self._counterfactual(
                original[pending],
                latents[pending],
                targets[pending],
                current_strength,
                mask if mask is None or isinstance(mask, str) else mask[pending],
                subset_generator,
                num_inference_steps=num_inference_steps,
                guidance=guidance,
            )
            search.counterfactuals[pending] = result
            if used_mask is not None:
                search.masks[pending] = used_mask
            search.counterfactual_probs[pending] = self._probs(result)
            search.strengths[pending] = current_strength
            counterfactual_labels = labels_from_probs(self.unet, search.counterfactual_probs)
            search.flipped = self._matches_target(counterfactual_labels, targets.cpu()) & ~already_target
            # Inputs already predicted as the target cannot flip: they are not retried.
            pending = (~search.flipped & ~already_target).nonzero().flatten()
            if len(pending) == 0:
                break
            if current_strength != schedule[-1]:
                logger.info(
                    f"{len(pending)} of {batch_size} counterfactuals did not flip; retrying with more strength."
                )
        return search

    def _output(
        self, original: torch.Tensor, targets: torch.Tensor, search: _StrengthSearch, output_type: str
    ) -> CounterfactualPipelineOutput:
        """The output of a search: the counterfactuals in `output_type`, their changes, heat maps and diagnostics."""
        difference = (search.counterfactuals - original).float()
        abs_difference = difference.abs()
        heatmaps = difference_heatmap(abs_difference)
        overlays = [
            overlay_heatmap(image, heatmap) for image, heatmap in zip(postprocess_images(original, "pil"), heatmaps)
        ]

        def convert(value: torch.Tensor) -> torch.Tensor | np.ndarray:
            value = value.detach().cpu()
            if value.is_floating_point():
                value = value.float()  # numpy has no bfloat16; masks come in the model's dtype
            return value if output_type == "pt" else value.numpy()

        return CounterfactualPipelineOutput(
            images=postprocess_images(search.counterfactuals, output_type),
            difference=convert(difference),
            abs_difference=convert(abs_difference),
            difference_heatmaps=heatmaps,
            original_probs=convert(search.original_probs),
            counterfactual_probs=convert(search.counterfactual_probs),
            original_labels=convert(search.original_labels),
            counterfactual_labels=convert(labels_from_probs(self.unet, search.counterfactual_probs)),
            target_classes=convert(targets),
            flipped=convert(search.flipped),
            l1=convert(abs_difference.mean(dim=(1, 2, 3))),
            l2=convert(difference.pow(2).mean(dim=(1, 2, 3)).sqrt()),
            strengths=convert(search.strengths),
            localization=convert(change_localization(abs_difference)),
            difference_overlays=overlays,
            masks=None if search.masks is None else convert(search.masks),
        )

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        image: ImageInput,
        target_class: ClassLabels,
        strength: float = 0.5,
        guidance_scale: float | None = None,
        guidance: GuidanceConfig | dict[str, Any] | None = None,
        num_inference_steps: int = 50,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        search_strengths: bool | Sequence[float] = False,
        max_strength: float = 1.0,
        mask_image: PIL.Image.Image | np.ndarray | torch.Tensor | str | None = "auto",
        **kwargs,
    ) -> CounterfactualPipelineOutput | tuple:
        r"""
        The call function to the pipeline for counterfactual generation.

        Args:
            image (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor` or a list of them):
                The image(s) to explain. PIL images and numpy arrays (`(H, W)`, `(H, W, C)` or `(B, H, W, C)`, `uint8`
                or float in [0, 1]) are converted to `pixel_channels`; all inputs are resized to `pixel_size` (the
                UNet's `sample_size` without a VAE) with the training preprocessing. Tensors (`(C, H, W)` or
                `(B, C, H, W)`, in [-1, 1]; a tensor, or a list of tensors, without any negative value is read as
                [0, 1]) must have `pixel_channels`. Latent pipelines take images too, never latents.
            target_class (`int`, `str`, `list`, `torch.Tensor` or `np.ndarray`):
                The class to move each image towards: an index or a name (see `unet.label2id`) for all images, or a
                list with one per image. Multi-label models: a class, a list / set of classes (the target set), or
                `(batch, num_classes)` multi-hot targets (1 wanted, 0 unwanted, -1 either).
            strength (`float`, *optional*, defaults to 0.5):
                How far the image is noised before guided denoising, in (0, 1]: the last
                `int(num_inference_steps * strength)` of `num_inference_steps` timesteps are run. Larger values allow
                larger changes; 1 ignores the image.
            guidance_scale (`float`, *optional*):
                Strength of the classifier guidance towards `target_class`, as `guidance.scale` (give it in one
                place; >= 0, 0 gives a plain reconstruction). Defaults to the method's value in
                `DEFAULT_COUNTERFACTUAL_GUIDANCE_SCALES`.
            guidance ([`GuidanceConfig`] or `dict`, *optional*):
                How to guide (see [`JointDiffusionPipeline`]). Fields left `None` (and `guidance=None`) take the
                defaults for counterfactuals ([`GuidanceConfig.resolve`] with `"counterfactual"`): `"x0"` guidance
                with `"medium"` random views, the direction recomputed at every step and the classifier read at
                temperature 1, so that an edit stops pushing once the decision flips. The best views and temperature
                depend on the data; the rules and measurements are on docs/experiments/guidance.md. The former
                `guidance_method`, `guidance_augmentation`, `guidance_cache_interval` and `guidance_temperature`
                arguments still work, with a `FutureWarning`.
            num_inference_steps (`int`, *optional*, defaults to 50):
                Number of timesteps of the full schedule, of which `strength` are run.
            generator (`torch.Generator` or `list[torch.Generator]`, *optional*):
                A [`torch.Generator`](https://pytorch.org/docs/stable/generated/torch.Generator.html) to make the
                result deterministic.
            output_type (`str`, *optional*, defaults to `"pil"`):
                Format of `images`: `"pil"`, `"np"` or `"pt"`. Array fields of the output are tensors for `"pt"` and
                numpy arrays otherwise.
            return_dict (`bool`, *optional*, defaults to `True`):
                Whether to return a [`CounterfactualPipelineOutput`] instead of a tuple of its fields.
            search_strengths (`bool` or `Sequence[float]`, *optional*, defaults to `False`):
                Retry the images that did not flip with increasing strengths: `True` tries steps of 0.1 above
                `strength` up to `max_strength`; a sequence gives the strengths to try (those above `strength` and at
                most `max_strength`, in increasing order). Each image keeps the first counterfactual that flipped, or
                the one from the largest strength tried; inputs already predicted as the target are not retried.
            max_strength (`float`, *optional*, defaults to 1.0):
                Largest strength tried by the search.
            mask_image (`PIL.Image.Image`, array, tensor, `"auto"` or `None`, *optional*, defaults to `"auto"`):
                Keep the input outside a region: white pixels (values >= 0.5) may change, black ones come back exactly
                as in the input (the known image is blended back at every step, as in RePaint). One mask for all
                images or one per image, resized to `pixel_size`. A latent pipeline blends its latents under the mask
                brought to the latents' resolution (a latent may change where any of its pixels may) and puts the
                input back outside the mask after decoding. `"auto"` (the default) finds the region
                per image: a first, unrestricted counterfactual, then the pixels that carry 80 % of its change grown
                by one pixel (as in ACE; a latent pipeline measures the change against the VAE's reconstruction of
                the input); it doubles the cost and trades a little validity for smaller edits (see
                docs/experiments/guidance.md). `None` lets every pixel change.

        Examples:

        Returns:
            [`CounterfactualPipelineOutput`] or `tuple`: the counterfactuals and their diagnostics; a tuple of the
            output's fields, in order, when `return_dict` is `False`.
        """
        guidance = guidance_config_from_arguments(guidance, guidance_scale, kwargs).resolve("counterfactual")
        check_output_type(output_type)
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"`num_inference_steps` must be a positive integer, got {num_inference_steps!r}.")
        schedule = self.strength_schedule(strength, search_strengths, max_strength, num_inference_steps)
        original, targets = self.prepare_inputs(image, target_class, generator)
        mask = self.prepare_mask(mask_image, len(original))
        search = self._search_strengths(original, targets, schedule, mask, generator, num_inference_steps, guidance)
        output = self._output(original, targets, search, output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return output.to_tuple()
        return output
