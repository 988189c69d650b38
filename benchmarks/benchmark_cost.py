#!/usr/bin/env python
"""
Cost of Joint Diffusion against a plain diffusers UNet, measured as ratios within one run.

    python benchmarks/benchmark_cost.py --resolution 32 --channels 1 --batch_size 64 --repeats 20

Reports (median seconds over `--repeats` interleaved repetitions, after warm-up):
- encoder-only pass (`encode` / `classify`) against a full UNet forward, no gradient;
- one training step (forward, backward, AdamW) of the joint model with 0%, 25% and 100% labeled images against the
  same UNet trained with the diffusion loss alone;
- one guided sampling step (x0, x0 with `medium` random views recomputed at every step and at the pipeline's default
  cache interval, noisy and features guidance) against an unguided step: the mean step of a `--sampling_steps` DDIM
  trajectory, so that steps that reuse the classifier's direction are counted;
- peak resident memory of the process (CPU) or peak CUDA memory.
"""

import argparse
import json
import platform
import resource
import statistics

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel

from benchmark_utils import timed
from diffusers_joint import GuidanceConfig, JointDiffusionPipeline, JointUNet2DModel
from diffusers_joint.training import JointDiffusionObjective, JointLossConfig, joint_diffusion_loss, unet_kwargs


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--num_classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--sampling_steps", type=int, default=10, help="DDIM steps per timed sampling trajectory.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's).")
    parser.add_argument("--json", type=str, default=None, help="Also write the results to this file.")
    return parser.parse_args()


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(args.seed)
    config = unet_kwargs(args.resolution, args.channels)
    joint = JointUNet2DModel(**config, num_classes=args.num_classes).to(device)
    plain = UNet2DModel(**config).to(device)
    plain.load_state_dict({k: v for k, v in joint.state_dict().items() if not k.startswith("classifier.")})
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    objective = JointDiffusionObjective(joint)
    opt_joint = torch.optim.AdamW(objective.parameters(), lr=1e-4)
    opt_plain = torch.optim.AdamW(plain.parameters(), lr=1e-4)

    b = args.batch_size
    x = torch.rand(b, args.channels, args.resolution, args.resolution, device=device) * 2 - 1
    labels = torch.randint(0, args.num_classes, (b,), device=device)
    t = torch.randint(0, 1000, (b,), device=device)

    def labels_with(fraction):
        out = labels.clone()
        out[int(round(b * fraction)) :] = -1
        return out

    def plain_step():
        noise = torch.randn_like(x)
        pred = plain(scheduler.add_noise(x, noise, t), t).sample
        loss = F.mse_loss(pred, noise)
        opt_plain.zero_grad()
        loss.backward()
        opt_plain.step()

    def joint_step(fraction):
        def step():
            out = joint_diffusion_loss(
                objective, scheduler, x, labels_with(fraction), JointLossConfig(classifier_loss_weight=0.1)
            )
            opt_joint.zero_grad()
            out.loss.backward()
            opt_joint.step()

        return step

    @torch.no_grad()
    def full_forward():
        joint(x, t)

    @torch.no_grad()
    def encoder_only():
        joint.encode(x, t)

    @torch.no_grad()
    def classify():
        joint.classify(x)

    pipe = JointDiffusionPipeline(unet=joint, scheduler=DDIMScheduler(num_train_timesteps=1000))
    pipe.set_progress_bar_config(disable=True)
    sample_batch = min(b, 16)
    class_labels = [i % args.num_classes for i in range(sample_batch)]

    def sampling(method, augmentation=None, cache_interval=None):
        # a short DDIM trajectory, timed per step; guidance_scale=0 is the unguided baseline
        def step():
            if method is None:
                guidance = GuidanceConfig(scale=0.0)
            else:
                guidance = GuidanceConfig(method=method, augmentation=augmentation, cache_interval=cache_interval)
            generator = torch.Generator().manual_seed(0)
            pipe(
                class_labels=class_labels,
                guidance=guidance,
                num_inference_steps=args.sampling_steps,
                output_type="pt",
                generator=generator,
            )

        return step

    cases = {
        "forward_full": full_forward,
        "forward_encoder_only": encoder_only,
        "classify": classify,
        "train_step_plain_unet": plain_step,
        "train_step_joint_0pct_labeled": joint_step(0.0),
        "train_step_joint_25pct_labeled": joint_step(0.25),
        "train_step_joint_100pct_labeled": joint_step(1.0),
        "sample_step_unguided": sampling(None),
        "sample_step_guided_x0": sampling("x0", "none", cache_interval=1),
        "sample_step_guided_x0_medium_views_every_step": sampling("x0", "medium", cache_interval=1),
        "sample_step_guided_x0_medium_views": sampling("x0", "medium"),
        "sample_step_guided_noisy": sampling("noisy"),
        "sample_step_guided_features": sampling("features"),
    }
    joint.train()
    plain.train()
    for fn in cases.values():  # warm-up
        fn()
    times = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, fn in cases.items():  # interleaved, so drift in machine load hits every case alike
            times[name].append(timed(fn, device))
    median = {name: statistics.median(v) for name, v in times.items()}
    for name in median:
        if name.startswith("sample_step"):  # seconds per step of the timed trajectory
            median[name] /= args.sampling_steps
    if device.type == "cuda":
        peak = f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB (CUDA, all cases)"
    else:
        peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (process max RSS, all cases)"
    ratios = {
        "encoder_only / full_forward": median["forward_encoder_only"] / median["forward_full"],
        "classify / full_forward": median["classify"] / median["forward_full"],
        "joint_step_0pct / plain_step": median["train_step_joint_0pct_labeled"] / median["train_step_plain_unet"],
        "joint_step_25pct / plain_step": median["train_step_joint_25pct_labeled"] / median["train_step_plain_unet"],
        "joint_step_100pct / plain_step": median["train_step_joint_100pct_labeled"] / median["train_step_plain_unet"],
        "guided_x0_step / unguided_step": median["sample_step_guided_x0"] / median["sample_step_unguided"],
        "guided_x0_medium_views_every_step / unguided_step": median["sample_step_guided_x0_medium_views_every_step"]
        / median["sample_step_unguided"],
        "guided_x0_medium_views_step / unguided_step": median["sample_step_guided_x0_medium_views"]
        / median["sample_step_unguided"],
        "guided_noisy_step / unguided_step": median["sample_step_guided_noisy"] / median["sample_step_unguided"],
        "guided_features_step / unguided_step": median["sample_step_guided_features"] / median["sample_step_unguided"],
    }
    report = {
        "config": {
            **vars(args),
            "device": str(device),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "machine": platform.processor() or platform.machine(),
            "unet": config,
        },  # fmt: skip
        "median_seconds": median,
        "classify_images_per_second": b / median["classify"],
        "full_forward_images_per_second": b / median["forward_full"],
        "ratios": ratios,
        "peak_memory": peak,
    }
    print(json.dumps(report["config"], default=str))
    print(f"{'case':40s} {'median s':>10s}")
    for name, value in median.items():
        print(f"{name:40s} {value:10.4f}")
    print(f"classify: {report['classify_images_per_second']:.0f} img/s; full forward: "
          f"{report['full_forward_images_per_second']:.0f} img/s")  # fmt: skip
    for name, value in ratios.items():
        print(f"{name:40s} {value:10.3f}")
    print(f"peak memory: {peak}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2, default=str)


if __name__ == "__main__":
    main()
