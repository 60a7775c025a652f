# The demo's generator: DetDiffusion fine-tuning of the bundled toy base model assets/toy_shapes_base (a 64 px
# layout-to-image model pretrained on another shapes set, with random attribute tokens; configs/generator/
# toy_shapes_base.py) with the P.A. attribute tokens and the P.A. loss, as the paper fine-tunes Stable Diffusion.
# Demo figures (80 epochs, 960 iterations, about 10 minutes; guidance 4; D of 8 epochs): YOLO mAP 0.05 vs 0.42
# on real images; hard objects come out fainter than easy ones in 81% of the boxes, and D finds fewer (p = 0.03).
_base_ = './toy_shapes_pixel64.py'

base_model = '{{ fileDirname }}/../../assets/toy_shapes_base'
model = dict(
    unet=dict(_delete_=True, type='CoordUNet2DConditionModel', from_pretrained=base_model + '/unet'),
    text_encoder=dict(_delete_=True, type='CLIPTextModel', from_pretrained=base_model + '/text_encoder'))

max_epochs = 80
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=3e-4))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
                   dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs)]
