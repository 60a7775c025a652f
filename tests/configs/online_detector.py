# projects/toy_shapes' shapes RetinaNet with online generation, importing the library alone: the core tests'
# generator exports hold a plain diffusers U-Net, so they need no toy class.
_base_ = '../../projects/toy_shapes/configs/detector/retinanet_r18-w16_fpn_1xb8-12e_shapes-detdiffusion-online.py'
custom_imports = dict(imports=['mmdet_detdiffusion'], allow_failed_imports=False)
