# DetDiffusion, COCO 2017, 512x512 (paper setting).
_base_ = './_base_/detdiffusion_sd15_coco.py'

resolution = 512
train_pipeline = [dict(t, scale=(resolution, resolution)) if t.type == 'Resize' else t for t in _base_.train_pipeline]
train_dataloader = dict(batch_size=8, dataset=dict(pipeline=train_pipeline))  # x 8 GPUs x accumulation 4 = 256
optim_wrapper = dict(accumulative_counts=4)
