# Toy RetinaNet on real + synthetic shapes with a fixed real:synthetic count in every batch (6 real + 2 synthetic),
# mmdet's MultiSourceSampler on the DetDiffusionDataset wrapper. The sampler is infinite, so training counts iterations.
# Real sets with portrait and landscape images can group batches by aspect ratio with CheckedGroupMultiSourceSampler
# (same arguments), which refuses the all-square synthetic set beside portrait real images that makes mmdet's
# GroupMultiSourceSampler wait forever.
_base_ = './retinanet_r18-w16_fpn_1xb8-12e_shapes-detdiffusion.py'

batch_size = 8
max_iters = 600
train_dataloader = dict(
    batch_size=batch_size,
    sampler=dict(_delete_=True, type='MultiSourceSampler', batch_size=batch_size, source_ratio=[3, 1]))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
                   dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters, T_max=max_iters)]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
