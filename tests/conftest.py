"""Shared fixtures: a small shapes dataset and a tiny detector trained on it (once per session)."""
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'tests'))

from helpers import (batch, fresh_clip_text, pipe, shapes_root, synthetic_root,  # noqa: E402,F401  (fixtures)
                     trained_retinanet)


@pytest.fixture(scope='session', autouse=True)
def core_suite_runs_without_the_toy():
    """The core suite tests the library as a user without ``projects/toy_shapes`` has it: after the session, no
    test has imported the toy package (whose import registers its attribute values, datasets and U-Net)."""
    yield
    from mmdet_detdiffusion.layout.attributes import ATTRIBUTE_TOKENS
    toy = sorted(name for name in sys.modules if name.startswith('projects.toy_shapes'))
    assert not toy, f'the core suite imported the toy package: {toy} (toy tests belong in projects/toy_shapes/tests)'
    assert tuple(ATTRIBUTE_TOKENS) == ('easy', 'hard'), \
        f'the attribute slot holds {tuple(ATTRIBUTE_TOKENS)} after the core suite: expected easy and hard alone'


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
def tiny_generator_export(shapes_root, tmp_path_factory):  # noqa: F811  (the fixture imported above)
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
