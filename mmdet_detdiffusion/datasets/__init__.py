from mmdet_detdiffusion.datasets.coco_attr import DetDiffusionCocoDataset
from mmdet_detdiffusion.datasets.detdiffusion_dataset import DetDiffusionDataset
from mmdet_detdiffusion.datasets.samplers import CheckedGroupMultiSourceSampler, SyntheticRatioSampler
from mmdet_detdiffusion.datasets.utils import base_dataset, iter_datasets

__all__ = ['CheckedGroupMultiSourceSampler', 'DetDiffusionCocoDataset', 'DetDiffusionDataset', 'SyntheticRatioSampler',
           'base_dataset', 'iter_datasets']
