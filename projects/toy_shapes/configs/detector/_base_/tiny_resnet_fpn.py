# A few-thousand-parameter ResNet-18-shaped backbone + FPN: trains from scratch on a CPU in minutes.
data_preprocessor = dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         bgr_to_rgb=True, pad_size_divisor=32)
backbone = dict(type='ResNet', depth=18, base_channels=16, num_stages=4, out_indices=(1, 2, 3),
                frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, style='pytorch')
neck = dict(type='FPN', in_channels=[32, 64, 128], out_channels=32, num_outs=3)
