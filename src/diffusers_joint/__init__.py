"""diffusers-joint: Joint Diffusion (one UNet that generates, classifies and explains) for Hugging Face diffusers."""

__version__ = "0.1.0"

from .models import JointUNet2DModel
from .pipelines import (
    CounterfactualPipeline,
    CounterfactualPipelineOutput,
    GuidanceConfig,
    JointClassificationOutput,
    JointDiffusionPipeline,
    JointDiffusionPipelineOutput,
)

__all__ = [
    "CounterfactualPipeline",
    "CounterfactualPipelineOutput",
    "GuidanceConfig",
    "JointClassificationOutput",
    "JointDiffusionPipeline",
    "JointDiffusionPipelineOutput",
    "JointUNet2DModel",
    "__version__",
]
