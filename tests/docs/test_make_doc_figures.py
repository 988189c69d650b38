# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The documentation's figure script runs end to end (on a tiny pipeline, few steps)."""

import importlib.util
import json
import sys
from pathlib import Path

import PIL.Image
import pytest
from test_docs_code_blocks import save_tiny_pipeline

ROOT = Path(__file__).resolve().parents[2]


def load_figure_script():
    sys.path.insert(0, str(ROOT / "benchmarks"))  # its helper modules, as when run as a script
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
    figures.main(figures.parse_args(argv + ["--app_inference_steps", "4", "--output_dir", str(out)]))
    for name in ("architecture.png", "digits_samples.png", "digits_counterfactual.png"):
        with PIL.Image.open(out / name) as image:
            assert image.format == "PNG" and min(image.size) > 100, name
    numbers = json.loads((out / "figures.json").read_text())
    assert len(numbers["digits"]["counterfactuals"]) >= 1
    assert numbers["digits"]["guidance_method"] == {"generation": "x0", "counterfactual": "x0"}  # a clean-only model
    assert sum(p.stat().st_size for p in out.glob("*.png")) < 1024**2
    if numbers["app_screenshots"].get("skipped"):
        pytest.skip(f"app screenshots not taken: {numbers['app_screenshots']['skipped']}")
    for tab in ("classify", "explain", "generate"):
        with PIL.Image.open(out / f"app_{tab}.png") as image:  # a browser page, several hundred pixels of it
            assert image.format == "PNG" and image.width == 1200 and image.height >= 600, tab
            assert len(image.convert("RGB").getcolors(1 << 16) or range(1 << 16)) > 50, tab  # not a blank page


def test_screenshots_are_skipped_with_a_reason_without_chromium(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason='the figure script needs matplotlib: pip install -e ".[docs]"')
    figures = load_figure_script()
    monkeypatch.setattr(figures, "find_chromium", lambda: None)
    reason = figures.screenshot_app(tmp_path, None, "8", 4, tmp_path)
    assert "no Chromium on PATH" in reason and "apt-get install chromium" in reason
    assert not list(tmp_path.glob("app_*.png"))


def test_committed_figures_are_small_pngs():
    images = sorted((ROOT / "docs" / "images").glob("*.png"))
    assert images, "docs/images holds the figures made by benchmarks/make_doc_figures.py"
    assert {f"app_{tab}.png" for tab in ("classify", "explain", "generate")} <= {p.name for p in images}
    assert all(PIL.Image.open(p).format == "PNG" for p in images)
    assert sum(p.stat().st_size for p in images) < 1024**2
