# One-stage detector on COCO real + DetDiffusion synthetic data (RetinaNet R50-FPN 1x).
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmdet_detdiffusion'], allow_failed_imports=False)
randomness = dict(seed=0)  # trainability runs vary it (--cfg-options randomness.seed=N) for seed noise

synthetic = dict(type='CocoDataset', data_root='data/coco_synthetic_hard/', ann_file='annotations.json',
                 data_prefix=dict(img='images/'))
train_dataloader = dict(dataset=dict(_delete_=True, type='DetDiffusionDataset',
                                     real={{_base_.train_dataloader.dataset}}, synthetic=[synthetic]))
# Ignore regions (iscrowd) are neither object nor background: mmdet_detdiffusion/synthetic/box_repair.py says why.
# A real-only baseline needs the same setting.
model = dict(train_cfg=dict(assigner=dict(ignore_iof_thr=0.5)))
