"""The paired bootstrap over questions (core/stats.py)."""

import math

import numpy as np
import pytest

from core.stats import Ratio, interval


def test_an_accuracy_interval_has_the_binomial_width():
    outcomes = np.random.default_rng(0).random(400) < 0.5
    result = interval(Ratio.mean(outcomes))
    half_width = (result.high - result.low) / 2
    assert result.low < result.estimate < result.high
    assert half_width == pytest.approx(1.96 * math.sqrt(0.25 / 400), rel=0.1)


def test_verdicts_read_the_interval_in_the_papers_direction():
    better, worse = Ratio.mean([1.0] * 30 + [0.0] * 10), Ratio.mean([0.0] * 30 + [1.0] * 10)
    assert interval(better - worse).verdict(+1) == "reproduced"
    assert interval(better - worse).verdict(-1) == "contradicted"
    same = interval(better - better)
    assert (same.low, same.high, same.verdict()) == (0.0, 0.0, "inconclusive")


def test_a_margin_inside_sampling_noise_is_inconclusive():
    rng = np.random.default_rng(1)
    a, b = rng.random(80) < 0.55, rng.random(80) < 0.5
    assert interval(Ratio.mean(a) - Ratio.mean(b)).verdict() == "inconclusive"


def test_pairing_narrows_the_interval_of_correlated_arms():
    rng = np.random.default_rng(2)
    a = (rng.random(200) < 0.5).astype(float)
    b = a.copy()
    b[:10] = 1 - b[:10]  # the arms disagree on 10 questions only
    paired = interval(Ratio.mean(a) - Ratio.mean(b))
    unpaired_half_width = 1.96 * math.sqrt(2 * 0.25 / 200)
    assert (paired.high - paired.low) / 2 < unpaired_half_width / 2


def test_a_pooled_rate_resamples_whole_questions():
    right, pairs = np.array([3.0, 0.0, 8.0, 1.0]), np.array([4.0, 0.0, 8.0, 2.0])  # a question with no pairs
    result = interval(Ratio(right, pairs))
    assert result.estimate == pytest.approx(12 / 14) and 0 <= result.low <= result.high <= 1


def test_a_difference_of_differences_and_mismatched_arms():
    a, b, c = Ratio.mean([1.0, 1.0, 0.0]), Ratio.mean([0.0, 1.0, 0.0]), Ratio.mean([1.0, 1.0, 1.0])
    assert interval((a - b) - (c - c)).estimate == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="same questions"):
        interval(a - Ratio.mean([1.0]))


def test_the_detectable_difference_shrinks_with_more_questions():
    rng = np.random.default_rng(3)
    small = interval(Ratio.mean(rng.random(60) < 0.5) - Ratio.mean(rng.random(60) < 0.5))
    large = interval(Ratio.mean(rng.random(960) < 0.5) - Ratio.mean(rng.random(960) < 0.5))
    assert large.detectable == pytest.approx(small.detectable / 4, rel=0.2)
