# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Where pseudo-labels apply, and their defaults there."""

from __future__ import annotations

from dataclasses import dataclass

from diffusers.utils import logging

logger = logging.get_logger(__name__)

# Where they apply (single-label data with unlabeled images and a denoising pass); chosen on validation runs, see
# docs/experiments/recipe.md.
PSEUDO_LABEL_DEFAULTS = {"fixmatch": True, "noisy_pseudo_label_weight": 1.0}


@dataclass(frozen=True)
class PseudoLabelSettings:
    """FixMatch on or off, the weight of noisy pseudo-labels, and FixMatch's distribution alignment on or off."""

    fixmatch: bool
    noisy_pseudo_label_weight: float
    distribution_alignment: bool


def resolve_pseudo_label_settings(
    fixmatch: bool | None,
    noisy_pseudo_label_weight: float | None,
    distribution_alignment: bool | None,
    *,
    multi_label: bool,
    num_classes: int,
    some_unlabeled: bool,
    diffusion: bool = True,
) -> PseudoLabelSettings:
    """
    Settle the pseudo-label choices (`None`: not chosen). They default to [`PSEUDO_LABEL_DEFAULTS`] where they apply
    (single-label data with unlabeled images and a denoising pass, `diffusion`) and to off elsewhere; distribution
    alignment follows FixMatch. An explicit choice that cannot apply to the data (pseudo-labels of multi-label data,
    alignment without FixMatch) raises a `ValueError` before any training time is spent; one that finds nothing to
    pseudo-label (every image labeled, or no denoising pass) is kept, with a warning that it changes nothing.
    """
    for flag, value in (("--fixmatch", fixmatch), ("--noisy_pseudo_label_weight", noisy_pseudo_label_weight)):
        if multi_label and value:
            raise ValueError(
                f"{flag} pseudo-labels one class per image, but this dataset is multi-label ({num_classes} "
                f"independent 0/1 labels per image): train without {flag}."
            )
    applies = not multi_label and some_unlabeled and diffusion
    if not applies and (fixmatch or noisy_pseudo_label_weight):
        why = "every training image is labeled" if not some_unlabeled else "there is no denoising pass"
        logger.warning(
            f"Pseudo-labels were asked for (--fixmatch / --noisy_pseudo_label_weight), but {why}: they change "
            "nothing in this run."
        )
    if fixmatch is None:
        fixmatch = applies and PSEUDO_LABEL_DEFAULTS["fixmatch"]
    if noisy_pseudo_label_weight is None:
        noisy_pseudo_label_weight = PSEUDO_LABEL_DEFAULTS["noisy_pseudo_label_weight"] if applies else 0.0
    if distribution_alignment is None:
        distribution_alignment = fixmatch
    if distribution_alignment and not fixmatch:
        raise ValueError("--fixmatch_distribution_alignment aligns FixMatch pseudo-labels, which are off here.")
    logger.info(
        f"Pseudo-labels: FixMatch {'on' if fixmatch else 'off'}, noisy pseudo-label weight "
        f"{noisy_pseudo_label_weight:g}."
    )
    return PseudoLabelSettings(bool(fixmatch), float(noisy_pseudo_label_weight), bool(distribution_alignment))
