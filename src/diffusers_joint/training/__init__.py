from .best_checkpoint import BEST_CHECKPOINT_METRICS, BestCheckpoint
from .calibration import (
    TemperatureCalibration,
    calibrate_temperature,
    calibration_error,
    fit_temperature,
    negative_log_likelihood,
)
from .checkpointing import (
    check_checkpoint_fits,
    finalize_checkpoint,
    list_checkpoints,
    remove_incomplete_checkpoints,
    resolve_checkpoint,
    temporary_checkpoint_dir,
)
from .distribution_alignment import DistributionAlignment
from .hub import HubUploadError, push_output_to_hub
from .losses import (
    JointDiffusionObjective,
    JointLossOutput,
    classification_loss,
    diffusion_target,
    inverse_frequency_weights,
    joint_diffusion_loss,
    labeled_mask,
    min_snr_weights,
    noise_level_weights,
)
from .model_card import build_model_card, save_model_card
from .unet_config import default_block_out_channels, default_norm_num_groups, unet_kwargs

__all__ = [
    "BEST_CHECKPOINT_METRICS",
    "BestCheckpoint",
    "DistributionAlignment",
    "HubUploadError",
    "JointDiffusionObjective",
    "JointLossOutput",
    "TemperatureCalibration",
    "build_model_card",
    "calibrate_temperature",
    "calibration_error",
    "check_checkpoint_fits",
    "classification_loss",
    "default_block_out_channels",
    "default_norm_num_groups",
    "diffusion_target",
    "finalize_checkpoint",
    "fit_temperature",
    "inverse_frequency_weights",
    "joint_diffusion_loss",
    "labeled_mask",
    "list_checkpoints",
    "min_snr_weights",
    "negative_log_likelihood",
    "noise_level_weights",
    "push_output_to_hub",
    "remove_incomplete_checkpoints",
    "resolve_checkpoint",
    "save_model_card",
    "temporary_checkpoint_dir",
    "unet_kwargs",
]
