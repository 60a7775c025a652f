# The toy base's third stage (the bundled projects/toy_shapes/assets/toy_shapes_base): the second stage's base, trained
# 1,600 more iterations on fresh stream images whose contrast words are written in the attribute slot (<faint>,
# <bright>; the other objects keep a random <easy>/<hard>) instead of before the class name. The toy U-Net's pixels read
# the slot token's own state (projects/toy_shapes/docs/probes/slot_attention.py), and after random tokens alone the base
# had made that state the same for <easy> and <hard> (1.6% apart): fine-tuning on a detector's labels could not teach
# them anything (projects/toy_shapes/docs/demo_status.md). Here the slot carries appearance, as SD's words do, before
# fine-tuning gives easy and hard their meaning.
#   python projects/toy_shapes/tools/make_toy_base.py   # the earlier stages first, then this one; again to resume
_base_ = './layout-pretrain_toy-coordunet_1xb32-2800iters_shapes-stream-64x64-continued.py'

previous_stage = 'layout-pretrain_toy-coordunet_1xb32-2800iters_shapes-stream-64x64-continued.py'
seed = 3
max_iters = 1600
model = dict(seed=seed)
train_dataloader = dict(dataset=dict(seed=seed, describe_in='attribute_slot'))
train_cfg = dict(max_iters=max_iters)
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
                   dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, T_max=max_iters - 100)]
randomness = dict(seed=seed)
