from mmdet_detdiffusion.datasets.shapes import SHAPES_CLASSES, write_shapes_dataset

__all__ = ['SHAPES_CLASSES', 'write_shapes_dataset']
