# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
`ExplanationApp`: what the explanation app does (classify, explain with a counterfactual, generate), on a saved
pipeline, as plain Python functions that take and return PIL images, dicts and numbers. The Gradio interface
([`build_demo`]) only lays them out, so scripts, notebooks and tests get the same answers without a browser.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import PIL.Image
import torch
from diffusers.utils import logging

from ..pipelines import (
    CounterfactualPipeline,
    JointDiffusionPipeline,
    labelled_image_grid,
    probabilities_by_name,
    upscale_image,
)
from ..pipelines.pipeline_utils import postprocess_images

# What the app takes as an image: a PIL image, or a file path read by the package's reader (8 / 16-bit and float PNG
# and TIFF, JPEG, .npy / .npz arrays, DICOM) with the pipeline's saved intensity normalisation.
AppImage = PIL.Image.Image | str | os.PathLike

logger = logging.get_logger(__name__)

# Shown images are upscaled (nearest neighbour, whole factors) to at least this size: an 8x8 digit is unreadable.
DISPLAY_SIZE = 256


@dataclass
class Explanation:
    """
    One counterfactual explanation, ready to show.

    Args:
        input_image (`PIL.Image.Image`):
            The input as the model sees it (resized to the pipeline's `pixel_size` and `pixel_channels`), upscaled
            for display.
        counterfactual (`PIL.Image.Image`):
            The counterfactual, upscaled like `input_image`.
        overlay (`PIL.Image.Image`):
            The difference heat map laid over the input ([`overlay_heatmap`]), upscaled.
        probs_before (`dict[str, float]`):
            The classifier's probabilities of the input, by class name.
        probs_after (`dict[str, float]`):
            The classifier's probabilities of the counterfactual, by class name.
        flipped (`bool`):
            Whether the decision moved to the target class (see [`CounterfactualPipelineOutput`]); never for an input
            already classified as the target (see `already_target`).
        l1 (`float`):
            Mean absolute change per pixel, in [-1, 1] pixel units.
        already_target (`bool`, *optional*, defaults to `False`):
            Whether the input itself is already classified as the target class (multi-label: its decisions are the
            target set), so that there was no decision to move.
    """

    input_image: PIL.Image.Image
    counterfactual: PIL.Image.Image
    overlay: PIL.Image.Image
    probs_before: dict[str, float]
    probs_after: dict[str, float]
    flipped: bool
    l1: float
    already_target: bool = False


def _is_target(labels, target) -> bool:
    """Whether predicted labels are the target, as the counterfactual pipeline decides (multi-label: -1 is either)."""
    labels, target = torch.as_tensor(labels), torch.as_tensor(target)
    if target.ndim == 0:
        return bool(labels == target)
    return bool(((labels == target) | (target < 0)).all())


def load_joint_pipeline(
    pretrained_model_name_or_path: str | os.PathLike, device: str | torch.device | None = None
) -> JointDiffusionPipeline:
    """
    Load a saved [`JointDiffusionPipeline`] from a folder or a Hub model id, in eval mode, on `device` (the GPU when
    there is one, by default).

    Raises:
        `FileNotFoundError`: when `pretrained_model_name_or_path` is a folder without a `model_index.json`.
        `OSError`: when it is neither a local pipeline nor a Hub model id that can be downloaded (or, offline, that is
            in the local cache); the message names it.
    """
    path = os.fspath(pretrained_model_name_or_path)
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "model_index.json")):
        raise FileNotFoundError(
            f"{path!r} is a folder but holds no model_index.json: give the folder a pipeline was saved to (e.g. the "
            "training script's --output_dir) or a Hub model id."
        )
    try:
        pipeline = JointDiffusionPipeline.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise OSError(
            f"Cannot load a Joint Diffusion pipeline from {path!r}: it is not a saved pipeline folder, and as a Hub "
            f"model id it could not be downloaded or found in the local cache ({error})."
        ) from error
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    pipeline.unet.eval()
    return pipeline.to(device)


class ExplanationApp:
    r"""
    The explanation app's three functions over one Joint Diffusion pipeline.

    Args:
        pipeline ([`JointDiffusionPipeline`]):
            The trained pipeline; counterfactuals use its UNet and scheduler.
        num_inference_steps (`int`, *optional*, defaults to 250):
            Default number of denoising steps, capped at the scheduler's training timesteps.
        display_size (`int`, *optional*, defaults to 256):
            Minimum shorter side of returned images (small images are enlarged by a whole factor, without blur).

    Example:

    ```py
    >>> from diffusers import DDPMScheduler
    >>> from diffusers_joint import JointDiffusionPipeline, JointUNet2DModel
    >>> from diffusers_joint.app import ExplanationApp

    >>> unet = JointUNet2DModel(
    ...     sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16), layers_per_block=1,
    ...     norm_num_groups=4, down_block_types=("DownBlock2D", "DownBlock2D"),
    ...     up_block_types=("UpBlock2D", "UpBlock2D"), num_classes=2, label_names=["normal", "pneumonia"],
    ... )  # or ExplanationApp.from_pretrained("joint-pneumonia-50") for a trained model
    >>> app = ExplanationApp(JointDiffusionPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=20)))
    >>> samples, grid = app.generate(["pneumonia"], samples_per_class=2, seed=0, num_inference_steps=5)
    >>> probs, confidence = app.classify(samples[0][0])
    >>> sorted(probs), samples[0][1], samples[0][0].size
    (['normal', 'pneumonia'], 'pneumonia', (256, 256))
    >>> explanation = app.counterfactual(samples[0][0], "normal", strength=0.6, seed=0, num_inference_steps=5)
    >>> explanation.overlay.size
    (256, 256)
    ```
    """

    def __init__(
        self, pipeline: JointDiffusionPipeline, num_inference_steps: int = 250, display_size: int = DISPLAY_SIZE
    ):
        self.pipeline = pipeline
        # the same components and intensity normalisation (saved with it), so both read files alike; a latent
        # pipeline's VAE comes along
        self.explainer = CounterfactualPipeline.from_joint_pipeline(pipeline)
        self.num_inference_steps = min(num_inference_steps, pipeline.scheduler.config.num_train_timesteps)
        self.display_size = display_size

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, device: str | torch.device | None = None, **kwargs
    ) -> ExplanationApp:
        """Load the pipeline with [`load_joint_pipeline`]; `kwargs` go to the constructor."""
        return cls(load_joint_pipeline(pretrained_model_name_or_path, device), **kwargs)

    @property
    def class_names(self) -> list[str]:
        """The model's class names, in class order."""
        unet = self.pipeline.unet
        return [unet.id2label[i] for i in range(unet.config.num_classes)]

    @property
    def is_multi_label(self) -> bool:
        return self.pipeline.unet.is_multi_label

    @property
    def classifier_temperature(self) -> float:
        """The model's calibration temperature `T` (probabilities are `softmax(logits / T)`); 1.0: not calibrated."""
        return float(self.pipeline.unet.config.get("classifier_temperature", 1.0))

    @property
    def calibration_note(self) -> str:
        """One sentence saying whether the probabilities shown are calibrated, and with which temperature."""
        temperature = self.classifier_temperature
        if temperature == 1.0:
            return "not calibrated (classifier temperature 1.0): the classifier's raw probabilities"
        return f"calibrated by temperature scaling with the model's classifier temperature {temperature:.3g}"

    def _display(self, image: PIL.Image.Image) -> PIL.Image.Image:
        return upscale_image(image, self.display_size)

    @staticmethod
    def _check_image(image: AppImage | None) -> AppImage:
        if image is None:
            raise ValueError("No image given: upload an image first.")
        return image

    def _steps(self, num_inference_steps: int | None) -> int:
        return self.num_inference_steps if num_inference_steps is None else int(num_inference_steps)

    def classify(self, image: AppImage) -> tuple[dict[str, float], float]:
        """
        Classify one image, a PIL image or a file (see [`JointDiffusionPipeline.classify`]: DICOM, 16-bit and float
        files are read with their real intensities and the pipeline's saved intensity normalisation).

        Returns:
            `tuple[dict[str, float], float]`: the probability of each class by name, and the confidence: the top
            class's probability (single-label), or for multi-label models the mean over labels of the probability of
            the decision taken (p for present, 1 - p for absent). Both are calibrated: they come from
            `softmax(logits / T)` (sigmoid for multi-label) with the model's `classifier_temperature` `T`, which is
            1.0 (no change) for a model that was not calibrated; see [`calibration_note`].

        Raises:
            [`~data.image_reading.ImageReadError`]: a file that cannot be read (the message names it and says why).
            `ValueError`: no image.
        """
        probs = self.pipeline.classify(self._check_image(image)).probs[0]
        if self.is_multi_label:
            confidence = torch.where(probs >= 0.5, probs, 1 - probs).mean()
        else:
            confidence = probs.max()
        return probabilities_by_name(self.pipeline.unet, probs[None])[0], float(confidence)

    def counterfactual(
        self,
        image: AppImage,
        target_class: str,
        strength: float = 0.5,
        seed: int = 0,
        num_inference_steps: int | None = None,
    ) -> Explanation:
        """
        Explain one image: its counterfactual towards `target_class` (a class name), the difference map laid over the
        input, and the probabilities before and after (calibrated, as in [`classify`]). `image` is a PIL image or a
        file, read as in [`classify`]. Runs [`CounterfactualPipeline`] with
        `generator=torch.Generator().manual_seed(seed)`, so the same inputs give the same explanation.
        """
        image = self._check_image(image)
        if target_class not in self.pipeline.unet.label2id:
            raise ValueError(f"Unknown target class {target_class!r}; the model's classes are {self.class_names}.")
        out = self.explainer(
            image=image,
            target_class=target_class,
            strength=float(strength),
            num_inference_steps=self._steps(num_inference_steps),
            generator=torch.Generator().manual_seed(int(seed)),
        )
        # The input as the model saw it, at the heat map's resolution (the images' size for a latent pipeline).
        model_input = postprocess_images(self.pipeline.preprocess(image), "pil")[0]
        unet = self.pipeline.unet
        return Explanation(
            input_image=self._display(model_input),
            counterfactual=self._display(out.images[0]),
            overlay=self._display(out.difference_overlays[0]),
            probs_before=probabilities_by_name(unet, out.original_probs)[0],
            probs_after=probabilities_by_name(unet, out.counterfactual_probs)[0],
            flipped=bool(out.flipped[0]),
            l1=float(out.l1[0]),
            already_target=_is_target(out.original_labels[0], out.target_classes[0]),
        )

    def generate(
        self,
        class_names: Sequence[str],
        samples_per_class: int = 4,
        seed: int = 0,
        num_inference_steps: int | None = None,
    ) -> tuple[list[tuple[PIL.Image.Image, str]], PIL.Image.Image]:
        """
        Class-guided samples, `samples_per_class` for each of `class_names`.

        Returns:
            `tuple`: the samples as `(upscaled image, class name)` pairs (a gallery), and all of them as one labelled
            grid, a row per class ([`labelled_image_grid`]).
        """
        class_names = list(class_names)
        if not class_names:
            raise ValueError("Pick at least one class to generate.")
        unknown = [name for name in class_names if name not in self.pipeline.unet.label2id]
        if unknown:
            raise ValueError(f"Unknown classes {unknown}; the model's classes are {self.class_names}.")
        samples_per_class = int(samples_per_class)
        if samples_per_class < 1:
            raise ValueError(f"`samples_per_class` must be at least 1, got {samples_per_class}.")
        labels = [name for name in class_names for _ in range(samples_per_class)]
        images = self.pipeline(
            class_labels=labels,
            num_inference_steps=self._steps(num_inference_steps),
            generator=torch.Generator().manual_seed(int(seed)),
        ).images
        gallery = [(self._display(image), label) for image, label in zip(images, labels)]
        grid = labelled_image_grid(images, rows=len(class_names), row_labels=class_names)
        return gallery, grid
