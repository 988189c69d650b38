import json
import re

import pytest
import torch
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

from diffusers_joint import JointUNet2DModel

UNET_KWARGS = dict(
    sample_size=16,
    in_channels=1,
    out_channels=1,
    block_out_channels=(8, 16, 24),
    down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
    layers_per_block=1,
    norm_num_groups=4,
    attention_head_dim=4,
)
JOINT_KWARGS = dict(
    num_classes=3,
    classifier_hidden_dims=(32, 16),
    classifier_dropout=0.1,
    problem_type="single_label_classification",
    label_names=["normal", "benign", "malignant"],
)


def make_model(**overrides) -> JointUNet2DModel:
    torch.manual_seed(0)
    return JointUNet2DModel(**{**UNET_KWARGS, **JOINT_KWARGS, **overrides}).eval()


def images(batch=2, channels=1, size=16, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, channels, size, size, generator=generator) * 2 - 1


def test_noise_prediction_equals_plain_unet_with_the_same_weights():
    model = make_model()
    plain = UNet2DModel(**UNET_KWARGS).eval()
    missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False)
    assert not missing and all(key.startswith("classifier.") for key in unexpected)
    x = images()
    with torch.no_grad():
        assert torch.equal(model(x, 7).sample, plain(x, 7).sample)
        assert torch.equal(model(x, 7, return_dict=False)[0], plain(x, 7).sample)


def test_feature_dim_matches_hand_count_and_hooks_on_full_forward():
    model = make_model()
    # three down blocks (8 + 16 + 24 channels) and the mid block (24 channels)
    assert model.feature_channels == [8, 16, 24, 24]
    assert model.feature_dim == 72
    assert model.classifier.layers[0].in_features == 72
    x = images(batch=3)
    seen = []
    stages = list(model.down_blocks) + [model.mid_block]
    handles = [
        m.register_forward_hook(lambda m, a, o: seen.append(o[0] if isinstance(o, tuple) else o)) for m in stages
    ]
    with torch.no_grad():
        model(x, 0)
        for handle in handles:
            handle.remove()
        out = model.encode(x, 0)
    assert len(seen) == 4
    assert [tuple(h.shape) for h in out.hidden_states] == [(3, 8, 8, 8), (3, 16, 4, 4), (3, 24, 4, 4), (3, 24, 4, 4)]
    # the encoder-only path reproduces exactly the activations of the full forward
    for full, encoded in zip(seen, out.hidden_states):
        assert torch.equal(full, encoded)
    expected = torch.cat([h.mean(dim=(2, 3)) for h in seen], dim=1)
    assert torch.equal(out.features, expected)
    assert out.features.shape == (3, 72)


def test_classify_defaults_to_timestep_zero_and_depends_on_timestep():
    model = make_model(classifier_dropout=0.0)
    x = images()
    with torch.no_grad():
        logits = model.classify(x)
        assert logits.shape == (2, 3)
        assert torch.equal(logits, model.classify(x, timestep=0))
        assert torch.equal(logits, model.classifier(model.extract_features(x, 0)))
        assert not torch.allclose(logits, model.classify(x, timestep=500))


def test_a_fourier_time_embedding_is_refused_since_the_classifier_reads_timestep_zero():
    # Gaussian Fourier projection embeds log(t): NaN logits at the classifier's timestep 0
    with pytest.raises(ValueError, match="time_embedding_type"):
        make_model(time_embedding_type="fourier")
    torch.manual_seed(0)
    plain = UNet2DModel(**{**UNET_KWARGS, "time_embedding_type": "fourier"})
    with pytest.raises(ValueError, match="timestep 0"):
        JointUNet2DModel.from_unet(plain, num_classes=3)


def test_save_load_round_trip_is_exact(tmp_path):
    model = make_model()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").exists()
    assert not list(tmp_path.glob("*.bin"))
    loaded = JointUNet2DModel.from_pretrained(tmp_path).eval()
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    x = images()
    with torch.no_grad():
        assert torch.equal(model(x, 3).sample, loaded(x, 3).sample)
        assert torch.equal(model.classify(x), loaded.classify(x))


def test_config_round_trips_every_joint_setting(tmp_path):
    model = make_model(problem_type="multi_label_classification")
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["_class_name"] == "JointUNet2DModel"
    loaded = JointUNet2DModel.from_pretrained(tmp_path)
    for key, value in {**UNET_KWARGS, **JOINT_KWARGS, "problem_type": "multi_label_classification"}.items():
        got = loaded.config[key]
        assert (list(got) if isinstance(got, (list, tuple)) else got) == (
            list(value) if isinstance(value, (list, tuple)) else value
        ), key
    assert loaded.id2label == {0: "normal", 1: "benign", 2: "malignant"}
    assert loaded.label2id["malignant"] == 2
    assert loaded.is_multi_label


def test_from_unet_copies_weights_and_initialises_the_head(tmp_path):
    torch.manual_seed(0)
    plain = UNet2DModel(**UNET_KWARGS).eval()
    plain.save_pretrained(tmp_path / "plain")
    for source in (plain, tmp_path / "plain"):
        joint = JointUNet2DModel.from_unet(source, num_classes=5, label_names=list("abcde")).eval()
        assert joint.config.num_classes == 5 and joint.config.label_names == list("abcde")
        x = images()
        with torch.no_grad():
            assert torch.equal(joint(x, 11).sample, plain(x, 11).sample)
        for name, param in joint.classifier.named_parameters():
            assert param.device.type == "cpu", name
            assert torch.isfinite(param).all(), name
        weight = joint.classifier.layers[0].weight
        # PyTorch's default Linear init: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), not zeros
        assert weight.abs().max() <= 1 / joint.feature_dim**0.5 + 1e-6 and weight.std() > 0
        assert joint.classify(x).shape == (2, 5)


def test_stock_ddpm_pipeline_runs_on_the_joint_model():
    model = make_model()
    pipe = DDPMPipeline(unet=model, scheduler=DDPMScheduler(num_train_timesteps=20))
    pipe.set_progress_bar_config(disable=True)
    out = pipe(batch_size=2, num_inference_steps=5, generator=torch.Generator().manual_seed(0), output_type="np")
    again = pipe(batch_size=2, num_inference_steps=5, generator=torch.Generator().manual_seed(0), output_type="np")
    assert out.images.shape == (2, 16, 16, 1)
    assert (out.images == again.images).all()


def test_shift_encoder_features_moves_features_and_is_removed_afterwards():
    model = make_model()
    x = images()
    shifts = [torch.full((2, c), 0.5) for c in model.feature_channels]
    with torch.no_grad():
        base = model(x, 5).sample
        with model.shift_encoder_features(shifts):
            shifted = model(x, 5).sample
        after = model(x, 5).sample
    assert not torch.allclose(base, shifted)
    assert torch.equal(base, after)
    with pytest.raises(ValueError, match="one shift per encoder stage"):
        with model.shift_encoder_features(shifts[:2]):
            pass


@pytest.mark.parametrize(
    "bad, match",
    [
        (images(channels=3), r"3 channels but the model expects in_channels=1"),
        (images(size=10), r"10x10.*multiples of 4"),
        (torch.zeros(16, 16), r"4-D tensor"),
    ],
)
def test_bad_shapes_raise_value_error_naming_expected_and_received(bad, match):
    model = make_model()
    with pytest.raises(ValueError, match=match):
        model(bad, 0)
    with pytest.raises(ValueError, match=match):
        model.classify(bad)


def test_label_checks():
    model = make_model()
    model.check_labels(torch.tensor([0, 2, 1]))
    model.check_labels(torch.tensor([0, -1]), allow_unlabeled=True)
    with pytest.raises(ValueError, match=r"\[0, 3\).*got \[3\]"):
        model.check_labels(torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"got \[-1\]"):
        model.check_labels(torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match="1-D integer"):
        model.check_labels(torch.tensor([[0.0, 1.0]]))
    multi = make_model(problem_type="multi_label_classification")
    multi.check_labels(torch.tensor([[0, 1, 1], [-1, -1, -1]]), allow_unlabeled=True)
    with pytest.raises(ValueError, match=r"\(batch, 3\)"):
        multi.check_labels(torch.tensor([[0, 1]]))


def test_invalid_joint_config_raises():
    with pytest.raises(ValueError, match="problem_type"):
        make_model(problem_type="regression")
    with pytest.raises(ValueError, match="expected 3 names, got 2"):
        make_model(label_names=["a", "b"])
    with pytest.raises(ValueError, match="classifier_temperature` must be > 0"):
        make_model(classifier_temperature=0.0)


def test_forward_with_features_is_one_pass_giving_the_noise_prediction_and_the_encoder_features():
    model = make_model()
    x, t = images(3), torch.tensor([0, 5, 40])
    calls = []
    handle = model.conv_in.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        noise_pred, features = model.forward_with_features(x, t)
    assert len(calls) == 1
    handle.remove()
    with torch.no_grad():
        torch.testing.assert_close(noise_pred, model(x, t).sample)
        torch.testing.assert_close(features, model.extract_features(x, t))
    assert not model.down_blocks[0]._forward_hooks, "the hooks are removed afterwards"


def test_loading_refuses_pickled_weights_unless_allowed(tmp_path):
    model = make_model()
    model.save_pretrained(tmp_path, safe_serialization=False)
    assert (tmp_path / "diffusion_pytorch_model.bin").exists()
    with pytest.raises(EnvironmentError, match="safetensors"):
        JointUNet2DModel.from_pretrained(tmp_path)
    loaded = JointUNet2DModel.from_pretrained(tmp_path, use_safetensors=False)
    assert torch.equal(loaded.classifier.layers[0].weight, model.classifier.layers[0].weight)


def test_truncated_safetensors_file_gives_a_clear_error(tmp_path):
    model = make_model()
    model.save_pretrained(tmp_path)
    weights = tmp_path / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(OSError, match=r"diffusion_pytorch_model.safetensors is truncated or corrupted"):
        JointUNet2DModel.from_pretrained(tmp_path)


def test_pickled_only_folder_error_says_why_and_how_to_allow(tmp_path):
    make_model().save_pretrained(tmp_path, safe_serialization=False)
    with pytest.raises(OSError, match=r"holds only pickled weights \(diffusion_pytorch_model.bin\).*arbitrary code"):
        JointUNet2DModel.from_pretrained(tmp_path)


@pytest.mark.parametrize("offset", [8, 200])
def test_corrupted_safetensors_file_gives_a_clear_error(tmp_path, offset):
    make_model().save_pretrained(tmp_path)
    weights = tmp_path / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[offset : offset + 8] = b"\xff" * 8  # garbage in the JSON header (same file size: not a truncation)
    weights.write_bytes(bytes(data))
    with pytest.raises(OSError, match=r"diffusion_pytorch_model.safetensors is truncated or corrupted"):
        JointUNet2DModel.from_pretrained(tmp_path)


def test_from_unet_keeps_a_joint_models_head_only_when_the_classes_fit(tmp_path, caplog):
    joint = make_model()
    joint.save_pretrained(tmp_path)
    for source in (joint, tmp_path):
        kept = JointUNet2DModel.from_unet(source, num_classes=3, label_names=["normal", "benign", "malignant"])
        assert torch.equal(kept.classifier.layers[-1].weight, joint.classifier.layers[-1].weight)
        with pytest.raises(ValueError, match=r"num_classes=3 in the model but 10 in the data"):
            JointUNet2DModel.from_unet(source, num_classes=10)
        with pytest.raises(ValueError, match=r"problem_type='single_label_classification' in the model but"):
            JointUNet2DModel.from_unet(source, num_classes=3, problem_type="multi_label_classification")
    with caplog.at_level("WARNING"):
        JointUNet2DModel.from_unet(joint, num_classes=3, label_names=["0", "1", "2"])
    assert "named ['normal', 'benign', 'malignant'] but the data's ['0', '1', '2']" in caplog.text


def test_classifier_feature_stages_select_what_the_head_reads_and_round_trip(tmp_path):
    model = make_model(classifier_feature_stages=[-1])
    assert model.classifier_stages == [3] and model.feature_dim == 24
    x, t = images(3), torch.tensor([0, 5, 40])
    with torch.no_grad():
        encoded = model.encode(x, t)
        torch.testing.assert_close(encoded.features, encoded.hidden_states[-1].mean(dim=(2, 3)))
        torch.testing.assert_close(model.classify(x, t), model.classifier(encoded.hidden_states[-1].mean(dim=(2, 3))))
        torch.testing.assert_close(model.forward_with_features(x, t)[1], encoded.features)
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["classifier_feature_stages"] == [-1]
    loaded = JointUNet2DModel.from_pretrained(tmp_path).eval()
    assert loaded.classifier_stages == [3]
    with torch.no_grad():
        torch.testing.assert_close(loaded.classify(x), model.classify(x), rtol=0, atol=0)
    two = make_model(classifier_feature_stages=[2, 0])
    assert two.classifier_stages == [0, 2] and two.feature_dim == 8 + 24


@pytest.mark.parametrize("stages", [[4], [-5], [], [1, 1], [3, -1], [1.0]])
def test_bad_classifier_feature_stages_name_the_value_and_the_range(stages):
    with pytest.raises(ValueError, match=r"classifier_feature_stages.*" + re.escape(str(stages))):
        make_model(classifier_feature_stages=stages)


def test_classify_and_extract_features_fire_the_offload_hook():
    # enable_model_cpu_offload moves the UNet to the accelerator in its hook's pre_forward, which Accelerate calls on
    # forward only: classify() and extract_features() would read the inputs on the accelerator with the UNet on the CPU
    class RecordingHook:
        calls = 0

        def pre_forward(self, module, *args, **kwargs):
            RecordingHook.calls += 1
            return args, kwargs

    unet = make_model().eval()
    unet._hf_hook = RecordingHook()
    with torch.no_grad():
        unet.classify(images())
        assert RecordingHook.calls == 1
        unet.extract_features(images(), 10)
        assert RecordingHook.calls == 2
