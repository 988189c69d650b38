# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Reading image files as viewers show them, or refusing what would be read wrong."""

import numpy as np
import PIL.Image

from diffusers_joint.data import image_to_array, read_image


def test_an_exif_orientation_is_applied_to_files_and_pil_images(tmp_path):
    upright = np.zeros((32, 16), np.uint8)
    upright[:8] = 255  # a bright band at the top
    stored = np.rot90(upright, k=1)  # as a phone stores it: sideways, with Orientation 6 ("rotate 90 clockwise")
    image = PIL.Image.fromarray(np.ascontiguousarray(stored))
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=100)
    pixels, _ = read_image(tmp_path / "phone.jpg")
    assert pixels.shape == (32, 16, 1) and pixels[:8].mean() > 250 and pixels[8:].mean() < 5
    with PIL.Image.open(tmp_path / "phone.jpg") as opened:
        np.testing.assert_array_equal(image_to_array(opened)[0], pixels)
