# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
examples/app.py as a user runs it: started with `python examples/app.py --pipeline PATH --server_port PORT` on a tiny
saved pipeline (calibrated, with a saved intensity normalisation), called over HTTP with gradio_client on a real digit
(8-bit PNG, 16-bit PNG, DICOM), and its answers checked against the pipelines' own outputs for the same file and seed.
"""

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import DDPMScheduler

from diffusers_joint import CounterfactualPipeline, JointDiffusionPipeline
from diffusers_joint.data.digits import digits_arrays
from diffusers_joint.pipelines import overlay_heatmap, upscale_image
from diffusers_joint.pipelines.pipeline_utils import postprocess_images, preprocess_images
from medical_files import PATIENT_DATA, write_dicom
from tiny_models import tiny_joint_unet

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "app.py"
STEPS, STRENGTH, SEED, TARGET = 6, 0.5, 3, "8"
INSTALL = 'the app and this test need Gradio and gradio_client: pip install -e ".[app]"'
# Not the defaults, so that the test sees the app apply them: a calibration temperature and a saved normalisation.
TEMPERATURE, NORMALIZATION = 2.5, {"intensity_normalization": "percentile", "intensity_range": [1.0, 99.0]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(pipeline: Path, port: int, env: dict, log: Path) -> subprocess.Popen:
    """The README's command, its output in `log`; returns once the server answers, or fails with the app's output."""
    command = [sys.executable, str(SCRIPT), "--pipeline", str(pipeline), "--server_name", "127.0.0.1"]
    command += ["--server_port", str(port), "--num_inference_steps", str(STEPS)]
    with open(log, "w") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the app exited with code {process.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process
        except OSError:
            time.sleep(0.25)
    process.kill()
    process.wait()
    pytest.fail(f"the app did not listen on port {port} within 60 s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def saved_pipeline(tmp_path_factory) -> Path:
    unet = tiny_joint_unet(label_names=[str(i) for i in range(10)], classifier_temperature=TEMPERATURE)
    path = tmp_path_factory.mktemp("app") / "tiny-digits"
    scheduler = DDPMScheduler(num_train_timesteps=20)
    JointDiffusionPipeline(unet=unet, scheduler=scheduler, **NORMALIZATION).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def served(saved_pipeline, tmp_path_factory):
    """The app serving `saved_pipeline`, a gradio_client `Client` on it, and the file the app's output goes to."""
    pytest.importorskip("gradio", reason=INSTALL)
    gradio_client = pytest.importorskip("gradio_client", reason=INSTALL)
    folder = tmp_path_factory.mktemp("served")
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env["GRADIO_TEMP_DIR"] = str(folder / "gradio")
    log = folder / "app.log"
    process = start_app(saved_pipeline, port, env, log)
    try:
        client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(folder))
        yield client, log
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def pipe(saved_pipeline) -> JointDiffusionPipeline:
    """The same pipeline, loaded here to compute the expected answers."""
    torch.set_num_threads(1)  # as the app's process: identical float sums
    pipe = JointDiffusionPipeline.from_pretrained(saved_pipeline)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def digit_file(tmp_path_factory) -> Path:
    """A real handwritten 3 from scikit-learn's digits, as a user would upload it: an 8-bit grayscale PNG."""
    images, labels = digits_arrays()
    path = tmp_path_factory.mktemp("upload") / "three.png"
    PIL.Image.fromarray(images[np.flatnonzero(labels == 3)[0]], mode="L").save(path)
    return path


def confidences(label_value: dict) -> dict[str, float]:
    return {item["label"]: item["confidence"] for item in label_value["confidences"]}


def read_png(path: str) -> np.ndarray:
    with PIL.Image.open(path) as image:
        assert image.format == "PNG"  # lossless, so pixels can be compared
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def as_rgb(image: PIL.Image.Image) -> np.ndarray:
    return np.asarray(upscale_image(image, 256).convert("RGB"), dtype=np.int16)


def test_app_answers_like_the_pipelines_over_gradio_client(served, pipe, digit_file):
    from gradio_client import handle_file

    client, _ = served
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/classify", "/counterfactual", "/generate"} <= set(endpoints)

    # Called as scripts written before the file inputs existed: positional arguments, image first.
    upload = handle_file(str(digit_file))
    probs_value, confidence = client.predict(upload, api_name="/classify")
    shown = client.predict(upload, TARGET, STRENGTH, SEED, STEPS, api_name="/counterfactual")
    gallery, grid = client.predict(["1", "7"], 2, SEED, STEPS, api_name="/generate")

    # The same answers from the pipelines themselves, for the same image and seed.
    image = PIL.Image.open(digit_file)
    probs = pipe.classify(image).probs[0].tolist()
    expected = {str(i): p for i, p in enumerate(probs)}
    assert confidences(probs_value) == pytest.approx(expected, abs=1e-6)
    assert probs_value["label"] == str(int(np.argmax(probs)))
    assert confidence == pytest.approx(max(probs), abs=1e-4)
    logits = pipe.unet.classify(preprocess_images(pipe.unet, image, normalization=pipe.image_normalization), 0)
    calibrated = torch.softmax(logits / TEMPERATURE, dim=1)[0]  # calibrated, not the raw softmax
    assert confidence == pytest.approx(calibrated.max().item(), abs=1e-4)
    assert confidence != pytest.approx(torch.softmax(logits, dim=1).max().item(), abs=1e-4)

    explain = CounterfactualPipeline(unet=pipe.unet, scheduler=pipe.scheduler, **NORMALIZATION)
    out = explain(image, target_class=TARGET, strength=STRENGTH, num_inference_steps=STEPS,
                  generator=torch.Generator().manual_seed(SEED))  # fmt: skip
    model_input = postprocess_images(
        preprocess_images(pipe.unet, image, normalization=pipe.image_normalization), "pil"
    )[0]
    input_path, counterfactual_path, overlay_path, before, after, summary = shown
    # At most one grey level apart: both processes compute in float32 and round to 8 bits.
    assert np.abs(read_png(input_path) - as_rgb(model_input)).max() <= 1
    assert np.abs(read_png(counterfactual_path) - as_rgb(out.images[0])).max() <= 1
    expected_overlay = as_rgb(overlay_heatmap(model_input, out.difference_heatmaps[0]))
    assert np.abs(read_png(overlay_path) - expected_overlay).max() <= 1
    assert read_png(counterfactual_path).shape == (256, 256, 3)  # 8x8 enlarged 32 times, readable
    for shown_probs, pipeline_probs in ((before, out.original_probs[0]), (after, out.counterfactual_probs[0])):
        assert confidences(shown_probs) == pytest.approx({str(i): p for i, p in enumerate(pipeline_probs)}, abs=1e-6)
    assert ("did not move to" in summary) != bool(out.flipped[0])

    assert [item["caption"] for item in gallery] == ["1", "1", "7", "7"]
    with PIL.Image.open(grid) as grid_image:
        assert grid_image.height > 2 * 64  # two labelled rows of upscaled samples


def test_app_names_a_missing_pipeline(tmp_path):
    spec = importlib.util.spec_from_file_location("app", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with pytest.raises(FileNotFoundError, match="is a folder but holds no model_index.json"):
        script.main(script.parse_args(["--pipeline", str(tmp_path)]))
    with pytest.raises(OSError, match="Cannot load a Joint Diffusion pipeline from 'no-such-user/no-such-model'"):
        script.main(script.parse_args(["--pipeline", "no-such-user/no-such-model"]))


@pytest.fixture(scope="module")
def medical_files(tmp_path_factory) -> dict[str, Path]:
    """A real handwritten 7 as a 16-bit PNG (values x 257) and as a 12-bit DICOM with made-up patient data."""
    pytest.importorskip("pydicom", reason="DICOM support is the `dicom` extra: pip install -e '.[dicom]'")
    images, labels = digits_arrays()
    seven = images[np.flatnonzero(labels == 7)[0]]
    folder = tmp_path_factory.mktemp("medical")
    PIL.Image.fromarray(seven.astype(np.uint16) * 257).save(folder / "seven16.png")
    twelve_bit = np.round(seven.astype(np.float64) * 4095 / 255).astype(np.uint16)
    write_dicom(folder / "seven.dcm", twelve_bit, bits_stored=12)
    (folder / "broken.dcm").write_bytes((folder / "seven.dcm").read_bytes()[:-40])  # pixel data cut short
    return {"png16": folder / "seven16.png", "dicom": folder / "seven.dcm", "broken": folder / "broken.dcm"}


def test_dicom_and_16_bit_files_classify_like_the_pipeline_without_leaking_patient_data(served, pipe, medical_files):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    client, log = served
    answers = {
        # the file input (named `file`, after the image), which takes what a browser cannot show
        "dicom": client.predict(None, handle_file(str(medical_files["dicom"])), api_name="/classify"),
        "png16": client.predict(None, handle_file(str(medical_files["png16"])), api_name="/classify"),
        # a 16-bit PNG in the image input reaches the reader unconverted (no 8-bit RGB copy)
        "png16 as image": client.predict(handle_file(str(medical_files["png16"])), api_name="/classify"),
    }
    for name, (probs_value, confidence) in answers.items():
        path = medical_files[name.split()[0]]
        expected = pipe.classify(str(path)).probs[0].tolist()
        assert confidences(probs_value) == pytest.approx({str(i): p for i, p in enumerate(expected)}, abs=1e-6), name
        assert confidence == pytest.approx(max(expected), abs=1e-4), name
    shown = client.predict(None, TARGET, STRENGTH, SEED, STEPS, handle_file(str(medical_files["dicom"])),
                           api_name="/counterfactual")  # fmt: skip
    before = pipe.classify(str(medical_files["dicom"])).probs[0].tolist()
    assert confidences(shown[3]) == pytest.approx({str(i): p for i, p in enumerate(before)}, abs=1e-6)

    with pytest.raises(AppError, match=r"Cannot use the image broken\.dcm: .*") as info:
        client.predict(None, handle_file(str(medical_files["broken"])), api_name="/classify")
    assert str(medical_files["broken"].parent) not in str(info.value)  # the file's name, not where the server keeps it
    with pytest.raises(AppError, match="either an image or a file, not both"):
        client.predict(handle_file(str(medical_files["png16"])), handle_file(str(medical_files["dicom"])),
                       api_name="/classify")  # fmt: skip

    # No DICOM tag in what the app answered (labels, numbers, the images it sent back) or in its output.
    sent_back = [Path(value).read_bytes().decode("latin-1") for value in shown[:3]]
    texts = [json.dumps(answers), json.dumps(shown[3:]), str(info.value), log.read_text(), *sent_back]
    for secret in PATIENT_DATA:
        assert not any(secret in text for text in texts), secret
