"""What a toy image shows where a layout asked for an object: the *drawn* box, measured from colour.

In ``'by_class'`` shapes images (:mod:`.shapes`) an object of class ``c`` is its palette colour blended into a grey
background: ``pixel = grey + contrast * (palette - grey)``. Grey has no chroma, so a pixel's chroma (the pixel minus
the mean of its channels) is ``contrast * chroma(palette)``, whatever the grey: projecting it on the class's palette
chroma gives the contrast of class ``c`` at that pixel (:func:`class_evidence`: 0 on background, up to 1).

A layout box's drawn box (:func:`drawn_box`) is the tight box of the connected region of its class's evidence that
overlaps it most, searched in the box grown by ``search_margin`` of its size on each side: the pixels above half the
evidence's high percentile inside the box, from its first to its last pixel (:mod:`.shapes` draws with OpenCV, whose
pixel centres are integer coordinates, so these are the annotated box's edges). Where that percentile is below
``min_evidence`` (an object too faint, or not drawn) nothing is measured: such boxes are counted, not guessed. On
real images the measure finds the annotated boxes (median IoU 0.95 on the demo's validation images;
``projects/toy_shapes/tests/test_drawn_boxes.py``), so on generated ones it says where objects were drawn.
"""
import os
from typing import Dict, Optional, Sequence

import cv2
import numpy as np

from mmdet_detdiffusion.layout.attribute_file import annotations_by_image, xywh_to_xyxy
from mmdet_detdiffusion.layout.matching import box_iou
from projects.toy_shapes.toy_shapes.shapes import CLASS_COLOURS, SHAPES_PALETTE

MIN_EVIDENCE = 0.12  # below it, an object is within the pixel noise's reach (std 12 grey levels ~ 0.07)
SEARCH_MARGIN = 0.5


def class_evidence(image_rgb: np.ndarray, class_name: str) -> np.ndarray:
    """``(H, W)`` float: the contrast of ``class_name``'s colour at each pixel of an RGB ``(H, W, 3)`` image, its
    chroma projected on the palette colour's chroma, smoothed over 3x3 pixels (module docstring)."""
    palette = np.asarray(SHAPES_PALETTE[CLASS_COLOURS[class_name]], dtype=np.float64)
    direction = palette - palette.mean()
    pixels = image_rgb.astype(np.float64)
    chroma = pixels - pixels.mean(axis=2, keepdims=True)
    evidence = chroma @ direction / float(direction @ direction)
    return cv2.blur(evidence, (3, 3))


def drawn_box(image_rgb: np.ndarray, box: Sequence[float], class_name: str, min_evidence: float = MIN_EVIDENCE,
              search_margin: float = SEARCH_MARGIN) -> Optional[np.ndarray]:
    """The xyxy pixel box of the object of ``class_name`` drawn at the layout box ``box`` (xyxy pixels) of an RGB
    image, or ``None`` when its colour evidence is below ``min_evidence`` (module docstring)."""
    height, width = image_rgb.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    grow_x, grow_y = search_margin * (x2 - x1), search_margin * (y2 - y1)
    left, top = max(0, int(np.floor(x1 - grow_x))), max(0, int(np.floor(y1 - grow_y)))
    right, bottom = min(width, int(np.ceil(x2 + grow_x))), min(height, int(np.ceil(y2 + grow_y)))
    evidence = class_evidence(image_rgb[top:bottom, left:right], class_name)
    inside = np.zeros(evidence.shape, dtype=bool)
    rows = slice(max(0, int(y1) - top), max(0, int(np.ceil(y2)) - top))
    inside[rows, max(0, int(x1) - left):max(0, int(np.ceil(x2)) - left)] = True
    if not inside.any():
        return None
    level = float(np.percentile(evidence[inside], 95))
    if level < min_evidence:
        return None
    count, regions = cv2.connectedComponents((evidence > level / 2).astype(np.uint8), connectivity=8)
    overlap = np.bincount(regions[inside], minlength=count)
    overlap[0] = 0
    if overlap.max() == 0:
        return None
    ys, xs = np.nonzero(regions == overlap.argmax())
    # OpenCV fills the pixels whose centres (integer coordinates) a polygon covers: from x1 to x2, both included
    return np.array([xs.min() + left, ys.min() + top, xs.max() + left, ys.max() + top], dtype=np.float64)


def label_ious(coco: dict, img_prefix: str) -> Dict[object, float]:
    """Annotation id -> IoU of its label (``bbox``) with the box drawn at its layout box (``layout_bbox`` where the
    box was repaired, else ``bbox``), for the non-ignored annotations whose drawn box is measured (:func:`drawn_box`).
    """
    names = {cat['id']: cat['name'] for cat in coco['categories']}
    ious = {}
    by_image = annotations_by_image(coco)
    for image in coco['images']:
        pixels = cv2.imread(os.path.join(img_prefix, image['file_name']))[:, :, ::-1]
        for ann in by_image[image['id']]:
            if ann.get('iscrowd', 0):
                continue
            drawn = drawn_box(pixels, xywh_to_xyxy(ann.get('layout_bbox', ann['bbox'])), names[ann['category_id']])
            if drawn is not None:
                ious[ann['id']] = float(box_iou([xywh_to_xyxy(ann['bbox'])], [drawn])[0, 0])
    return ious
