"""Data transforms for generator training, used inside stock mmdet pipelines.

Typical pipeline (images resized to the training resolution; boxes, masks and attributes stay aligned
because every geometric transform here is one mmdet applies to boxes and masks together, and
attributes are per-instance values that no such transform reorders)::

    [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
     dict(type='LoadPerceptionAttributes'), dict(type='Resize', scale=(512, 512), keep_ratio=False),
     dict(type='RandomFlip', prob=0.5), dict(type='PackGeneratorInputs')]

Do not add transforms that drop instances (FilterAnnotations, RandomCrop): they do not know the
attribute array. Filter boxes in :class:`~mmdet_detdiffusion.datasets.DetDiffusionCocoDataset` instead.
"""
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.datasets.transforms import PackDetInputs
from mmdet.registry import TRANSFORMS

from mmdet_detdiffusion.layout.attributes import ATTR_CODES, ATTR_KEY, EASY, HARD, slot_values


@TRANSFORMS.register_module()
class LoadPerceptionAttributes(BaseTransform):
    """``results['instances'][i]['pa_attr']`` -> ``results['gt_pa_attrs']``: int64 ``(N,)`` attribute codes
    (``ATTR_CODES``: 0 easy, 1 hard, then any value a project registers, -1 none); aligned with ``gt_bboxes`` from
    ``LoadAnnotations``."""

    def transform(self, results: dict) -> dict:
        attrs = [instance.get(ATTR_KEY) for instance in results.get('instances', [])]
        unknown = sorted({str(a) for a in attrs if a not in ATTR_CODES})
        if unknown:
            raise ValueError(f'{results.get("img_path")}: {ATTR_KEY} values {unknown} are not '
                             f'{"/".join(slot_values())}')
        results['gt_pa_attrs'] = np.array([ATTR_CODES[a] for a in attrs], dtype=np.int64)
        return results


@TRANSFORMS.register_module()
class RandomPerceptionAttributes(BaseTransform):
    """Give every instance a random attribute (``results['gt_pa_attrs']``: int64 ``(N,)``, 1 hard with
    probability ``hard_prob``, else 0 easy), in place of :class:`LoadPerceptionAttributes`.

    For pretraining a base model on the prompt grammar (an attribute token after each object) without
    teaching it what the attributes mean: the tokens carry no information about the image, and fine-tuning
    on detector labels gives them their meaning.
    """

    def __init__(self, hard_prob: float = 0.5) -> None:
        if not 0.0 <= hard_prob <= 1.0:
            raise ValueError(f'RandomPerceptionAttributes: hard_prob={hard_prob} is not a probability in [0, 1]')
        self.hard_prob = hard_prob

    def transform(self, results: dict) -> dict:
        num_instances = len(results.get('instances', []))
        hard = np.random.rand(num_instances) < self.hard_prob
        results['gt_pa_attrs'] = np.where(hard, ATTR_CODES[HARD], ATTR_CODES[EASY]).astype(np.int64)
        return results


@TRANSFORMS.register_module()
class PackGeneratorInputs(PackDetInputs):
    """PackDetInputs that also packs ``gt_pa_attrs`` as ``gt_instances.pa_attrs``."""

    mapping_table = {**PackDetInputs.mapping_table, 'gt_pa_attrs': 'pa_attrs'}

    def __init__(self, meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'flip', 'flip_direction')):
        super().__init__(meta_keys=meta_keys)
