"""Label every ground-truth box of a COCO dataset easy/hard with an mmdet detector (DetDiffusion P.A. Attr).

Example::

    python tools/label_attributes.py DET_CONFIG DET_CHECKPOINT \\
        --ann-file data/coco/annotations/instances_train2017.json --img-prefix data/coco/train2017 \\
        --out data/coco/annotations/instances_train2017_pa_attr.json --score-thr 0.3 --iou-thr 0.5

Distributed: ``torchrun --nproc_per_node 8 tools/label_attributes.py ... --launcher pytorch``.
"""
import argparse
import os

import torch
from mmengine import dist
from mmengine.config import DictAction
from mmengine.logging import print_log

import mmdet_detdiffusion  # noqa: F401  (registers components and the checkpoint allow-list)
from mmdet_detdiffusion.attributes.labeler import AttributeLabeler, ClassMismatchError, labeling_record, write_labeling
from mmdet_detdiffusion.layout.attribute_file import CocoFormatError, load_coco
from mmdet_detdiffusion.layout.matching import DEFAULT_IOU_THR, DEFAULT_SCORE_THR
from mmdet_detdiffusion.utils.distributed import init_distributed
from mmdet_detdiffusion.utils.fileio import file_sha256


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('config', help='mmdet detector config file')
    parser.add_argument('checkpoint', help='detector checkpoint (.pth)')
    parser.add_argument('--ann-file', required=True, help='COCO json to label')
    parser.add_argument('--img-prefix', required=True, help='folder the json file_names are relative to')
    parser.add_argument('--out', required=True, help='attribute file to write (COCO json + pa_attr)')
    parser.add_argument('--score-thr', type=float, default=DEFAULT_SCORE_THR, help='gamma')
    parser.add_argument('--iou-thr', type=float, default=DEFAULT_IOU_THR, help='beta')
    parser.add_argument('--match-class', action='store_true',
                        help='a prediction must also have the box\'s class (default: the paper\'s class-agnostic rule)')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--num-workers', type=int, default=2)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        label(args)
    except (CocoFormatError, ClassMismatchError) as err:
        raise SystemExit(f'label_attributes: {err}') from None


def label(args: argparse.Namespace) -> None:
    init_distributed(args.launcher)
    for path, what, hint in ((args.config, 'config', ''),
                             (args.checkpoint, 'checkpoint', ': train the detector first, python tools/train.py '
                              'DET_CONFIG writes WORK_DIR/epoch_N.pth'),
                             (args.img_prefix, '--img-prefix folder', '')):
        if not os.path.exists(path):
            raise SystemExit(f'label_attributes: {what} {path} does not exist{hint}')
    coco = load_coco(args.ann_file)
    labeler = AttributeLabeler.from_config(args.config, args.checkpoint, args.device, args.cfg_options,
                                           score_thr=args.score_thr, iou_thr=args.iou_thr,
                                           match_class=args.match_class, batch_size=args.batch_size,
                                           num_workers=args.num_workers)
    result = labeler.label(coco, args.img_prefix, ann_file=args.ann_file)
    if dist.is_main_process():
        write_labeling(coco, result, args.out, record=labeling_record(
            labeler, args.config, args.ann_file, checkpoint=args.checkpoint,
            checkpoint_sha256=file_sha256(args.checkpoint)))
    else:
        print_log(f'rank {dist.get_rank()} done', logger='current')


if __name__ == '__main__':
    main()
