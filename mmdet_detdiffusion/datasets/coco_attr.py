"""COCO dataset for generator training: keeps ``pa_attr`` per box, filters tiny objects and images.

mmdet's CocoDataset drops unknown annotation keys and some annotations (crowd-free checks, zero area,
unknown category). This subclass re-applies the same skip rule to find which annotation each kept
instance came from, then copies its ``pa_attr`` (``'easy'``/``'hard'``, absent -> None) into the
instance. Annotations without a segmentation get their box as a polygon mask, so the perception head
always has an instance mask to learn.

A forgotten labeling step is caught: with ``require_pa_attr`` (the default), an annotation file in which
no kept box has ``pa_attr`` is refused, naming the file and ``tools/label_attributes.py``; when only some
boxes lack it, their number is logged (they are written without an attribute token).

Filters (both configurable, applied after mmdet's own ``filter_cfg``):
- ``min_box_area_ratio``: drop boxes smaller than this share of the image (GeoDiffusion: 0.002);
- ``min_object_area_ratio``: drop images whose boxes cover less than this share of the image in total
  (sum of box areas, capped at 1; DetDiffusion's COCO recipe: 0.02).
"""
import logging
from typing import List, Union

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from mmengine.logging import print_log

from mmdet_detdiffusion.layout.attributes import ATTR_KEY
from mmdet_detdiffusion.layout.inputs import box_area_share, covered_share


def _kept_by_mmdet(ann: dict, img_w: float, img_h: float, cat_ids: List[int]) -> bool:
    """mmdet 3.3 ``CocoDataset.parse_data_info``'s rule for turning an annotation into an instance."""
    if ann.get('ignore', False):
        return False
    x1, y1, w, h = ann['bbox']
    inter_w = max(0, min(x1 + w, img_w) - max(x1, 0))
    inter_h = max(0, min(y1 + h, img_h) - max(y1, 0))
    if inter_w * inter_h == 0 or ann['area'] <= 0 or w < 1 or h < 1:
        return False
    return ann['category_id'] in cat_ids


def box_polygon(bbox_xyxy: List[float]) -> List[List[float]]:
    """The box as a COCO polygon (one ring, pixels)."""
    x1, y1, x2, y2 = bbox_xyxy
    return [[x1, y1, x2, y1, x2, y2, x1, y2]]


@DATASETS.register_module()
class DetDiffusionCocoDataset(CocoDataset):
    """CocoDataset whose instances carry ``pa_attr`` and always a ``mask`` (see module docstring).

    Args:
        min_box_area_ratio: boxes below this share of the image area are dropped (0 keeps all).
        min_object_area_ratio: images whose boxes cover less than this share are dropped (0 keeps all).
        require_pa_attr: refuse a file where no box has ``pa_attr`` (off for data whose attributes come
            from elsewhere, e.g. ``RandomPerceptionAttributes`` or a generator without attributes).
    """

    def __init__(self, *args, min_box_area_ratio: float = 0.0, min_object_area_ratio: float = 0.0,
                 require_pa_attr: bool = True, **kwargs):
        self.min_box_area_ratio = min_box_area_ratio
        self.min_object_area_ratio = min_object_area_ratio
        self.require_pa_attr = require_pa_attr
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        data_list = super().load_data_list()
        if self.require_pa_attr and not self.test_mode:
            self._check_attributes(data_list)
        return data_list

    def _check_attributes(self, data_list: List[dict]) -> None:
        """Refuse an unlabelled file; log how many boxes of a partly labelled one lack ``pa_attr``."""
        attrs = [instance[ATTR_KEY] for info in data_list for instance in info['instances']]
        missing = sum(attr is None for attr in attrs)
        if attrs and missing == len(attrs):
            raise ValueError(f'{self.ann_file}: no box has a "{ATTR_KEY}" (easy/hard) attribute. Label the file '
                             'with the detector first: python tools/label_attributes.py DET_CONFIG DET_CHECKPOINT '
                             f'--ann-file {self.ann_file} --out ..._pa_attr.json, then train on its output '
                             '(or set require_pa_attr=False for a generator without attributes)')
        if missing:
            print_log(f'{self.ann_file}: {missing} of {len(attrs)} boxes have no "{ATTR_KEY}"; their objects are '
                      'written without an attribute token', logger='current', level=logging.WARNING)

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, List[dict]]:
        data_info = super().parse_data_info(raw_data_info)
        img_w, img_h = data_info['width'], data_info['height']
        sources = [ann for ann in raw_data_info['raw_ann_info'] if _kept_by_mmdet(ann, img_w, img_h, self.cat_ids)]
        if len(sources) != len(data_info['instances']):
            raise RuntimeError(f'{self.ann_file}: image {data_info["img_id"]}: cannot align {len(sources)} '
                               f'annotations with {len(data_info["instances"])} mmdet instances')
        instances = []
        for ann, instance in zip(sources, data_info['instances']):
            if box_area_share(instance['bbox'], img_w, img_h) < self.min_box_area_ratio:
                continue
            instance[ATTR_KEY] = ann.get(ATTR_KEY)
            instance.setdefault('mask', box_polygon(instance['bbox']))
            instances.append(instance)
        data_info['instances'] = instances
        return data_info

    def filter_data(self) -> List[dict]:
        kept = super().filter_data()
        if self.test_mode or not self.min_object_area_ratio:
            return kept
        return [info for info in kept if covered_share([inst['bbox'] for inst in info['instances']], info['width'],
                                                       info['height']) >= self.min_object_area_ratio]
