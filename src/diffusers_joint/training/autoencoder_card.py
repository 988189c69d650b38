# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""The model card of an autoencoder trained by `examples/train_autoencoder.py`: data, settings, PSNR / SSIM, use."""

from __future__ import annotations

import json
import math
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

AUTOENCODER_METRIC_NAMES = {"psnr": "PSNR (dB, data range 2)", "ssim": "SSIM", "l1": "Mean absolute error"}

AUTOENCODER_TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

A diffusers `AutoencoderKL` (downsampling factor {{ factor }}, {{ latent_channels }} latent channels) trained from
scratch with `examples/train_autoencoder.py` of the `diffusers-joint` package, for latent Joint Diffusion.

- **Data:** {{ dataset_description }}, {{ num_train_examples }} training images
- **Images:** {{ resolution }} x {{ resolution }}, {{ channels }} channel(s), intensities: `{{ intensity }}`
  normalisation, mapped to [-1, 1]
- **Latents:** {{ latent_channels }} x {{ latent_size }} x {{ latent_size }}, `scaling_factor` {{ scaling_factor }}
- **Loss:** L1 + {{ kl_weight }} x KL{{ ssim_term }}

## Reconstruction quality

{{ metrics_table }}

## Intended use

The image encoder and decoder of a latent `JointUNet2DModel`: `accelerate launch examples/train_joint.py
--pretrained_vae_model_name_or_path {{ repo_id }} ...`. It was trained on the data above only; check its
reconstructions (PSNR, SSIM, and by eye) before using it on other images. It is not a diagnostic device.

```python
from diffusers import AutoencoderKL

vae = AutoencoderKL.from_pretrained("{{ repo_id }}", use_safetensors=True)
latents = vae.encode(images).latent_dist.mode() * vae.config.scaling_factor   # images in [-1, 1]
```

## Training settings

| setting | value |
| --- | --- |
{{ settings_table }}
"""


def build_autoencoder_model_card(
    model_name: str,
    vae_config: dict[str, Any],
    dataset_description: str,
    num_train_examples: int,
    channels: int,
    metrics: dict[str, Any] | None = None,
    eval_split_name: str = "evaluation split",
    training_settings: dict[str, Any] | None = None,
    repo_id: str | None = None,
) -> ModelCard:
    """
    A short `huggingface_hub.ModelCard` for an autoencoder: the data, the architecture and its latent size, the loss,
    PSNR / SSIM on the evaluation split (also as `model-index` results), the intended use and the settings.

    Args:
        model_name (`str`):
            The title (usually the output folder's name).
        vae_config (`dict`):
            The `AutoencoderKL`'s config (`vae.config`).
        dataset_description (`str`):
            Where the training images came from (no local paths: cards are published).
        num_train_examples (`int`):
            Training images.
        channels (`int`):
            Image channels.
        metrics (`dict`, *optional*):
            [`~evaluation.evaluate_autoencoder`]'s results (`psnr`, `ssim`, `l1`, `num_examples`).
        eval_split_name (`str`, *optional*):
            What the evaluation split is.
        training_settings (`dict`, *optional*):
            Settings listed in a table; `kl_weight`, `ssim_weight` and `intensity_normalization` are also quoted.
        repo_id (`str`, *optional*):
            The Hub repository, for the usage snippet.
    """
    metrics = metrics or {}
    settings = training_settings or {}
    scored = {k: v for k, v in metrics.items() if k in AUTOENCODER_METRIC_NAMES and isinstance(v, (int, float))}
    # NaN / infinity (e.g. no evaluation image) is no result: left out of the model-index, "n/a" in the table
    finite = {k: v for k, v in scored.items() if math.isfinite(float(v))}
    eval_results = [
        EvalResult(
            task_type="image-to-image",
            dataset_type="custom",
            dataset_name=dataset_description,
            dataset_split=eval_split_name,
            metric_type=key,
            metric_name=AUTOENCODER_METRIC_NAMES[key],
            metric_value=float(value),
        )
        for key, value in finite.items()
    ]
    card_data = ModelCardData(
        library_name="diffusers",
        license="apache-2.0",
        tags=["diffusers", "autoencoder", "AutoencoderKL", "diffusers-joint", "latent-diffusion"],
        model_name=model_name,
        eval_results=eval_results or None,
    )
    rows = [f"| {AUTOENCODER_METRIC_NAMES[k]} | {f'{v:.4g}' if k in finite else 'n/a'} |" for k, v in scored.items()]
    metrics_table = (
        f"On the {eval_split_name} ({metrics.get('num_examples', '?')} images), each image encoded to its posterior's "
        "mode and decoded:\n\n| metric | value |\n| --- | --- |\n" + "\n".join(rows)
        if rows
        else "No evaluation was run."
    )
    resolution = int(vae_config["sample_size"])
    factor = 2 ** (len(vae_config["block_out_channels"]) - 1)
    ssim_weight = settings.get("ssim_weight") or 0
    return ModelCard.from_template(
        card_data,
        template_str=AUTOENCODER_TEMPLATE,
        model_name=model_name,
        factor=factor,
        latent_channels=vae_config["latent_channels"],
        dataset_description=dataset_description,
        num_train_examples=num_train_examples,
        resolution=resolution,
        channels=channels,
        intensity=settings.get("intensity_normalization") or "dtype",
        latent_size=resolution // factor,
        scaling_factor=f"{vae_config['scaling_factor']:.5g}",
        kl_weight=f"{settings.get('kl_weight', '?')}",
        ssim_term=f" + {ssim_weight} x (1 - SSIM)" if ssim_weight else "",
        metrics_table=metrics_table,
        repo_id=repo_id or "path/to/this/autoencoder",
        settings_table="\n".join(
            f"| {k} | `{json.dumps(v) if not isinstance(v, str) else v}` |" for k, v in settings.items()
        ),
    )
