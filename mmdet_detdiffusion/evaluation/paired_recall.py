"""Paired recall of two synthetic sets generated from the same layouts with the same seeds (e.g. every
box "hard" vs every box "easy"), pure python.

A layout box counts as *found* in a generated image when the detector labels its annotation easy there (the
P.A. rule: a prediction with score > gamma and IoU > beta with the annotation's box, the layout box or its repair,
:mod:`..layout.matching`). Each box is then a pair (found in set A?, found in set B?), and only the discordant
pairs say which set is harder: an exact two-sided sign test on them gives the chance of a split at least as uneven
if the sets were equally hard.
"""
import math
from dataclasses import dataclass
from typing import Dict, Hashable, Tuple

from mmdet_detdiffusion.layout.attributes import EASY, RECORD_KEY

BoxKey = Tuple[Hashable, int, Tuple[float, ...]]


@dataclass(frozen=True)
class PairedRecall:
    """Recall of each set over the boxes present in both, and the discordant pairs."""
    pairs: int  # boxes present in both sets
    recall_a: float  # share of them found in set A
    recall_b: float
    only_a: int  # found in A, missed in B
    only_b: int  # found in B, missed in A
    p_value: float  # two-sided exact sign test on only_a vs only_b


def box_keys(coco: dict) -> Dict[Hashable, BoxKey]:
    """Annotation id -> ``(source image, category id, layout box xywh rounded to 0.01 px)``: the same key for a
    layout box in every synthetic set made from the same layouts (images name their source image in
    ``image['detdiffusion']['source_image_id']``, the image's own id otherwise; a repaired annotation keeps its
    layout box in ``layout_bbox``)."""
    source = {image['id']: image.get(RECORD_KEY, {}).get('source_image_id', image['id'])
              for image in coco['images']}
    return {ann['id']: (source[ann['image_id']], ann['category_id'],
                        tuple(round(v, 2) for v in ann.get('layout_bbox', ann['bbox'])))
            for ann in coco['annotations']}


def sign_test(successes: int, failures: int) -> float:
    """Two-sided exact binomial test of ``successes`` vs ``failures`` against p = 0.5 (1.0 when both are 0)."""
    n, k = successes + failures, min(successes, failures)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired_recall(coco_a: dict, attributes_a: Dict[Hashable, str], coco_b: dict,
                  attributes_b: Dict[Hashable, str]) -> PairedRecall:
    """Compare two labelled synthetic sets box by box.

    Args:
        coco_a / coco_b: the sets' COCO dicts (``annotations.json`` of ``tools/generate.py``).
        attributes_a / attributes_b: annotation id -> ``'easy'`` (found) or ``'hard'`` (missed), as the
            detector labelled each set (:class:`~mmdet_detdiffusion.attributes.AttributeLabeler`).

    Raises:
        ValueError: the sets share no box (not generated from the same layouts).
    """
    found_a = {key: attributes_a[ann_id] == EASY for ann_id, key in box_keys(coco_a).items()}
    found_b = {key: attributes_b[ann_id] == EASY for ann_id, key in box_keys(coco_b).items()}
    common = set(found_a) & set(found_b)
    if not common:
        raise ValueError('paired_recall: the two sets share no layout box (same source image, category and '
                         'bbox); they must be generated from the same layouts')
    only_a = sum(found_a[key] and not found_b[key] for key in common)
    only_b = sum(found_b[key] and not found_a[key] for key in common)
    return PairedRecall(pairs=len(common), recall_a=sum(found_a[key] for key in common) / len(common),
                        recall_b=sum(found_b[key] for key in common) / len(common), only_a=only_a, only_b=only_b,
                        p_value=sign_test(only_a, only_b))
