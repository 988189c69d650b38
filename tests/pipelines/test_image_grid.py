# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Readable sample grids: whole-factor upscaling, padding between cells, row labels, and clear errors."""

import numpy as np
import PIL.Image
import pytest

from diffusers_joint.pipelines import labelled_image_grid, upscale_image


def test_upscale_keeps_every_model_pixel_a_sharp_square():
    small = PIL.Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4, mode="L")
    big = upscale_image(small, 64)
    assert big.size == (64, 64)
    np.testing.assert_array_equal(np.asarray(big), np.kron(np.asarray(small), np.ones((8, 8), np.uint8)))
    assert upscale_image(small, 60).size == (64, 64)  # the smallest whole factor reaching 60
    large = PIL.Image.new("L", (100, 80))
    assert upscale_image(large, 64) is large  # already large enough: untouched
    with pytest.raises(ValueError, match="positive integer"):
        upscale_image(small, 0)


def test_grid_pads_upscales_and_places_cells_row_major():
    images = [PIL.Image.new("L", (8, 8), value) for value in (0, 50, 100, 150, 200, 250)]
    grid = labelled_image_grid(images, rows=2, padding=4)
    assert grid.mode == "RGB" and grid.size == (3 * 64 + 4 * 4, 2 * 64 + 3 * 4)
    pixels = np.asarray(grid)
    for index, value in enumerate((0, 50, 100, 150, 200, 250)):
        row, col = divmod(index, 3)
        top, left = 4 + row * 68, 4 + col * 68
        assert (pixels[top : top + 64, left : left + 64] == value).all()
    assert (pixels[:4] == 255).all() and (pixels[:, 68:72] == 255).all()  # white border and gaps between cells


def test_row_labels_are_written_left_of_their_rows():
    images = [PIL.Image.new("L", (8, 8), 0)] * 4
    plain = labelled_image_grid(images, rows=2)
    labelled = labelled_image_grid(images, rows=2, row_labels=["pneumonia", "normal"])
    label_width = labelled.width - plain.width
    assert label_width > 20 and labelled.height == plain.height
    column = np.asarray(labelled)[:, :label_width]
    first_row, second_row = column[4:68], column[72:136]
    assert (first_row < 128).any() and (second_row < 128).any()  # dark text beside each row
    np.testing.assert_array_equal(np.asarray(labelled)[:, label_width:], np.asarray(plain))


@pytest.mark.parametrize(
    "images, rows, labels, match",
    [
        ([PIL.Image.new("L", (8, 8))] * 5, 2, None, "Cannot arrange 5 images in 2 rows"),
        ([], 1, None, "Cannot arrange 0 images"),
        ([PIL.Image.new("L", (8, 8)), PIL.Image.new("L", (9, 9))], 1, None, "same size"),
        ([PIL.Image.new("L", (8, 8))] * 4, 2, ["a"], "1 row labels for 2 rows"),
    ],
)
def test_grid_rejects_inconsistent_input(images, rows, labels, match):
    with pytest.raises(ValueError, match=match):
        labelled_image_grid(images, rows=rows, row_labels=labels)
