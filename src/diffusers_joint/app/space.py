# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Write a folder that deploys the explanation app unchanged as a Hugging Face Space (Gradio SDK) on a Hub model."""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path

from huggingface_hub import SpaceCard, SpaceCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

from .gradio_demo import import_gradio

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/diffusers_joint

APP_TEMPLATE = '''"""The explanation app (diffusers-joint) of the Joint Diffusion model {model_id!r}."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before Gradio is imported: no calls home

from diffusers_joint.app import ExplanationApp, build_demo, launch_demo  # noqa: E402

MODEL_ID = os.environ.get("MODEL_ID", {model_id!r})  # a Space variable can point it at another model

app = ExplanationApp.from_pretrained(MODEL_ID, num_inference_steps={num_inference_steps})
demo = build_demo(app, title={title!r})

if __name__ == "__main__":
    launch_demo(demo)  # Spaces set GRADIO_SERVER_NAME=0.0.0.0; elsewhere this serves on 127.0.0.1 only
'''

BODY = """
# {title}

The explanation app of the Joint Diffusion model [{model_id}](https://huggingface.co/{model_id}), made with
`diffusers-joint`: **Classify** an image, **Explain** it with a counterfactual towards another class (with the
difference map over the input and the probabilities before and after), and **Generate** class-guided samples.

Scripts can call it with `gradio_client` (`Client("<this Space's id>")`), at the API names `/classify`,
`/counterfactual` and `/generate`.

A counterfactual explains the model, not the data. Not for clinical or other decisions about people.
"""


def _requirements(package_spec: str | None) -> list[str]:
    """The Space's pip requirements: the package (or, vendored, its dependencies and the `dicom` extra) and Gradio."""
    gradio = import_gradio()
    if package_spec is not None:
        return [package_spec, f"gradio=={gradio.__version__}"]
    requires = metadata.requires("diffusers-joint") or []
    runtime = [r.split(";")[0].strip() for r in requires if "extra ==" not in r]
    dicom = [r.split(";")[0].strip() for r in requires if r.replace("'", '"').endswith('extra == "dicom"')]
    return runtime + dicom + [f"gradio=={gradio.__version__}"]


def _check_model_id(model_id: str) -> None:
    """A Hub model id 'owner/name' as the Hub accepts it: it goes into `app.py`, the card's `models` and its link."""
    try:
        if not isinstance(model_id, str) or model_id.count("/") != 1:
            raise HFValidationError("expected exactly one '/' between the owner and the name.")
        validate_repo_id(model_id)
    except HFValidationError as error:
        raise ValueError(
            f"`model_id` must be a Hub model id 'owner/name' that the Hub accepts, got {model_id!r}: {error}"
        ) from error


def _check_outside_package(output_dir: Path) -> None:
    """Refuse a Space folder overlapping the package: writing it would replace (or copy into) the package itself."""
    folder, package = output_dir.resolve(), PACKAGE_DIR.resolve()
    if folder == package or package in folder.parents or folder in package.parents:
        raise ValueError(
            f"Expected an `output_dir` outside the diffusers_joint package directory {package} (neither it, inside it "
            f"nor holding it), got {output_dir} ({folder}). Write the Space to another folder."
        )


def write_space(
    output_dir: str | Path,
    model_id: str,
    title: str | None = None,
    num_inference_steps: int = 250,
    package_spec: str | None = None,
) -> Path:
    """
    Write a Hugging Face Space for the explanation app on the Hub model `model_id`: `app.py` (the app, reading
    `MODEL_ID` from the environment, `model_id` by default), `requirements.txt` and `README.md` with the Space's YAML
    header (`sdk: gradio` at the installed Gradio version, `app_file: app.py`, `models: [model_id]`). Upload the folder
    with `huggingface_hub.HfApi().upload_folder(repo_id=..., repo_type="space", folder_path=output_dir)`.

    Args:
        output_dir (`str` or `Path`):
            The folder to write (created; existing files of the same names are replaced, and a `diffusers_joint/`
            copy from an earlier run is removed when `package_spec` is given). It must not be, hold or be inside the
            installed package's directory.
        model_id (`str`):
            The Hub id of the trained pipeline, e.g. `"user/joint-pneumonia-50"`: `owner/name`, checked with
            `huggingface_hub.utils.validate_repo_id` (a local model is served by setting `MODEL_ID` instead).
        title (`str`, *optional*):
            The Space's title; defaults to the model's name.
        num_inference_steps (`int`, *optional*, defaults to 250):
            Default denoising steps of the app (free CPU Spaces are slow: fewer steps answer sooner).
        package_spec (`str`, *optional*):
            A pip requirement that installs diffusers-joint on the Space (e.g. `"diffusers-joint[dicom] @
            git+https://github.com/ORG/diffusers-joint"`; the `dicom` extra lets the app read DICOM uploads). By
            default the installed package is copied into the folder (`diffusers_joint/`, which `app.py` imports first)
            and `requirements.txt` lists its dependencies and pydicom, so the Space runs exactly the code tested here.

    Returns:
        `Path`: `output_dir`.

    Raises:
        ValueError: `model_id` is not a Hub model id, or `output_dir` overlaps the package's directory.
    """
    _check_model_id(model_id)
    output_dir = Path(output_dir)
    _check_outside_package(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    title = title or model_id.split("/")[1]
    (output_dir / "app.py").write_text(
        APP_TEMPLATE.format(model_id=model_id, title=title, num_inference_steps=int(num_inference_steps))
    )
    (output_dir / "requirements.txt").write_text("\n".join(_requirements(package_spec)) + "\n")
    # `app.py` imports `diffusers_joint` from its own folder first: a copy vendored by an earlier run is replaced,
    # and removed when the package comes from `package_spec`, where it would shadow the pip-installed one
    target = output_dir / "diffusers_joint"
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)
    if package_spec is None:
        shutil.copytree(PACKAGE_DIR, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    gradio = import_gradio()
    card_data = SpaceCardData(
        title=title,
        sdk="gradio",
        sdk_version=gradio.__version__,
        app_file="app.py",
        models=[model_id],
        license="apache-2.0",
        tags=["joint-diffusion", "diffusers-joint", "counterfactual-explanations"],
    )
    body = BODY.format(title=title, model_id=model_id)
    SpaceCard(f"---\n{card_data.to_yaml()}\n---\n{body}").save(output_dir / "README.md")
    return output_dir
