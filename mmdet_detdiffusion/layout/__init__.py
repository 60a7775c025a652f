"""Pure python/numpy layout logic: the attribute vocabulary, IoU matching for attributes, COCO attribute-file IO."""
from mmdet_detdiffusion.layout.attribute_file import CocoFormatError, load_coco, validate_coco, write_attribute_file
from mmdet_detdiffusion.layout.attributes import ATTR_KEY, EASY, HARD
from mmdet_detdiffusion.layout.matching import box_iou, label_attributes

__all__ = ['ATTR_KEY', 'CocoFormatError', 'load_coco', 'validate_coco', 'write_attribute_file',
           'EASY', 'HARD', 'box_iou', 'label_attributes']
