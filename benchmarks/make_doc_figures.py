#!/usr/bin/env python
"""
Make the documentation's figures (`docs/images/*.png`) from models trained with this repository.

    python benchmarks/make_doc_figures.py                       # trains the models it needs, then draws
    python benchmarks/make_doc_figures.py --digits_pipeline joint-diffusion-model \
        --pneumonia_pipeline joint-pneumonia-50                 # reuse trained pipelines

Missing pipelines are trained with `examples/train_joint.py` into `--work_dir`: the digits model with the README's
main job's defaults (600 steps; with the digits figures about 2.5 min on one thread), the PneumoniaMNIST model with
the 50-label command of docs/experiments/semi-supervised.md (about 20 min on one core). Every figure is seeded, so
re-running with the same pipelines redraws the same pictures. The numbers shown in the figures are also written to
`docs/images/figures.json`, from which the documentation quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from diffusers_joint import CounterfactualPipeline, JointDiffusionPipeline  # noqa: E402
from diffusers_joint.data import load_digits_dataset, load_npz_dataset  # noqa: E402
from diffusers_joint.pipelines import default_guidance_method  # noqa: E402
from diffusers_joint.pipelines.guidance_config import GUIDANCE_TASKS  # noqa: E402
from headless_chromium import HeadlessChromium, find_chromium  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = ROOT / "examples" / "train_joint.py"
DEFAULT_NPZ = ROOT.parent / "shared" / "data" / "pneumoniamnist" / "pneumoniamnist_balanced_28.npz"
PNEUMONIA_NAMES = {0: "normal", 1: "pneumonia"}
PNEUMONIA_TRAIN_ARGS = [
    "--train_batch_size", "32", "--max_train_steps", "1000", "--validation_steps", "0",
    "--checkpointing_steps", "500", "--report_to", "none", "--num_labeled", "50",
]  # fmt: skip


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--digits_pipeline", default=None, help="A trained digits pipeline (default: train one).")
    parser.add_argument("--pneumonia_pipeline", default=None, help="A trained PneumoniaMNIST pipeline.")
    parser.add_argument("--npz_path", default=str(DEFAULT_NPZ), help="PneumoniaMNIST .npz (test images, training).")
    parser.add_argument("--work_dir", default="doc-figure-models", help="Where missing pipelines are trained.")
    parser.add_argument("--output_dir", default=str(ROOT / "docs" / "images"))
    parser.add_argument("--num_inference_steps", type=int, default=250, help="DDPM steps for samples and edits.")
    parser.add_argument("--strength", type=float, default=0.5, help="Counterfactual strength.")
    parser.add_argument("--skip_pneumonia", action="store_true", help="Only draw the diagram and digits figures.")
    parser.add_argument(
        "--skip_screenshots", action="store_true", help="No screenshots of the explanation app (needs Chromium)."
    )
    parser.add_argument("--app_inference_steps", type=int, default=100, help="DDPM steps in the app screenshots.")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def train_if_missing(path: str | None, default_name: str, work_dir: str, extra_args: list[str]) -> Path:
    """Return `path`, or train a pipeline into `work_dir/default_name` (unless one is already there)."""
    if path is not None:
        return Path(path)
    out = Path(work_dir) / default_name
    if not (out / "model_index.json").exists():
        cmd = [sys.executable, "-m", "accelerate.commands.launch", str(TRAIN_SCRIPT), "--output_dir", str(out)]
        print("Training:", " ".join(cmd + extra_args), flush=True)
        subprocess.run(cmd + extra_args, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return out


def load_pipeline(path: Path) -> JointDiffusionPipeline:
    pipe = JointDiffusionPipeline.from_pretrained(path)
    pipe.set_progress_bar_config(disable=True)
    pipe.unet.eval()
    return pipe


def upscale(image: PIL.Image.Image, size: int) -> PIL.Image.Image:
    return image.resize((size, size), PIL.Image.NEAREST)


def save(fig, path: Path) -> None:
    fig.savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.05, pil_kwargs={"optimize": True})
    plt.close(fig)
    print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB)", flush=True)


# ---------------------------------------------------------------------------------------------------- figures


def draw_architecture(path: Path) -> None:
    """The joint model: one UNet encoder serves the denoiser and, through pooled features, the classifier."""
    fig, ax = plt.subplots(figsize=(9.6, 4.4))
    ax.set_xlim(0, 12)
    ax.set_ylim(0, 6.4)
    ax.axis("off")

    def box(x, y, w, h, text, color, fontsize=9):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.04", fc=color, ec="#333333", lw=1))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)

    def arrow(x0, y0, x1, y1, color="#333333", style="-|>", ls="-", rad=0.0):
        ax.add_patch(
            FancyArrowPatch(
                (x0, y0), (x1, y1), arrowstyle=style, mutation_scale=10, color=color, lw=1, ls=ls,
                connectionstyle=f"arc3,rad={rad}",
            )
        )  # fmt: skip

    enc, dec, cls = "#cfe2f3", "#d9ead3", "#fce5cd"
    # encoder (down blocks + mid block), shared by both tasks
    box(0.1, 3.9, 1.3, 0.8, "$x_t$, $t$\n(noisy image)", "#eeeeee", fontsize=8)
    box(0.1, 2.5, 1.3, 0.8, "$x_0$, $t=0$\n(clean image)", "#eeeeee", fontsize=8)
    stages = [(1.9, 4.0, "down 1"), (3.2, 3.55, "down 2"), (4.5, 3.1, "down 3"), (5.8, 2.65, "mid")]
    for x, y, name in stages:
        box(x, y, 1.0, 0.7, name, enc)
    arrow(1.4, 4.3, 1.9, 4.35)
    arrow(1.4, 2.9, 1.9, 4.1, ls="--")
    for (x0, y0, _), (x1, y1, _) in zip(stages, stages[1:]):
        arrow(x0 + 1.0, y0 + 0.35, x1, y1 + 0.35)
    # decoder (up blocks) with skip connections
    ups = [(7.1, 3.1, "up 3"), (8.4, 3.55, "up 2"), (9.7, 4.0, "up 1")]
    for x, y, name in ups:
        box(x, y, 1.0, 0.7, name, dec)
    arrow(6.8, 3.0, 7.1, 3.45)
    for (x0, y0, _), (x1, y1, _) in zip(ups, ups[1:]):
        arrow(x0 + 1.0, y0 + 0.35, x1, y1 + 0.35)
    for (x0, y0, _), (x1, y1, _) in zip(stages[:3], reversed(ups)):
        arrow(x0 + 0.5, y0 + 0.7, x1 + 0.5, y1 + 0.7, color="#999999", style="-", rad=-0.12)
    ax.text(6.3, 4.75, "skip connections", ha="center", fontsize=7, color="#777777")
    box(10.95, 4.0, 0.95, 0.7, r"$\hat\epsilon$", dec, fontsize=11)
    arrow(10.7, 4.35, 10.95, 4.35)
    ax.text(11.42, 3.7, r"MSE($\hat\epsilon$, $\epsilon$)" + "\nall images", ha="center", va="top", fontsize=8)
    # classifier: global average pooling of every encoder stage, concatenated, MLP head
    box(1.9, 0.9, 4.9, 0.6, "global average pool of each stage, concatenated", cls, fontsize=8)
    ax.text(4.35, 0.72, "length feature_dim = sum of the stages' channels", ha="center", va="top", fontsize=7)
    for x, y, _ in stages:
        arrow(x + 0.5, y, x + 0.5, 1.5, color="#b45f06", ls="--")
    box(7.3, 0.9, 1.5, 0.6, "MLP head", cls)
    box(9.3, 0.9, 1.1, 0.6, "logits", cls)
    arrow(6.8, 1.2, 7.3, 1.2)
    arrow(8.8, 1.2, 9.3, 1.2)
    ax.text(10.55, 1.2, r"$\lambda\,$CE(logits, $y$)" + "\nlabeled images", ha="left", va="center", fontsize=8)
    ax.text(0.1, 6.15, "JointUNet2DModel", fontsize=11, weight="bold")
    ax.text(
        0.1, 5.7, "unet(x_t, t).sample: noise prediction, as UNet2DModel      unet.classify(x_0): logits from the "
        "encoder", fontsize=8, va="center",
    )  # fmt: skip
    ax.text(0.1, 0.1, "Training loss = MSE + λ·CE; the classifier reads clean images at t = 0 through the same "
            "encoder weights (dashed path).", fontsize=8)  # fmt: skip
    save(fig, path)


def draw_samples(pipe: JointDiffusionPipeline, names: dict[int, str], per_class: int, steps: int, seed: int, path):
    """A grid of class-guided samples, one row per class (default x0 guidance)."""
    num_classes = pipe.unet.config.num_classes
    labels = [c for c in range(num_classes) for _ in range(per_class)]
    images = pipe(class_labels=labels, num_inference_steps=steps, generator=torch.Generator().manual_seed(seed)).images
    predicted = pipe.classify(images).labels.tolist()
    agreement = float(np.mean(np.asarray(predicted) == np.asarray(labels)))
    size, gap = (32, 2) if pipe.pixel_size <= 8 else (56, 2)
    grid = np.full((num_classes * (size + gap) - gap, per_class * (size + gap) - gap), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        row, col = divmod(i, per_class)
        cell = np.asarray(upscale(image.convert("L"), size))
        grid[row * (size + gap) : row * (size + gap) + size, col * (size + gap) : col * (size + gap) + size] = cell
    fig = plt.figure(figsize=(grid.shape[1] / 100, grid.shape[0] / 100))  # one grid pixel per output pixel
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(grid, cmap="gray", vmin=0, vmax=255, interpolation="none")
    ax.set_yticks([r * (size + gap) + size / 2 for r in range(num_classes)], [names[c] for c in range(num_classes)])
    ax.set_xticks([])
    ax.tick_params(length=0, labelsize=8)
    for spine in ax.spines.values():
        spine.set_visible(False)
    save(fig, path)
    return {"samples_per_class": per_class, "num_inference_steps": steps, "model_agrees_with_request": agreement}


def draw_counterfactuals(
    pipe: JointDiffusionPipeline,
    images: list[PIL.Image.Image],
    sources: list[int],
    targets: list[int],
    names: dict[int, str],
    steps: int,
    strength: float,
    seed: int,
    path: Path,
) -> list[dict]:
    """Rows of input | counterfactual | difference heat map, with the classifier's probabilities."""
    explain = CounterfactualPipeline.from_joint_pipeline(pipe)
    explain.set_progress_bar_config(disable=True)
    out = explain(
        image=images,
        target_class=targets,
        strength=strength,
        num_inference_steps=steps,
        generator=torch.Generator().manual_seed(seed),
    )
    size = 64 if pipe.pixel_size <= 8 else 112
    fig, axes = plt.subplots(len(images), 3, figsize=(4.6, 1.6 * len(images) + 0.2))
    axes = np.atleast_2d(axes)
    rows = []
    for i, (source, target) in enumerate(zip(sources, targets)):
        before = float(out.original_probs[i, target])
        after = float(out.counterfactual_probs[i, target])
        original = upscale(images[i].convert("L").resize(out.images[i].size, PIL.Image.BILINEAR), size)
        panels = [
            (original, f"input: {names[source]}\np({names[target]}) = {before:.2f}"),
            (upscale(out.images[i], size), f"counterfactual\np({names[target]}) = {after:.2f}"),
            (upscale(out.difference_heatmaps[i], size), f"|difference|\nL1 = {float(out.l1[i]):.3f}"),
        ]
        for ax, (image, title) in zip(axes[i], panels):
            ax.imshow(image, cmap="gray" if image.mode == "L" else None)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
        rows.append(
            {
                "source": names[source],
                "target": names[target],
                "p_target_before": round(before, 4),
                "p_target_after": round(after, 4),
                "flipped": bool(out.flipped[i]),
                "l1": round(float(out.l1[i]), 4),
            }
        )
    fig.tight_layout(pad=0.3)
    save(fig, path)
    return rows


APP_TABS = ("classify", "explain", "generate")


def choose_target(page: HeadlessChromium, target: str) -> None:
    """Pick `target` in the Explain tab's dropdown: open it, then click the option."""
    dropdown = "document.querySelector('#explain-target input')"
    page.evaluate(f"{dropdown}.focus()")
    page.evaluate(f"{dropdown}.click()")
    page.wait_for("document.querySelectorAll('[role=option]').length > 0")
    page.evaluate(
        f"[...document.querySelectorAll('[role=option]')].find(e => e.getAttribute('aria-label') === {target!r})"
        ".dispatchEvent(new MouseEvent('mousedown', {bubbles: true}))"
    )
    page.wait_for(f"{dropdown}.value === {target!r}", 10)


def _click(text: str, selector: str = "button") -> str:
    """JavaScript that clicks the first `selector` element whose text is `text`."""
    return f"[...document.querySelectorAll({selector!r})].find(e => e.textContent.trim() === {text!r}).click()"


def screenshot_app(pipe_path: Path, image: PIL.Image.Image, target: str, steps: int, out_dir: Path) -> str | None:
    """
    Screenshots of the explanation app's tabs (`app_classify.png`, `app_explain.png`, `app_generate.png`), taken as a
    user works: the app is served on 127.0.0.1 and driven by headless Chromium (upload, pick the target, click, wait),
    with the app's default seed 0. Returns the reason when it cannot run (no Chromium or no Gradio), else `None`.
    """
    if find_chromium() is None:
        return "no Chromium on PATH (Debian: apt-get install chromium)"
    try:
        from diffusers_joint.app import ExplanationApp, build_demo, launch_demo
        from diffusers_joint.app.gradio_demo import import_gradio

        import_gradio()
    except ImportError as error:
        return str(error)
    import socket
    import tempfile

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = ExplanationApp.from_pretrained(pipe_path, device="cpu", num_inference_steps=steps)
    app.pipeline.set_progress_bar_config(disable=True)
    app.explainer.set_progress_bar_config(disable=True)
    demo = build_demo(app, title=f"Joint Diffusion explanation app: {pipe_path.name}")
    launch_demo(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    with tempfile.TemporaryDirectory() as tmp, HeadlessChromium(width=1200, height=800) as page:
        upload = Path(tmp) / "input.png"
        image.save(upload)
        page.navigate(f"http://127.0.0.1:{port}/")
        page.wait_for("document.querySelectorAll('button[role=tab]').length === 3")

        def uploaded(elem_id: str) -> str:
            return f"[...document.querySelectorAll('#{elem_id} img')].some(i => i.complete && i.naturalWidth > 0)"

        page.wait_for("document.querySelector('#classify-image input[type=file]') !== null")
        page.set_file_input("#classify-image input[type=file]", upload)
        page.wait_for(uploaded("classify-image"))
        page.evaluate(_click("Classify", "button.primary"))
        page.wait_for("document.body.innerText.includes('%')")
        page.screenshot(out_dir / "app_classify.png")

        page.evaluate(_click("Explain", "button[role=tab]"))
        page.set_file_input("#explain-image input[type=file]", upload)
        page.wait_for(uploaded("explain-image"))
        choose_target(page, target)
        page.evaluate(_click("Explain", "button.primary"))
        page.wait_for("""document.body.innerText.includes("The model's decision")""", timeout=300)
        page.screenshot(out_dir / "app_explain.png")

        page.evaluate(_click("Generate", "button[role=tab]"))
        page.evaluate(_click("Generate", "button.primary"))
        page.wait_for(uploaded("generate-grid"), 900)
        gallery = "[...document.querySelectorAll('#generate-gallery img')]"
        page.screenshot(out_dir / "app_generate.png", f"{gallery}.every(i => i.complete && i.naturalWidth > 0)")
    demo.close()
    for tab in APP_TABS:
        print(f"wrote {out_dir / f'app_{tab}.png'}", flush=True)
    return None


def first_correct(pipe: JointDiffusionPipeline, dataset, classes: list[int], per_class: int):
    """
    The first `per_class` evaluation images of each class that the model classifies correctly (padded with the first
    misclassified ones if there are too few). There is no choice by outcome: the counterfactuals are drawn for
    whatever these images give.
    """
    labels = np.asarray(dataset["label"])
    chosen_images, chosen_labels = [], []
    for c in classes:
        index = np.flatnonzero(labels == c)[: 4 * per_class + 8].tolist()
        images = [dataset[i]["image"] for i in index]
        predicted = pipe.classify(images).labels.numpy()
        order = sorted(range(len(index)), key=lambda i: predicted[i] != c)  # correct first, stable order
        chosen_images += [images[i] for i in order[:per_class]]
        chosen_labels += [c] * min(per_class, len(order))
    return chosen_images, chosen_labels


def default_methods(unet) -> dict:
    """The guidance method the figures' pipelines used for samples and for counterfactuals (their defaults)."""
    return {task: default_guidance_method(unet, task) for task in GUIDANCE_TASKS}


def main(args) -> None:
    torch.manual_seed(args.seed)
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    numbers: dict = {}
    draw_architecture(out_dir / "architecture.png")

    digits_path = train_if_missing(args.digits_pipeline, "joint-digits", args.work_dir, [])
    pipe = load_pipeline(digits_path)
    names = dict(enumerate(pipe.unet.config.label_names))
    numbers["digits"] = {"pipeline": str(digits_path), "guidance_method": default_methods(pipe.unet)}
    numbers["digits"]["samples"] = draw_samples(
        pipe, names, 8, args.num_inference_steps, args.seed, out_dir / "digits_samples.png"
    )
    digits = load_digits_dataset().eval
    images, sources = first_correct(pipe, digits, [3, 1, 4, 7], per_class=1)
    targets = [{3: 8, 1: 7, 4: 9, 7: 2}[s] for s in sources]
    numbers["digits"]["counterfactuals"] = draw_counterfactuals(
        pipe, images, sources, targets, names, args.num_inference_steps, args.strength, args.seed,
        out_dir / "digits_counterfactual.png",
    )  # fmt: skip

    if not args.skip_screenshots:
        skipped = screenshot_app(digits_path, images[0], names[targets[0]], args.app_inference_steps, out_dir)
        numbers["app_screenshots"] = {"skipped": skipped} if skipped else {
            "tabs": list(APP_TABS), "pipeline": str(digits_path), "num_inference_steps": args.app_inference_steps,
            "input": f"held-out digit {names[sources[0]]}", "target": names[targets[0]], "seed": 0,
        }  # fmt: skip
        if skipped:
            print(f"Screenshots of the app skipped: {skipped}", flush=True)

    if not args.skip_pneumonia:
        pneumonia_path = train_if_missing(
            args.pneumonia_pipeline, "joint-pneumonia-50", args.work_dir, ["--npz_path", args.npz_path]
            + PNEUMONIA_TRAIN_ARGS
        )  # fmt: skip
        pipe = load_pipeline(pneumonia_path)
        numbers["pneumonia"] = {"pipeline": str(pneumonia_path), "guidance_method": default_methods(pipe.unet)}
        numbers["pneumonia"]["samples"] = draw_samples(
            pipe, PNEUMONIA_NAMES, 8, args.num_inference_steps, args.seed, out_dir / "pneumonia_samples.png"
        )
        test = load_npz_dataset(args.npz_path, eval_split="test").eval
        images, sources = first_correct(pipe, test, [1, 0], per_class=2)
        targets = [1 - s for s in sources]
        numbers["pneumonia"]["counterfactuals"] = draw_counterfactuals(
            pipe, images, sources, targets, PNEUMONIA_NAMES, args.num_inference_steps, args.strength, args.seed,
            out_dir / "pneumonia_counterfactual.png",
        )  # fmt: skip

    numbers["settings"] = {
        "num_inference_steps": args.num_inference_steps,
        "scheduler": "the pipeline's DDPMScheduler",
        "strength": args.strength,
        "guidance": "the pipelines' default method (see each model's guidance_method) and scale",
        "seed": args.seed,
    }
    figures = out_dir / "figures.json"
    kept = json.loads(figures.read_text()) if figures.exists() else {}  # figures not redrawn keep their numbers
    figures.write_text(json.dumps({**kept, **numbers}, indent=2) + "\n")
    print(json.dumps(numbers, indent=2))
    total = sum(p.stat().st_size for p in out_dir.glob("*.png"))
    print(f"{len(list(out_dir.glob('*.png')))} PNGs, {total / 1024:.0f} KiB in all")


if __name__ == "__main__":
    main(parse_args())
