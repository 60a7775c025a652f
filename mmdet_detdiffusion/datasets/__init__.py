from mmdet_detdiffusion.datasets.coco_attr import DetDiffusionCocoDataset
from mmdet_detdiffusion.datasets.detdiffusion_dataset import DetDiffusionDataset
from mmdet_detdiffusion.datasets.shapes import SHAPES_CLASSES, write_shapes_dataset
from mmdet_detdiffusion.datasets.shapes_stream import ShapesStreamDataset

__all__ = ['DetDiffusionCocoDataset', 'DetDiffusionDataset', 'SHAPES_CLASSES', 'ShapesStreamDataset',
           'write_shapes_dataset']
