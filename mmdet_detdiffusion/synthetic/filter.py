"""Fidelity filter of a synthetic set: does a detector find the objects the layouts asked for?

An object the generator failed to draw keeps its label, and that label noise is the main way synthetic data
hurts a detector. A detector (see below which one) runs on the synthetic images; each layout box gets its
*found score*, the best score of a prediction of its class with IoU > beta
(:func:`~mmdet_detdiffusion.layout.matching.found_scores`), stored in the annotation as ``found_score``. A box
is found when that score exceeds ``score_thr``, and an image's *agreement* is its share of found boxes. Then:

- ``min_agreement``: images below it are dropped;
- ``ignore_unfound``: the boxes not found are kept but marked ``iscrowd = 1``, which mmdet's ``CocoDataset``
  reads as ``ignore_flag = 1``: no penalty for a detection there in COCO evaluation, and no loss in training where
  the assigner's ``ignore_iof_thr`` is set (this package's detector configs: 0.5; mmdet's default -1 makes them
  background);
- ``relabel``: besides, each found box is replaced by the prediction that found it (``'replace'``), or by the mean
  of the two (``'fuse'``; box repair, :func:`~mmdet_detdiffusion.synthetic.box_repair.relabel_boxes`;
  ``layout_bbox`` keeps the layout's), and every image records its ``box_source``: ``'detector'``, or the set's
  own source fused with it (``'head+detector'``).

Which detector: *hard* generations are meant to be hard for D, the detector that labelled the attributes, so
filtering them with D removes exactly the objects they were made for. Filter with another detector: an oracle
trained longer, or a stronger model.
"""
import os
from typing import Dict, Mapping, Optional, Sequence, Tuple

from mmdet_detdiffusion.layout.attribute_file import annotations_by_image, load_coco
from mmdet_detdiffusion.layout.attributes import RECORD_KEY
from mmdet_detdiffusion.layout.matching import DEFAULT_SCORE_THR
from mmdet_detdiffusion.synthetic.box_repair import relabel_boxes
from mmdet_detdiffusion.synthetic.manifest import ANNOTATION_FILE, IMAGES_FOLDER
from mmdet_detdiffusion.utils.fileio import atomic_write_json

FOUND_KEY = 'found_score'  # annotation key: the filter detector's best matching score for the box
FILTERED_FILE = 'annotations_filtered.json'  # written beside the set's annotations.json
RELABEL_MODES = (None, 'replace', 'fuse')


def agreement_filter(coco: dict, found: Mapping[object, float], score_thr: float = DEFAULT_SCORE_THR,
                     min_agreement: Optional[float] = None, ignore_unfound: bool = False,
                     matched_boxes: Optional[Mapping[object, Optional[Sequence[float]]]] = None,
                     fuse: bool = False) -> Tuple[dict, Dict]:
    """Apply the filter (module docstring) to a synthetic set's COCO dict.

    Args:
        coco: the set's COCO dict (layout boxes as annotations).
        found: annotation id -> found score; crowd boxes and boxes without a score count as not found.
        score_thr: a box is found when its score is above it.
        min_agreement: drop images whose share of found boxes is below it (``None``: keep every image).
        ignore_unfound: mark the boxes not found ``iscrowd = 1`` (ignored by mmdet).
        matched_boxes: annotation id -> xyxy pixel box of the prediction that found it: relabel (module docstring;
            implies ``ignore_unfound``); ``fuse``: with the mean of the two boxes.

    Returns:
        ``(filtered coco, summary)``; summary counts ``images``, ``images_kept``, ``boxes``, ``boxes_found``,
        ``boxes_ignored`` (in kept images) and gives the ``settings``.
    """
    if min_agreement is not None and not 0 <= min_agreement <= 1:
        raise ValueError(f'min_agreement must be in [0, 1], got {min_agreement}')
    by_image = annotations_by_image(coco)
    relabel = matched_boxes is not None
    if fuse and not relabel:
        raise ValueError('agreement_filter: fuse=True needs the matched_boxes to fuse with')
    ignore_unfound = ignore_unfound or relabel
    images, annotations = [], []
    boxes = boxes_found = boxes_ignored = 0
    for image in coco['images']:
        anns = by_image[image['id']]
        is_found = [found.get(ann['id'], 0.0) > score_thr and not ann.get('iscrowd', 0) for ann in anns]
        boxes += len(anns)
        boxes_found += sum(is_found)
        if min_agreement is not None and anns and sum(is_found) / len(anns) < min_agreement:
            continue
        if relabel:
            record = dict(image.get(RECORD_KEY) or {})
            record['box_source'] = f'{record.get("box_source", "layout")}+detector' if fuse else 'detector'
            image = {**image, RECORD_KEY: record}
            anns = relabel_boxes(anns, {ann['id']: matched_boxes.get(ann['id']) if ok else None
                                        for ann, ok in zip(anns, is_found)}, fuse)
        images.append(image)
        for ann, ok in zip(anns, is_found):
            ann = {**ann, FOUND_KEY: round(float(found.get(ann['id'], 0.0)), 4)}
            if ignore_unfound and not ok:
                ann['iscrowd'] = 1
                boxes_ignored += 1
            annotations.append(ann)
    summary = dict(images=len(coco['images']), images_kept=len(images), boxes=boxes, boxes_found=boxes_found,
                   boxes_ignored=boxes_ignored,
                   settings=dict(score_thr=score_thr, min_agreement=min_agreement, ignore_unfound=ignore_unfound,
                                 relabel=('fuse' if fuse else 'replace') if relabel else None))
    return {**coco, 'images': images, 'annotations': annotations}, summary


def filter_summary(summary: Dict) -> str:
    """One line for the console."""
    share = summary['boxes_found'] / summary['boxes'] if summary['boxes'] else 0.0
    return (f'filter: {summary["boxes_found"]}/{summary["boxes"]} layout boxes found ({share:.0%}); kept '
            f'{summary["images_kept"]}/{summary["images"]} images; {summary["boxes_ignored"]} boxes marked ignored')


def filter_synthetic_set(labeler, folder: str, score_thr: float = DEFAULT_SCORE_THR,
                         min_agreement: Optional[float] = None, ignore_unfound: bool = False,
                         relabel: Optional[str] = None, out: Optional[str] = None, record: Optional[dict] = None
                         ) -> Dict:
    """Score the synthetic set in ``folder`` with ``labeler`` (an
    :class:`~mmdet_detdiffusion.attributes.labeler.AttributeLabeler` around the filtering detector), filter it
    (:func:`agreement_filter`; ``relabel``: ``None``, ``'replace'`` or ``'fuse'``) and write ``out`` (default
    ``folder/annotations_filtered.json``) with the summary and ``record`` under the file's ``detdiffusion`` record;
    return the summary."""
    ann_file = os.path.join(folder, ANNOTATION_FILE)
    coco = load_coco(ann_file)
    result = labeler.label(coco, os.path.join(folder, IMAGES_FOLDER), ann_file=ann_file)
    if relabel not in RELABEL_MODES:
        raise ValueError(f'relabel must be one of {RELABEL_MODES}, got {relabel!r}')
    filtered, summary = agreement_filter(coco, result.found_scores, score_thr, min_agreement, ignore_unfound,
                                         result.matched_boxes if relabel else None, fuse=relabel == 'fuse')
    provenance = dict(filtered.get(RECORD_KEY) or {})
    provenance['filter'] = dict(summary, **labeler.rule, **(record or {}))
    atomic_write_json({**filtered, RECORD_KEY: provenance}, out or os.path.join(folder, FILTERED_FILE))
    return summary
