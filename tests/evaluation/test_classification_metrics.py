import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from diffusers_joint.evaluation import compute_classification_metrics, expected_calibration_error


def test_single_label_metrics_against_hand_computed_values():
    labels = np.array([0, 0, 0, 1, 2, 2])
    probs = np.array(
        [
            [0.8, 0.1, 0.1],  # right
            [0.6, 0.3, 0.1],  # right
            [0.2, 0.7, 0.1],  # wrong (predicts 1)
            [0.1, 0.8, 0.1],  # right
            [0.1, 0.1, 0.8],  # right
            [0.5, 0.1, 0.4],  # wrong (predicts 0)
        ]
    )
    m = compute_classification_metrics(labels, probs)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # recalls: class 0 2/3, class 1 1/1, class 2 1/2
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    # F1: class 0 p=2/3 r=2/3 -> 2/3; class 1 p=1/2 r=1 -> 2/3; class 2 p=1 r=1/2 -> 2/3
    assert m["macro_f1"] == pytest.approx(2 / 3)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 0], [1, 0, 1]]
    # one-vs-rest AUCs by hand: class 0: pairs (pos 0.8,0.6,0.2 vs neg 0.1,0.1,0.5) -> 8/9
    # class 1: pos 0.8 vs neg 0.1,0.3,0.7,0.1,0.1 -> 5/5; class 2: pos 0.8,0.4 vs 0.1,0.1,0.1,0.1 -> 8/8
    assert m["roc_auc"] == pytest.approx((8 / 9 + 1 + 1) / 3)
    assert m["num_examples"] == 6


def test_binary_auc_and_torch_inputs():
    labels = torch.tensor([0, 0, 1, 1])
    probs = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.65, 0.35], [0.2, 0.8]])
    m = compute_classification_metrics(labels, probs)
    # positives score 0.35, 0.8; negatives 0.1, 0.6 -> 3 of 4 pairs ordered
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(0.5)


def test_degenerate_single_class_batch_gives_nan_auc_not_an_error():
    m = compute_classification_metrics(np.array([1, 1, 1]), np.array([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]]))
    assert math.isnan(m["roc_auc"])
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)


def test_multi_label_metrics():
    labels = np.array([[1, 0], [1, 1], [0, 0], [0, 1]])
    probs = np.array([[0.9, 0.2], [0.7, 0.4], [0.3, 0.1], [0.6, 0.9]])
    m = compute_classification_metrics(labels, probs, "multi_label_classification", label_names=["a", "b"])
    # predictions: [1,0], [1,0], [0,0], [1,1] -> rows 0 and 2 exact
    assert m["subset_accuracy"] == pytest.approx(0.5)
    assert m["hamming_accuracy"] == pytest.approx(6 / 8)
    # label a: pos 0.9,0.7 vs neg 0.3,0.6 -> 1.0; label b: pos 0.4,0.9 vs neg 0.2,0.1 -> 1.0
    assert m["roc_auc_per_label"] == {"a": 1.0, "b": 1.0}
    assert m["roc_auc"] == 1.0
    # label a: sensitivity 2/2, specificity 1/2 -> 3/4; label b: sensitivity 1/2, specificity 2/2 -> 3/4
    assert m["balanced_accuracy"] == pytest.approx(0.75)
    # F1: label a p=2/3 r=1 -> 0.8; label b p=1 r=1/2 -> 2/3
    assert m["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    # [[TN, FP], [FN, TP]] per label
    assert m["confusion_matrix"] == [[[1, 1], [0, 2]], [[2, 0], [1, 1]]]
    # eight binary predictions; confidences max(p, 1 - p): 0.9 0.8 0.7 0.6 0.7 0.9 0.6 0.9; the two at 0.6 (row 1
    # label b, row 3 label a) are wrong. Bins: {0.6, 0.6} acc 0; {0.7, 0.7} acc 1; {0.8} acc 1; {0.9 x3} acc 1
    expected = (2 * abs(0 - 0.6) + 2 * abs(1 - 0.7) + abs(1 - 0.8) + 3 * abs(1 - 0.9)) / 8
    assert m["ece"] == pytest.approx(expected)


def test_multi_label_degenerate_labels_give_nan_not_errors():
    labels = np.array([[1, 0], [1, 0], [1, 0]])  # label a always present, label b always absent
    probs = np.array([[0.9, 0.2], [0.4, 0.1], [0.8, 0.7]])
    m = compute_classification_metrics(labels, probs, "multi_label_classification")
    assert math.isnan(m["roc_auc"]) and math.isnan(m["balanced_accuracy"])
    assert m["hamming_accuracy"] == pytest.approx(4 / 6)
    assert m["subset_accuracy"] == pytest.approx(1 / 3)


def test_expected_calibration_error_by_hand():
    # two bins used: confidences 0.9 (2 right of 2) and 0.6 (1 right of 2)
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.6, 0.4]])
    # bin 0.9: acc 1, conf 0.9 -> 0.1 * 0.5; bin 0.6: acc 0.5, conf 0.6 -> 0.1 * 0.5
    assert expected_calibration_error(labels, probs) == pytest.approx(0.1)


def test_bad_inputs():
    with pytest.raises(ValueError, match="3 labels but 2 rows"):
        compute_classification_metrics(np.array([0, 1, 1]), np.ones((2, 2)) / 2)
    with pytest.raises(ValueError, match="empty"):
        compute_classification_metrics(np.array([], dtype=int), np.ones((0, 2)))


def test_local_evaluate_metric_batches_and_matches_the_function(tmp_path):
    from diffusers_joint.evaluation import JointClassificationMetric

    labels = np.array([0, 0, 0, 1, 2, 2])
    probs = np.array(
        [[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.5, 0.1, 0.4]]
    )
    metric = JointClassificationMetric(cache_dir=str(tmp_path))
    metric.add_batch(predictions=probs[:4].tolist(), references=labels[:4].tolist())
    metric.add_batch(predictions=probs[4:].tolist(), references=labels[4:].tolist())
    assert metric.compute() == compute_classification_metrics(labels, probs)

    multi = JointClassificationMetric("multi_label_classification", label_names=["a", "b"], keep_in_memory=True)
    result = multi.compute(predictions=[[0.9, 0.2], [0.3, 0.6]], references=[[1, 0], [0, 1]])
    assert result["subset_accuracy"] == 1.0 and set(result["roc_auc_per_label"]) == {"a", "b"}
    with pytest.raises(ValueError, match="Unknown problem_type"):
        JointClassificationMetric("regression")


def test_a_class_absent_from_the_evaluation_split_and_unnormalised_scores_are_handled():
    """A 4-class model scored on a split of classes 0-2; scores rounded so rows no longer sum to 1."""
    labels = np.array([0, 1, 2, 0, 1, 2])
    perfect = np.eye(4)[labels] * 0.97 + 0.01
    result = compute_classification_metrics(labels, perfect)
    assert result["macro_f1"] == 1.0 and result["balanced_accuracy"] == 1.0 and result["roc_auc"] == 1.0
    rounded = np.array([[0.33, 0.33, 0.33], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7], [0.5, 0.3, 0.2], [0.33, 0.33, 0.33],
                        [0.2, 0.2, 0.6]])  # fmt: skip
    expected = np.mean([roc_auc_score(labels == c, rounded[:, c]) for c in range(3)])
    assert compute_classification_metrics(labels, rounded)["roc_auc"] == pytest.approx(expected)
    valid = rounded / rounded.sum(axis=1, keepdims=True)  # sklearn's multi-class AUC agrees on valid rows
    assert compute_classification_metrics(labels, valid)["roc_auc"] == pytest.approx(
        roc_auc_score(labels, valid, multi_class="ovr", average="macro")
    )
