"""End-to-end DetDiffusion demo on the toy shapes set (CPU, about 14 minutes); finished steps are reused
on a rerun.

Steps: write the shapes dataset -> train a tiny detector D on it -> label the easy/hard attribute of
every training box with D -> train the toy generator on the labelled set with P.A. attributes and loss
(fine-tuning the bundled toy base model assets/toy_shapes_base, the stand-in for Stable Diffusion; from
scratch in a checkout without it) -> generate "hard", "easy" and "original" synthetic sets from the
training layouts -> YOLO score of each (D on generated images vs their layouts; real images are the
reference) -> D's recall on the hard vs the easy generations, box by box -> train D again on real + each
synthetic set (trainability) -> ``report.md`` with the tables and image grids.

Example::

    python tools/demo.py --work-dir work_dirs/demo
"""
import argparse
import dataclasses
import json
import os
import time
from typing import Dict, List

import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmdet_detdiffusion  # noqa: F401  (registers components and the checkpoint allow-list)
from mmdet_detdiffusion.attributes.labeler import AttributeLabeler, write_labeling
from mmdet_detdiffusion.datasets.shapes import COLOUR_SCHEMES, MIN_CONTRAST, write_shapes_dataset
from mmdet_detdiffusion.evaluation.paired_recall import PairedRecall, lower_recall_verdict, paired_recall
from mmdet_detdiffusion.evaluation.report import FIDELITY_COLUMNS, fidelity_rows, markdown_table
from mmdet_detdiffusion.evaluation.yolo_score import evaluate_yolo_score
from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline, generator_identity
from mmdet_detdiffusion.layout.attribute_file import annotations_by_image, format_attribute_table, load_coco
from mmdet_detdiffusion.layout.matching import DEFAULT_IOU_THR, DEFAULT_SCORE_THR
from mmdet_detdiffusion.synthetic.manifest import ANNOTATION_FILE, IMAGES_FOLDER
from mmdet_detdiffusion.synthetic.writer import SyntheticDatasetWriter
from mmdet_detdiffusion.utils.config import set_data_root
from mmdet_detdiffusion.utils.fileio import atomic_write_json
from mmdet_detdiffusion.visualization import draw_annotated, save_image, tile_grid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DETECTOR_CONFIG = os.path.join(REPO, 'configs', 'detector', 'toy_retinanet_shapes.py')
SYNTHETIC_DETECTOR_CONFIG = os.path.join(REPO, 'configs', 'detector', 'toy_retinanet_shapes_synthetic.py')
TOY_BASE = os.path.join(REPO, 'assets', 'toy_shapes_base')
GENERATOR_CONFIGS = {True: os.path.join(REPO, 'configs', 'generator', 'toy_shapes_pixel64_finetune.py'),
                     False: os.path.join(REPO, 'configs', 'generator', 'toy_shapes_pixel64.py')}
ATTR_MODES = ('hard', 'easy', 'original')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=50)
    parser.add_argument('--colours', choices=COLOUR_SCHEMES, default='by_class',
                        help='shapes colours (by_class: as the toy base model was trained)')
    parser.add_argument('--detector-epochs', type=int, default=8)
    parser.add_argument('--generator-epochs', type=int, default=80)
    parser.add_argument('--generator-config', default=GENERATOR_CONFIGS[os.path.isdir(TOY_BASE)],
                        help='default: fine-tune the bundled toy base model, or train from scratch without one')
    parser.add_argument('--synthetic-images', type=int, default=100,
                        help='generate from the layouts of the first N training images (per attribute mode)')
    parser.add_argument('--steps', type=int, default=10, help='denoising steps (DPM-Solver++) for generation')
    parser.add_argument('--guidance-scale', type=float, default=4.0)
    parser.add_argument('--score-thr', type=float, default=DEFAULT_SCORE_THR, help='gamma')
    parser.add_argument('--iou-thr', type=float, default=DEFAULT_IOU_THR, help='beta')
    parser.add_argument('--match-class', action='store_true',
                        help='P.A. rule also requires the class (default: the paper\'s class-agnostic rule)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


class Steps:
    """Prints numbered step titles and keeps the seconds each step took."""

    def __init__(self, total: int):
        self.total, self.done, self.seconds = total, 0, {}

    def run(self, name: str, title: str, fn, *args):
        self.done += 1
        print(f'\n=== {self.done}/{self.total} {title}', flush=True)
        start = time.time()
        result = fn(*args)
        self.seconds[name] = time.time() - start
        return result


def make_data(args: argparse.Namespace, data_root: str) -> None:
    if os.path.isfile(os.path.join(data_root, 'annotations', 'val.json')):
        print(f'shapes dataset already in {data_root}')
        return
    write_shapes_dataset(data_root, args.num_train, args.num_val, seed=args.seed, colours=args.colours)


def train_detector(args: argparse.Namespace, config: str, data_root: str, work_dir: str,
                   synthetic_root: str = None) -> Runner:
    """Train (or resume, or reuse) a toy detector, validate it on the real val set; return its Runner."""
    cfg = set_data_root(Config.fromfile(config), data_root)
    if synthetic_root:
        cfg.train_dataloader.dataset.synthetic[0].data_root = synthetic_root
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


def val_map(runner: Runner) -> float:
    """COCO box mAP of the runner's model on the real val set (0 when it detects nothing)."""
    return runner.val_loop.run().get('coco/bbox_mAP', 0.0)


def attribute_labeler(args: argparse.Namespace, runner: Runner) -> AttributeLabeler:
    """The P.A. rule with the detector of ``runner``: a box is easy (found) when a prediction with score >
    gamma overlaps it with IoU > beta (and has its class, with ``--match-class``)."""
    return AttributeLabeler(runner.model, runner.cfg.test_dataloader.dataset.pipeline, args.score_thr, args.iou_thr,
                            args.match_class, batch_size=8)


def label_attributes(args: argparse.Namespace, runner: Runner, data_root: str, attr_file: str) -> dict:
    ann_file = data_root + 'annotations/train.json'
    coco = load_coco(ann_file)
    labeler = attribute_labeler(args, runner)
    return write_labeling(coco, labeler.label(coco, data_root + 'images', ann_file), attr_file, record=dict(
        detector_config=DETECTOR_CONFIG, checkpoint_sha256=None,
        weights=f'demo detector after {runner.epoch} epochs', **labeler.rule, ann_file=ann_file))


def train_generator(args: argparse.Namespace, data_root: str, attr_file: str, work_dir: str) -> None:
    """Train (or resume, or reuse) the toy generator on the labelled set; it exports to ``work_dir/export``."""
    cfg = set_data_root(Config.fromfile(args.generator_config), data_root)
    cfg.work_dir = work_dir
    cfg.train_dataloader.dataset.ann_file = attr_file
    cfg.train_cfg.max_epochs = args.generator_epochs
    cfg.param_scheduler[-1].update(end=args.generator_epochs, T_max=args.generator_epochs)
    cfg.default_hooks.checkpoint.update(interval=5, max_keep_ckpts=1)
    cfg.randomness = dict(seed=args.seed)
    cfg.resume = True
    Runner.from_cfg(cfg).train()


def first_images(attr_file: str, count: int, out_file: str) -> str:
    """Write the first ``count`` images of a COCO file with their annotations to ``out_file``: the layouts
    the synthetic sets are generated from, and the real images of the YOLO score's reference row."""
    coco = load_coco(attr_file)
    images = coco['images'][:count]
    ids = {image['id'] for image in images}
    atomic_write_json(dict(coco, images=images, annotations=[a for a in coco['annotations'] if a['image_id'] in ids]),
                      out_file)
    return out_file


def generate_sets(args: argparse.Namespace, export_dir: str, layouts_file: str, out_root: str) -> Dict[str, str]:
    """One synthetic set per attribute mode from the layouts of ``layouts_file``; returns ``{mode: folder}``."""
    pipe = DetDiffusionPipeline.from_pretrained(export_dir)
    coco = load_coco(layouts_file)
    identity = generator_identity(export_dir)
    folders = {}
    for mode in ATTR_MODES:
        folders[mode] = os.path.join(out_root, f'shapes_synthetic_{mode}') + '/'
        if os.path.isfile(os.path.join(folders[mode], ANNOTATION_FILE)):
            print(f'{mode} set already in {folders[mode]}')
            continue
        writer = SyntheticDatasetWriter(pipe, folders[mode], mode, batch_size=32, num_inference_steps=args.steps,
                                        guidance_scale=args.guidance_scale, generator_sha256=identity)
        writer.run(coco, layouts_file, seed=args.seed)  # no layout filters: the YOLO score's real row has them all
    return folders


def yolo_scores(detector: Runner, data_root: str, layouts_file: str, folders: Dict[str, str], work_dir: str
                ) -> Dict[str, dict]:
    """YOLO score of D on the real training images the layouts come from and on each synthetic set."""
    checkpoint = os.path.join(detector.work_dir, f'epoch_{detector.train_loop.max_epochs}.pth')
    sets = {'real': (layouts_file, data_root + 'images')}
    sets.update({mode: (folder + ANNOTATION_FILE, folder + IMAGES_FOLDER) for mode, folder in folders.items()})
    return {name: evaluate_yolo_score(detector.cfg, checkpoint, ann_file, img_prefix, os.path.join(work_dir, name))
            for name, (ann_file, img_prefix) in sets.items()}


def hard_vs_easy_recall(args: argparse.Namespace, detector: Runner, folders: Dict[str, str]) -> PairedRecall:
    """D's recall under the P.A. rule on the hard and on the easy generations, box by box (same layouts and
    seeds in both sets, so only the attribute tokens differ)."""
    labeler = attribute_labeler(args, detector)
    sets = {mode: load_coco(folders[mode] + ANNOTATION_FILE) for mode in ('hard', 'easy')}
    found = {mode: labeler.label(coco, folders[mode] + IMAGES_FOLDER).attributes for mode, coco in sets.items()}
    return paired_recall(sets['hard'], found['hard'], sets['easy'], found['easy'])


def trainability(args: argparse.Namespace, real_map: float, data_root: str, folders: Dict[str, str],
                 work_dir: str) -> Dict[str, float]:
    """Val mAP of D trained on real only (already known) and on real + each synthetic set."""
    maps = {'real only': real_map}
    for mode, folder in folders.items():
        runner = train_detector(args, SYNTHETIC_DETECTOR_CONFIG, data_root, os.path.join(work_dir, mode), folder)
        maps[f'real + {mode}'] = val_map(runner)
    return maps


def comparison_grid(attr_file: str, data_root: str, folders: Dict[str, str], out_path: str, count: int = 6) -> None:
    """Rows: real training images, then their hard / easy / original generations; boxes drawn
    (green easy, red hard)."""
    real = load_coco(attr_file)
    names = {cat['id']: cat['name'] for cat in real['categories']}
    rows = [(real, data_root + 'images')]
    rows += [(load_coco(folder + ANNOTATION_FILE), folder + IMAGES_FOLDER) for folder in folders.values()]
    tiles = []
    for coco, img_prefix in rows:
        by_image = annotations_by_image(coco)
        tiles += [draw_annotated(os.path.join(img_prefix, image['file_name']), by_image[image['id']], names)
                  for image in coco['images'][:count]]
    save_image(out_path, tile_grid(tiles, columns=count))


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)
    work_dir = os.path.abspath(args.work_dir)
    data_root = os.path.join(work_dir, 'data', 'shapes') + '/'
    attr_file = os.path.join(work_dir, 'attributes', 'train_pa_attr.json')
    generator_dir = os.path.join(work_dir, 'generator')
    steps = Steps(total=9)

    steps.run('dataset', 'toy shapes dataset', make_data, args, data_root)
    detector = steps.run('detector', 'train the tiny detector D on real data', train_detector, args,
                         DETECTOR_CONFIG, data_root, os.path.join(work_dir, 'detector'))
    real_map = val_map(detector)
    labelled = steps.run('labeling', 'label easy/hard attributes of the training boxes with D', label_attributes,
                         args, detector, data_root, attr_file)
    steps.run('generator', f'train the toy generator ({os.path.basename(args.generator_config)}) on the labelled set',
              train_generator, args, data_root,
              attr_file, generator_dir)
    layouts_file = first_images(attr_file, args.synthetic_images, os.path.join(work_dir, 'attributes', 'layouts.json'))
    folders = steps.run('generation', f'generate {"/".join(ATTR_MODES)} sets from {args.synthetic_images} '
                        'training layouts', generate_sets, args, os.path.join(generator_dir, 'export'), layouts_file,
                        os.path.join(work_dir, 'data'))
    scores = steps.run('yolo_score', 'YOLO score: D on generated images vs their layouts', yolo_scores, detector,
                       data_root, layouts_file, folders, os.path.join(work_dir, 'yolo_score'))
    recall = steps.run('recall', 'recall of D on hard vs easy generations, box by box', hard_vs_easy_recall,
                       args, detector, folders)
    maps = steps.run('trainability', 'trainability: D trained on real + synthetic', trainability, args, real_map,
                     data_root, folders, os.path.join(work_dir, 'trainability'))
    steps.run('report', 'report', write_report, args, work_dir, labelled, attr_file, data_root, folders, scores,
              recall, maps, steps.seconds)


def mean_by_attribute(coco: dict, field: str) -> Dict[str, float]:
    """Mean of an annotation field (e.g. ``'contrast'`` of ``'by_class'`` shapes, ``'area'`` in pixels) over
    the boxes labelled easy and over those labelled hard."""
    values: Dict[str, List[float]] = {'easy': [], 'hard': []}
    for ann in coco['annotations']:
        if field in ann:
            values[ann['pa_attr']].append(ann[field])
    return {attr: sum(v) / len(v) for attr, v in values.items() if v}


def recall_verdict(recall: PairedRecall, ratio: Dict[str, float]) -> str:
    """Whether D finds fewer objects in the "hard" generations than in the "easy" ones, whether that is more
    than chance (sign test), and whether the comparison means anything: not while generated images score
    under a tenth of the real ones."""
    if not max(ratio.values()) >= 0.1:
        return 'not comparable yet: the generator does not follow its layouts, so both recalls are chance'
    return lower_recall_verdict(recall)


def write_report(args: argparse.Namespace, work_dir: str, labelled: dict, attr_file: str, data_root: str,
                 folders: Dict[str, str], scores: Dict[str, dict], recall: PairedRecall, maps: Dict[str, float],
                 seconds: Dict[str, float]) -> None:
    comparison_grid(attr_file, data_root, {}, os.path.join(work_dir, 'attributes_grid.png'), count=12)
    comparison_grid(attr_file, data_root, folders, os.path.join(work_dir, 'real_vs_generated.png'))
    ratio = {mode: scores[mode]['mAP'] / scores['real']['mAP'] if scores['real']['mAP'] else float('nan')
             for mode in ATTR_MODES}
    contrast, area = (mean_by_attribute(load_coco(attr_file), field) for field in ('contrast', 'area'))
    lines: List[str] = [
        '# DetDiffusion demo (toy shapes)', '',
        f'Shapes set: {args.num_train} training images, colours {args.colours}. '
        f'Attributes: gamma (score) > {args.score_thr}, beta (IoU) > {args.iou_thr}, '
        f'{"class-aware" if args.match_class else "class-agnostic (the paper)"}; detector D trained '
        f'{args.detector_epochs} epochs on {args.num_train} images; generator: '
        f'{os.path.relpath(args.generator_config, REPO)}, {args.generator_epochs} epochs; '
        f'generation: the layouts of the first {args.synthetic_images} training images, DPM-Solver++ {args.steps} '
        f'steps, guidance {args.guidance_scale}.', '',
        '## Easy / hard boxes of the training set (labelled by D)', '', '```', format_attribute_table(labelled),
        '```', '',
        *([f'Mean contrast of the objects (1 = the class colour itself, {MIN_CONTRAST} = faintest): easy '
           f'{contrast["easy"]:.2f}, hard {contrast["hard"]:.2f}; mean area: easy {area["easy"]:.0f} px2, hard '
           f'{area["hard"]:.0f} px2. The box alone does not say how faint an object is; the attribute does.', '']
          if len(contrast) == 2 else []),
        '![training images, easy boxes green, hard boxes red](attributes_grid.png)', '',
        '## Generated images', '',
        f'Rows: real training images, then generations of their layouts with {", ".join(ATTR_MODES)} '
        'attributes (boxes: green easy, red hard). Each image has the same seed in every mode, so what differs '
        'between the rows comes from the attribute tokens alone.', '',
        '![real vs generated](real_vs_generated.png)', '',
        '## Fidelity: YOLO score (D on the images vs their layouts)', '',
        markdown_table(FIDELITY_COLUMNS, fidelity_rows(scores)), '',
        f'Generated / real mAP: {", ".join(f"{m} {r:.2f}" for m, r in ratio.items())} (target >= 0.8). '
        'FID: run tools/evaluate_fidelity.py with --inception (weights are not bundled).', '',
        '## Recall of D on hard vs easy generations', '',
        f'A layout box is found when D predicts {"its class" if args.match_class else "a box"} there with score > '
        f'{args.score_thr} and IoU > {args.iou_thr} (the rule that labels boxes easy). Of the {recall.pairs} layout boxes, D finds '
        f'{recall.recall_a:.1%} in the hard generations and {recall.recall_b:.1%} in the easy ones; '
        f'{recall.only_b} are found only in the easy image, {recall.only_a} only in the hard one (sign test on '
        f'these: p = {recall.p_value:.2g}). Recall on hard generations: {recall_verdict(recall, ratio)}.', '',
        '## Trainability: D on the real val set', '',
        markdown_table(('training data', 'val mAP'), [(name, f'{value:.3f}') for name, value in maps.items()]), '',
        '## Time per step (s)', '', markdown_table(('step', 'seconds'), [(k, f'{v:.1f}') for k, v in seconds.items()])]
    path = os.path.join(work_dir, 'report.md')
    with open(path + '.tmp', 'w') as f:
        f.write('\n'.join(lines) + '\n')
    os.replace(path + '.tmp', path)
    summary = dict(yolo_score=scores, hard_vs_easy_recall=dataclasses.asdict(recall), trainability=maps,
                   seconds={k: round(v, 1) for k, v in seconds.items()})
    with open(os.path.join(work_dir, 'metrics.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    print(f'\nreport: {path}\n' + json.dumps(summary['seconds']))


if __name__ == '__main__':
    main()
