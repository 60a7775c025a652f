# The first stage of the toy stand-in for a pretrained layout-to-image model
# (projects/toy_shapes/assets/toy_shapes_base; the second stage:
# layout-pretrain_toy-coordunet_1xb32-2800iters_shapes-stream-64x64-continued.py): the toy U-Net and text encoder of
# detdiffusion_toy-coordunet_1xb16-100e_shapes-64x64.py trained from scratch on an endless stream of fresh shapes images
# (ShapesStreamDataset: backgrounds near-black to near-white, noise std 4-20, contrasts 0.05-1), with
# - random easy/hard tokens after each object: the base learns the prompt grammar, not what the tokens mean;
# - contrast words ('faint', 'bright') before half of the class names: the appearance vocabulary SD brings;
# - prompt words that start distinct (word_embedding_norm), as CLIP's arrive;
# - the layout attention loss, standing in for the pretraining that ties SD's cross-attention to image regions.
# projects/toy_shapes/tools/make_toy_base.py trains it first (88 minutes on 2 CPU cores, resumable), then the second
# and third stages.
_base_ = './detdiffusion_toy-coordunet_1xb16-100e_shapes-64x64.py'

seed = 1
max_iters = 3600
batch_size = 32  # 115,200 images, none seen twice

# the stream's class names (ShapesStreamDataset.METAINFO): each shape alone, then with each contrast word
metainfo = dict(classes=('circle', 'square', 'triangle', 'faint circle', 'faint square', 'faint triangle',
                         'bright circle', 'bright square', 'bright triangle'))
# word_embedding_norm: distinct rows for the prompt's words, as CLIP has (from the default init, the classes' text
# states ended 2% apart and the base drew every class alike)
model = dict(classes=metainfo['classes'], attention_loss_weight=0.1, word_embedding_norm=1.0, seed=seed)
# images are rendered in memory (no file to load) and not flipped: a flip would draw from the worker's RNG, and the
# stream's sample i would no longer be a function of (seed, i) alone
train_pipeline = [t for t in _base_.train_pipeline if t.type not in ('LoadImageFromFile', 'RandomFlip')]
train_dataloader = dict(
    _delete_=True, batch_size=batch_size, num_workers=1, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=False),  # sample i is a fresh image: no need to shuffle
    dataset=dict(type='ShapesStreamDataset', seed=seed, size=128, max_objects=4, min_contrast=0.05,
                 grey_range=(10, 245), noise_range=(4.0, 20.0), hard_prob=0.5, describe_prob=0.5,
                 pipeline=train_pipeline))

train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=200),
                   dict(type='CosineAnnealingLR', by_epoch=False, begin=200, end=max_iters, T_max=max_iters - 200)]
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(by_epoch=False, interval=200, max_keep_ckpts=2))
log_processor = dict(by_epoch=False, window_size=50)
custom_hooks = [dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.002, gamma=500, priority='ABOVE_NORMAL'),
                dict(type='GeneratorSampleHook', interval=600, num_samples=8, num_inference_steps=25,
                     guidance_scale=2.0),
                dict(type='GeneratorExportHook')]
randomness = dict(seed=seed)
