# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The Space folder: a valid Space card, requirements, and an app.py that builds the app from the vendored package."""

import os
import re
import subprocess
import sys

import pytest
from diffusers import DDPMScheduler
from huggingface_hub import SpaceCard

from diffusers_joint import JointDiffusionPipeline
from diffusers_joint.app import write_space
from tiny_models import tiny_joint_unet

pytest.importorskip("gradio", reason='writing a Space pins the installed Gradio: pip install -e ".[app]"')


def test_space_card_requirements_and_vendored_package(tmp_path):
    import gradio

    space = write_space(tmp_path / "space", "user/joint-pneumonia-50", num_inference_steps=20)
    card = SpaceCard.load(space / "README.md")  # parses the YAML header as the Hub does
    assert card.data.sdk == "gradio" and card.data.sdk_version == gradio.__version__
    assert card.data.app_file == "app.py" and card.data.models == ["user/joint-pneumonia-50"]
    assert "/counterfactual" in card.text
    requirements = (space / "requirements.txt").read_text().splitlines()
    assert f"gradio=={gradio.__version__}" in requirements
    assert {"torch>=2.1", "diffusers>=0.30", "safetensors>=0.4", "pydicom>=3.0"} <= set(requirements)  # reads DICOM
    assert not any("pytest" in r or "mkdocs" in r for r in requirements)  # no test or docs extras
    assert (space / "diffusers_joint" / "app" / "explanation_app.py").is_file()
    assert not list(space.rglob("__pycache__"))
    assert "'user/joint-pneumonia-50'" in (space / "app.py").read_text()

    spec = write_space(tmp_path / "pinned", "user/m", package_spec="diffusers-joint @ git+https://example.org/dj")
    assert (spec / "requirements.txt").read_text().splitlines()[0] == "diffusers-joint @ git+https://example.org/dj"
    assert not (spec / "diffusers_joint").exists()
    with pytest.raises(ValueError, match="Hub model id 'owner/name'"):
        write_space(tmp_path / "bad", "just-a-name")


@pytest.mark.parametrize("model_id", ["user/my model", "./my-model", "user/model?", 'user/x"""', "user/a--b", "a/b/c"])
def test_invalid_model_id_is_refused(tmp_path, model_id):
    # it is written into app.py and the card: anything the Hub would refuse is refused here, before writing
    with pytest.raises(ValueError, match=r"Hub model id 'owner/name'.*got " + re.escape(repr(model_id))):
        write_space(tmp_path / "space", model_id)
    assert not (tmp_path / "space").exists()


def test_package_spec_removes_an_earlier_vendored_copy(tmp_path):
    # `app.py` imports from its folder first: a stale copy would shadow the package installed from `package_spec`
    space = write_space(tmp_path / "space", "user/m")
    assert (space / "diffusers_joint" / "__init__.py").is_file()
    write_space(space, "user/m", package_spec="diffusers-joint @ git+https://example.org/dj")
    assert not (space / "diffusers_joint").exists()
    assert (space / "requirements.txt").read_text().splitlines()[0] == "diffusers-joint @ git+https://example.org/dj"


@pytest.mark.parametrize("where", ["parent", "same", "inside"])
@pytest.mark.parametrize("package_spec", [None, "diffusers-joint"])
def test_output_dir_overlapping_the_package_is_refused(tmp_path, monkeypatch, where, package_spec):
    # on a copy of the package, as an editable install's `src/diffusers_joint`
    import diffusers_joint.app.space as space_module

    package = tmp_path / "src" / "diffusers_joint"
    (package / "app").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "app" / "space.py").write_text("")
    monkeypatch.setattr(space_module, "PACKAGE_DIR", package)
    output_dir = {"parent": package.parent, "same": package, "inside": package / "app"}[where]
    with pytest.raises(ValueError, match="outside the diffusers_joint package directory") as error:
        write_space(output_dir, "user/m", package_spec=package_spec)
    assert str(package) in str(error.value) and str(output_dir) in str(error.value)
    assert sorted(p.name for p in package.rglob("*")) == ["__init__.py", "app", "space.py"]  # nothing written


def test_space_app_builds_the_demo_from_its_own_copy_of_the_package(tmp_path):
    model = tmp_path / "model"
    unet = tiny_joint_unet(num_classes=2, label_names=["normal", "pneumonia"])
    JointDiffusionPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=20)).save_pretrained(model)
    space = write_space(tmp_path / "space", "user/joint-pneumonia-50")
    check = (
        "import app, diffusers_joint; "
        "print(diffusers_joint.__file__); "
        "print(sorted(fn.api_name for fn in app.demo.fns.values() if fn.api_visibility == 'public'))"
    )
    # As on the Space: run from the folder; MODEL_ID (a Space variable) points at a local model to stay offline.
    env = {**os.environ, "MODEL_ID": str(model), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, "-c", check], cwd=space, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    package_file, api_names = result.stdout.strip().splitlines()[-2:]
    assert package_file.startswith(str(space))  # the vendored copy, not the installed package
    assert api_names == "['classify', 'counterfactual', 'generate']"
