# The demo's generator: DetDiffusion fine-tuning of the bundled toy base model assets/toy_shapes_base (a 64 px
# layout-to-image model pretrained on an endless stream of shapes images with random attribute tokens and contrast
# words; tools/make_toy_base.py) with the P.A. attribute tokens and the P.A. loss, as the paper fine-tunes Stable
# Diffusion. Its prompts carry no contrast words: what "hard" looks like is learnt from the detector's labels.
_base_ = './detdiffusion_toy-coordunet_1xb16-100e_shapes-64x64.py'

base_model = '{{ fileDirname }}/../../assets/toy_shapes_base'
model = dict(
    unet=dict(_delete_=True, type='CoordUNet2DConditionModel', from_pretrained=base_model + '/unet'),
    text_encoder=dict(_delete_=True, type='CLIPTextModel', from_pretrained=base_model + '/text_encoder'),
    separate_slot_embeddings=True)  # the attribute-slot rows learn at their own rate (paramwise_cfg below)

# 200 images: 10 epochs (120 iterations) keep the base's fidelity; 40 overfit (YOLO score 0.65x -> 0.59x of the real
# images', docs/demo_status.md, stop 15)
max_epochs = 10
train_cfg = dict(max_epochs=max_epochs)
# in 120 iterations at the model's rate the easy/hard rows move 0.01 (their norm is 0.7); at 30x, 0.2-0.3: the
# attribute-slot rows learn at their own rate, as textual inversion trains new tokens
optim_wrapper = dict(optimizer=dict(lr=3e-4),
                     paramwise_cfg=dict(custom_keys={'slot_embeddings': dict(lr_mult=30.0, decay_mult=0.0)}))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
                   dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs)]
