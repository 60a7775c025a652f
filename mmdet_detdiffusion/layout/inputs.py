"""User layouts -> :class:`LayoutObject` lists, attribute modes, and the object-size filters (pure python).

A user layout is a dict::

    dict(boxes=[[x1, y1, x2, y2], ...],       # xyxy; pixels of `image_size`, or normalised when it is absent
         labels=['cat', 2, ...],              # class names or class indices
         attrs=['hard', None, ...],           # optional: 'easy' | 'hard' | None per box
         image_size=(height, width))          # optional: the size the pixel boxes refer to

or already a sequence of :class:`LayoutObject` (normalised boxes).
"""
from typing import Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from mmdet_detdiffusion.layout.attributes import ATTR_MODES, MODE_NONE, MODE_ORIGINAL, slot_values
from mmdet_detdiffusion.layout.prompt import LayoutObject

UserLayout = Union[Mapping, Sequence[LayoutObject]]


def to_layout_objects(layout: UserLayout, classes: Sequence[str]) -> List[LayoutObject]:
    """Normalise one user layout (see module docstring); boxes are clipped to [0, 1]."""
    if not isinstance(layout, Mapping):
        return list(layout)
    boxes, labels = list(layout.get('boxes', [])), list(layout.get('labels', []))
    attrs = list(layout['attrs']) if layout.get('attrs') is not None else [None] * len(boxes)
    if not len(boxes) == len(labels) == len(attrs):
        raise ValueError(f'layout has {len(boxes)} boxes, {len(labels)} labels and {len(attrs)} attrs: '
                         'expected one of each per object')
    height, width = layout.get('image_size') or (1.0, 1.0)
    objects = []
    for box, label, attr in zip(boxes, labels, attrs):
        if len(box) != 4:
            raise ValueError(f'layout box {box!r}: expected [x1, y1, x2, y2]')
        if isinstance(label, str):
            if label not in classes:
                raise ValueError(f'layout label {label!r} is not among the generator classes {list(classes)}')
            name = label
        elif 0 <= int(label) < len(classes):
            name = classes[int(label)]
        else:
            raise ValueError(f'layout label {label!r}: expected a class name or an index below {len(classes)}')
        if attr not in (None, *slot_values()):
            raise ValueError(f'layout attr {attr!r}: expected one of {list(slot_values())} or None')
        x1, y1, x2, y2 = (min(max(float(v) / s, 0.0), 1.0) for v, s in zip(box, (width, height, width, height)))
        objects.append(LayoutObject(name, (x1, y1, x2, y2), attr))
    return objects


class MissingAttributesWarning(UserWarning):
    """``'original'`` attribute mode on boxes without a P.A. attribute: their prompts get no attribute token."""


def count_unlabelled(attrs_per_layout: Iterable[Iterable[Optional[str]]]) -> Tuple[int, int]:
    """``(boxes without an attribute, all boxes)`` of the layouts' per-box attributes."""
    attrs = [attr for attrs in attrs_per_layout for attr in attrs]
    return sum(attr is None for attr in attrs), len(attrs)


def with_attr_mode(objects: Iterable[LayoutObject], mode: str) -> List[LayoutObject]:
    """Objects with attributes set by ``mode``: ``'hard'``/``'easy'`` for all, ``'original'`` as given,
    ``'none'`` without attribute tokens (a generator trained without attributes)."""
    if mode not in ATTR_MODES:
        raise ValueError(f'attr mode must be one of {ATTR_MODES}, got {mode!r}')
    if mode == MODE_ORIGINAL:
        return list(objects)
    attr = None if mode == MODE_NONE else mode
    return [LayoutObject(o.name, o.box, attr) for o in objects]


def box_area_share(box_xyxy: Sequence[float], width: float, height: float) -> float:
    """Area of a pixel xyxy box as a share of the ``width x height`` image."""
    x1, y1, x2, y2 = box_xyxy
    return max(x2 - x1, 0.0) * max(y2 - y1, 0.0) / float(width * height)


def keep_objects(boxes_xyxy: Sequence[Sequence[float]], width: float, height: float,
                 min_box_area_ratio: float = 0.0, min_object_area_ratio: float = 0.0) -> Optional[List[int]]:
    """Indices of the boxes that training keeps, or ``None`` when the image itself is dropped.

    Boxes under ``min_box_area_ratio`` of the image are dropped (GeoDiffusion: 0.002); the image is
    dropped when the kept boxes cover less than ``min_object_area_ratio`` of it in total (sum of box
    areas, capped at 1; DetDiffusion's COCO recipe: 0.02) or when no box is left.
    """
    kept = [i for i, box in enumerate(boxes_xyxy) if box_area_share(box, width, height) >= min_box_area_ratio]
    if not kept or covered_share([boxes_xyxy[i] for i in kept], width, height) < min_object_area_ratio:
        return None
    return kept


def covered_share(boxes_xyxy: Iterable[Sequence[float]], width: float, height: float) -> float:
    """Sum of the pixel boxes' areas as a share of the image, capped at 1."""
    return min(sum(box_area_share(box, width, height) for box in boxes_xyxy), 1.0)
