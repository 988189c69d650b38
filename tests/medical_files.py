# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Medical image files the tests write: DICOM with made-up patient data (pydicom), to check that none of it leaks."""

from pathlib import Path

import numpy as np

PATIENT_NAME, PATIENT_ID = "Doe^Jane", "PAT-4711-0815"
# Every identifying value write_dicom stores: none may appear in logs, outputs or the app's answers.
PATIENT_DATA = (PATIENT_NAME, PATIENT_ID, "Doe", "19800101")


def write_dicom(path: Path, stored: np.ndarray, bits_stored: int, monochrome1: bool = False) -> Path:
    """A single-frame grayscale DICOM of `stored` (uint16 words, `bits_stored` bits used) with made-up patient data."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.StudyDate = PATIENT_NAME, PATIENT_ID, "19800101", "20240102"
    ds.Modality = "CR"
    ds.set_pixel_data(stored, "MONOCHROME1" if monochrome1 else "MONOCHROME2", bits_stored=bits_stored)
    ds.save_as(path, enforce_file_format=True)
    return path
