# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Every fenced code block of README.md and the Markdown pages under docs/ runs.

Blocks run page by page, in order, in a fresh working directory per page:

- `python` blocks are executed in one namespace per page (a tutorial's later blocks use earlier variables). A tiny
  saved pipeline stands in for `joint-diffusion-model` when a page uses it without training it first.
- `bash` blocks run each command. `accelerate launch examples/train_joint.py ...` and `python examples/*.py ...` run
  the repository's script with the documented arguments and tiny overrides appended (argparse keeps the last value),
  so a documented 1,500-step run takes two steps of a tiny UNet. The script's `main` runs in this process (on one
  CPU process, as `accelerate launch` does here) to save the start-up of a new interpreter per command;
  tests/examples/test_train_joint.py covers the real `accelerate launch`. Paths under `../shared/data` point to the
  real data beside the repository, or to small synthetic files in the same layout when that folder is absent.
- `yaml` and `json` blocks must parse; a block preceded by `<!-- docs-test: file NAME -->` is written to `NAME`.
- A block preceded by `<!-- docs-test: skip (reason) -->` is not run; the reason is mandatory.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import runpy
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# DOCS_TEST_SHARED_DATA=/nonexistent forces the synthetic stand-ins.
SHARED_DATA = Path(os.environ.get("DOCS_TEST_SHARED_DATA", ROOT.parent / "shared" / "data"))

RUN_LANGUAGES = {"python", "bash"}
CHECK_LANGUAGES = {"yaml", "json"}
TEXT_LANGUAGES = {"text", "bibtex"}
DIRECTIVE = re.compile(r"^<!--\s*docs-test:\s*(\S+)\s*(.*?)\s*-->$")
FENCE = re.compile(r"^```(\S*)\s*$")

# Tiny overrides appended to documented commands: argparse keeps the last value of a repeated option.
TRAIN_OVERRIDES = [
    "--max_train_steps", "2", "--checkpointing_steps", "2", "--block_out_channels", "8", "16",
    "--attention_levels", "--classifier_hidden_dims", "16", "--train_batch_size", "16",
    "--validation_steps", "0", "--num_validation_samples_per_class", "1", "--validation_inference_steps", "2",
    "--lr_warmup_steps", "0", "--report_to", "none", "--cache_dir", ".hf-datasets-cache",
    "--num_evaluation_samples", "8",
]  # fmt: skip
EVALUATE_OVERRIDES = [
    "--num_generated", "8", "--num_inference_steps", "2", "--reference_epochs", "1", "--num_counterfactuals", "4",
    "--kid_subset_size", "4", "--batch_size", "8",
]  # fmt: skip
AUTOENCODER_OVERRIDES = [
    "--max_train_steps", "2", "--checkpointing_steps", "2", "--resolution", "16", "--block_out_channels", "8", "16",
    "16", "--latent_channels", "2", "--train_batch_size", "8", "--lr_warmup_steps", "0", "--report_to", "none",
    "--max_eval_images", "16", "--scaling_images", "16", "--cache_dir", ".hf-datasets-cache",
]  # fmt: skip
LESION_SET_OVERRIDES = ["--num_train", "8", "--num_test", "4", "--size", "32"]
SCRIPT_OVERRIDES = {
    "examples/train_joint.py": TRAIN_OVERRIDES,
    "examples/evaluate_joint.py": EVALUATE_OVERRIDES,
    "examples/train_autoencoder.py": AUTOENCODER_OVERRIDES,
    "examples/make_lesion_dataset.py": LESION_SET_OVERRIDES,
}
PIPELINE_FOLDERS = ("joint-diffusion-model",)


@dataclass
class Block:
    page: Path
    line: int
    language: str
    code: str
    directive: str | None = None
    argument: str = ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def extract_blocks(page: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, with the `docs-test` directive on the line before each, if any."""
    blocks, lines = [], page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start, language = i, match.group(1)
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        previous = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        directive = DIRECTIVE.match(previous)
        blocks.append(
            Block(
                page=page,
                line=start + 1,
                language=language,
                code="\n".join(lines[start + 1 : end]) + "\n",
                directive=directive.group(1) if directive else None,
                argument=directive.group(2) if directive else "",
            )
        )
        i = end + 1
    return blocks


ALL_BLOCKS = [block for page in PAGES for block in extract_blocks(page)]


def shell_commands(code: str) -> list[list[str]]:
    """The commands of a bash block: continuation lines joined, comments dropped, each split like a shell would."""
    joined = re.sub(r"\\\n\s*", " ", code)
    return [shlex.split(line, comments=True) for line in joined.splitlines() if shlex.split(line, comments=True)]


def to_script_call(command: list[str], data_root: Path) -> tuple[str, list[str]]:
    """`(script, arguments)` to run for a documented command; a `ValueError` when the test has no rule for it."""
    command = [re.sub(r"^\.\./shared/data", str(data_root), arg) for arg in command]
    if command[:2] == ["accelerate", "launch"] and len(command) > 2 and command[2] in SCRIPT_OVERRIDES:
        script, args = command[2], command[3:]
    elif command[0] in ("python", "python3") and len(command) > 1 and command[1] in SCRIPT_OVERRIDES:
        script, args = command[1], command[2:]
    else:
        raise ValueError(f"no rule to run {shlex.join(command)!r}: mark the block skip, with a reason")
    tiny = [] if "--help" in args else SCRIPT_OVERRIDES[script]
    return script, args + tiny


def run_script(script: str, args: list[str]) -> None:
    """`python script args`, in this process (as `__main__`, through `runpy`), then reset Accelerate's state."""
    from accelerate.state import AcceleratorState, GradientState

    argv = sys.argv
    sys.argv = [str(ROOT / script), *args]
    try:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    except SystemExit as exit:  # --help, or an argument error (code 2)
        assert exit.code in (0, None), f"`{script}` rejected its arguments {args}"
    finally:
        sys.argv = argv
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()


# ------------------------------------------------------------------------------------------------ fast checks


def test_pages_have_code_blocks_and_every_block_has_a_language():
    assert len(ALL_BLOCKS) > 20
    assert {"README.md", "quickstart.md", "training.md", "tutorial-pneumonia.md"} <= {p.name for p in RUNNABLE_PAGES}
    for block in ALL_BLOCKS:
        assert block.language, f"{block.where}: give the code fence a language"
        known = RUN_LANGUAGES | CHECK_LANGUAGES | TEXT_LANGUAGES
        assert block.language in known, f"{block.where}: unknown language {block.language!r}"


def test_every_directive_is_known_and_every_skip_has_a_reason():
    for block in ALL_BLOCKS:
        if block.directive is None:
            continue
        assert block.directive in ("skip", "file"), f"{block.where}: unknown directive {block.directive!r}"
        if block.directive == "skip":
            reason = re.fullmatch(r"\((.*\S.*)\)", block.argument)
            assert reason, f"{block.where}: a skipped block needs a reason: <!-- docs-test: skip (why) -->"
        else:
            assert re.fullmatch(r"[\w.-]+", block.argument), f"{block.where}: `file` needs a file name"


def test_every_shell_command_that_is_not_skipped_has_a_rule():
    for block in ALL_BLOCKS:
        if block.language == "bash" and block.directive != "skip":
            for command in shell_commands(block.code):
                to_script_call(command, SHARED_DATA)  # raises for commands the test cannot run


def test_yaml_and_json_blocks_parse():
    for block in ALL_BLOCKS:
        if block.language == "yaml":
            assert isinstance(yaml.safe_load(block.code), dict), block.where
        elif block.language == "json":
            json.loads(block.code)


def test_the_multi_gpu_example_is_a_valid_accelerate_config(tmp_path):
    from accelerate.commands.config.config_args import load_config_from_file

    files = [b for b in ALL_BLOCKS if b.directive == "file" and b.argument.endswith(".yaml")]
    assert any(b.argument == "multi_gpu.yaml" for b in files)
    for block in files:
        path = tmp_path / block.argument
        path.write_text(block.code)
        config = load_config_from_file(str(path))
        assert config.num_processes >= 1, block.where


# ------------------------------------------------------------------------------------------------ running pages


def write_synthetic_shared_data(root: Path) -> None:
    """Small files in the layout of ../shared/data, for machines without it (random pixels, real layouts)."""
    rng = np.random.default_rng(0)
    folder = root / "pneumoniamnist"
    folder.mkdir(parents=True)
    arrays = {}
    for split, n in (("train", 96), ("val", 16), ("test", 32)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2)[:, None].astype(np.int64)
    np.savez(folder / "pneumoniamnist_balanced_28.npz", **arrays)
    (root / "mnist5k").mkdir()
    rows = [",".join(map(str, [*rng.integers(0, 256, 784), i % 10])) for i in range(200)]
    with gzip.open(root / "mnist5k" / "mnist_5k.csv.gz", "wt") as f:
        f.write("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    root = tmp_path_factory.mktemp("shared-data")
    write_synthetic_shared_data(root)
    return root


def save_tiny_pipeline(folder: Path) -> None:
    """A tiny untrained 8x8 digits-like pipeline, saved like the training script saves one."""
    from diffusers import DDPMScheduler

    from diffusers_joint import JointDiffusionPipeline
    from tiny_models import tiny_joint_unet

    unet = tiny_joint_unet(label_names=[str(i) for i in range(10)])
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    JointDiffusionPipeline(unet=unet, scheduler=scheduler).save_pretrained(folder)


def run_python(block: Block, namespace: dict, data_root: Path) -> None:
    for name in PIPELINE_FOLDERS:
        if name in block.code and not (Path(name) / "model_index.json").exists():
            save_tiny_pipeline(Path(name))
    code = block.code.replace("../shared/data", str(data_root))
    exec(compile(code, block.where, "exec"), namespace)


def run_bash(block: Block, data_root: Path) -> None:
    for command in shell_commands(block.code):
        script, args = to_script_call(command, data_root)
        if script == "examples/evaluate_joint.py":
            for name in PIPELINE_FOLDERS:
                if name in args and not (Path(name) / "model_index.json").exists():
                    save_tiny_pipeline(Path(name))
        try:
            run_script(script, args)
        except Exception as error:
            raise AssertionError(f"{block.where}: `{shlex.join(command)}` failed: {error!r}") from error


def runnable_blocks(page: Path) -> list[Block]:
    return [b for b in extract_blocks(page) if b.directive != "skip" and (b.language in RUN_LANGUAGES or b.directive)]


RUNNABLE_PAGES = [page for page in PAGES if runnable_blocks(page)]


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=[str(p.relative_to(ROOT)) for p in RUNNABLE_PAGES])
def test_code_blocks_of_page_run(page, data_root, tmp_path, monkeypatch):
    blocks = runnable_blocks(page)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setattr(sys, "argv", [sys.argv[0]])
    namespace: dict = {"__name__": "__docs__"}
    for block in blocks:
        if block.directive == "file":
            Path(block.argument).write_text(block.code)
        elif block.language == "python":
            run_python(block, namespace, data_root)
        elif block.language == "bash":
            with contextlib.redirect_stdout(sys.stderr):
                run_bash(block, data_root)
