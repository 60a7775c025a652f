"""Toy "shapes" detection dataset in COCO format: the data of the demo and the tests.

Each image is a noisy background with 1..``max_objects`` non-overlapping circles, squares and triangles
of several sizes. Small, low-contrast objects are naturally harder to detect, so a detector trained on the
set yields both easy and hard boxes. Colours (``colours``):

- ``'random'``: any palette colour on a random coloured background;
- ``'by_class'``: circles red, squares green, triangles blue, on a random grey (near-black to near-white),
  each object blended into the background by its own ``contrast`` (uniform in ``min_contrast..1``,
  default ``MIN_CONTRAST``). What an image looks like is then mostly written in its layout, so a small
  generator learns to follow layouts on a CPU, and how detectable an object is depends on something its box
  does not say (its contrast): exactly what the easy/hard attribute is meant to capture.

``DEMO_SHAPES`` is the demo's recipe (larger objects, fainter contrasts than the function's defaults).

Layout written under ``out_dir``::

    images/train/000000.png ...   images/val/000000.png ...
    annotations/train.json        annotations/val.json      (COCO: boxes xywh in pixels, polygon masks)
"""
import os
from types import MappingProxyType
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from mmdet_detdiffusion.utils.fileio import atomic_write_json

SHAPES_CLASSES = ('circle', 'square', 'triangle')
SHAPES_PALETTE = {  # RGB
    'red': (220, 40, 40), 'green': (40, 180, 60), 'blue': (40, 80, 220),
    'yellow': (230, 210, 40), 'purple': (150, 60, 190), 'white': (240, 240, 240),
}
CLASS_COLOURS = {'circle': 'red', 'square': 'green', 'triangle': 'blue'}
COLOUR_SCHEMES = ('random', 'by_class')
MIN_CONTRAST = 0.15  # 'by_class': the faintest object's colour is 15% of the way from background to palette
# The demo's data (projects/toy_shapes/tools/make_shapes_dataset.py's defaults): objects of at least 8 px half-size in
# 128 px images and contrasts down to 5%, so that what makes a box hard for a detector is more its appearance, which an
# attribute token can draw, than its size, which the layout fixes (projects/toy_shapes/docs/demo_status.md).
DEMO_SHAPES: Mapping[str, Any] = MappingProxyType(dict(size=128, min_radius=8.0, min_contrast=0.05, colours='by_class'))
GREY_RANGE = (10, 245)  # 'by_class' backgrounds, near-black to near-white
NOISE_RANGE = (12.0, 12.0)  # per-pixel noise std in grey levels


def _shape_polygon(shape: str, cx: float, cy: float, radius: float, num_circle_points: int = 24
                   ) -> np.ndarray:
    """Polygon ``(K, 2)`` (x, y pixels) of a shape centred at (cx, cy) with half-size ``radius``."""
    if shape == 'circle':
        angles = np.linspace(0, 2 * np.pi, num_circle_points, endpoint=False)
        return np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1)
    if shape == 'square':
        return np.array([[cx - radius, cy - radius], [cx + radius, cy - radius],
                         [cx + radius, cy + radius], [cx - radius, cy + radius]])
    if shape == 'triangle':
        return np.array([[cx, cy - radius], [cx + radius, cy + radius], [cx - radius, cy + radius]])
    raise ValueError(f'unknown shape {shape!r}; expected one of {SHAPES_CLASSES}')


def _boxes_overlap(box: Tuple[float, float, float, float], others: List[Tuple[float, ...]],
                   margin: float = 2.0) -> bool:
    x1, y1, x2, y2 = box
    return any(x1 < ox2 + margin and ox1 < x2 + margin and y1 < oy2 + margin and oy1 < y2 + margin
               for ox1, oy1, ox2, oy2 in others)


def render_shapes_image(rng: np.random.Generator, size: int, max_objects: int, min_radius: float,
                        max_radius: float, colours: str = 'random', min_contrast: float = MIN_CONTRAST,
                        grey_range: Tuple[int, int] = GREY_RANGE, noise_range: Tuple[float, float] = NOISE_RANGE,
                        class_weights: Optional[Sequence[float]] = None) -> Tuple[np.ndarray, List[Dict]]:
    """Draw one image (``colours``: see the module docstring).

    ``grey_range``: the ``'by_class'`` background grey level is uniform in it (0..255); ``noise_range``: the
    per-pixel Gaussian noise std (grey levels) is uniform in it; ``class_weights``: relative frequency of
    each of ``SHAPES_CLASSES`` (default: uniform).

    Returns:
        ``(image, objects)``: an RGB ``uint8`` array ``(size, size, 3)`` and, per object, a dict with
        ``shape``, ``colour``, ``contrast`` (0..1, 1 = the palette colour itself), ``polygon`` (flat
        ``[x0, y0, x1, y1, ...]``) and ``bbox_xyxy`` in pixels.
    """
    background = rng.integers(30, 200, size=3) if colours == 'random' else \
        np.full(3, rng.integers(grey_range[0], grey_range[1] + 1))
    noise = rng.uniform(*noise_range)
    image = np.clip(background + rng.normal(0, noise, size=(size, size, 3)), 0, 255).astype(np.uint8)
    objects: List[Dict] = []
    boxes: List[Tuple[float, ...]] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            radius = float(rng.uniform(min_radius, max_radius))
            cx, cy = rng.uniform(radius, size - radius, size=2)
            shape = SHAPES_CLASSES[int(rng.integers(len(SHAPES_CLASSES))) if class_weights is None else
                                   int(rng.choice(len(SHAPES_CLASSES), p=class_weights))]
            polygon = _shape_polygon(shape, cx, cy, radius)
            box = (*polygon.min(axis=0), *polygon.max(axis=0))
            if not _boxes_overlap(box, boxes):
                break
        else:
            continue  # no free spot left in this image
        if colours == 'random':
            colour, contrast = list(SHAPES_PALETTE)[int(rng.integers(len(SHAPES_PALETTE)))], 1.0
        else:
            colour, contrast = CLASS_COLOURS[shape], float(rng.uniform(min_contrast, 1.0))
        fill = background + contrast * (np.array(SHAPES_PALETTE[colour]) - background)
        cv2.fillPoly(image, [np.round(polygon).astype(np.int32)], [int(v) for v in np.round(fill)],
                     lineType=cv2.LINE_AA)
        boxes.append(box)
        objects.append(dict(shape=shape, colour=colour, contrast=round(contrast, 3),
                            polygon=polygon.reshape(-1).tolist(), bbox_xyxy=[float(v) for v in box]))
    return image, objects


def write_shapes_dataset(out_dir: str, num_train: int = 200, num_val: int = 50, size: int = 128,
                         max_objects: int = 4, min_radius: float = 5.0,
                         max_radius: Optional[float] = None, seed: int = 0, colours: str = 'random',
                         min_contrast: float = MIN_CONTRAST,
                         train_class_weights: Optional[Sequence[float]] = None) -> Dict[str, str]:
    """Write the shapes dataset (see module docstring) and return ``{split: annotation json path}``.

    Args:
        out_dir: destination folder (created).
        num_train / num_val: images per split.
        size: image side in pixels (images are square).
        max_objects: at most this many objects per image (at least one).
        min_radius / max_radius: half-size range of the shapes in pixels (default max: ``size / 5``).
        seed: the whole dataset is a pure function of its arguments.
        colours: ``'random'`` or ``'by_class'`` (module docstring).
        min_contrast: ``'by_class'``: the faintest contrast (0..1).
        train_class_weights: relative frequency of each of ``SHAPES_CLASSES`` in the train split, e.g.
            ``(1, 1, 0.1)`` for a rare triangle; the val split keeps uniform classes, so that every class's
            AP is measured on as many objects.
    """
    if colours not in COLOUR_SCHEMES:
        raise ValueError(f'write_shapes_dataset: colours must be one of {COLOUR_SCHEMES}, got {colours!r}')
    if size < 16 or max_objects < 1 or min_radius <= 0 or not 0 <= min_contrast <= 1:
        raise ValueError('write_shapes_dataset: need size >= 16, max_objects >= 1, min_radius > 0 and '
                         f'min_contrast in 0..1, got {size}, {max_objects}, {min_radius}, {min_contrast}')
    if train_class_weights is not None:
        weights = np.asarray(train_class_weights, dtype=np.float64)
        if weights.shape != (len(SHAPES_CLASSES),) or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f'write_shapes_dataset: train_class_weights must be {len(SHAPES_CLASSES)} non-negative '
                             f'weights for {SHAPES_CLASSES}, not all 0; got {train_class_weights}')
        train_class_weights = tuple(weights / weights.sum())
    max_radius = max_radius if max_radius is not None else size / 5.0
    if max_radius < min_radius or 2 * max_radius >= size:
        raise ValueError(f'write_shapes_dataset: radius range [{min_radius}, {max_radius}] does not fit '
                         f'images of size {size}')
    categories = [dict(id=i + 1, name=name, supercategory='shape') for i, name in enumerate(SHAPES_CLASSES)]
    cat_ids = {cat['name']: cat['id'] for cat in categories}
    paths = {}
    splits = (('train', num_train, seed, train_class_weights), ('val', num_val, seed + 1_000_003, None))
    for split, count, split_seed, class_weights in splits:
        rng = np.random.default_rng(split_seed)
        os.makedirs(os.path.join(out_dir, 'images', split), exist_ok=True)
        images, annotations = [], []
        for index in range(count):
            image, objects = render_shapes_image(rng, size, max_objects, min_radius, max_radius, colours,
                                                 min_contrast, class_weights=class_weights)
            file_name = f'{split}/{index:06d}.png'
            cv2.imwrite(os.path.join(out_dir, 'images', file_name), image[:, :, ::-1])
            images.append(dict(id=index + 1, file_name=file_name, width=size, height=size))
            for obj in objects:
                x1, y1, x2, y2 = obj['bbox_xyxy']
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=index + 1, category_id=cat_ids[obj['shape']],
                    bbox=[x1, y1, x2 - x1, y2 - y1], area=float(cv2.contourArea(
                        np.asarray(obj['polygon'], np.float32).reshape(-1, 2))),
                    segmentation=[obj['polygon']], iscrowd=0, colour=obj['colour'], contrast=obj['contrast']))
        paths[split] = os.path.join(out_dir, 'annotations', f'{split}.json')
        atomic_write_json(dict(images=images, annotations=annotations, categories=categories,
                               info=dict(description='DetDiffusion toy shapes', seed=seed, size=size,
                                         max_objects=max_objects, min_radius=min_radius, max_radius=max_radius,
                                         colours=colours, min_contrast=min_contrast,
                                         class_weights=class_weights)),
                          paths[split])
    return paths
