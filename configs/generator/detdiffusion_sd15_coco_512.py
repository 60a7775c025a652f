# DetDiffusion, COCO 2017, 512x512 (paper setting).
_base_ = './_base_/detdiffusion_sd15_coco.py'

resolution = 512
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='LoadPerceptionAttributes'),
    dict(type='Resize', scale=(resolution, resolution), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackGeneratorInputs'),
]
train_dataloader = dict(batch_size=8, dataset=dict(pipeline=train_pipeline))  # x 8 GPUs x accumulation 4 = 256
optim_wrapper = dict(accumulative_counts=4)
