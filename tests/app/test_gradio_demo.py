# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The Gradio interface: its API names and the error when Gradio is missing (served in tests/examples/test_app.py)."""

import base64
import io
import sys

import numpy as np
import PIL.Image
import pytest

from diffusers_joint.app import ExplanationApp, build_demo
from diffusers_joint.app.gradio_demo import upload_error_message
from diffusers_joint.data import ImageReadError
from tiny_models import tiny_joint_pipeline

NAMES = ["normal", "pneumonia", "effusion"]


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


def test_the_classify_tab_says_whether_its_probabilities_are_calibrated():
    pytest.importorskip("gradio", reason='the app needs Gradio: pip install -e ".[app]"')

    def texts(temperature):
        demo = build_demo(ExplanationApp(tiny_joint_pipeline(num_classes=2, classifier_temperature=temperature)))
        blocks = demo.blocks.values()
        return [getattr(b, "label", None) or "" for b in blocks] + [getattr(b, "value", None) or "" for b in blocks]

    calibrated = texts(1.7)
    assert "Confidence: probability of the decision (calibrated)" in calibrated
    note = "Probabilities are calibrated by temperature scaling with the model's classifier temperature 1.7."
    assert note in calibrated
    assert "Confidence: probability of the decision (not calibrated)" in texts(1.0)


def test_explain_summary_says_when_the_input_is_already_the_target():
    pytest.importorskip("gradio", reason='the app needs Gradio: pip install -e ".[app]"')
    image = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8), mode="L")
    app = ExplanationApp(tiny_joint_pipeline(num_classes=3, label_names=NAMES), num_inference_steps=4)
    counterfactual = next(fn.fn for fn in build_demo(app).fns.values() if fn.api_name == "counterfactual")
    probs, _ = app.classify(image)
    predicted = max(probs, key=probs.get)
    summary = counterfactual(image, predicted, 0.5, 0, 4)[-1]
    assert summary.startswith(f"The input is already classified as **{predicted}**")
    other = next(name for name in NAMES if name != predicted)
    assert counterfactual(image, other, 0.5, 0, 4)[-1].startswith("The model's decision ")


def test_an_input_image_sent_as_a_data_url_reaches_the_model_unchanged():
    gr = pytest.importorskip("gradio", reason='the app needs Gradio: pip install -e ".[app]"')
    from gradio.data_classes import ImageData

    demo = build_demo(ExplanationApp(tiny_joint_pipeline(num_classes=2)))
    inputs = [
        b for b in demo.blocks.values() if isinstance(b, gr.Image) and b.elem_id in ("classify-image", "explain-image")
    ]
    assert len(inputs) == 2 and all(b.format == "png" for b in inputs)
    pixels = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    buffer = io.BytesIO()
    PIL.Image.fromarray(pixels).save(buffer, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    path = inputs[0].preprocess(ImageData(url=url))  # as a pasted image or a gradio_client call sends it
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(path)), pixels)  # lossless: no webp re-encoding


def test_a_bad_upload_is_named_by_its_file_name_not_the_servers_cache_path():
    cached = "/tmp/gradio/3f2a9c/scan_0042.dcm"
    error = ImageReadError(cached, f"Invalid DICOM file {cached}: the pixel data is truncated")
    assert upload_error_message(error) == (
        "Cannot use the image scan_0042.dcm: Invalid DICOM file scan_0042.dcm: the pixel data is truncated"
    )


def test_a_dicom_upload_without_pydicom_says_how_to_install_it_without_the_servers_path(tmp_path, monkeypatch):
    gr = pytest.importorskip("gradio", reason='the app needs Gradio: pip install -e ".[app]"')
    monkeypatch.setitem(sys.modules, "pydicom", None)  # as on an install without the dicom extra
    upload = tmp_path / "gradio-cache-3f2a9c0d" / "scan_0042.dcm"
    upload.parent.mkdir()
    upload.write_bytes(b"\0" * 128 + b"DICM")
    app = ExplanationApp(tiny_joint_pipeline(num_classes=2, label_names=["normal", "pneumonia"]))
    classify = next(fn.fn for fn in build_demo(app).fns.values() if fn.api_name == "classify")
    with pytest.raises(gr.Error) as raised:
        classify(None, str(upload))
    assert "pip install" in raised.value.message and str(tmp_path) not in raised.value.message
