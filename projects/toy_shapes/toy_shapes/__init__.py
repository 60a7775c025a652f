"""The toy shapes world: a CPU-sized stand-in for Stable Diffusion and COCO on which DetDiffusion runs end to end.

Importing it (``custom_imports=dict(imports=['mmdet_detdiffusion', 'projects.toy_shapes.toy_shapes'])``) registers
its attribute-slot values, datasets, U-Net and generator.
"""
import sys

from projects.toy_shapes.toy_shapes import coord_unet, vocabulary  # noqa: F401  (vocabulary: the slot values)
from projects.toy_shapes.toy_shapes.coord_unet import CoordUNet2DConditionModel
from projects.toy_shapes.toy_shapes.model import ToyDetDiffusionGenerator
from projects.toy_shapes.toy_shapes.shapes import SHAPES_CLASSES, write_shapes_dataset
from projects.toy_shapes.toy_shapes.shapes_stream import ShapesStreamDataset

# Exports made while the toy lived in the library name its U-Net's module by that path (model_index.json).
sys.modules.setdefault('mmdet_detdiffusion.generator.coord_unet', coord_unet)

__all__ = ['CoordUNet2DConditionModel', 'ShapesStreamDataset', 'SHAPES_CLASSES', 'ToyDetDiffusionGenerator',
           'write_shapes_dataset']
