#!/usr/bin/env python
"""
Counterfactual explanations against a pixel-space gradient attack on the same classifier.

    python benchmarks/benchmark_counterfactuals.py --pipeline joint-pneumonia \
        --npz_path ../shared/data/pneumoniamnist/pneumoniamnist_balanced_28.npz --figure counterfactuals.png

Both methods get the same held-out test images and the same targets (a random other class) and edit each image until
the joint model's own classifier assigns it to the target:
- `pipeline`: [`CounterfactualPipeline`] (re-noise to `--strength`, denoise with classifier guidance);
- `pixel_attack`: iterated signed-gradient steps on the pixels (`--attack_step` per step, at most `--attack_steps`,
  stopping per image once the model predicts the target), i.e. an adversarial example of the same classifier.

Each is measured by [`compute_counterfactual_metrics`]: validity under the model and under an independent reference
network (trained here on the real training images, or loaded with `--reference_model`), L1/L2 distance, the fraction
of pixels changed and the Frechet distance of the counterfactuals to the real test images of the target class (on the
reference network's features). A counterfactual that flips the model but not the reference network changed the
model's decision without changing what the image shows. `--figure` draws inputs, counterfactuals and difference maps.
"""

import argparse
import json
import time

import torch

from benchmark_utils import evaluation_data_and_reference, load_pipeline, print_run_config
from diffusers_joint import CounterfactualPipeline, JointDiffusionPipeline
from diffusers_joint.evaluation import (
    compute_counterfactual_metrics,
    counterfactual_requests,
    evaluate_counterfactuals,
)
from diffusers_joint.pipelines import GUIDANCE_METHODS, GuidanceConfig

REPORTED = ("validity_model", "validity_reference", "l1", "l2", "changed_pixel_fraction", "localization")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", required=True, help="Folder of a pipeline saved by train_joint.py.")
    parser.add_argument("--npz_path", default=None)
    parser.add_argument("--csv_path", default=None)
    parser.add_argument("--reference_model", default=None, help="A saved ReferenceClassifier (else one is trained).")
    parser.add_argument("--num_counterfactuals", type=int, default=100)
    parser.add_argument("--strength", type=float, default=0.5)
    parser.add_argument("--guidance_scale", type=float, default=None)
    parser.add_argument(
        "--guidance_method", choices=list(GUIDANCE_METHODS), default=None, help="Default: the model's."
    )
    parser.add_argument(
        "--search_strengths",
        nargs="*",
        type=float,
        default=None,
        help="Retry images that did not flip with these larger strengths (no values: steps of 0.1 to --max_strength).",
    )
    parser.add_argument("--max_strength", type=float, default=1.0)
    parser.add_argument("--mask_image", choices=["auto"], default=None, help="`auto`: keep the unedited regions.")
    parser.add_argument("--scheduler", choices=["ddpm", "ddim"], default="ddpm")
    parser.add_argument("--num_inference_steps", type=int, default=250)
    parser.add_argument("--attack_step", type=float, default=2 / 255, help="Pixel step of the attack, in [-1, 1].")
    parser.add_argument("--attack_steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figure", default=None, help="Write a PNG of a few examples here.")
    parser.add_argument("--figure_examples", type=int, default=4)
    parser.add_argument("--json", default=None, help="Also write the results to this file.")
    return parser.parse_args()


def search_strengths(values: list[float] | None) -> bool | list[float]:
    """`--search_strengths` as the pipeline takes it: absent = no search, given without values = steps of 0.1."""
    return False if values is None else (values or True)


def pixel_attack(
    pipe: JointDiffusionPipeline, images: torch.Tensor, targets: torch.Tensor, step: float, max_steps: int
) -> torch.Tensor:
    """
    Iterated signed-gradient ascent of log p(target | x) on the pixels, per image until the model says target; a
    latent pipeline's classifier reads the VAE's encoding of the pixels, and the gradient flows through the encoder.
    """
    x = images.clone()
    for _ in range(max_steps):
        x.requires_grad_(True)
        log_probs = pipe.unet.classify(pipe.images_to_latents(x)).float().log_softmax(dim=1)
        done = log_probs.argmax(dim=1) == targets
        if done.all():
            break
        gain = log_probs.gather(1, targets[:, None]).sum()
        (grad,) = torch.autograd.grad(gain, x)
        with torch.no_grad():
            x = (x + step * grad.sign() * (~done).float()[:, None, None, None]).clamp(-1, 1)
    return x.detach()


def model_probabilities(pipe: JointDiffusionPipeline, images: torch.Tensor) -> torch.Tensor:
    """The joint model's calibrated probabilities of images in pixel space (encoded first by a latent pipeline)."""
    return pipe.unet.probabilities(pipe.classifier_logits(images, batch_size=256))


def draw_figure(path, inputs, rows, label_names, targets, probs, count):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = ["input"] + [title for name in rows for title in (name, f"{name}: difference")]
    fig, axes = plt.subplots(count, len(columns), figsize=(1.6 * len(columns), 1.7 * count), squeeze=False, dpi=90)
    for i in range(count):
        panels = [inputs[i]]
        for name in rows:
            panels += [rows[name][i], rows[name][i] - inputs[i]]
        for j, (ax, panel) in enumerate(zip(axes[i], panels)):
            image = panel.mean(dim=0).numpy()
            if j == 0 or j % 2 == 1:
                ax.imshow((image + 1) / 2, cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(image, cmap="RdBu_r", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(columns[j], fontsize=7)
        target = label_names[int(targets[i])]
        axes[i][0].set_ylabel(f"to {target}", fontsize=7)
        for j, name in enumerate(rows):
            axes[i][1 + 2 * j].set_xlabel(f"p({target}) = {probs[name][i]:.2f}", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


def main():
    args = parse_args()
    config = print_run_config(args)
    torch.manual_seed(args.seed)
    pipe = load_pipeline(args.pipeline, args.scheduler)
    unet = pipe.unet
    if unet.is_multi_label:
        raise SystemExit("This benchmark compares single-label counterfactuals.")
    test_images, test_labels, reference, reference_accuracy = evaluation_data_and_reference(
        pipe, args.npz_path, args.csv_path, args.reference_model, args.seed
    )

    # One draw of the images and targets, for the pipeline and the pixel attack alike.
    pick, targets = counterfactual_requests(
        test_labels, unet.config.num_classes, False, args.num_counterfactuals, seed=args.seed
    )
    inputs, labels = test_images[pick], test_labels[pick]
    count = len(pick)

    results = {"config": config, "reference_test_accuracy": reference_accuracy}
    guidance = GuidanceConfig(method=args.guidance_method, scale=args.guidance_scale)
    start = time.perf_counter()
    results["pipeline"] = evaluate_counterfactuals(
        pipe,
        inputs,
        labels,
        reference,
        num_counterfactuals=count,
        strength=args.strength,
        num_inference_steps=args.num_inference_steps,
        guidance=guidance,
        real_images=test_images,
        real_labels=test_labels,
        seed=args.seed,
        search_strengths=search_strengths(args.search_strengths),
        max_strength=args.max_strength,
        mask_image=args.mask_image,
        targets=targets,
    )
    results["pipeline"]["seconds"] = time.perf_counter() - start

    start = time.perf_counter()
    attacked = pixel_attack(pipe, inputs, targets, args.attack_step, args.attack_steps)
    seconds = time.perf_counter() - start
    results["pixel_attack"] = compute_counterfactual_metrics(
        inputs,
        attacked,
        targets,
        model_probs_after=model_probabilities(pipe, attacked),
        reference_probs_after=reference.predict_proba(attacked),
        counterfactual_features=reference.extract_features(attacked),
        real_features=reference.extract_features(test_images),
        real_labels=test_labels,
        model_probs_before=model_probabilities(pipe, inputs),
    )
    results["pixel_attack"].update({"seconds": seconds, "step": args.attack_step, "max_steps": args.attack_steps})

    print("| method | " + " | ".join(REPORTED) + " | Frechet distance to target class |")
    print("| --- " * (len(REPORTED) + 2) + "|")
    for name in ("pipeline", "pixel_attack"):
        row = results[name]
        cells = [f"{row[k]:.3f}" for k in REPORTED] + [
            f"{row.get('frechet_distance_to_target_class', float('nan')):.3f}"
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)

    if args.figure:
        shown = min(args.figure_examples, count)
        explain = CounterfactualPipeline.from_joint_pipeline(pipe)
        explain.set_progress_bar_config(disable=True)
        out = explain(
            image=((inputs[:shown] + 1) / 2).clamp(0, 1),
            target_class=targets[:shown],
            strength=args.strength,
            guidance=guidance,
            num_inference_steps=args.num_inference_steps,
            generator=torch.Generator().manual_seed(args.seed),
            output_type="pt",
            search_strengths=search_strengths(args.search_strengths),
            max_strength=args.max_strength,
            mask_image=args.mask_image,
        )
        counterfactual = out.images.float() * 2 - 1
        rows = {"counterfactual": counterfactual, "pixel attack": attacked[:shown]}
        target_index = targets[:shown, None]
        probs = {
            "counterfactual": out.counterfactual_probs.gather(1, target_index)[:, 0].tolist(),
            "pixel attack": model_probabilities(pipe, attacked[:shown]).gather(1, target_index)[:, 0].tolist(),
        }
        draw_figure(args.figure, inputs[:shown], rows, list(unet.id2label.values()), targets, probs, shown)
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
