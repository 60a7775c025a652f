"""Does synthetic data pay its way when real data is scarce? Learning curves, best against best (toy shapes, CPU).

For each regime of ``--regimes`` real training images (the first N of one training set in which ``--rare-class`` is
rare), the whole loop runs on those N images only: D trains on them and labels their boxes easy/hard, the toy base is
fine-tuned on them (the base itself is unchanged: its pretraining stream is data the detector never sees), and the
fine-tuned generator makes a pool of hard images of their layouts, labelled with the perception head's mask boxes
(``box_source='head'``; rare-class layouts repeated by LVIS repeat factors; every pool, of any mode, sampled with
attribute guidance ``--attribute-guidance-scale``). Then D's config trains each arm with every seed:

- real only: B = 8 real images a batch;
- real + hard, added: the same 8 real images a batch plus ``--synthetic-per-batch`` pool images (Gen2Det: p = 0.2);
- the same without the synthetic images' box-regression loss (``SyntheticAwareRetinaHead``): what a loose box costs
  (only when ``--arms`` names it);
- the same without the loss of the synthetic images' background anchors, as Gen2Det trains: what a generated
  background costs (only when ``--arms`` names it);
- real + CopyPaste: mmdet's ``CopyPaste`` of real objects onto real images (the control: if it gives no gain
  either, the regime is saturated);
- real + instance paste: ``SyntheticInstancePaste`` of the pool's objects, cut by their masks, onto real images;
  in the largest regime also from pools of the other generation modes (the arms ``instance_paste_<mode>``), to ask
  which mode pays.

Every arm of a regime trains the same iterations with the same schedule, long enough for real only to stop improving
(``--trainability-epochs`` passes over the real images, at least ``--min-iters``), and is validated ``--curve-points``
times along the way. Each run's best val mAP is compared with real only's best of the same seed: the paired gain with
its 95% t interval. The rare class's AP is read at the iteration of each run's best mAP. Besides, the box repair of
the largest regime: the labels of generations of unseen validation layouts against the drawn boxes
(:mod:`~projects.toy_shapes.toy_shapes.box_repair_measure`).

Writes ``report.md``, ``metrics.json`` (``regimes.<n>.arms.<arm>``, ``regimes.<n>.gain.<arm>`` best against best,
``regimes.<n>.final_gain.<arm>`` at the last iteration, ``regimes.<n>.hard_over_mode.<mode>``: paste from the hard
pool minus paste from another, ``box_repair.<method>``), one learning-curve plot per regime and the gain against the
number of real images. Finished steps and runs are reused on a rerun; ``--arms`` chooses the arms. The defaults
(3 regimes, 4 seeds, 6 validations a run, every arm but the two loss switches) are sized to finish within an hour on
2 CPU cores (docs/results.md gives the time measured on a fresh clone).

Example::

    python projects/toy_shapes/tools/study.py --work-dir work_dirs/study
"""
import argparse
import math
import os
import sys
from typing import Dict, List, NamedTuple, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmdet_detdiffusion  # noqa: F401  (registers components and the checkpoint allow-list)
from mmdet_detdiffusion.evaluation import claims
from mmdet_detdiffusion.evaluation.report import gain_cell, gain_rule, markdown_table, verdict_cell
from mmdet_detdiffusion.evaluation.trainability import (REAL_ONLY, Arm, available_cpus, best_point, curve_report,
                                                        final_values, iterations_per_epoch, paired_gain,
                                                        protocol_report, run_arms, threads_per_worker)
from mmdet_detdiffusion.evaluation.yolo_score import evaluate_yolo_score
from mmdet_detdiffusion.generator.export import generator_identity
from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline
from mmdet_detdiffusion.layout.attribute_file import load_coco
from mmdet_detdiffusion.layout.attributes import GENERATION_MODES, HARD, MODE_ORIGINAL
from mmdet_detdiffusion.layout.matching import DEFAULT_SCORE_THR
from mmdet_detdiffusion.synthetic.box_repair import DEFAULT_MIN_CONFIDENCE
from mmdet_detdiffusion.synthetic.manifest import ANNOTATION_FILE, IMAGES_FOLDER
from mmdet_detdiffusion.utils.config import with_copy_paste, with_transform_after_loading
from mmdet_detdiffusion.utils.fileio import atomic_write_json
from mmdet_detdiffusion.visualization import LineSeries, save_line_chart
from projects.toy_shapes.toy_shapes.box_repair_measure import REPAIR_METHODS, measure_box_repair
from projects.toy_shapes.toy_shapes.shapes import DEMO_SHAPES, SHAPES_CLASSES
from projects.toy_shapes.toy_shapes.toy_loop import (DETECTOR_CONFIG, GENERATOR_CONFIG, MAP_KEY, TRAIN_ANN, Steps,
                                                     detector_config, final_checkpoint, finetune_generator,
                                                     first_images, generate_set, label_boxes, loop_paths,
                                                     make_shapes_data, synthetic_dataset, toy_loop_parser, train_curve,
                                                     train_detector)

# metrics.json key -> the name in the report, of the arms every regime has
ARMS = {'real_only': REAL_ONLY, 'hard_added': 'real + hard, added',
        'hard_added_cls': 'real + hard, added, no synthetic box loss',
        'hard_added_objects': 'real + hard, added, no synthetic background loss', 'copy_paste': 'real + CopyPaste',
        'instance_paste': 'real + instance paste'}
SYNTHETIC_AWARE_HEAD = {'model.bbox_head.type': 'SyntheticAwareRetinaHead'}
CLASSIFICATION_ONLY = {**SYNTHETIC_AWARE_HEAD, 'model.bbox_head.synthetic_box_loss': False}
OBJECTS_ONLY = {**SYNTHETIC_AWARE_HEAD, 'model.bbox_head.synthetic_background_loss': False}  # Gen2Det's


def paste_arm(mode: str) -> Tuple[str, str]:
    """``(metrics.json key, report name)`` of the instance-paste arm whose objects come from the ``mode`` pool."""
    if mode == HARD:
        return 'instance_paste', ARMS['instance_paste']
    return f'instance_paste_{mode}', f'real + instance paste, {mode} pool'


ARM_KEYS = (*ARMS, *(paste_arm(mode)[0] for mode in GENERATION_MODES if mode != HARD))
# The two loss-switch ablations of the added arm train only when asked for: they take a quarter of the default run's
# training, which then no longer fits the hour on 2 CPU cores, and whole images paid with neither switch in any regime
# (docs/results.md gives their figures).
LOSS_SWITCH_ARMS = ('hard_added_cls', 'hard_added_objects')
DEFAULT_ARMS = tuple(key for key in ARM_KEYS if key not in LOSS_SWITCH_ARMS)


class Regime(NamedTuple):
    """What one regime's arms train on: the real subset (relative to the data root), its pools' folders by
    generation mode (hard first), and its schedule (the epochs of D's config and the iterations one of them takes)."""
    num_real: int
    train_ann: str
    pools: Dict[str, str]
    epochs: int
    iters_per_epoch: int

    @property
    def max_iters(self) -> int:
        return self.epochs * self.iters_per_epoch


def parse_args() -> argparse.Namespace:
    parser = toy_loop_parser(__doc__.split('\n\n')[0], 'work_dirs/study')
    parser.set_defaults(num_train=200, trainability_epochs=32, seeds=[0, 1, 2, 3])
    parser.add_argument('--regimes', type=int, nargs='+', default=[25, 50, 200],
                        help='real training images per regime: the first N of the --num-train training images')
    parser.add_argument('--rare-class', choices=SHAPES_CLASSES, default='triangle')
    parser.add_argument('--rare-weight', type=float, default=0.04,
                        help='frequency of the rare class in the training images, relative to each other class')
    parser.add_argument('--min-iters', type=int, default=400, help='the shortest schedule of a regime, in iterations')
    parser.add_argument('--curve-points', type=int, default=6, help='validations along each run')
    parser.add_argument('--synthetic-per-batch', type=int, default=2,
                        help='added arm: synthetic images beside the 8 real images of every batch')
    parser.add_argument('--pool-size', type=int, default=200,
                        help='hard images per regime (before rare-class repeats): ceil(size / N) per layout')
    parser.add_argument('--repeat-thr', type=float, default=0.5, help='pool: LVIS repeat-factor threshold t')
    parser.add_argument('--head-min-confidence', type=float, default=DEFAULT_MIN_CONFIDENCE,
                        help='pool: an object whose mask\'s mean probability is lower becomes an ignore region '
                             '(synthetic/box_repair.mask_box)')
    parser.add_argument('--attribute-guidance-scale', type=float, default=2.0,
                        help='attribute guidance of every pool, an addition to the paper\'s sampler (0: without; '
                             'DetDiffusionPipeline.__call__): the modes are compared with one sampler')
    parser.add_argument('--paste-max', type=int, default=2, help='instance paste: at most this many objects an image')
    parser.add_argument('--arms', nargs='+', choices=ARM_KEYS, default=list(DEFAULT_ARMS),
                        help='the arms to train, by metrics.json key (real only, the baseline, always trains; '
                             'every regime prepares its generator and hard pool, the largest one the pool of each '
                             'instance_paste_<mode> arm); by default every arm but the loss switches '
                             f'{", ".join(LOSS_SWITCH_ARMS)}')
    parser.add_argument('--generator-share', type=float, default=0.5,
                        help='a smaller regime fine-tunes the generator at least this share of the largest '
                             'regime\'s iterations')
    parser.add_argument('--fidelity-layouts', type=int, default=110,
                        help='box repair: the layouts of the first N validation images')
    parser.add_argument('--oracle-epochs', type=int, default=32, help='box repair: epochs of the relabelling oracle')
    return parser.parse_args()


def scaled_epochs(epochs: int, num_images: int, reference_images: int, batch_size: int, share: float = 1.0) -> int:
    """Epochs over ``num_images`` that make at least ``share`` of the iterations ``epochs`` make over
    ``reference_images`` (and never fewer than ``epochs``): a smaller regime trains as many steps, not as few."""
    reference = share * epochs * iterations_per_epoch(reference_images, batch_size)
    return max(epochs, math.ceil(reference / iterations_per_epoch(num_images, batch_size)))


def subset_ann(num_real: int) -> str:
    """The annotation file of a regime's real images (the first ``num_real`` training images), relative to the data
    root."""
    return f'annotations/train_{num_real}.json'


def regime_detector(args: argparse.Namespace, num_real: int, data_root: str, work_dir: str, batch_size: int
                    ) -> Runner:
    """D of a regime: the toy RetinaNet trained (or resumed, or reused) on its ``num_real`` images for as many
    iterations as ``--detector-epochs`` over ``--num-train`` images take."""
    return train_detector(data_root, os.path.join(work_dir, f'regime_{num_real}', 'detector'),
                          scaled_epochs(args.detector_epochs, num_real, args.num_train, batch_size), args.seed,
                          train_ann=subset_ann(num_real))


def pool_modes(args: argparse.Namespace, num_real: int) -> List[str]:
    """The generation modes of a regime's pools: hard, and in the largest regime the mode of each chosen
    ``instance_paste_<mode>`` arm."""
    largest = num_real == max(args.regimes)
    return [HARD] + [mode for mode in GENERATION_MODES if mode != HARD and largest and paste_arm(mode)[0] in args.arms]


def prepare_regime(args: argparse.Namespace, num_real: int, data_root: str, work_dir: str, batch_size: int
                   ) -> Regime:
    """D, its easy/hard labels, the fine-tuned generator and the pools of one regime (each reused when done): hard,
    and in the largest regime one more per chosen ``instance_paste_<mode>`` arm."""
    regime_dir = os.path.join(work_dir, f'regime_{num_real}')
    train_ann = subset_ann(num_real)
    first_images(data_root + TRAIN_ANN, num_real, data_root + train_ann)
    detector = regime_detector(args, num_real, data_root, work_dir, batch_size)
    attr_file = os.path.join(regime_dir, 'attributes', 'train_pa_attr.json')
    label_boxes(detector, data_root + train_ann, data_root + 'images', attr_file)
    generator_batch = Config.fromfile(GENERATOR_CONFIG).train_dataloader.batch_size
    generator_epochs = scaled_epochs(args.generator_epochs, num_real, args.num_train, generator_batch,
                                     args.generator_share)
    export = finetune_generator(data_root, attr_file, os.path.join(regime_dir, 'generator'), generator_epochs,
                                args.seed)
    pipe = DetDiffusionPipeline.from_pretrained(export)
    pipe.set_progress_bar_config(disable=True)
    pools = {mode: generate_set(pipe, generator_identity(export), attr_file, mode, args.seed,
                                os.path.join(regime_dir, f'pool_{mode}') + '/', args.steps, args.guidance_scale,
                                dict(repeat_thr=args.repeat_thr), box_source='head',
                                num_per_image=math.ceil(args.pool_size / num_real),
                                box_repair=dict(min_confidence=args.head_min_confidence),
                                attribute_guidance_scale=args.attribute_guidance_scale)
             for mode in pool_modes(args, num_real)}
    epochs = max(args.trainability_epochs, math.ceil(args.min_iters / iterations_per_epoch(num_real, batch_size)))
    return Regime(num_real, train_ann, pools, epochs, iterations_per_epoch(num_real, batch_size))


def regime_arms(args: argparse.Namespace, regime: Regime, real: dict) -> List[Arm]:
    """The arms of ``--arms`` a regime has (real only always), all ``regime.max_iters`` long; ``real``: its real
    training set config."""
    pool = synthetic_dataset(regime.pools[HARD])
    schedule = dict(max_iters=regime.max_iters, iters_per_epoch=regime.iters_per_epoch)
    added = dict(synthetic_per_batch=args.synthetic_per_batch, **schedule)
    arms = [Arm(ARMS['real_only'], (), **schedule), Arm(ARMS['hard_added'], (pool,), **added),
            Arm(ARMS['hard_added_cls'], (pool,), cfg_options=CLASSIFICATION_ONLY, **added),
            Arm(ARMS['hard_added_objects'], (pool,), cfg_options=OBJECTS_ONLY, **added),
            Arm(ARMS['copy_paste'], (), real_dataset=with_copy_paste(real), **schedule)]
    for mode, folder in regime.pools.items():
        paste = dict(type='SyntheticInstancePaste', ann_file=os.path.join(folder, ANNOTATION_FILE),
                     img_prefix=os.path.join(folder, IMAGES_FOLDER), classes=list(SHAPES_CLASSES), prob=1.0,
                     max_instances=args.paste_max)
        arms.append(Arm(paste_arm(mode)[1], (), real_dataset=with_transform_after_loading(real, paste), **schedule))
    chosen = {'real_only', *args.arms}
    return [arm for arm in arms if arm_key(arm.name) in chosen]


def train_regime(args: argparse.Namespace, regime: Regime, data_root: str, work_dir: str) -> dict:
    """Every arm of a regime with every seed: its :func:`curve_report` for the val mAP, with each run's rare-class AP
    at its best mAP (``rare_ap``), its last mAP (``final``) and their gain over real only (``final_gain``); and the
    curves."""
    cfg = detector_config(data_root, regime.epochs, train_ann=regime.train_ann)
    cfg.default_hooks.logger.interval = 50
    cfg.val_evaluator.classwise = True  # per-class AP, for the rare class
    arms = regime_arms(args, regime, cfg.train_dataloader.dataset)
    interval = math.ceil(regime.max_iters / args.curve_points)
    rare_key = f'coco/{args.rare_class}_precision'

    def progress(arm: Arm, seed: int, curve: List[dict]) -> None:
        value, iteration = best_point(curve, MAP_KEY)
        print(f'study: {regime.num_real} real images, {arm.name}, seed {seed}: best val mAP {value:.3f} at '
              f'{iteration} of {arm.max_iters} iterations', flush=True)

    curves = run_arms(cfg, arms, args.seeds, os.path.join(work_dir, f'regime_{regime.num_real}', 'curves'),
                      train_curve, progress, args.trainability_workers, val_interval=interval)
    report = curve_report(curves, arms, MAP_KEY, cfg.train_dataloader.batch_size)
    final = protocol_report(final_values(curves, MAP_KEY), arms)
    for arm in arms:
        entry = report[arm.name]
        points = [{p['iter']: p['metrics'] for p in curve}[iteration]
                  for curve, iteration in zip(curves[arm.name], entry['best_iters'])]
        entry.update(rare_ap=[metrics.get(rare_key, 0.0) for metrics in points], final=final[arm.name]['seeds'])
        if 'gain' in final[arm.name]:
            entry['final_gain'] = final[arm.name]['gain']
    return dict(report=report, curves=curves, interval=interval)


def box_repair(args: argparse.Namespace, data_root: str, work_dir: str, batch_size: int) -> Dict[str, dict]:
    """Box repair of the largest regime (:func:`measure_box_repair`): its D, its generator, original-mode generations
    of the first ``--fidelity-layouts`` validation layouts (labelled easy/hard by its D)."""
    largest = max(args.regimes)
    regime_dir = os.path.join(work_dir, f'regime_{largest}')
    train_ann = subset_ann(largest)
    detector = regime_detector(args, largest, data_root, work_dir, batch_size)
    out = os.path.join(work_dir, 'box_repair')
    val_layouts = os.path.join(out, 'val_layouts_pa_attr.json')
    label_boxes(detector, first_images(data_root + 'annotations/val.json', args.fidelity_layouts,
                                       os.path.join(out, 'val_layouts.json')), data_root + 'images', val_layouts)
    export = os.path.join(regime_dir, 'generator', 'export')
    layout_folder = generate_set(DetDiffusionPipeline.from_pretrained(export), generator_identity(export), val_layouts,
                                 MODE_ORIGINAL, args.seed, os.path.join(out, 'layout_labels') + '/', args.steps,
                                 args.guidance_scale)
    real = evaluate_yolo_score(detector.cfg, final_checkpoint(detector), val_layouts, data_root + 'images',
                               os.path.join(out, 'real'))
    return measure_box_repair(detector, data_root, val_layouts, export, layout_folder, real['AP75'], out,
                              generation_seed=args.seed, oracle_seed=args.seed + 1, oracle_epochs=args.oracle_epochs,
                              steps=args.steps, guidance_scale=args.guidance_scale, score_thr=DEFAULT_SCORE_THR,
                              train_ann=train_ann)


def curve_lines(result: dict) -> Dict[str, LineSeries]:
    """Per arm, the mean learning curve over seeds with a one-std band and the seeds' own curves."""
    lines = {}
    for name, runs in result['curves'].items():
        iters = [p['iter'] for p in runs[0]]
        values = np.array([[p['metrics'].get(MAP_KEY, 0.0) for p in run] for run in runs])
        mean, std = values.mean(axis=0), values.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros(len(iters))
        lines[name] = LineSeries(iters, mean, mean - std, mean + std,
                                 [([p['iter'] for p in run], list(row)) for run, row in zip(runs, values)])
    return lines


def gain_lines(results: Dict[int, dict]) -> Dict[str, LineSeries]:
    """Per compared arm that every regime trained, its best-against-best gain over real only against the number of
    real images."""
    regimes = sorted(results)
    lines = {}
    for name in ARMS.values():
        if name == REAL_ONLY or any(name not in results[n]['report'] for n in regimes):
            continue
        gains = [results[n]['report'][name]['gain'] for n in regimes]
        lines[name] = LineSeries(regimes, [g['mean'] for g in gains], [g['low'] for g in gains],
                                 [g['high'] for g in gains])
    return lines


def interval(gain: dict) -> Dict[str, float]:
    """A paired gain as ``metrics.json`` keeps it: ``{mean, ci_low, ci_high}``."""
    return dict(mean=gain['mean'], ci_low=gain['low'], ci_high=gain['high'])


def arm_key(name: str) -> str:
    """The ``metrics.json`` key of an arm's report name."""
    keys = {name: key for key, name in ARMS.items()}
    keys.update({paste_arm(mode)[1]: paste_arm(mode)[0] for mode in GENERATION_MODES})
    return keys[name]


def metrics_summary(results: Dict[int, dict], repair: Dict[str, dict]) -> dict:
    """``metrics.json``'s ``regimes`` and ``box_repair`` (the schema in the module docstring; ``final_gain``: the
    gains at the last iteration)."""
    regimes = {}
    for n, result in results.items():
        report = result['report']
        arms, gains, final_gains = {}, {}, {}
        for name, entry in report.items():
            key = arm_key(name)
            arms[key] = dict(best_map_mean=entry['mean'], best_map_std=entry['std'],
                             best_iter_mean=entry['best_iter_mean'], seeds=entry['seeds'],
                             images_seen=entry['images_seen'], iters=entry['iters'], best_iters=entry['best_iters'],
                             final_map=entry['final'], rare_ap_at_best=entry['rare_ap'])
            if 'gain' in entry:
                gains[key] = interval(entry['gain'])
                final_gains[key] = interval(entry['final_gain'])
        regimes[str(n)] = dict(arms=arms, gain=gains, final_gain=final_gains, val_interval=result['interval'],
                               hard_over_mode={mode: interval(gain)
                                               for mode, gain in hard_over_modes(report).items()})
    return dict(regimes=regimes, box_repair={method: {k: repair[method][k] for k in ('ap75_ratio', 'median_iou_drawn')}
                                             for method in REPAIR_METHODS})


def hard_over_modes(report: Dict[str, dict]) -> Dict[str, dict]:
    """``{mode: paired gain}`` of instance paste from the hard pool over paste from each other mode's pool in a
    regime that has them (best against best, seed by seed): does hard pay most?"""
    if paste_arm(HARD)[1] not in report:
        return {}
    hard = report[paste_arm(HARD)[1]]['seeds']
    return {mode: paired_gain(hard, report[paste_arm(mode)[1]]['seeds']) for mode in GENERATION_MODES
            if mode != HARD and paste_arm(mode)[1] in report}


def regime_section(args: argparse.Namespace, n: int, result: dict) -> List[str]:
    """The report's table and curves of one regime."""
    report = result['report']
    rows = []
    for name, entry in report.items():
        rows.append([name, entry['iters'], entry['images_seen'], f'{entry["mean"]:.3f} ± {entry["std"]:.3f}',
                     ', '.join(f'{v:.3f}' for v in entry['seeds']),
                     ', '.join(str(i) for i in entry['best_iters']),
                     f'{np.mean(entry["rare_ap"]):.3f}', gain_cell(entry['gain']) if 'gain' in entry else '-',
                     gain_cell(entry['final_gain']) if 'final_gain' in entry else '-'])
    real = report[REAL_ONLY]
    line = curve_lines(result)[REAL_ONLY]
    late = int(np.searchsorted(line.xs, 0.75 * real['iters']))  # the first validation in the last quarter
    chart = f'curves_{n}.png'
    return [f'## {n} real training images', '',
            f'{real["iters"]} iterations ({len(line.xs)} validations, every {result["interval"]}). Real only\'s mean '
            f'val mAP goes from {line.ys[late]:.3f} at iteration {line.xs[late]} to {line.ys[-1]:.3f} at the end: '
            'what the last quarter of a schedule that decays the learning rate to zero still adds.', '',
            markdown_table(('arm', 'iterations', 'images seen', 'best val mAP mean ± std', 'per seed',
                            'best at iteration', f'{args.rare_class} AP at best', 'gain over real only, best vs best',
                            'gain at the last iteration'),
                           rows), '', f'![learning curves, {n} real images]({chart})', '',
            *[f'Instance paste, hard pool minus {mode} pool, best against best: {gain_cell(gain)}.'
              for mode, gain in hard_over_modes(report).items()], '']


def write_report(args: argparse.Namespace, work_dir: str, data_root: str, results: Dict[int, dict],
                 repair: Dict[str, dict], seconds: Dict[str, float]) -> None:
    """``report.md``, ``metrics.json`` and the plots."""
    command = 'python projects/toy_shapes/tools/study.py ' + ' '.join(sys.argv[1:])
    train = load_coco(data_root + TRAIN_ANN)
    names = {cat['id']: cat['name'] for cat in train['categories']}
    per_class = {n: {name: 0 for name in SHAPES_CLASSES} for n in results}
    for n in results:
        ids = {image['id'] for image in train['images'][:n]}
        for ann in train['annotations']:
            if ann['image_id'] in ids:
                per_class[n][names[ann['category_id']]] += 1
    for n, result in results.items():
        save_line_chart(os.path.join(work_dir, f'curves_{n}.png'), curve_lines(result), 'iteration', 'val mAP',
                        f'{n} real images: val mAP along training (mean ± std over {len(args.seeds)} seeds)')
    save_line_chart(os.path.join(work_dir, 'gain_vs_real_images.png'), gain_lines(results), 'real training images',
                    'gain in best val mAP over real only', 'Best against best, with 95% t intervals', log_x=True,
                    zero_line=True)
    verdicts = []
    for n, result in results.items():
        winners = {kind: [name for name, entry in result['report'].items()
                          if kind in entry and claims.gain(entry[kind]['low'], entry[kind]['high']).met]
                   for kind in ('gain', 'final_gain')}
        verdicts.append(f'- {n} real images, the arms that gain over real only beyond seed noise. Best against best: '
                        + ('; '.join(winners['gain']) or 'none') + '. At the last iteration: '
                        + ('; '.join(winners['final_gain']) or 'none') + '.')
    repair_rows = [[method, f'{repair[method]["median_iou_drawn"]:.3f}', f'{repair[method]["ap75_ratio"]:.2f}x',
                    verdict_cell(claims.box_repair(repair[method]['ap75_ratio'], repair[method]['median_iou_drawn']))]
                   for method in REPAIR_METHODS]
    first_gain = next(entry['gain'] for entry in next(iter(results.values()))['report'].values() if 'gain' in entry)
    lines: List[str] = [
        '# Synthetic data against scarce real data: learning curves, best against best (toy shapes)', '',
        f'Command: `{command}`; settings: {vars(args)}. {args.trainability_workers} runs at once, each with '
        f'{threads_per_worker(args.trainability_workers)} of the {available_cpus()} CPU threads.', '',
        f'Real training objects per class in each regime ({args.rare_class} rare, weight {args.rare_weight}): '
        + '; '.join(f'{n} images: ' + ', '.join(f'{c} {k}' for c, k in counts.items())
                    for n, counts in per_class.items())
        + f'. The {args.num_val} val images hold every class equally often ({DEMO_SHAPES["size"]} px).', '',
        'Arms (those of `--arms` in the tables): real only (8 real images a batch); real + hard, added (the same 8 '
        f'real images plus {args.synthetic_per_batch} images of the regime\'s hard pool, labelled with the perception '
        'head\'s mask boxes); the same without the synthetic images\' box-regression loss, and the same without the '
        'loss of their background anchors (Gen2Det), when `--arms` names them; real + CopyPaste (mmdet\'s, real '
        f'objects: the control); real + instance paste (1 to {args.paste_max} pool objects cut by their masks onto '
        'every real image), in the largest regime also from pools of the other generation modes. Every pool is '
        f'sampled with attribute guidance {args.attribute_guidance_scale:g}, one sampler for every mode. Gain: the '
        'mean of '
        f'the per-seed differences of the best val mAP to real only\'s best {gain_rule(first_gain)}. The best of '
        f'{args.curve_points} validations on the set it is reported on is biased upwards, the more so the noisier '
        'an arm\'s curve, so the gain at the last iteration (the schedule\'s end, no choice) stands beside it. Images '
        'seen: batches times images a batch; the added arm loads more per iteration, and the paste arms also read '
        'the images they paste from. mmdet\'s CopyPaste re-derives every box from its mask (whole pixels), so its '
        'arm trains on boxes up to a pixel wider than the real labels.', '',
        '## Gain against the number of real images', '', '![gain against real images](gain_vs_real_images.png)', '',
        *verdicts, '']
    for n, result in results.items():
        lines += regime_section(args, n, result)
    lines += ['## Box repair (the largest regime; unseen validation layouts)', '',
              f'Target: {claims.BOX_REPAIR_TARGET}.', '',
              markdown_table(('labels', 'median IoU with drawn', 'AP75 / real', 'target'), repair_rows), '',
              '## Time per step of this run (s; a step reused from an earlier run takes seconds)', '',
              markdown_table(('step', 'seconds'), [(k, f'{v:.1f}') for k, v in seconds.items()])]
    path = os.path.join(work_dir, 'report.md')
    with open(path + '.tmp', 'w') as f:
        f.write('\n'.join(lines) + '\n')
    os.replace(path + '.tmp', path)
    atomic_write_json(dict(metrics_summary(results, repair), command=command, settings=vars(args),
                           objects_per_class={str(n): c for n, c in per_class.items()},
                           seconds={k: round(v, 1) for k, v in seconds.items()}),
                      os.path.join(work_dir, 'metrics.json'), indent=1)
    print(f'\nreport: {path}')


def main() -> None:
    args = parse_args()
    if max(args.regimes) > args.num_train or min(args.regimes) < 1:
        raise ValueError(f'--regimes must be within 1..--num-train ({args.num_train}), got {args.regimes}')
    torch.manual_seed(args.seed)
    work_dir, data_root, _ = loop_paths(args.work_dir)
    weights = [args.rare_weight if name == args.rare_class else 1.0 for name in SHAPES_CLASSES]
    batch_size = Config.fromfile(DETECTOR_CONFIG).train_dataloader.batch_size
    regimes_sorted = sorted(args.regimes)
    steps = Steps(total=2 + 2 * len(regimes_sorted))
    steps.run('dataset', f'toy shapes dataset ({args.rare_class} rare in train)', make_shapes_data, data_root,
              args.num_train, args.num_val, args.seed, DEMO_SHAPES['colours'], weights)
    regimes = {n: steps.run(f'prepare_{n}', f'{n} real images: D, labels, generator, hard pool', prepare_regime, args,
                            n, data_root, work_dir, batch_size) for n in regimes_sorted}
    repair = steps.run('box_repair', 'box repair on unseen validation layouts', box_repair, args, data_root, work_dir,
                       batch_size)
    results = {n: steps.run(f'train_{n}', f'{n} real images: arms x seeds, learning curves', train_regime, args,
                            regime, data_root, work_dir) for n, regime in regimes.items()}
    write_report(args, work_dir, data_root, results, repair, steps.seconds)


if __name__ == '__main__':
    main()
