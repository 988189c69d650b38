"""Pseudo-labels default on where they apply, off elsewhere; a choice that cannot apply is refused."""

import pytest

from diffusers_joint.training import PSEUDO_LABEL_DEFAULTS, PseudoLabelSettings, resolve_pseudo_label_settings


def resolved(fixmatch=None, noisy=None, alignment=None, multi_label=False, some_unlabeled=True, diffusion=True):
    return resolve_pseudo_label_settings(
        fixmatch, noisy, alignment, multi_label=multi_label, num_classes=3, some_unlabeled=some_unlabeled,
        diffusion=diffusion,
    )  # fmt: skip


def test_pseudo_labels_default_on_where_they_apply_and_alignment_follows_fixmatch():
    on = PSEUDO_LABEL_DEFAULTS["fixmatch"]
    assert resolved() == PseudoLabelSettings(on, PSEUDO_LABEL_DEFAULTS["noisy_pseudo_label_weight"], on)
    off = PseudoLabelSettings(False, 0.0, False)
    assert resolved(some_unlabeled=False) == off  # nothing to pseudo-label
    assert resolved(multi_label=True) == off  # no single class to guess
    assert resolved(diffusion=False) == off  # the classifier-only baseline drops the unlabeled images
    assert resolved(fixmatch=True) == PseudoLabelSettings(
        True, PSEUDO_LABEL_DEFAULTS["noisy_pseudo_label_weight"], True
    )
    assert resolved(fixmatch=True, alignment=False).distribution_alignment is False
    assert resolved(fixmatch=False, noisy=0) == off


def test_pseudo_labels_that_cannot_apply_are_refused():
    with pytest.raises(
        ValueError, match=r"multi-label \(3 independent 0/1 labels per image\): train without --fixmatch"
    ):
        resolved(fixmatch=True, multi_label=True)
    with pytest.raises(ValueError, match="train without --noisy_pseudo_label_weight"):
        resolved(noisy=1.0, multi_label=True)
    with pytest.raises(ValueError, match="aligns FixMatch pseudo-labels, which are off here"):
        resolved(fixmatch=False, alignment=True)


def test_pseudo_labels_asked_for_with_nothing_to_pseudo_label_are_kept_with_a_warning(caplog):
    with caplog.at_level("WARNING"):
        assert resolved(fixmatch=True, some_unlabeled=False).fixmatch
    assert "but every training image is labeled: they change nothing" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        resolved(fixmatch=False, noisy=1.0, diffusion=False)
    assert "but there is no denoising pass: they change nothing" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        resolved(some_unlabeled=False)  # nothing asked for: nothing to warn about
    assert caplog.text == ""
