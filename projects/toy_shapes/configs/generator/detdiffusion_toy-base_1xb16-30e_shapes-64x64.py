# The demo's generator: DetDiffusion fine-tuning of the bundled toy base model
# projects/toy_shapes/assets/toy_shapes_base (a 64 px layout-to-image model pretrained on an endless stream of shapes
# images with random attribute tokens and, in the attribute slot, the contrast values <faint>/<bright>;
# projects/toy_shapes/tools/make_toy_base.py) with the P.A. attribute tokens and the P.A. loss. Its prompts carry no
# contrast words: what "hard" looks like is learnt from the detector's labels.
#
# Unlike the paper's COCO recipe (U-Net and text encoder trained on 118k images), only the attribute-slot rows and the
# P.A. head train here, as textual inversion trains new tokens: on 200 images, training the U-Net forgets more than it
# adapts and washes out the slot (projects/toy_shapes/docs/demo_status.md).
_base_ = './detdiffusion_toy-coordunet_1xb16-100e_shapes-64x64.py'

base_model = '{{ fileDirname }}/../../assets/toy_shapes_base'
model = dict(
    unet=dict(_delete_=True, type='CoordUNet2DConditionModel', from_pretrained=base_model + '/unet'),
    text_encoder=dict(_delete_=True, type='CLIPTextModel', from_pretrained=base_model + '/text_encoder'),
    separate_slot_embeddings=True,
    # textual inversion's initializer tokens: the slot values the base learnt to draw faint and bright
    slot_token_init=dict(hard='faint', easy='bright'),
    trainable=('slot_embeddings', 'perception_head'))

max_epochs = 30
train_cfg = dict(max_epochs=max_epochs)
# 360 iterations (180 gave a recall gap of 1 point, 360 gave 6, projects/toy_shapes/docs/demo_status.md); the slot rows
# need a textual-inversion rate (at the model's, 120 iterations moved them 0.01 of their norm 0.7)
optim_wrapper = dict(optimizer=dict(lr=3e-4),
                     paramwise_cfg=dict(custom_keys={'slot_embeddings': dict(lr_mult=100.0, decay_mult=0.0)}))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
                   dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs)]
