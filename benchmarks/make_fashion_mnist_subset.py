#!/usr/bin/env python
# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Write the seeded Fashion-MNIST subset of the semi-supervised benchmark as a MedMNIST-style `.npz`.

    apt-get install -y dataset-fashion-mnist   # the four IDX files in /usr/share/datasets/fashion-mnist
    python benchmarks/make_fashion_mnist_subset.py --output fashion_mnist_10k.npz

Splits (every one stratified by class and drawn with `--seed`):
- `train`: `--num_train` images from the official training set;
- `val`: `--num_val` further images from the official training set, disjoint from `train`. Tune on this split
  (`--eval_split val`); it never overlaps the test images;
- `test`: `--num_test` images from the official test set, scored once with the final settings.

The same seed and IDX files write the same arrays (the file's md5 can differ with the zlib version).
"""

import argparse
import gzip
import hashlib
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not) as a uint8 array; the header's magic number and sizes are checked."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"Expected an IDX file of unsigned bytes (magic 0x0000080N) at {path}, got {data[:4]!r}.")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(shape)):
        raise ValueError(f"{path} declares shape {shape} but holds {len(data) - offset} bytes: the file is truncated.")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def stratified_take(labels: np.ndarray, size: int, seed: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Sorted indices of `size` examples stratified by label, drawn by `seed` among those not in `exclude`."""
    pool = np.setdiff1d(np.arange(len(labels)), exclude) if exclude is not None else np.arange(len(labels))
    if size > len(pool):
        raise ValueError(f"Asked for {size} images but only {len(pool)} are left to draw from.")
    if size == len(pool):
        return pool
    taken, _ = train_test_split(pool, train_size=size, random_state=seed, stratify=labels[pool])
    return np.sort(taken)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write the seeded Fashion-MNIST subset (MedMNIST npz layout).")
    parser.add_argument("--idx_dir", default=DEBIAN_DIR, help="Folder of the four (gzipped) IDX files.")
    parser.add_argument("--output", default="fashion_mnist_10k.npz")
    parser.add_argument("--num_train", type=int, default=10_000)
    parser.add_argument("--num_val", type=int, default=2_000)
    parser.add_argument("--num_test", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    idx_dir = Path(args.idx_dir)
    missing = [name for name in IDX_FILES.values() if not (idx_dir / name).exists()]
    if missing:
        raise SystemExit(
            f"Expected the Fashion-MNIST IDX files {missing} in {idx_dir}. Install them with "
            "`apt-get install dataset-fashion-mnist`, or pass --idx_dir."
        )
    arrays = {key: read_idx(idx_dir / name) for key, name in IDX_FILES.items()}
    train = stratified_take(arrays["train_labels"], args.num_train, args.seed)
    val = stratified_take(arrays["train_labels"], args.num_val, args.seed + 1, exclude=train)
    test = stratified_take(arrays["test_labels"], args.num_test, args.seed)
    out = {
        "train_images": arrays["train_images"][train],
        "train_labels": arrays["train_labels"][train, None].astype(np.int64),
        "val_images": arrays["train_images"][val],
        "val_labels": arrays["train_labels"][val, None].astype(np.int64),
        "test_images": arrays["test_images"][test],
        "test_labels": arrays["test_labels"][test, None].astype(np.int64),
    }
    np.savez_compressed(args.output, **out)
    digest = hashlib.sha256(b"".join(out[k].tobytes() for k in sorted(out))).hexdigest()[:16]
    sizes = ", ".join(f"{split} {len(out[f'{split}_labels'])}" for split in ("train", "val", "test"))
    print(f"Wrote {args.output}: {sizes}; content sha256 {digest}")


if __name__ == "__main__":
    main()
