from mmdet_detdiffusion.hooks.generator_hooks import GeneratorExportHook, GeneratorSampleHook
from mmdet_detdiffusion.hooks.perception_attribute_hook import PerceptionAttributeHook

__all__ = ['GeneratorExportHook', 'GeneratorSampleHook', 'PerceptionAttributeHook']
