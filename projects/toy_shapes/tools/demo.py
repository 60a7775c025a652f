"""End-to-end DetDiffusion demo on the toy shapes set (CPU); finished steps are reused on a rerun.

It settles the paper's three claims on data where each can be measured:

1. generated images follow their layouts: the YOLO score (D on generated images vs their layouts) on
   *validation* layouts the generator never saw, against D on the real validation images, for the fine-tuned
   generator and for the toy base it started from;
2. the hard attribute makes objects harder for D: D's recall on hard vs easy generations of the same
   layouts and seeds (the first ``--recall-layouts`` validation layouts: all 300 by default), box by box with a sign
   test, for several generation seeds, and the objects' contrast;
3. hard synthetic data improves D more than more training on real data does: the trainability protocol
   (:mod:`mmdet_detdiffusion.evaluation.trainability`: every arm the same iterations and schedule, several
   seeds, the paired gain over real only with its interval).

Besides, box repair: the labels of the generations of unseen layouts (the layout boxes, the perception head's mask
boxes, an oracle detector's relabelling) against the boxes drawn, measured from colour
(:mod:`projects.toy_shapes.toy_shapes.drawn_boxes`), and D's AP75 against each.

Steps: shapes dataset -> detector D on real data -> easy/hard labels of the training and validation boxes
-> fine-tune the bundled toy base (projects/toy_shapes/assets/toy_shapes_base) with P.A. attributes and loss
-> generate from validation layouts (fidelity, recall) and training layouts (trainability) -> YOLO scores -> box repair
-> recall and contrast -> trainability arms -> ``report.md``, ``metrics.json`` and pictures.

Example::

    python projects/toy_shapes/tools/demo.py --work-dir work_dirs/demo
"""
import argparse
import dataclasses
import json
import math
import os
import sys
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmdet_detdiffusion  # noqa: F401  (registers components and the checkpoint allow-list)
from mmdet_detdiffusion.evaluation import claims
from mmdet_detdiffusion.evaluation.contrast import object_contrast
from mmdet_detdiffusion.evaluation.paired_recall import PairedRecall
from mmdet_detdiffusion.evaluation.report import (FIDELITY_COLUMNS, fidelity_rows, gain_rule, markdown_table,
                                                  protocol_rows, verdict_cell)
from mmdet_detdiffusion.evaluation.trainability import (REAL_ONLY, Arm, available_cpus, best_point, curve_report,
                                                        final_values, plan_arms, protocol_report, run_arms,
                                                        threads_per_worker)
from mmdet_detdiffusion.evaluation.yolo_score import evaluate_yolo_score
from mmdet_detdiffusion.generator.export import generator_identity
from mmdet_detdiffusion.generator.model import TRAINABLE_PARTS
from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline
from mmdet_detdiffusion.layout.attribute_file import (annotations_by_image, format_attribute_table, load_coco,
                                                      xywh_to_xyxy)
from mmdet_detdiffusion.layout.attributes import (ATTR_KEY, ATTRIBUTES, EASY, GENERATION_MODES, HARD, MODE_ORIGINAL,
                                                  RECORD_KEY)
from mmdet_detdiffusion.layout.matching import DEFAULT_IOU_THR, DEFAULT_SCORE_THR
from mmdet_detdiffusion.synthetic.manifest import ANNOTATION_FILE
from mmdet_detdiffusion.utils.fileio import atomic_write_json
from mmdet_detdiffusion.visualization import draw_annotated, save_bar_chart, save_image, tile_grid
from projects.toy_shapes.toy_shapes.box_repair_measure import measure_box_repair
from projects.toy_shapes.toy_shapes.shapes import COLOUR_SCHEMES, DEMO_SHAPES
from projects.toy_shapes.toy_shapes.toy_loop import (GENERATOR_CONFIG, MAP_KEY, Steps, base_pipeline, coco_set,
                                                     detector_config, detector_labeler, final_checkpoint,
                                                     finetune_generator, first_images, generate_set,
                                                     hard_vs_easy_recall, label_boxes, loop_paths, make_shapes_data,
                                                     synthetic_dataset, toy_loop_parser, train_curve, train_detector,
                                                     val_set, write_images)


def parse_args() -> argparse.Namespace:
    parser = toy_loop_parser(__doc__.split('\n\n')[0], 'work_dirs/demo')
    parser.add_argument('--colours', choices=COLOUR_SCHEMES, default=DEMO_SHAPES['colours'],
                        help='shapes colours (by_class: as the toy base model was trained)')
    parser.add_argument('--generator-config', default=GENERATOR_CONFIG)
    parser.add_argument('--fidelity-layouts', type=int, default=110,
                        help='fidelity and box repair: generate from the layouts of the first N validation images')
    parser.add_argument('--recall-layouts', type=int, default=300,
                        help='recall: hard and easy generations of the layouts of the first N validation images, '
                             'every seed (a seed\'s gap has a noise of about 40 / sqrt(boxes) points)')
    parser.add_argument('--synthetic-layouts', type=int, default=100,
                        help='trainability: one synthetic image per mode for each of the first N training layouts')
    parser.add_argument('--trainability-modes', nargs='+', choices=GENERATION_MODES, default=[HARD, EASY],
                        help='trainability: a real + synthetic arm per generation mode (make study compares the '
                             'modes\' pools too)')
    parser.add_argument('--attribute-guidance-scale', type=float, default=2.0,
                        help='attribute guidance of the recall sets (hard, easy) and of every trainability set, '
                             'whatever its mode, an addition to the paper\'s sampler (0: without; '
                             'DetDiffusionPipeline.__call__). The fidelity and box-repair sets sample without it')
    parser.add_argument('--score-thr', type=float, default=DEFAULT_SCORE_THR, help='gamma')
    parser.add_argument('--iou-thr', type=float, default=DEFAULT_IOU_THR, help='beta')
    parser.add_argument('--match-class', action='store_true',
                        help='P.A. rule also requires the class (default: the paper\'s class-agnostic rule)')
    parser.add_argument('--curve-points', type=int, default=4,
                        help='trainability: validations along each run, for best against best')
    parser.add_argument('--oracle-epochs', type=int, default=32,
                        help='box repair: epochs of the oracle detector that relabels (D trains --detector-epochs)')
    args = parser.parse_args()
    if not 0 < args.fidelity_layouts <= args.recall_layouts <= args.num_val:
        parser.error('the recall layouts hold the fidelity layouts (their hard and easy YOLO scores are taken there): '
                     f'need 0 < --fidelity-layouts <= --recall-layouts <= --num-val, got {args.fidelity_layouts}, '
                     f'{args.recall_layouts}, {args.num_val}')
    return args


def generate_sets(args: argparse.Namespace, export_dir: str, val_layouts: str, recall_layouts: str,
                  train_layouts: str, out_root: str) -> Dict[str, str]:
    """Every synthetic set of the demo, ``{name: folder}``: ``val_original_s{first seed}`` and ``base_original`` (the
    toy base) from the fidelity layouts, ``recall_{mode}_s{seed}`` from the recall layouts (hard and easy, every
    seed; the fidelity layouts come first in them), and ``train_{mode}`` from the training layouts (first seed).
    The recall and training sets sample with ``--attribute-guidance-scale``, every mode alike; the fidelity and
    box-repair sets as the paper does, without it."""
    pipe = DetDiffusionPipeline.from_pretrained(export_dir)
    identity = generator_identity(export_dir)
    first = args.seeds[0]
    name = val_set(MODE_ORIGINAL, first)
    folders = {name: generate_set(pipe, identity, val_layouts, MODE_ORIGINAL, first,
                                  os.path.join(out_root, name) + '/', args.steps, args.guidance_scale)}
    for seed in args.seeds:
        for mode in (HARD, EASY):
            name = val_set(mode, seed)
            folders[name] = generate_set(pipe, identity, recall_layouts, mode, seed,
                                         os.path.join(out_root, name) + '/', args.steps, args.guidance_scale,
                                         attribute_guidance_scale=args.attribute_guidance_scale)
    for mode in args.trainability_modes:
        name = f'train_{mode}'
        folders[name] = generate_set(pipe, identity, train_layouts, mode, first, os.path.join(out_root, name) + '/',
                                     args.steps, args.guidance_scale,
                                     attribute_guidance_scale=args.attribute_guidance_scale)
    base = base_pipeline(args.generator_config, args.seed)
    folders['base_original'] = generate_set(base, 'toy base (projects/toy_shapes/assets/toy_shapes_base)',
                                            val_layouts, MODE_ORIGINAL,
                                            first, os.path.join(out_root, 'base_original') + '/', args.steps,
                                            args.guidance_scale)
    return folders


def loaded_set(folder: str) -> Tuple[dict, str]:
    """``(COCO dict, image folder)`` of a synthetic set."""
    ann_file, img_prefix = coco_set(folder)
    return load_coco(ann_file), img_prefix


def fidelity_set(args: argparse.Namespace, folders: Dict[str, str], mode: str, val_layouts: str, work_dir: str
                 ) -> Tuple[str, str]:
    """``(annotation file, image folder)`` of the first seed's ``mode`` generations of the fidelity layouts
    ``val_layouts``: the images of a recall set whose source image is one of theirs."""
    ann_file, img_prefix = coco_set(folders[val_set(mode, args.seeds[0])])
    coco = load_coco(ann_file)
    sources = {image['id'] for image in load_coco(val_layouts)['images']}
    images = [image for image in coco['images'] if image[RECORD_KEY]['source_image_id'] in sources]
    return write_images(coco, images, os.path.join(work_dir, f'{mode}_layouts.json')), img_prefix


def yolo_scores(args: argparse.Namespace, detector: Runner, data_root: str, val_layouts: str,
                folders: Dict[str, str], work_dir: str) -> Dict[str, dict]:
    """YOLO score of D on the real validation images of the fidelity layouts and on their generations (fine-tuned:
    original, hard, easy; the toy base: original)."""
    checkpoint = final_checkpoint(detector)
    sets = {'real': (val_layouts, data_root + 'images'),
            MODE_ORIGINAL: coco_set(folders[val_set(MODE_ORIGINAL, args.seeds[0])]),
            **{mode: fidelity_set(args, folders, mode, val_layouts, work_dir) for mode in (HARD, EASY)},
            'base (original)': coco_set(folders['base_original'])}
    return {name: evaluate_yolo_score(detector.cfg, checkpoint, ann_file, img_prefix,
                                      os.path.join(work_dir, name.split()[0]))
            for name, (ann_file, img_prefix) in sets.items()}


def box_repair(args: argparse.Namespace, detector: Runner, data_root: str, val_layouts: str, export_dir: str,
               folders: Dict[str, str], real_ap75: float, work_dir: str) -> Dict[str, dict]:
    """Box repair of the original-mode generations of the fidelity layouts (first seed):
    :func:`~projects.toy_shapes.toy_shapes.box_repair_measure.measure_box_repair`, the oracle trained with seed + 1."""
    first = args.seeds[0]
    return measure_box_repair(detector, data_root, val_layouts, export_dir, folders[val_set(MODE_ORIGINAL, first)],
                              real_ap75, work_dir, generation_seed=first, oracle_seed=args.seed + 1,
                              oracle_epochs=args.oracle_epochs, steps=args.steps, guidance_scale=args.guidance_scale,
                              score_thr=args.score_thr)


def recall_per_seed(args: argparse.Namespace, detector: Runner, folders: Dict[str, str]) -> Dict[int, PairedRecall]:
    """Per generation seed, D's recall under the P.A. rule on the hard and the easy generations of the recall
    layouts, box by box (same layouts and seed in both sets: only the attribute tokens differ)."""
    labeler = detector_labeler(detector, args.score_thr, args.iou_thr, args.match_class)
    return {seed: hard_vs_easy_recall(labeler, folders[val_set(HARD, seed)], folders[val_set(EASY, seed)])
            for seed in args.seeds}


def box_contrasts(coco: dict, img_prefix: str) -> Dict[int, float]:
    """Annotation id -> contrast of its object in its image (:func:`object_contrast`)."""
    contrasts = {}
    by_image = annotations_by_image(coco)
    for image in coco['images']:
        pixels = cv2.imread(os.path.join(img_prefix, image['file_name']))[:, :, ::-1]
        boxes = [xywh_to_xyxy(ann['bbox']) for ann in by_image[image['id']]]
        for i, ann in enumerate(by_image[image['id']]):
            contrasts[ann['id']] = object_contrast(pixels, boxes[i], boxes[:i] + boxes[i + 1:])
    return contrasts


def contrast_gaps(attr_file: str, data_root: str, folders: Dict[str, str], seed: int) -> Dict[str, float]:
    """Mean contrast of easy minus hard objects: in the real training images (D's labels), and in the easy
    minus the hard generations of the same (recall) layouts and seed."""
    real = load_coco(attr_file)
    real_contrast = box_contrasts(real, data_root + 'images')
    by_attr = {attr: [real_contrast[a['id']] for a in real['annotations'] if a[ATTR_KEY] == attr]
               for attr in ATTRIBUTES}
    generated = {}
    for mode in ATTRIBUTES:
        folder = folders[val_set(mode, seed)]
        generated[mode] = float(np.nanmean(list(box_contrasts(*loaded_set(folder)).values())))
    real_easy, real_hard = float(np.nanmean(by_attr[EASY])), float(np.nanmean(by_attr[HARD]))
    return dict(real_easy=real_easy, real_hard=real_hard, real_gap=real_easy - real_hard,
                generated_easy=generated[EASY], generated_hard=generated[HARD],
                generated_gap=generated[EASY] - generated[HARD])


def trainability(args: argparse.Namespace, data_root: str, folders: Dict[str, str], work_dir: str
                 ) -> Dict[str, Dict[str, dict]]:
    """The trainability protocol: real only, real + each training-layout synthetic set, real only for the
    same epochs; every seed of ``args.seeds``; D's mAP on the real validation set, ``--curve-points`` times along each
    run. ``{'final': the protocol at the end of the schedule, 'best': best against best}``
    (:func:`protocol_report`, :func:`curve_report`)."""
    cfg = detector_config(data_root, args.trainability_epochs)
    cfg.default_hooks.logger.interval = 50
    synthetic = {mode: synthetic_dataset(folders[f'train_{mode}']) for mode in args.trainability_modes}
    sizes = {mode: len(load_coco(folders[f'train_{mode}'] + ANNOTATION_FILE)['images'])
             for mode in args.trainability_modes}
    num_real = len(load_coco(data_root + 'annotations/train.json')['images'])
    arms = plan_arms(num_real, synthetic, sizes, args.trainability_epochs, cfg.train_dataloader.batch_size)

    def progress(arm: Arm, seed: int, curve: List[dict]) -> None:
        print(f'trainability: {arm.name}, seed {seed}, {arm.max_iters} iterations: val mAP '
              f'{curve[-1]["metrics"].get(MAP_KEY, 0.0):.3f} (best {best_point(curve, MAP_KEY)[0]:.3f})', flush=True)

    curves = run_arms(cfg, arms, args.seeds, work_dir, train_curve, progress, args.trainability_workers,
                      val_interval=math.ceil(arms[0].max_iters / args.curve_points))
    return dict(final=protocol_report(final_values(curves, MAP_KEY), arms),
                best=curve_report(curves, arms, MAP_KEY, cfg.train_dataloader.batch_size))


def comparison_grid(rows: Sequence[tuple], out_path: str, count: int = 6) -> None:
    """One row of ``count`` images per ``(coco, img_prefix)`` with their boxes drawn (green easy, red hard)."""
    tiles = []
    columns = min(count, *(len(coco['images']) for coco, _ in rows))
    for coco, img_prefix in rows:
        names = {cat['id']: cat['name'] for cat in coco['categories']}
        by_image = annotations_by_image(coco)
        tiles += [draw_annotated(os.path.join(img_prefix, image['file_name']), by_image[image['id']], names,
                                 size=128) for image in coco['images'][:columns]]
    save_image(out_path, tile_grid(tiles, columns=columns))


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)
    work_dir, data_root, attr_file = loop_paths(args.work_dir)
    val_layouts = os.path.join(work_dir, 'attributes', 'val_layouts_pa_attr.json')  # the fidelity layouts
    recall_layouts = os.path.join(work_dir, 'attributes', 'recall_layouts_pa_attr.json')
    generator_dir = os.path.join(work_dir, 'generator')
    steps = Steps(total=10)

    steps.run('dataset', 'toy shapes dataset', make_shapes_data, data_root, args.num_train, args.num_val, args.seed,
              args.colours)
    detector = steps.run('detector', 'train the tiny detector D on real data', train_detector, data_root,
                         os.path.join(work_dir, 'detector'), args.detector_epochs, args.seed)
    rule = dict(score_thr=args.score_thr, iou_thr=args.iou_thr, match_class=args.match_class)
    labelled = steps.run('labeling', 'label easy/hard attributes of the training and validation boxes with D',
                         label_boxes, detector, data_root + 'annotations/train.json', data_root + 'images', attr_file,
                         **rule)
    for count, layouts in ((args.fidelity_layouts, val_layouts), (args.recall_layouts, recall_layouts)):
        first_val = first_images(data_root + 'annotations/val.json', count, layouts.replace('_pa_attr', ''))
        label_boxes(detector, first_val, data_root + 'images', layouts, **rule)
    steps.run('generator', f'fine-tune the toy generator ({os.path.basename(args.generator_config)}) on the '
              'labelled set', finetune_generator, data_root, attr_file, generator_dir, args.generator_epochs,
              args.seed, args.generator_config)
    train_layouts = first_images(attr_file, args.synthetic_layouts,
                                 os.path.join(work_dir, 'attributes', 'train_layouts_pa_attr.json'))
    folders = steps.run('generation', f'generate from {args.fidelity_layouts} (fidelity) and {args.recall_layouts} '
                        f'(recall) validation layouts and {args.synthetic_layouts} training layouts', generate_sets,
                        args, os.path.join(generator_dir, 'export'), val_layouts, recall_layouts, train_layouts,
                        os.path.join(work_dir, 'data'))
    scores = steps.run('yolo_score', 'YOLO score: D on generated images vs their (validation) layouts', yolo_scores,
                       args, detector, data_root, val_layouts, folders, os.path.join(work_dir, 'yolo_score'))
    repair = steps.run('box_repair', 'box repair: layout, perception-head and oracle-detector labels against the drawn '
                       'boxes', box_repair, args, detector, data_root, val_layouts,
                       os.path.join(generator_dir, 'export'), folders, scores['real']['AP75'],
                       os.path.join(work_dir, 'box_repair'))
    recall = steps.run('recall', 'recall of D on hard vs easy generations, box by box, per seed',
                       recall_per_seed, args, detector, folders)
    contrast = contrast_gaps(attr_file, data_root, folders, args.seeds[0])
    train_reports = steps.run('trainability', 'trainability protocol: iteration-matched arms x seeds', trainability,
                              args, data_root, folders, os.path.join(work_dir, 'trainability'))
    steps.run('report', 'report', write_report, args, work_dir, labelled, attr_file, data_root, val_layouts, folders,
              scores, repair, recall, contrast, train_reports, steps.seconds)


def mean_by_attribute(coco: dict, field: str) -> Dict[str, float]:
    """Mean of an annotation field (e.g. ``'contrast'`` of ``'by_class'`` shapes, ``'area'`` in pixels) over
    the boxes labelled easy and over those labelled hard."""
    values: Dict[str, List[float]] = {attr: [] for attr in ATTRIBUTES}
    for ann in coco['annotations']:
        if field in ann:
            values[ann[ATTR_KEY]].append(ann[field])
    return {attr: sum(v) / len(v) for attr, v in values.items() if v}


def fidelity_section(scores: Dict[str, dict]) -> List[str]:
    """Claim 1 of the report: the YOLO scores and their verdicts."""
    real = scores['real']
    ratios = {name: (claims.ratio(s['mAP'], real['mAP']), claims.ratio(s['AP50'], real['AP50']))
              for name, s in scores.items()}
    fidelity = claims.fidelity(*ratios[MODE_ORIGINAL])
    hard_lower = claims.hard_map_lower(scores[HARD]['mAP'], scores[EASY]['mAP'])
    return [
        '## 1. Fidelity on unseen layouts: YOLO score (step: yolo_score)', '',
        markdown_table(FIDELITY_COLUMNS, fidelity_rows(scores)), '',
        f'Original mode vs real: mAP {ratios[MODE_ORIGINAL][0]:.2f}x, AP50 {ratios[MODE_ORIGINAL][1]:.2f}x '
        f'(target {fidelity.target}): {verdict_cell(fidelity)}. The toy base: mAP {ratios["base (original)"][0]:.2f}x, '
        f'AP50 {ratios["base (original)"][1]:.2f}x. Hard is meant to score lower than easy: hard mAP '
        f'{scores[HARD]["mAP"]:.3f}, easy {scores[EASY]["mAP"]:.3f} (target {hard_lower.target}: '
        f'{verdict_cell(hard_lower)}).', '']


def box_repair_section(args: argparse.Namespace, repair: Dict[str, dict]) -> List[str]:
    """The box-repair section of the report: each label set against the drawn boxes and for D's AP75."""
    rows = [['real images, their boxes (the measure\'s own error)', '-', '-', repair['real']['measured'],
             f'{repair["real"]["median_iou_drawn"]:.3f}', '-', '-', '-', '-']]
    for method, words in (('layout', 'layout boxes'), ('head', 'perception head\'s mask boxes'),
                          ('detector', f'oracle detector ({args.oracle_epochs} epochs) relabelling'),
                          ('fused', 'mean of the head\'s and the oracle\'s boxes')):
        r = repair[method]
        verdict = claims.box_repair(r['ap75_ratio'], r['median_iou_drawn'])
        rows.append([words, r['objects'], r['ignored'], r['measured'], f'{r["median_iou_drawn"]:.3f}',
                     f'{r["median_iou_common"]:.3f}', f'{r["AP75"]:.3f}', f'{r["ap75_ratio"]:.2f}x',
                     verdict_cell(verdict)])
    return [
        '## Box repair: labels of generated images against what was drawn (step: box_repair)', '',
        f'The original-mode generations of the first {args.fidelity_layouts} validation layouts (seed '
        f'{args.seeds[0]}), labelled four ways. Ignored '
        'objects are ignore regions (`iscrowd`). The drawn box of an object is measured from its class colour around '
        'its layout box (`projects/toy_shapes/toy_shapes/drawn_boxes.py`); too faint objects are not measured. The '
        f'last IoU column takes the {repair["layout"]["common"]} objects that every set labels and the measure '
        'measures, as ignored objects may be the hard ones. D\'s AP75 is against each label set (COCO evaluation '
        'ignores detections in ignore regions, so a set with more of them is scored on fewer objects), as a share '
        f'of its AP75 on the real validation images. Target: {claims.BOX_REPAIR_TARGET}.', '',
        markdown_table(('labels', 'objects', 'ignored', 'measured', 'median IoU with drawn', 'on the common objects',
                        'D\'s AP75', 'AP75 / real', 'target'), rows), '']


def recall_section(args: argparse.Namespace, recall: Dict[int, PairedRecall], contrast: Dict[str, float]
                   ) -> List[str]:
    """Claim 2 of the report: D's recall on hard vs easy generations per seed, and the objects' contrast."""
    rows = []
    for seed, result in recall.items():
        rows.append([seed, result.pairs, f'{result.recall_a:.1%}', f'{result.recall_b:.1%}',
                     f'{result.recall_b - result.recall_a:+.1%}', result.only_b, result.only_a,
                     f'{result.p_value:.2g}', verdict_cell(claims.recall_gap(result))])
    first = args.seeds[0]
    share = claims.ratio(contrast['generated_gap'], contrast['real_gap'])
    contrast_verdict = claims.contrast(share)
    return [
        '## 2. Does "hard" make objects harder for D? (step: recall)', '',
        f'Every box of the first {args.recall_layouts} validation layouts, generated hard and easy with each seed '
        f'(attribute guidance {args.attribute_guidance_scale:g}). '
        f'A layout box is found when D predicts {"its class" if args.match_class else "a box"} there with score > '
        f'{args.score_thr} and IoU > {args.iou_thr} (the rule that labels boxes easy). Target per seed: '
        f'{claims.RECALL_TARGET}.', '',
        markdown_table(('seed', 'boxes', 'recall hard', 'recall easy', 'easy - hard', 'only easy', 'only hard',
                        'sign test p', 'target'), rows), '',
        f'Verdict for seed {first}: {claims.recall_lower(recall[first]).text}. Contrast of the objects '
        '(`evaluation/contrast.py`, the same estimator on real and generated images): real training objects easy '
        f'{contrast["real_easy"]:.3f}, hard {contrast["real_hard"]:.3f} (gap {contrast["real_gap"]:+.3f}); '
        f'generations easy {contrast["generated_easy"]:.3f}, hard {contrast["generated_hard"]:.3f} (gap '
        f'{contrast["generated_gap"]:+.3f}), {share:.0%} of the real gap (target {contrast_verdict.target}: '
        f'{verdict_cell(contrast_verdict)}).', '']


def trainability_section(args: argparse.Namespace, reports: Dict[str, Dict[str, dict]]) -> List[str]:
    """Claim 3 of the report: the trainability arms at the end of the schedule and best against best, each gain
    judged by :func:`claims.gain`."""
    train_report, best = reports['final'], reports['best']
    mode = args.trainability_modes[0]
    real_only, mode_gain = train_report[REAL_ONLY], train_report[f'real + {mode}']['gain']
    return [
        '## 3. Trainability: D on the real val set (step: trainability)', '',
        f'Every arm but the last trains {real_only["iters"]} iterations with the same schedule (the epochs of '
        'real + synthetic, in iterations); "real only, same epochs" trains as many epochs on the real images alone. '
        f'Gain: mean of the per-seed differences to "{REAL_ONLY}" {gain_rule(mode_gain)}. Seed std of real only: '
        f'{real_only["std"]:.3f}; the half-width of the real + {mode} interval, {mode_gain["half_width"]:.3f}, is '
        'the smallest gain these seeds can tell from noise.', '',
        markdown_table(('arm', 'iterations', 'val mAP mean ± std', 'per seed', 'gain over real only'),
                       protocol_rows(train_report)),
        '', '![trainability](trainability.png)', '',
        f'Best against best ({args.num_train} real images): each run is validated {args.curve_points} times along its '
        'schedule, and each arm\'s best point is compared with real only\'s best of the same seed. The best of '
        'several validations on the set it is reported on is biased upwards, for every arm. Best at iteration: per '
        'seed.', '',
        markdown_table(('arm', 'iterations', 'best val mAP mean ± std', 'per seed', 'gain over real only, best vs best',
                        'best at iteration'),
                       [row + [', '.join(map(str, best[row[0]]['best_iters']))] for row in protocol_rows(best)]),
        '']


def write_report(args: argparse.Namespace, work_dir: str, labelled: dict, attr_file: str, data_root: str,
                 val_layouts: str, folders: Dict[str, str], scores: Dict[str, dict], repair: Dict[str, dict],
                 recall: Dict[int, PairedRecall], contrast: Dict[str, float], train_reports: Dict[str, Dict[str, dict]],
                 seconds: Dict[str, float]) -> None:
    """``report.md`` (figures and the verdicts of :mod:`~mmdet_detdiffusion.evaluation.claims`), ``metrics.json``
    and the pictures."""
    first = args.seeds[0]
    command = 'python projects/toy_shapes/tools/demo.py ' + ' '.join(sys.argv[1:])
    contrast_range = f', contrast {DEMO_SHAPES["min_contrast"]}..1' if args.colours == 'by_class' else ''
    comparison_grid([(labelled, data_root + 'images')], os.path.join(work_dir, 'attributes_grid.png'), count=12)
    comparison_grid([(load_coco(val_layouts), data_root + 'images'), loaded_set(folders['base_original'])]
                    + [loaded_set(folders[val_set(mode, first)]) for mode in GENERATION_MODES],
                    os.path.join(work_dir, 'real_vs_generated.png'))
    train_report = train_reports['final']
    arms = list(train_report)
    save_bar_chart(os.path.join(work_dir, 'trainability.png'), arms, [train_report[a]['mean'] for a in arms],
                   [train_report[a]['std'] for a in arms], [train_report[a]['seeds'] for a in arms],
                   'val mAP of D', f'Trainability ({len(args.seeds)} seeds; bars: mean ± std)')
    labelled_contrast, area = (mean_by_attribute(labelled, field) for field in ('contrast', 'area'))
    num_synthetic = len(load_coco(folders[f'train_{args.trainability_modes[0]}'] + ANNOTATION_FILE)['images'])
    lines: List[str] = [
        '# DetDiffusion demo (toy shapes)', '',
        f'Made by `{command}`; every figure below comes from this run (the step that makes it is named).', '',
        '## Setup', '',
        f'- Data: shapes ({args.colours} colours; {DEMO_SHAPES["size"]} px images, objects of '
        f'{DEMO_SHAPES["min_radius"]:g} px half-size and up{contrast_range}), '
        f'{args.num_train} real training images, {args.num_val} real validation images; fidelity on the layouts of '
        f'the first {args.fidelity_layouts} validation images, recall on those of the first {args.recall_layouts}: '
        'layouts the generator never saw.',
        f'- D: the toy RetinaNet, {args.detector_epochs} epochs on the real training images (seed {args.seed}). '
        f'Attributes: gamma (score) > {args.score_thr}, beta (IoU) > {args.iou_thr}, '
        f'{"class-aware" if args.match_class else "class-agnostic (the paper)"}.',
        f'- Generator: {os.path.relpath(args.generator_config)}, {args.generator_epochs} epochs from the toy '
        f'base, training {", ".join(Config.fromfile(args.generator_config).model.get("trainable", TRAINABLE_PARTS))}; '
        f'generation with DPM-Solver++ {args.steps} steps, guidance {args.guidance_scale}; the hard and easy '
        'generations (recall) and every trainability set with attribute guidance '
        f'{args.attribute_guidance_scale:g}, an addition to the paper\'s sampler that steers each box away from its '
        'opposite attribute '
        '(`DetDiffusionPipeline.__call__`).',
        f'- Trainability: {num_synthetic} synthetic images per mode ({", ".join(args.trainability_modes)}), one for '
        f'each of the first {num_synthetic} '
        f'training layouts, beside the {args.num_train} real images; seeds '
        f'{", ".join(map(str, args.seeds))}; {args.trainability_workers} runs at once, each with '
        f'{threads_per_worker(args.trainability_workers)} of the {available_cpus()} CPU threads.', '',
        '## Easy / hard boxes of the training set (step: labeling)', '', '```', format_attribute_table(labelled),
        '```', '',
        *([f'Mean contrast of the objects (1 = the class colour itself, {DEMO_SHAPES["min_contrast"]} = '
           f'faintest): easy {labelled_contrast[EASY]:.2f}, hard {labelled_contrast[HARD]:.2f}; mean area: easy '
           f'{area[EASY]:.0f} px2, hard {area[HARD]:.0f} px2.', ''] if len(labelled_contrast) == 2 else []),
        '![training images, easy boxes green, hard boxes red](attributes_grid.png)', '',
        '## Generated images (step: generation)', '',
        'Rows: real validation images; the toy base (original attributes); the fine-tuned generator with '
        f'{", ".join(GENERATION_MODES)} attributes. Every generation of a layout has the same seed, so what differs '
        'between the last three rows comes from the attribute tokens alone.', '',
        '![real vs generated](real_vs_generated.png)', '',
        *fidelity_section(scores), *box_repair_section(args, repair), *recall_section(args, recall, contrast),
        *trainability_section(args, train_reports),
        '## Time per step of this run (s; a step reused from an earlier run takes seconds)', '',
        markdown_table(('step', 'seconds'), [(k, f'{v:.1f}') for k, v in seconds.items()])]
    path = os.path.join(work_dir, 'report.md')
    with open(path + '.tmp', 'w') as f:
        f.write('\n'.join(lines) + '\n')
    os.replace(path + '.tmp', path)
    recall_first = recall[first]
    summary = dict(
        yolo_score={name: {k: s[k] for k in ('mAP', 'AP50', 'AP75')} for name, s in scores.items()},
        hard_vs_easy_recall=dict(recall_hard=recall_first.recall_a, recall_easy=recall_first.recall_b,
                                 only_easy=recall_first.only_b, only_hard=recall_first.only_a,
                                 p_value=recall_first.p_value, pairs=recall_first.pairs,
                                 per_seed={seed: dataclasses.asdict(r) for seed, r in recall.items()}),
        box_repair={method: {k: r[k] for k in ('ap75_ratio', 'median_iou_drawn')} if method != 'real' else r
                    for method, r in repair.items()},
        contrast=contrast, attribute_guidance_scale=args.attribute_guidance_scale, trainability=train_report,
        trainability_best=train_reports['best'], command=command,
        seconds={k: round(v, 1) for k, v in seconds.items()})
    atomic_write_json(summary, os.path.join(work_dir, 'metrics.json'))
    print(f'\nreport: {path}\n' + json.dumps(summary['seconds']))


if __name__ == '__main__':
    main()
