# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
The explanation app's Gradio interface: three tabs (Classify, Explain, Generate) over an [`ExplanationApp`], with the
stable API names `/classify`, `/counterfactual` and `/generate` for `gradio_client`. Needs the `app` extra
(`pip install -e ".[app]"`).
"""

from __future__ import annotations

import os
from typing import Any

from diffusers.utils import logging

from ..data.image_reading import IMAGE_EXTENSIONS, ImageReadError
from .explanation_app import ExplanationApp

logger = logging.get_logger(__name__)

INSTALL_HINT = 'The explanation app needs Gradio: pip install -e ".[app]" (or pip install gradio).'

# Keep upscaled pixels square in the browser too (no smoothing when the page scales an image).
CSS = ".pixelated img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }"

DESCRIPTION = """\
A Joint Diffusion model: one network that classifies, explains and generates ({num_classes} classes: {classes}).
*Classify* shows the model's probabilities for an image. *Explain* turns the image into a counterfactual: the change
that the model's own diffusion process finds to make it answer the target class; the heat map shows where the image
had to change. A counterfactual explains *the model*, not the data. *Generate* draws class-guided samples. Images are
shown at the model's resolution, enlarged without smoothing. Besides browser images, *Classify* and *Explain* take
files with their real intensities: DICOM, 16-bit or float PNG / TIFF, `.npy` / `.npz` arrays."""

# Uploads (a DICOM file holds patient data) stay in Gradio's cache no longer than an hour: (check every, max age) in s.
DELETE_CACHE = (600, 3600)


def upload_error_message(error: ImageReadError) -> str:
    """The reader's error naming the upload by its file name, not by the server's cache path."""
    name = os.path.basename(error.path)
    return f"Cannot use the image {name}: {error.reason.replace(error.path, name)}"


def import_gradio():
    """Import Gradio, or raise an `ImportError` that says how to install it."""
    try:
        import gradio
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return gradio


def disable_analytics() -> None:
    """Turn off Gradio's usage analytics before it is imported, so that the app makes no calls home."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def build_demo(app: ExplanationApp, title: str | None = None) -> Any:
    """
    Build the app's `gradio.Blocks`: tabs Classify, Explain and Generate, whose events have the API names
    `/classify`, `/counterfactual` and `/generate`. All events share one queue slot (`concurrency_id="model"`), since
    the pipelines share a scheduler.

    Args:
        app ([`ExplanationApp`]):
            The functions to serve.
        title (`str`, *optional*):
            The page title and heading; defaults to "Joint Diffusion explanation app".

    Returns:
        `gradio.Blocks`: start it with [`launch_demo`].
    """
    disable_analytics()
    gr = import_gradio()
    title = title or "Joint Diffusion explanation app"
    names = app.class_names
    num_top = min(len(names), 10)
    steps_max = app.pipeline.scheduler.config.num_train_timesteps

    def run(function, *args):
        # Bad input (no image, an unreadable file, unknown class) becomes a message in the page, not a server error.
        try:
            return function(*args)
        except ImageReadError as error:
            raise gr.Error(upload_error_message(error)) from error
        except ImportError as error:  # pydicom missing: say how to install it, not the upload's server cache path
            raise gr.Error(f"Cannot read this file: {error.__cause__ or error}") from error
        except ValueError as error:
            raise gr.Error(str(error)) from error

    def chosen(image, file):
        # The page clears one input when the other gets an upload; API callers may send either, not both.
        if image is not None and file is not None:
            raise gr.Error("Give either an image or a file, not both.")
        return file if file is not None else image

    # `file` is last and optional, so that scripts sending only an image keep working.
    def classify(image, file=None):
        return run(app.classify, chosen(image, file))

    # Gradio fills a `gr.Progress` default with a progress bar in the page; track_tqdm follows the denoising loop.
    tracked = gr.Progress(track_tqdm=True)

    def counterfactual(image, target_class, strength, seed, num_inference_steps, file=None, progress=tracked):
        out = run(app.counterfactual, chosen(image, file), target_class, strength, seed, num_inference_steps)
        if out.already_target:  # nothing to move: "did not move to" would read as a failure
            decision = f"The input is already classified as **{target_class}**"
        else:
            decision = f"The model's decision {'moved to' if out.flipped else 'did not move to'} **{target_class}**"
        summary = f"{decision} (mean absolute change {out.l1:.3f} in [-1, 1] pixel units)."
        return out.input_image, out.counterfactual, out.overlay, out.probs_before, out.probs_after, summary

    def generate(class_names, samples_per_class, seed, num_inference_steps, progress=tracked):
        return run(app.generate, class_names, samples_per_class, seed, num_inference_steps)

    def steps_slider():
        return gr.Slider(1, steps_max, value=app.num_inference_steps, step=1, label="Denoising steps")

    def seed_box():
        return gr.Number(value=0, precision=0, label="Seed (same seed, same result)")

    def image_inputs(elem_id):
        # A browser image, passed on as its file (image_mode=None: no conversion, so 16-bit PNGs keep their values),
        # or any file the package reads; an upload to one clears the other. format="png": an image sent as a data URL
        # (pasted, or by gradio_client) is saved losslessly, not re-encoded as Gradio's default lossy webp.
        with gr.Column():
            image = gr.Image(
                label="Image (PNG, JPEG; 8 or 16 bits)",
                type="filepath",
                image_mode=None,
                format="png",
                sources=["upload", "clipboard"],
                height=300,
                elem_id=elem_id,
                elem_classes="pixelated",
            )
            file = gr.File(
                label="Or a file: DICOM (.dcm), 16-bit or float PNG / TIFF, .npy / .npz",
                file_types=list(IMAGE_EXTENSIONS),
                type="filepath",
                height=140,
                elem_id=f"{elem_id}-file",
            )
        clear = {"fn": lambda: None, "inputs": None, "api_visibility": "private", "queue": False}
        file.upload(outputs=image, **clear)
        image.upload(outputs=file, **clear)
        return image, file

    def image_output(label, **kwargs):
        return gr.Image(label=label, type="pil", format="png", interactive=False, elem_classes="pixelated", **kwargs)

    calibrated = "not calibrated" if app.classifier_temperature == 1.0 else "calibrated"

    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=DELETE_CACHE) as demo:
        gr.Markdown(f"# {title}")
        gr.Markdown(DESCRIPTION.format(num_classes=len(names), classes=", ".join(names)))
        with gr.Tab("Classify"):
            with gr.Row():
                classify_image, classify_file = image_inputs("classify-image")
                with gr.Column():
                    probs = gr.Label(label=f"Class probabilities ({calibrated})", num_top_classes=num_top)
                    confidence = gr.Number(
                        label=f"Confidence: probability of the decision ({calibrated})", value=None, precision=4
                    )
                    gr.Markdown(f"Probabilities are {app.calibration_note}.", elem_id="classify-calibration")
            classify_button = gr.Button("Classify", variant="primary")
        with gr.Tab("Explain"):
            with gr.Row():
                explain_image, explain_file = image_inputs("explain-image")
                with gr.Column():
                    target = gr.Dropdown(names, value=names[-1], label="Target class", elem_id="explain-target")
                    strength = gr.Slider(0.05, 1.0, value=0.5, step=0.05, label="Strength (how far to noise)")
                    explain_seed = seed_box()
                    explain_steps = steps_slider()
                    explain_button = gr.Button("Explain", variant="primary")
            with gr.Row():
                shown_input = image_output("Input (as the model sees it)")
                shown_counterfactual = image_output("Counterfactual")
                shown_overlay = image_output("Difference map over the input")
            with gr.Row():
                probs_before = gr.Label(label=f"Probabilities before ({calibrated})", num_top_classes=num_top)
                probs_after = gr.Label(label=f"Probabilities after ({calibrated})", num_top_classes=num_top)
            summary = gr.Markdown()
        with gr.Tab("Generate"):
            with gr.Row():
                generate_classes = gr.CheckboxGroup(names, value=names, label="Classes")
                with gr.Column():
                    per_class = gr.Slider(1, 16, value=4, step=1, label="Samples per class")
                    generate_seed = seed_box()
                    generate_steps = steps_slider()
                    generate_button = gr.Button("Generate", variant="primary")
            grid = image_output("Samples, a row per class", height=560, elem_id="generate-grid")
            gallery = gr.Gallery(
                label="Each sample (to download)",
                columns=8,
                height="auto",
                format="png",
                elem_id="generate-gallery",
                elem_classes="pixelated",
            )

        shared = {"concurrency_id": "model", "concurrency_limit": 1}
        classify_inputs = [classify_image, classify_file]
        classify_button.click(classify, classify_inputs, [probs, confidence], api_name="classify", **shared)
        explain_button.click(
            counterfactual,
            [explain_image, target, strength, explain_seed, explain_steps, explain_file],
            [shown_input, shown_counterfactual, shown_overlay, probs_before, probs_after, summary],
            api_name="counterfactual",
            **shared,
        )
        generate_button.click(
            generate,
            [generate_classes, per_class, generate_seed, generate_steps],
            [gallery, grid],
            api_name="generate",
            **shared,
        )
    return demo


def launch_demo(
    demo: Any, server_name: str | None = None, server_port: int | None = None, share: bool = False, **kwargs
) -> Any:
    """
    Start the app's server: on `server_name` (by default `GRADIO_SERVER_NAME`, which Spaces set to 0.0.0.0, or else
    127.0.0.1: this machine only), at `server_port` (Gradio's default 7860 or the next free port when `None`),
    without a public share link unless `share=True`. `kwargs` go to `gradio.Blocks.launch` (e.g.
    `prevent_thread_lock=True` to return at once; close with `demo.close()`).
    """
    return demo.launch(server_name=server_name, server_port=server_port, share=share, css=CSS, **kwargs)
