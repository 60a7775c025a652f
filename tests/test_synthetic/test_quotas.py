"""Rare-class quotas: LVIS's repeat-factor rule on a hand-made histogram."""
import math
from collections import Counter

import pytest

from mmdet_detdiffusion.synthetic.quotas import (class_histogram, class_repeat_factors, histogram_table,
                                                 image_repeat_factors, repeat_counts)

# 10 images: class 0 in all of them, class 1 in 4, class 2 (rare) in 1
IMAGES = [[0, 0, 1]] * 4 + [[0]] * 5 + [[0, 2]]


def test_class_factors_follow_the_rule():
    factors = class_repeat_factors(IMAGES, threshold=0.4)
    assert factors[0] == 1.0  # f = 1.0 > t
    assert factors[1] == 1.0  # f = 0.4 = t
    assert math.isclose(factors[2], math.sqrt(0.4 / 0.1))  # f = 0.1: r = 2
    assert image_repeat_factors(IMAGES, 0.4) == pytest.approx([1.0] * 9 + [2.0])
    assert image_repeat_factors([[], [3]], 0.5) == [1.0, 1.0]  # f(3) = 0.5 = t


def test_counts_are_seeded_and_unbiased():
    counts = repeat_counts([2.0, 1.0, 1.5] * 2000, seed=3)
    assert counts[:2] == [2, 1] and set(counts[2::3]) == {1, 2}
    assert abs(sum(counts[2::3]) / 2000 - 1.5) < 0.05
    assert counts == repeat_counts([2.0, 1.0, 1.5] * 2000, seed=3)


def test_histogram_before_and_after():
    counts = repeat_counts(image_repeat_factors(IMAGES, 0.4))
    before, after = class_histogram(IMAGES, [1] * 10), class_histogram(IMAGES, counts)
    assert before == Counter({0: 14, 1: 4, 2: 1}) and after == Counter({0: 15, 1: 4, 2: 2})
    table = histogram_table(before, after, {2: 'triangle'})
    assert 'triangle' in table and '2.00' in table
