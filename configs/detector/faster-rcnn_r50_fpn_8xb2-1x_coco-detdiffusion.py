# Trainability setting of the paper: Faster R-CNN R50-FPN 1x on COCO real + DetDiffusion synthetic data.
# Synthetic set: tools/generate.py GEN_DIR --ann-file data/coco/annotations/instances_train2017_pa_attr.json
#                --out data/coco_synthetic_hard --attr-mode hard
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmdet_detdiffusion'], allow_failed_imports=False)
randomness = dict(seed=0)  # trainability runs vary it (--cfg-options randomness.seed=N) for seed noise

synthetic = dict(type='CocoDataset', data_root='data/coco_synthetic_hard/', ann_file='annotations.json',
                 data_prefix=dict(img='images/'))  # pipeline, metainfo, filter_cfg: as the real set
# Every real and synthetic sample each epoch. For a fixed synthetic share, drawn afresh each epoch, add
# sampler=dict(type='SyntheticRatioSampler', synthetic_ratio=0.3) to train_dataloader.
train_dataloader = dict(dataset=dict(_delete_=True, type='DetDiffusionDataset',
                                     real={{_base_.train_dataloader.dataset}}, synthetic=[synthetic]))
# Ignore regions (iscrowd) are neither object nor background: mmdet_detdiffusion/synthetic/box_repair.py says why.
# A real-only baseline needs the same setting.
model = dict(train_cfg=dict(rpn=dict(assigner=dict(ignore_iof_thr=0.5)),
                            rcnn=dict(assigner=dict(ignore_iof_thr=0.5))))
