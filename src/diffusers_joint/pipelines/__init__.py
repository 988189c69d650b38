# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Pipelines for Joint Diffusion models: classifier-guided generation and counterfactual explanations."""

from .change_maps import change_localization, change_region, difference_heatmap, overlay_heatmap
from .class_sample_grid import class_sample_grid
from .guidance_config import (
    DEFAULT_COUNTERFACTUAL_GUIDANCE_SCALES,
    DEFAULT_GUIDANCE_AUGMENTATIONS,
    DEFAULT_GUIDANCE_CACHE_INTERVALS,
    DEFAULT_GUIDANCE_SCALES,
    DEFAULT_GUIDANCE_TEMPERATURES,
    GUIDANCE_AUGMENTATIONS,
    GUIDANCE_METHODS,
    GuidanceConfig,
    default_guidance_method,
)
from .image_grid import labelled_image_grid, upscale_image
from .pipeline_counterfactual import CounterfactualPipeline, CounterfactualPipelineOutput
from .pipeline_joint_diffusion import JointDiffusionPipeline, JointDiffusionPipelineOutput
from .pipeline_utils import JointClassificationOutput, probabilities_by_name

__all__ = [
    "DEFAULT_COUNTERFACTUAL_GUIDANCE_SCALES",
    "DEFAULT_GUIDANCE_AUGMENTATIONS",
    "DEFAULT_GUIDANCE_CACHE_INTERVALS",
    "DEFAULT_GUIDANCE_SCALES",
    "DEFAULT_GUIDANCE_TEMPERATURES",
    "GUIDANCE_AUGMENTATIONS",
    "GUIDANCE_METHODS",
    "CounterfactualPipeline",
    "CounterfactualPipelineOutput",
    "GuidanceConfig",
    "JointClassificationOutput",
    "JointDiffusionPipeline",
    "JointDiffusionPipelineOutput",
    "change_localization",
    "class_sample_grid",
    "change_region",
    "default_guidance_method",
    "difference_heatmap",
    "labelled_image_grid",
    "overlay_heatmap",
    "probabilities_by_name",
    "upscale_image",
]
