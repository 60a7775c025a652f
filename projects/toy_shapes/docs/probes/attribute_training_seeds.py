"""Probe: does the attribute's recall gap hold for other training runs of D and the generator?

Another machine reruns the demo's training with other rounding, so its D labels other boxes hard and its
generator learns the attribute tokens a little differently. This probe stands in for it on one machine: on the
dataset of a finished ``make demo`` work dir it trains D and fine-tunes the generator again with each of
``--training-seeds``, labels the training boxes and the recall layouts with that D, generates the recall layouts hard
and easy with each of ``--generation-seeds``, and prints D's recall on both, box by box, as the demo's recall step
does. It then crosses the runs, the demo's (training seed ``--seed``) included: each run's D on each run's hard and
easy generations of the first generation seed, to tell a D that finds few generated objects from a generator whose
attribute is weak. Each training seed takes about 8 minutes on 2 CPU cores, and is reused on a rerun.

    python projects/toy_shapes/docs/probes/attribute_training_seeds.py --work-dir work_dirs/demo \
        --out work_dirs/attribute_training_seeds --training-seeds 1 2 3 4 5
"""
import argparse
import dataclasses
import os
from typing import Dict

import mmdet_detdiffusion  # noqa: F401
from mmdet_detdiffusion.attributes.labeler import AttributeLabeler
from mmdet_detdiffusion.evaluation.paired_recall import PairedRecall
from mmdet_detdiffusion.evaluation.report import markdown_table
from mmdet_detdiffusion.generator.export import generator_identity
from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline
from mmdet_detdiffusion.layout.attributes import EASY, HARD
from mmdet_detdiffusion.layout.matching import DEFAULT_IOU_THR, DEFAULT_SCORE_THR
from mmdet_detdiffusion.utils.fileio import atomic_write_json
from projects.toy_shapes.toy_shapes.toy_loop import (detector_labeler, finetune_generator, first_images, generate_set,
                                                     hard_vs_easy_recall, label_boxes, train_detector, val_set)


def recall(labeler: AttributeLabeler, folder: str, generation_seed: int) -> PairedRecall:
    """The recall of ``labeler``'s D on the hard and the easy recall sets of ``generation_seed`` in ``folder``."""
    return hard_vs_easy_recall(labeler, folder + val_set(HARD, generation_seed),
                               folder + val_set(EASY, generation_seed))


def gap_cell(result: PairedRecall) -> str:
    """``hard / easy (gap)`` in percent and points."""
    return f'{result.recall_a:.1%} / {result.recall_b:.1%} ({100 * (result.recall_b - result.recall_a):.1f})'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo', help='a finished make demo work dir (its dataset)')
    parser.add_argument('--out', default='work_dirs/attribute_training_seeds')
    parser.add_argument('--seed', type=int, default=0, help='the demo\'s training seed (its --seed)')
    parser.add_argument('--training-seeds', type=int, nargs='+', default=[1, 2, 3], help='seeds of D and generator')
    parser.add_argument('--generation-seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--recall-layouts', type=int, default=300, help='the first N validation layouts')
    parser.add_argument('--detector-epochs', type=int, default=8)
    parser.add_argument('--generator-epochs', type=int, default=30)
    parser.add_argument('--steps', type=int, default=10, help='denoising steps, as the demo\'s')
    parser.add_argument('--guidance-scale', type=float, default=7.5, help='as the demo\'s')
    parser.add_argument('--attribute-guidance-scale', type=float, default=2.0, help='as the demo\'s')
    parser.add_argument('--score-thr', type=float, default=DEFAULT_SCORE_THR, help='gamma, as the demo\'s')
    parser.add_argument('--iou-thr', type=float, default=DEFAULT_IOU_THR, help='beta, as the demo\'s')
    args = parser.parse_args()
    rule = dict(score_thr=args.score_thr, iou_thr=args.iou_thr)
    demo, out_root = os.path.abspath(args.work_dir) + '/', os.path.abspath(args.out) + '/'
    data_root = demo + 'data/shapes/'
    demo_detector = train_detector(data_root, demo + 'detector', args.detector_epochs, args.seed)
    runs = {args.seed: (detector_labeler(demo_detector, **rule), demo + 'data/')}
    results: Dict[str, dict] = {}
    first = args.generation_seeds[0]
    own: Dict[int, PairedRecall] = {}  # each run's D on its own generations of the first seed: the cross's diagonal
    for training_seed in args.training_seeds:
        out = out_root + f'training_s{training_seed}/'
        os.makedirs(out, exist_ok=True)
        detector = train_detector(data_root, out + 'detector', args.detector_epochs, training_seed)
        attr_file, layouts = out + 'train_pa_attr.json', out + 'recall_layouts_pa_attr.json'
        label_boxes(detector, data_root + 'annotations/train.json', data_root + 'images', attr_file, **rule)
        first_images(data_root + 'annotations/val.json', args.recall_layouts, out + 'recall_layouts.json')
        label_boxes(detector, out + 'recall_layouts.json', data_root + 'images', layouts, **rule)
        export = finetune_generator(data_root, attr_file, out + 'generator', args.generator_epochs, training_seed)
        pipe, identity = DetDiffusionPipeline.from_pretrained(export), generator_identity(export)
        labeler = detector_labeler(detector, **rule)
        for generation_seed in args.generation_seeds:
            for mode in (HARD, EASY):
                generate_set(pipe, identity, layouts, mode, generation_seed, out + val_set(mode, generation_seed) + '/',
                             args.steps, args.guidance_scale, attribute_guidance_scale=args.attribute_guidance_scale)
            result = recall(labeler, out, generation_seed)
            results[f'training_s{training_seed}/generation_s{generation_seed}'] = dataclasses.asdict(result)
            if generation_seed == first:
                own[training_seed] = result
            print(f'training seed {training_seed}, generation seed {generation_seed}: {result.pairs} boxes, recall '
                  f'hard / easy (gap in points) {gap_cell(result)}, only hard {result.only_a}, only easy '
                  f'{result.only_b}, p = {result.p_value:.1e}', flush=True)
        runs[training_seed] = labeler, out
    rows = []
    for seed_d, (labeler, _) in runs.items():
        row = [f'D{seed_d}']
        for seed_g, (_, folder) in runs.items():
            result = own[seed_d] if seed_d == seed_g and seed_d in own else recall(labeler, folder, first)
            results[f'cross/D{seed_d}/G{seed_g}'] = dataclasses.asdict(result)
            row.append(gap_cell(result))
        rows.append(row)
    print(f'Recall hard / easy (gap) of each run\'s D (rows) on each run\'s generations (columns), generation seed '
          f'{first}:\n' + markdown_table([''] + [f'G{seed}' for seed in runs], rows))
    atomic_write_json(results, out_root + 'recall.json')


if __name__ == '__main__':
    main()
