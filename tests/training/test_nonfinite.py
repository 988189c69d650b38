"""A non-finite loss stops the run, or skips a bounded number of steps, naming the terms and the kept checkpoint."""

import math

import pytest
import torch

from diffusers_joint.training import NonFiniteLossGuard

FINITE = torch.tensor([[1.0, 0.5, 2.0, 0.0, 1.0, 0.0, 0.0]])
NAN = torch.tensor([[math.nan, math.nan, 2.0, 0.0, 1.0, 0.0, -0.0]])


def test_stop_names_the_step_every_term_and_the_kept_checkpoint(tmp_path):
    (tmp_path / "checkpoint-4").mkdir()
    guard = NonFiniteLossGuard("stop", tmp_path)
    assert guard.skip_step(5, FINITE) is False
    with pytest.raises(FloatingPointError) as error:
        guard.skip_step(6, NAN)
    message = str(error.value)
    assert "Non-finite loss at step 6 (loss=nan, diffusion=nan, classifier=2, fixmatch=0" in message
    assert "noisy_pseudo=0, feature_consistency=0)" in message  # -0 printed as 0
    assert f"The last good checkpoint, {tmp_path / 'checkpoint-4'}, is kept" in message


def test_skip_skips_until_too_many_in_a_row(tmp_path, caplog):
    guard = NonFiniteLossGuard("skip", tmp_path, max_consecutive_skips=3)
    assert guard.skip_step(1, NAN) and guard.skip_step(2, NAN)
    assert "Skipping the step" in caplog.text and "No checkpoint had been written yet." in caplog.text
    assert guard.skip_step(3, FINITE) is False  # a good step resets the count
    assert guard.skip_step(4, NAN) and guard.skip_step(5, NAN) and guard.skip_step(6, NAN)  # at most 3 in a row
    with pytest.raises(FloatingPointError, match="4 steps in a row had a non-finite loss"):
        guard.skip_step(7, NAN)
    per_process = torch.cat([FINITE, NAN])
    with pytest.raises(FloatingPointError, match="process 0: loss=1.*; process 1: loss=nan"):
        NonFiniteLossGuard("stop", tmp_path).skip_step(1, per_process)
    with pytest.raises(ValueError, match="policy must be one of"):
        NonFiniteLossGuard("ignore", tmp_path)


def test_the_autoencoders_terms_are_named_as_its_own(tmp_path):
    from diffusers_joint.training.autoencoder import AUTOENCODER_LOSS_TERMS

    guard = NonFiniteLossGuard("stop", tmp_path, term_names=AUTOENCODER_LOSS_TERMS)
    with pytest.raises(FloatingPointError, match=r"step 7 \(loss=nan, loss_l1=0.5, loss_kl=inf, loss_ssim=0\)"):
        guard.skip_step(7, torch.tensor([[math.nan, 0.5, math.inf, 0.0]]))
