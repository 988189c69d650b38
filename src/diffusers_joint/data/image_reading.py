# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
Read images with their real intensities: 8-bit, 16-bit and float PNG / TIFF / JPEG, numpy `.npy` / `.npz` arrays of
any integer or float dtype, and DICOM. Every reader returns the pixels and their *nominal range* (the range the
stored values can take: 0-255 for `uint8`, 0-65535 for `uint16`, the Bits Stored range of a DICOM file...), which the
default intensity normalisation maps to [0, 1].
"""

from __future__ import annotations

import os
import zipfile

import numpy as np
import PIL.Image
import PIL.ImageOps

# Extensions read with PIL (lossless and common lossy formats), with numpy, and with pydicom.
PIL_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
NUMPY_EXTENSIONS = (".npy", ".npz")
DICOM_EXTENSIONS = (".dcm", ".dicom")
IMAGE_EXTENSIONS = PIL_EXTENSIONS + NUMPY_EXTENSIONS + DICOM_EXTENSIONS

# PIL modes read as one channel, as three channels, and refused (what they hold would be lost or misread).
_GRAY_MODES = ("1", "L", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")
_COLOR_MODES = ("RGB",)
_REFUSED_MODES = {
    "RGBA": "it has an alpha channel, which would be dropped: convert it to 'RGB' or 'L' first",
    "LA": "it has an alpha channel, which would be dropped: convert it to 'L' first",
    "PA": "it is a palette image with alpha: convert it to 'RGB' or 'L' first",
    "P": "it is a palette image, whose pixel values are colour indices: convert it to 'RGB' or 'L' first",
    "CMYK": "it is a CMYK image: convert it to 'RGB' first",
}

ValueRange = tuple[float, float]
_EXIF_ORIENTATION = 0x0112


class ImageReadError(ValueError):
    """An image that cannot be read or used; `path` names it (or the row it came from) and `reason` says why."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"Cannot use the image {path}: {reason}")


def dtype_range(dtype: np.dtype) -> ValueRange:
    """The nominal range of a dtype: the full integer range, (0, 1) for booleans and floats (images in [0, 1])."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_ or np.issubdtype(dtype, np.floating):
        return (0.0, 1.0)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return (float(info.min), float(info.max))
    raise ValueError(f"expected integer, float or boolean pixels, got dtype {dtype}")


def check_image_array(array: np.ndarray) -> np.ndarray:
    """
    Check that `array` is one 2-D image, `(H, W)`, `(H, W, 1)` or `(H, W, 3)`, of finite numbers; return it as
    `(H, W, C)`. Raises a `ValueError` saying what was found otherwise (a volume, RGBA, an empty array...).
    """
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"expected numeric pixels, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3):
        if array.ndim == 3 and array.shape[-1] == 4:
            hint = " (4 channels: RGBA? drop the alpha channel first)"
        elif array.ndim == 3 and array.shape[-1] <= 4:
            hint = f" ({array.shape[-1]} channels, expected 1 or 3)"
        else:
            hint = " (a 3-D volume or a stack of images? pass one 2-D slice per image)"
        raise ValueError(
            f"expected one 2-D image of shape (H, W), (H, W, 1) or (H, W, 3), got shape {array.shape}{hint}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"expected a non-empty image, got shape {array.shape}")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ValueError(f"expected finite pixel values, but {int((~np.isfinite(array)).sum())} are NaN or infinite")
    return array


def pil_to_array(image: PIL.Image.Image, grayscale: bool = False) -> tuple[np.ndarray, ValueRange]:
    """
    A PIL image as an `(H, W, C)` array with its real values and nominal range. 16-bit modes (`I;16`) give `uint16`
    (0-65535); mode `I` (32-bit integers, what some readers give for 16-bit files) is taken as 0-65535 too; mode `F`
    gives `float32` taken as [0, 1]. With `grayscale`, RGB images are converted with PIL's ITU-R 601-2 luma (as
    PIL-based preprocessing always did for grayscale models). An EXIF Orientation tag (phone and camera JPEGs) is
    applied, so the image is upright as viewers and 🤗 datasets show it.
    """
    _check_not_16_bit_color(image)  # a PIL image opened but not loaded yet
    if image.getexif().get(_EXIF_ORIENTATION, 1) != 1:  # stored sideways or mirrored, meant to be shown turned
        image = PIL.ImageOps.exif_transpose(image)
    if grayscale and image.mode == "RGB":
        image = image.convert("L")
    mode = image.mode
    if mode in _REFUSED_MODES:
        raise ValueError(f"PIL mode {mode!r}: {_REFUSED_MODES[mode]}")
    if mode not in _GRAY_MODES + _COLOR_MODES:
        raise ValueError(f"unsupported PIL mode {mode!r}: expected a grayscale (L, I;16, I, F) or RGB image")
    if mode == "1":
        return check_image_array(np.asarray(image.convert("L"))), (0.0, 255.0)
    array = np.asarray(image)
    if mode.startswith("I;16"):
        array = array.astype(np.uint16)  # big-endian variants to native order
    value_range = (0.0, 65535.0) if mode == "I" else dtype_range(array.dtype)
    return check_image_array(array), value_range


def _raw_modes(image: PIL.Image.Image) -> list[str]:
    """How the file stores its pixels (`"RGB;16B"` for a 48-bit PNG), from PIL's tiles: known before `load()` only."""
    modes = []
    for tile in getattr(image, "tile", ()):  # images made in memory may have none
        args = tile.args
        modes.append(args if isinstance(args, str) else str(args[0]) if isinstance(args, tuple) and args else "")
    return modes


def _check_not_16_bit_color(image: PIL.Image.Image) -> None:
    if image.mode == "RGB" and any(mode.startswith("RGB;16") for mode in _raw_modes(image)):
        # PIL has no 16-bit colour mode: it would silently keep the top 8 bits of each channel
        raise ValueError(
            "it is a 16-bit-per-channel colour image, which is not supported (PIL reads only its top 8 bits): "
            "convert it to 16-bit grayscale or to 8-bit RGB"
        )


def _read_pil(path: str, grayscale: bool) -> tuple[np.ndarray, ValueRange]:
    with PIL.Image.open(path) as image:
        if getattr(image, "n_frames", 1) > 1:
            raise ValueError(f"expected one image, got a file of {image.n_frames} frames (a multi-page file?)")
        _check_not_16_bit_color(image)  # before `load()`, which forgets how the file stores its pixels
        image.load()  # decodes every byte now, so a truncated file fails here
        return pil_to_array(image, grayscale)


def _read_numpy(path: str) -> tuple[np.ndarray, ValueRange]:
    try:
        if path.lower().endswith(".npz"):
            with np.load(path, allow_pickle=False) as archive:
                if len(archive.files) != 1:
                    raise ValueError(
                        f"expected an .npz holding one array (the image), got arrays {sorted(archive.files)}"
                    )
                array = archive[archive.files[0]]
        else:
            array = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"the file is truncated or not a numpy file ({type(error).__name__}: {error})") from error
    return check_image_array(array), dtype_range(array.dtype)


def _has_dicom_preamble(path: str) -> bool:
    """Whether the file is DICOM by its content ("DICM" after the 128-byte preamble), as unnamed PACS exports are."""
    with open(path, "rb") as f:
        return f.read(132)[128:] == b"DICM"


def read_image(
    path: str | os.PathLike, apply_voi: bool = True, grayscale: bool = False
) -> tuple[np.ndarray, ValueRange]:
    """
    Read one image file with its real intensities.

    Args:
        path (`str` or `os.PathLike`):
            A PNG, TIFF, JPEG or BMP file (8 or 16 bits, 8 bits only for colour, or 32-bit float TIFF), a `.npy`
            file or an `.npz` holding one array (any integer or float dtype, read without pickle), or a DICOM file
            (`.dcm`, or any name with DICOM's "DICM" preamble, as PACS exports often have; needs pydicom).
        apply_voi (`bool`, *optional*, defaults to `True`):
            For DICOM, whether to apply the file's own VOI LUT or window (see [`~data.dicom.read_dicom`]).
        grayscale (`bool`, *optional*, defaults to `False`):
            Convert 8-bit RGB files read with PIL to one channel with PIL's luma (see [`pil_to_array`]).

    Returns:
        `tuple[np.ndarray, tuple[float, float]]`: the pixels `(H, W, C)` with `C` 1 or 3, in their stored dtype (a
        float array for rescaled DICOM), and their nominal range (for numpy files, the dtype's: see
        [`~data.intensity.IntensityNormalization`] for integers other than `uint8` / `uint16`).

    Raises:
        ImageReadError: the file is missing, truncated, of an unknown format, or not one 2-D grayscale / RGB image
            (the message names the file and the reason).
    """
    path = os.fspath(path)
    lower = path.lower()
    try:
        if not os.path.isfile(path):
            raise ValueError("the file does not exist")
        if lower.endswith(NUMPY_EXTENSIONS):
            return _read_numpy(path)
        if lower.endswith(DICOM_EXTENSIONS) or _has_dicom_preamble(path):
            from .dicom import read_dicom  # pydicom is optional

            return read_dicom(path, apply_voi=apply_voi)
        return _read_pil(path, grayscale)
    except ImageReadError:
        raise
    except ImportError as error:  # a missing optional extra is not a bad file: say which command installs it
        raise ImportError(f"Cannot read {path}: {error}") from error
    except (OSError, ValueError, SyntaxError, EOFError, AttributeError, KeyError, IndexError) as error:
        # PIL raises OSError / SyntaxError for damaged files, pydicom AttributeError / KeyError for missing tags.
        reason = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
        raise ImageReadError(path, reason) from error
