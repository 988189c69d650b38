# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Reading image files as viewers show them, or refusing what would be read wrong."""

import struct
import zlib

import numpy as np
import PIL.Image
import pytest

from diffusers_joint.data import ImageReadError, image_to_array, read_image


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


def _png_16_bit_rgb(path, array):
    """A 48-bit PNG written by hand (PIL cannot write one)."""
    height, width, _ = array.shape
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)  # 16 bits, colour type 2 (RGB)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("grayscale", [False, True])
def test_16_bit_colour_pngs_are_refused_rather_than_cut_to_8_bits(tmp_path, grayscale):
    levels = (np.arange(64).reshape(8, 8) * 1000).astype(np.uint16)
    _png_16_bit_rgb(tmp_path / "rgb16.png", np.stack([levels] * 3, axis=-1))
    with pytest.raises(ImageReadError, match=r"rgb16\.png: it is a 16-bit-per-channel colour image.*16-bit grayscale"):
        read_image(tmp_path / "rgb16.png", grayscale=grayscale)
    with PIL.Image.open(tmp_path / "rgb16.png") as opened, pytest.raises(ValueError, match="16-bit-per-channel"):
        image_to_array(opened)
