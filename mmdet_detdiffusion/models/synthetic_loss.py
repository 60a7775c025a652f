"""Detector heads that learn less from synthetic images: classification only, optionally objects only.

A generated object's box may be loose (the generator follows its layout box only roughly), and a generated
background may hide objects nobody labelled. :class:`~mmdet_detdiffusion.datasets.DetDiffusionDataset` marks each
sample of a synthetic set (``metainfo['synthetic']``); a head with :class:`SyntheticLossMixin` then drops, for those
images only:

- ``synthetic_box_loss=False``: the box-regression loss (every anchor's box weight 0): a synthetic object teaches
  what it is, not where its edges are;
- ``synthetic_background_loss=False``: the loss of the anchors assigned to background (their classification weight
  0), as Gen2Det ignores background on synthetic images.

Real images train as before, but for one thing: the losses' normaliser, the batch's positive anchors, still counts
the synthetic images' positives, so in a batch that mixes both a real box weighs as one positive among all of them.
A synthetic sample is marked by the wrapper's ``__getitem__``: a pipeline that packs no ``data_samples`` (or a
dataset wrapped around the wrapper that packs on its own) leaves it unmarked, i.e. real. In a stock mmdet RetinaNet
config::

    model = dict(bbox_head=dict(type='SyntheticAwareRetinaHead', synthetic_box_loss=False))

Another ``AnchorHead`` subclass gets the switches as ``class MyHead(SyntheticLossMixin, ThatHead)``, registered in
``MODELS``.
"""
from typing import Optional

import torch
from mmdet.models.dense_heads import RetinaHead
from mmdet.registry import MODELS
from mmengine.structures import InstanceData

from mmdet_detdiffusion.datasets.detdiffusion_dataset import SYNTHETIC_KEY


class SyntheticLossMixin:
    """Per-image targets of an ``AnchorHead`` with the synthetic images' box and background losses switched off
    (module docstring); the mixin goes before the head class."""

    def __init__(self, *args, synthetic_box_loss: bool = True, synthetic_background_loss: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.synthetic_box_loss = synthetic_box_loss
        self.synthetic_background_loss = synthetic_background_loss

    def _get_targets_single(self, flat_anchors: torch.Tensor, valid_flags: torch.Tensor, gt_instances: InstanceData,
                            img_meta: dict, gt_instances_ignore: Optional[InstanceData] = None,
                            unmap_outputs: bool = True) -> tuple:
        """``AnchorHead``'s targets ``(labels, label_weights, bbox_targets, bbox_weights, pos_inds, neg_inds,
        sampling_result)`` of one image, the weights zeroed as switched for a synthetic one."""
        labels, label_weights, bbox_targets, bbox_weights, *rest = super()._get_targets_single(
            flat_anchors, valid_flags, gt_instances, img_meta, gt_instances_ignore, unmap_outputs)
        if img_meta.get(SYNTHETIC_KEY, False):
            if not self.synthetic_box_loss:
                bbox_weights = torch.zeros_like(bbox_weights)
            if not self.synthetic_background_loss:
                label_weights = label_weights * (labels != self.num_classes)
        return (labels, label_weights, bbox_targets, bbox_weights, *rest)


@MODELS.register_module()
class SyntheticAwareRetinaHead(SyntheticLossMixin, RetinaHead):
    """mmdet's ``RetinaHead`` with the synthetic-image loss switches of :class:`SyntheticLossMixin`.

    Args:
        synthetic_box_loss: synthetic images add box-regression loss.
        synthetic_background_loss: synthetic images add the loss of background anchors.
        args / kwargs: ``RetinaHead``'s.
    """
