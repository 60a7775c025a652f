# Toy RetinaNet on the shapes set, real + synthetic (tools/generate.py ... --out data/shapes_synthetic_hard).
_base_ = './retinanet_r18-w16_fpn_1xb8-12e_shapes.py'

synthetic = dict(type='CocoDataset', data_root='data/shapes_synthetic_hard/', ann_file='annotations.json',
                 data_prefix=dict(img='images/'))
train_dataloader = dict(dataset=dict(_delete_=True, type='DetDiffusionDataset',
                                     real={{_base_.train_dataloader.dataset}}, synthetic=[synthetic]))
