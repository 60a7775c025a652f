"""Evaluation of generated data: YOLO score (a detector's COCO mAP on generated images), FID."""
from mmdet_detdiffusion.evaluation.yolo_score import YOLOScore

__all__ = ['YOLOScore']
