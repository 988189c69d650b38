# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The explanation app: classify, explain and generate in a browser (Gradio), locally or as a Hugging Face Space."""

from .explanation_app import Explanation, ExplanationApp, load_joint_pipeline
from .gradio_demo import build_demo, launch_demo
from .space import write_space

__all__ = ["Explanation", "ExplanationApp", "build_demo", "launch_demo", "load_joint_pipeline", "write_space"]
