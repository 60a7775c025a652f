"""Rare-class quotas: how many synthetic images each source layout gets (pure python).

LVIS's repeat-factor rule (Gupta et al., 2019), which mmdet's ``ClassBalancedDataset`` applies to
sampling, here decides generation: with ``f(c)`` the share of source images that contain class ``c``
and ``t`` the threshold,

    r(c) = max(1, sqrt(t / f(c))),    r(image) = max of r(c) over the classes in the image.

An image gets ``floor(r)`` copies plus one more with probability ``r - floor(r)`` (a seeded draw), so
images with rare classes are generated more often and the expected count is ``r``.
"""
import math
from collections import Counter
from typing import Collection, Dict, List, Sequence

import numpy as np


def class_repeat_factors(image_classes: Sequence[Collection], threshold: float) -> Dict:
    """``{class: r(c)}`` for every class present in ``image_classes`` (one collection of class ids
    per image)."""
    if not image_classes:
        return {}
    if threshold < 0:
        raise ValueError(f'repeat-factor threshold must be >= 0, got {threshold}')
    images_with = Counter(c for classes in image_classes for c in set(classes))
    return {c: max(1.0, math.sqrt(threshold * len(image_classes) / count)) for c, count in images_with.items()}


def image_repeat_factors(image_classes: Sequence[Collection], threshold: float) -> List[float]:
    """r(image) per image (1 for an image without classes)."""
    per_class = class_repeat_factors(image_classes, threshold)
    return [max((per_class[c] for c in classes), default=1.0) for classes in image_classes]


def repeat_counts(factors: Sequence[float], seed: int = 0) -> List[int]:
    """Integer copies per image: ``floor(r)`` plus one with probability ``r - floor(r)``."""
    rng = np.random.default_rng(seed)
    draws = rng.random(len(factors))
    return [int(math.floor(r)) + int(u < r - math.floor(r)) for r, u in zip(factors, draws)]


def class_histogram(image_classes: Sequence[Sequence], counts: Sequence[int]) -> Counter:
    """Objects per class when image ``i`` (its list of object classes) is used ``counts[i]`` times."""
    histogram = Counter()
    for classes, count in zip(image_classes, counts):
        for c in classes:
            histogram[c] += count
    return histogram


def histogram_table(before: Counter, after: Counter, names: Dict) -> str:
    """A text table of objects per class before and after the quotas, with the ratio."""
    lines = [f'{"class":<20} {"before":>8} {"after":>8} {"x":>6}']
    for c in sorted(set(before) | set(after), key=lambda c: before.get(c, 0)):
        ratio = after.get(c, 0) / before[c] if before.get(c) else float('nan')
        lines.append(f'{str(names.get(c, c)):<20} {before.get(c, 0):>8} {after.get(c, 0):>8} {ratio:>6.2f}')
    return '\n'.join(lines)
