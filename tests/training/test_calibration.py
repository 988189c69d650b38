# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
import pytest
import torch

from diffusers_joint import JointDiffusionPipeline
from diffusers_joint.evaluation import compute_classification_metrics
from diffusers_joint.models.unet_2d_joint import MULTI_LABEL
from diffusers_joint.training import (
    TemperatureCalibration,
    build_model_card,
    calibrate_temperature,
    calibration_error,
    fit_temperature,
    negative_log_likelihood,
)
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
    saved_before = config.read_text().replace('"classifier_temperature": 1.0,', "")
    config.write_text(saved_before.replace('"classifier_calibration": null,', ""))
    assert "classifier_temperature" not in config.read_text() and "classifier_calibration" not in config.read_text()
    loaded = JointDiffusionPipeline.from_pretrained(tmp_path)
    assert loaded.unet.config.classifier_calibration is None
    images = torch.rand(3, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        expected = loaded.unet.classify(images).softmax(1)
    torch.testing.assert_close(loaded.classify(images).probs, expected)


def calibrated_logits(n, seed):
    """A 3-class model whose probabilities are right: labels drawn from its own softmax (best temperature: 1)."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 3, generator=generator) * 2
    labels = torch.multinomial(logits.softmax(1), 1, generator=generator).squeeze(1)
    return logits, labels


def test_the_decision_is_deterministic_by_seed():
    logits, labels = overconfident_logits(120, seed=3)
    first = calibrate_temperature(logits, labels, seed=7)
    assert calibrate_temperature(logits, labels, seed=7) == first
    other = calibrate_temperature(logits, labels, seed=8)  # other folds: another held-out estimate
    assert other.held_out_nll_gain != first.held_out_nll_gain
    assert other.fitted_temperature == first.fitted_temperature  # the fit on all images needs no folds


def test_a_20_image_split_never_changes_the_temperature():
    for seed in range(5):
        logits, labels = overconfident_logits(20, seed=seed)
        calibration = calibrate_temperature(logits, labels, seed=seed)
        assert calibration.fitted_temperature > 1.5  # a fit would have changed the probabilities a lot
        assert calibration.temperature == 1.0 and calibration.decision == "too_few_images"
        assert calibration.held_out_nll_gain is None
        assert calibration.nll_calibrated == calibration.nll_uncalibrated
        assert "at least 50 validation images are needed" in calibration.describe()
        # with the minimum lowered, the held-out check decides, and T is either 1 or the fitted one
        checked = calibrate_temperature(logits, labels, seed=seed, min_validation_size=10)
        beats_noise = checked.held_out_nll_gain > checked.noise_multiplier * checked.held_out_nll_gain_standard_error
        assert checked.temperature == (checked.fitted_temperature if beats_noise else 1.0)


def test_a_large_split_keeps_a_temperature_that_helps_and_refuses_one_that_does_not():
    logits, labels = overconfident_logits(400, seed=0)
    calibration = calibrate_temperature(logits, labels)
    assert calibration.decision == "applied" and calibration.temperature == calibration.fitted_temperature > 2
    assert calibration.held_out_nll_gain > 3 * calibration.held_out_nll_gain_standard_error
    assert calibration.ece_calibrated < calibration.ece_uncalibrated / 2
    assert calibration.nll_calibrated < calibration.nll_uncalibrated
    # already calibrated: the fitted temperature is near 1 and within noise, so it is not applied
    logits, labels = calibrated_logits(400, seed=0)
    calibration = calibrate_temperature(logits, labels, min_temperature=0.05)  # no floor: a fit of its own
    assert calibration.decision == "not_significant" and calibration.temperature == 1.0
    assert calibration.fitted_temperature != 1.0
    assert calibrate_temperature(logits, labels).fitted_temperature >= 1.0  # the default floor
    assert "did not lower the negative log-likelihood by more than noise" in calibration.describe()
    # multi-label: per-label sigmoids, scored per image over all its labels
    logits, labels = overconfident_logits(300, seed=0)
    calibration = calibrate_temperature(logits, torch.nn.functional.one_hot(labels, 3), multi_label=True)
    assert calibration.decision == "applied" and calibration.temperature > 1


def test_the_decision_round_trips_through_the_config_and_the_card(tmp_path):
    logits, labels = overconfident_logits(200, seed=0)
    calibration = calibrate_temperature(logits, labels)
    pipe = tiny_joint_pipeline()
    calibration.register_to(pipe.unet)
    pipe.save_pretrained(tmp_path)
    loaded = JointDiffusionPipeline.from_pretrained(tmp_path)
    assert loaded.unet.config.classifier_temperature == calibration.temperature
    assert TemperatureCalibration.from_dict(loaded.unet.config.classifier_calibration) == calibration

    card_args = dict(
        model_name="m", label_names=["a", "b", "c"], dataset_description="d", num_labeled=200,
        num_train_examples=200, resolution=8, channels=1,
    )  # fmt: skip
    metrics = {"classifier_temperature": calibration.temperature, "calibration": calibration.to_dict()}
    text = build_model_card(**card_args, metrics=metrics).text
    assert f"Temperature {calibration.fitted_temperature:.2f} fitted on 200 validation images was applied" in text
    refused = calibrate_temperature(*calibrated_logits(200, seed=1))
    metrics = {"classifier_temperature": refused.temperature, "calibration": refused.to_dict()}
    text = build_model_card(**card_args, metrics=metrics).text
    assert "**Calibration:** not calibrated (`classifier_temperature` 1.0)" in text
    assert f"{refused.fitted_temperature:.2f} fitted on 200 validation images was not applied: on held-out" in text


def test_calibration_rejects_bad_settings():
    logits, labels = overconfident_logits(60, seed=0)
    with pytest.raises(ValueError, match="`num_folds` must be at least 2, got 1"):
        calibrate_temperature(logits, labels, num_folds=1)
    with pytest.raises(ValueError, match="`min_validation_size` \\(3\\) must be at least `num_folds` \\(5\\)"):
        calibrate_temperature(logits, labels, min_validation_size=3)
    with pytest.raises(ValueError, match="`noise_multiplier` must be >= 0, got -1"):
        calibrate_temperature(logits, labels, noise_multiplier=-1)
    with pytest.raises(ValueError, match="as many labels as logits"):
        calibrate_temperature(logits, labels[:10])
    with pytest.raises(ValueError, match="`decision` must be one of"):
        TemperatureCalibration.from_dict({**calibrate_temperature(logits, labels).to_dict(), "decision": "maybe"})


def test_the_fitted_temperature_never_sharpens_below_the_bound():
    # a split the model classifies without error: the NLL keeps falling as T goes to 0
    labels = torch.arange(120) % 3
    logits = (
        torch.nn.functional.one_hot(labels, 3).float() * 2
        + torch.randn(120, 3, generator=torch.Generator().manual_seed(0)) * 0.1
    )
    assert fit_temperature(logits, labels) < 0.2
    assert fit_temperature(logits, labels, min_temperature=0.75) == 0.75
    for bound in (0.5, 1.0):
        calibration = calibrate_temperature(logits, labels, min_temperature=bound)
        assert calibration.fitted_temperature == bound and calibration.min_temperature == bound
        assert calibration.temperature in (1.0, bound)
        assert "the lowest allowed" in calibration.describe()
    # a softening temperature is untouched by the bound
    logits, labels = overconfident_logits(200, seed=0)
    loose, never_sharpen = (calibrate_temperature(logits, labels, min_temperature=b) for b in (0.5, 1.0))
    assert never_sharpen.temperature == loose.temperature > 2
    assert never_sharpen.held_out_nll_gain == loose.held_out_nll_gain
    with pytest.raises(ValueError, match="min_temperature"):
        calibrate_temperature(logits, labels, min_temperature=1.5)


def test_a_record_saved_before_the_bound_existed_still_loads():
    logits, labels = overconfident_logits(200, seed=0)
    record = calibrate_temperature(logits, labels).to_dict()
    del record["min_temperature"]
    assert TemperatureCalibration.from_dict(record).min_temperature == 0.05


def test_multi_label_calibration_error_decides_as_the_multi_label_metrics_do():
    # Two present labels at p = 0.5 and 0.52 share a confidence bin. Both are decided positive (p >= 0.5), so both are
    # right and the bin's error is 1 - 0.51; reading p = 0.5 as negative would make it |0.5 - 0.51|.
    labels = torch.tensor([[1, 1]])
    logits = torch.logit(torch.tensor([[0.5, 0.52]], dtype=torch.float64))
    assert calibration_error(logits, labels, multi_label=True) == pytest.approx(0.49)
    metrics = compute_classification_metrics(labels.numpy(), logits.sigmoid().numpy(), MULTI_LABEL)
    assert metrics["hamming_accuracy"] == 1.0 and metrics["ece"] == pytest.approx(0.49)
