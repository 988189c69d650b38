"""The EMA weights are swapped in for evaluation and the trained ones restored after, even on an error."""

import pytest
import torch
from diffusers.training_utils import EMAModel

from diffusers_joint.training import ema_weights
from tiny_models import tiny_joint_unet


def test_ema_weights_are_used_inside_the_block_and_the_trained_ones_after():
    unet = tiny_joint_unet()
    ema = EMAModel(unet.parameters(), decay=0.9)
    trained = [p.detach().clone() for p in unet.parameters()]
    with torch.no_grad():
        for p in ema.shadow_params:
            p.mul_(0.5)
    with ema_weights(unet, ema) as inside:
        assert inside is unet
        assert all(torch.equal(p, s) for p, s in zip(unet.parameters(), ema.shadow_params))
    assert all(torch.equal(p, t) for p, t in zip(unet.parameters(), trained))
    with pytest.raises(RuntimeError), ema_weights(unet, ema):
        raise RuntimeError("evaluation failed")
    assert all(torch.equal(p, t) for p, t in zip(unet.parameters(), trained))
    with ema_weights(unet, None) as inside:  # no EMA: the model as it is
        assert all(torch.equal(p, t) for p, t in zip(inside.parameters(), trained))
