# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Full-range intensities: 8 / 16-bit, signed and float images keep their values, and every normalisation mode."""

import numpy as np
import PIL.Image
import pytest
import torch

from diffusers_joint.data import ImagePreprocessor, ImageReadError, image_to_tensor
from diffusers_joint.data.intensity import IntensityNormalization


def test_16_bit_copies_of_8_bit_images_give_the_same_tensor(digits, tmp_path):
    images, _ = digits
    image8 = images[0]  # a real digit, 0-255
    image16 = image8.astype(np.uint16) * 257
    PIL.Image.fromarray(image16).save(tmp_path / "x16.png")
    PIL.Image.fromarray(image16).save(tmp_path / "x16.tif")
    np.save(tmp_path / "x16.npy", image16)
    preprocessor = ImagePreprocessor(16, 1)
    expected = preprocessor(image8)
    assert len(expected.unique()) > 2  # the bug this guards against: 16-bit images collapsed to -1 / 1
    for image in (image16, PIL.Image.fromarray(image16), tmp_path / "x16.png", str(tmp_path / "x16.tif"),
                  tmp_path / "x16.npy"):  # fmt: skip
        torch.testing.assert_close(preprocessor(image), expected, atol=1e-6, rtol=0)


def test_float_dtypes_use_their_full_range():
    floats = np.array([[0.0, 0.25], [0.5, 1.0]], dtype=np.float32)
    torch.testing.assert_close(image_to_tensor(floats, 1)[0], torch.from_numpy(floats))


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint32", "uint64"])
def test_wide_integer_images_of_0_255_are_read_as_8_bit(dtype, tmp_path):
    # np.arange and np.array(list) give int64: their full range made a constant image
    image8 = np.random.default_rng(0).integers(0, 128 if dtype == "int8" else 256, (8, 8)).astype(np.uint8)
    np.save(tmp_path / "x.npy", image8.astype(dtype))
    expected = image_to_tensor(image8, 1)
    torch.testing.assert_close(image_to_tensor(image8.astype(dtype), 1), expected)
    torch.testing.assert_close(image_to_tensor(tmp_path / "x.npy", 1), expected)


@pytest.mark.parametrize("dtype", ["int16", "int32", "int64"])
def test_wide_integer_images_beyond_0_255_raise_unless_another_normalisation_is_chosen(dtype, tmp_path):
    hu = np.array([[-1000, -200], [40, 3000]], dtype=dtype)  # CT in Hounsfield units
    np.save(tmp_path / "ct.npy", hu)
    match = rf"dtype {dtype} with values -1000\.\.3000.*--intensity_normalization window"
    with pytest.raises(ValueError, match=match):
        image_to_tensor(hu, 1)
    with pytest.raises(ImageReadError, match=rf"ct\.npy.*{match}"):
        image_to_tensor(tmp_path / "ct.npy", 1)
    window = IntensityNormalization("window", (-200, 200))
    expected = torch.tensor([[[0.0, 0.0], [0.6, 1.0]]])
    torch.testing.assert_close(image_to_tensor(hu, 1, window), expected)
    torch.testing.assert_close(image_to_tensor(tmp_path / "ct.npy", 1, window), expected)


def test_values_outside_the_dtype_range_raise_instead_of_being_clipped():
    with pytest.raises(ValueError, match=r"-0.5\.\.2.*outside the nominal range 0\.\.1.*minmax, percentile or window"):
        image_to_tensor(np.array([[-0.5, 2.0]], dtype=np.float32), 1)


def test_minmax_percentile_and_window():
    hu = np.array([[-1000, -200], [40, 3000]], dtype=np.int16)
    minmax = image_to_tensor(hu, 1, IntensityNormalization("minmax"))[0]
    torch.testing.assert_close(minmax, torch.tensor([[0.0, 0.2], [0.26, 1.0]]))
    window = image_to_tensor(hu, 1, IntensityNormalization("window", (-200, 200)))[0]
    torch.testing.assert_close(window, torch.tensor([[0.0, 0.0], [0.6, 1.0]]))
    ramp = np.arange(1000, dtype=np.uint16).reshape(25, 40)
    clipped = image_to_tensor(ramp, 1, IntensityNormalization("percentile", (10, 90)))[0]
    assert clipped.min() == 0 and clipped.max() == 1
    assert (clipped == 0).sum() == (clipped == 1).sum() == 100  # the 10% tails, and only them, are clipped
    constant = image_to_tensor(np.full((4, 4), 7, np.uint16), 1, IntensityNormalization("minmax"))
    assert (constant == 0).all()


@pytest.mark.parametrize(
    "flag, expected",
    [
        (None, IntensityNormalization()),
        (["minmax"], IntensityNormalization("minmax")),
        (["percentile"], IntensityNormalization("percentile", (0.5, 99.5))),
        (["percentile", "1", "99"], IntensityNormalization("percentile", (1, 99))),
        (["window", "-1000", "400"], IntensityNormalization("window", (-1000, 400))),
    ],
)
def test_flag_parsing(flag, expected):
    assert IntensityNormalization.from_args(flag) == expected


@pytest.mark.parametrize(
    "flag, message",
    [
        (["window"], "needs a window LOW HIGH"),
        (["window", "400", "-1000"], "LOW < HIGH"),
        (["percentile", "1", "101"], r"within \[0, 100\]"),
        (["minmax", "0", "1"], "takes no range"),
        (["clahe"], "Expected an intensity normalisation in"),
        (["window", "a", "b"], "Expected numbers LOW HIGH"),
        (["window", "1"], r"MODE \[LOW HIGH\]"),
    ],
)
def test_bad_flags_raise(flag, message):
    with pytest.raises(ValueError, match=message):
        IntensityNormalization.from_args(flag)


@pytest.mark.parametrize(
    "image, message",
    [
        (PIL.Image.new("RGBA", (4, 4)), "alpha channel"),
        (PIL.Image.new("P", (4, 4)), "palette image"),
        (np.zeros((5, 6, 7), np.uint16), "a 3-D volume"),
        (np.zeros((2, 5, 6, 7), np.uint16), "a 3-D volume"),
        (np.zeros((4, 4, 4), np.uint8), "RGBA"),
        (np.zeros((4, 4, 2), np.uint8), "2 channels, expected 1 or 3"),
        (np.array([[np.nan, 0.0]]), "NaN or infinite"),
    ],
)
def test_unexpected_channels_and_dimensions_raise(image, message):
    with pytest.raises(ValueError, match=message):
        image_to_tensor(image, 1)


def test_the_flag_is_checked_when_parsing(capsys):
    import argparse

    from diffusers_joint.data import add_data_source_arguments, intensity_normalization_from_args

    parser = argparse.ArgumentParser()
    add_data_source_arguments(parser)
    args = parser.parse_args(["--intensity_normalization", "window", "-1000", "400", "--label_column", "a",
                              "--label_column", "b"])  # fmt: skip
    assert intensity_normalization_from_args(args) == IntensityNormalization("window", (-1000, 400))
    assert args.label_column == ["a", "b"]
    assert intensity_normalization_from_args(parser.parse_args([])) == IntensityNormalization()
    with pytest.raises(SystemExit):
        parser.parse_args(["--intensity_normalization", "window"])
    assert "needs a window LOW HIGH" in capsys.readouterr().err


def test_8_bit_inputs_give_the_tensors_of_the_8_bit_only_preprocessing(digits, tmp_path):
    """Pipelines saved before full-range support see the same inputs: PIL's own L / RGB conversion, arrays / 255."""
    rng = np.random.RandomState(0)
    rgb = rng.randint(0, 256, size=(8, 8, 3)).astype(np.uint8)
    gray = digits[0][0]

    def old(image, channels):  # the preprocessing before 16-bit support, for 8-bit inputs
        if isinstance(image, PIL.Image.Image):
            array = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.float32) / 255.0
        else:
            array = image.astype(np.float32) / 255.0
            if array.ndim == 3 and channels == 1:
                return torch.from_numpy(array).permute(2, 0, 1).mean(dim=0, keepdim=True)
        tensor = torch.from_numpy(array)
        return tensor[None].expand(channels, -1, -1) if tensor.ndim == 2 else tensor.permute(2, 0, 1)

    for image in (PIL.Image.fromarray(rgb), PIL.Image.fromarray(gray), rgb, gray):
        for channels in (1, 3):
            torch.testing.assert_close(image_to_tensor(image, channels), old(image, channels), atol=0, rtol=0)
    PIL.Image.fromarray(rgb).save(tmp_path / "rgb.png")
    torch.testing.assert_close(image_to_tensor(tmp_path / "rgb.png", 1), old(PIL.Image.fromarray(rgb), 1))
