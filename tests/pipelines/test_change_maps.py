# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Tests of the change maps of counterfactuals: localisation, edit region, heat maps and their overlay."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

import diffusers_joint.pipelines.pipeline_counterfactual as pipeline_module
from diffusers_joint.pipelines import change_localization, change_region, difference_heatmap, overlay_heatmap


def test_change_maps_stay_importable_from_the_package_and_the_pipeline_module():
    for function in (change_localization, change_region, difference_heatmap, overlay_heatmap):
        assert function.__module__ == "diffusers_joint.pipelines.change_maps"
        assert getattr(pipeline_module, function.__name__) is function


def test_difference_heatmap_colormap():
    diff = torch.zeros(2, 1, 2, 2)
    diff[0, 0, 0, 0] = 0.5
    diff[0, 0, 1, 1] = 0.25
    maps = [np.asarray(m) for m in difference_heatmap(diff)]
    assert maps[0][0, 0].tolist() == [255, 255, 255]  # largest change: white
    assert maps[0][0, 1].tolist() == [0, 0, 0]  # unchanged: black
    assert maps[0][1, 1].tolist() == [255, 128, 0]  # half the largest: orange
    assert maps[1].max() == 0  # no change anywhere: black, no division by zero
    absolute = np.asarray(difference_heatmap(diff, normalize=False)[0])
    assert absolute[0, 0].tolist() == [191, 0, 0]  # 0.5 of the full range 2


def test_change_localization_and_region():
    abs_difference = torch.zeros(3, 1, 10, 10)
    abs_difference[0, 0, 4, 4] = 1.0  # one pixel carries all the change
    abs_difference[1] = 0.3  # an even change: 80 of the 100 pixels carry 80 %
    localization = change_localization(abs_difference)
    np.testing.assert_allclose(localization.numpy(), [0.01, 0.8, 0.0], atol=1e-6)  # unchanged image: 0
    region = change_region(abs_difference, dilation=1)
    assert region[0, 0].sum() == 9 and region[0, 0, 3:6, 3:6].all()  # the pixel, grown by one
    assert region[2].all()  # nothing changed: nothing tells where to edit, so everything may change
    with pytest.raises(ValueError, match="mass"):
        change_localization(abs_difference, mass=0.0)


def test_overlay_shows_the_input_where_nothing_changed_and_the_heat_where_it_did():
    image = PIL.Image.fromarray(np.full((4, 4), 100, dtype=np.uint8), mode="L")
    abs_difference = np.zeros((1, 1, 4, 4), dtype=np.float32)
    abs_difference[0, 0, 0, 0] = 1.0
    heatmap = difference_heatmap(abs_difference)[0]
    overlay = np.asarray(overlay_heatmap(image, heatmap, opacity=0.8))
    assert overlay.shape == (4, 4, 3)
    assert (overlay[1:, :] == 100).all() and (overlay[0, 1:] == 100).all()  # unchanged pixels: the input as it is
    np.testing.assert_array_equal(overlay[0, 0], np.round(np.array([100.0] * 3) * 0.2 + 255 * 0.8))  # white heat
    with pytest.raises(ValueError, match=r"The image is \(8, 8\) but the heat map \(4, 4\)"):
        overlay_heatmap(image.resize((8, 8)), heatmap)
