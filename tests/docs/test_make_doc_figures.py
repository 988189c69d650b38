# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The documentation's figure script runs end to end (on a tiny pipeline, few steps)."""

import importlib.util
import json
from pathlib import Path

import PIL.Image
import pytest
from test_docs_code_blocks import save_tiny_pipeline

ROOT = Path(__file__).resolve().parents[2]


def load_figure_script():
    spec = importlib.util.spec_from_file_location("make_doc_figures", ROOT / "benchmarks" / "make_doc_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_figures_are_drawn_from_a_pipeline(tmp_path):
    pytest.importorskip("matplotlib", reason='the figure script needs matplotlib: pip install -e ".[docs]"')
    figures = load_figure_script()
    save_tiny_pipeline(tmp_path / "digits")
    out = tmp_path / "images"
    argv = ["--digits_pipeline", str(tmp_path / "digits"), "--skip_pneumonia", "--num_inference_steps", "4"]
    figures.main(figures.parse_args(argv + ["--output_dir", str(out)]))
    for name in ("architecture.png", "digits_samples.png", "digits_counterfactual.png"):
        with PIL.Image.open(out / name) as image:
            assert image.format == "PNG" and min(image.size) > 100, name
    numbers = json.loads((out / "figures.json").read_text())
    assert len(numbers["digits"]["counterfactuals"]) >= 1
    assert sum(p.stat().st_size for p in out.glob("*.png")) < 1024**2


def test_committed_figures_are_small_pngs():
    images = sorted((ROOT / "docs" / "images").glob("*.png"))
    assert images, "docs/images holds the figures made by benchmarks/make_doc_figures.py"
    assert all(PIL.Image.open(p).format == "PNG" for p in images)
    assert sum(p.stat().st_size for p in images) < 1024**2
