#!/usr/bin/env python
"""
Class-guided sampling and counterfactuals of a trained Joint Diffusion pipeline, judged by an independent classifier.

    python benchmarks/benchmark_guidance.py --pipeline joint-diffusion-model               # embedded digits
    python benchmarks/benchmark_guidance.py --pipeline joint-mnist --csv_path ../shared/data/mnist5k/mnist_5k.csv.gz

The independent judge is a scikit-learn RBF support-vector classifier trained on the real training images (at the
model's resolution) and never on anything the joint model produced. Reported:
- for each guidance method and scale: the share of class-guided samples that the judge (and the model itself)
  assigns to the requested class; scale 0 is the unguided rate (chance level for balanced classes);
- counterfactuals of held-out test images towards another class: flip rate under the model and under the judge,
  mean L1 distance to the input (in [-1, 1] pixel units).
"""

import argparse
import json
import time

import numpy as np
import torch
from diffusers import DDIMScheduler
from sklearn.svm import SVC

from diffusers_joint import CounterfactualPipeline, JointDiffusionPipeline
from diffusers_joint.data import load_joint_dataset
from diffusers_joint.evaluation import dataset_to_tensors
from diffusers_joint.pipelines import DEFAULT_GUIDANCE_SCALES, GuidanceConfig


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", required=True, help="Folder of a pipeline saved by train_joint.py.")
    parser.add_argument("--npz_path", default=None)
    parser.add_argument("--csv_path", default=None)
    parser.add_argument("--dataset_name", default=None)
    parser.add_argument("--methods", nargs="+", default=["x0", "features"])
    parser.add_argument("--scales", nargs="+", type=float, default=None, help="Default: 0, half, default, double.")
    parser.add_argument("--samples_per_class", type=int, default=20)
    parser.add_argument("--scheduler", choices=["ddim", "ddpm"], default="ddim")
    parser.add_argument("--num_inference_steps", type=int, default=50)
    parser.add_argument("--num_counterfactuals", type=int, default=100)
    parser.add_argument("--strength", type=float, default=0.5)
    parser.add_argument("--counterfactual_method", default="x0")
    parser.add_argument("--counterfactual_scale", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="Also write the results to this file.")
    return parser.parse_args()


def main():
    args = parse_args()
    print(json.dumps(vars(args)))
    torch.manual_seed(args.seed)
    pipe = JointDiffusionPipeline.from_pretrained(args.pipeline)
    if args.scheduler == "ddim":
        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    unet = pipe.unet.eval()
    num_classes = unet.config.num_classes
    data = load_joint_dataset(dataset_name=args.dataset_name, npz_path=args.npz_path, csv_path=args.csv_path)
    preprocessor = pipe.image_preprocessor  # a latent pipeline's decoded images, normalised as in training
    train_x, train_y = dataset_to_tensors(data.train, preprocessor)
    test_x, test_y = dataset_to_tensors(data.eval, preprocessor)

    judge = SVC(C=10.0, gamma="scale").fit(train_x.flatten(1).numpy(), train_y.numpy())
    judge_test_accuracy = float((judge.predict(test_x.flatten(1).numpy()) == test_y.numpy()).mean())
    print(f"independent judge (SVC on {len(train_x)} real training images): test accuracy {judge_test_accuracy:.4f}")

    results = {"config": vars(args), "judge_test_accuracy": judge_test_accuracy, "guided": [], "counterfactual": {}}
    requested = [c for c in range(num_classes) for _ in range(args.samples_per_class)]
    for method in args.methods:
        default = DEFAULT_GUIDANCE_SCALES[method]
        scales = args.scales if args.scales is not None else [0.0, default / 2, default, default * 2]
        for scale in scales:
            start = time.perf_counter()
            images = pipe(
                class_labels=requested,
                guidance=GuidanceConfig(method=method, scale=scale),
                num_inference_steps=args.num_inference_steps,
                generator=torch.Generator().manual_seed(args.seed),
                output_type="pt",
            ).images
            seconds = time.perf_counter() - start
            x = images * 2 - 1  # pipelines return [0, 1]
            judged = judge.predict(x.flatten(1).numpy())
            own = pipe.classify(x).labels
            own = own.numpy() if torch.is_tensor(own) else np.asarray(own)
            row = {
                "method": method,
                "scale": scale,
                "judge_agrees_with_request": float((judged == np.array(requested)).mean()),
                "model_agrees_with_request": float((own == np.array(requested)).mean()),
                "seconds": seconds,
            }
            results["guided"].append(row)
            print(
                f"{method:9s} scale {scale:7.2f}: judge {row['judge_agrees_with_request']:.3f}, "
                f"model {row['model_agrees_with_request']:.3f} ({seconds:.1f}s for {len(requested)} samples)"
            )

    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(test_x), size=min(args.num_counterfactuals, len(test_x)), replace=False)
    x, y = test_x[pick], test_y[pick]
    targets = torch.tensor([(int(c) + int(rng.integers(1, num_classes))) % num_classes for c in y])
    explain = CounterfactualPipeline.from_joint_pipeline(pipe)
    explain.set_progress_bar_config(disable=True)
    out = explain(
        image=x,
        target_class=targets.tolist(),
        strength=args.strength,
        guidance=GuidanceConfig(method=args.counterfactual_method, scale=args.counterfactual_scale),
        num_inference_steps=args.num_inference_steps,
        generator=torch.Generator().manual_seed(args.seed),
        output_type="pt",
    )
    cf = out.images * 2 - 1
    judged = judge.predict(cf.flatten(1).numpy())
    counterfactual_labels = torch.as_tensor(np.asarray(out.counterfactual_labels))
    results["counterfactual"] = {
        "strength": args.strength,
        "num_images": len(pick),
        "flip_rate_model": float((counterfactual_labels == targets).float().mean()),
        "flip_rate_judge": float((judged == targets.numpy()).mean()),
        "mean_l1": float(np.asarray(out.l1).mean()),
        "input_judged_as_target": float((judge.predict(x.flatten(1).numpy()) == targets.numpy()).mean()),
    }
    print("counterfactuals:", json.dumps(results["counterfactual"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
