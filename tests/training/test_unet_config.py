# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from diffusers_joint import JointDiffusionPipeline, JointUNet2DModel
from diffusers_joint.training import default_norm_num_groups, unet_kwargs


def test_default_groups_keep_at_least_four_channels_per_group():
    # 32 groups over 32 channels would be instance normalisation, which removed each sample's brightness
    assert default_norm_num_groups((32, 64, 64)) == 8
    assert unet_kwargs(28, 1)["norm_num_groups"] == 8
    assert unet_kwargs(8, 1)["norm_num_groups"] == 8
    assert default_norm_num_groups((128, 128, 256, 256, 512)) == 32
    assert default_norm_num_groups((6, 12)) == 1
    assert unet_kwargs(28, 1, norm_num_groups=32)["norm_num_groups"] == 32  # an explicit choice wins


@pytest.mark.parametrize("scheduler_cls", [DDPMScheduler, DDIMScheduler])
def test_a_model_saved_with_the_old_defaults_still_loads_and_samples(tmp_path, scheduler_cls):
    """Models trained before this release have one channel per group (32 groups) and no temperature."""
    torch.manual_seed(0)
    old = JointUNet2DModel(**unet_kwargs(8, 1, block_out_channels=(32, 64), norm_num_groups=32), num_classes=3)
    scheduler = DDPMScheduler(num_train_timesteps=50, beta_schedule="squaredcos_cap_v2")
    JointDiffusionPipeline(unet=old, scheduler=scheduler).save_pretrained(tmp_path)
    config = tmp_path / "unet" / "config.json"
    config.write_text(config.read_text().replace('"classifier_temperature": 1.0,', ""))
    pipe = JointDiffusionPipeline.from_pretrained(tmp_path)
    assert pipe.unet.config.norm_num_groups == 32 and pipe.scheduler.config.beta_schedule == "squaredcos_cap_v2"
    pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    images = pipe(class_labels=[0, 2], num_inference_steps=5, generator=torch.Generator().manual_seed(0)).images
    assert len(images) == 2 and images[0].size == (8, 8)
    for name, param in old.state_dict().items():
        assert torch.equal(param, pipe.unet.state_dict()[name]), name
