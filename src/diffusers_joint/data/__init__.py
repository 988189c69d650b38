# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""Data loading, label scarcity, mixed labeled / unlabeled batching and augmentations for Joint Diffusion."""

from .arguments import (
    add_data_source_arguments,
    add_label_budget_arguments,
    add_training_image_arguments,
    intensity_normalization_from_args,
    load_joint_dataset_from_args,
    mask_labels_from_args,
    split_validation_from_args,
)
from .augmentations import (
    CLASSIFIER_AUGMENTATIONS,
    JointAugmentation,
    classifier_augmentation,
    latent_augmentation,
    random_horizontal_flip,
    strong_augmentation,
    strong_latent_augmentation,
)
from .collate import JointCollator, LatentCollator, build_collate_fn
from .csv_images import load_csv_dataset
from .digits import load_digits_dataset
from .image_check import BadImagesError, check_images, find_bad_images
from .image_reading import IMAGE_EXTENSIONS, ImageReadError, read_image
from .intensity import IntensityNormalization
from .joint_dataset import MULTI_LABEL, SINGLE_LABEL, JointDataset
from .label_masking import is_labeled, mask_labels, select_labeled_indices
from .npz import load_npz_dataset
from .samplers import MixedBatchSampler, mixed_batch_dataloader
from .sources import load_joint_dataset
from .synthetic_lesions import load_lesion_masks, make_lesion_images, write_lesion_dataset
from .transforms import ImagePreprocessor, image_to_array, image_to_tensor, resize, tensor_to_pil

__all__ = [
    "add_training_image_arguments",
    "load_lesion_masks",
    "make_lesion_images",
    "write_lesion_dataset",
    "mixed_batch_dataloader",
    "add_label_budget_arguments",
    "mask_labels_from_args",
    "add_data_source_arguments",
    "BadImagesError",
    "build_collate_fn",
    "check_images",
    "classifier_augmentation",
    "CLASSIFIER_AUGMENTATIONS",
    "find_bad_images",
    "IMAGE_EXTENSIONS",
    "image_to_array",
    "image_to_tensor",
    "ImagePreprocessor",
    "ImageReadError",
    "intensity_normalization_from_args",
    "IntensityNormalization",
    "is_labeled",
    "JointAugmentation",
    "latent_augmentation",
    "random_horizontal_flip",
    "JointCollator",
    "LatentCollator",
    "JointDataset",
    "load_csv_dataset",
    "load_digits_dataset",
    "load_joint_dataset",
    "load_joint_dataset_from_args",
    "load_npz_dataset",
    "mask_labels",
    "MixedBatchSampler",
    "MULTI_LABEL",
    "read_image",
    "resize",
    "select_labeled_indices",
    "SINGLE_LABEL",
    "split_validation_from_args",
    "strong_augmentation",
    "strong_latent_augmentation",
    "tensor_to_pil",
]
