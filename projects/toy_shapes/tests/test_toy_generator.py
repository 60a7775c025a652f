"""ToyDetDiffusionGenerator on a tiny CoordUNet: the layout attention loss (read from the training pass, through the
recorder the perception head shares), slot tokens started from other slot tokens' rows, orthogonal word rows, and
an export whose pipeline loads the toy's U-Net."""
import json
import os
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from helpers import (PROJECT, build_generator, ema_copy_with_one_recorded_pass, label_with_alternating_attributes,
                     tiny_generator_cfg)
from mmdet_detdiffusion.generator.export import export_generator, load_exported_generator
from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline
from mmdet_detdiffusion.layout.attributes import slot_values
from mmdet_detdiffusion.layout.prompt import PROMPT_PREFIX
from projects.toy_shapes.toy_shapes.attention_loss import CROSS_ATTENTION

TOY_CONFIG = os.path.join(PROJECT, 'configs', 'generator', 'detdiffusion_toy-coordunet_1xb16-100e_shapes-64x64.py')


def tiny_toy_generator_cfg(data_root: str, work_dir: str) -> Config:
    """The toy generator config shrunk for tests: 32x32 pixels, a few thousand U-Net parameters."""
    cfg = tiny_generator_cfg(data_root, work_dir, config=TOY_CONFIG)
    cfg.model.unet.config.update(block_out_channels=(16, 32, 32), cross_attention_dim=32)
    cfg.model.text_encoder.config.update(hidden_size=32, intermediate_size=64, num_attention_heads=2)
    cfg.model.location_bins = 16
    cfg.model.perception_head = dict(channels=16, num_convs=1)
    cfg.train_dataloader.batch_size = 4
    return cfg


@pytest.fixture(scope='module')
def gen_cfg(shapes_root, tmp_path_factory):
    label_with_alternating_attributes(shapes_root + 'annotations/train.json',
                                      shapes_root + 'annotations/train_pa_attr.json')
    return tiny_toy_generator_cfg(shapes_root, str(tmp_path_factory.mktemp('toy_gen')))


def test_the_config_builds_the_toy_generator_on_the_coord_unet(gen_cfg):
    model = build_generator(gen_cfg)
    assert type(model).__name__ == 'ToyDetDiffusionGenerator'
    assert type(model.unet).__name__ == 'CoordUNet2DConditionModel' and model.mask_text_padding
    assert model.perception_head.config.in_channels == [32, 16]


def test_attention_loss_comes_from_the_training_pass_and_trains_the_text_side(gen_cfg, batch):
    model = build_generator(gen_cfg, attention_loss_weight=0.5, null_prompt_prob=0.0)
    data = model.data_preprocessor(batch, training=True)
    losses = model.loss(**data)
    assert 0 < losses['loss_attn'] < 0.5 * 13.8  # well below -log(1e-6): the maps are not near the PROB_FLOOR
    assert not model.recorder.active and model.recorder.records == {}  # consumed; sampling records nothing
    losses['loss_attn'].backward()
    assert model.text_encoder.get_input_embeddings().weight.grad.abs().sum() > 0
    assert 'loss_attn' not in build_generator(gen_cfg).loss(**data)  # off by default, as in the paper


def test_one_recorder_serves_features_and_attention_and_a_deep_copy_records_into_its_own(gen_cfg, batch):
    model = build_generator(gen_cfg, attention_loss_weight=0.5)
    ema, (noisy, t, text) = ema_copy_with_one_recorded_pass(model)
    data = model.data_preprocessor(batch, training=True)
    assert model.recorder.records == {}
    assert sorted(ema.recorder.records) == [CROSS_ATTENTION, 'up_blocks.1', 'up_blocks.2']
    assert [f.shape[1] for f in (ema.recorder.pop('up_blocks.1')[0], ema.recorder.pop('up_blocks.2')[0])] == [32, 16]
    with torch.no_grad():
        ema.unet(noisy, t, **text)  # outside recording(): nothing kept
    assert len(ema.recorder.pop(CROSS_ATTENTION)) > 0 and ema.recorder.records == {}
    assert 'loss_pa' in model.loss(**data)


def test_slot_embeddings_train_alone_from_other_slot_tokens_rows(gen_cfg, batch):
    from mmengine.optim import build_optim_wrapper
    model = build_generator(gen_cfg, separate_slot_embeddings=True, trainable=('slot_embeddings', 'perception_head'),
                            slot_token_init=dict(hard='faint', easy='bright'))
    slots = model.slot_embeddings.weight
    assert slots.shape[0] == 4, 'easy, hard, faint, bright'
    assert torch.equal(slots[0], slots[3]) and torch.equal(slots[1], slots[2]), 'easy <- bright, hard <- faint'
    frozen = {name: p.detach().clone() for name, p in model.named_parameters() if name.startswith(('unet', 'text'))}
    assert not any(p.requires_grad for name, p in model.named_parameters() if name in frozen)
    before = slots.detach().clone()
    wrapper = build_optim_wrapper(model, dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)))
    model.train_step(batch, wrapper)
    assert not torch.equal(slots[:2], before[:2])
    assert all(torch.equal(p, frozen[name]) for name, p in model.named_parameters() if name in frozen)


def test_prompt_words_start_orthogonal_and_slot_tokens_from_their_words(gen_cfg):
    model = build_generator(gen_cfg, word_embedding_norm=2.0)
    words = [PROMPT_PREFIX, *model.classes, *slot_values()]
    ids = sorted({i for word in words for i in model.tokenizer(word, add_special_tokens=False).input_ids})
    table = model.text_encoder.get_input_embeddings().weight.detach()
    torch.testing.assert_close(table[ids] @ table[ids].T, 4.0 * torch.eye(len(ids)), atol=1e-5, rtol=0)
    for word in slot_values():  # a slot token starts from its word's (new) row
        word_ids = model.tokenizer(word, add_special_tokens=False).input_ids
        assert torch.equal(table[model.tokenizer.convert_tokens_to_ids(f'<{word}>')], table[word_ids].mean(0))
    plain = build_generator(gen_cfg).text_encoder.get_input_embeddings().weight.detach()
    assert not torch.allclose(plain[ids] @ plain[ids].T, 4.0 * torch.eye(len(ids)), atol=1e-2)


def test_export_names_the_toys_unet_and_reloads_with_equal_outputs(gen_cfg, batch, tmp_path):
    model = build_generator(gen_cfg).eval()
    folder = export_generator(model, str(tmp_path / 'export'), data_filters=dict(min_object_area_ratio=0.02))
    index = json.load(open(os.path.join(folder, 'model_index.json')))
    assert index['unet'] == ['projects.toy_shapes.toy_shapes.coord_unet', 'CoordUNet2DConditionModel']
    pipe = DetDiffusionPipeline.from_pretrained(folder)
    assert type(pipe.unet).__name__ == 'CoordUNet2DConditionModel' and pipe.mask_text_padding
    reloaded = load_exported_generator(folder, device='cpu')
    data = model.data_preprocessor(batch)
    torch.testing.assert_close(reloaded(**data, mode='tensor'), model(**data, mode='tensor'))
    # plain transformers loads the text parts (the CoordUNet2DConditionModel is the toy's class), the slot tokens
    # last in code order
    from transformers import CLIPTokenizer
    tokenizer = CLIPTokenizer.from_pretrained(folder + '/tokenizer')
    last = len(model.tokenizer) - 1
    assert tokenizer.convert_tokens_to_ids(['<easy>', '<hard>', '<faint>', '<bright>']) == [
        last - 3, last - 2, last - 1, last]
    index['unet'][0] = 'mmdet_detdiffusion.generator.coord_unet'  # as exports made before the toy left the library
    json.dump(index, open(os.path.join(folder, 'model_index.json'), 'w'))
    assert type(DetDiffusionPipeline.from_pretrained(folder).unet).__name__ == 'CoordUNet2DConditionModel'


@pytest.mark.slow
def test_mmdet_own_train_tool_trains_the_toy_generator_config(shapes_root, tmp_path):
    """The config file as it is, through mmdet's tools/train.py (Config.fromfile + Runner.from_cfg): no step of
    ours fills anything in, and the config's custom_imports bring the toy package."""
    import mmdet
    train_tool = os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
    label_with_alternating_attributes(shapes_root + 'annotations/train.json',
                                      shapes_root + 'annotations/train_pa_attr.json')
    proc = subprocess.run([sys.executable, train_tool, TOY_CONFIG, '--work-dir', str(tmp_path), '--cfg-options',
                           f'train_dataloader.dataset.data_root={shapes_root}', 'train_cfg.max_epochs=1',
                           'custom_hooks.1.num_samples=2', 'custom_hooks.1.num_inference_steps=2'],
                          capture_output=True, text=True, cwd=str(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_exported_generator(str(tmp_path / 'export'), device='cpu').classes == ('circle', 'square', 'triangle')
