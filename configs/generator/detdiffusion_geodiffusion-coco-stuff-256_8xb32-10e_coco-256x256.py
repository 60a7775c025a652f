# DetDiffusion fine-tuned from GeoDiffusion's released COCO-Stuff 256x256 checkpoint, which already places
# objects from location tokens: its <l0>..<l65535> keep their trained embeddings and only <easy>/<hard> are
# new; the location grid (256 bins) and object cap (max_num_bbox) come from its generation_config.json.
# 10 epochs is our choice for a fine-tune that learns two tokens and the perception head (the paper does not
# state one); the rest is the SD v1.5 recipe of the base config. `pretrained`: a local folder or the hub id.
#   torchrun --nproc_per_node 8 tools/train_generator.py \
#       configs/generator/detdiffusion_geodiffusion-coco-stuff-256_8xb32-10e_coco-256x256.py --launcher pytorch
_base_ = './_base_/detdiffusion_sd15_coco.py'

pretrained = 'KaiChen1998/geodiffusion-coco-stuff-256x256'

model = dict(
    unet=dict(from_pretrained=pretrained),
    vae=dict(from_pretrained=pretrained),
    text_encoder=dict(from_pretrained=pretrained),
    tokenizer=dict(from_pretrained=pretrained),
    scheduler=dict(from_pretrained=pretrained),
    generation_config=pretrained,
    location_bins=None)  # from generation_config.json

max_epochs = 10
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=500),
                   dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs)]
