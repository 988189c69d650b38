# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Shared fixtures for the data tests: small slices of scikit-learn's real 8x8 digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diffusers_joint.data.digits import digits_arrays

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 real digits as uint8 `(N, 8, 8)` images and their labels."""
    return digits_arrays()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data not found at {SHARED_DATA}: the shared real data files are absent here")
    return SHARED_DATA
