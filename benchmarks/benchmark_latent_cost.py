#!/usr/bin/env python
"""
Cost of Joint Diffusion in latent space against pixel space at one resolution, measured as ratios within one run.

    python benchmarks/benchmark_latent_cost.py --resolution 128 --batch_size 16 --repeats 3 \
        --json benchmarks/results/latent_cost_128.json

On a GPU the same command runs unchanged: `--device auto` (the default) picks CUDA when one is present and then
runs every case under bf16 autocast (`torch.autocast("cuda", dtype=torch.bfloat16)`); give `--repeats 20` there, the
steps take milliseconds. `--device cpu` forces the CPU (fp32); `--mixed_precision no` forces fp32 on the GPU too.

Two `JointUNet2DModel`s of the same widths (`--block_out_channels`, default the pixel resolution's
`default_block_out_channels`; `--layers_per_block`; `--attention_levels`, default the lowest-resolution level) are
built: one diffuses `--channels`-channel images at `--resolution`, the other the latents of a frozen
`AutoencoderKL` (`create_autoencoder`: `--downsampling_factor` 8 and `--latent_channels` 4 by default, so 16 x 16 x 4
latents at 128 px). The default is the kl-f8 shape of Stable Diffusion and of the Joint Diffusion authors' latent
follow-up (in-domain kl-f8 autoencoders on ISIC 2019 and ChestX-ray14): the shape a 128-1024 px medical model
would use. MONAI's 64-px MedNIST tutorial uses f4 with 3 latent channels: `--downsampling_factor 4
--latent_channels 3` measures that shape (32 x 32 x 3 latents at 128 px). The weights are random: the cost of a
step does not depend on them.

Reported (median seconds over `--repeats` interleaved repetitions, after one warm-up run of every case):
- one joint training step (forward, backward, AdamW; diffusion loss plus the classification loss of the labeled
  images, `--labeled_fraction` of the batch) of the pixel model, of the latent model including the VAE's encoding
  of the batch (no gradient: the cost of encoding on the fly), and of the latent model on cached latents;
- the VAE's encoding of the training batch alone;
- sampling `--sampling_batch_size` class-guided images (the pipeline's default guidance, or `--guidance_scale`) with
  `--sampling_steps` DDIM steps through `JointDiffusionPipeline`, without and with the `vae` (the latent one
  includes the decoding), and the decoding alone;
- images per second of each case, and its peak memory: on CUDA `torch.cuda.max_memory_allocated` (reset before each
  case), on Linux the process's peak resident memory (`VmHWM`, reset before each case through
  `/proc/self/clear_refs`), elsewhere `resource.getrusage` max RSS (a high-water mark of the whole run so far); and
  the peak's rise over the memory in use when the case started, the case's own share once every model is resident
  (on the CPU the allocator keeps what earlier cases freed, so rises there are lower bounds). Memory is taken over
  each case's warm-up run;
- `step_ratio_latent_vs_pixel_<resolution>` (latent step with encoding / pixel step),
  `step_ratio_latent_cached_vs_pixel_<resolution>` and `sampling_ratio_latent_vs_pixel_<resolution>`.

`--json` writes the results with the exact command, the torch version, the device and the threads.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import resource
import shlex
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers import DDIMScheduler, DDPMScheduler

from benchmark_utils import timed
from diffusers_joint import GuidanceConfig, JointDiffusionPipeline, JointUNet2DModel
from diffusers_joint.pipelines.latent_codec import decode_latents, encode_images, vae_scale_factor
from diffusers_joint.training import JointDiffusionObjective, JointLossConfig, joint_diffusion_loss, unet_kwargs
from diffusers_joint.training.autoencoder import DOWNSAMPLING_FACTORS, create_autoencoder
from diffusers_joint.training.unet_config import default_block_out_channels


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=128, help="Image side in pixels.")
    parser.add_argument("--channels", type=int, default=1, help="Image channels (1: grayscale X-rays).")
    parser.add_argument("--batch_size", type=int, default=16, help="Training batch.")
    parser.add_argument("--labeled_fraction", type=float, default=1.0, help="Share of the batch with labels.")
    parser.add_argument("--num_classes", type=int, default=2)
    unet = parser.add_argument_group("UNet (the same widths in pixel and latent space)")
    unet.add_argument("--block_out_channels", type=int, nargs="+", default=None)
    unet.add_argument("--layers_per_block", type=int, default=1)
    unet.add_argument("--attention_levels", type=int, nargs="*", default=None)
    vae = parser.add_argument_group("autoencoder (create_autoencoder, random weights)")
    vae.add_argument("--downsampling_factor", type=int, default=8, choices=DOWNSAMPLING_FACTORS)
    vae.add_argument("--latent_channels", type=int, default=4)
    vae.add_argument("--vae_block_out_channels", type=int, nargs="+", default=None)
    vae.add_argument("--vae_layers_per_block", type=int, default=1)
    sampling = parser.add_argument_group("sampling")
    sampling.add_argument("--sampling_steps", type=int, default=10, help="DDIM steps per timed trajectory.")
    sampling.add_argument("--sampling_batch_size", type=int, default=4)
    sampling.add_argument("--guidance_scale", type=float, default=None, help="Default: the pipeline's; 0: unguided.")
    run = parser.add_argument_group("run")
    run.add_argument("--repeats", type=int, default=3, help="Timed repetitions of every case (CPU-friendly default).")
    run.add_argument("--device", default="auto", help="`auto` (CUDA when present, else CPU), `cpu`, `cuda`, `cuda:1`.")
    run.add_argument(
        "--mixed_precision",
        choices=["auto", "no", "bf16"],
        default="auto",
        help="`auto`: bf16 autocast on CUDA, fp32 on the CPU.",
    )
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's).")
    run.add_argument("--json", type=str, default=None, help="Also write the results to this file.")
    args = parser.parse_args(argv)
    for name in ("resolution", "channels", "batch_size", "num_classes", "sampling_steps", "sampling_batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be a positive integer, got {getattr(args, name)}.")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}.")
    if not 0 < args.labeled_fraction <= 1:
        parser.error(f"--labeled_fraction must lie in (0, 1], got {args.labeled_fraction}.")
    if args.resolution % args.downsampling_factor:
        parser.error(
            f"--resolution {args.resolution} is not a multiple of --downsampling_factor {args.downsampling_factor}."
        )
    return args


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name} asked for CUDA, but torch.cuda.is_available() is False.")
    return device


class PeakMemory:
    """
    Peak memory of one case: CUDA allocations, the Linux peak resident memory (resettable), or the process's max RSS;
    and its rise over the memory in use when the case started (the case's own share, once the models are resident).
    """

    def __init__(self, device: torch.device):
        self.device = device
        if device.type == "cuda":
            self.method = "torch.cuda.max_memory_allocated, reset before each case"
        elif self._proc_status("VmHWM") is not None and self._reset_linux_peak():
            self.method = "VmHWM (peak resident memory of the process), reset before each case"
        else:
            self.method = "resource.getrusage max RSS (high-water mark of the run so far)"

    @staticmethod
    def _proc_status(field: str) -> float | None:
        """A memory field of /proc/self/status in MiB, None where there is none."""
        try:
            lines = Path("/proc/self/status").read_text().splitlines()
        except OSError:
            return None
        values = [int(line.split()[1]) / 1024 for line in lines if line.startswith(f"{field}:")]  # kB
        return values[0] if values else None

    @staticmethod
    def _reset_linux_peak() -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # 5: peak RSS := current RSS (Linux >= 4.0)
            return True
        except OSError:
            return False

    def _current_mib(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.memory_allocated(self.device) / 2**20
        if self.method.startswith("VmHWM"):
            return self._proc_status("VmRSS")
        return self._peak_mib()

    def _peak_mib(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        if self.method.startswith("VmHWM"):
            return self._proc_status("VmHWM")
        scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, kB elsewhere
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20

    def measure(self, fn: Callable[[], object]) -> dict[str, float]:
        """Run `fn` once; its peak memory and the peak's rise over the memory in use before it, in MiB."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        elif self.method.startswith("VmHWM"):
            self._reset_linux_peak()
        start = self._current_mib()
        fn()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        peak = self._peak_mib()
        return {"peak": peak, "rise": peak - start}


def build_models(args, device: torch.device):
    """The pixel and latent joint UNets of the same widths, and the frozen VAE."""
    channels = tuple(args.block_out_channels or default_block_out_channels(args.resolution))
    widths = dict(
        block_out_channels=channels, layers_per_block=args.layers_per_block, attention_levels=args.attention_levels
    )
    latent_size = args.resolution // args.downsampling_factor
    pixel_config = unet_kwargs(args.resolution, args.channels, **widths)
    latent_config = unet_kwargs(latent_size, args.latent_channels, **widths)
    pixel_unet = JointUNet2DModel(**pixel_config, num_classes=args.num_classes).to(device)
    latent_unet = JointUNet2DModel(**latent_config, num_classes=args.num_classes).to(device)
    vae = create_autoencoder(
        args.channels,
        downsampling_factor=args.downsampling_factor,
        latent_channels=args.latent_channels,
        block_out_channels=args.vae_block_out_channels,
        layers_per_block=args.vae_layers_per_block,
        resolution=args.resolution,
    )
    vae = vae.to(device).eval().requires_grad_(False)
    return pixel_unet, latent_unet, vae


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    command = "python benchmarks/benchmark_latent_cost.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    use_bf16 = args.mixed_precision == "bf16" or (args.mixed_precision == "auto" and device.type == "cuda")
    torch.manual_seed(args.seed)
    pixel_unet, latent_unet, vae = build_models(args, device)
    memory = PeakMemory(device)

    b, resolution = args.batch_size, args.resolution
    images = torch.rand(b, args.channels, resolution, resolution, device=device) * 2 - 1
    labels = torch.randint(0, args.num_classes, (b,), device=device)
    labels[int(round(b * args.labeled_fraction)) :] = -1
    loss_config = JointLossConfig(classifier_loss_weight=0.1)
    generator = torch.Generator(device).manual_seed(args.seed)

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext()

    @torch.no_grad()
    def encode() -> torch.Tensor:
        # a posterior sample, as diffusers' latent training scripts draw
        with autocast():
            return encode_images(vae, images, sample_posterior=True, generator=generator).float()

    def training_step(unet: JointUNet2DModel, scheduler: DDPMScheduler, inputs):
        """One step on `inputs()`: the images, the VAE's encoding of them (on the fly), or cached latents."""
        objective = JointDiffusionObjective(unet)
        optimizer = torch.optim.AdamW(objective.parameters(), lr=1e-4)

        def step():
            unet.train()
            batch = inputs()
            with autocast():
                loss = joint_diffusion_loss(objective, scheduler, batch, labels, loss_config).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        return step

    pixel_pipe = JointDiffusionPipeline(unet=pixel_unet, scheduler=DDIMScheduler(num_train_timesteps=1000))
    latent_pipe = JointDiffusionPipeline(
        unet=latent_unet, scheduler=DDIMScheduler(num_train_timesteps=1000, clip_sample=False), vae=vae
    )
    class_labels = [i % args.num_classes for i in range(args.sampling_batch_size)]
    guidance = GuidanceConfig(scale=args.guidance_scale)
    latent_size = latent_unet.config.sample_size
    latent_shape = (args.sampling_batch_size, args.latent_channels, latent_size, latent_size)
    sampled_latents = torch.randn(latent_shape, device=device)

    def sampling(pipe: JointDiffusionPipeline):
        pipe.set_progress_bar_config(disable=True)

        def sample():
            pipe.unet.eval()
            with autocast():
                pipe(
                    class_labels=class_labels,
                    guidance=guidance,
                    num_inference_steps=args.sampling_steps,
                    output_type="pt",
                    generator=torch.Generator(device).manual_seed(args.seed),
                )

        return sample

    @torch.no_grad()
    def vae_decode():
        with autocast():
            decode_latents(vae, sampled_latents)

    latent_scheduler = DDPMScheduler(num_train_timesteps=1000, clip_sample=False)
    cached = encode()
    cases = {
        "train_step_pixel": training_step(pixel_unet, DDPMScheduler(num_train_timesteps=1000), lambda: images),
        "train_step_latent_with_encode": training_step(latent_unet, latent_scheduler, encode),
        "train_step_latent_cached": training_step(latent_unet, latent_scheduler, lambda: cached),
        "vae_encode": encode,
        "sampling_pixel": sampling(pixel_pipe),
        "sampling_latent": sampling(latent_pipe),
        "vae_decode": vae_decode,
    }
    # warm-up, and each case's peak memory
    memory_mib = {name: memory.measure(fn) for name, fn in cases.items()}
    times = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, fn in cases.items():  # interleaved, so drift in machine load hits every case alike
            times[name].append(timed(fn, device))
    median = {name: statistics.median(v) for name, v in times.items()}
    batch = {name: args.sampling_batch_size if name.startswith(("sampling", "vae_decode")) else b for name in cases}
    suffix = resolution
    report = {
        f"step_ratio_latent_vs_pixel_{suffix}": median["train_step_latent_with_encode"] / median["train_step_pixel"],
        f"step_ratio_latent_cached_vs_pixel_{suffix}": median["train_step_latent_cached"] / median["train_step_pixel"],
        f"sampling_ratio_latent_vs_pixel_{suffix}": median["sampling_latent"] / median["sampling_pixel"],
        "median_seconds": median,
        "images_per_second": {name: batch[name] / median[name] for name in cases},
        "peak_memory_mib": {name: m["peak"] for name, m in memory_mib.items()},
        "peak_memory_rise_mib": {name: m["rise"] for name, m in memory_mib.items()},
        "peak_memory_method": memory.method,
        "command": command,
        "config": {
            **vars(args),
            "device": str(device),
            "precision": "bf16 autocast" if use_bf16 else "fp32",
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "machine": platform.processor() or platform.machine(),
            "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "latent_size": latent_size,
            "vae_scale_factor": vae_scale_factor(vae),
            "pixel_unet": dict(pixel_unet.config),
            "latent_unet": dict(latent_unet.config),
            "vae": dict(vae.config),
            "parameters": {
                "pixel_unet": sum(p.numel() for p in pixel_unet.parameters()),
                "latent_unet": sum(p.numel() for p in latent_unet.parameters()),
                "vae": sum(p.numel() for p in vae.parameters()),
            },
        },
    }
    print(command)
    precision, threads = report["config"]["precision"], torch.get_num_threads()
    print(f"device {device} ({precision}), torch {torch.__version__}, {threads} threads; latents {latent_shape[1:]}")
    print(f"{'case':32s} {'median s':>10s} {'img/s':>10s} {'peak MiB':>10s} {'rise MiB':>10s}")
    for name in cases:
        peak, rise = memory_mib[name]["peak"], memory_mib[name]["rise"]
        print(f"{name:32s} {median[name]:10.4f} {report['images_per_second'][name]:10.2f} {peak:10.0f} {rise:10.0f}")
    for key in list(report)[:3]:
        print(f"{key:44s} {report[key]:.4f}")
    print(f"peak memory: {memory.method}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2, default=str)
    return report


if __name__ == "__main__":
    main()
