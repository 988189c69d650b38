from .accelerator import create_accelerator
from .arguments import (
    JointLossSetup,
    add_joint_loss_arguments,
    add_model_arguments,
    check_joint_loss_arguments,
    create_joint_unet_from_args,
    joint_loss_config_from_args,
    joint_loss_from_args,
    training_settings_from_args,
)
from .autoencoder import (
    AUTOENCODER_LOSS_TERMS,
    DOWNSAMPLING_FACTORS,
    AutoencoderObjective,
    autoencoder_loss,
    create_autoencoder,
    latent_scaling_factor,
    load_vae,
)
from .autoencoder_arguments import (
    add_autoencoder_arguments,
    check_autoencoder_arguments,
    create_autoencoder_from_args,
)
from .autoencoder_card import build_autoencoder_model_card
from .best_checkpoint import BEST_CHECKPOINT_METRICS, BestCheckpoint
from .calibration import fit_temperature, negative_log_likelihood
from .checkpointing import (
    check_checkpoint_fits,
    finalize_checkpoint,
    list_checkpoints,
    remove_incomplete_checkpoints,
    resolve_checkpoint,
    temporary_checkpoint_dir,
)
from .distribution_alignment import DistributionAlignment
from .ema import create_ema_model, ema_weights, register_ema_checkpointing
from .hub import HubUploadError, push_output_to_hub
from .losses import (
    LOSS_TERMS,
    JointDiffusionObjective,
    JointLossConfig,
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
from .nonfinite import MAX_CONSECUTIVE_SKIPS, NONFINITE_POLICIES, NonFiniteLossGuard, nonfinite_message
from .output_dir import MIN_FREE_BYTES, check_output_dir
from .pseudo_labels import PSEUDO_LABEL_DEFAULTS, PseudoLabelSettings, resolve_pseudo_label_settings
from .training_loop import (
    TrainingSchedule,
    apply_gradients,
    create_lr_scheduler,
    resumable_epochs,
    training_schedule,
)
from .training_state import (
    ALIGNMENT_FILE,
    batch_seed,
    register_alignment_checkpointing,
    resume_training_state,
    save_training_checkpoint,
)
from .unet_config import (
    create_joint_unet,
    default_block_out_channels,
    default_norm_num_groups,
    pick_resolution,
    unet_kwargs,
)

__all__ = [
    "AUTOENCODER_LOSS_TERMS",
    "AutoencoderObjective",
    "apply_gradients",
    "create_lr_scheduler",
    "resumable_epochs",
    "training_schedule",
    "TrainingSchedule",
    "add_autoencoder_arguments",
    "check_autoencoder_arguments",
    "create_autoencoder_from_args",
    "build_autoencoder_model_card",
    "autoencoder_loss",
    "create_autoencoder",
    "DOWNSAMPLING_FACTORS",
    "latent_scaling_factor",
    "load_vae",
    "training_settings_from_args",
    "check_joint_loss_arguments",
    "JointLossSetup",
    "add_model_arguments",
    "create_joint_unet_from_args",
    "joint_loss_from_args",
    "add_joint_loss_arguments",
    "create_accelerator",
    "create_ema_model",
    "joint_loss_config_from_args",
    "ALIGNMENT_FILE",
    "batch_seed",
    "BEST_CHECKPOINT_METRICS",
    "BestCheckpoint",
    "build_model_card",
    "check_checkpoint_fits",
    "check_output_dir",
    "classification_loss",
    "create_joint_unet",
    "default_block_out_channels",
    "default_norm_num_groups",
    "diffusion_target",
    "DistributionAlignment",
    "ema_weights",
    "finalize_checkpoint",
    "fit_temperature",
    "HubUploadError",
    "inverse_frequency_weights",
    "joint_diffusion_loss",
    "JointDiffusionObjective",
    "JointLossConfig",
    "JointLossOutput",
    "labeled_mask",
    "list_checkpoints",
    "LOSS_TERMS",
    "MAX_CONSECUTIVE_SKIPS",
    "MIN_FREE_BYTES",
    "min_snr_weights",
    "negative_log_likelihood",
    "noise_level_weights",
    "nonfinite_message",
    "NONFINITE_POLICIES",
    "NonFiniteLossGuard",
    "pick_resolution",
    "PSEUDO_LABEL_DEFAULTS",
    "PseudoLabelSettings",
    "push_output_to_hub",
    "register_alignment_checkpointing",
    "register_ema_checkpointing",
    "remove_incomplete_checkpoints",
    "resolve_checkpoint",
    "resolve_pseudo_label_settings",
    "resume_training_state",
    "save_model_card",
    "save_training_checkpoint",
    "temporary_checkpoint_dir",
    "unet_kwargs",
]
