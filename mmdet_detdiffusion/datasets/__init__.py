from mmdet_detdiffusion.datasets.coco_attr import DetDiffusionCocoDataset
from mmdet_detdiffusion.datasets.shapes import SHAPES_CLASSES, write_shapes_dataset

__all__ = ['DetDiffusionCocoDataset', 'SHAPES_CLASSES', 'write_shapes_dataset']
