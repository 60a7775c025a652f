# A tiny pixel-space DetDiffusion generator for the core tests (32x32, a plain diffusers U-Net and a tiny CLIP text
# encoder trained from scratch): the library alone, as a user without projects/toy_shapes has it.
# Data: the shapes set (tests/helpers.py's shapes_root) with attributes in annotations/train_pa_attr.json.
_base_ = ['../../configs/generator/_base_/generator_runtime.py', '../../configs/generator/_base_/generator_pipeline.py']
custom_imports = dict(imports=['mmdet_detdiffusion'], allow_failed_imports=False)

data_root = 'data/shapes/'
metainfo = dict(classes=('circle', 'square', 'triangle'))
resolution = 32

model = dict(
    type='DetDiffusionGenerator',
    classes=metainfo['classes'],
    unet=dict(type='UNet2DConditionModel', config=dict(
        sample_size=resolution, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(16, 32, 32),
        norm_num_groups=8, attention_head_dim=8, cross_attention_dim=32,
        down_block_types=('DownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D'),
        up_block_types=('CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'UpBlock2D'))),
    vae=None,  # pixel space
    text_encoder=dict(type='CLIPTextModel', config=dict(
        vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=77)),
    tokenizer=dict(type='CLIPTokenizer', bpe_file=None),
    scheduler=dict(type='DDPMScheduler', config=dict(num_train_timesteps=1000, beta_schedule='squaredcos_cap_v2',
                                                     prediction_type='v_prediction')),
    location_bins=16,
    perception_head=dict(channels=16, num_convs=1),
    feature_blocks=(1, 2),
    pa_loss_weight=0.01,
    null_prompt_prob=0.1,
    noise_offset=0.1,
    mask_text_padding=True)  # a text encoder trained from scratch: attend to the prompt, not its padding

train_pipeline = [dict(t, scale=(resolution, resolution)) if t.type == 'Resize' else t for t in _base_.train_pipeline]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='DetDiffusionCocoDataset', data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/train_pa_attr.json', data_prefix=dict(img='images/'),
                 filter_cfg=dict(filter_empty_gt=True), min_object_area_ratio=0.02, pipeline=train_pipeline))

max_epochs = 2
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-2),
                     clip_grad=dict(max_norm=1.0))
param_scheduler = []
custom_hooks = [dict(type='GeneratorExportHook')]  # what mmdet's own tools/train.py leaves behind: an export
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=2))
log_processor = dict(window_size=1)
