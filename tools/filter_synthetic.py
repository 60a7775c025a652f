"""Score a synthetic set with a detector and filter out what the generator failed to draw.

Each layout box gets ``found_score`` (the detector's best score for a prediction of its class with IoU > beta);
images with a low share of found boxes can be dropped (``--min-agreement``) and boxes not found marked ignored
(``--ignore-unfound``); ``--relabel replace|fuse`` also replaces each found box by the prediction that found it, or by
the mean of the two (box repair, mmdet_detdiffusion/synthetic/box_repair.py).
Use another detector than D, the one that labelled the attributes: hard generations
are meant to be hard for D (see mmdet_detdiffusion/synthetic/filter.py).

Example::

    python tools/filter_synthetic.py data/synthetic/coco_hard ORACLE_CONFIG ORACLE_CHECKPOINT \\
        --min-agreement 0.5 --ignore-unfound   # writes data/synthetic/coco_hard/annotations_filtered.json

Train on it with the synthetic dataset's ``ann_file='annotations_filtered.json'``.
"""
import argparse
import os

import torch
from mmengine.config import DictAction

import mmdet_detdiffusion  # noqa: F401  (registers components and the checkpoint allow-list)
from mmdet_detdiffusion.attributes.labeler import AttributeLabeler, ClassMismatchError
from mmdet_detdiffusion.layout.attribute_file import CocoFormatError
from mmdet_detdiffusion.layout.matching import DEFAULT_IOU_THR, DEFAULT_SCORE_THR
from mmdet_detdiffusion.synthetic.filter import FILTERED_FILE, filter_summary, filter_synthetic_set
from mmdet_detdiffusion.synthetic.manifest import ANNOTATION_FILE, IMAGES_FOLDER
from mmdet_detdiffusion.utils.fileio import file_sha256


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('synthetic', help=f'synthetic set folder (tools/generate.py --out: {ANNOTATION_FILE}, '
                                          f'{IMAGES_FOLDER}/)')
    parser.add_argument('config', help='mmdet config of the filtering detector (not D: see above)')
    parser.add_argument('checkpoint', help='its checkpoint (.pth)')
    parser.add_argument('--out', help=f'filtered annotation file (default: SYNTHETIC/{FILTERED_FILE})')
    parser.add_argument('--score-thr', type=float, default=DEFAULT_SCORE_THR, help='a box is found above it')
    parser.add_argument('--iou-thr', type=float, default=DEFAULT_IOU_THR, help='beta')
    parser.add_argument('--any-class', action='store_true', help='a prediction of any class can find a box')
    parser.add_argument('--min-agreement', type=float, help='drop images with a lower share of found boxes')
    parser.add_argument('--ignore-unfound', action='store_true', help='mark boxes not found iscrowd=1 (ignored)')
    parser.add_argument('--relabel', choices=['replace', 'fuse'],
                        help='box repair: replace each found box by the prediction of its class that found it, or '
                             'by the mean of the two (fuse: for a set generated with --box-source head); the boxes '
                             'not found are marked ignored (implies --ignore-unfound)')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    ann_file = os.path.join(args.synthetic, ANNOTATION_FILE)
    for path, what in ((ann_file, 'synthetic set annotations (write them with tools/generate.py --out)'),
                       (args.config, 'detector config'), (args.checkpoint, 'detector checkpoint')):
        if not os.path.isfile(path):
            raise SystemExit(f'filter_synthetic: {what} {path} does not exist')
    out = args.out or os.path.join(args.synthetic, FILTERED_FILE)
    try:
        labeler = AttributeLabeler.from_config(args.config, args.checkpoint, args.device, args.cfg_options,
                                               iou_thr=args.iou_thr, match_class=not args.any_class,
                                               batch_size=args.batch_size)
        summary = filter_synthetic_set(labeler, args.synthetic, args.score_thr, args.min_agreement,
                                       args.ignore_unfound, args.relabel, out, record=dict(
                                           detector_config=os.path.abspath(args.config),
                                           checkpoint_sha256=file_sha256(args.checkpoint)))
    except (CocoFormatError, ClassMismatchError) as err:
        raise SystemExit(f'filter_synthetic: {err}') from None
    print(f'{filter_summary(summary)}\nwritten to {out}')


if __name__ == '__main__':
    main()
