"""Attribute labeling with a detector (the core shared by the tool and the hook)."""
from mmdet_detdiffusion.attributes.labeler import AttributeLabeler, LabelingResult, write_labeling

__all__ = ['AttributeLabeler', 'LabelingResult', 'write_labeling']
