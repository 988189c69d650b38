# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The exponential moving average of the UNet's weights: checkpointed with the run, swapped in for evaluation."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from accelerate import Accelerator
from diffusers.training_utils import EMAModel

from ..models import JointUNet2DModel

EMA_FOLDER = "unet_ema"


def create_ema_model(unet: JointUNet2DModel, accelerator: Accelerator, **warmup: float) -> EMAModel:
    """
    diffusers' `EMAModel` of `unet` with warm-up (`warmup`: its `decay`, the maximum, `inv_gamma` and `power`),
    saved in and loaded from the run's checkpoints.
    """
    ema_model = EMAModel(
        unet.parameters(), use_ema_warmup=True, model_cls=JointUNet2DModel, model_config=unet.config, **warmup
    )
    register_ema_checkpointing(accelerator, ema_model)
    return ema_model


def register_ema_checkpointing(accelerator: Accelerator, ema_model: EMAModel) -> None:
    """Save `ema_model` in every `accelerator.save_state` folder (`unet_ema/`) and load it back on `load_state`."""

    def save_hook(models, weights, output_dir):
        if accelerator.is_main_process:
            ema_model.save_pretrained(os.path.join(output_dir, EMA_FOLDER))

    def load_hook(models, input_dir):
        loaded = EMAModel.from_pretrained(os.path.join(input_dir, EMA_FOLDER), JointUNet2DModel)
        ema_model.load_state_dict(loaded.state_dict())
        ema_model.to(accelerator.device)

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


@contextlib.contextmanager
def ema_weights(unet: JointUNet2DModel, ema_model: EMAModel | None) -> Iterator[JointUNet2DModel]:
    """`unet` holding the EMA weights inside the block (as it is when `ema_model` is `None`), its own weights after."""
    if ema_model is None:
        yield unet
        return
    ema_model.store(unet.parameters())
    ema_model.copy_to(unet.parameters())
    try:
        yield unet
    finally:
        ema_model.restore(unet.parameters())
