"""Synthetic images in a detector's loss: DetDiffusionDataset marks them, SyntheticAwareRetinaHead drops their box
loss (and, as a second switch, their background loss), real images train as before."""
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from helpers import real_cfg, synthetic_cfg, synthetic_detector_cfg
from mmdet_detdiffusion.datasets import DetDiffusionDataset

PACK = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True), dict(type='PackDetInputs')]
IMAGE = dict(img_shape=(64, 64), pad_shape=(64, 64), scale_factor=(1.0, 1.0))


def head(**switches):
    init_default_scope('mmdet')
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='SyntheticAwareRetinaHead', num_classes=3, in_channels=8, feat_channels=8, stacked_convs=1,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=1, ratios=[1.0],
                              strides=[8]),
        train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0,
                                     ignore_iof_thr=-1),
                       sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1, debug=False),
        **switches))


def losses(model, synthetic: bool) -> dict:
    """The head's losses on one 64x64 image with two objects, marked synthetic or not."""
    torch.manual_seed(1)
    cls_scores, bbox_preds = model((torch.randn(1, 8, 8, 8),))
    gt = InstanceData(bboxes=torch.tensor([[8., 8., 40., 40.], [40., 36., 60., 60.]]), labels=torch.tensor([1, 2]))
    out = model.loss_by_feat(cls_scores, bbox_preds, [gt], [dict(IMAGE, synthetic=synthetic)])
    return {name: sum(v) for name, v in out.items()}


def targets(model, synthetic: bool):
    anchors, valid = model.get_anchors([(8, 8)], [IMAGE], device='cpu')
    gt = InstanceData(bboxes=torch.tensor([[8., 8., 40., 40.]]), labels=torch.tensor([1]))
    labels, label_weights, _, bbox_weights, _ = model.get_targets(anchors, valid, [gt],
                                                                  [dict(IMAGE, synthetic=synthetic)])
    return labels[0][0], label_weights[0][0], bbox_weights[0][0]


def test_a_synthetic_image_adds_no_box_loss_and_the_same_classification_loss():
    model = head(synthetic_box_loss=False)
    real, synthetic = losses(model, False), losses(model, True)
    assert real['loss_bbox'] > 0.01 and synthetic['loss_bbox'] == 0
    torch.testing.assert_close(synthetic['loss_cls'], real['loss_cls'])
    default = head()
    torch.testing.assert_close(losses(default, True)['loss_bbox'], losses(default, False)['loss_bbox'])


def test_the_background_switch_keeps_only_the_objects_anchors():
    labels, weights, _ = targets(head(synthetic_background_loss=False), synthetic=True)
    positive = labels != 3
    assert positive.any() and (weights[positive] == 1).all() and (weights[~positive] == 0).all()
    labels, weights, box_weights = targets(head(synthetic_background_loss=False), synthetic=False)
    assert (weights[labels == 3] == 1).sum() > 0 and box_weights.sum() > 0  # a real image: as mmdet trains it


def test_the_wrapper_marks_synthetic_samples(shapes_root, synthetic_root):
    init_default_scope('mmdet')
    dataset = DetDiffusionDataset(dict(real_cfg(shapes_root), pipeline=PACK), synthetic_cfg(synthetic_root))
    num_real = len(dataset.real)
    assert dataset[0]['data_samples'].metainfo['synthetic'] is False
    assert dataset[num_real]['data_samples'].metainfo['synthetic'] is True


@pytest.mark.slow
def test_a_detector_trains_with_the_synthetic_switches(shapes_root, synthetic_root, tmp_path):
    from mmengine.runner import Runner
    cfg = synthetic_detector_cfg(shapes_root, synthetic_root, str(tmp_path))
    cfg.model.bbox_head.update(type='SyntheticAwareRetinaHead', synthetic_box_loss=False,
                               synthetic_background_loss=False)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert type(runner.model.bbox_head).__name__ == 'SyntheticAwareRetinaHead'
    assert runner.iter > 0 and (tmp_path / 'epoch_1.pth').is_file()
