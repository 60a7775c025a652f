"""YOLO score (LAMA; used by GeoDiffusion and DetDiffusion): how well a pretrained detector finds, in
generated images, the objects of the layouts they were generated from.

Protocol: run a fixed COCO-trained detector (the papers use YOLOv4) on the generated images and score
its predictions with the COCO box mAP, AP50 and AP75 against the layout boxes as ground truth. The
same detector on the real images with their own annotations is the reference. AR100 (COCO recall,
up to 100 detections) is reported too: it tells how many layout objects the detector finds at all.
"""
import contextlib
import copy
import io
import os
from typing import Dict, Sequence

from mmdet.evaluation import CocoMetric
from mmdet.registry import METRICS
from mmengine.config import Config

from mmdet_detdiffusion.utils.quiet import QuietRunner

SCORE_NAMES = {'bbox_mAP': 'mAP', 'bbox_mAP_50': 'AP50', 'bbox_mAP_75': 'AP75', 'bbox_AR@100': 'AR100'}


@METRICS.register_module()
class YOLOScore(CocoMetric):
    """mmdet's COCO box metric reporting ``yolo_score/{mAP, AP50, AP75, AR100}``.

    Args:
        ann_file: the COCO json of the evaluated images (a synthetic set's ``annotations.json``, whose
            boxes are the layouts; or the real annotations for the reference).
        kwargs: other :class:`mmdet.evaluation.CocoMetric` options.
    """

    default_prefix = 'yolo_score'

    def __init__(self, ann_file: str, **kwargs):
        super().__init__(ann_file=ann_file, metric='bbox', metric_items=['mAP', 'mAP_50', 'mAP_75', 'AR@100'],
                         **kwargs)

    def compute_metrics(self, results: Sequence) -> Dict[str, float]:
        metrics = super().compute_metrics(results)  # {} when the detector found nothing at all
        return {name: metrics.get(key, 0.0) for key, name in SCORE_NAMES.items()}


def evaluate_yolo_score(detector_cfg: Config, checkpoint: str, ann_file: str, img_prefix: str, work_dir: str,
                        batch_size: int = 8) -> Dict[str, float]:
    """YOLO score of a detector on the images of a COCO file, through mmengine's test loop.

    Args:
        detector_cfg: the detector's mmdet config (its test pipeline and class names are used).
        checkpoint: the detector's weights.
        ann_file / img_prefix: COCO json (layouts as boxes) and the folder its ``file_name`` s are in.
        work_dir: where the Runner logs (the console shows its warnings only).
    """
    cfg = copy.deepcopy(detector_cfg)
    test_dataset = cfg.test_dataloader.dataset
    ann_file = os.path.abspath(ann_file)
    cfg.test_dataloader.batch_size = batch_size
    cfg.test_dataloader.dataset = dict(type='CocoDataset', data_root='', ann_file=ann_file, test_mode=True,
                                       data_prefix=dict(img=os.path.abspath(img_prefix) + '/'),
                                       metainfo=test_dataset.get('metainfo'), pipeline=test_dataset.pipeline)
    cfg.test_evaluator = dict(type='YOLOScore', ann_file=ann_file)
    cfg.load_from, cfg.resume, cfg.work_dir = checkpoint, False, work_dir
    # one logger and one visualizer per scored set (both are named after the experiment): runners started in
    # the same second would otherwise share the first one's log file and warn about the visualizer's name
    cfg.experiment_name = os.path.basename(os.path.normpath(work_dir))
    if cfg.get('visualizer'):
        cfg.visualizer.pop('name', None)
    runner = QuietRunner.from_cfg(cfg)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):  # pycocotools prints its progress and tables: to the log file
            metrics = runner.test()
    finally:
        runner.logger.info(printed.getvalue())
    return {key.split('/')[-1]: value for key, value in metrics.items()}
