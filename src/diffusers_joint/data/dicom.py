# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Read DICOM images with pydicom (the `dicom` extra): Rescale Slope / Intercept (or the Modality LUT), the file's VOI LUT
or window, MONOCHROME1 inverted. Only pixels leave this module: no tag (patient name, ID, dates) is logged or returned.
"""

from __future__ import annotations

import os

import numpy as np

from .image_reading import ValueRange, check_image_array

INSTALL_HINT = 'Reading DICOM needs pydicom: pip install "diffusers-joint[dicom]" (or pip install pydicom).'


def _pydicom():
    try:
        import pydicom
        import pydicom.pixels
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return pydicom


def _stored_range(ds) -> ValueRange:
    bits = int(ds.BitsStored)
    if int(ds.get("PixelRepresentation", 0)) == 0:
        return 0.0, float(2**bits - 1)
    return float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)


def _modality_range(ds, stored: ValueRange) -> ValueRange:
    """The range of the stored values after the Modality LUT or Rescale Slope / Intercept."""
    if ds.get("ModalityLUTSequence"):
        return 0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    low, high = stored[0] * slope + intercept, stored[1] * slope + intercept
    return (min(low, high), max(low, high))


def read_dicom(path: str | os.PathLike, apply_voi: bool = True) -> tuple[np.ndarray, ValueRange]:
    """
    Read one single-frame DICOM image.

    Grayscale images (`MONOCHROME1` / `MONOCHROME2`) go through the Modality LUT or Rescale Slope / Intercept (CT in
    Hounsfield units, for example), then, with `apply_voi`, through the file's VOI LUT or its first Window Center /
    Width; `MONOCHROME1` (white is low) is inverted so that high values are bright, as in `MONOCHROME2`. Colour images
    are returned as RGB.

    Args:
        path (`str` or `os.PathLike`):
            The DICOM file.
        apply_voi (`bool`, *optional*, defaults to `True`):
            Apply the file's VOI LUT or window. Without one in the file, or with `apply_voi=False`, the values stay in
            modality units.

    Returns:
        `tuple[np.ndarray, tuple[float, float]]`: the pixels `(H, W, C)` (`float64` for grayscale) and their nominal
        range: the VOI output range when it was applied, else the Bits Stored range after rescaling (0-4095 for
        12-bit data, for example).
    """
    pydicom = _pydicom()
    from pydicom.pixels import apply_modality_lut, apply_windowing
    from pydicom.pixels import apply_voi as apply_voi_lut

    ds = pydicom.dcmread(os.fspath(path))
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise ValueError("the DICOM file has no pixel data (a structured report or presentation state?)")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ValueError(
            f"expected a single-frame image, got {frames} frames (a volume): export one 2-D slice per file"
        )
    pixels = ds.pixel_array  # raises for truncated pixel data or a compressed syntax without its decoder
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if not photometric.startswith("MONOCHROME"):
        # pydicom converts YBR to RGB by default; palette colour would give indices
        if photometric == "PALETTE COLOR":
            raise ValueError("it is a PALETTE COLOR DICOM, whose pixel values are colour indices: export it as RGB")
        return check_image_array(pixels), (0.0, float(2 ** int(ds.BitsStored) - 1))

    value_range = _modality_range(ds, _stored_range(ds))
    values = apply_modality_lut(pixels, ds).astype(np.float64)
    if apply_voi and ds.get("VOILUTSequence"):
        values = apply_voi_lut(values, ds)
        value_range = (0.0, float(2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1))
    elif apply_voi and "WindowCenter" in ds and "WindowWidth" in ds:
        # the windowing's output range: where it sends values far below and far above the window
        value_range = tuple(float(v) for v in apply_windowing(np.array([-1e30, 1e30]), ds))
        values = apply_windowing(values, ds)
    if photometric == "MONOCHROME1":
        values = value_range[0] + value_range[1] - values
    return check_image_array(values), value_range
