"""Which lever makes synthetic data pay its way? A study on the toy shapes set with a rare class (CPU).

One shapes class is made rare in the real training images (``--rare-class``, ``--rare-weight`` of the others'
frequency); the val images keep every class equally common, so its AP is measured on as many objects as the
others'. After the toy loop (detector D, P.A. labels, the fine-tuned generator), hard synthetic sets are made
from the training layouts with each lever, and each arm trains D on real + that set for the same number of
iterations as the real-only arm (:mod:`mmdet_detdiffusion.evaluation.trainability`), with every seed:

- hard copies: the training layouts as they are;
- augmented layouts: GeoDiffusion's edits, flip and shift (:mod:`mmdet_detdiffusion.layout.augment`);
- rare-class quotas: LVIS repeat factors decide how often each layout is drawn
  (:mod:`mmdet_detdiffusion.synthetic.quotas`);
- filtered copies: the boxes an oracle (D's config trained ``--oracle-epochs``) does not find are ignored
  (:mod:`mmdet_detdiffusion.synthetic.filter`; not D: hard generations are meant to be hard for D);
- all levers: augmented layouts with quotas, filtered.

It reports overall val mAP and the rare class's AP, each as mean ± std over seeds with the paired gain over
real only and its 95% interval, in ``report.md``, ``metrics.json`` and two bar charts. Finished steps are
reused on a rerun.

Example::

    python projects/toy_shapes/tools/study.py --work-dir work_dirs/study
"""
import argparse
import os
from typing import Dict, List

import torch

from mmdet_detdiffusion.attributes.labeler import AttributeLabeler
from mmdet_detdiffusion.evaluation import claims
from mmdet_detdiffusion.evaluation.report import gain_rule, markdown_table, protocol_rows
from mmdet_detdiffusion.evaluation.trainability import Arm, plan_arms, protocol_report, run_arms, select
from mmdet_detdiffusion.generator.export import generator_identity
from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline
from mmdet_detdiffusion.layout.attribute_file import load_coco
from mmdet_detdiffusion.layout.attributes import HARD
from mmdet_detdiffusion.layout.matching import DEFAULT_IOU_THR, DEFAULT_SCORE_THR
from mmdet_detdiffusion.synthetic.filter import FILTERED_FILE, filter_summary, filter_synthetic_set
from mmdet_detdiffusion.synthetic.manifest import ANNOTATION_FILE
from mmdet_detdiffusion.utils.fileio import atomic_write_json
from mmdet_detdiffusion.visualization import save_bar_chart
from projects.toy_shapes.toy_shapes.shapes import DEMO_SHAPES, SHAPES_CLASSES
from projects.toy_shapes.toy_shapes.toy_loop import (MAP_KEY, Steps, detector_config, finetune_generator, generate_set,
                                                     label_boxes, loop_paths, make_shapes_data, synthetic_dataset,
                                                     toy_loop_parser, train_arm, train_detector)

COPIES = 'real + hard copies'  # the lever-free synthetic arm each lever is also compared with


def parse_args() -> argparse.Namespace:
    parser = toy_loop_parser(__doc__.split('\n\n')[0], 'work_dirs/study')
    parser.add_argument('--rare-class', choices=SHAPES_CLASSES, default='triangle')
    parser.add_argument('--rare-weight', type=float, default=0.15,
                        help='frequency of the rare class in the training images, relative to each other class')
    parser.add_argument('--oracle-epochs', type=int, default=24, help='epochs of the filter\'s oracle detector')
    parser.add_argument('--flip-prob', type=float, default=0.5, help='augmented layouts: flip probability')
    parser.add_argument('--max-shift', type=float, default=0.1, help='augmented layouts: largest shift (image share)')
    parser.add_argument('--repeat-thr', type=float, default=0.5, help='quotas: LVIS repeat-factor threshold t')
    parser.add_argument('--filter-score-thr', type=float, default=DEFAULT_SCORE_THR,
                        help='filter: a layout box is found when the oracle scores it above this')
    return parser.parse_args()


def synthetic_sets(args: argparse.Namespace, export_dir: str, layouts_file: str, out_root: str) -> Dict[str, str]:
    """The hard synthetic sets of the training layouts, ``{lever: folder}``."""
    pipe = DetDiffusionPipeline.from_pretrained(export_dir)
    pipe.set_progress_bar_config(disable=True)
    identity = generator_identity(export_dir)
    edits = dict(flip_prob=args.flip_prob, max_shift=args.max_shift)
    quotas = dict(repeat_thr=args.repeat_thr)
    plans = {'copies': {}, 'augmented': edits, 'quotas': quotas, 'augmented_quotas': {**edits, **quotas}}
    return {name: generate_set(pipe, identity, layouts_file, HARD, args.seed, os.path.join(out_root, name) + '/',
                               args.steps, args.guidance_scale, plan)
            for name, plan in plans.items()}


def filter_sets(args: argparse.Namespace, oracle, folders: Dict[str, str]) -> Dict[str, dict]:
    """Filter the copies and the augmented-with-quotas set with the oracle: boxes it does not find (its class,
    score > ``--filter-score-thr``, IoU > beta) are marked ignored. Returns ``{set: summary}``."""
    labeler = AttributeLabeler(oracle.model, oracle.cfg.test_dataloader.dataset.pipeline, iou_thr=DEFAULT_IOU_THR,
                               match_class=True, batch_size=8)
    summaries = {}
    for name in ('copies', 'augmented_quotas'):
        out = os.path.join(folders[name], FILTERED_FILE)
        if os.path.isfile(out):
            summaries[name] = load_coco(out)['detdiffusion']['filter']
        else:
            summaries[name] = filter_synthetic_set(labeler, folders[name], args.filter_score_thr, ignore_unfound=True,
                                                   record=dict(oracle=f'{oracle.cfg.filename}, {oracle.epoch} epochs'))
        print(f'{name}: {filter_summary(summaries[name])}')
    return summaries


def trainability(args: argparse.Namespace, data_root: str, folders: Dict[str, str], work_dir: str
                 ) -> Dict[str, dict]:
    """Every arm with every seed; ``{metric: protocol report}`` for the val mAP and the rare class's AP."""
    cfg = detector_config(data_root, args.trainability_epochs)
    cfg.default_hooks.logger.interval = 50
    cfg.val_evaluator.classwise = True  # per-class AP, for the rare class
    arms_sets = {'hard copies': synthetic_dataset(folders['copies']),
                 'augmented layouts': synthetic_dataset(folders['augmented']),
                 'rare-class quotas': synthetic_dataset(folders['quotas']),
                 'filtered copies': synthetic_dataset(folders['copies'], FILTERED_FILE),
                 'all levers': synthetic_dataset(folders['augmented_quotas'], FILTERED_FILE)}
    sizes = {name: len(load_coco(os.path.join(d['data_root'], d['ann_file']))['images'])
             for name, d in arms_sets.items()}
    num_real = len(load_coco(data_root + 'annotations/train.json')['images'])
    arms = plan_arms(num_real, arms_sets, sizes, args.trainability_epochs, cfg.train_dataloader.batch_size)
    rare_key = f'coco/{args.rare_class}_precision'

    def both(metrics: Dict[str, float]) -> Dict[str, float]:
        """The run's val mAP and rare-class AP (the evaluator gives none when nothing is found: 0)."""
        return {MAP_KEY: metrics[MAP_KEY], rare_key: metrics.get(rare_key, 0.0)}

    def progress(arm: Arm, seed: int, metrics: Dict[str, float]) -> None:
        print(f'study: {arm.name}, seed {seed}, {arm.max_iters} iterations: val mAP {metrics[MAP_KEY]:.3f}, '
              f'{args.rare_class} AP {both(metrics)[rare_key]:.3f}', flush=True)

    runs = run_arms(cfg, arms, args.seeds, work_dir, train_arm, progress, args.trainability_workers)
    results = {arm: [both(metrics) for metrics in per_seed] for arm, per_seed in runs.items()}
    metrics = (('mAP', MAP_KEY), (f'{args.rare_class} AP', rare_key))
    reports = {metric: protocol_report(select(results, key), arms) for metric, key in metrics}
    over_copies = {metric: protocol_report(select(results, key), arms, baseline=COPIES) for metric, key in metrics}
    return dict(reports=reports, gain_over_copies={metric: {arm: entry['gain'] for arm, entry in report.items()
                                                            if 'gain' in entry and arm != COPIES}
                                                   for metric, report in over_copies.items()}, sizes=sizes)


def gains(gain: dict) -> bool:
    """Whether a paired gain is a gain beyond seed noise (:func:`claims.gain`)."""
    return claims.gain(gain['low'], gain['high']).met


def write_report(args: argparse.Namespace, work_dir: str, folders: Dict[str, str], filtered: Dict[str, dict],
                 study: Dict[str, dict], seconds: Dict[str, float]) -> None:
    """``report.md``, ``metrics.json`` and one bar chart per metric."""
    command = f'python projects/toy_shapes/tools/study.py --work-dir {args.work_dir}'
    train = load_coco(os.path.join(work_dir, 'data', 'shapes', 'annotations', 'train.json'))
    per_class = {cat['name']: sum(a['category_id'] == cat['id'] for a in train['annotations'])
                 for cat in train['categories']}
    quotas = load_coco(folders['quotas'] + ANNOTATION_FILE)
    names = {cat['id']: cat['name'] for cat in quotas['categories']}
    after = {name: sum(names[a['category_id']] == name for a in quotas['annotations']) for name in per_class}
    copies = load_coco(folders['copies'] + ANNOTATION_FILE)
    before = {name: sum(names[a['category_id']] == name for a in copies['annotations']) for name in per_class}
    lines: List[str] = [
        '# Which lever makes synthetic data pay its way? (toy shapes, rare class)', '',
        f'Command: `{command}`; settings: {vars(args)}.', '',
        f'Real training objects per class: {per_class} ({args.rare_class} rare, weight {args.rare_weight}); the '
        f'{args.num_val} val images have every class equally often. Synthetic sets: hard generations of the '
        f'{args.num_train} training layouts by the fine-tuned toy generator ({args.generator_epochs} epochs).', '',
        f'Synthetic objects per class, copies vs rare-class quotas (t = {args.repeat_thr}): '
        + ', '.join(f'{n} {before[n]} -> {after[n]}' for n in per_class) + '.', '',
        'Filter (oracle: D\'s config trained {0} epochs; unfound boxes ignored): '.format(args.oracle_epochs)
        + '; '.join(f'{name}: {filter_summary(s)}' for name, s in filtered.items()) + '.', '',
        'Images per synthetic set: ' + ', '.join(f'{k} {v}' for k, v in study['sizes'].items()) + '.', '']
    for metric, report in study['reports'].items():
        arms = list(report)
        chart = f'study_{metric.replace(" ", "_")}.png'
        save_bar_chart(os.path.join(work_dir, chart), arms, [report[a]['mean'] for a in arms],
                       [report[a]['std'] for a in arms], [report[a]['seeds'] for a in arms], f'val {metric}',
                       f'{metric}: real + synthetic arms ({len(args.seeds)} seeds; mean ± std)')
        over_copies = study['gain_over_copies'][metric]
        lines += [f'## {metric} on the real val set', '',
                  'Every arm but the last trains the same iterations and schedule; gain: mean of per-seed '
                  f'differences to real only (or to {COPIES}, for what a lever adds) '
                  f'{gain_rule(report[COPIES]["gain"])}.', '',
                  markdown_table(('arm', 'iterations', f'{metric} mean ± std', 'per seed', 'gain over real only',
                                  'gain over hard copies'), protocol_rows(report, over_copies)), '',
                  f'![{metric}]({chart})', '']
    lines += ['## Verdict', '']
    for metric, report in study['reports'].items():
        over_real = [arm for arm, entry in report.items() if 'gain' in entry and gains(entry['gain'])]
        over_copies = [arm for arm, gain in study['gain_over_copies'][metric].items() if gains(gain)]
        lines.append(f'- {metric}: over real only, ' + (', '.join(over_real) or 'no arm') + ' gains beyond seed '
                     'noise; over hard copies, ' + (', '.join(over_copies) or 'no lever') + ' does.')
    lines += ['', '## Time per step of this run (s; a step reused from an earlier run takes seconds)', '',
              markdown_table(('step', 'seconds'), [(k, f'{v:.1f}') for k, v in seconds.items()])]
    path = os.path.join(work_dir, 'report.md')
    with open(path + '.tmp', 'w') as f:
        f.write('\n'.join(lines) + '\n')
    os.replace(path + '.tmp', path)
    atomic_write_json(dict(study, filter=filtered, command=command, settings=vars(args),
                           seconds={k: round(v, 1) for k, v in seconds.items()}),
                      os.path.join(work_dir, 'metrics.json'))
    print(f'\nreport: {path}')


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)
    work_dir, data_root, attr_file = loop_paths(args.work_dir)
    weights = [args.rare_weight if name == args.rare_class else 1.0 for name in SHAPES_CLASSES]
    steps = Steps(total=8)
    steps.run('dataset', f'toy shapes dataset ({args.rare_class} rare in train)', make_shapes_data, data_root,
              args.num_train, args.num_val, args.seed, DEMO_SHAPES['colours'], weights)
    detector = steps.run('detector', 'train the tiny detector D on real data', train_detector, data_root,
                         os.path.join(work_dir, 'detector'), args.detector_epochs, args.seed)
    steps.run('labeling', 'label easy/hard attributes of the training boxes with D', label_boxes, detector,
              data_root + 'annotations/train.json', data_root + 'images', attr_file)
    oracle = steps.run('oracle', f'train the filter\'s oracle ({args.oracle_epochs} epochs)', train_detector,
                       data_root, os.path.join(work_dir, 'oracle'), args.oracle_epochs, args.seed)
    export = steps.run('generator', 'fine-tune the toy generator on the labelled set', finetune_generator, data_root,
                       attr_file, os.path.join(work_dir, 'generator'), args.generator_epochs, args.seed)
    folders = steps.run('generation', 'hard synthetic sets of the training layouts, one per lever', synthetic_sets,
                        args, export, attr_file, os.path.join(work_dir, 'data'))
    filtered = steps.run('filter', 'filter with the oracle', filter_sets, args, oracle, folders)
    study = steps.run('trainability', 'arms x seeds, iteration-matched', trainability, args, data_root, folders,
                      os.path.join(work_dir, 'trainability'))
    write_report(args, work_dir, folders, filtered, study, steps.seconds)


if __name__ == '__main__':
    main()
