"""Fidelity of synthetic datasets: YOLO score (and FID with user-given Inception weights) vs the real set.

Each synthetic folder is a ``tools/generate.py`` output. The YOLO score runs one detector over its
images and scores the predictions against the layouts (COCO mAP / AP50 / AP75, AR100); the same
detector on the real images with their annotations is the reference row. FID compares each synthetic
set with the real images it was generated from, all resized to ``--fid-size``. The console shows the
progress and the table; the Runner's logs (config, environment, COCO tables) are under ``--work-dir``.

Example::

    python tools/evaluate_fidelity.py DET_CONFIG DET_CHECKPOINT \\
        --real-ann-file data/shapes/annotations/train.json --real-img-prefix data/shapes/images \\
        --generated data/shapes_synthetic_hard data/shapes_synthetic_easy --out work_dirs/fidelity.json
"""
import argparse
import json
import os
from typing import Dict, List, Optional

from mmengine.config import Config

import mmdet_detdiffusion  # noqa: F401  (registers components and the checkpoint allow-list)
from mmdet_detdiffusion.evaluation.fid import INCEPTION_HINT, fid, load_inception
from mmdet_detdiffusion.evaluation.report import FIDELITY_COLUMNS, fidelity_rows, markdown_table
from mmdet_detdiffusion.evaluation.yolo_score import evaluate_yolo_score
from mmdet_detdiffusion.layout.attributes import RECORD_KEY
from mmdet_detdiffusion.synthetic.manifest import ANNOTATION_FILE, IMAGES_FOLDER, MANIFEST_FOLDER
from mmdet_detdiffusion.utils.fileio import atomic_write_json


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('config', help='mmdet config of the scoring detector')
    parser.add_argument('checkpoint', help='its checkpoint')
    parser.add_argument('--real-ann-file', required=True, help='COCO json of the real images (the reference)')
    parser.add_argument('--real-img-prefix', required=True, help='folder of the real images')
    parser.add_argument('--generated', nargs='+', required=True, help='synthetic dataset folders (tools/generate.py)')
    parser.add_argument('--inception', help='TorchScript Inception-v3 weights for FID (skipped when absent)')
    parser.add_argument('--fid-size', type=int, default=256, help='images are resized to this square size for FID')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--work-dir', default='work_dirs/evaluate_fidelity')
    parser.add_argument('--out', help='write the metrics as json here')
    return parser.parse_args()


def source_images(synthetic_dir: str, real_img_prefix: str) -> List[str]:
    """The real image of each synthetic image, in the synthetic file's order (matched FID sets)."""
    with open(os.path.join(synthetic_dir, ANNOTATION_FILE)) as f:
        images = json.load(f)['images']
    return [os.path.join(real_img_prefix, image[RECORD_KEY]['source_file_name']) for image in images]


def input_problems(args: argparse.Namespace) -> List[str]:
    """What is missing among the inputs, naming the step that makes it (checked before any scoring)."""
    problems = [f'{what} {path} does not exist' for path, what in (
        (args.config, 'detector config'), (args.checkpoint, 'detector checkpoint'),
        (args.real_ann_file, '--real-ann-file')) if not os.path.isfile(path)]
    if not os.path.isdir(args.real_img_prefix):
        problems.append(f'--real-img-prefix folder {args.real_img_prefix} does not exist')
    for folder in args.generated:
        if os.path.isfile(os.path.join(folder, ANNOTATION_FILE)):
            continue
        if os.path.isdir(os.path.join(folder, MANIFEST_FOLDER)):
            problems.append(f'--generated {folder}: its tools/generate.py run has not finished ({ANNOTATION_FILE} '
                            'is written when every image is done): run the same command again, it continues')
        else:
            found = f'has no {ANNOTATION_FILE}' if os.path.isdir(folder) else 'does not exist'
            problems.append(f'--generated {folder} {found}: expected the --out folder of python tools/generate.py '
                            f'GENERATOR_EXPORT --ann-file LAYOUTS --out {folder}')
    return problems


def evaluate(args: argparse.Namespace) -> Dict[str, Dict[str, Optional[float]]]:
    cfg = Config.fromfile(args.config)
    inception = load_inception(args.inception) if args.inception else None
    print(f'YOLO score of real ({args.real_ann_file}); runner logs in {args.work_dir}')
    results = {'real': evaluate_yolo_score(cfg, args.checkpoint, args.real_ann_file, args.real_img_prefix,
                                           os.path.join(args.work_dir, 'real'), args.batch_size)}
    for folder in args.generated:
        name = os.path.basename(os.path.normpath(folder))
        ann_file = os.path.join(folder, ANNOTATION_FILE)
        print(f'YOLO score{" and FID" if inception is not None else ""} of {name} ({folder})')
        scores = evaluate_yolo_score(cfg, args.checkpoint, ann_file, os.path.join(folder, IMAGES_FOLDER),
                                     os.path.join(args.work_dir, name), args.batch_size)
        if inception is not None:
            with open(ann_file) as f:
                generated = [os.path.join(folder, IMAGES_FOLDER, img['file_name']) for img in json.load(f)['images']]
            scores['FID'] = fid(inception, source_images(folder, args.real_img_prefix), generated, args.fid_size)
        results[name] = scores
    return results


def main() -> None:
    args = parse_args()
    if not args.inception:  # said first, so that nobody waits for the scores to learn FID is not among them
        print(f'FID: not computed, no --inception given. Pass the path of {INCEPTION_HINT}.')
    problems = input_problems(args)
    if problems:
        raise SystemExit('\n'.join(f'evaluate_fidelity: {problem}' for problem in problems))
    try:
        results = evaluate(args)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'evaluate_fidelity: {err}') from None
    print(markdown_table(FIDELITY_COLUMNS, fidelity_rows(results)))
    if args.out:
        atomic_write_json(results, args.out, indent=2)
        print(f'metrics written to {args.out}')


if __name__ == '__main__':
    main()
