"""What a synthetic dataset contains, decided before anything is generated (pure python).

Every source image that passes the training filters (and, optionally, has ``min_objects`` to
``max_objects`` boxes after them: the paper's trainability set keeps COCO images with 3 to 8 objects)
yields ``num_per_image`` work items; an item's
layout is the image's non-crowd boxes (xyxy pixels, clipped), its seed a hash of (seed, image id, k),
so the plan, and with it every generated image, is a pure function of the inputs.
"""
import os
import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from mmdet_detdiffusion.layout.attribute_file import annotations_by_image, clip_box, xywh_to_xyxy
from mmdet_detdiffusion.layout.attributes import ATTR_KEY
from mmdet_detdiffusion.layout.inputs import keep_objects


@dataclass(frozen=True)
class WorkItem:
    """One synthetic image to make.

    index: position in the plan (orders the final dataset); file_name: relative to ``images/``;
    source: the source COCO image entry; boxes: xyxy pixels of the source image; category_ids /
    attrs: per box; variant: k of ``num_per_image``; seed: the initial-noise seed.
    """
    index: int
    file_name: str
    source: dict
    boxes: Tuple[Tuple[float, float, float, float], ...]
    category_ids: Tuple[int, ...]
    attrs: Tuple[Optional[str], ...]
    variant: int
    seed: int


def item_seed(seed: int, image_id, variant: int) -> int:
    """A stable 31-bit seed for (seed, source image id, variant)."""
    return zlib.crc32(f'{seed}:{image_id}:{variant}'.encode()) & 0x7FFFFFFF


def synthetic_file_name(source_file_name: str, attr_mode: str, variant: int, ext: str) -> str:
    """``{source stem}_{attr mode}_{variant}.{ext}`` (folders of the source name joined with '_')."""
    stem = os.path.splitext(source_file_name)[0].replace('/', '_').replace('\\', '_')
    return f'{stem}_{attr_mode}_{variant}.{ext}'


def plan_items(coco: dict, num_per_image: int, attr_mode: str, seed: int = 0, ext: str = 'png',
               min_box_area_ratio: float = 0.0, min_object_area_ratio: float = 0.0, min_objects: int = 0,
               max_objects: Optional[int] = None) -> Tuple[List[WorkItem], Dict]:
    """The work items of a synthetic dataset made from the validated COCO dict ``coco``.

    Images are taken in file order; crowd boxes are not part of layouts (they are not drawn); the
    area filters are those of :func:`~mmdet_detdiffusion.layout.inputs.keep_objects`; then images with
    fewer than ``min_objects`` or more than ``max_objects`` (``None``: no limit) boxes left are skipped.

    Returns:
        ``(items, skipped)``: ``skipped`` counts source images dropped, by reason.
    """
    if num_per_image < 1:
        raise ValueError(f'num_per_image must be >= 1, got {num_per_image}')
    by_image = annotations_by_image(coco)
    count_range = f'[{min_objects}, {"inf" if max_objects is None else max_objects}]'
    items, skipped = [], {'no boxes': 0, 'objects too small': 0, f'object count outside {count_range}': 0}
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
        for variant in range(num_per_image):
            items.append(WorkItem(
                index=len(items), file_name=synthetic_file_name(image['file_name'], attr_mode, variant, ext),
                source=image, boxes=tuple(boxes[i] for i in kept),
                category_ids=tuple(anns[i]['category_id'] for i in kept),
                attrs=tuple(anns[i].get(ATTR_KEY) for i in kept), variant=variant,
                seed=item_seed(seed, image['id'], variant)))
    return items, skipped


def plan_summary(items: Sequence[WorkItem], skipped: Dict[str, int], num_per_image: int) -> str:
    """One line: source images and objects kept, and the images skipped by reason."""
    sources = len(items) // num_per_image
    objects = sum(len(item.boxes) for item in items) // num_per_image
    return (f'layouts kept: {sources} source images with {objects} objects ({len(items)} images to generate); '
            f'skipped: {skipped_reasons(skipped)}')


def skipped_reasons(skipped: Dict[str, int]) -> str:
    """``'2 no boxes, 1 objects too small'``: the skipped source images by reason (``'none'``)."""
    return ', '.join(f'{count} {reason}' for reason, count in skipped.items() if count) or 'none'


def shard(items: Sequence[WorkItem], rank: int, world_size: int) -> List[WorkItem]:
    """The items of ``rank`` (round robin, so ranks get equal shares of large and small images)."""
    return list(items[rank::world_size])
