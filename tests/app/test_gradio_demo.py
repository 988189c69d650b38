# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The Gradio interface: its API names and the error when Gradio is missing (served in tests/examples/test_app.py)."""

import sys

import pytest

from diffusers_joint.app import ExplanationApp, build_demo
from tiny_models import tiny_joint_pipeline


def test_without_gradio_the_error_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # as on a machine without the app extra
    with pytest.raises(ImportError, match=r'pip install -e "\.\[app\]"'):
        build_demo(ExplanationApp(tiny_joint_pipeline(num_classes=2)))


def test_the_three_tabs_have_stable_api_names():
    pytest.importorskip("gradio", reason='the app needs Gradio: pip install -e ".[app]"')
    demo = build_demo(ExplanationApp(tiny_joint_pipeline(num_classes=2, label_names=["normal", "pneumonia"])))
    api_names = {fn.api_name for fn in demo.fns.values()}
    assert {"classify", "counterfactual", "generate"} <= api_names
    assert not demo.analytics_enabled
