# Toy RetinaNet on the shapes set with online generation: half of the training images are replaced by "hard" generations
# from their own boxes (cached on disk, so later epochs cost an image read).
_base_ = './retinanet_r18-w16_fpn_1xb8-12e_shapes.py'
# the toy package: the generator's U-Net class, which the export names
custom_imports = dict(imports=['mmdet_detdiffusion', 'projects.toy_shapes.toy_shapes'], allow_failed_imports=False)

# The export of the fine-tuned toy generator (../generator/detdiffusion_toy-base_1xb16-30e_shapes-64x64.py, in its
# default work dir). Set it here or with `--cfg-options generator=PATH`: tools/train.py writes this one key into every
# DetDiffusionGenerate of the config.
generator = 'work_dirs/detdiffusion_toy-base_1xb16-30e_shapes-64x64/export'
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
