# One-stage toy detector (RetinaNet) on the shapes set: the demo's detector D. ignore_iof_thr 0.5 makes the ignore
# regions (iscrowd) of synthetic sets ignored, neither object nor background; mmdet's -1 makes them background. The
# real shapes have none.
_base_ = ['./_base_/shapes_detection.py', './_base_/tiny_resnet_fpn.py']

model = dict(
    type='RetinaNet',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone={{_base_.backbone}},
    neck={{_base_.neck}},
    bbox_head=dict(
        type='RetinaHead', num_classes=3, in_channels=32, stacked_convs=2, feat_channels=32,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=2, scales_per_octave=2,
                              ratios=[1.0], strides=[8, 16, 32]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0], target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0,
                                 ignore_iof_thr=0.5),
                   sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1, debug=False),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
                  max_per_img=100))
