"""How tight each kind of synthetic label is, on the toy shapes: the labels of generated images against the boxes
drawn (measured from colour, :mod:`~projects.toy_shapes.toy_shapes.drawn_boxes`) and D's AP75 against them.

Shared by the project's ``tools/demo.py`` and ``tools/study.py``.
"""
import math
import os
from typing import Dict, Iterable

import numpy as np
from mmengine.runner import Runner

from mmdet_detdiffusion.evaluation import claims
from mmdet_detdiffusion.evaluation.yolo_score import evaluate_yolo_score
from mmdet_detdiffusion.generator.export import generator_identity
from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline
from mmdet_detdiffusion.layout.attribute_file import load_coco
from mmdet_detdiffusion.layout.attributes import MODE_ORIGINAL
from mmdet_detdiffusion.synthetic.filter import filter_synthetic_set
from projects.toy_shapes.toy_shapes.drawn_boxes import label_ious
from projects.toy_shapes.toy_shapes.toy_loop import (TRAIN_ANN, coco_set, detector_labeler, final_checkpoint,
                                                     generate_set, train_detector)

REPAIR_METHODS = ('layout', 'head', 'detector', 'fused')  # the label sets measured, in report order


def median(values: Iterable[float]) -> float:
    """The median of ``values``; NaN when there are none."""
    values = list(values)
    return float(np.median(values)) if values else math.nan


def measure_box_repair(detector: Runner, data_root: str, val_layouts: str, export_dir: str, layout_folder: str,
                       real_ap75: float, work_dir: str, generation_seed: int, oracle_seed: int, oracle_epochs: int,
                       steps: int, guidance_scale: float, score_thr: float, train_ann: str = TRAIN_ANN
                       ) -> Dict[str, dict]:
    """Per label set of the original-mode generations of ``val_layouts`` in ``layout_folder`` (generation seed
    ``generation_seed``, layout boxes): the layout boxes, the perception head's mask boxes (the same images, generated
    again with ``box_source='head'``), the relabelling by an oracle detector (the toy RetinaNet trained
    ``oracle_epochs`` on the real images of ``train_ann`` with ``oracle_seed``) and the fusion of the head's and the
    oracle's boxes (:mod:`~mmdet_detdiffusion.synthetic.box_repair`): labelled and ignored objects, the median IoU of
    the labels with the drawn boxes, and D's YOLO score against them (AP75 as a share of ``real_ap75``). ``'real'``:
    the measure on the real validation images and their boxes. Finished parts in ``work_dir`` are reused."""
    head_folder = generate_set(DetDiffusionPipeline.from_pretrained(export_dir), generator_identity(export_dir),
                               val_layouts, MODE_ORIGINAL, generation_seed, os.path.join(work_dir, 'head_labels') + '/',
                               steps, guidance_scale, box_source='head')
    relabelled = {'detector': (layout_folder, 'replace'), 'fused': (head_folder, 'fuse')}
    oracle = None
    for method, (folder, relabel) in relabelled.items():
        if os.path.isfile(os.path.join(work_dir, f'{method}_labels.json')):
            continue
        oracle = oracle or train_detector(data_root, os.path.join(work_dir, 'oracle'), oracle_epochs, oracle_seed,
                                          train_ann=train_ann)
        labeler = detector_labeler(oracle, score_thr, match_class=True)
        filter_synthetic_set(labeler, folder, score_thr, relabel=relabel,
                             out=os.path.join(work_dir, f'{method}_labels.json'),
                             record=dict(oracle_epochs=oracle_epochs, checkpoint=final_checkpoint(oracle)))
    real_ious = label_ious(load_coco(val_layouts), data_root + 'images')
    results = {'real': dict(measured=len(real_ious), median_iou_drawn=median(real_ious.values()))}
    sets = {'layout': coco_set(layout_folder), 'head': coco_set(head_folder),
            **{method: (os.path.join(work_dir, f'{method}_labels.json'), coco_set(folder)[1])
               for method, (folder, _) in relabelled.items()}}
    ious = {}  # method -> annotation id -> IoU (the sets number their objects alike: one plan, one order)
    for method, (ann_file, img_prefix) in sets.items():
        coco = load_coco(ann_file)
        ious[method] = label_ious(coco, img_prefix)
        score = evaluate_yolo_score(detector.cfg, final_checkpoint(detector), ann_file, img_prefix,
                                    os.path.join(work_dir, method))
        results[method] = dict(objects=len(coco['annotations']),
                               ignored=sum(int(a.get('iscrowd', 0)) for a in coco['annotations']),
                               measured=len(ious[method]), median_iou_drawn=median(ious[method].values()),
                               AP75=score['AP75'], mAP=score['mAP'], ap75_ratio=claims.ratio(score['AP75'], real_ap75))
    common = set.intersection(*(set(by_id) for by_id in ious.values()))
    for method, by_id in ious.items():
        results[method].update(common=len(common), median_iou_common=median(by_id[i] for i in common))
    return results
