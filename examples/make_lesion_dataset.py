#!/usr/bin/env python
# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Write the generated chest-X-ray-like lesion set (class 1: a soft blob in a lung field, class 0: none) with its masks.

    python examples/make_lesion_dataset.py --output_dir lesions128 --num_train 4000 --num_test 1000 --size 128 --seed 0

The same seed writes the same images. Layout (see `diffusers_joint.data.write_lesion_dataset`):

    lesions128/train/00000.png ...          8-bit grayscale images
    lesions128/train/metadata.csv           file_name,label,mask_file_name
    lesions128/train/masks/00000.png ...    255 inside the lesion, all 0 for class 0
    lesions128/test/...                     the same for the test split
    lesions128/lesions.npz                  train_images, train_labels, train_masks, test_* (MedMNIST layout)

Train on it with `--train_data_dir lesions128` (or `--npz_path lesions128/lesions.npz`, faster to read); read the
masks with `diffusers_joint.data.load_lesion_masks("lesions128", "test")` to score explanations
(`diffusers_joint.evaluation.pointing_game`, `top_change_iou`).
"""

import argparse
import sys

import numpy as np

from diffusers_joint.data import write_lesion_dataset


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Write the generated lesion set (images, labels, lesion masks).")
    parser.add_argument("--output_dir", type=str, default="lesions128")
    parser.add_argument("--num_train", type=int, default=4000)
    parser.add_argument("--num_test", type=int, default=1000)
    parser.add_argument("--size", type=int, default=128, help="Image side in pixels.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--contrast_range", type=float, nargs=2, default=None, help="Lesion peak contrast, in [0, 1] intensity units."
    )
    parser.add_argument(
        "--lesion_sigma_range", type=float, nargs=2, default=None, help="Blob standard deviation / image side."
    )
    args = parser.parse_args(argv)
    for name in ("num_train", "num_test"):
        if getattr(args, name) < 2:
            parser.error(f"--{name} must be at least 2 (one image per class), got {getattr(args, name)}.")
    if args.size < 16:
        parser.error(f"--size must be at least 16, got {args.size}.")
    return args


def main(args):
    options = {
        key: tuple(getattr(args, key)) for key in ("contrast_range", "lesion_sigma_range") if getattr(args, key)
    }
    arrays = write_lesion_dataset(args.output_dir, args.num_train, args.num_test, args.size, args.seed, **options)
    for split in ("train", "test"):
        labels, masks = arrays[f"{split}_labels"].ravel(), arrays[f"{split}_masks"]
        areas = masks[labels == 1].sum(axis=(1, 2))
        print(
            f"{split}: {len(labels)} images ({int((labels == 1).sum())} with a lesion), lesion area "
            f"{int(areas.min())}-{int(areas.max())} px (median {int(np.median(areas))})"
        )
    print(f"Wrote {args.output_dir}/train, {args.output_dir}/test and {args.output_dir}/lesions.npz")


if __name__ == "__main__":
    main(parse_args(sys.argv[1:]))
