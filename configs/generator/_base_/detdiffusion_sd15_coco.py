# DetDiffusion on COCO 2017 from Stable Diffusion v1.5 (the paper's recipe; base recipe GeoDiffusion's):
# layout prompts with 256x256 location bins + easy/hard attribute tokens, P.A. loss (lambda 0.01,
# alpha-bar_t weighted) on U-Net decoder features, VAE frozen, U-Net + text encoder trained, 10% null
# prompts, images whose boxes cover < 2% dropped, lr 1.5e-4 cosine, 60 epochs, batch 32/GPU x 8 GPUs, fp16.
# `pretrained` is a local folder or a hub id; the attribute file comes from tools/label_attributes.py.
_base_ = ['./generator_runtime.py', './generator_pipeline.py']

pretrained = 'runwayml/stable-diffusion-v1-5'
data_root = 'data/coco/'
# COCO's 80 class names (mmdet's CocoDataset), shared by the model's prompts and the dataset
metainfo = dict(classes=(
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light',
    'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee',
    'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
    'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple',
    'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch',
    'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone',
    'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
    'hair drier', 'toothbrush',
))

model = dict(
    type='DetDiffusionGenerator',
    classes=metainfo['classes'],
    unet=dict(type='UNet2DConditionModel', from_pretrained=pretrained, subfolder='unet'),
    vae=dict(type='AutoencoderKL', from_pretrained=pretrained, subfolder='vae'),
    text_encoder=dict(type='CLIPTextModel', from_pretrained=pretrained, subfolder='text_encoder'),
    tokenizer=dict(type='CLIPTokenizer', from_pretrained=pretrained, subfolder='tokenizer'),
    scheduler=dict(type='DDPMScheduler', from_pretrained=pretrained, subfolder='scheduler'),
    location_bins=256,
    use_attributes=True,
    object_order='random',
    null_prompt_prob=0.1,
    perception_head=dict(channels=128, num_convs=2),
    feature_blocks=(1, 2, 3),  # decoder outputs at 1/4, 1/2 and full latent resolution
    pa_loss_weight=0.01,
    foreground_weight=None,  # GeoDiffusion's re-weighting: dict(weight=2.0, power=0.2)
    trainable=('unet', 'text_encoder', 'perception_head'))

train_dataloader = dict(
    batch_size=32, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='DetDiffusionCocoDataset', data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_train2017_pa_attr.json', data_prefix=dict(img='train2017/'),
                 filter_cfg=dict(filter_empty_gt=True), min_object_area_ratio=0.02,
                 pipeline=_base_.train_pipeline))

max_epochs = 60
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
optim_wrapper = dict(type='AmpOptimWrapper', dtype='float16', loss_scale='dynamic',
                     optimizer=dict(type='AdamW', lr=1.5e-4, weight_decay=1e-2), clip_grad=dict(max_norm=1.0))
param_scheduler = [dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=3000),
                   dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs)]
custom_hooks = [
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=1e-4, gamma=2000, priority='ABOVE_NORMAL'),
    dict(type='GeneratorSampleHook', interval=5000, num_samples=8, num_inference_steps=50, guidance_scale=5.0),
    dict(type='GeneratorExportHook'),
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=3))
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=False)
