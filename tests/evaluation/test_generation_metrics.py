"""Frechet distance, KID, precision / recall and conditional accuracy against closed forms and hand-computed values."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from diffusers_joint.evaluation import (
    compute_generation_metrics,
    conditional_accuracy,
    frechet_distance,
    frechet_distance_from_statistics,
    kernel_inception_distance,
    precision_recall,
)


def samples_with_exact_moments(mean, cov, n, seed):
    """n samples whose sample mean and (unbiased) sample covariance are exactly `mean` and `cov`."""
    z = np.random.default_rng(seed).standard_normal((n, len(mean)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # sample covariance = identity
    return z @ np.linalg.cholesky(cov).T + mean


def test_frechet_distance_of_identical_sets_is_zero():
    x = np.random.default_rng(0).standard_normal((50, 6))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(torch.from_numpy(x), torch.from_numpy(x.copy())) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_of_diagonal_gaussians_matches_the_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    # |mu1 - mu2|^2 = 1 + 0 + 4 = 5; sum(var1 + var2 - 2 sqrt(var1 var2)) = (1+9-6) + (4+1-4) + 0 = 5
    x = samples_with_exact_moments(mu1, np.diag(var1), 400, seed=1)
    y = samples_with_exact_moments(mu2, np.diag(var2), 300, seed=2)
    assert frechet_distance(x, y) == pytest.approx(10.0, rel=1e-9)


def test_frechet_distance_with_full_covariances_matches_scipy_sqrtm():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    sigma1, sigma2 = a @ a.T + 0.1 * np.eye(4), b @ b.T + 0.1 * np.eye(4)
    mu1, mu2 = rng.standard_normal(4), rng.standard_normal(4)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(sigma1 + sigma2 - 2 * scipy.linalg.sqrtm(sigma1 @ sigma2).real)
    assert frechet_distance_from_statistics(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-8)
    x = samples_with_exact_moments(mu1, sigma1, 200, seed=4)
    y = samples_with_exact_moments(mu2, sigma2, 200, seed=5)
    assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_is_finite_for_fewer_samples_than_dimensions():
    rng = np.random.default_rng(0)
    value = frechet_distance(rng.standard_normal((5, 64)), rng.standard_normal((7, 64)) + 1)
    assert math.isfinite(value) and value > 64  # the mean shift alone contributes about 64


def test_frechet_distance_rejects_bad_inputs():
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="Feature sizes differ"):
        frechet_distance(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((4, 3), np.nan), np.zeros((4, 3)))


def test_kid_is_about_zero_for_one_distribution_and_positive_for_a_shifted_one():
    rng = np.random.default_rng(0)
    real, same = rng.standard_normal((400, 8)), rng.standard_normal((400, 8))
    mean, std = kernel_inception_distance(real, same, num_subsets=20, subset_size=200)
    assert abs(mean) < 0.05 and abs(mean) < 2 * std  # unbiased: zero within its spread over subsets
    small_shift, _ = kernel_inception_distance(real, same + 0.3, num_subsets=20, subset_size=200)
    large_shift, _ = kernel_inception_distance(real, same + 1.0, num_subsets=20, subset_size=200)
    assert 0.2 < small_shift < large_shift


def test_kid_by_hand_for_one_dimensional_sets():
    # k(x, y) = (x y + 1)^3 with gamma = 1 / 1; X = {0, 1}, Y = {2, 3}, one subset holding everything
    # within X: k(0, 1) = 1 (both orders), within Y: k(2, 3) = 7^3 = 343; unbiased means: 1 and 343
    # across: k(0,2) = 1, k(0,3) = 1, k(1,2) = 27, k(1,3) = 64 -> mean 93 / 4
    mean, std = kernel_inception_distance(np.array([[0.0], [1.0]]), np.array([[2.0], [3.0]]), num_subsets=3)
    assert mean == pytest.approx(1 + 343 - 2 * 93 / 4)
    assert std == pytest.approx(0.0)


def test_precision_recall_of_identical_and_disjoint_sets():
    x = np.random.default_rng(0).standard_normal((60, 4))
    assert precision_recall(x, x.copy()) == (1.0, 1.0)
    assert precision_recall(x, x + 100.0) == (0.0, 0.0)


def test_precision_recall_by_hand():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])  # k=1 radii: 1 everywhere
    fake = np.array([[0.5], [10.0]])  # k=1 radii: 9.5 each
    precision, recall = precision_recall(real, fake, k=1)
    assert precision == 0.5  # 0.5 is within 1 of a real point, 10 is not
    assert recall == 1.0  # every real point is within 9.5 of 0.5


def test_conditional_accuracy_single_and_multi_label():
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    assert conditional_accuracy([0, 1, 1], probs) == pytest.approx(2 / 3)
    multi = np.array([[0.9, 0.8], [0.9, 0.2], [0.1, 0.1]])
    # targets: row 0 wants {0, 1} (right); row 1 wants 0 and does not care about 1 (right); row 2 wants 1 (wrong)
    targets = np.array([[1, 1], [1, -1], [0, 1]])
    assert conditional_accuracy(targets, multi, "multi_label_classification") == pytest.approx(2 / 3)


def test_compute_generation_metrics_reports_everything():
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal((40, 5)), rng.standard_normal((30, 5))
    requested = np.arange(30) % 3
    probs = np.eye(3)[requested]
    probs[0] = [0.1, 0.8, 0.1]  # one sample of class 0 judged as class 1
    m = compute_generation_metrics(real, fake, requested, probs, kid_subset_size=20, kid_num_subsets=5)
    assert m["num_real"] == 40 and m["num_generated"] == 30
    assert m["frechet_distance"] == pytest.approx(frechet_distance(real, fake))
    assert (m["kid_mean"], m["kid_std"]) == kernel_inception_distance(real, fake, num_subsets=5, subset_size=20)
    assert (m["precision"], m["recall"]) == precision_recall(real, fake)
    assert m["conditional_accuracy"] == pytest.approx(29 / 30)
    assert m["conditional_accuracy_per_class"] == {"0": pytest.approx(0.9), "1": 1.0, "2": 1.0}


def test_background_match_share_tells_black_from_grey_backgrounds():
    from diffusers_joint.evaluation import background_match_share, border_means

    torch.manual_seed(0)
    real = torch.full((20, 1, 28, 28), -1.0)
    real[:, :, 8:20, 8:20] = 1.0  # a bright stroke on black
    grey = real.clone()
    grey[:, :, :4] = -0.5  # a grey band through the border
    torch.testing.assert_close(border_means(real), torch.full((20,), -1.0))
    assert background_match_share(real, real) == 1.0
    assert background_match_share(real, torch.cat([real[:15], grey[:5]])) == 0.75
    with pytest.raises(ValueError, match="border width"):
        border_means(real, width=14)
