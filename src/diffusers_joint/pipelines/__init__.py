# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Pipelines for Joint Diffusion models: classifier-guided generation and counterfactual explanations."""

from .guidance import DEFAULT_GUIDANCE_SCALES, GUIDANCE_METHODS
from .pipeline_counterfactual import CounterfactualPipeline, CounterfactualPipelineOutput, difference_heatmap
from .pipeline_joint_diffusion import JointDiffusionPipeline, JointDiffusionPipelineOutput
from .pipeline_utils import JointClassificationOutput

__all__ = [
    "DEFAULT_GUIDANCE_SCALES",
    "GUIDANCE_METHODS",
    "CounterfactualPipeline",
    "CounterfactualPipelineOutput",
    "JointClassificationOutput",
    "JointDiffusionPipeline",
    "JointDiffusionPipelineOutput",
    "difference_heatmap",
]
