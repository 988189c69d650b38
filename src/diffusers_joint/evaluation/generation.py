# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Generation metrics on the features of a reference network: Frechet distance, KID, precision / recall and the
conditional accuracy of class-guided samples. Everything runs offline on NumPy, SciPy and scikit-learn, on the features
of any network: the [`ReferenceClassifier`] or a transformers backbone ([`TransformersFeatureExtractor`]).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from diffusers.utils import logging
from sklearn.metrics import pairwise_distances
from sklearn.metrics.pairwise import polynomial_kernel
from sklearn.neighbors import NearestNeighbors

from ..models.unet_2d_joint import MULTI_LABEL, SINGLE_LABEL

logger = logging.get_logger(__name__)

ArrayLike = np.ndarray | torch.Tensor


def _as_features(features: ArrayLike, name: str, min_rows: int = 2) -> np.ndarray:
    array = features.detach().cpu().double().numpy() if torch.is_tensor(features) else np.asarray(features, float)
    if array.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D array (num_samples, num_features), got shape {array.shape}.")
    if len(array) < min_rows:
        raise ValueError(f"`{name}` needs at least {min_rows} samples, got {len(array)}.")
    if not np.isfinite(array).all():
        raise ValueError(f"`{name}` holds NaN or infinite values.")
    return array


def _sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues below 0 from round-off are clipped)."""
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T


def frechet_distance_from_statistics(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    r"""
    Frechet (2-Wasserstein) distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2):
    `|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))`.

    The trace of `(sigma1 sigma2)^(1/2)` is computed as the sum of the square roots of the eigenvalues of the symmetric
    matrix `sigma1^(1/2) sigma2 sigma1^(1/2)`, which has the same spectrum: unlike `scipy.linalg.sqrtm` of the
    non-symmetric product, this stays real and finite for the singular covariances of few samples in many dimensions.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, float)), np.atleast_1d(np.asarray(mu2, float))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, float)), np.atleast_2d(np.asarray(sigma2, float))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise ValueError(
            f"Mismatched statistics: means {mu1.shape} and {mu2.shape}, covariances {sigma1.shape} and {sigma2.shape}."
        )
    root1 = _sqrtm_psd(sigma1)
    middle = root1 @ sigma2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    distance = float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)
    return max(distance, 0.0)  # round-off can give -1e-12 for identical statistics


def frechet_distance(real_features: ArrayLike, fake_features: ArrayLike) -> float:
    """
    Frechet distance (the FID formula, Heusel et al., 2017) between Gaussians fitted to two sets of features.

    Args:
        real_features (`np.ndarray` or `torch.Tensor` of shape `(N, D)`):
            Features of real images (at least 2).
        fake_features (`np.ndarray` or `torch.Tensor` of shape `(M, D)`):
            Features of generated images (at least 2).

    Returns:
        `float`: 0 for identical sets; larger is further apart. Biased upwards for small sets: compare values computed
        with the same numbers of images.
    """
    real = _as_features(real_features, "real_features")
    fake = _as_features(fake_features, "fake_features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"Feature sizes differ: {real.shape[1]} (real) and {fake.shape[1]} (fake).")
    return frechet_distance_from_statistics(
        real.mean(axis=0), np.cov(real, rowvar=False), fake.mean(axis=0), np.cov(fake, rowvar=False)
    )


def kernel_inception_distance(
    real_features: ArrayLike,
    fake_features: ArrayLike,
    num_subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 0,
) -> tuple[float, float]:
    r"""
    Kernel Inception Distance (Binkowski et al., 2018): the unbiased estimate of the squared maximum mean discrepancy
    with the polynomial kernel `k(x, y) = (gamma <x, y> + coef0)^degree`, averaged over random subsets.

    Args:
        real_features (`np.ndarray` or `torch.Tensor` of shape `(N, D)`):
            Features of real images.
        fake_features (`np.ndarray` or `torch.Tensor` of shape `(M, D)`):
            Features of generated images.
        num_subsets (`int`, *optional*, defaults to 100):
            Number of random subset pairs.
        subset_size (`int`, *optional*, defaults to 1000):
            Samples per subset, capped at `min(N, M)` (at least 2).
        degree (`int`, *optional*, defaults to 3):
            Degree of the polynomial kernel.
        gamma (`float`, *optional*):
            Kernel scale; defaults to `1 / D`.
        coef0 (`float`, *optional*, defaults to 1.0):
            Kernel offset.
        seed (`int`, *optional*, defaults to 0):
            Seed of the subset draws.

    Returns:
        `tuple[float, float]`: mean and standard deviation of the unbiased MMD^2 over subsets. About 0 (it can be
        slightly negative) for samples of the same distribution.
    """
    real = _as_features(real_features, "real_features")
    fake = _as_features(fake_features, "fake_features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"Feature sizes differ: {real.shape[1]} (real) and {fake.shape[1]} (fake).")
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        raise ValueError(f"`subset_size` must be at least 2, got {subset_size}.")
    gamma = 1.0 / real.shape[1] if gamma is None else gamma
    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(num_subsets):
        x = real[rng.choice(len(real), size, replace=False)]
        y = fake[rng.choice(len(fake), size, replace=False)]
        k_xx = polynomial_kernel(x, degree=degree, gamma=gamma, coef0=coef0)
        k_yy = polynomial_kernel(y, degree=degree, gamma=gamma, coef0=coef0)
        k_xy = polynomial_kernel(x, y, degree=degree, gamma=gamma, coef0=coef0)
        # Unbiased: the diagonals (a sample against itself) are left out of the within-set means.
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (size * (size - 1))
        estimates.append(within - 2 * k_xy.mean())
    return float(np.mean(estimates)), float(np.std(estimates))


def _knn_radii(features: np.ndarray, k: int) -> np.ndarray:
    # k + 1 neighbours because each point is its own nearest neighbour
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    return distances[:, k]


def _inside_manifold(points: np.ndarray, support: np.ndarray, radii: np.ndarray, chunk: int = 1024) -> np.ndarray:
    inside = np.empty(len(points), dtype=bool)
    for start in range(0, len(points), chunk):
        distances = pairwise_distances(points[start : start + chunk], support)
        inside[start : start + chunk] = (distances <= radii[None, :]).any(axis=1)
    return inside


def precision_recall(real_features: ArrayLike, fake_features: ArrayLike, k: int = 3) -> tuple[float, float]:
    """
    Improved precision and recall (Kynkaanniemi et al., 2019) with k-nearest-neighbour manifolds.

    Each set's manifold is the union of balls around its samples with radius the distance to the sample's `k`-th
    nearest neighbour in the same set. Precision is the fraction of generated samples inside the real manifold
    (fidelity); recall the fraction of real samples inside the generated manifold (coverage).

    Args:
        real_features (`np.ndarray` or `torch.Tensor` of shape `(N, D)`):
            Features of real images (more than `k`).
        fake_features (`np.ndarray` or `torch.Tensor` of shape `(M, D)`):
            Features of generated images (more than `k`).
        k (`int`, *optional*, defaults to 3):
            Neighbourhood size (3 in the paper).

    Returns:
        `tuple[float, float]`: `(precision, recall)`, each in [0, 1].
    """
    real = _as_features(real_features, "real_features", min_rows=k + 1)
    fake = _as_features(fake_features, "fake_features", min_rows=k + 1)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"Feature sizes differ: {real.shape[1]} (real) and {fake.shape[1]} (fake).")
    precision = _inside_manifold(fake, real, _knn_radii(real, k)).mean()
    recall = _inside_manifold(real, fake, _knn_radii(fake, k)).mean()
    return float(precision), float(recall)


def conditional_accuracy(requested_labels: ArrayLike, probs: ArrayLike, problem_type: str = SINGLE_LABEL) -> float:
    """
    Share of class-guided samples that a classifier assigns to the requested class.

    Args:
        requested_labels (`np.ndarray` or `torch.Tensor`):
            The requested classes: indices `(N,)`, or multi-hot targets `(N, L)` for multi-label problems (1 wanted,
            0 unwanted, -1 either).
        probs (`np.ndarray` or `torch.Tensor` of shape `(N, num_classes)`):
            The classifier's probabilities for the samples (use the reference network's, not the joint model's, for an
            independent judgement).
        problem_type (`str`, *optional*, defaults to `"single_label_classification"`):
            Single-label: arg-max equals the request. Multi-label: the decisions at 0.5 match every specified target.

    Returns:
        `float`: the accuracy in [0, 1].
    """
    requested = np.asarray(requested_labels.cpu() if torch.is_tensor(requested_labels) else requested_labels)
    probs = np.asarray(probs.detach().float().cpu() if torch.is_tensor(probs) else probs, dtype=float)
    if len(requested) != len(probs) or len(probs) == 0:
        raise ValueError(f"Got {len(requested)} requested labels for {len(probs)} rows of probabilities.")
    if problem_type == MULTI_LABEL:
        decisions = (probs >= 0.5).astype(int)
        specified = requested != -1
        return float(((decisions == requested) | ~specified).all(axis=1).mean())
    return float((probs.argmax(axis=1) == requested.astype(int)).mean())


def compute_generation_metrics(
    real_features: ArrayLike,
    fake_features: ArrayLike,
    requested_labels: ArrayLike | None = None,
    fake_probs: ArrayLike | None = None,
    problem_type: str = SINGLE_LABEL,
    kid_subset_size: int = 1000,
    kid_num_subsets: int = 100,
    k: int = 3,
    seed: int = 0,
) -> dict:
    """
    All generation metrics on reference-network features of real and generated images.

    Args:
        real_features (`np.ndarray` or `torch.Tensor` of shape `(N, D)`):
            Reference-network features of real images (see [`ReferenceClassifier.extract_features`]).
        fake_features (`np.ndarray` or `torch.Tensor` of shape `(M, D)`):
            Features of generated images, from the same network.
        requested_labels (`np.ndarray` or `torch.Tensor`, *optional*):
            Classes requested for class-guided samples (see [`conditional_accuracy`]).
        fake_probs (`np.ndarray` or `torch.Tensor`, *optional*):
            The reference network's probabilities for the generated images; with `requested_labels`, adds
            `conditional_accuracy` (and, for single-label problems, `conditional_accuracy_per_class`).
        problem_type (`str`, *optional*, defaults to `"single_label_classification"`):
            See [`conditional_accuracy`].
        kid_subset_size (`int`, *optional*, defaults to 1000):
            See [`kernel_inception_distance`].
        kid_num_subsets (`int`, *optional*, defaults to 100):
            See [`kernel_inception_distance`].
        k (`int`, *optional*, defaults to 3):
            Neighbourhood size of precision / recall.
        seed (`int`, *optional*, defaults to 0):
            Seed of the KID subsets.

    Returns:
        `dict`: `num_real`, `num_generated`, `frechet_distance`, `kid_mean`, `kid_std`, `precision`, `recall` and,
        when labels are given, the conditional accuracies; plain Python numbers (JSON-serialisable).
    """
    real = _as_features(real_features, "real_features")
    fake = _as_features(fake_features, "fake_features")
    kid_mean, kid_std = kernel_inception_distance(
        real, fake, num_subsets=kid_num_subsets, subset_size=kid_subset_size, seed=seed
    )
    results = {
        "num_real": int(len(real)),
        "num_generated": int(len(fake)),
        "frechet_distance": frechet_distance(real, fake),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
    }
    if min(len(real), len(fake)) > k:
        results["precision"], results["recall"] = precision_recall(real, fake, k=k)
    else:
        logger.warning(f"Precision / recall need more than k={k} samples per set: reported as NaN.")
        results["precision"] = results["recall"] = math.nan
    if requested_labels is not None and fake_probs is not None:
        results["conditional_accuracy"] = conditional_accuracy(requested_labels, fake_probs, problem_type)
        if problem_type == SINGLE_LABEL:
            requested = np.asarray(requested_labels.cpu() if torch.is_tensor(requested_labels) else requested_labels)
            probs = fake_probs.detach().cpu().numpy() if torch.is_tensor(fake_probs) else np.asarray(fake_probs)
            results["conditional_accuracy_per_class"] = {
                str(int(c)): conditional_accuracy(requested[requested == c], probs[requested == c])
                for c in np.unique(requested)
            }
    return results
