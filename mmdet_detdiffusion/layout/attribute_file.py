"""COCO annotation files and the DetDiffusion attribute file (pure python).

The attribute file is the input COCO json unchanged except that every annotation gains
``"pa_attr": "easy" | "hard"`` and the top level gains a ``"detdiffusion"`` record (detector config,
checkpoint sha256, gamma, beta, date, counts). Crowd boxes and boxes that cannot be judged are kept and
labelled; the record counts them.
"""
import json
import numbers
from collections import Counter
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from mmdet_detdiffusion.layout.attributes import ATTR_KEY, ATTRIBUTES, EASY, HARD, RECORD_KEY
from mmdet_detdiffusion.utils.fileio import atomic_write_json


class CocoFormatError(ValueError):
    """An annotation file is not the COCO detection format this package expects."""


def _fail(path: str, where: str, expected: str) -> None:
    raise CocoFormatError(f'{path}: {where}: {expected}')


def validate_coco(coco: object, path: str = '<coco>') -> dict:
    """Check that ``coco`` is a COCO detection dict and return it.

    Raises:
        CocoFormatError: naming the file, the field (with index and id) and what is expected.
    """
    if not isinstance(coco, dict):
        _fail(path, 'top level', f'expected a JSON object with images/annotations/categories, '
              f'got {type(coco).__name__}')
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(coco.get(key), list):
            _fail(path, f'"{key}"', 'expected a list (is this a COCO detection file?)')
    category_ids = set()
    for i, cat in enumerate(coco['categories']):
        if not isinstance(cat, dict) or not isinstance(cat.get('id'), int) or 'name' not in cat:
            _fail(path, f'categories[{i}]', 'expected an object with an integer "id" and a "name"')
        category_ids.add(cat['id'])
    image_ids = set()
    for i, img in enumerate(coco['images']):
        if not isinstance(img, dict) or 'id' not in img or not isinstance(img.get('file_name'), str):
            _fail(path, f'images[{i}]', 'expected an object with "id" and a string "file_name"')
        for key in ('width', 'height'):
            if not isinstance(img.get(key), numbers.Number) or img[key] <= 0:
                _fail(path, f'images[{i}] (id={img["id"]}) "{key}"', 'expected a positive number')
        image_ids.add(img['id'])
    for i, ann in enumerate(coco['annotations']):
        if not isinstance(ann, dict) or 'id' not in ann:
            _fail(path, f'annotations[{i}]', 'expected an object with an "id"')
        where = f'annotations[{i}] (id={ann["id"]})'
        if ann.get('image_id') not in image_ids:
            _fail(path, f'{where} "image_id"={ann.get("image_id")!r}', 'expected the id of an entry in "images"')
        if ann.get('category_id') not in category_ids:
            _fail(path, f'{where} "category_id"={ann.get("category_id")!r}',
                  f'expected one of the category ids {sorted(category_ids)}')
        bbox = ann.get('bbox')
        if (not isinstance(bbox, (list, tuple)) or len(bbox) != 4
                or not all(isinstance(v, numbers.Number) for v in bbox)):
            _fail(path, f'{where} "bbox"={bbox!r}', 'expected [x, y, width, height] in pixels')
    return coco


def load_coco(path: str) -> dict:
    """Read and validate a COCO detection json file."""
    try:
        with open(path, 'r', encoding='utf-8') as f:
            coco = json.load(f)
    except FileNotFoundError:
        raise CocoFormatError(f'{path}: file not found') from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CocoFormatError(f'{path}: not valid JSON ({err})') from None
    return validate_coco(coco, path)


def xywh_to_xyxy(bbox: Sequence[float]) -> List[float]:
    """COCO ``[x, y, w, h]`` to ``[x1, y1, x2, y2]`` (pixels)."""
    x, y, w, h = bbox
    return [x, y, x + w, y + h]


def clip_box(box_xyxy: Sequence[float], width: float, height: float) -> Tuple[List[float], bool]:
    """Clip an xyxy pixel box to the image; return the box and whether any area is left."""
    x1, y1, x2, y2 = box_xyxy
    clipped = [min(max(x1, 0.0), width), min(max(y1, 0.0), height),
               min(max(x2, 0.0), width), min(max(y2, 0.0), height)]
    return clipped, clipped[2] > clipped[0] and clipped[3] > clipped[1]


def annotations_by_image(coco: dict) -> Dict[object, List[dict]]:
    """Map each image id to its annotations, in file order (images without boxes map to [])."""
    by_image: Dict[object, List[dict]] = {img['id']: [] for img in coco['images']}
    for ann in coco['annotations']:
        by_image[ann['image_id']].append(ann)
    return by_image


def attribute_counts(coco: dict) -> Dict[str, Counter]:
    """Count ``pa_attr`` values per category name (crowd boxes under ``'<name> (crowd)'``)."""
    names = {cat['id']: cat['name'] for cat in coco['categories']}
    counts: Dict[str, Counter] = {name: Counter() for name in names.values()}
    for ann in coco['annotations']:
        name = names[ann['category_id']]
        if ann.get('iscrowd', 0):
            name = f'{name} (crowd)'
        counts.setdefault(name, Counter())[ann.get(ATTR_KEY, 'unlabelled')] += 1
    return counts


def format_attribute_table(coco: dict) -> str:
    """A plain-text table of easy/hard counts per class, with a total row."""
    counts = attribute_counts(coco)
    rows = [('class', EASY, HARD, f'{HARD} %')]
    total = Counter()
    for name, counter in counts.items():
        total.update(counter)
        rows.append(_table_row(name, counter))
    rows.append(_table_row('all', total))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ['  '.join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                       enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, '-' * len(lines[0]))
    return '\n'.join(lines)


def _table_row(name: str, counter: Counter) -> Tuple[str, str, str, str]:
    labelled = counter[EASY] + counter[HARD]
    share = f'{100.0 * counter[HARD] / labelled:.1f}' if labelled else '-'
    return name, str(counter[EASY]), str(counter[HARD]), share


def apply_attributes(coco: dict, attributes: Mapping[object, str]) -> dict:
    """Return a copy of ``coco`` whose annotations carry ``pa_attr`` from ``attributes`` (ann id -> attr).

    Raises:
        KeyError: an annotation has no attribute (every annotation must be labelled).
        ValueError: an attribute is not ``'easy'`` or ``'hard'``.
    """
    annotations = []
    for ann in coco['annotations']:
        if ann['id'] not in attributes:
            raise KeyError(f'annotation id={ann["id"]} was not labelled')
        attr = attributes[ann['id']]
        if attr not in ATTRIBUTES:
            raise ValueError(f'annotation id={ann["id"]}: attribute {attr!r} is not one of {ATTRIBUTES}')
        annotations.append({**ann, ATTR_KEY: attr})
    return {**coco, 'annotations': annotations}


def write_attribute_file(coco: dict, attributes: Mapping[object, str], out_path: str,
                         record: Optional[dict] = None) -> dict:
    """Write the attribute file atomically and return the written dict.

    Args:
        coco: the validated input COCO dict (not modified).
        attributes: annotation id -> ``'easy'`` / ``'hard'`` for every annotation.
        out_path: destination json path.
        record: provenance stored under the top-level ``"detdiffusion"`` key (counts are added).
    """
    labelled = apply_attributes(coco, attributes)
    total = Counter(ann[ATTR_KEY] for ann in labelled['annotations'])
    labelled[RECORD_KEY] = {**(record or {}), 'counts': {attr: total[attr] for attr in ATTRIBUTES}}
    atomic_write_json(labelled, out_path)
    return labelled
