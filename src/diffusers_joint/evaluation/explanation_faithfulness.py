# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Faithfulness of explanations against known ground truth: does a heat map (e.g. a counterfactual's change map) point
at the lesion that makes an image positive? Scored on data whose lesion masks are known, such as
[`~data.make_lesion_images`].
"""

from __future__ import annotations

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


def _as_maps(heatmaps: ArrayLike, masks: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """`(N, H*W)` heat maps (channels averaged) and boolean masks, checked against each other."""
    heat = heatmaps.detach().float().cpu().numpy() if torch.is_tensor(heatmaps) else np.asarray(heatmaps, float)
    mask = masks.detach().cpu().numpy() if torch.is_tensor(masks) else np.asarray(masks)
    if heat.ndim == 4:  # (N, C, H, W): a change map per channel
        heat = heat.mean(axis=1)
    if mask.ndim == 4 and mask.shape[1] == 1:
        mask = mask[:, 0]
    if heat.ndim != 3 or mask.ndim != 3:
        raise ValueError(
            f"Expected heat maps (N, H, W) or (N, C, H, W) and masks (N, H, W) or (N, 1, H, W), got shapes "
            f"{tuple(np.shape(heatmaps))} and {tuple(np.shape(masks))}."
        )
    if heat.shape != mask.shape:
        raise ValueError(f"Expected one mask per heat map of the same size, got {heat.shape} and {mask.shape}.")
    if len(heat) == 0:
        raise ValueError("Expected at least one heat map, got none.")
    if not np.isfinite(heat).all():
        raise ValueError("Expected finite heat maps, got NaN or infinite values.")
    mask = mask.astype(bool).reshape(len(mask), -1)
    empty = np.flatnonzero(~mask.any(axis=1))
    if len(empty):
        raise ValueError(
            f"Expected a non-empty mask per image, but images {empty[:10].tolist()} have empty masks: score only the "
            "images that carry a lesion (class 1)."
        )
    return heat.reshape(len(heat), -1), mask


def pointing_game(heatmaps: ArrayLike, masks: ArrayLike) -> float:
    """
    The pointing game: the share of images whose heat map's maximum falls inside the mask.

    Ties go to the first maximum in row-major order (`argmax` of the flattened map).

    Args:
        heatmaps (`np.ndarray` or `torch.Tensor` of shape `(N, H, W)` or `(N, C, H, W)`):
            Heat maps, e.g. absolute counterfactual differences (channels are averaged).
        masks (`np.ndarray` or `torch.Tensor` of shape `(N, H, W)` or `(N, 1, H, W)`):
            The ground-truth regions; every mask must be non-empty.

    Returns:
        `float`: hits over images, in [0, 1].
    """
    heat, mask = _as_maps(heatmaps, masks)
    peaks = heat.argmax(axis=1)
    return float(mask[np.arange(len(mask)), peaks].mean())


def top_change_iou(heatmaps: ArrayLike, masks: ArrayLike, fraction: float | None = None) -> float:
    """
    The mean intersection over union of each image's `k` highest heat-map pixels with its mask.

    `k` is the mask's area by default (a perfect heat map then scores 1), else `round(fraction * H * W)` (at least 1).
    Ties are broken in row-major order (a stable sort), so the result is deterministic.

    Args:
        heatmaps (`np.ndarray` or `torch.Tensor` of shape `(N, H, W)` or `(N, C, H, W)`):
            Heat maps (channels are averaged).
        masks (`np.ndarray` or `torch.Tensor` of shape `(N, H, W)` or `(N, 1, H, W)`):
            The ground-truth regions; every mask must be non-empty.
        fraction (`float`, *optional*):
            Share of the pixels taken as the top-changed region, in (0, 1]; default: each mask's own area.

    Returns:
        `float`: the mean IoU over images, in [0, 1].
    """
    if fraction is not None and not 0 < fraction <= 1:
        raise ValueError(f"Expected `fraction` in (0, 1] or None (the mask's area), got {fraction!r}.")
    heat, mask = _as_maps(heatmaps, masks)
    pixels = heat.shape[1]
    order = np.argsort(-heat, axis=1, kind="stable")
    scores = []
    for values_order, region in zip(order, mask):
        k = int(region.sum()) if fraction is None else max(1, round(fraction * pixels))
        top = np.zeros(pixels, dtype=bool)
        top[values_order[:k]] = True
        scores.append((top & region).sum() / (top | region).sum())
    return float(np.mean(scores))
