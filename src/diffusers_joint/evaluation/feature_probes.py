# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Linear probes on a joint model's frozen features: which blocks, at which noise level, separate the classes.

DDAE (Xiang et al., ICCV 2023) found a diffusion UNet's features most linearly separable at a small noise level rather
than on the clean image. These functions measure that for a [`JointUNet2DModel`]: pooled features of every down block,
the mid block and (optionally) every up block, read from one UNet pass at timestep `t` on `x_t`, then a logistic
regression fitted on labeled features and scored on held-out ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from diffusers import SchedulerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..models.unet_2d_joint import JointUNet2DModel
from .classification import compute_classification_metrics

ENCODER = "encoder"  # every down block and the mid block: what the classifier head reads by default


def block_names(unet: JointUNet2DModel, decoder: bool = False) -> list[str]:
    """Names of the blocks [`block_features`] pools: `down_0`, ..., `mid` and, with `decoder`, `up_0`, ..."""
    names = [f"down_{i}" for i in range(len(unet.down_blocks))]
    names += ["mid"] if unet.mid_block is not None else []
    names += [f"up_{i}" for i in range(len(unet.up_blocks))] if decoder else []
    return names


def noisy_images(
    images: torch.Tensor, timestep: int, scheduler: SchedulerMixin, generator: torch.Generator | None = None
) -> torch.Tensor:
    """`x_t` of `images` (`scheduler.add_noise`); timestep 0 returns the images unchanged."""
    if timestep == 0:
        return images
    noise = torch.randn(images.shape, generator=generator, dtype=images.dtype)
    timesteps = torch.full((len(images),), timestep, dtype=torch.long)
    return scheduler.add_noise(images, noise.to(images.device), timesteps.to(images.device))


@torch.no_grad()
def block_features(
    unet: JointUNet2DModel,
    images: torch.Tensor,
    timestep: int = 0,
    scheduler: SchedulerMixin | None = None,
    *,
    decoder: bool = False,
    noisy: bool = True,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, torch.Tensor]:
    """
    Globally average-pooled features of every block of `unet` for `images` noised to `timestep`.

    Args:
        unet ([`JointUNet2DModel`]): the model, read in eval mode.
        images (`torch.Tensor` of shape `(N, C, H, W)`): clean images in [-1, 1].
        timestep (`int`, *optional*, defaults to 0): the noise level; 0 reads the clean images, as `classify()` does.
        scheduler (`SchedulerMixin`, *optional*): adds the noise; needed when `timestep > 0`.
        decoder (`bool`, *optional*, defaults to `False`): also pool the up blocks' outputs (a full UNet pass instead
            of the encoder half).
        noisy (`bool`, *optional*, defaults to `True`): read `x_t`; `False` reads the clean images with the
            timestep's embedding (deterministic, no noise).
        seed (`int`, *optional*, defaults to 0): seed of the noise, so that the same call gives the same features.
        batch_size (`int`, *optional*, defaults to 256): images per pass.

    Returns:
        `dict[str, torch.Tensor]`: block name (see [`block_names`]) to float32 CPU features `(N, channels)`.
    """
    if timestep > 0 and noisy and scheduler is None:
        raise ValueError(f"Features at timestep {timestep} need the `scheduler` that adds the noise.")
    num_train_timesteps = scheduler.config.num_train_timesteps if scheduler is not None else None
    if timestep < 0 or (num_train_timesteps is not None and timestep >= num_train_timesteps):
        raise ValueError(f"Expected a timestep in [0, {num_train_timesteps}), got {timestep}.")
    names = block_names(unet, decoder)
    modules = list(unet.down_blocks) + ([unet.mid_block] if unet.mid_block is not None else [])
    modules += list(unet.up_blocks) if decoder else []
    outputs: list[torch.Tensor] = []

    def hook(module, args, output):
        outputs.append((output[0] if isinstance(output, tuple) else output).float().mean(dim=(2, 3)).cpu())

    generator = torch.Generator().manual_seed(seed)
    pooled: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    was_training = unet.training
    unet.eval()
    handles = [module.register_forward_hook(hook) for module in modules]
    try:
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            batch = noisy_images(batch, timestep, scheduler, generator) if noisy else batch
            batch = batch.to(device=unet.device, dtype=unet.dtype)
            outputs.clear()
            if decoder:
                unet(batch, timestep)
            else:
                unet.encode(batch, timestep)
            for name, output in zip(names, outputs):
                pooled[name].append(output)
    finally:
        for handle in handles:
            handle.remove()
        unet.train(was_training)
    return {name: torch.cat(chunks) for name, chunks in pooled.items()}


def select_features(features: dict[str, torch.Tensor], blocks: str | Sequence[str]) -> torch.Tensor:
    """
    The features of `blocks` concatenated: a block name, a list of them, or `"encoder"` (every down block and the
    mid block, the classifier head's input unless the model sets `classifier_feature_stages`).
    """
    if blocks == ENCODER:
        blocks = [name for name in features if not name.startswith("up_")]
    elif isinstance(blocks, str):
        blocks = [blocks]
    missing = [name for name in blocks if name not in features]
    if missing:
        raise ValueError(f"Unknown blocks {missing}: the features hold {list(features)}.")
    return torch.cat([features[name] for name in blocks], dim=1)


def linear_probe(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    eval_features: torch.Tensor,
    eval_labels: torch.Tensor,
    *,
    regularization: float = 1.0,
    max_iter: int = 2000,
) -> dict:
    """
    Fit a standardised logistic regression (scikit-learn, `C=regularization`) on labeled features, and return
    [`compute_classification_metrics`] of its probabilities on the evaluation features (balanced accuracy, ROC AUC,
    ...). A class absent from the labeled features gets probability 0.
    """
    if len(train_features) != len(train_labels) or len(eval_features) != len(eval_labels):
        raise ValueError(
            f"Expected one label per feature row, got {len(train_features)} / {len(train_labels)} (train) and "
            f"{len(eval_features)} / {len(eval_labels)} (eval)."
        )
    train_labels, eval_labels = np.asarray(train_labels), np.asarray(eval_labels)
    if len(np.unique(train_labels)) < 2:
        raise ValueError("A linear probe needs labeled features of at least two classes.")
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=regularization, max_iter=max_iter))
    probe.fit(train_features.numpy(), train_labels)
    classifier = probe[-1]
    num_classes = int(max(train_labels.max(), eval_labels.max())) + 1
    probs = np.zeros((len(eval_labels), num_classes))
    probs[:, classifier.classes_] = probe.predict_proba(eval_features.numpy())
    return compute_classification_metrics(eval_labels, probs)


def probe_timesteps(
    unet: JointUNet2DModel,
    scheduler: SchedulerMixin,
    train: tuple[torch.Tensor, torch.Tensor],
    evaluation: tuple[torch.Tensor, torch.Tensor],
    timesteps: Sequence[int],
    *,
    decoder: bool = False,
    noisy: bool = True,
    block_sets: Sequence[str | Sequence[str]] | None = None,
    seed: int = 0,
    regularization: float = 1.0,
) -> list[dict]:
    """
    Linear probes of every block, and of every set in `block_sets` (default: each block alone, and `"encoder"`), at
    each timestep; with the model's own head read at the same timestep for comparison.

    Args:
        unet, scheduler: the model and its noise scheduler.
        train (`tuple`): labeled `(images, labels)` the probes are fitted on (images in [-1, 1]).
        evaluation (`tuple`): `(images, labels)` they are scored on; tune on a validation split, never the test one.
        timesteps (`Sequence[int]`): noise levels to read the features at.
        decoder (`bool`, *optional*, defaults to `False`): probe the up blocks too.
        noisy (`bool`, *optional*, defaults to `True`): read `x_t`, or (`False`) the clean images with the timestep's
            embedding, as for [`block_features`].
        block_sets: what to probe, as for [`select_features`].
        seed (`int`, *optional*, defaults to 0): seed of the noise (the evaluation images get `seed + 1`).
        regularization (`float`, *optional*, defaults to 1.0): the logistic regression's `C`.

    Returns:
        `list[dict]`: one row per (timestep, block set): `timestep`, `input` (`x_t` or `x_0`), `blocks`,
        `balanced_accuracy`, `roc_auc`, `accuracy`; rows with `blocks == "head"` score the model's own classifier on
        the same evaluation features.
    """
    if unet.is_multi_label:
        raise ValueError("Linear probes score single-label models; this model is multi-label.")
    train_images, train_labels = train
    eval_images, eval_labels = evaluation
    rows = []
    for timestep in timesteps:
        settings = dict(decoder=decoder, noisy=noisy)
        train_features = block_features(unet, train_images, timestep, scheduler, seed=seed, **settings)
        eval_features = block_features(unet, eval_images, timestep, scheduler, seed=seed + 1, **settings)
        sets = list(block_sets) if block_sets is not None else [*train_features, ENCODER]
        for blocks in sets:
            metrics = linear_probe(
                select_features(train_features, blocks),
                train_labels,
                select_features(eval_features, blocks),
                eval_labels,
                regularization=regularization,
            )
            rows.append(_probe_row(timestep, noisy, blocks, metrics))
        with torch.no_grad():
            head_blocks = [block_names(unet)[i] for i in unet.classifier_stages]
            head_input = select_features(eval_features, head_blocks).to(device=unet.device, dtype=unet.dtype)
            was_training = unet.training
            unet.eval()
            logits = unet.classifier(head_input).float().cpu()
            unet.train(was_training)
        metrics = compute_classification_metrics(np.asarray(eval_labels), unet.probabilities(logits).numpy())
        rows.append(_probe_row(timestep, noisy, "head", metrics))
    return rows


def _probe_row(timestep: int, noisy: bool, blocks: str | Sequence[str], metrics: dict) -> dict:
    name = blocks if isinstance(blocks, str) else "+".join(blocks)
    return {
        "timestep": int(timestep),
        "input": "x_t" if noisy else "x_0",
        "blocks": name,
        **{k: metrics[k] for k in ("balanced_accuracy", "roc_auc", "accuracy")},
    }
