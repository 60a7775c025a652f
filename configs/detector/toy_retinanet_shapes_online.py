# Toy RetinaNet on the shapes set with online generation: half of the training images are replaced by
# "hard" generations from their own boxes (cached on disk, so later epochs cost an image read).
_base_ = './toy_retinanet_shapes.py'

generator = 'work_dirs/toy_shapes_pixel64/export'
train_pipeline = [
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='DetDiffusionGenerate', generator=generator, cache_dir='data/detdiffusion_cache', prob=0.5,
         attr_mode='hard', num_inference_steps=25, guidance_scale=2.0, classes={{_base_.metainfo.classes}}),
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=({{_base_.image_size}}, {{_base_.image_size}}), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
