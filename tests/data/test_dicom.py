# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""DICOM reading on pydicom's own test files: rescale, window, MONOCHROME1, clear errors for unusable files."""

import builtins
import warnings

import numpy as np
import pytest

from diffusers_joint.data import ImageReadError, image_to_tensor, read_image
from diffusers_joint.data.dicom import read_dicom
from diffusers_joint.data.intensity import IntensityNormalization

pydicom = pytest.importorskip("pydicom", reason="DICOM support is the `dicom` extra: pip install -e '.[dicom]'")
from pydicom.data import get_testdata_file  # noqa: E402


def _testfile(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns when it cannot reach its download mirror
        path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"pydicom's test file {name} is not installed")
    return path


def test_ct_rescale_slope_and_intercept_give_hounsfield_units():
    path = _testfile("CT_small.dcm")
    ds = pydicom.dcmread(path)
    values, value_range = read_dicom(path)
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(values[..., 0], expected)
    assert value_range == (-32768 - 1024, 32767 - 1024)  # signed 16 bits stored, shifted by the intercept
    window = image_to_tensor(path, 1, IntensityNormalization("window", (-160, 240)))[0].numpy()
    np.testing.assert_allclose(window, np.clip((expected + 160) / 400, 0, 1), atol=1e-6)


def test_the_files_window_is_applied_for_the_default_normalisation_only():
    path = _testfile("MR_small.dcm")
    ds = pydicom.dcmread(path)
    windowed, windowed_range = read_dicom(path)
    raw, raw_range = read_dicom(path, apply_voi=False)
    np.testing.assert_array_equal(raw[..., 0], ds.pixel_array)
    np.testing.assert_array_equal(windowed[..., 0], pydicom.pixels.apply_windowing(ds.pixel_array.astype(float), ds))
    assert not np.array_equal(windowed, raw) and windowed_range == raw_range == (-32768, 32767)
    minmax = image_to_tensor(path, 1, IntensityNormalization("minmax"))[0].numpy()
    np.testing.assert_allclose(minmax, (raw[..., 0] - raw.min()) / np.ptp(raw), atol=1e-6)  # modality units


def test_monochrome1_is_inverted(tmp_path):
    ds = pydicom.dcmread(_testfile("MR_small.dcm"))
    monochrome2 = image_to_tensor(_testfile("MR_small.dcm"), 1)
    ds.PhotometricInterpretation = "MONOCHROME1"  # same pixels, white is low
    ds.save_as(tmp_path / "inverted.dcm")
    torch_inverted = image_to_tensor(str(tmp_path / "inverted.dcm"), 1)
    np.testing.assert_allclose(torch_inverted.numpy(), 1 - monochrome2.numpy(), atol=1e-6)


def test_rgb_dicom_is_read_as_colour():
    values, value_range = read_image(_testfile("examples_rgb_color.dcm"))
    assert values.shape == (240, 320, 3) and values.dtype == np.uint8 and value_range == (0, 255)


@pytest.mark.parametrize(
    "name, reason",
    [
        ("MR_truncated.dcm", "less than expected"),
        ("rtdose.dcm", "got 15 frames \\(a volume\\)"),
        ("examples_palette.dcm", "PALETTE COLOR"),
    ],
)
def test_unusable_files_raise_with_their_path(name, reason):
    with pytest.raises(ImageReadError, match=rf"{name}: .*{reason}"):
        read_image(_testfile(name))


def test_a_missing_pydicom_names_the_install_command(monkeypatch):
    real_import = builtins.__import__

    def no_pydicom(name, *args, **kwargs):
        if name.startswith("pydicom"):
            raise ImportError("No module named 'pydicom'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pydicom)
    with pytest.raises(ImportError, match=r'pip install "diffusers-joint\[dicom\]"'):
        read_image(_testfile("CT_small.dcm"))


def test_a_dicom_file_without_extension_is_read_by_its_preamble(tmp_path):
    # PACS exports are often named by their UID alone: PIL said "cannot identify image file"
    source = _testfile("CT_small.dcm")
    renamed = tmp_path / "1.2.840.113619.2.1"
    renamed.write_bytes(open(source, "rb").read())
    (expected, expected_range), (pixels, value_range) = read_image(source), read_image(renamed)
    np.testing.assert_array_equal(pixels, expected)
    assert value_range == expected_range
