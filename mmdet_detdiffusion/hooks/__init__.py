from mmdet_detdiffusion.hooks.perception_attribute_hook import PerceptionAttributeHook

__all__ = ['PerceptionAttributeHook']
