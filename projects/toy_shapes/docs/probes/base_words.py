"""Probe: does a toy base draw what its words say?

On the toy-loop work dir of ``attribute_oracle.py``, generate the validation layouts with a base (U-Net and text
encoder folders) and print D's YOLO score on them (original attributes; the real images' score beside it), and
D's paired recall and the objects' contrast when every class name carries ``faint`` and when it carries
``bright`` (``--in-slot``: when every attribute slot holds ``<faint>`` and when it holds ``<bright>``, the third
base stage's vocabulary).

    python projects/toy_shapes/docs/probes/base_words.py projects/toy_shapes/assets/toy_shapes_base NAME \\
        [--in-slot] [--work-dir work_dirs/attr_exp]
"""
import argparse
import copy
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from attribute_oracle import GUIDANCE, STEPS, common_loop, demo  # noqa: E402

from mmdet_detdiffusion.evaluation.paired_recall import paired_recall  # noqa: E402
from mmdet_detdiffusion.evaluation.yolo_score import evaluate_yolo_score  # noqa: E402
from mmdet_detdiffusion.layout.attribute_file import load_coco  # noqa: E402
from mmdet_detdiffusion.layout.attributes import ATTR_KEY, EASY, MODE_ORIGINAL  # noqa: E402
from mmdet_detdiffusion.synthetic.manifest import ANNOTATION_FILE, IMAGES_FOLDER  # noqa: E402
from mmdet_detdiffusion.utils.fileio import atomic_write_json  # noqa: E402
from projects.toy_shapes.toy_shapes.shapes import SHAPES_CLASSES  # noqa: E402
from projects.toy_shapes.toy_shapes.shapes_stream import described_classes  # noqa: E402
from projects.toy_shapes.toy_shapes.toy_loop import (base_pipeline, coco_set, detector_labeler,  # noqa: E402
                                                     final_checkpoint, generate_set)
from projects.toy_shapes.toy_shapes.vocabulary import APPEARANCES  # noqa: E402


def described_layouts(coco: dict, word: str, out_file: str) -> str:
    """``coco`` with every class name written as ``'{word} {shape}'``."""
    coco = copy.deepcopy(coco)
    names = {cat['id']: cat['name'] for cat in coco['categories']}
    ids = {name: i + 1 for i, name in enumerate(described_classes())}
    coco['categories'] = [dict(id=i, name=name, supercategory='shape') for name, i in ids.items()]
    for ann in coco['annotations']:
        ann['category_id'] = ids[f'{word} {names[ann["category_id"]]}']
    atomic_write_json(coco, out_file)
    return out_file


def slot_layouts(coco: dict, word: str, out_file: str) -> str:
    """``coco`` with ``word`` as every box's attribute-slot value."""
    coco = copy.deepcopy(coco)
    for ann in coco['annotations']:
        ann[ATTR_KEY] = word
    atomic_write_json(coco, out_file)
    return out_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('base')
    parser.add_argument('name')
    parser.add_argument('--in-slot', action='store_true', help='write the words in the attribute slot')
    parser.add_argument('--work-dir', default='work_dirs/attr_exp')
    args = parser.parse_args()
    detector, data_root, _, val_layouts = common_loop(args.work_dir)
    out = os.path.join(args.work_dir, f'base_{args.name}')
    os.makedirs(out, exist_ok=True)
    checkpoint = final_checkpoint(detector)
    base = base_pipeline(base_dir=args.base, classes=SHAPES_CLASSES)
    original = generate_set(base, args.name, val_layouts, 'original', 0, os.path.join(out, 'original') + '/', STEPS,
                            GUIDANCE)
    result = dict(yolo_original=evaluate_yolo_score(detector.cfg, checkpoint, *coco_set(original),
                                                    os.path.join(out, 'yolo')),
                  yolo_real=evaluate_yolo_score(detector.cfg, checkpoint, val_layouts, data_root + 'images',
                                                os.path.join(out, 'yolo_real')))
    if args.in_slot:
        pipe, layouts, mode = base, slot_layouts, MODE_ORIGINAL
    else:
        pipe, layouts, mode = base_pipeline(base_dir=args.base, classes=described_classes()), described_layouts, EASY
    folder = {word: os.path.join(out, f'{word}_in_slot' if args.in_slot else word) + '/' for word in APPEARANCES}
    folders = {word: generate_set(pipe, args.name, layouts(load_coco(val_layouts), word,
                                                           os.path.join(out, f'layouts_{word}.json')),
                                  mode, 0, folder[word], STEPS, GUIDANCE) for word in APPEARANCES}
    labeler = detector_labeler(detector)
    sets = {word: load_coco(folder + ANNOTATION_FILE) for word, folder in folders.items()}
    found = {word: labeler.label(sets[word], folders[word] + IMAGES_FOLDER, progress=False).attributes for word in sets}
    for coco in sets.values():  # pair the boxes by shape, whatever word their class name carried
        for ann in coco['annotations']:
            ann['category_id'] = (ann['category_id'] - 1) % len(SHAPES_CLASSES) + 1
    recall = paired_recall(sets['faint'], found['faint'], sets['bright'], found['bright'])
    result.update(recall_faint=recall.recall_a, recall_bright=recall.recall_b, only_faint=recall.only_a,
                  only_bright=recall.only_b, p=recall.p_value, pairs=recall.pairs,
                  contrast={word: float(np.nanmean(list(demo.box_contrasts(*demo.loaded_set(folder)).values())))
                            for word, folder in folders.items()})
    print(result)
    atomic_write_json(result, os.path.join(out, 'result.json'))


if __name__ == '__main__':
    main()
