# The toy stand-in for a pretrained layout-to-image model (bundled as assets/toy_shapes_base, see README
# "Toy base model"): toy_shapes_pixel64 trained from scratch on its own shapes set (seed 1, 1000 images, class
# colours), with the layout attention loss standing in for the pretraining that gives SD cross-attention already
# tied to image regions. Its prompts have the fine-tuning's grammar, a random easy/hard token after each object,
# so that fine-tuning teaches what the attribute tokens mean, not where the later tokens now sit.
#   python tools/make_shapes_dataset.py data/shapes_base --num-train 1000 --num-val 0 --seed 1 --colours by_class
#   python tools/train_generator.py configs/generator/toy_shapes_base.py --data-root data/shapes_base
#   python tools/make_toy_base.py work_dirs/toy_shapes_base/export assets/toy_shapes_base
_base_ = './toy_shapes_pixel64.py'

data_root = 'data/shapes_base/'
model = dict(attention_loss_weight=0.1)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomPerceptionAttributes', hard_prob=0.5),
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackGeneratorInputs'),
]
train_dataloader = dict(dataset=dict(data_root=data_root, ann_file='annotations/train.json', pipeline=train_pipeline))

max_epochs = 80  # 4800 iterations, about 50 minutes on 2 CPU cores
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
                   dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs)]
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=8, max_keep_ckpts=3))
custom_hooks = [dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.01, gamma=100, priority='ABOVE_NORMAL'),
                dict(type='GeneratorSampleHook', interval=500, num_samples=8, num_inference_steps=25,
                     guidance_scale=2.0),
                dict(type='GeneratorExportHook')]
