# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
import pytest
import torch

from diffusers_joint import JointDiffusionPipeline
from diffusers_joint.training import fit_temperature, negative_log_likelihood
from tiny_models import tiny_joint_pipeline


def overconfident_logits(n, seed):
    """A 3-class model that is right 70 % of the time but says so with logits of 8: over-confident."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=generator)
    predicted = torch.where(torch.rand(n, generator=generator) < 0.7, labels, (labels + 1) % 3)
    logits = torch.nn.functional.one_hot(predicted, 3).float() * 8 + torch.randn(n, 3, generator=generator)
    return logits, labels


def test_temperature_lowers_held_out_nll_of_an_overconfident_model():
    logits, labels = overconfident_logits(400, seed=0)
    held_out_logits, held_out_labels = overconfident_logits(400, seed=1)
    temperature = fit_temperature(logits, labels)
    assert temperature > 2
    before = negative_log_likelihood(held_out_logits, held_out_labels)
    after = negative_log_likelihood(held_out_logits / temperature, held_out_labels)
    assert after < 0.6 * before, (before, after)
    # never changes the decision
    assert torch.equal((held_out_logits / temperature).argmax(1), held_out_logits.argmax(1))


def test_multi_label_temperature_and_bad_input():
    logits, labels = overconfident_logits(300, seed=0)
    multi = torch.nn.functional.one_hot(labels, 3)
    assert fit_temperature(logits, multi, multi_label=True) > 1
    with pytest.raises(ValueError, match="as many labels as logits"):
        fit_temperature(logits, labels[:10])


def test_temperature_round_trips_into_classify(tmp_path):
    pipe = tiny_joint_pipeline()
    images = torch.rand(5, 1, 8, 8) * 2 - 1
    raw = pipe.classify(images).probs
    pipe.unet.register_to_config(classifier_temperature=2.5)
    pipe.save_pretrained(tmp_path)
    loaded = JointDiffusionPipeline.from_pretrained(tmp_path)
    assert loaded.unet.config.classifier_temperature == 2.5
    with torch.no_grad():
        logits = loaded.unet.classify(images)
    torch.testing.assert_close(loaded.classify(images).probs, (logits / 2.5).softmax(1))
    assert torch.equal(loaded.classify(images).labels, raw.argmax(1))
    assert not torch.allclose(loaded.classify(images).probs, raw)


def test_models_saved_without_a_temperature_load_uncalibrated(tmp_path):
    pipe = tiny_joint_pipeline()
    pipe.save_pretrained(tmp_path)
    config = tmp_path / "unet" / "config.json"
    config.write_text(config.read_text().replace('"classifier_temperature": 1.0,', ""))
    assert "classifier_temperature" not in config.read_text()
    loaded = JointDiffusionPipeline.from_pretrained(tmp_path)
    images = torch.rand(3, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        expected = loaded.unet.classify(images).softmax(1)
    torch.testing.assert_close(loaded.classify(images).probs, expected)
