"""Helpers for tests that build and train tiny detectors on the shapes data.

The data and the detector configs are ``projects/toy_shapes``' files; the core suite reads them without importing
the toy package (whose import registers its own attribute values), so the shapes writer is loaded from its file.
"""
import importlib.util
import os
import re
import subprocess
import sys
from functools import lru_cache
from types import ModuleType
from typing import Tuple

import pytest
from mmengine.config import Config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT = os.path.join(REPO, 'projects', 'toy_shapes')
DETECTOR_CONFIGS = os.path.join(PROJECT, 'configs', 'detector')
# the core tests' own configs (the library alone): a tiny generator, and the shapes RetinaNet with online generation
TINY_GENERATOR_CONFIG = os.path.join(REPO, 'tests', 'configs', 'tiny_generator.py')
ONLINE_DETECTOR_CONFIG = os.path.join(REPO, 'tests', 'configs', 'online_detector.py')
SHAPES_SIZE = 128
CLASSES = ('circle', 'square', 'triangle')  # the shapes set's
# mmdet's config names, {algorithm}_{model components}_{gpus}xb{batch}[-...]-{schedule}_{data}.py: e.g.
# retinanet_r50_fpn_8xb2-1x_coco.py
MMDET_CONFIG_NAME = re.compile(r'[a-z0-9-]+(_[a-z0-9-]+)+_\d+xb\d+(-[a-z0-9]+)*-(\d+x|\d+e|\d+iters)_[a-z0-9-]+\.py')


@lru_cache(maxsize=None)
def shapes_data() -> ModuleType:
    """The toy's shapes-data module (``write_shapes_dataset``, ``SHAPES_CLASSES``), loaded from its file alone."""
    spec = importlib.util.spec_from_file_location('toy_shapes_data', os.path.join(PROJECT, 'toy_shapes', 'shapes.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Session fixtures of both suites (the core's and the toy project's conftest import them).
@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory) -> str:
    """A shapes dataset folder (32 train / 8 val images of 128 px); returns its path with a trailing '/'."""
    root = str(tmp_path_factory.mktemp('shapes')) + '/'
    shapes_data().write_shapes_dataset(root, num_train=32, num_val=8, size=SHAPES_SIZE, seed=0)
    return root


@pytest.fixture(scope='session')
def trained_retinanet(shapes_root, tmp_path_factory):
    """``(config_path, checkpoint_path)`` of the toy RetinaNet trained for 12 epochs on ``shapes_root``."""
    work_dir = str(tmp_path_factory.mktemp('retinanet'))
    cfg = toy_detector_cfg('retinanet_r18-w16_fpn_1xb8-12e_shapes.py', shapes_root, work_dir, max_epochs=12)
    return train_detector(cfg, work_dir)


def toy_detector_cfg(config_name: str, data_root: str, work_dir: str, max_epochs: int = 1,
                     **overrides) -> Config:
    """A toy detector config from ``projects/toy_shapes/configs/detector`` (or a config's full path) pointed at
    ``data_root``, quiet and short."""
    from mmdet_detdiffusion.utils.config import set_data_root
    cfg = set_data_root(Config.fromfile(os.path.join(DETECTOR_CONFIGS, config_name)), data_root)
    cfg.work_dir = work_dir
    cfg.train_cfg.max_epochs = max_epochs
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None  # no validation in tests
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.logger.interval = 100
    cfg.randomness = dict(seed=0)
    cfg.merge_from_dict(overrides)
    return cfg


def train_detector(cfg: Config, work_dir: str):
    """Train with a Runner, dump the config beside the checkpoint; return ``(config_path, checkpoint)``."""
    from mmengine.runner import Runner
    Runner.from_cfg(cfg).train()
    config_path = os.path.join(work_dir, 'detector_config.py')
    cfg.dump(config_path)
    return config_path, os.path.join(work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')


def label_with_alternating_attributes(ann_file: str, out_file: str) -> dict:
    """Copy of a COCO file whose annotations get pa_attr easy, hard, easy, ... (a stand-in for a detector)."""
    import json
    coco = json.load(open(ann_file))
    for i, ann in enumerate(coco['annotations']):
        ann['pa_attr'] = 'easy' if i % 2 == 0 else 'hard'
    with open(out_file, 'w') as f:
        json.dump(coco, f)
    return coco


def tiny_generator_cfg(data_root: str, work_dir: str, ann_file: str = 'annotations/train_pa_attr.json',
                       resolution: int = 32, config: str = TINY_GENERATOR_CONFIG) -> Config:
    """A generator ``config`` (default ``tests/configs/tiny_generator.py``: a plain diffusers U-Net, 32x32 pixels, a
    few thousand parameters) pointed at ``data_root``: no custom hooks, no LR schedule, a log line per iteration."""
    from mmdet_detdiffusion.utils.config import set_data_root
    cfg = set_data_root(Config.fromfile(config), data_root)
    cfg.model.unet.config.sample_size = resolution
    cfg.train_dataloader.dataset.ann_file = ann_file
    for transform in cfg.train_dataloader.dataset.pipeline:
        if transform.type == 'Resize':
            transform.scale = (resolution, resolution)
    cfg.work_dir = work_dir
    cfg.param_scheduler = []
    cfg.custom_hooks = []
    cfg.default_hooks.logger.interval = 1
    return cfg


def tool_config(*argv: str) -> Config:
    """The config ``tools/train.py`` and ``tools/train_generator.py`` build from their command line ``argv``."""
    from mmdet_detdiffusion.utils import train_cli
    return train_cli.build_train_config(train_cli.train_arg_parser('test').parse_args(list(argv)))


def library_train_pipeline(resolution: int) -> list:
    """The library's generator train pipeline (``configs/generator/_base_/generator_pipeline.py``) at
    ``resolution`` pixels, as every generator config is meant to have it."""
    base = Config.fromfile(os.path.join(REPO, 'configs', 'generator', '_base_', 'generator_pipeline.py'))
    return [dict(t, scale=(resolution, resolution)) if t.type == 'Resize' else t for t in base.train_pipeline]


def build_generator(cfg: Config, **overrides):
    """The generator of ``cfg.model`` with ``overrides``, built after ``torch.manual_seed(0)``."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    torch.manual_seed(0)
    return MODELS.build({**cfg.model, **overrides})


def ema_copy_with_one_recorded_pass(model):
    """``(ema, unet_inputs)``: a deep copy of a 32x32 pixel-space ``model`` (as mmengine's EMA model is made), with
    its own recorder, after one U-Net pass inside its ``recording()``; ``unet_inputs``: ``(noisy, t, text)``."""
    import copy

    import torch
    ema = copy.deepcopy(model)
    assert ema.recorder is not model.recorder
    text = model.text_condition(['An image with circle <l3> <l200> <hard>'] * 4)
    noisy, t = torch.randn(4, 3, 32, 32), torch.full((4,), 500)
    with torch.no_grad(), ema.recorder.recording():
        ema.unet(noisy, t, **text)
    return ema, (noisy, t, text)


@pytest.fixture(scope='module')
def batch(gen_cfg) -> dict:
    """The first 4 training samples of the test module's ``gen_cfg`` fixture, collated."""
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    dataset = DATASETS.build(gen_cfg.train_dataloader.dataset)
    return pseudo_collate([dataset[i] for i in range(4)])


@pytest.fixture()
def fresh_clip_text():
    """``(tokenizer, text_encoder)``: the real CLIP BPE tokenizer without layout tokens and a 1-layer random CLIP
    text encoder sized to it (seed 0)."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    from mmdet_detdiffusion.generator.text import clip_tokenizer_from_bpe, find_open_clip_bpe
    tokenizer = clip_tokenizer_from_bpe(find_open_clip_bpe())
    torch.manual_seed(0)
    encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                           num_hidden_layers=1, num_attention_heads=2))
    return tokenizer, encoder


# The core tools run as a user runs them, in a subprocess from the checkout.
LABEL_TOOL = os.path.join(REPO, 'tools', 'label_attributes.py')


def run_label_tool(config, checkpoint, ann_file, img_prefix, out, *extra):
    """tools/label_attributes.py on CPU; the finished process."""
    return subprocess.run([sys.executable, LABEL_TOOL, config, checkpoint, '--ann-file', ann_file,
                           '--img-prefix', img_prefix, '--out', out, '--device', 'cpu',
                           '--num-workers', '0', *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=600)


SOURCE = 'annotations/train_pa_attr.json'  # the layouts tools/generate.py reads, under a shapes root


def generate_cmd(export, shapes_root, out, *extra):
    """tools/generate.py's command line: the layouts of ``shapes_root + SOURCE``, 6 steps."""
    return [sys.executable, os.path.join(REPO, 'tools', 'generate.py'), export, '--ann-file', shapes_root + SOURCE,
            '--out', str(out), '--steps', '6', '--batch-size', '2', '--guidance-scale', '2', *extra]


def run_generate(*args, **kwargs):
    """tools/generate.py run to its end (:func:`generate_cmd`'s arguments); the finished process."""
    result = subprocess.run(generate_cmd(*args, **kwargs), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope='session')
def synthetic_root(tiny_generator_export, shapes_root, tmp_path_factory) -> str:
    """Folder (ending in ``/``) of an easy-mode synthetic set of the tiny generator, from the shapes training set."""
    out = tmp_path_factory.mktemp('synthetic_easy')
    run_generate(tiny_generator_export, shapes_root, out, '--attr-mode', 'easy')
    return str(out) + '/'


def real_cfg(shapes_root: str) -> dict:
    """The shapes training set as an mmdet ``CocoDataset`` config (no pipeline)."""
    return dict(type='CocoDataset', data_root=shapes_root, ann_file='annotations/train.json',
                data_prefix=dict(img='images/'), metainfo=dict(classes=CLASSES), pipeline=[])


def synthetic_cfg(root: str, **kwargs) -> dict:
    """A synthetic set written by tools/generate.py as a ``CocoDataset`` config."""
    return dict(type='CocoDataset', data_root=root, ann_file='annotations.json', data_prefix=dict(img='images/'),
                **kwargs)


def synthetic_detector_cfg(shapes_root: str, synthetic_root: str, work_dir: str) -> Config:
    """The toy RetinaNet on the shapes set + ``synthetic_root``, one epoch."""
    cfg = toy_detector_cfg('retinanet_r18-w16_fpn_1xb8-12e_shapes-detdiffusion.py', shapes_root, work_dir, max_epochs=1)
    cfg.train_dataloader.dataset.synthetic[0].data_root = synthetic_root
    return cfg


@pytest.fixture(scope='module')
def pipe(tiny_generator_export):
    """The tiny generator export as a ``DetDiffusionPipeline`` without progress bars, one per test module (tests may
    set its attributes)."""
    from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline
    pipe = DetDiffusionPipeline.from_pretrained(tiny_generator_export)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def head_labelled_set(pipe, shapes_root: str, out: str, count: int, min_confidence: float) -> Tuple[dict, dict]:
    """``(source, written)`` COCO dicts: the first ``count`` shapes training images, and the set the writer makes of
    their layouts in ``out`` with the perception head's boxes (2 steps, ``mask_thr`` 0.5)."""
    from mmdet_detdiffusion.layout.attribute_file import load_coco
    from mmdet_detdiffusion.synthetic.writer import SyntheticDatasetWriter
    ann_file = shapes_root + 'annotations/train.json'
    coco = load_coco(ann_file)
    first = coco['images'][:count]
    ids = {image['id'] for image in first}
    coco = dict(coco, images=first, annotations=[a for a in coco['annotations'] if a['image_id'] in ids])
    writer = SyntheticDatasetWriter(pipe, out, num_inference_steps=2, box_source='head',
                                    box_repair=dict(mask_thr=0.5, min_confidence=min_confidence))
    return coco, load_coco(writer.run(coco, ann_file, progress=False))
