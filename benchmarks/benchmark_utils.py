"""What the generation and counterfactual benchmarks share: loading a pipeline, the data and the reference network."""

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import accelerate
import diffusers
import kornia
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from diffusers_joint import JointDiffusionPipeline
from diffusers_joint.data import load_joint_dataset
from diffusers_joint.data.joint_dataset import holdout_split
from diffusers_joint.evaluation import ReferenceClassifier, dataset_to_tensors, train_reference_classifier

VALIDATION_FRACTION = 0.1  # train_joint.py's default --validation_fraction: the hold-out every benchmark reproduces


def load_pipeline(path: str, scheduler: str) -> JointDiffusionPipeline:
    """A saved pipeline with a `"ddpm"` or `"ddim"` scheduler, no progress bar, in eval mode."""
    pipe = JointDiffusionPipeline.from_pretrained(path)
    scheduler_cls = DDIMScheduler if scheduler == "ddim" else DDPMScheduler
    pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    pipe.unet.eval()
    return pipe


def add_split_argument(parser: argparse.ArgumentParser, images: str) -> None:
    """`--split` as [`evaluation_data_and_reference`] reads it; `images` says what the split's images are for."""
    parser.add_argument(
        "--split",
        choices=["test", "validation"],
        default="test",
        help=f"{images}: the test split (report once), or a validation split for choosing settings: an .npz file's "
        "val split, else the seeded 10 %% hold-out of the training split that train_joint.py calibrates on.",
    )


def evaluation_data_and_reference(
    pipe: JointDiffusionPipeline,
    npz_path: str | None,
    csv_path: str | None,
    reference_model: str | None,
    seed: int,
    split: str = "test",
    validation_fraction: float = VALIDATION_FRACTION,
) -> tuple[torch.Tensor, torch.Tensor, ReferenceClassifier, float]:
    """
    The evaluation images and labels at the pipeline's image size and channels (`pipe.pixel_size` and
    `pipe.pixel_channels`: the decoded images' for a latent pipeline), and the independent reference network: loaded
    from `reference_model`, or trained on the real training images; and the reference network's test accuracy.

    `split="validation"` returns a validation split instead of the test split, for choosing settings without looking
    at the test images: for an `.npz` file its `val` split (images `train_joint.py` never trains or calibrates on:
    it calibrates on its seeded hold-out of the training split unless given `--validation_split val`), else the
    seeded hold-out of `validation_fraction` of the training split, the same draw as `train_joint.py --seed` and so
    the images it calibrates on (the reference network then trains on the rest).
    """
    if split not in ("test", "validation"):
        raise ValueError(f"Expected split 'test' or 'validation', got {split!r}.")
    dataset = load_joint_dataset(npz_path=npz_path, csv_path=csv_path, seed=seed)
    preprocessor = pipe.image_preprocessor
    test_images, test_labels = dataset_to_tensors(dataset.eval, preprocessor)
    train = dataset.train
    if split == "validation" and npz_path is not None:
        validation = load_joint_dataset(npz_path=npz_path, eval_split="val", seed=seed).eval
    elif split == "validation":
        train, validation = holdout_split(dataset.train, validation_fraction, seed)
    if reference_model:
        reference = ReferenceClassifier.from_pretrained(reference_model)
    else:
        reference = train_reference_classifier(*dataset_to_tensors(train, preprocessor), seed=seed)
    accuracy = float((reference.predict_proba(test_images).argmax(1) == test_labels).float().mean())
    print(f"reference network test accuracy: {accuracy:.4f}", flush=True)
    if split == "validation":
        images, labels = dataset_to_tensors(validation, preprocessor)
        print(f"evaluating on the validation split ({len(labels)} images), not the test split", flush=True)
        return images, labels, reference, accuracy
    return test_images, test_labels, reference, accuracy


def library_versions() -> dict[str, str]:
    """
    The releases a seeded run's numbers depend on: torch's kernels and generator, kornia's augmentations (0.9.2
    redefined RandAugment's shear, brightness and contrast as PIL's), diffusers' schedulers and UNet blocks,
    accelerate's seeding.
    """
    return {
        "torch": torch.__version__,
        "kornia": kornia.__version__,
        "diffusers": diffusers.__version__,
        "accelerate": accelerate.__version__,
    }


def print_run_config(args) -> dict:
    """The arguments plus library versions, machine and threads, printed as one JSON line and returned."""
    config = {
        **vars(args),
        **library_versions(),
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(config), flush=True)
    return config


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds `fn()` takes, with CUDA synchronised before and after so that queued kernels are counted."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def save_figure(fig, ax, xlabel: str, ylabel: str, title: str, path: str) -> None:
    """Label the axes, title and legend of a benchmark plot the same way, and write it to `path`."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


RUN_FLAGS_FILE = "benchmark_run_flags.json"  # what a benchmark's run folder was trained with


def without_output_dir(flags: list[str]) -> list[str]:
    """A `train_joint.py` command line without `--output_dir` and its value (runs are compared wherever they are)."""
    kept, skip = [], False
    for flag in flags:
        if skip:
            skip = False
        elif flag == "--output_dir":
            skip = True
        else:
            kept.append(flag)
    return kept


def flag_values(flags: list[str]) -> dict[str, list[str]]:
    """`{"--flag": [values]}` of a command line, the last occurrence of a repeated flag winning as in argparse."""
    values, current = {}, None
    for token in flags:
        if token.startswith("--"):
            current = token
            values[current] = []
        elif current is not None:
            values[current].append(token)
    return values


def _comparable(record: dict) -> dict:
    return {key: flag_values(value) if isinstance(value, list) else value for key, value in record.items()}


def write_run_flags(run_dir: str | Path, record: dict) -> None:
    """Record in `run_dir` the flags (`record`: JSON values, command lines as lists) its results were made with."""
    (Path(run_dir) / RUN_FLAGS_FILE).write_text(json.dumps(record, indent=2))


def check_reused_run(run_dir: str | Path, record: dict) -> None:
    """
    Before reusing the results in `run_dir`: exit with an error naming the folder and every flag that differs when
    they were made with other flags than `record` (see [`write_run_flags`]), since they would be reported under the
    new flags. A folder without a record (an older benchmark's) is reused with a warning.
    """
    path = Path(run_dir) / RUN_FLAGS_FILE
    if not path.exists():
        print(f"Warning: reusing {run_dir} without checking its flags: it has no {RUN_FLAGS_FILE}.", flush=True)
        return
    saved, now = _comparable(json.loads(path.read_text())), _comparable(record)
    if saved == now:
        return

    def show(value):
        if value is None:
            return "absent"
        return " ".join(value) or "set" if isinstance(value, list) else json.dumps(value)

    differences = []
    for key in [*saved, *(key for key in now if key not in saved)]:
        before, after = saved.get(key), now.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            flags = [*before, *(flag for flag in after if flag not in before)]
            differences += [
                f"{flag} {show(before.get(flag))} -> {show(after.get(flag))}"
                for flag in flags
                if before.get(flag) != after.get(flag)
            ]
        elif before != after:
            differences.append(f"{key} {show(before)} -> {show(after)}")
    raise SystemExit(
        f"{run_dir} holds results made with other flags than this run's ({'; '.join(differences)}): they would be "
        f"reported under the new flags. Pass another --runs_dir, or delete {run_dir} to train it again."
    )
