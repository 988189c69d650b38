# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""`IntensityNormalization`: how image intensities are mapped to [0, 1] (then to the model's [-1, 1])."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .image_reading import ValueRange, dtype_range
from .joint_dataset import full_range_dtype

INTENSITY_MODES = ("dtype", "minmax", "percentile", "window")
DEFAULT_PERCENTILES = (0.5, 99.5)
_INTEGER_ADVICE = (
    "Their dtype's full range would make a near-constant image: choose --intensity_normalization window LOW HIGH "
    "(e.g. CT in Hounsfield units), minmax or percentile, or store them as uint8 / uint16"
)


def _is_other_integer(dtype: np.dtype) -> bool:
    """An integer dtype other than `uint8` / `uint16`, whose full range is not an image's range."""
    return np.issubdtype(dtype, np.integer) and dtype not in (np.uint8, np.uint16)


class IntensityNormalization:
    """
    Map an image's intensities to [0, 1].

    - `"dtype"` (default): the nominal range of the stored values, so 0-255 for 8-bit images, 0-65535 for 16-bit
      ones, [0, 1] for float images, the Bits Stored range (or VOI output range) for DICOM. A 16-bit copy of an 8-bit
      image (pixels x 257) gives the same result. Values outside the nominal range raise an error (nothing is clipped
      silently): pick one of the other modes for such data. Numpy images (`.npy` / `.npz` files, arrays) of other
      integer dtypes (`int64`, `int32`, `int16`...) are read as 8-bit when they hold only 0-255, as the MedMNIST
      `.npz` loader reads them, and raise an error otherwise (their dtype's range would make them a near-constant
      image).
    - `"minmax"`: each image's own minimum and maximum (a constant image maps to 0).
    - `"percentile"`: each image's `low` and `high` percentiles (default 0.5 and 99.5), values beyond them clipped.
    - `"window"`: a fixed window `[low, high]` in the stored units (for example Hounsfield units for CT), values
      beyond it clipped.

    Args:
        mode (`str`, *optional*, defaults to `"dtype"`):
            One of `"dtype"`, `"minmax"`, `"percentile"`, `"window"`.
        value_range (`tuple[float, float]`, *optional*):
            The percentiles (`"percentile"`, default `(0.5, 99.5)`) or the window (`"window"`, required).
    """

    def __init__(self, mode: str = "dtype", value_range: Sequence[float] | None = None):
        if mode not in INTENSITY_MODES:
            raise ValueError(f"Expected an intensity normalisation in {INTENSITY_MODES}, got {mode!r}.")
        if mode in ("dtype", "minmax") and value_range is not None:
            raise ValueError(f"The {mode!r} intensity normalisation takes no range, got {list(value_range)}.")
        if mode == "percentile" and value_range is None:
            value_range = DEFAULT_PERCENTILES
        if mode == "window" and value_range is None:
            raise ValueError("The 'window' intensity normalisation needs a window LOW HIGH, e.g. 'window -1000 400'.")
        if value_range is not None:
            value_range = tuple(float(v) for v in value_range)
            if len(value_range) != 2 or not value_range[0] < value_range[1]:
                raise ValueError(f"Expected a range LOW HIGH with LOW < HIGH for {mode!r}, got {list(value_range)}.")
            if mode == "percentile" and not 0 <= value_range[0] < value_range[1] <= 100:
                raise ValueError(f"Expected percentiles within [0, 100], got {list(value_range)}.")
        self.mode = mode
        self.value_range = value_range

    @classmethod
    def from_args(cls, values: Sequence[str] | None) -> IntensityNormalization:
        """Parse the `--intensity_normalization MODE [LOW HIGH]` flag (`None` gives the default)."""
        if not values:
            return cls()
        mode, *bounds = values
        if bounds and len(bounds) != 2:
            raise ValueError(f"Expected --intensity_normalization MODE [LOW HIGH], got {' '.join(values)!r}.")
        try:
            numbers = [float(b) for b in bounds]
        except ValueError as error:
            raise ValueError(f"Expected numbers LOW HIGH after {mode!r}, got {bounds}.") from error
        return cls(mode, numbers or None)

    def to_config(self) -> dict:
        """The keyword arguments the pipelines save (`intensity_normalization`, `intensity_range`)."""
        return {
            "intensity_normalization": self.mode,
            "intensity_range": list(self.value_range) if self.value_range is not None else None,
        }

    @property
    def applies_file_voi(self) -> bool:
        """Whether a DICOM file's own VOI LUT / window is applied (only with the default `"dtype"` mode)."""
        return self.mode == "dtype"

    def __repr__(self) -> str:
        bounds = "" if self.value_range is None else f", value_range={self.value_range}"
        return f"IntensityNormalization({self.mode!r}{bounds})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IntensityNormalization) and (self.mode, self.value_range) == (
            other.mode,
            other.value_range,
        )

    def __call__(self, array: np.ndarray, nominal_range: ValueRange) -> np.ndarray:
        """Map `array` (any shape) to `float32` values in [0, 1]; `nominal_range` is used by `"dtype"` only."""
        dtype = np.asarray(array).dtype
        values = np.asarray(array, dtype=np.float64)
        if self.mode == "dtype":
            low, high = nominal_range
            found_low, found_high = float(values.min()), float(values.max())
            if _is_other_integer(dtype) and tuple(nominal_range) == dtype_range(dtype):
                # a numpy image of a wide or signed integer dtype (np.arange gives int64): its dtype's range would make
                # it a near-constant image, so it is 8-bit if it holds 0-255, as in .npz files, else refused
                full_range_dtype(dtype, (found_low, found_high), True, "the pixels", advice=_INTEGER_ADVICE)
                low, high = 0.0, 255.0
            if found_low < low or found_high > high:
                raise ValueError(
                    f"pixel values {found_low:g}..{found_high:g} are outside the nominal range {low:g}..{high:g} "
                    f"of the image's type, and would be clipped: choose --intensity_normalization minmax, "
                    f"percentile or window LOW HIGH"
                )
        elif self.mode == "minmax":
            low, high = float(values.min()), float(values.max())
        elif self.mode == "percentile":
            low, high = (float(v) for v in np.percentile(values, self.value_range))
        else:
            low, high = self.value_range
        if high <= low:  # a constant image
            return np.zeros(values.shape, dtype=np.float32)
        return np.clip((values - low) / (high - low), 0.0, 1.0).astype(np.float32)
