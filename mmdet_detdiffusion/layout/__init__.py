"""Pure python/numpy layout logic: IoU matching for attributes, COCO attribute-file IO."""
from mmdet_detdiffusion.layout.attribute_file import (ATTR_KEY, CocoFormatError, load_coco,
                                                      validate_coco, write_attribute_file)
from mmdet_detdiffusion.layout.matching import EASY, HARD, box_iou, label_attributes

__all__ = ['ATTR_KEY', 'CocoFormatError', 'load_coco', 'validate_coco', 'write_attribute_file',
           'EASY', 'HARD', 'box_iou', 'label_attributes']
