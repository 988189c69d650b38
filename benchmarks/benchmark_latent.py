#!/usr/bin/env python
"""
Joint Diffusion in latent space, measured: the numbers of `benchmarks/results/latent.json` (issue #36), one part per
call, each adding its keys and their command to `--json`.

    # reconstruction of a trained autoencoder (examples/train_autoencoder.py) on the evaluation split
    python benchmarks/benchmark_latent.py autoencoder --key autoencoder_psnr_db_lesions128 \
        --vae vae-lesions128 --npz_path lesions128/lesions.npz
    # balanced accuracy of latent pipelines (one per seed) on the evaluation split: mean, spread and every run
    python benchmarks/benchmark_latent.py classifier --key pneumonia64_latent_balanced_accuracy \
        --pipelines pn64-s0 pn64-s1 pn64-s2 --npz_path ../shared/data/pneumoniamnist/pneumoniamnist_balanced_28.npz
    # the lesion set's judge, then its explanations: classification, counterfactual validity, pointing game, mask
    # IoU, guided samples
    python benchmarks/benchmark_latent.py reference --npz_path lesions128/lesions.npz --reference_epochs 16 \
        --save_reference lesions128-reference
    python benchmarks/benchmark_latent.py lesions --pipeline lesions128-joint --npz_path lesions128/lesions.npz \
        --reference_model lesions128-reference
    # numbers measured by other benchmarks, copied with their commands
    python benchmarks/benchmark_latent.py import

`lesions` judges with an independent [`ReferenceClassifier`] trained on the real (generated) training images by
`reference` (group-normalised, at 64 px: the plain network stays at chance on these lesions). Counterfactuals are asked
of `--num_counterfactuals` evaluation images, half of each class, towards the other class, with the pipelines'
defaults; validity is the share predicted as the target. Faithfulness is scored on the lesion images explained towards
"no lesion": the heat map is the absolute pixel change |counterfactual - input|, the pointing game asks whether its
maximum falls inside the lesion mask ([`pointing_game`]), and `mask_iou` is the IoU of the top-changed pixels (as many
as the mask has) with the mask ([`top_change_iou`]). Class-guided samples (`--num_generated`, classes in turn) are
judged by the reference network.
"""

import argparse
import io
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers.utils import make_image_grid

from benchmark_utils import load_pipeline, print_run_config
from diffusers_joint.data import ImagePreprocessor, load_joint_dataset, load_lesion_masks
from diffusers_joint.evaluation import (
    ReferenceClassifier,
    compute_classification_metrics,
    dataset_to_tensors,
    evaluate_autoencoder,
    evaluate_generation,
    pointing_game,
    top_change_iou,
    train_reference_classifier,
)
from diffusers_joint.pipelines import CounterfactualPipeline
from diffusers_joint.training.autoencoder import load_vae

RESULTS = "benchmarks/results/latent.json"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["autoencoder", "classifier", "reference", "lesions", "import"])
    parser.add_argument("--json", default=RESULTS)
    parser.add_argument("--key", help="autoencoder / classifier: the key the result is stored under.")
    parser.add_argument("--npz_path")
    parser.add_argument("--eval_split", default=None, help="The .npz split to evaluate on (default: test).")
    parser.add_argument("--vae", help="autoencoder: an AutoencoderKL folder (safetensors).")
    parser.add_argument("--resolution", type=int, default=None, help="autoencoder: default the VAE's sample_size.")
    parser.add_argument("--max_images", type=int, default=None)
    parser.add_argument("--pipelines", nargs="+", help="classifier: saved pipelines, e.g. one per seed.")
    parser.add_argument("--pipeline", help="lesions: a saved latent pipeline.")
    parser.add_argument("--reference_model", help="lesions: the judge, a ReferenceClassifier saved by `reference`.")
    parser.add_argument("--save_reference", help="reference: where to save the judge trained here.")
    parser.add_argument("--reference_epochs", type=int, default=10)
    parser.add_argument("--reference_size", type=int, default=64, help="reference: the size it judges images at.")
    parser.add_argument("--reference_widths", type=int, nargs="+", default=[16, 32, 64, 64])
    parser.add_argument("--reference_norm_num_groups", type=int, default=8)
    parser.add_argument("--reference_learning_rate", type=float, default=1e-3)
    parser.add_argument(
        "--reference_holdout", type=int, default=500, help="reference: last training images held out to score it."
    )
    parser.add_argument("--num_counterfactuals", type=int, default=200)
    parser.add_argument("--num_generated", type=int, default=200)
    parser.add_argument("--batch_size", type=int, default=50)
    parser.add_argument("--num_inference_steps", type=int, default=None, help="Default: the pipelines' own.")
    parser.add_argument(
        "--search_strengths",
        action="store_true",
        help="lesions: retry counterfactuals that did not flip with larger strengths (CounterfactualPipeline).",
    )
    parser.add_argument(
        "--validation_images",
        type=int,
        default=None,
        help="lesions: score the last N training images (those the `reference` judge held out) instead of the "
        "test split, to choose settings; the classifier's figures on them are not held out.",
    )
    parser.add_argument(
        "--figures_dir",
        default=None,
        help="lesions: also draw latent_lesion_samples.png (guided samples, decoded) and "
        "latent_lesion_counterfactuals.png (input, counterfactual, heat map, true mask) here, e.g. docs/images.",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pixel_results", default="benchmarks/results/semi_supervised_pneumonia.json")
    parser.add_argument("--cost_results", default="benchmarks/results/latent_cost_128.json")
    args = parser.parse_args(argv)
    needs = {"autoencoder": ("key", "vae", "npz_path"), "classifier": ("key", "pipelines", "npz_path")}
    needs["lesions"] = ("pipeline", "npz_path", "reference_model")
    needs["reference"] = ("npz_path", "save_reference")
    for name in needs.get(args.part, ()):
        if not getattr(args, name):
            parser.error(f"`{args.part}` needs --{name}.")
    return args


def evaluation_split(npz_path: str, eval_split: str | None, size: int, channels: int, normalization=None, seed=0):
    """An .npz file's data set, its preprocessor at `size` px and its evaluation (images, labels), as train_joint.py
    reads them."""
    dataset = load_joint_dataset(npz_path=npz_path, eval_split=eval_split, seed=seed)
    preprocessor = ImagePreprocessor(size, channels, normalization=normalization)
    return dataset, preprocessor, dataset_to_tensors(dataset.eval, preprocessor)


def autoencoder(args) -> dict:
    vae = load_vae(args.vae).eval()
    size = args.resolution or vae.config.sample_size
    _, _, (images, _) = evaluation_split(args.npz_path, args.eval_split, size, vae.config.in_channels, seed=args.seed)
    images = images[: args.max_images]
    with torch.no_grad():
        results = evaluate_autoencoder(vae, images, batch_size=args.batch_size)
    print(json.dumps(results), flush=True)
    return {args.key: results["psnr"], f"{args.key}_details": results | {"resolution": size}}


def classification_metrics(pipe, images, labels, batch_size) -> dict:
    probs = pipe.unet.probabilities(pipe.classifier_logits(images, batch_size=batch_size))
    return compute_classification_metrics(labels, probs, problem_type=pipe.unet.config.problem_type)


def classifier(args) -> dict:
    runs = {}
    for path in args.pipelines:
        pipe = load_pipeline(path, "ddim")
        _, _, (images, labels) = evaluation_split(
            args.npz_path, args.eval_split, pipe.pixel_size, pipe.pixel_channels, pipe.image_normalization
        )
        metrics = classification_metrics(pipe, images, labels, args.batch_size)
        runs[path] = {k: metrics[k] for k in ("balanced_accuracy", "accuracy", "roc_auc", "ece", "num_examples")}
        print(path, json.dumps(runs[path]), flush=True)
    values = [run["balanced_accuracy"] for run in runs.values()]
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return {args.key: statistics.mean(values), f"{args.key}_std": spread, f"{args.key}_runs": runs}


def reference(args) -> dict:
    """
    Train the lesion set's judge: a group-normalised [`ReferenceClassifier`] at `--reference_size` (it resizes larger
    inputs), on the real training images less the last `--reference_holdout`, which score it. The plain network
    (`train_reference_classifier`'s defaults) stays at chance on the 128-px lesions.
    """
    dataset = load_joint_dataset(npz_path=args.npz_path, seed=args.seed)
    size = args.reference_size
    images, labels = dataset_to_tensors(dataset.train, ImagePreprocessor(dataset.image_size[0], 1))
    small = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    keep = len(images) - args.reference_holdout
    start = time.perf_counter()
    network = train_reference_classifier(
        small[:keep],
        labels[:keep],
        num_epochs=args.reference_epochs,
        seed=args.seed,
        block_out_channels=tuple(args.reference_widths),
        norm_num_groups=args.reference_norm_num_groups,
        learning_rate=args.reference_learning_rate,
    )
    network.save_pretrained(args.save_reference)
    held_out = compute_classification_metrics(labels[keep:], network.predict_proba(images[keep:]))
    print(f"trained in {time.perf_counter() - start:.0f}s; held-out balanced accuracy {held_out['balanced_accuracy']}")
    return {"lesions128_reference_holdout_balanced_accuracy": held_out["balanced_accuracy"]}


def balanced_picks(labels: torch.Tensor, count: int, seed: int) -> np.ndarray:
    """`count` evaluation indices, half of each class (as available), in a seeded order."""
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(labels.numpy() == c))[: count // 2] for c in (0, 1)]
    return np.sort(np.concatenate(picks))


def lesions(args) -> dict:
    pipe = load_pipeline(args.pipeline, "ddim")
    split = args.eval_split or "test"
    dataset, preprocessor, (images, labels) = evaluation_split(
        args.npz_path, args.eval_split, pipe.pixel_size, pipe.pixel_channels, pipe.image_normalization, args.seed
    )
    masks = torch.as_tensor(load_lesion_masks(args.npz_path, split))
    if args.validation_images:
        split, count = f"validation (last {args.validation_images} training images)", args.validation_images
        held_out = dataset.train.select(range(len(dataset.train) - count, len(dataset.train)))
        images, labels = dataset_to_tensors(held_out, preprocessor)
        masks = torch.as_tensor(load_lesion_masks(args.npz_path, "train"))[-count:]
    if masks.shape[-1] != pipe.pixel_size:
        raise ValueError(f"The masks are {masks.shape[-1]} px but the pipeline makes {pipe.pixel_size}-px images.")
    reference = ReferenceClassifier.from_pretrained(args.reference_model).eval()
    out = {}
    metrics = classification_metrics(pipe, images, labels, args.batch_size)
    out["lesions128_balanced_accuracy"] = metrics["balanced_accuracy"]
    ref_metrics = compute_classification_metrics(labels, reference.predict_proba(images))
    out["lesions128_reference_balanced_accuracy"] = ref_metrics["balanced_accuracy"]
    print(f"classifier {metrics['balanced_accuracy']:.4f}, reference {ref_metrics['balanced_accuracy']:.4f}")

    explain = CounterfactualPipeline.from_joint_pipeline(pipe)
    explain.set_progress_bar_config(disable=True)
    pick = balanced_picks(labels, args.num_counterfactuals, args.seed)
    steps = {"num_inference_steps": args.num_inference_steps} if args.num_inference_steps else {}
    generator = torch.Generator().manual_seed(args.seed)
    targets, changes, model_hit, reference_hit, shown = [], [], [], [], []
    for start in range(0, len(pick), args.batch_size):
        index = pick[start : start + args.batch_size]
        target = 1 - labels[index]
        result = explain(
            image=images[index],
            target_class=target,
            generator=generator,
            output_type="pt",
            search_strengths=args.search_strengths,
            **steps,
        )
        counterfactual = result.images.float() * 2 - 1
        targets.append(target)
        changes.append(result.abs_difference.float())
        shown += [(images[i], counterfactual[j], result.abs_difference[j], masks[i]) for j, i in enumerate(index)]
        model_hit.append(result.counterfactual_probs.argmax(1).cpu() == target)
        reference_hit.append(reference.predict_proba(counterfactual).argmax(1) == target)
        print(f"counterfactuals {start + len(index)}/{len(pick)}", flush=True)
    targets, changes = torch.cat(targets), torch.cat(changes)
    model_hit, reference_hit = torch.cat(model_hit), torch.cat(reference_hit)
    removal = targets == 0  # lesion images explained towards "no lesion": the mask is the ground truth
    lesion_masks = masks[pick][removal]
    out |= {
        "lesions128_cf_validity_model": float(model_hit.float().mean()),
        "lesions128_cf_validity_reference": float(reference_hit.float().mean()),
        "lesions128_cf_validity_reference_removal": float(reference_hit[removal].float().mean()),
        "lesions128_cf_validity_reference_insertion": float(reference_hit[~removal].float().mean()),
        "lesions128_pointing_game": pointing_game(changes[removal], lesion_masks),
        "lesions128_mask_iou": top_change_iou(changes[removal], lesion_masks),
        "lesions128_cf_l1": float(changes.mean()),
        "lesions128_num_counterfactuals": len(pick),
    }
    generation = evaluate_generation(
        pipe, images, reference, num_generated=args.num_generated, seed=args.seed, **steps
    )
    out["lesions128_guided_reference_accuracy"] = generation["conditional_accuracy"]
    out["lesions128_guided_model_accuracy"] = generation["conditional_accuracy_model"]
    out["lesions128_guided_num_inference_steps"] = generation["num_inference_steps"]
    out["lesions128_guidance"] = generation["guidance"]
    out["lesions128_split"] = split
    out["lesions128_search_strengths"] = args.search_strengths
    if args.figures_dir:
        removed = [row for row, target in zip(shown, targets) if target == 0]
        draw_counterfactuals(removed[:3], Path(args.figures_dir) / "latent_lesion_counterfactuals.png")
        sampled = {"num_inference_steps": generation["num_inference_steps"]}  # as the judged samples were drawn
        path = Path(args.figures_dir) / "latent_lesion_samples.png"
        draw_samples(pipe, generation["guidance"], args.seed, path, sampled)
    return out


def save_small_png(fig, path: Path) -> None:
    """A figure as an 8-bit palette PNG: the docs' images stay small."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight", pad_inches=0.05)
    image = PIL.Image.open(buffer).convert("RGB").quantize(colors=32)
    image.save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB)", flush=True)


def draw_counterfactuals(rows, path: Path) -> None:
    """Rows of input | counterfactual towards "no lesion" | heat map |change| | the true lesion mask."""
    import matplotlib  # the docs extra: only the figures need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = ("input (lesion)", "counterfactual: no lesion", "|change|", "true lesion mask")
    fig, axes = plt.subplots(len(rows), 4, figsize=(6.4, 1.7 * len(rows)))
    for row, ax_row in zip(rows, np.atleast_2d(axes)):
        image, counterfactual, change, mask = (t.float().cpu() for t in row)
        panels = [(image[0], "gray", (-1, 1)), (counterfactual[0], "gray", (-1, 1)), (change.mean(0), "hot", None)]
        panels.append((mask.float(), "gray", (0, 1)))
        for ax, (panel, cmap, limits), title in zip(ax_row, panels, titles):
            ax.imshow(panel.numpy(), cmap=cmap, vmin=limits and limits[0], vmax=limits and limits[1])
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    fig.tight_layout(pad=0.3)
    save_small_png(fig, path)
    plt.close(fig)


def draw_samples(pipe, guidance: dict, seed: int, path: Path, steps: dict, per_class: int = 4) -> None:
    """Class-guided samples, decoded from latents: one row per class."""
    labels = [c for c in range(pipe.unet.config.num_classes) for _ in range(per_class)]
    images = pipe(
        class_labels=labels,
        guidance=guidance,
        generator=torch.Generator().manual_seed(seed),
        output_type="pil",
        **steps,
    ).images
    grid = make_image_grid(images, rows=pipe.unet.config.num_classes, cols=per_class)
    grid.convert("L").quantize(colors=32).save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB)", flush=True)


def import_results(args) -> dict:
    """The pixel-space PneumoniaMNIST baseline and the 128-px step ratio, from the benchmarks that measured them."""
    pixel = json.loads(Path(args.pixel_results).read_text())
    cost = json.loads(Path(args.cost_results).read_text())
    baseline = pixel["summary"]["joint/all"]["balanced_accuracy"]
    return {
        "pneumonia28_pixel_balanced_accuracy": baseline["mean"],
        "pneumonia28_pixel_balanced_accuracy_std": baseline["std"],
        "step_ratio_latent_vs_pixel_128": cost["step_ratio_latent_vs_pixel_128"],
        "step_ratio_latent_cached_vs_pixel_128": cost["step_ratio_latent_cached_vs_pixel_128"],
        "_commands": {
            "pneumonia28_pixel_balanced_accuracy": f"{args.pixel_results} summary['joint/all'] (3 seeds, 1000 "
            "steps x 32, benchmarks/benchmark_semi_supervised.py)",
            "step_ratio_latent_vs_pixel_128": cost["command"],
            "step_ratio_latent_cached_vs_pixel_128": cost["command"],
        },
    }


def main(argv=None):
    args = parse_args(argv)
    print_run_config(args)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    parts = {"autoencoder": autoencoder, "classifier": classifier, "reference": reference, "lesions": lesions}
    entry = (parts | {"import": import_results})[args.part](args)
    print(f"{args.part} took {time.perf_counter() - start:.0f}s", flush=True)
    command = "python " + shlex.join(sys.argv)
    path = Path(args.json)
    results = json.loads(path.read_text()) if path.exists() else {}
    commands = results.setdefault("commands", {})
    numbers = {key: command for key, value in entry.items() if isinstance(value, (int, float))}
    commands.update(entry.pop("_commands", None) or numbers)
    results.update(entry)
    print(json.dumps(entry, indent=2, default=str))
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
