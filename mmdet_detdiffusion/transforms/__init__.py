"""Detector-side transforms: online DetDiffusion generation."""
from mmdet_detdiffusion.transforms.online_generation import DetDiffusionGenerate

__all__ = ['DetDiffusionGenerate']
