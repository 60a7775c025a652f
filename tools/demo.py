"""End-to-end demo on the toy shapes set (CPU, a few minutes); each finished step is skipped on a rerun.

Steps so far: write the shapes dataset -> train a tiny detector D -> label the easy/hard attributes of
every training box with D -> train the tiny generator on the labelled set (sample grids, diffusers
export) -> write ``report.md`` in the work dir.

Example::

    python tools/demo.py --work-dir work_dirs/demo
"""
import argparse
import json
import os
import time

import cv2
from mmengine.config import Config
from mmengine.runner import Runner

import mmdet_detdiffusion  # noqa: F401  (registers components and the checkpoint allow-list)
from mmdet_detdiffusion.attributes.labeler import AttributeLabeler, write_labeling
from mmdet_detdiffusion.datasets.shapes import write_shapes_dataset
from mmdet_detdiffusion.layout.attribute_file import (ATTR_KEY, annotations_by_image, format_attribute_table,
                                                      load_coco, xywh_to_xyxy)
from mmdet_detdiffusion.layout.matching import DEFAULT_IOU_THR, DEFAULT_SCORE_THR
from mmdet_detdiffusion.utils.config import set_data_root
from mmdet_detdiffusion.visualization import draw_boxes, save_image, tile_grid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DETECTOR_CONFIG = os.path.join(REPO, 'configs', 'detector', 'toy_retinanet_shapes.py')
GENERATOR_CONFIG = os.path.join(REPO, 'configs', 'generator', 'toy_shapes_pixel64.py')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=50)
    parser.add_argument('--detector-epochs', type=int, default=24)
    parser.add_argument('--generator-epochs', type=int, default=30)
    parser.add_argument('--score-thr', type=float, default=DEFAULT_SCORE_THR, help='gamma')
    parser.add_argument('--iou-thr', type=float, default=DEFAULT_IOU_THR, help='beta')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def step(title: str):
    print(f'\n=== {title}', flush=True)
    return time.time()


def make_data(args: argparse.Namespace, data_root: str) -> None:
    if os.path.isfile(os.path.join(data_root, 'annotations', 'val.json')):
        print(f'shapes dataset already in {data_root}')
        return
    write_shapes_dataset(data_root, args.num_train, args.num_val, seed=args.seed)


def train_detector(args: argparse.Namespace, data_root: str, work_dir: str) -> Runner:
    """Train (or resume, or reuse) the toy detector; return a Runner holding the trained model."""
    cfg = set_data_root(Config.fromfile(DETECTOR_CONFIG), data_root)
    cfg.work_dir = work_dir
    cfg.train_cfg.max_epochs = args.detector_epochs
    cfg.train_cfg.val_interval = args.detector_epochs
    cfg.param_scheduler[-1].update(end=args.detector_epochs, T_max=args.detector_epochs)
    cfg.default_hooks.checkpoint.update(interval=4, max_keep_ckpts=1, save_last=True)
    cfg.randomness = dict(seed=args.seed)
    cfg.resume = True  # continues from the last checkpoint of an interrupted run
    runner = Runner.from_cfg(cfg)
    runner.train()  # returns at once when the last checkpoint is already at max_epochs
    return runner


def train_generator(args: argparse.Namespace, data_root: str, attr_file: str, work_dir: str) -> None:
    """Train (or resume, or reuse) the toy generator on the labelled set; it exports to ``work_dir/export``."""
    cfg = set_data_root(Config.fromfile(GENERATOR_CONFIG), data_root)
    cfg.work_dir = work_dir
    cfg.train_dataloader.dataset.ann_file = attr_file
    cfg.train_cfg.max_epochs = args.generator_epochs
    cfg.param_scheduler[-1].update(end=args.generator_epochs, T_max=args.generator_epochs)
    cfg.default_hooks.checkpoint.update(interval=5, max_keep_ckpts=1)
    cfg.randomness = dict(seed=args.seed)
    cfg.resume = True
    Runner.from_cfg(cfg).train()


def draw_attributes(labelled: dict, img_prefix: str, out_path: str, count: int = 12) -> None:
    names = {cat['id']: cat['name'] for cat in labelled['categories']}
    by_image = annotations_by_image(labelled)
    tiles = []
    for img in labelled['images'][:count]:
        anns = by_image[img['id']]
        tiles.append(draw_boxes(cv2.imread(os.path.join(img_prefix, img['file_name'])),
                                [xywh_to_xyxy(a['bbox']) for a in anns], [names[a['category_id']] for a in anns],
                                [a[ATTR_KEY] for a in anns]))
    save_image(out_path, tile_grid(tiles))


def main() -> None:
    args = parse_args()
    work_dir = os.path.abspath(args.work_dir)
    data_root = os.path.join(work_dir, 'data', 'shapes') + '/'
    timings = {}

    start = step('1/4 toy shapes dataset')
    make_data(args, data_root)
    timings['dataset'] = time.time() - start

    start = step('2/4 train the tiny detector D')
    runner = train_detector(args, data_root, os.path.join(work_dir, 'detector'))
    timings['detector'] = time.time() - start

    start = step('3/4 label easy/hard attributes of the training boxes with D')
    ann_file = data_root + 'annotations/train.json'
    coco = load_coco(ann_file)
    labeler = AttributeLabeler(runner.model, runner.cfg.test_dataloader.dataset.pipeline, args.score_thr,
                               args.iou_thr, batch_size=8)
    attr_file = os.path.join(work_dir, 'attributes', 'train_pa_attr.json')
    labelled = write_labeling(coco, labeler.label(coco, data_root + 'images', ann_file), attr_file, record=dict(
        detector_config=DETECTOR_CONFIG, checkpoint_sha256=None,
        weights=f'demo detector after {runner.epoch} epochs', score_thr=args.score_thr, iou_thr=args.iou_thr,
        ann_file=ann_file))
    draw_attributes(labelled, data_root + 'images', os.path.join(work_dir, 'attributes_grid.png'))
    timings['labeling'] = time.time() - start

    start = step('4/4 train the tiny generator on the labelled set')
    generator_dir = os.path.join(work_dir, 'generator')
    train_generator(args, data_root, attr_file, generator_dir)
    timings['generator'] = time.time() - start

    write_report(work_dir, labelled, timings, args, generator_dir)


def write_report(work_dir: str, labelled: dict, timings: dict, args: argparse.Namespace, generator_dir: str
                 ) -> None:
    grids = sorted(os.listdir(os.path.join(generator_dir, 'samples')), key=lambda n: int(n[5:-4]))
    lines = ['# DetDiffusion demo (toy shapes)', '',
             f'Attributes: gamma (score) > {args.score_thr}, beta (IoU) > {args.iou_thr}; '
             f'detector trained {args.detector_epochs} epochs.', '',
             '## Easy / hard boxes of the training set', '', '```', format_attribute_table(labelled), '```', '',
             '![training images, easy boxes green, hard boxes red](attributes_grid.png)', '',
             f'## Generator after {args.generator_epochs} epochs', '',
             'Top: real training images; bottom: generated from their layouts (easy green, hard red).', '',
             f'![generator samples](generator/samples/{grids[-1]})', '',
             'Export (diffusers folder): `generator/export/`', '',
             '## Time per step (s)', '', '| step | seconds |', '|---|---|']
    lines += [f'| {name} | {seconds:.1f} |' for name, seconds in timings.items()]
    path = os.path.join(work_dir, 'report.md')
    with open(path + '.tmp', 'w') as f:
        f.write('\n'.join(lines) + '\n')
    os.replace(path + '.tmp', path)
    print(f'\nreport: {path}\n' + json.dumps({k: round(v, 1) for k, v in timings.items()}))


if __name__ == '__main__':
    main()
