"""Probe: do the box repairs hold on validation layouts the demo's box_repair step did not look at?

On a finished ``make demo`` work dir, take the validation images ``--first`` to ``--last`` (the demo's step uses the
first 110), label their boxes with D, generate them in original mode with the perception head's boxes, relabel with
the demo's oracle (replace, and fused with the head's boxes), and print per label set the ignored objects, the
median IoU with the drawn boxes and D's AP75 as a share of its AP75 on the same real images.

    python projects/toy_shapes/docs/probes/box_repair_heldout.py --work-dir work_dirs/demo --out work_dirs/heldout
"""
import argparse
import os

import numpy as np

import mmdet_detdiffusion  # noqa: F401
from mmdet_detdiffusion.evaluation.yolo_score import evaluate_yolo_score
from mmdet_detdiffusion.generator.export import generator_identity
from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline
from mmdet_detdiffusion.layout.attribute_file import load_coco
from mmdet_detdiffusion.layout.matching import DEFAULT_SCORE_THR
from mmdet_detdiffusion.synthetic.filter import filter_synthetic_set
from mmdet_detdiffusion.utils.fileio import atomic_write_json
from projects.toy_shapes.toy_shapes.drawn_boxes import label_ious
from projects.toy_shapes.toy_shapes.toy_loop import (detector_labeler, final_checkpoint, generate_set, label_boxes,
                                                     train_detector, write_images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo', help='a finished make demo work dir')
    parser.add_argument('--out', default='work_dirs/box_repair_heldout')
    parser.add_argument('--first', type=int, default=110)
    parser.add_argument('--last', type=int, default=300)
    parser.add_argument('--detector-epochs', type=int, default=8)
    parser.add_argument('--oracle-epochs', type=int, default=32)
    args = parser.parse_args()
    demo, out = args.work_dir + '/', args.out + '/'
    data_root = demo + 'data/shapes/'
    os.makedirs(out, exist_ok=True)
    val = load_coco(data_root + 'annotations/val.json')
    write_images(val, val['images'][args.first:args.last], out + 'layouts.json')
    detector = train_detector(data_root, demo + 'detector', args.detector_epochs, 0)  # the demo's D, reused
    label_boxes(detector, out + 'layouts.json', data_root + 'images', out + 'layouts_pa_attr.json')
    export = demo + 'generator/export'
    head = generate_set(DetDiffusionPipeline.from_pretrained(export), generator_identity(export),
                        out + 'layouts_pa_attr.json', 'original', 0, out + 'head/', 10, 7.5, box_source='head')
    coco = load_coco(head + 'annotations.json')  # the same images labelled with the layout boxes
    os.makedirs(out + 'layout', exist_ok=True)
    if not os.path.exists(out + 'layout/images'):
        os.symlink(os.path.abspath(head + 'images'), out + 'layout/images')
    atomic_write_json(dict(coco, annotations=[{**a, 'bbox': a['layout_bbox'], 'iscrowd': 0}
                                              for a in coco['annotations']]), out + 'layout/annotations.json')
    oracle = train_detector(data_root, demo + 'box_repair/oracle', args.oracle_epochs, 1)  # the demo's oracle
    labeler = detector_labeler(oracle, match_class=True)
    filter_synthetic_set(labeler, out + 'layout/', DEFAULT_SCORE_THR, relabel='replace', out=out + 'detector.json')
    filter_synthetic_set(labeler, head, DEFAULT_SCORE_THR, relabel='fuse', out=out + 'fused.json')
    checkpoint = final_checkpoint(detector)
    real = evaluate_yolo_score(detector.cfg, checkpoint, out + 'layouts.json', data_root + 'images', out + 'yolo_real')
    sets = dict(layout=out + 'layout/annotations.json', head=head + 'annotations.json', detector=out + 'detector.json',
                fused=out + 'fused.json')
    for method, ann_file in sets.items():
        labels = load_coco(ann_file)
        ious = list(label_ious(labels, head + 'images').values())
        score = evaluate_yolo_score(detector.cfg, checkpoint, ann_file, head + 'images', out + 'yolo_' + method)
        ignored = sum(a.get('iscrowd', 0) for a in labels['annotations'])
        print(f'{method}: ignored {ignored} of {len(labels["annotations"])}, measured {len(ious)}, median IoU with '
              f'drawn {np.median(ious):.3f}, AP75 {score["AP75"]:.3f} = {score["AP75"] / real["AP75"]:.2f}x real')


if __name__ == '__main__':
    main()
