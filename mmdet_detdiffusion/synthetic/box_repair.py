"""Box repair of synthetic images: a label for what was drawn, not only for what the layout asked.

A generator follows a layout box loosely: the object it draws is shifted or sized a little differently, and the
layout box as label teaches a detector loose boxes (low AP75). Three repairs, each one documented rule:

- **head** (:func:`mask_box`): the perception head predicts each object's mask at the last denoising step
  (``DetDiffusionPipeline(..., predict_masks=True)``); the object's box becomes the tight box of the pixels whose
  mask probability exceeds ``mask_thr``. An object whose mask is empty, or whose mean probability over its mask
  is below ``min_confidence``, becomes an *ignore region* (the layout box with ``iscrowd = 1``), never a label
  for nothing.
- **detector** (:func:`relabel_boxes`, ``tools/filter_synthetic.py --relabel``): an oracle detector's prediction
  replaces a layout box when it finds the box by the P.A. rule (:mod:`~mmdet_detdiffusion.layout.matching`: the
  best-scoring prediction with IoU > beta, of the box's class with ``match_class``, whose score exceeds
  ``score_thr``), as Gen2Det and UAVGen relabel; a box it does not find becomes an ignore region.
- **fused** (:func:`relabel_boxes` with ``fuse=True``, ``--relabel fuse`` on a set generated with ``--box-source
  head``): a found box becomes the mean of its head box and the oracle's box, as weighted box fusion merges the
  boxes of two models: their errors are partly independent, so the mean is closer to what was drawn than either
  (the toy: median IoU with the drawn boxes 0.81 for each, 0.86 for the mean; ``docs/results.md``).

An ignore region is ignored in training only where the assigner's ``ignore_iof_thr`` is set (this package's detector
configs: 0.5): with mmdet's default -1 its anchors are background, and an object the repair could not confirm would be
taught as background. COCO evaluation ignores detections in it.

Boxes are xyxy pixels of the image they label, in COCO's convention (pixel ``i`` spans ``[i, i + 1)``): the masks the
head learns from are pycocotools' rasterisations of the annotated polygons, whose pixels span the annotated boxes.
"""
from typing import List, Mapping, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np
import pycocotools.mask as mask_utils

from mmdet_detdiffusion.layout.attribute_file import xywh_to_xyxy

GENERATED_BOX_SOURCES = ('layout', 'head')  # what generation labels with; a detector relabels a written set
DEFAULT_MASK_THR = 0.5
DEFAULT_MIN_CONFIDENCE = 0.6


def box_labelling(box_source: str, box_repair: Optional[Mapping[str, float]] = None) -> dict:
    """``{box_source, box_repair}`` as generation records and applies them: ``box_repair`` (the settings of
    :func:`mask_box`) with ``box_source='head'``, else ``None``; raises on a source generation cannot label with, and
    on ``box_repair`` given for layout boxes, which it would not change."""
    if box_source not in GENERATED_BOX_SOURCES:
        raise ValueError(f'box_source must be one of {GENERATED_BOX_SOURCES}, got {box_source!r}')
    if box_source != 'head' and box_repair:
        raise ValueError(f"box_repair {dict(box_repair)} applies to box_source='head' only, got box_source="
                         f'{box_source!r}')
    return dict(box_source=box_source, box_repair=dict(box_repair or {}) if box_source == 'head' else None)


def mask_box(probs: np.ndarray, mask_thr: float = DEFAULT_MASK_THR, min_confidence: float = DEFAULT_MIN_CONFIDENCE
             ) -> Optional[np.ndarray]:
    """The tight xyxy pixel box of the pixels of ``probs`` ``(H, W)`` (mask probabilities) above ``mask_thr``, or
    ``None`` (an ignore region) when there are none or their mean probability is below ``min_confidence``.

    A pixel ``(row y, column x)`` spans ``[x, x + 1) x [y, y + 1)``, so one pixel gives a box of side 1.
    """
    if not 0 <= mask_thr < 1 or not 0 <= min_confidence <= 1:
        raise ValueError(f'mask_thr must be in [0, 1) and min_confidence in [0, 1], got {mask_thr}, {min_confidence}')
    mask = probs > mask_thr
    if not mask.any() or float(probs[mask].mean()) < min_confidence:
        return None
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


class HeadLabels(NamedTuple):
    """The perception head's labels of N objects in an image of ``(H, W)`` pixels: ``boxes`` ``(N, 4)`` xyxy
    (:func:`mask_box`; an ignored object's layout box), ``ignored`` per object, and ``masks`` ``(N, H, W)`` bool, the
    pixels above ``mask_thr`` (all False for an ignored object)."""
    boxes: np.ndarray
    ignored: List[bool]
    masks: np.ndarray


def head_boxes(masks: np.ndarray, layout_boxes: np.ndarray, image_size: Tuple[int, int],
               mask_thr: float = DEFAULT_MASK_THR, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> HeadLabels:
    """Each object's labels in pixels of ``image_size`` ``(height, width)`` from its mask probabilities in ``masks``
    ``(N, h, w)``, resized (bilinearly) to the image first, so that the box is as fine as the image's pixels;
    ``layout_boxes``: pixels of ``image_size``."""
    height, width = image_size
    boxes, ignored = np.asarray(layout_boxes, dtype=np.float64).reshape(-1, 4).copy(), []
    if len(masks) != len(boxes):
        raise ValueError(f'head_boxes: {len(masks)} masks for {len(boxes)} layout boxes')
    binary = np.zeros((len(boxes), height, width), dtype=bool)
    for k, probs in enumerate(masks):
        if probs.shape != (height, width):
            probs = cv2.resize(probs, (width, height), interpolation=cv2.INTER_LINEAR)
        box = mask_box(probs, mask_thr, min_confidence)
        ignored.append(box is None)
        if box is not None:
            boxes[k] = box
            binary[k] = probs > mask_thr
    return HeadLabels(boxes, ignored, binary)


def mask_rle(mask: np.ndarray) -> dict:
    """COCO's RLE of a bool ``(H, W)`` mask, its ``counts`` a string (JSON-serialisable): an annotation's
    ``segmentation``."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(v) for v in rle['size']], 'counts': rle['counts'].decode('ascii')}


def relabel_boxes(annotations: Sequence[Mapping], matched: Mapping[object, Optional[Sequence[float]]],
                  fuse: bool = False) -> List[dict]:
    """Copies of a synthetic image's COCO ``annotations`` with each box replaced by its oracle match ``matched[id]``
    (xyxy pixels), or with ``fuse`` by the mean of the two, and ``layout_bbox`` keeping the layout's; a box without a
    match (``None`` or absent) is marked ``iscrowd = 1``, which mmdet reads as an ignore region."""
    relabelled = []
    for ann in annotations:
        box = matched.get(ann['id'])
        ann = {**ann, 'layout_bbox': list(ann.get('layout_bbox', ann['bbox']))}
        if box is None:
            ann['iscrowd'] = 1
        else:
            if fuse:
                box = (np.asarray(box, dtype=np.float64) + xywh_to_xyxy(ann['bbox'])) / 2
            x1, y1, x2, y2 = (float(v) for v in box)
            ann['bbox'] = [x1, y1, x2 - x1, y2 - y1]
            ann['area'] = (x2 - x1) * (y2 - y1)
        relabelled.append(ann)
    return relabelled
