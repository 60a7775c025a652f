from mmdet_detdiffusion.datasets.coco_attr import DetDiffusionCocoDataset
from mmdet_detdiffusion.datasets.detdiffusion_dataset import DetDiffusionDataset
from mmdet_detdiffusion.datasets.samplers import CheckedGroupMultiSourceSampler, SyntheticRatioSampler
from mmdet_detdiffusion.datasets.shapes import SHAPES_CLASSES, write_shapes_dataset
from mmdet_detdiffusion.datasets.shapes_stream import ShapesStreamDataset
from mmdet_detdiffusion.datasets.utils import base_dataset, iter_datasets

__all__ = ['CheckedGroupMultiSourceSampler', 'DetDiffusionCocoDataset', 'DetDiffusionDataset', 'SHAPES_CLASSES',
           'ShapesStreamDataset',
           'SyntheticRatioSampler', 'base_dataset', 'iter_datasets', 'write_shapes_dataset']
