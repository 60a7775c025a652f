"""Shared fixtures: a small shapes dataset and a tiny detector trained on it (once per session)."""
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'tests'))

from helpers import SHAPES_SIZE, toy_detector_cfg, train_detector  # noqa: E402


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory):
    """A shapes dataset folder (32 train / 8 val images of 128 px); returns its path with a trailing '/'."""
    from mmdet_detdiffusion.datasets.shapes import write_shapes_dataset
    root = str(tmp_path_factory.mktemp('shapes')) + '/'
    write_shapes_dataset(root, num_train=32, num_val=8, size=SHAPES_SIZE, seed=0)
    return root


@pytest.fixture(scope='session')
def trained_retinanet(shapes_root, tmp_path_factory):
    """``(config_path, checkpoint_path)`` of the toy RetinaNet trained for a few epochs on ``shapes_root``."""
    work_dir = str(tmp_path_factory.mktemp('retinanet'))
    cfg = toy_detector_cfg('retinanet_r18-w16_fpn_1xb8-12e_shapes.py', shapes_root, work_dir, max_epochs=12)
    return train_detector(cfg, work_dir)


@pytest.fixture(scope='session')
def clip_text():
    """``(tokenizer, text_encoder)``: the real CLIP BPE tokenizer (vocabulary from the open-clip-torch
    wheel) with layout tokens for a 64x64 grid, and a tiny random CLIP text encoder sized to it."""
    from transformers import CLIPTextConfig, CLIPTextModel

    from mmdet_detdiffusion.generator.text import add_layout_tokens, clip_tokenizer_from_bpe, find_open_clip_bpe
    from mmdet_detdiffusion.layout.prompt import LocationGrid
    tokenizer = clip_tokenizer_from_bpe(find_open_clip_bpe())
    encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                           num_hidden_layers=2, num_attention_heads=2))
    add_layout_tokens(tokenizer, encoder, LocationGrid(64))
    return tokenizer, encoder


@pytest.fixture(scope='session')
def clip_tokenizer(clip_text):
    return clip_text[0]


@pytest.fixture(scope='session')
def tiny_generator_export(shapes_root, tmp_path_factory):
    """Folder of a tiny untrained pixel-space generator export (32x32, the shapes classes), recording
    the training filter ``min_object_area_ratio=0.02``."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    from helpers import label_with_alternating_attributes, tiny_generator_cfg
    from mmdet_detdiffusion.generator.export import export_generator
    label_with_alternating_attributes(shapes_root + 'annotations/train.json',
                                      shapes_root + 'annotations/train_pa_attr.json')
    work_dir = tmp_path_factory.mktemp('tiny_generator')
    cfg = tiny_generator_cfg(shapes_root, str(work_dir))
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    return export_generator(model, str(work_dir / 'export'), data_filters=dict(min_object_area_ratio=0.02))
