"""SyntheticInstancePaste: X-Paste's instance paste with generated objects.

Generated objects, cut out by their masks, are pasted onto real training images; each pasted object's box is the
tight box of its mask where it lands. The objects come from a synthetic set written with ``tools/generate.py
--box-source head``, whose annotations carry each object's mask (``segmentation``: COCO RLE of the perception head's
mask, :mod:`~mmdet_detdiffusion.synthetic.box_repair`); ignore regions and objects without a mask are not pasted.

In a stock mmdet pipeline, after ``LoadAnnotations``::

    dict(type='SyntheticInstancePaste', ann_file='data/synthetic_head/annotations.json',
         img_prefix='data/synthetic_head/images/', classes=CLASSES, prob=0.5, max_instances=3)

Per image, with probability ``prob``: draw 1 to ``max_instances`` objects uniformly from the set, and place each at a
uniform random position where its box lies inside the image and touches no box of the image (its own or pasted), up
to ``max_tries`` positions (else it is not pasted). The pixels under its mask are replaced, and its box and label are
appended (not ignored). Randomness is numpy's global generator, as in mmcv's transforms (seeded per worker by
mmengine). Boxes only: results that hold ``gt_masks`` are refused, since instance masks of occluded objects would need
cutting too. mmdet's ``CopyPaste`` of real objects is the control arm of this transform.
"""
import os
from typing import List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np
import pycocotools.mask as mask_utils
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

from mmdet_detdiffusion.layout.attribute_file import annotations_by_image, load_coco


class PasteInstance(NamedTuple):
    """One object of the set: its image's file, its label, its mask's integer xyxy pixel box and the mask (RLE)."""
    file_name: str
    label: int
    box: Tuple[int, int, int, int]
    rle: dict


def load_instances(ann_file: str, classes: Sequence[str]) -> List[PasteInstance]:
    """The pasteable objects of a synthetic set: non-crowd annotations with a non-empty RLE ``segmentation`` of a
    class among ``classes`` (``label`` = its index there)."""
    coco = load_coco(ann_file)
    names = {cat['id']: cat['name'] for cat in coco['categories']}
    unknown = sorted(set(names.values()) - set(classes))
    if unknown:
        raise ValueError(f'SyntheticInstancePaste: {ann_file} has categories {unknown} that are not among the classes '
                         f'{list(classes)}')
    images = {image['id']: image for image in coco['images']}
    instances = []
    for image_id, annotations in annotations_by_image(coco).items():
        for ann in annotations:
            rle = ann.get('segmentation')
            if ann.get('iscrowd', 0) or not isinstance(rle, dict) or not mask_utils.area(rle):
                continue
            x, y, w, h = (int(v) for v in mask_utils.toBbox(rle))
            instances.append(PasteInstance(images[image_id]['file_name'], classes.index(names[ann['category_id']]),
                                           (x, y, x + w, y + h), rle))
    if not instances:
        raise ValueError(f'SyntheticInstancePaste: {ann_file} has no object with a mask: write the set with '
                         'tools/generate.py --box-source head')
    return instances


@TRANSFORMS.register_module()
class SyntheticInstancePaste(BaseTransform):
    """Paste generated objects onto the image (module docstring).

    Args:
        ann_file: the synthetic set's COCO file, written with ``--box-source head``.
        img_prefix: the folder its ``file_name`` s are in.
        classes: the dataset's class names, index = label (the set's categories are matched by name).
        prob: probability that an image gets pasted objects.
        max_instances: at most this many objects per image (at least one when it gets any).
        max_tries: positions tried per object before it is left out.
    """

    def __init__(self, ann_file: str, img_prefix: str, classes: Sequence[str], prob: float = 0.5,
                 max_instances: int = 3, max_tries: int = 10):
        if not 0 <= prob <= 1 or max_instances < 1 or max_tries < 1:
            raise ValueError(f'SyntheticInstancePaste: need prob in [0, 1], max_instances >= 1 and max_tries >= 1, got '
                             f'{prob}, {max_instances}, {max_tries}')
        self.instances = load_instances(ann_file, list(classes))
        self.img_prefix = img_prefix
        self.prob = prob
        self.max_instances = max_instances
        self.max_tries = max_tries

    def cut(self, instance: PasteInstance) -> Tuple[np.ndarray, np.ndarray]:
        """``(pixels (h, w, 3), mask (h, w) bool)`` of ``instance`` within its mask's box (BGR, as mmcv loads)."""
        path = os.path.join(self.img_prefix, instance.file_name)
        image = cv2.imread(path)
        if image is None:
            raise FileNotFoundError(f'SyntheticInstancePaste: cannot read {path}')
        x1, y1, x2, y2 = instance.box
        return image[y1:y2, x1:x2], mask_utils.decode(instance.rle)[y1:y2, x1:x2].astype(bool)

    def place(self, size: Tuple[int, int], height: int, width: int, taken: np.ndarray) -> Optional[Tuple[int, int]]:
        """The top-left ``(x, y)`` of a ``height x width`` patch inside an image of ``size`` ``(H, W)`` whose box
        touches none of ``taken`` ``(N, 4)`` xyxy, or ``None`` after ``max_tries`` draws."""
        image_height, image_width = size
        if height > image_height or width > image_width:
            return None
        for _ in range(self.max_tries):
            x = np.random.randint(0, image_width - width + 1)
            y = np.random.randint(0, image_height - height + 1)
            apart = (taken[:, 0] >= x + width) | (taken[:, 2] <= x) | (taken[:, 1] >= y + height) | (taken[:, 3] <= y)
            if apart.all():
                return x, y
        return None

    def transform(self, results: dict) -> dict:
        if 'gt_masks' in results:
            raise ValueError('SyntheticInstancePaste pastes boxes only: the results hold gt_masks (instance '
                             'segmentation), whose occluded masks it would not cut')
        if np.random.rand() >= self.prob:
            return results
        image = results['img']
        boxes = results['gt_bboxes']
        taken = (boxes.tensor.numpy() if hasattr(boxes, 'tensor') else np.asarray(boxes)).reshape(-1, 4)
        new_boxes, new_labels = [], []
        for _ in range(np.random.randint(1, self.max_instances + 1)):
            instance = self.instances[np.random.randint(len(self.instances))]
            pixels, mask = self.cut(instance)
            spot = self.place(image.shape[:2], *mask.shape, taken)
            if spot is None:
                continue
            x, y = spot
            region = image[y:y + mask.shape[0], x:x + mask.shape[1]]
            region[mask] = pixels[mask]
            ys, xs = np.nonzero(mask)
            box = np.array([x + xs.min(), y + ys.min(), x + xs.max() + 1, y + ys.max() + 1], dtype=np.float32)
            taken = np.concatenate([taken, box[None]])
            new_boxes.append(box)
            new_labels.append(instance.label)
        if new_boxes:
            added = np.stack(new_boxes)
            results['gt_bboxes'] = type(boxes).cat([boxes, type(boxes)(added)]) if hasattr(boxes, 'tensor') else \
                np.concatenate([np.asarray(boxes, dtype=np.float32).reshape(-1, 4), added])
            results['gt_bboxes_labels'] = np.concatenate([results['gt_bboxes_labels'],
                                                          np.array(new_labels, dtype=np.int64)])
            if 'gt_ignore_flags' in results:
                results['gt_ignore_flags'] = np.concatenate([results['gt_ignore_flags'],
                                                             np.zeros(len(new_boxes), dtype=bool)])
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(instances={len(self.instances)}, prob={self.prob}, '
                f'max_instances={self.max_instances})')
