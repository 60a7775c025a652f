"""Probe: can fine-tuning teach the toy base what an attribute token means?

On a toy-loop work dir (shapes data, D and its labels, as ``projects/toy_shapes/tools/demo.py`` makes them), fine-tune
the bundled
base with D's labels or with oracle labels (hard = the faintest boxes, as many as D calls hard), generate the
validation layouts as hard, as easy and with their own attributes, and print D's paired recall and the
objects' contrast in the hard and easy sets, and D's YOLO score on the original set.

    python projects/toy_shapes/docs/probes/attribute_oracle.py NAME --labels oracle [--config CONFIG] [--epochs 30] \
        [--detector-epochs 24] [--guidance-scale 7.5] [--work-dir work_dirs/attr_exp]
"""
import argparse
import json
import os
import sys

import numpy as np

PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(PROJECT, 'tools'))

import demo  # noqa: E402

from mmdet_detdiffusion.evaluation.paired_recall import paired_recall  # noqa: E402
from mmdet_detdiffusion.evaluation.yolo_score import evaluate_yolo_score  # noqa: E402
from mmdet_detdiffusion.generator.export import generator_identity  # noqa: E402
from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline  # noqa: E402
from mmdet_detdiffusion.layout.attribute_file import load_coco  # noqa: E402
from mmdet_detdiffusion.layout.attributes import ATTR_KEY, EASY, HARD, MODE_ORIGINAL  # noqa: E402
from mmdet_detdiffusion.synthetic.manifest import ANNOTATION_FILE, IMAGES_FOLDER  # noqa: E402
from mmdet_detdiffusion.utils.fileio import atomic_write_json  # noqa: E402
from projects.toy_shapes.toy_shapes.shapes import DEMO_SHAPES  # noqa: E402
from projects.toy_shapes.toy_shapes.toy_loop import (coco_set, detector_labeler, final_checkpoint,  # noqa: E402
                                                     finetune_generator, first_images, generate_set, label_boxes,
                                                     loop_paths, make_shapes_data, toy_loop_parser, train_detector)

DEMO_DEFAULT_KEYS = ('detector_epochs', 'generator_epochs', 'steps', 'guidance_scale')
DEMO_PARSER = toy_loop_parser('', '')
DETECTOR_EPOCHS, GENERATOR_EPOCHS, STEPS, GUIDANCE = (DEMO_PARSER.get_default(key) for key in DEMO_DEFAULT_KEYS)


def common_loop(root: str, detector_epochs: int = DETECTOR_EPOCHS):
    """The shared toy data, D, its training labels and the labelled validation layouts (demo defaults)."""
    work_dir, data_root, attr_file = loop_paths(os.path.join(root, f'common_d{detector_epochs}'))
    make_shapes_data(data_root, 200, 300, 0, DEMO_SHAPES['colours'])
    detector = train_detector(data_root, os.path.join(work_dir, 'detector'), detector_epochs, 0)
    label_boxes(detector, data_root + 'annotations/train.json', data_root + 'images', attr_file)
    val = first_images(data_root + 'annotations/val.json', 110,
                       os.path.join(work_dir, 'attributes', 'val_layouts.json'))
    val_layouts = os.path.join(work_dir, 'attributes', 'val_layouts_pa_attr.json')
    label_boxes(detector, val, data_root + 'images', val_layouts)
    return detector, data_root, attr_file, val_layouts


def oracle_labels(attr_file: str, out_file: str) -> str:
    """``attr_file`` relabelled: the faintest boxes hard (as many as D calls hard), the others easy."""
    coco = load_coco(attr_file)
    num_hard = sum(ann[ATTR_KEY] == HARD for ann in coco['annotations'])
    hard = {ann['id'] for ann in sorted(coco['annotations'], key=lambda ann: ann['contrast'])[:num_hard]}
    for ann in coco['annotations']:
        ann[ATTR_KEY] = HARD if ann['id'] in hard else EASY
    atomic_write_json(coco, out_file)
    return out_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('name')
    parser.add_argument('--labels', default='detector', choices=['detector', 'oracle'])
    parser.add_argument('--config', default=demo.GENERATOR_CONFIG)
    parser.add_argument('--epochs', type=int, default=GENERATOR_EPOCHS)
    parser.add_argument('--detector-epochs', type=int, default=DETECTOR_EPOCHS)
    parser.add_argument('--guidance-scale', type=float, default=GUIDANCE)
    parser.add_argument('--work-dir', default='work_dirs/attr_exp')
    args = parser.parse_args()
    detector, data_root, attr_file, val_layouts = common_loop(args.work_dir, args.detector_epochs)
    out = os.path.abspath(os.path.join(args.work_dir, args.name))  # the labels file is read from the data root
    os.makedirs(out, exist_ok=True)
    labels = attr_file
    if args.labels == 'oracle':
        labels = oracle_labels(attr_file, os.path.join(out, 'oracle_pa_attr.json'))
    export = finetune_generator(data_root, labels, os.path.join(out, 'generator'), args.epochs, 0, args.config)
    pipe = DetDiffusionPipeline.from_pretrained(export)
    folders = {mode: generate_set(pipe, generator_identity(export), val_layouts, mode, 0,
                                  os.path.join(out, f'val_{mode}_s0') + '/', STEPS,
                                  args.guidance_scale)
               for mode in (HARD, EASY, MODE_ORIGINAL)}
    yolo = evaluate_yolo_score(detector.cfg, final_checkpoint(detector), *coco_set(folders.pop(MODE_ORIGINAL)),
                               os.path.join(out, 'yolo_original'))
    labeler = detector_labeler(detector)
    sets = {mode: load_coco(folder + ANNOTATION_FILE) for mode, folder in folders.items()}
    found = {mode: labeler.label(sets[mode], folders[mode] + IMAGES_FOLDER, progress=False).attributes for mode in sets}
    recall = paired_recall(sets[HARD], found[HARD], sets[EASY], found[EASY])
    contrast = {mode: float(np.nanmean(list(demo.box_contrasts(*demo.loaded_set(folder)).values())))
                for mode, folder in folders.items()}
    result = dict(name=args.name, labels=args.labels, config=args.config, recall_hard=recall.recall_a,
                  recall_easy=recall.recall_b, only_hard=recall.only_a, only_easy=recall.only_b, p=recall.p_value,
                  pairs=recall.pairs, contrast_hard=contrast[HARD], contrast_easy=contrast[EASY], yolo_original=yolo)
    print(json.dumps(result))
    atomic_write_json(result, os.path.join(out, 'result.json'))


if __name__ == '__main__':
    main()
