"""Steps of the DetDiffusion loop on the toy shapes set, shared by the project's ``tools/demo.py`` and
``tools/study.py``.

Each step reuses what an earlier, interrupted run finished (a dataset, a checkpoint, a synthetic set), so a
rerun of a tool continues where it stopped. The configs are the project's (``projects/toy_shapes/configs``).
"""
import argparse
import os
import shutil
import time
from typing import Callable, List, Mapping, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmdet_detdiffusion.attributes.labeler import AttributeLabeler, labeling_record, write_labeling
from mmdet_detdiffusion.evaluation.paired_recall import PairedRecall, paired_recall
from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline
from mmdet_detdiffusion.hooks.val_curve_hook import CURVE_FILE, load_curve
from mmdet_detdiffusion.layout.attribute_file import load_coco
from mmdet_detdiffusion.layout.attributes import MODE_ORIGINAL, RECORD_KEY
from mmdet_detdiffusion.layout.matching import DEFAULT_IOU_THR, DEFAULT_SCORE_THR
from mmdet_detdiffusion.synthetic.manifest import ANNOTATION_FILE, IMAGES_FOLDER
from mmdet_detdiffusion.synthetic.writer import SyntheticDatasetWriter
from mmdet_detdiffusion.utils.config import set_data_root, set_max_epochs
from mmdet_detdiffusion.utils.fileio import atomic_write_json
from mmdet_detdiffusion.utils.quiet import QuietRunner
from projects.toy_shapes.toy_shapes.shapes import DEMO_SHAPES, write_shapes_dataset

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DETECTOR_CONFIG = os.path.join(PROJECT, 'configs', 'detector', 'retinanet_r18-w16_fpn_1xb8-12e_shapes.py')
MAP_KEY = 'coco/bbox_mAP'  # the val metric the toy loop reports
TRAIN_ANN = 'annotations/train.json'  # the real training set, relative to the data root
GENERATOR_CONFIG = os.path.join(PROJECT, 'configs', 'generator', 'detdiffusion_toy-base_1xb16-30e_shapes-64x64.py')


def toy_loop_parser(description: str, work_dir: str) -> argparse.ArgumentParser:
    """The settings every run of the toy loop has (sizes, D, the generator, generation, trainability, seeds);
    a tool adds its own."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--work-dir', default=work_dir)
    parser.add_argument('--num-train', type=int, default=200, help='real training images')
    parser.add_argument('--num-val', type=int, default=300, help='real validation images (D\'s mAP)')
    parser.add_argument('--detector-epochs', type=int, default=8, help='epochs of D, the detector that labels')
    parser.add_argument('--generator-epochs', type=int, default=30, help='fine-tuning epochs of the toy base')
    parser.add_argument('--steps', type=int, default=10, help='denoising steps (DPM-Solver++) for generation')
    parser.add_argument('--guidance-scale', type=float, default=7.5,
                        help="classifier-free guidance scale (diffusers' default)")
    parser.add_argument('--trainability-epochs', type=int, default=16,
                        help='epochs of real + the largest synthetic set; every trainability arm gets its iterations')
    parser.add_argument('--trainability-workers', type=int, default=2,
                        help='trainability runs at once, sharing the CPU threads (evaluation/trainability.run_arms)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='detector seeds of every trainability arm (the demo: also its recall test\'s '
                             'generation seeds)')
    parser.add_argument('--seed', type=int, default=0, help='dataset, D, generator and generation seed')
    return parser


def loop_paths(work_dir: str) -> Tuple[str, str, str]:
    """``(work dir, shapes data root, attribute file of the training boxes)`` of a toy-loop run, absolute."""
    work_dir = os.path.abspath(work_dir)
    return (work_dir, os.path.join(work_dir, 'data', 'shapes') + '/',
            os.path.join(work_dir, 'attributes', 'train_pa_attr.json'))


class Steps:
    """Prints numbered step titles and keeps the seconds each step took."""

    def __init__(self, total: int):
        self.total, self.done, self.seconds = total, 0, {}

    def run(self, name: str, title: str, fn: Callable, *args, **kwargs):
        self.done += 1
        print(f'\n=== {self.done}/{self.total} {title}', flush=True)
        start = time.time()
        result = fn(*args, **kwargs)
        self.seconds[name] = time.time() - start
        return result


def check_reusable(recorded: Mapping, expected: Mapping, what: str) -> None:
    """Refuse to reuse ``what`` (a file or folder of an earlier run) when the settings it ``recorded`` differ
    from this run's ``expected`` ones: a report would otherwise describe data it was not made from."""
    differ = {key: (recorded.get(key), value) for key, value in expected.items() if recorded.get(key) != value}
    if differ:
        settings = ', '.join(f'{key} {old!r} (now {new!r})' for key, (old, new) in differ.items())
        raise ValueError(f'{what} was made by an earlier run with other settings: {settings}; '
                         'use a new --work-dir, or delete it')


def make_shapes_data(data_root: str, num_train: int, num_val: int, seed: int, colours: str,
                     train_class_weights: Optional[Sequence[float]] = None) -> None:
    """The toy loop's shapes data in ``data_root``: ``DEMO_SHAPES`` in ``colours``, with optional train class
    weights (kept when it is already there with the same recipe)."""
    recipe = dict(DEMO_SHAPES, colours=colours)
    val_file = os.path.join(data_root, 'annotations', 'val.json')
    if os.path.isfile(val_file):
        check_reusable(load_coco(val_file)['info'], dict(recipe, seed=seed), val_file)
        print(f'shapes dataset already in {data_root}')
        return
    write_shapes_dataset(data_root, num_train, num_val, seed=seed, train_class_weights=train_class_weights, **recipe)


def detector_config(data_root: str, epochs: int, config: str = DETECTOR_CONFIG,
                    train_ann: str = TRAIN_ANN) -> Config:
    """The toy detector config on ``data_root`` with an ``epochs``-long schedule, trained on ``train_ann``
    (relative to ``data_root``: the training set or a subset of it)."""
    cfg = set_max_epochs(set_data_root(Config.fromfile(config), data_root), epochs)
    cfg.train_dataloader.dataset.ann_file = train_ann
    return cfg


def train_detector(data_root: str, work_dir: str, epochs: int, seed: int, config: str = DETECTOR_CONFIG,
                   train_ann: str = TRAIN_ANN) -> Runner:
    """Train (or resume, or reuse) a toy detector on the real images of ``train_ann``; return its Runner."""
    cfg = detector_config(data_root, epochs, config, train_ann)
    cfg.work_dir = work_dir
    cfg.default_hooks.checkpoint.update(interval=4, max_keep_ckpts=1, save_last=True)
    cfg.randomness = dict(seed=seed)
    cfg.resume = True  # continues from the last checkpoint of an interrupted run
    runner = Runner.from_cfg(cfg)
    runner.train()  # returns at once when the last checkpoint is already at max_epochs
    return runner


def final_checkpoint(runner: Runner) -> str:
    """The checkpoint :func:`train_detector` ends with."""
    return os.path.join(runner.work_dir, f'epoch_{runner.train_loop.max_epochs}.pth')


def detector_labeler(runner: Runner, score_thr: float = DEFAULT_SCORE_THR, iou_thr: float = DEFAULT_IOU_THR,
                     match_class: bool = False) -> AttributeLabeler:
    """The P.A. rule with the toy detector of ``runner`` (its test pipeline), 8 images a batch: a box is easy (found)
    when a prediction with score > ``score_thr`` overlaps it with IoU > ``iou_thr`` (and has its class, with
    ``match_class``)."""
    return AttributeLabeler(runner.model, runner.cfg.test_dataloader.dataset.pipeline, score_thr, iou_thr,
                            match_class, batch_size=8)


def label_boxes(runner: Runner, ann_file: str, img_prefix: str, attr_file: str, score_thr: float = DEFAULT_SCORE_THR,
                iou_thr: float = DEFAULT_IOU_THR, match_class: bool = False) -> dict:
    """Write ``attr_file``: ``ann_file`` with the runner's detector's easy/hard label on every box (the P.A.
    rule, :mod:`~mmdet_detdiffusion.layout.matching`); return the labelled COCO dict (reused when written with the
    same rule, detector epochs and images)."""
    weights = f'toy detector after {runner.epoch} epochs'
    coco = load_coco(ann_file)
    if os.path.isfile(attr_file):
        labelled = load_coco(attr_file)
        check_reusable(dict(labelled[RECORD_KEY], images=len(labelled['images'])),
                       dict(score_thr=score_thr, iou_thr=iou_thr, match_class=match_class, weights=weights,
                            images=len(coco['images'])), attr_file)
        ids, labelled_ids = ({image['id'] for image in c['images']} for c in (coco, labelled))
        if ids != labelled_ids:
            raise ValueError(f'{attr_file} labels other images than {ann_file}: {len(labelled_ids - ids)} of its '
                             f'image ids are not in it; use a new --work-dir, or delete it')
        return labelled
    labeler = detector_labeler(runner, score_thr, iou_thr, match_class)
    return write_labeling(coco, labeler.label(coco, img_prefix, ann_file), attr_file,
                          record=labeling_record(labeler, runner.cfg.filename, ann_file, weights=weights))


def finetune_generator(data_root: str, attr_file: str, work_dir: str, epochs: int, seed: int,
                       config: str = GENERATOR_CONFIG) -> str:
    """Fine-tune (or resume, or reuse) the toy generator on the labelled set; return its export folder."""
    cfg = set_max_epochs(set_data_root(Config.fromfile(config), data_root), epochs)
    cfg.work_dir = work_dir
    cfg.train_dataloader.dataset.ann_file = attr_file
    cfg.default_hooks.checkpoint.update(interval=5, max_keep_ckpts=1)
    cfg.randomness = dict(seed=seed)
    cfg.resume = True
    Runner.from_cfg(cfg).train()
    return os.path.join(work_dir, 'export')


def base_pipeline(config: str = GENERATOR_CONFIG, seed: int = 0, base_dir: Optional[str] = None,
                  classes: Optional[Sequence[str]] = None) -> DetDiffusionPipeline:
    """The toy base a fine-tuning ``config`` starts from, as a pipeline: the config's model before any step,
    without its attribute tokens' initializer (``slot_token_init``), so the base draws its own slot rows.
    ``base_dir`` replaces the config's base folder (``unet/``, ``text_encoder/``), ``classes`` its classes."""
    from mmdet.registry import MODELS
    cfg = Config.fromfile(config)
    cfg.model.pop('slot_token_init', None)
    if base_dir is not None:
        cfg.model.unet.from_pretrained = os.path.join(base_dir, 'unet')
        cfg.model.text_encoder.from_pretrained = os.path.join(base_dir, 'text_encoder')
    if classes is not None:
        cfg.model.classes = list(classes)
    torch.manual_seed(seed)
    return MODELS.build(cfg.model).eval().as_pipeline()


def write_images(coco: dict, images: Sequence[dict], out_file: str) -> str:
    """Write ``images`` of the COCO dict ``coco`` with their annotations to ``out_file``; return its path."""
    ids = {image['id'] for image in images}
    atomic_write_json(dict(coco, images=list(images),
                           annotations=[a for a in coco['annotations'] if a['image_id'] in ids]), out_file)
    return out_file


def first_images(coco_file: str, count: int, out_file: str) -> str:
    """Write the first ``count`` images of a COCO file with their annotations to ``out_file``."""
    coco = load_coco(coco_file)
    return write_images(coco, coco['images'][:count], out_file)


def generate_set(pipe: DetDiffusionPipeline, identity: str, layouts_file: str, mode: str, seed: int, folder: str,
                 steps: int, guidance_scale: float, layout_options: Optional[dict] = None,
                 box_source: str = 'layout', num_per_image: int = 1, box_repair: Optional[dict] = None,
                 attribute_guidance_scale: float = 0.0) -> str:
    """A synthetic set of ``layouts_file`` in attribute ``mode`` with generation ``seed`` in ``folder``
    (reused when done), ``num_per_image`` images per layout; ``layout_options``: new layouts
    (:func:`~mmdet_detdiffusion.synthetic.plan.plan_items`); ``box_source`` and ``box_repair``: the labels
    (:class:`~mmdet_detdiffusion.synthetic.writer.SyntheticDatasetWriter`); ``attribute_guidance_scale``: the
    pipeline's; no layout filters: every box is generated."""
    ann_file = os.path.join(folder, ANNOTATION_FILE)
    if os.path.isfile(ann_file):
        expected = dict(attr_mode=mode, seed=seed, num_inference_steps=steps, guidance_scale=guidance_scale,
                        attribute_guidance_scale=attribute_guidance_scale, box_source=box_source,
                        num_per_image=num_per_image)
        # sets written before a setting was recorded were made with its default
        check_reusable({'box_source': 'layout', 'num_per_image': 1, 'attribute_guidance_scale': 0.0,
                        **load_coco(ann_file)[RECORD_KEY]}, expected, ann_file)
        print(f'{os.path.basename(folder.rstrip("/"))} set already in {folder}')
    else:
        writer = SyntheticDatasetWriter(pipe, folder, mode, batch_size=32, num_inference_steps=steps,
                                        guidance_scale=guidance_scale,
                                        attribute_guidance_scale=attribute_guidance_scale, generator_sha256=identity,
                                        box_source=box_source, box_repair=box_repair)
        writer.run(load_coco(layouts_file), layouts_file, num_per_image, seed=seed, layout_options=layout_options)
    return folder


def val_set(mode: str, seed: int) -> str:
    """The name of the synthetic set of ``mode`` generations of validation layouts with ``seed``: original mode from
    the fidelity layouts (``val_``), hard and easy from the recall layouts (``recall_``)."""
    return f'val_{mode}_s{seed}' if mode == MODE_ORIGINAL else f'recall_{mode}_s{seed}'


def hard_vs_easy_recall(labeler: AttributeLabeler, hard_folder: str, easy_folder: str) -> PairedRecall:
    """D's recall under the P.A. rule of ``labeler`` on two synthetic sets of the same layouts and seed, generated
    hard and easy, box by box (:func:`~mmdet_detdiffusion.evaluation.paired_recall.paired_recall`)."""
    sets = {folder: load_coco(os.path.join(folder, ANNOTATION_FILE)) for folder in (hard_folder, easy_folder)}
    found = {folder: labeler.label(coco, os.path.join(folder, IMAGES_FOLDER), progress=False).attributes
             for folder, coco in sets.items()}
    return paired_recall(sets[hard_folder], found[hard_folder], sets[easy_folder], found[easy_folder])


def coco_set(folder: str, ann_file: str = ANNOTATION_FILE) -> Tuple[str, str]:
    """``(annotation file, image folder)`` of a synthetic set."""
    return os.path.join(folder, ann_file), os.path.join(folder, IMAGES_FOLDER)


def synthetic_dataset(folder: str, ann_file: str = ANNOTATION_FILE) -> dict:
    """The mmdet dataset config of a synthetic set."""
    return dict(type='CocoDataset', data_root=folder, ann_file=ann_file, data_prefix=dict(img=IMAGES_FOLDER + '/'))


def train_curve(arm_cfg: Config) -> List[dict]:
    """Train one arm with validations along the way (``arm_config(..., val_interval)``; resuming an interrupted
    run) and return its learning curve, ``ValCurveHook``'s points; a finished run's curve is read back."""
    path = os.path.join(arm_cfg.work_dir, CURVE_FILE)
    interval, max_iters = arm_cfg.train_cfg.val_interval, arm_cfg.train_cfg.max_iters
    expected = sorted({*range(interval, max_iters, interval), max_iters})  # the loop also validates at the end
    curve = load_curve(path) if os.path.isfile(path) else []
    if [point['iter'] for point in curve] == expected:
        return curve
    arm_cfg.resume = True
    QuietRunner.from_cfg(arm_cfg).train()
    curve = load_curve(path)
    if [point['iter'] for point in curve] != expected:
        # stopped during a validation: the checkpoint of that iteration exists, its point does not, and resuming
        # never redoes it; train the run again from the start
        shutil.rmtree(arm_cfg.work_dir)
        arm_cfg.resume = False
        QuietRunner.from_cfg(arm_cfg).train()
        curve = load_curve(path)
    return curve
