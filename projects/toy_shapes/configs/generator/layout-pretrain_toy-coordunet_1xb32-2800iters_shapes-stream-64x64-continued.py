# The toy base's second stage (the third: ...-1600iters_shapes-stream-64x64-slot.py): the first stage's base, 2,800 more
# iterations on fresh stream images (another stream seed) with a new warm-up and cosine cycle and GeoDiffusion's
# foreground re-weighting of the diffusion loss (the smaller a box, the more its pixels weigh). After the first stage
# alone, the base drew about half of its objects in the wrong class colour (projects/toy_shapes/docs/demo_status.md).
#   python projects/toy_shapes/tools/make_toy_base.py   # trains the first stage, then this one; run it again to resume
_base_ = './layout-pretrain_toy-coordunet_1xb32-3600iters_shapes-stream-64x64.py'

previous_stage = 'layout-pretrain_toy-coordunet_1xb32-3600iters_shapes-stream-64x64.py'
seed = 2
max_iters = 2800
model = dict(
    # projects/toy_shapes/tools/make_toy_base.py points both at the previous stage's base
    unet=dict(_delete_=True, type='CoordUNet2DConditionModel', from_pretrained=None),
    text_encoder=dict(_delete_=True, type='CLIPTextModel', from_pretrained=None),
    word_embedding_norm=None,  # the trained rows are kept
    foreground_weight=dict(weight=2.0, power=0.2), seed=seed)
train_dataloader = dict(dataset=dict(seed=seed))
train_cfg = dict(max_iters=max_iters)
optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
                   dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, T_max=max_iters - 100)]
randomness = dict(seed=seed)
