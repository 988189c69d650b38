# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Label manifests: a CSV, JSON Lines or JSON table with one image file per row and its labels, the layout of 🤗 datasets'
`metadata.csv` / `metadata.jsonl` (a `file_name` column) and of CheXpert-, ISIC- and NIH-style label files.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence

import datasets
import numpy as np

from .joint_dataset import MULTI_LABEL, label_feature
from .label_masking import unlabel_partial_rows

FILE_COLUMNS = ("file_name", "image", "path", "filename")
MISSING = ("", "nan", "none", "null", "na", "n/a")
POSITIVE = ("1", "1.0", "true", "yes")
NEGATIVE = ("0", "0.0", "false", "no")
UNLABELED = ("-1", "-1.0")


def _json_rows(path: str) -> list:
    """A `.json` manifest: a JSON array of row objects, else JSON Lines (what `.json` files were read as first)."""
    with open(path, encoding="utf-8-sig") as f:
        text = f.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return _json_lines_rows(path)  # several lines of objects ("Extra data"), or invalid: reported line by line
    return data if isinstance(data, list) else [data]  # one object: a one-row JSON Lines file


def _json_lines_rows(path: str) -> list:
    rows = []
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(
                        f"Line {number} of {path} is not valid JSON: {error}. Expected {_JSON_LAYOUT}."
                    ) from error
    return rows


_JSON_LAYOUT = (
    'JSON Lines, one object per line such as {"file_name": "a.png", "label": 1} (or, for a .json file, a JSON array '
    "of such objects)"
)


def read_table(path: str | os.PathLike) -> list[dict]:
    """
    The rows of a `.csv` (or `.tsv`), `.jsonl` (JSON Lines) or `.json` file (a JSON array of objects, or JSON Lines)
    as dicts; empty CSV cells are `""`.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"Expected an existing label manifest, got {path!r} which does not exist.")
    lower = path.lower()
    if lower.endswith((".jsonl", ".json")):
        rows = _json_rows(path) if lower.endswith(".json") else _json_lines_rows(path)
        for number, row in enumerate(rows, start=1):
            if not isinstance(row, dict):
                raise ValueError(
                    f"Expected row {number} of {path} to be a JSON object of columns, got {type(row).__name__} "
                    f"{str(row)[:80]}. Expected {_JSON_LAYOUT}."
                )
        return rows
    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f, delimiter="\t" if lower.endswith(".tsv") else ","))


SPLIT_COLUMN = "split"
EVAL_SPLITS = ("test", "validation", "val", "valid")


def split_rows(
    rows: Sequence[dict], eval_split: str | None = None, where: str = "the manifest"
) -> tuple[list[dict], list[dict] | None, str | None]:
    """
    Partition manifest rows by their `split` column, if any: `train` rows for training and `eval_split` (default: the
    first of `test`, `validation`, `val`, `valid` present) for evaluation.

    Returns:
        `(train_rows, eval_rows or None, eval_split or None)`; without a `split` column, all rows train.
    """
    if not rows or SPLIT_COLUMN not in rows[0]:
        if eval_split is not None:
            raise ValueError(
                f"Got `eval_split={eval_split!r}` but {where} has no {SPLIT_COLUMN!r} column: drop it to hold out "
                "part of the rows, or add the column (train / test values)."
            )
        return list(rows), None, None
    names = sorted({str(row.get(SPLIT_COLUMN) or "").strip() for row in rows})
    if "train" not in names:
        raise ValueError(f"Expected 'train' rows in the {SPLIT_COLUMN!r} column of {where}, got values {names}.")
    if eval_split is None:
        eval_split = next((s for s in EVAL_SPLITS if s in names), None)
    elif eval_split not in names:
        raise ValueError(f"Expected {eval_split!r} rows in the {SPLIT_COLUMN!r} column of {where}, got {names}.")
    unknown = [n for n in names if n not in ("train", eval_split)]
    if unknown:
        raise ValueError(
            f"Expected the {SPLIT_COLUMN!r} column of {where} to hold 'train' and one evaluation split, got also "
            f"{unknown}. Pick the evaluation split with --eval_split, and remove the other rows."
        )
    pick = {name: [row for row in rows if str(row.get(SPLIT_COLUMN) or "").strip() == name] for name in names}
    return pick["train"], pick.get(eval_split), eval_split


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value) or str(value).strip().lower() in MISSING


def _binary(value, column: str, where: str) -> int:
    """One multi-label cell: 1, 0, or -1 for a missing cell or -1 (unlabeled / uncertain)."""
    if _is_missing(value):
        return -1
    text = str(value).strip().lower()
    for codes, result in ((POSITIVE, 1), (NEGATIVE, 0), (UNLABELED, -1)):
        if text in codes:
            return result
    raise ValueError(
        f"Expected 0 / 1 (or empty for unlabeled) in the label column {column!r}, got {value!r} at {where}. "
        "Several --label_column flags make a multi-label problem with one 0/1 column per finding."
    )


def _single(value):
    """
    One single-label cell: `None` when missing or -1 (unlabeled), an int when it reads as one (`1`, `"1"`, `1.0` or
    `"1.0"`, as pandas writes an integer column with missing values), so that classes sort as numbers; else the text.
    """
    if _is_missing(value):
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        text = str(value).strip()
        try:
            value = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return text
            if not number.is_integer():
                return text
            value = int(number)
    # before any conversion to strings: -1 among class names would otherwise become a class "-1"
    return None if value == -1 else value


def manifest_splits(
    rows: Sequence[dict],
    base_dir: str,
    label_columns: Sequence[str],
    image_column: str | None = None,
    where: str = "the manifest",
) -> tuple[list[str], list]:
    """
    Absolute image paths and raw labels of manifest rows.

    Args:
        rows (`Sequence[dict]`):
            The rows ([`read_table`]).
        base_dir (`str`):
            Relative file names are relative to this folder (the manifest's own folder).
        label_columns (`Sequence[str]`):
            One column (single-label: any values, class names are the sorted values) or several (multi-label: one 0/1
            column per finding). Empty cells mean unlabeled.
        image_column (`str`, *optional*):
            The column of file names; defaults to the first of `file_name`, `image`, `path`, `filename`.
        where (`str`, *optional*):
            How error messages name the table.

    Returns:
        `tuple[list[str], list]`: the paths, and one label per row (`None` for unlabeled) or one row of 0/1/-1 per row
        (a row with any finding unknown is all -1, see [`~data.label_masking.unlabel_partial_rows`]).
    """
    if len(rows) == 0:
        raise ValueError(f"Expected at least one row in {where}, got none.")
    columns = list(rows[0].keys())
    candidates = [image_column] if image_column else list(FILE_COLUMNS)
    file_column = next((c for c in candidates if c in columns), None)
    if file_column is None:
        raise ValueError(
            f"Expected a column of image file names ({' or '.join(map(repr, candidates))}) in {where}, got columns "
            f"{columns}. Pass --image_column with its name."
        )
    missing = [c for c in label_columns if c not in columns]
    if missing:
        raise ValueError(
            f"Expected the label column(s) {missing} in {where}, which has columns {columns}. Pass --label_column "
            "once per label column."
        )
    paths, labels = [], []
    for number, row in enumerate(rows, start=1 if where.lower().endswith((".jsonl", ".json")) else 2):
        name = row.get(file_column)
        if _is_missing(name):
            raise ValueError(f"Row {number} of {where} has no file name in column {file_column!r}.")
        paths.append(os.path.normpath(os.path.join(base_dir, str(name))))
        if len(label_columns) == 1:
            labels.append(_single(row.get(label_columns[0])))
        else:
            labels.append([_binary(row.get(c), c, f"row {number} of {where}") for c in label_columns])
    if len(label_columns) > 1:
        labels = unlabel_partial_rows(np.asarray(labels), where).tolist()
    return paths, labels


def multi_label_dataset(paths: list[str], labels: list[list[int]], label_names: list[str]) -> datasets.Dataset:
    """A split of image paths and multi-label rows (names: the label columns)."""
    features = datasets.Features({"image": datasets.Value("string"), "label": label_feature(label_names, MULTI_LABEL)})
    return datasets.Dataset.from_dict({"image": paths, "label": labels}, features)


def raw_label_dataset(paths: list[str], labels: list) -> datasets.Dataset:
    """A split of image paths and raw single labels (ints or strings, `None` for unlabeled), to be normalised."""
    kinds = {type(v) for v in labels if v is not None}
    if len(kinds) > 1:  # mixed ints and names: keep them all as names
        labels = [None if v is None else str(v) for v in labels]
        kinds = {str}
    value = datasets.Value("int64") if kinds == {int} else datasets.Value("string")
    features = datasets.Features({"image": datasets.Value("string"), "label": value})
    return datasets.Dataset.from_dict({"image": paths, "label": labels}, features)
