from mmdet_detdiffusion.hooks.generator_hooks import GeneratorExportHook, GeneratorSampleHook
from mmdet_detdiffusion.hooks.perception_attribute_hook import PerceptionAttributeHook
from mmdet_detdiffusion.hooks.val_curve_hook import ValCurveHook

__all__ = ['GeneratorExportHook', 'GeneratorSampleHook', 'PerceptionAttributeHook', 'ValCurveHook']
