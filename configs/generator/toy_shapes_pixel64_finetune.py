# The demo's generator once the toy base model is bundled: DetDiffusion fine-tuning of assets/toy_shapes_base (a 64 px
# layout-to-image model pretrained on another shapes set without attributes; configs/generator/toy_shapes_base.py)
# with the P.A. attribute tokens and the P.A. loss, as the paper fine-tunes Stable Diffusion.
_base_ = './toy_shapes_pixel64.py'

base_model = '{{ fileDirname }}/../../assets/toy_shapes_base'
model = dict(
    unet=dict(_delete_=True, type='CoordUNet2DConditionModel', from_pretrained=base_model + '/unet'),
    text_encoder=dict(_delete_=True, type='CLIPTextModel', from_pretrained=base_model + '/text_encoder'))

max_epochs = 20
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=3e-4))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
                   dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs)]
