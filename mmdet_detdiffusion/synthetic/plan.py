"""What a synthetic dataset contains, decided before anything is generated (pure python).

Every source image that passes the training filters (and, optionally, has ``min_objects`` to
``max_objects`` boxes after them: the paper's trainability set keeps COCO images with 3 to 8 objects)
yields ``num_per_image`` work items, times its rare-class quota with ``repeat_thr``
(:mod:`~mmdet_detdiffusion.synthetic.quotas`). An item's layout is the image's non-crowd boxes (xyxy pixels,
clipped), flipped and shifted by a random layout edit when ``flip_prob`` or ``max_shift`` is set
(:mod:`~mmdet_detdiffusion.layout.augment`); its seed is a hash of (seed, image id, k), so the plan, and
with it every generated image, is a pure function of the inputs.
"""
import os
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmdet_detdiffusion.layout.attribute_file import annotations_by_image, clip_box, xywh_to_xyxy
from mmdet_detdiffusion.layout.attributes import ATTR_KEY
from mmdet_detdiffusion.layout.augment import draw_layout_edit
from mmdet_detdiffusion.layout.inputs import keep_objects
from mmdet_detdiffusion.synthetic.quotas import image_repeat_factors, repeat_counts


@dataclass(frozen=True)
class WorkItem:
    """One synthetic image to make.

    index: position in the plan (orders the final dataset); file_name: relative to ``images/``;
    source: the source COCO image entry; boxes: xyxy pixels of the source image; category_ids /
    attrs: per box; variant: k of the image's items; seed: the initial-noise seed; edit: the layout edit
    that moved ``boxes`` (its record, see :class:`~mmdet_detdiffusion.layout.augment.LayoutEdit`), or None.
    """
    index: int
    file_name: str
    source: dict
    boxes: Tuple[Tuple[float, float, float, float], ...]
    category_ids: Tuple[int, ...]
    attrs: Tuple[Optional[str], ...]
    variant: int
    seed: int
    edit: Optional[dict] = None


def item_seed(seed: int, image_id, variant: int) -> int:
    """A stable 31-bit seed for (seed, source image id, variant)."""
    return zlib.crc32(f'{seed}:{image_id}:{variant}'.encode()) & 0x7FFFFFFF


def synthetic_file_name(source_file_name: str, attr_mode: str, variant: int, ext: str) -> str:
    """``{source stem}_{attr mode}_{variant}.{ext}`` (folders of the source name joined with '_')."""
    stem = os.path.splitext(source_file_name)[0].replace('/', '_').replace('\\', '_')
    return f'{stem}_{attr_mode}_{variant}.{ext}'


def plan_items(coco: dict, num_per_image: int, attr_mode: str, seed: int = 0, ext: str = 'png',
               min_box_area_ratio: float = 0.0, min_object_area_ratio: float = 0.0, min_objects: int = 0,
               max_objects: Optional[int] = None, flip_prob: float = 0.0, max_shift: float = 0.0,
               repeat_thr: Optional[float] = None) -> Tuple[List[WorkItem], Dict]:
    """The work items of a synthetic dataset made from the validated COCO dict ``coco``.

    Images are taken in file order; crowd boxes are not part of layouts (they are not drawn); the
    area filters are those of :func:`~mmdet_detdiffusion.layout.inputs.keep_objects`; then images with
    fewer than ``min_objects`` or more than ``max_objects`` (``None``: no limit) boxes left are skipped.
    ``flip_prob`` / ``max_shift``: the layout edits; ``repeat_thr``: LVIS's repeat-factor threshold ``t``
    of the quotas (``None``: every image ``num_per_image`` times).

    Returns:
        ``(items, skipped)``: ``skipped`` counts source images dropped, by reason.
    """
    if num_per_image < 1:
        raise ValueError(f'num_per_image must be >= 1, got {num_per_image}')
    by_image = annotations_by_image(coco)
    count_range = f'[{min_objects}, {"inf" if max_objects is None else max_objects}]'
    skipped = {'no boxes': 0, 'objects too small': 0, f'object count outside {count_range}': 0}
    layouts = []  # (image, boxes, annotations) of the images kept
    for image in coco['images']:
        width, height = image['width'], image['height']
        boxes, anns = [], []
        for ann in by_image[image['id']]:
            box, has_area = clip_box(xywh_to_xyxy(ann['bbox']), width, height)
            if has_area and not ann.get('iscrowd', 0):
                boxes.append(tuple(box))
                anns.append(ann)
        if not boxes:
            skipped['no boxes'] += 1
            continue
        kept = keep_objects(boxes, width, height, min_box_area_ratio, min_object_area_ratio)
        if kept is None:
            skipped['objects too small'] += 1
            continue
        if len(kept) < min_objects or (max_objects is not None and len(kept) > max_objects):
            skipped[f'object count outside {count_range}'] += 1
            continue
        layouts.append((image, [boxes[i] for i in kept], [anns[i] for i in kept]))
    copies = [1] * len(layouts) if repeat_thr is None else repeat_counts(
        image_repeat_factors([[ann['category_id'] for ann in anns] for _, _, anns in layouts], repeat_thr), seed)
    items = []
    for (image, boxes, anns), count in zip(layouts, copies):
        for variant in range(num_per_image * count):
            edit = None
            if flip_prob or max_shift:
                rng = np.random.default_rng([item_seed(seed, image['id'], variant), 1])  # not the noise's stream
                edit = draw_layout_edit(boxes, image['width'], image['height'], rng, flip_prob, max_shift)
            items.append(WorkItem(
                index=len(items), file_name=synthetic_file_name(image['file_name'], attr_mode, variant, ext),
                source=image, boxes=tuple(edit.apply(boxes, image['width']) if edit else boxes),
                category_ids=tuple(ann['category_id'] for ann in anns),
                attrs=tuple(ann.get(ATTR_KEY) for ann in anns), variant=variant,
                seed=item_seed(seed, image['id'], variant), edit=edit.as_record() if edit else None))
    return items, skipped


def class_counts(items: Sequence[WorkItem], per_source: bool = False) -> Counter:
    """Objects per category id in the plan, or, with ``per_source``, in its source layouts (each once)."""
    counts = Counter()
    seen = set()
    for item in items:
        if per_source and item.source['id'] in seen:
            continue
        seen.add(item.source['id'])
        counts.update(item.category_ids)
    return counts


def plan_summary(items: Sequence[WorkItem], skipped: Dict[str, int]) -> str:
    """One line: source images and objects kept, and the images skipped by reason."""
    sources = len({item.source['id'] for item in items})
    objects = sum(class_counts(items, per_source=True).values())
    return (f'layouts kept: {sources} source images with {objects} objects ({len(items)} images to generate); '
            f'skipped: {skipped_reasons(skipped)}')


def skipped_reasons(skipped: Dict[str, int]) -> str:
    """``'2 no boxes, 1 objects too small'``: the skipped source images by reason (``'none'``)."""
    return ', '.join(f'{count} {reason}' for reason, count in skipped.items() if count) or 'none'


def shard(items: Sequence[WorkItem], rank: int, world_size: int) -> List[WorkItem]:
    """The items of ``rank`` (round robin, so ranks get equal shares of large and small images)."""
    return list(items[rank::world_size])
