# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""`JointUNet2DModel`: a diffusers `UNet2DModel` whose encoder also feeds a classifier (Joint Diffusion)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
from diffusers.configuration_utils import register_to_config

# DiffusionPipeline.from_pretrained looks for `ModelMixin` in the module named by model_index.json to find the loader.
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401
from diffusers.models.unets.unet_2d import UNet2DModel, UNet2DOutput
from diffusers.utils import BaseOutput, logging
from diffusers.utils.accelerate_utils import apply_forward_hook
from safetensors import safe_open

logger = logging.get_logger(__name__)

SINGLE_LABEL = "single_label_classification"
MULTI_LABEL = "multi_label_classification"
PROBLEM_TYPES = (SINGLE_LABEL, MULTI_LABEL)


@dataclass
class JointUNet2DEncoderOutput(BaseOutput):
    """
    Output of [`JointUNet2DModel.encode`].

    Args:
        hidden_states (`list[torch.Tensor]`):
            The output of every down block followed by the output of the mid block, each of shape
            `(batch, channels_i, height_i, width_i)`.
        features (`torch.Tensor` of shape `(batch, feature_dim)`):
            The entries of `hidden_states` that the classifier reads (every one by default, see
            `classifier_feature_stages`), globally average-pooled and concatenated: the classifier's input.
    """

    hidden_states: list[torch.Tensor]
    features: torch.Tensor


def _raise_if_corrupted(path: str | os.PathLike, subfolder: str | None, error: Exception) -> None:
    # diffusers reports a damaged weights file as a bare "Unable to load weights": name the file and the cause.
    folder = os.path.join(path, subfolder) if subfolder else path
    if not os.path.isdir(folder):
        return
    names = sorted(os.listdir(folder))
    pickled = [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl"))]
    if pickled and not any(n.endswith(".safetensors") for n in names):
        raise OSError(
            f"{folder} holds only pickled weights ({', '.join(pickled)}), which "
            "are not loaded by default because unpickling a file can run arbitrary code. If you trust the file, pass "
            "`use_safetensors=False` to load it, then re-save it with `save_pretrained` (safetensors)."
        ) from error
    for name in names:
        if name.endswith(".safetensors"):
            try:
                with safe_open(os.path.join(folder, name), framework="pt") as f:
                    for key in f.keys():
                        f.get_tensor(key)
            except Exception as cause:
                raise OSError(
                    f"The weights file {os.path.join(folder, name)} is truncated or corrupted ({cause}). Re-download "
                    "it, or re-save the model with `save_pretrained`."
                ) from error


def _pool(hidden_states: Sequence[torch.Tensor]) -> torch.Tensor:
    """Global average pooling of each given encoder stage, concatenated."""
    return torch.cat([h.mean(dim=(2, 3)) for h in hidden_states], dim=1)


def resolve_feature_stages(stages: Sequence[int] | None, num_stages: int) -> list[int]:
    """
    `stages` (indices of encoder stages, negative ones counted from the end) as sorted non-negative indices; `None`
    means every one of the `num_stages` stages.

    Raises:
        ValueError: `stages` is empty, repeats a stage, or holds an index outside `[-num_stages, num_stages)`.
    """
    if stages is None:
        return list(range(num_stages))
    resolved = []
    for stage in stages:
        if isinstance(stage, bool) or not isinstance(stage, int) or not -num_stages <= stage < num_stages:
            raise ValueError(
                f"`classifier_feature_stages` must hold stage indices in [{-num_stages}, {num_stages}) (the down "
                f"blocks, then the mid block), got {list(stages)}."
            )
        resolved.append(stage % num_stages)
    if not resolved or len(set(resolved)) != len(resolved):
        raise ValueError(
            f"`classifier_feature_stages` must name at least one stage, each once, got {list(stages)} (of "
            f"{num_stages} stages)."
        )
    return sorted(resolved)


class ClassifierHead(nn.Module):
    """A small MLP from pooled encoder features to class logits."""

    def __init__(self, in_features: int, hidden_dims: Sequence[int], num_classes: int, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.SiLU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


class JointUNet2DModel(UNet2DModel):
    r"""
    A [`~diffusers.UNet2DModel`] whose encoder also serves a classifier, as in Joint Diffusion (Deja et al., 2023).

    The outputs of every down block and of the mid block (or of the stages in `classifier_feature_stages`) are
    globally average-pooled, concatenated and fed to a small MLP head. Calling the model is unchanged:
    `unet(sample, timestep).sample` is the noise prediction, so any diffusers pipeline that takes a `UNet2DModel` (for
    example [`~diffusers.DDPMPipeline`]) runs on it. The classifier is reached through
    [`~JointUNet2DModel.classify`], which by default reads clean images at timestep 0.

    Every argument of [`~diffusers.UNet2DModel`] is accepted, with the same meaning and default, except
    `time_embedding_type="fourier"`, which raises a `ValueError`: the classifier reads clean images at timestep 0, and
    a Gaussian Fourier embedding takes log(timestep). Plus:

    Args:
        num_classes (`int`, *optional*, defaults to 10):
            Number of classes (or of labels, for multi-label problems).
        classifier_hidden_dims (`tuple[int, ...]`, *optional*, defaults to `(256,)`):
            Widths of the hidden layers of the classifier head; `()` makes the head a single linear layer.
        classifier_dropout (`float`, *optional*, defaults to 0.0):
            Dropout applied after each hidden layer of the head.
        classifier_feature_stages (`list[int]`, *optional*):
            The encoder stages the head reads: indices into the down blocks followed by the mid block (`-1` is the
            last stage, the mid block when there is one). `None` reads every stage, as Joint Diffusion does. The
            denoiser is unaffected; see [`~JointUNet2DModel.classifier_stages`].
        problem_type (`str`, *optional*, defaults to `"single_label_classification"`):
            `"single_label_classification"` (softmax, cross-entropy) or `"multi_label_classification"` (sigmoid,
            binary cross-entropy), as in transformers.
        label_names (`list[str]`, *optional*):
            Human-readable class names, index-aligned with the logits. Saved in the config so that a loaded model
            knows its classes; see [`~JointUNet2DModel.id2label`].
        classifier_temperature (`float`, *optional*, defaults to 1.0):
            Temperature that turns logits into calibrated probabilities (`softmax(logits / T)`), fitted on validation
            data after training (temperature scaling). It changes probabilities, never the predicted class; see
            [`~JointUNet2DModel.calibrated_logits`].
        classifier_calibration (`dict`, *optional*):
            How `classifier_temperature` was chosen: the fields of
            [`~diffusers_joint.training.TemperatureCalibration`] (the fitted temperature, whether it was applied and
            why, the validation size, NLL and ECE before and after), as `train_joint.py --calibrate` records them.
            Informational only; `None` for models calibrated by hand or saved before it existed.
        noise_aware_classifier (`bool`, *optional*, defaults to `False`):
            Whether the classifier was also trained on noisy inputs `x_t` (`train_joint.py`'s noise-aware term), so
            that it means something at every timestep, as `GuidanceConfig(method="noisy")` needs (the pipelines'
            default is `"x0"` for every model).

    Example:

    ```py
    >>> import torch
    >>> from diffusers_joint import JointUNet2DModel

    >>> unet = JointUNet2DModel(
    ...     sample_size=16, in_channels=1, out_channels=1, block_out_channels=(16, 32),
    ...     down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
    ...     layers_per_block=1, norm_num_groups=8, num_classes=3, label_names=["a", "b", "c"],
    ... )
    >>> images = torch.rand(4, 1, 16, 16) * 2 - 1
    >>> unet(images, 10).sample.shape  # noise prediction, as for UNet2DModel
    torch.Size([4, 1, 16, 16])
    >>> unet.classify(images).shape  # class logits of clean images
    torch.Size([4, 3])
    ```
    """

    @register_to_config
    def __init__(
        self,
        sample_size: int | tuple[int, int] | None = None,
        in_channels: int = 3,
        out_channels: int = 3,
        center_input_sample: bool = False,
        time_embedding_type: str = "positional",
        time_embedding_dim: int | None = None,
        freq_shift: int = 0,
        flip_sin_to_cos: bool = True,
        down_block_types: tuple[str, ...] = ("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        mid_block_type: str | None = "UNetMidBlock2D",
        up_block_types: tuple[str, ...] = ("AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        block_out_channels: tuple[int, ...] = (224, 448, 672, 896),
        layers_per_block: int = 2,
        mid_block_scale_factor: float = 1,
        downsample_padding: int = 1,
        downsample_type: str = "conv",
        upsample_type: str = "conv",
        dropout: float = 0.0,
        act_fn: str = "silu",
        attention_head_dim: int | None = 8,
        norm_num_groups: int = 32,
        attn_norm_num_groups: int | None = None,
        norm_eps: float = 1e-5,
        resnet_time_scale_shift: str = "default",
        add_attention: bool = True,
        class_embed_type: str | None = None,
        num_class_embeds: int | None = None,
        num_train_timesteps: int | None = None,
        num_classes: int = 10,
        classifier_hidden_dims: tuple[int, ...] = (256,),
        classifier_dropout: float = 0.0,
        problem_type: str = SINGLE_LABEL,
        label_names: list[str] | None = None,
        classifier_temperature: float = 1.0,
        noise_aware_classifier: bool = False,
        classifier_calibration: dict | None = None,
        classifier_feature_stages: list[int] | None = None,
    ):
        if not classifier_temperature > 0:
            raise ValueError(f"`classifier_temperature` must be > 0, got {classifier_temperature}.")
        if time_embedding_type == "fourier":
            # diffusers' GaussianFourierProjection embeds log(t): log 0 = -inf, so classify() would return NaN
            raise ValueError(
                "`time_embedding_type='fourier'` is not supported: the classifier reads clean images at timestep 0, "
                "which a Fourier time embedding cannot embed (it takes log(timestep), and log 0 is -inf). Use "
                "`time_embedding_type='positional'` (the default) or `'learned'`."
            )
        if num_classes < 1:
            raise ValueError(f"`num_classes` must be a positive integer, got {num_classes}.")
        if problem_type not in PROBLEM_TYPES:
            raise ValueError(f"`problem_type` must be one of {PROBLEM_TYPES}, got {problem_type!r}.")
        if label_names is not None and len(label_names) != num_classes:
            raise ValueError(
                f"`label_names` must hold one name per class: expected {num_classes} names, got {len(label_names)}."
            )
        super().__init__(
            sample_size=sample_size,
            in_channels=in_channels,
            out_channels=out_channels,
            center_input_sample=center_input_sample,
            time_embedding_type=time_embedding_type,
            time_embedding_dim=time_embedding_dim,
            freq_shift=freq_shift,
            flip_sin_to_cos=flip_sin_to_cos,
            down_block_types=down_block_types,
            mid_block_type=mid_block_type,
            up_block_types=up_block_types,
            block_out_channels=block_out_channels,
            layers_per_block=layers_per_block,
            mid_block_scale_factor=mid_block_scale_factor,
            downsample_padding=downsample_padding,
            downsample_type=downsample_type,
            upsample_type=upsample_type,
            dropout=dropout,
            act_fn=act_fn,
            attention_head_dim=attention_head_dim,
            norm_num_groups=norm_num_groups,
            attn_norm_num_groups=attn_norm_num_groups,
            norm_eps=norm_eps,
            resnet_time_scale_shift=resnet_time_scale_shift,
            add_attention=add_attention,
            class_embed_type=class_embed_type,
            num_class_embeds=num_class_embeds,
            num_train_timesteps=num_train_timesteps,
        )
        self.classifier = ClassifierHead(
            in_features=self.feature_dim,
            hidden_dims=tuple(classifier_hidden_dims),
            num_classes=num_classes,
            dropout=classifier_dropout,
        )

    # ------------------------------------------------------------------ properties

    @property
    def feature_channels(self) -> list[int]:
        """Channels of each pooled encoder output: one entry per down block, then the mid block."""
        channels = list(self.config.block_out_channels)
        if self.mid_block is not None:
            channels.append(self.config.block_out_channels[-1])
        return channels

    @property
    def classifier_stages(self) -> list[int]:
        """Indices (into [`~JointUNet2DModel.feature_channels`]) of the encoder stages the classifier head reads."""
        return resolve_feature_stages(self.config.get("classifier_feature_stages"), len(self.feature_channels))

    @property
    def feature_dim(self) -> int:
        """Length of the pooled feature vector that the classifier head reads."""
        channels = self.feature_channels
        return sum(channels[i] for i in self.classifier_stages)

    @property
    def downsample_factor(self) -> int:
        """Height and width of inputs must be multiples of this number."""
        return 2 ** (len(self.config.down_block_types) - 1)

    @property
    def id2label(self) -> dict[int, str]:
        """Index to class name (the names saved in the config, or `"LABEL_i"` when none were given)."""
        names = self.config.label_names or [f"LABEL_{i}" for i in range(self.config.num_classes)]
        return dict(enumerate(names))

    @property
    def label2id(self) -> dict[str, int]:
        """Class name to index."""
        return {name: index for index, name in self.id2label.items()}

    @property
    def is_multi_label(self) -> bool:
        return self.config.problem_type == MULTI_LABEL

    # ------------------------------------------------------------------ validation

    def check_sample(self, sample: torch.Tensor, name: str = "sample") -> None:
        """Raise a `ValueError` naming the expected and received value when `sample` does not fit this model."""
        if not torch.is_tensor(sample) or sample.ndim != 4:
            shape = tuple(sample.shape) if torch.is_tensor(sample) else type(sample).__name__
            raise ValueError(f"`{name}` must be a 4-D tensor (batch, channels, height, width), got {shape}.")
        channels, height, width = sample.shape[1:]
        if channels != self.config.in_channels:
            raise ValueError(
                f"`{name}` has {channels} channels but the model expects in_channels={self.config.in_channels}."
            )
        factor = self.downsample_factor
        if height % factor or width % factor:
            raise ValueError(
                f"`{name}` has height x width {height}x{width}, but both must be multiples of {factor} (the model "
                f"down-samples {len(self.config.down_block_types) - 1} times); resize to e.g. "
                f"{self.config.sample_size or factor * max(1, round(height / factor))}."
            )

    def check_labels(self, labels: torch.Tensor, allow_unlabeled: bool = False) -> None:
        """
        Raise a `ValueError` when `labels` do not fit the model's classes and problem type.

        Single-label targets are integer class indices in `[0, num_classes)`, shape `(batch,)`; `-1` marks an unlabeled
        image when `allow_unlabeled=True`. Multi-label targets are `(batch, num_classes)` multi-hot vectors of 0/1.
        """
        num_classes = self.config.num_classes
        if self.is_multi_label:
            if labels.ndim != 2 or labels.shape[1] != num_classes:
                raise ValueError(
                    f"Multi-label targets must have shape (batch, {num_classes}), got {tuple(labels.shape)}."
                )
            valid = (labels == 0) | (labels == 1)
            if allow_unlabeled:
                valid |= labels == -1
            if not bool(valid.all()):
                raise ValueError("Multi-label targets must be 0 or 1 (or -1 for an unlabeled image).")
            return
        if labels.ndim != 1 or labels.is_floating_point():
            raise ValueError(
                f"Single-label targets must be a 1-D integer tensor of class indices, got shape {tuple(labels.shape)} "
                f"and dtype {labels.dtype}."
            )
        low = -1 if allow_unlabeled else 0
        bad = (labels < low) | (labels >= num_classes)
        if bool(bad.any()):
            raise ValueError(
                f"Labels must lie in [0, {num_classes}) (num_classes={num_classes})"
                + (" or be -1 for unlabeled images" if allow_unlabeled else "")
                + f", got {sorted(set(labels[bad].tolist()))}."
            )

    def check_classes(
        self, num_classes: int, problem_type: str = SINGLE_LABEL, label_names: Sequence[str] | None = None
    ) -> None:
        """
        Raise a `ValueError` when the model's classifier does not fit data with `num_classes` classes of
        `problem_type`. When the counts fit but both sides name their classes differently, only warn: the same classes
        are often named differently by different sources (`"0"` vs `"normal"`).
        """
        config = self.config
        mismatch = []
        if config.num_classes != num_classes:
            mismatch.append(f"num_classes={config.num_classes} in the model but {num_classes} in the data")
        if config.problem_type != problem_type:
            mismatch.append(f"problem_type={config.problem_type!r} in the model but {problem_type!r} in the data")
        if mismatch:
            raise ValueError(
                f"The model's classifier does not fit the data: {'; '.join(mismatch)}. Use a model trained on these "
                "classes, or start from a plain UNet2DModel (the joint model's UNet without its head) to train a new "
                "classifier."
            )
        if config.label_names and label_names and list(config.label_names) != list(label_names):
            logger.warning(
                f"The model's classes are named {list(config.label_names)} but the data's {list(label_names)}: check "
                "that index i means the same class in both."
            )

    # ------------------------------------------------------------------ forward paths

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        class_labels: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> UNet2DOutput | tuple:
        """Noise prediction, exactly as [`~diffusers.UNet2DModel.forward`]; the input's shape is checked first."""
        self.check_sample(sample)
        return super().forward(sample, timestep, class_labels=class_labels, return_dict=return_dict)

    def _time_embedding(self, sample: torch.Tensor, timestep: torch.Tensor | float | int) -> torch.Tensor:
        # Same arithmetic as UNet2DModel.forward's step 1, so encoder features equal those of a full forward.
        timesteps = timestep
        if not torch.is_tensor(timesteps):
            timesteps = torch.tensor([timesteps], dtype=torch.long, device=sample.device)
        elif timesteps.ndim == 0:
            timesteps = timesteps[None].to(sample.device)
        timesteps = timesteps * torch.ones(sample.shape[0], dtype=timesteps.dtype, device=timesteps.device)
        t_emb = self.time_proj(timesteps).to(dtype=self.dtype)
        return self.time_embedding(t_emb)

    # Accelerate's offload hook fires on `forward` only: `classify` and `extract_features` run through here instead
    @apply_forward_hook
    def encode(
        self, sample: torch.Tensor, timestep: torch.Tensor | float | int = 0, return_dict: bool = True
    ) -> JointUNet2DEncoderOutput | tuple:
        """
        Run only the encoder half of the UNet (input convolution, down blocks, mid block).

        Args:
            sample (`torch.Tensor` of shape `(batch, channels, height, width)`):
                Images in [-1, 1] (or noisy images at `timestep`).
            timestep (`torch.Tensor` or `float` or `int`, *optional*, defaults to 0):
                The diffusion timestep the encoder is conditioned on; 0 means clean images.
            return_dict (`bool`, *optional*, defaults to `True`):
                Whether to return a [`JointUNet2DEncoderOutput`] instead of a tuple `(hidden_states, features)`.
        """
        if self.class_embedding is not None:
            raise ValueError(
                "`encode` does not support class-conditional UNets (`class_embed_type`/`num_class_embeds`)."
            )
        self.check_sample(sample)
        if self.config.center_input_sample:
            sample = 2 * sample - 1.0
        emb = self._time_embedding(sample, timestep)
        skip_sample = sample
        hidden = self.conv_in(sample)
        hidden_states = []
        for block in self.down_blocks:
            if hasattr(block, "skip_conv"):
                hidden, _, skip_sample = block(hidden_states=hidden, temb=emb, skip_sample=skip_sample)
            else:
                hidden, _ = block(hidden_states=hidden, temb=emb)
            hidden_states.append(hidden)
        if self.mid_block is not None:
            hidden = self.mid_block(hidden, emb)
            hidden_states.append(hidden)
        features = self._classifier_input(hidden_states)
        if not return_dict:
            return hidden_states, features
        return JointUNet2DEncoderOutput(hidden_states=hidden_states, features=features)

    def _classifier_input(self, hidden_states: Sequence[torch.Tensor]) -> torch.Tensor:
        return _pool([hidden_states[i] for i in self.classifier_stages])

    def extract_features(self, sample: torch.Tensor, timestep: torch.Tensor | float | int = 0) -> torch.Tensor:
        """Pooled and concatenated encoder features, shape `(batch, feature_dim)`."""
        return self.encode(sample, timestep).features

    def classify(self, images: torch.Tensor, timestep: torch.Tensor | float | int = 0) -> torch.Tensor:
        """
        Class logits of `images`, shape `(batch, num_classes)`.

        Args:
            images (`torch.Tensor` of shape `(batch, channels, height, width)`):
                Images scaled to [-1, 1], as the diffusion model sees them.
            timestep (`torch.Tensor` or `float` or `int`, *optional*, defaults to 0):
                Timestep the encoder is conditioned on. Joint Diffusion trains the classifier on clean images, so
                keep the default unless the model was trained otherwise.
        """
        return self.classifier(self.extract_features(images, timestep))

    def calibrated_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """`logits / classifier_temperature`: softmax (or sigmoid) of these are the calibrated probabilities."""
        return logits / self.config.get("classifier_temperature", 1.0)

    def probabilities(self, logits: torch.Tensor, calibrated: bool = True) -> torch.Tensor:
        """
        Class probabilities of classifier logits, in float32: softmax (single-label) or per-label sigmoid (multi-label)
        of `logits / classifier_temperature` (of the raw logits with `calibrated=False`).
        """
        logits = logits.float()
        if calibrated:
            logits = self.calibrated_logits(logits)
        return logits.sigmoid() if self.is_multi_label else logits.softmax(dim=1)

    def forward_with_features(
        self, sample: torch.Tensor, timestep: torch.Tensor | float | int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        The noise prediction of `sample` at `timestep` and the pooled encoder features of the same forward pass, as
        [`~JointUNet2DModel.extract_features`] would give them: the classifier can read noisy images at no extra cost.

        Returns:
            `tuple[torch.Tensor, torch.Tensor]`: the noise prediction `(batch, channels, height, width)` and the
            features `(batch, feature_dim)`.
        """
        modules = list(self.down_blocks) + ([self.mid_block] if self.mid_block is not None else [])
        outputs: list[torch.Tensor] = []

        def hook(module, args, output):
            outputs.append(output[0] if isinstance(output, tuple) else output)

        handles = [module.register_forward_hook(hook) for module in modules]
        try:
            noise_pred = self(sample, timestep).sample
        finally:
            for handle in handles:
                handle.remove()
        return noise_pred, self._classifier_input(outputs)

    @contextlib.contextmanager
    def shift_encoder_features(self, shifts: Sequence[torch.Tensor]) -> Iterator[None]:
        """
        Within the context, add `shifts[i]` (broadcast over height and width) to the output of encoder stage `i`
        (down blocks, then the mid block) in every forward pass. The decoder then reads the shifted representations
        through the skip connections: this is how feature-space guidance edits what the UNet denoises.

        Args:
            shifts (`Sequence[torch.Tensor]`):
                One tensor per encoder stage, each of shape `(batch, channels_i)`; see
                [`~JointUNet2DModel.feature_channels`].
        """
        modules = list(self.down_blocks) + ([self.mid_block] if self.mid_block is not None else [])
        if len(shifts) != len(modules):
            raise ValueError(f"Expected one shift per encoder stage ({len(modules)}), got {len(shifts)}.")

        def make_hook(shift: torch.Tensor):
            def hook(module, args, output):
                delta = shift.to(dtype=self.dtype)[:, :, None, None]
                if isinstance(output, tuple):  # down block: (hidden_states, res_samples[, skip_sample])
                    hidden, res_samples, *rest = output
                    # The block's last residual is its output, so the decoder's skip sees the shift too.
                    res_samples = tuple(res_samples[:-1]) + (res_samples[-1] + delta,)
                    return (hidden + delta, res_samples, *rest)
                return output + delta

            return hook

        handles = [module.register_forward_hook(make_hook(shift)) for module, shift in zip(modules, shifts)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs) -> "JointUNet2DModel":
        """
        Load a saved model, as [`~diffusers.ModelMixin.from_pretrained`], but from safetensors only by default: a
        folder holding only pickled weights (`.bin`) raises instead of being unpickled. Pass `use_safetensors=False`
        to allow unpickling weights you trust.
        """
        if kwargs.get("use_safetensors") is None:
            kwargs["use_safetensors"] = True
        elif kwargs["use_safetensors"] is False:
            logger.warning(
                "use_safetensors=False: pickled weights may be loaded, which can run arbitrary code. Only do this "
                "for files you trust."
            )
        try:
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        except OSError as error:
            _raise_if_corrupted(pretrained_model_name_or_path, kwargs.get("subfolder"), error)
            raise

    @classmethod
    def from_unet(
        cls,
        unet: UNet2DModel | str | os.PathLike,
        num_classes: int,
        classifier_hidden_dims: tuple[int, ...] = (256,),
        classifier_dropout: float = 0.0,
        problem_type: str = SINGLE_LABEL,
        label_names: list[str] | None = None,
        classifier_feature_stages: list[int] | None = None,
        **kwargs,
    ) -> "JointUNet2DModel":
        """
        Build a joint model from a trained [`~diffusers.UNet2DModel`] (an instance, a local folder or a Hub id).

        The UNet weights are copied exactly; the classifier head is freshly initialised (PyTorch's default
        initialisation) on the UNet's device and dtype. `kwargs` go to `UNet2DModel.from_pretrained` (e.g.
        `subfolder="unet"`) when `unet` is a path.

        A [`JointUNet2DModel`] (an instance or a saved one) is returned as is, with its trained classifier head, after
        checking that its classes fit `num_classes`, `problem_type` and `label_names` (see
        [`~JointUNet2DModel.check_classes`]); the head options are then ignored.
        """
        if not isinstance(unet, UNet2DModel):
            kwargs.setdefault("use_safetensors", True)
            config_kwargs = ("subfolder", "cache_dir", "token", "revision", "local_files_only")
            saved_config = cls.load_config(unet, **{k: v for k, v in kwargs.items() if k in config_kwargs})
            # A saved joint model keeps its trained head, so its classes must be the ones asked for.
            model_cls = cls if saved_config.get("_class_name") == cls.__name__ else UNet2DModel
            unet = model_cls.from_pretrained(unet, **kwargs)
        if isinstance(unet, JointUNet2DModel):
            unet.check_classes(num_classes, problem_type, label_names)
            return unet
        config = {k: v for k, v in unet.config.items() if not k.startswith("_")}
        model = cls(
            **config,
            num_classes=num_classes,
            classifier_hidden_dims=classifier_hidden_dims,
            classifier_dropout=classifier_dropout,
            problem_type=problem_type,
            label_names=label_names,
            classifier_feature_stages=classifier_feature_stages,
        )
        missing, unexpected = model.load_state_dict(unet.state_dict(), strict=False)
        if unexpected or any(not key.startswith("classifier.") for key in missing):
            raise ValueError(f"UNet weights do not fit: missing {missing}, unexpected {unexpected}.")
        param = next(unet.parameters())
        if param.device != model.device or param.dtype != model.dtype:
            model = model.to(device=param.device, dtype=param.dtype)
        return model
