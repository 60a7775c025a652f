"""Fidelity filter of a synthetic set: does a detector find the objects the layouts asked for?

An object the generator failed to draw keeps its label, and that label noise is the main way synthetic data
hurts a detector. A detector (see below which one) runs on the synthetic images; each layout box gets its
*found score*, the best score of a prediction of its class with IoU > beta
(:func:`~mmdet_detdiffusion.layout.matching.found_scores`), stored in the annotation as ``found_score``. A box
is found when that score exceeds ``score_thr``, and an image's *agreement* is its share of found boxes. Then:

- ``min_agreement``: images below it are dropped;
- ``ignore_unfound``: the boxes not found are kept but marked ``iscrowd = 1``, which mmdet's ``CocoDataset``
  reads as ``ignore_flag = 1`` (no loss on them, no penalty for a detection there).

Which detector: *hard* generations are meant to be hard for D, the detector that labelled the attributes, so
filtering them with D removes exactly the objects they were made for. Filter with another detector: an oracle
trained longer, or a stronger model.
"""
import os
from typing import Dict, Mapping, Optional, Tuple

from mmdet_detdiffusion.layout.attribute_file import annotations_by_image, load_coco
from mmdet_detdiffusion.layout.attributes import RECORD_KEY
from mmdet_detdiffusion.layout.matching import DEFAULT_SCORE_THR
from mmdet_detdiffusion.synthetic.manifest import ANNOTATION_FILE, IMAGES_FOLDER
from mmdet_detdiffusion.utils.fileio import atomic_write_json

FOUND_KEY = 'found_score'  # annotation key: the filter detector's best matching score for the box
FILTERED_FILE = 'annotations_filtered.json'  # written beside the set's annotations.json


def agreement_filter(coco: dict, found: Mapping[object, float], score_thr: float = DEFAULT_SCORE_THR,
                     min_agreement: Optional[float] = None, ignore_unfound: bool = False) -> Tuple[dict, Dict]:
    """Apply the filter (module docstring) to a synthetic set's COCO dict.

    Args:
        coco: the set's COCO dict (layout boxes as annotations).
        found: annotation id -> found score; crowd boxes and boxes without a score count as not found.
        score_thr: a box is found when its score is above it.
        min_agreement: drop images whose share of found boxes is below it (``None``: keep every image).
        ignore_unfound: mark the boxes not found ``iscrowd = 1`` (ignored by mmdet).

    Returns:
        ``(filtered coco, summary)``; summary counts ``images``, ``images_kept``, ``boxes``, ``boxes_found``,
        ``boxes_ignored`` (in kept images) and gives the ``settings``.
    """
    if min_agreement is not None and not 0 <= min_agreement <= 1:
        raise ValueError(f'min_agreement must be in [0, 1], got {min_agreement}')
    by_image = annotations_by_image(coco)
    images, annotations = [], []
    boxes = boxes_found = boxes_ignored = 0
    for image in coco['images']:
        anns = by_image[image['id']]
        is_found = [found.get(ann['id'], 0.0) > score_thr and not ann.get('iscrowd', 0) for ann in anns]
        boxes += len(anns)
        boxes_found += sum(is_found)
        if min_agreement is not None and anns and sum(is_found) / len(anns) < min_agreement:
            continue
        images.append(image)
        for ann, ok in zip(anns, is_found):
            ann = {**ann, FOUND_KEY: round(float(found.get(ann['id'], 0.0)), 4)}
            if ignore_unfound and not ok:
                ann['iscrowd'] = 1
                boxes_ignored += 1
            annotations.append(ann)
    summary = dict(images=len(coco['images']), images_kept=len(images), boxes=boxes, boxes_found=boxes_found,
                   boxes_ignored=boxes_ignored,
                   settings=dict(score_thr=score_thr, min_agreement=min_agreement, ignore_unfound=ignore_unfound))
    return {**coco, 'images': images, 'annotations': annotations}, summary


def filter_summary(summary: Dict) -> str:
    """One line for the console."""
    share = summary['boxes_found'] / summary['boxes'] if summary['boxes'] else 0.0
    return (f'filter: {summary["boxes_found"]}/{summary["boxes"]} layout boxes found ({share:.0%}); kept '
            f'{summary["images_kept"]}/{summary["images"]} images; {summary["boxes_ignored"]} boxes marked ignored')


def filter_synthetic_set(labeler, folder: str, score_thr: float = DEFAULT_SCORE_THR,
                         min_agreement: Optional[float] = None, ignore_unfound: bool = False,
                         out: Optional[str] = None, record: Optional[dict] = None) -> Dict:
    """Score the synthetic set in ``folder`` with ``labeler`` (an
    :class:`~mmdet_detdiffusion.attributes.labeler.AttributeLabeler` around the filtering detector), filter it
    (:func:`agreement_filter`) and write ``out`` (default ``folder/annotations_filtered.json``) with the
    summary and ``record`` under the file's ``detdiffusion`` record; return the summary."""
    ann_file = os.path.join(folder, ANNOTATION_FILE)
    coco = load_coco(ann_file)
    result = labeler.label(coco, os.path.join(folder, IMAGES_FOLDER), ann_file=ann_file)
    filtered, summary = agreement_filter(coco, result.found_scores, score_thr, min_agreement, ignore_unfound)
    provenance = dict(filtered.get(RECORD_KEY) or {})
    provenance['filter'] = dict(summary, **labeler.rule, **(record or {}))
    atomic_write_json({**filtered, RECORD_KEY: provenance}, out or os.path.join(folder, FILTERED_FILE))
    return summary
