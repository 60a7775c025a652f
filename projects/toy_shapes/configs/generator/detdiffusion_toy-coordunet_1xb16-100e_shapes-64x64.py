# Tiny pixel-space DetDiffusion generator on the toy shapes set (64x64, CPU-trainable). Data:
# projects/toy_shapes/tools/make_shapes_dataset.py data/shapes; attributes: tools/label_attributes.py ->
# data/shapes/annotations/train_pa_attr.json
_base_ = ['../../../../configs/generator/_base_/generator_runtime.py',
          '../../../../configs/generator/_base_/generator_pipeline.py']
custom_imports = dict(imports=['mmdet_detdiffusion', 'projects.toy_shapes.toy_shapes'], allow_failed_imports=False)

data_root = 'data/shapes/'
metainfo = dict(classes=('circle', 'square', 'triangle'))
resolution = 64

model = dict(
    type='ToyDetDiffusionGenerator',
    classes=metainfo['classes'],
    # trained from scratch, so the U-Net gets each pixel's position (CoordConv input maps, and cross-attention queries
    # made of position alone): it has no pretrained sense of position for the location tokens to address. 2x2 pixel
    # patches: the U-Net's grid is 32x32, layout cross-attention at 16x16 and 8x8. About 0.6 s per batch of 16 on 2 CPU
    # cores.
    unet=dict(type='CoordUNet2DConditionModel', config=dict(
        # 2x2 patches of RGB + x, y + sin/cos of x and y at 5 frequencies (periods of the image width down to 1/16 of
        # it)
        sample_size=resolution, patch_size=2, in_channels=12 + 2 + 4 * 5, out_channels=12, layers_per_block=1,
        block_out_channels=(32, 64, 64), norm_num_groups=8, attention_head_dim=8, cross_attention_dim=64,
        down_block_types=('DownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D'),
        up_block_types=('CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'UpBlock2D'))),
    vae=None,  # pixel space
    text_encoder=dict(type='CLIPTextModel', config=dict(
        vocab_size=49408, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77)),
    tokenizer=dict(type='CLIPTokenizer', bpe_file=None),
    scheduler=dict(type='DDPMScheduler', config=dict(num_train_timesteps=1000, beta_schedule='squaredcos_cap_v2',
                                                     # v: the loss of high-noise steps, where the layout decides the
                                                     # image, is not scaled down (eps: by SNR)
                                                     prediction_type='v_prediction')),
    location_bins=64,  # one location token per pixel at 64 px (GeoDiffusion: 256 bins at 256-512 px)
    perception_head=dict(channels=32, num_convs=2),
    feature_blocks=(1, 2),
    pa_loss_weight=0.01,
    null_prompt_prob=0.1,
    noise_offset=0.1,  # backgrounds range from near-black to near-white: let the sampler move the mean level
    mask_text_padding=True)  # a text encoder trained from scratch: attend to the prompt, not its 60-odd pads

train_pipeline = [dict(t, scale=(resolution, resolution)) if t.type == 'Resize' else t for t in _base_.train_pipeline]
train_dataloader = dict(
    batch_size=16, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='DetDiffusionCocoDataset', data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/train_pa_attr.json', data_prefix=dict(img='images/'),
                 filter_cfg=dict(filter_empty_gt=True), min_object_area_ratio=0.02, pipeline=train_pipeline))

max_epochs = 100
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-2),
                     clip_grad=dict(max_norm=1.0))
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
                   dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs)]
custom_hooks = [
    # EMA whose momentum decays from 1 to 0.01 (time constant 100 iterations): useful on short runs too
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.01, gamma=100, priority='ABOVE_NORMAL'),
    dict(type='GeneratorSampleHook', interval=100, num_samples=8, num_inference_steps=25, guidance_scale=2.0),
    dict(type='GeneratorExportHook'),
]
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=10, max_keep_ckpts=2))
log_processor = dict(window_size=10)
