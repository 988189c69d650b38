"""The pointing game and the IoU of the top-changed pixels, on hand-made heat maps and masks."""

import numpy as np
import pytest
import torch

from diffusers_joint.evaluation import pointing_game, top_change_iou


def masks_and_maps():
    masks = np.zeros((3, 4, 4), dtype=bool)
    masks[0, 0, 0:2] = True  # 2 pixels, top left
    masks[1, 2:4, 2:4] = True  # 4 pixels, bottom right
    masks[2, 1, 1] = True  # 1 pixel
    heat = np.zeros((3, 4, 4))
    heat[0, 0, 1], heat[0, 3, 3] = 5.0, 1.0  # peak inside; top 2 = {(0,1), (3,3)}: IoU 1/3
    heat[1, 0, 0], heat[1, 3, 3], heat[1, 2, 2] = 9.0, 8.0, 7.0  # peak outside; top 4 hold 2 mask pixels: IoU 2/6
    heat[2, 1, 1] = 2.0  # perfect
    return heat, masks


def test_pointing_game_counts_peaks_inside_the_mask():
    heat, masks = masks_and_maps()
    assert pointing_game(heat, masks) == pytest.approx(2 / 3)
    # torch, (N, C, H, W) maps averaged over channels, (N, 1, H, W) masks
    heat_rgb = torch.tensor(heat)[:, None].repeat(1, 3, 1, 1)
    assert pointing_game(heat_rgb, torch.tensor(masks)[:, None]) == pytest.approx(2 / 3)


def test_pointing_game_ties_go_to_the_first_maximum():
    masks = np.zeros((2, 2, 2), dtype=bool)
    masks[0, 0, 0] = True
    masks[1, 1, 1] = True
    flat = np.ones((2, 2, 2))  # every pixel ties: the first, (0, 0), is the peak
    assert pointing_game(flat, masks) == 0.5


def test_top_change_iou_takes_the_mask_area_by_default_or_a_fraction():
    heat, masks = masks_and_maps()
    # image 1: its 4 highest pixels are (0,0), (3,3), (2,2) and the first tied zero (0,1): 2 of them in the mask
    assert top_change_iou(heat, masks) == pytest.approx((1 / 3 + 2 / 6 + 1) / 3)
    # fraction 1/16: one pixel each, the peak: IoU 1/2, 0, 1
    assert top_change_iou(heat, masks, fraction=1 / 16) == pytest.approx((1 / 2 + 0 + 1) / 3)
    # all pixels: the mask's share of the image
    assert top_change_iou(heat, masks, fraction=1.0) == pytest.approx((2 / 16 + 4 / 16 + 1 / 16) / 3)
    perfect = masks.astype(float)
    assert top_change_iou(perfect, masks) == 1.0 and pointing_game(perfect, masks) == 1.0


@pytest.mark.parametrize(
    "heat, masks, message",
    [
        (np.zeros((2, 4, 4)), np.zeros((2, 4, 4), bool), "non-empty mask"),
        (np.zeros((2, 4, 4)), np.ones((2, 3, 3), bool), "same size"),
        (np.zeros((4, 4)), np.ones((4, 4), bool), "Expected heat maps"),
        (np.full((1, 2, 2), np.nan), np.ones((1, 2, 2), bool), "finite"),
    ],
)
def test_bad_inputs_are_refused(heat, masks, message):
    with pytest.raises(ValueError, match=message):
        pointing_game(heat, masks)
    with pytest.raises(ValueError, match="fraction"):
        top_change_iou(np.zeros((1, 2, 2)), np.ones((1, 2, 2), bool), fraction=0)
