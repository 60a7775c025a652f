# The generator's training pipeline, written once for every generator config: boxes, instance masks (the P.A.
# loss's targets) and P.A. attributes, a resize to `resolution` x `resolution`, a flip.
# A config at another resolution swaps the Resize through `_base_` (mmengine's Python-config syntax):
#   train_pipeline = [dict(t, scale=(resolution, resolution)) if t.type == 'Resize' else t
#                     for t in _base_.train_pipeline]
resolution = 256
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='LoadPerceptionAttributes'),
    dict(type='Resize', scale=(resolution, resolution), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackGeneratorInputs'),
]
