"""The autoencoder's flags: refused with a clear message when wrong, and the model and resolution they build."""

import argparse
import re

import pytest
import torch

from diffusers_joint.data import load_digits_dataset
from diffusers_joint.training import (
    add_autoencoder_arguments,
    check_autoencoder_arguments,
    create_autoencoder,
    create_autoencoder_from_args,
)


def parse(*flags):
    parser = argparse.ArgumentParser()
    add_autoencoder_arguments(parser)
    parser.add_argument("--resolution", type=int, default=None)
    args = parser.parse_args(list(flags))
    check_autoencoder_arguments(parser, args)
    return args


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--downsampling_factor", "16"], r"--downsampling_factor must be one of \(4, 8\), got 16"),
        (["--block_out_channels", "8", "16"], "--downsampling_factor 4 takes 3 --block_out_channels, got 2"),
        (["--latent_channels", "0"], "--latent_channels must be at least 1, got 0"),
        (["--layers_per_block", "0"], "--layers_per_block must be at least 1"),
        (["--ssim_weight", "-0.1"], "must be >= 0"),
        (["--downsampling_factor", "8", "--resolution", "36"], "multiple of --downsampling_factor, got 36"),
    ],
)
def test_bad_flags_exit_with_a_message(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(*flags)
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_new_autoencoder_takes_the_images_channels_and_a_resolution_the_factor_divides():
    digits = load_digits_dataset()  # 8 x 8 grayscale
    vae, resolution = create_autoencoder_from_args(
        digits, parse("--downsampling_factor", "8", "--latent_channels", "3")
    )
    assert resolution == 8 and vae.config.sample_size == 8 and vae.config.in_channels == 1
    assert vae.config.latent_channels == 3 and len(vae.config.block_out_channels) == 4
    _, resolution = create_autoencoder_from_args(
        digits, parse("--resolution", "12", "--block_out_channels", "8", "8", "8")
    )
    assert resolution == 12


def test_pretrained_autoencoder_is_loaded_with_its_architecture(tmp_path):
    torch.manual_seed(0)
    create_autoencoder(3, 4, latent_channels=2, block_out_channels=(8, 16, 16)).save_pretrained(tmp_path / "vae")
    args = parse("--pretrained_vae_model_name_or_path", str(tmp_path / "vae"), "--latent_channels", "7")
    vae, resolution = create_autoencoder_from_args(load_digits_dataset(), args)
    assert vae.config.latent_channels == 2 and vae.config.in_channels == 3 and resolution == 8
