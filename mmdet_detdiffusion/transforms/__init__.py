"""Detector-side transforms: online DetDiffusion generation, and the paste of generated objects onto real images."""
from mmdet_detdiffusion.transforms.instance_paste import SyntheticInstancePaste
from mmdet_detdiffusion.transforms.online_generation import DetDiffusionGenerate

__all__ = ['DetDiffusionGenerate', 'SyntheticInstancePaste']
