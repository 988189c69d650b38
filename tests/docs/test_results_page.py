# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""docs/results.md agrees with the committed results files, and the README's pitch stays short and sourced."""

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "results.md"


def load_generator():
    spec = importlib.util.spec_from_file_location("make_results_page", ROOT / "benchmarks" / "make_results_page.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generator = load_generator()


def test_the_results_page_matches_the_committed_results():
    stale = generator.stale_tables(PAGE.read_text(encoding="utf-8"), generator.render_tables())
    assert not stale, f"tables {stale} of docs/results.md are stale: run python benchmarks/make_results_page.py"
    assert generator.main(["--check"]) == 0


def test_a_changed_result_makes_the_check_fail_until_the_page_is_regenerated(tmp_path, capsys):
    results, page = tmp_path / "results", tmp_path / "results.md"
    shutil.copytree(ROOT / "benchmarks" / "results", results)
    shutil.copy(PAGE, page)
    path = results / "semi_supervised_pneumonia.json"
    data = json.loads(path.read_text())
    data["summary"]["joint/50"]["balanced_accuracy"]["mean"] = 0.95
    path.write_text(json.dumps(data))
    check = ["--check", "--page", str(page), "--results_dir", str(results)]

    assert generator.main(check) == 1
    assert "semi-supervised" in capsys.readouterr().out
    assert generator.main(["--page", str(page), "--results_dir", str(results)]) == 0
    assert generator.main(check) == 0
    text = page.read_text()
    assert "| PneumoniaMNIST | 50 | **0.950 ± 0.016** | 0.865 ± 0.041 | 0.801 ± 0.026 | +8.5 |" in text
    assert "PneumoniaMNIST, 50 labels: balanced accuracy" not in text  # no longer a case where it does not help
    prose = [line for line in text.splitlines() if not line.startswith("|")]  # only the tables changed
    assert prose == [line for line in PAGE.read_text().splitlines() if not line.startswith("|")]


def test_every_table_is_marked_exactly_once():
    text, tables = PAGE.read_text(encoding="utf-8"), generator.render_tables()
    with pytest.raises(ValueError, match="missing \\['cost'\\]"):
        generator.fill_page(text.replace("<!-- results-table: cost -->", "<!-- a comment -->"), tables)
    with pytest.raises(ValueError, match="unknown tables \\['costs'\\]"):
        generator.fill_page(text.replace("results-table: cost -->", "results-table: costs -->"), tables)


def test_the_results_page_is_short():
    assert len(PAGE.read_text(encoding="utf-8").splitlines()) <= 250


def test_no_page_links_to_the_removed_benchmark_page():
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    assert not [p.name for p in pages if "benchmarks.md" in p.read_text(encoding="utf-8")]


def test_the_readme_pitch_is_short_and_its_numbers_link_to_the_results():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    pitch = text.split("\n\n")[1]  # the paragraph after the title
    assert len(pitch) <= 600 and len(pitch.splitlines()) <= 5
    links = re.findall(r"\[([^\]]*)\]\(([^)]*)\)", pitch)
    prose = re.sub(r"\]\([^)]*\)", "]", pitch)  # link targets hold no claims
    numbers = re.findall(r"\d+(?:[.,]\d+)*", prose)
    assert len(numbers) <= 3, numbers
    linked = [
        n for label, target in links if target.startswith("docs/results.md") for n in re.findall(r"\d\.\d+", label)
    ]
    assert re.findall(r"\d\.\d+", prose) == linked  # every measured figure is a link to the results page
