# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Image grids people can read: small images upscaled without blur, padded apart, rows labelled with class names."""

from __future__ import annotations

from collections.abc import Sequence

import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont

# Cells smaller than this are upscaled by a whole factor (an 8x8 digit becomes 64x64, a 28x28 X-ray 84x84).
DEFAULT_MIN_CELL_SIZE = 64
BACKGROUND = (255, 255, 255)
TEXT_COLOR = (0, 0, 0)


def upscale_image(image: PIL.Image.Image, min_size: int = DEFAULT_MIN_CELL_SIZE) -> PIL.Image.Image:
    """
    Enlarge `image` by the smallest whole factor that makes its shorter side at least `min_size` pixels, with
    nearest-neighbour resampling, so that every model pixel stays a sharp square (no interpolated detail the model did
    not produce). Images already that large are returned unchanged.
    """
    if not isinstance(min_size, int) or min_size < 1:
        raise ValueError(f"`min_size` must be a positive integer, got {min_size!r}.")
    factor = max(1, -(-min_size // min(image.size)))  # ceiling division
    if factor == 1:
        return image
    return image.resize((image.width * factor, image.height * factor), PIL.Image.NEAREST)


def _font(size: int) -> PIL.ImageFont.ImageFont:
    try:
        return PIL.ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: a scalable font
    except TypeError:  # older Pillow: the fixed bitmap font
        return PIL.ImageFont.load_default()


def labelled_image_grid(
    images: Sequence[PIL.Image.Image],
    rows: int,
    row_labels: Sequence[str] | None = None,
    min_cell_size: int = DEFAULT_MIN_CELL_SIZE,
    padding: int = 4,
    font_size: int = 14,
) -> PIL.Image.Image:
    """
    Arrange images in a grid of `rows` rows (row-major, as `diffusers.utils.make_image_grid`), upscaled with
    [`upscale_image`], with `padding` white pixels around and between the cells and, optionally, each row's label
    written to its left.

    Args:
        images (`list[PIL.Image.Image]`):
            The images, all of the same size; `len(images)` must be a multiple of `rows`.
        rows (`int`):
            Number of rows.
        row_labels (`list[str]`, *optional*):
            One label per row (e.g. the class each row's samples were guided towards).
        min_cell_size (`int`, *optional*, defaults to 64):
            Minimum shorter side of a cell in pixels; small images are enlarged by a whole factor to reach it.
        padding (`int`, *optional*, defaults to 4):
            White pixels between cells and around the grid.
        font_size (`int`, *optional*, defaults to 14):
            Size of the row labels.

    Returns:
        `PIL.Image.Image`: an RGB image.

    Example:

    ```py
    >>> import PIL.Image
    >>> from diffusers_joint.pipelines import labelled_image_grid

    >>> digits = [PIL.Image.new("L", (8, 8), 128)] * 16
    >>> grid = labelled_image_grid(digits, rows=2, row_labels=["three", "seven"])
    >>> grid.mode, grid.height  # 2 rows of 64 px cells, 4 px apart and around
    ('RGB', 140)
    ```
    """
    images = list(images)
    if not isinstance(rows, int) or rows < 1 or not images or len(images) % rows:
        raise ValueError(f"Cannot arrange {len(images)} images in {rows!r} rows: give a positive divisor.")
    if len({image.size for image in images}) != 1:
        raise ValueError(f"All images must have the same size, got {sorted({image.size for image in images})}.")
    if row_labels is not None and len(row_labels) != rows:
        raise ValueError(f"Got {len(row_labels)} row labels for {rows} rows.")
    if padding < 0:
        raise ValueError(f"`padding` must be >= 0, got {padding}.")
    cols = len(images) // rows
    cells = [upscale_image(image, min_cell_size).convert("RGB") for image in images]
    cell_w, cell_h = cells[0].size
    font = _font(font_size)
    label_w = 0
    if row_labels is not None:
        measure = PIL.ImageDraw.Draw(PIL.Image.new("RGB", (1, 1)))
        label_w = max(measure.textbbox((0, 0), str(label), font=font)[2] for label in row_labels) + padding
    width = label_w + cols * cell_w + (cols + 1) * padding
    height = rows * cell_h + (rows + 1) * padding
    grid = PIL.Image.new("RGB", (width, height), BACKGROUND)
    draw = PIL.ImageDraw.Draw(grid)
    for index, cell in enumerate(cells):
        row, col = divmod(index, cols)
        grid.paste(cell, (label_w + padding + col * (cell_w + padding), padding + row * (cell_h + padding)))
    for row, label in enumerate(row_labels or []):
        top, bottom = draw.textbbox((0, 0), str(label), font=font)[1::2]
        middle = padding + row * (cell_h + padding) + cell_h / 2
        draw.text((padding, round(middle - (top + bottom) / 2)), str(label), fill=TEXT_COLOR, font=font)
    return grid
