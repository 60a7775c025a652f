"""The toy base model: the shapes stream it is pretrained on, projects/toy_shapes/tools/make_toy_base.py (one command,
with its
record), and the bundled copy held against its recipe."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmdet_detdiffusion  # noqa: F401
from helpers import PROJECT, REPO
from mmdet_detdiffusion.layout.attributes import ATTR_CODES
from projects.toy_shapes.toy_shapes.shapes_stream import (BRIGHT_ABOVE, DESCRIBE_IN, FAINT_BELOW, ShapesStreamDataset,
                                                          contrast_word, described_classes)

BASE = os.path.join(PROJECT, 'assets', 'toy_shapes_base')
PIPELINE = [dict(type='LoadAnnotations', with_bbox=True, with_mask=True), dict(type='LoadPerceptionAttributes'),
            dict(type='Resize', scale=(64, 64), keep_ratio=False), dict(type='PackGeneratorInputs')]


def build(model_cfg):
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    return MODELS.build(model_cfg)


def test_stream_is_fresh_deterministic_and_covers_the_demo_data():
    init_default_scope('mmdet')
    stream = ShapesStreamDataset(PIPELINE, seed=1)
    a, again, other = stream[5], stream[5], stream[6]
    assert torch.equal(a['inputs'], again['inputs']) and not torch.equal(a['inputs'], other['inputs'])
    assert a['inputs'].shape == (3, 64, 64)
    infos = [stream.get_data_info(i) for i in range(300)]
    corners = np.array([info['img'][0, 0].mean() for info in infos])
    assert corners.min() < 40 and corners.max() > 215, 'backgrounds from near-black to near-white'
    names = [stream.classes[inst['bbox_label']] for info in infos for inst in info['instances']]
    described = [name for name in names if ' ' in name]
    assert 0.2 < len(described) / len(names) < 0.5  # half the objects, less those of middle contrast
    assert {name.split()[0] for name in described} == {'faint', 'bright'}
    attrs = [inst['pa_attr'] for info in infos for inst in info['instances']]
    assert 0.4 < attrs.count('hard') / len(attrs) < 0.6
    assert contrast_word(FAINT_BELOW - 0.01) == 'faint' and contrast_word(BRIGHT_ABOVE + 0.01) == 'bright'
    assert contrast_word(0.5) == '' and described_classes()[:4] == ('circle', 'square', 'triangle', 'faint circle')


def test_stream_can_write_the_contrast_word_in_the_attribute_slot():
    init_default_scope('mmdet')
    in_name, in_slot = (ShapesStreamDataset(PIPELINE, seed=1, describe_in=where) for where in DESCRIBE_IN)
    for index in range(40):  # the same images and draws: only where the word goes differs
        named, slotted = in_name.get_data_info(index), in_slot.get_data_info(index)
        assert np.array_equal(named['img'], slotted['img'])
        for a, b in zip(named['instances'], slotted['instances']):
            name = in_name.classes[a['bbox_label']]
            word, shape = name.split() if ' ' in name else ('', name)
            assert in_slot.classes[b['bbox_label']] == shape
            assert b['pa_attr'] == (word or a['pa_attr'])
    attrs = in_slot[3]['data_samples'].gt_instances.pa_attrs.tolist()
    assert attrs == [ATTR_CODES[inst['pa_attr']] for inst in in_slot.get_data_info(3)['instances']]
    with pytest.raises(ValueError, match='describe_in'):
        ShapesStreamDataset(PIPELINE, describe_in='prefix')


STAGE1 = 'configs/generator/layout-pretrain_toy-coordunet_1xb32-3600iters_shapes-stream-64x64.py'
STAGE2 = 'configs/generator/layout-pretrain_toy-coordunet_1xb32-2800iters_shapes-stream-64x64-continued.py'
STAGE3 = 'configs/generator/layout-pretrain_toy-coordunet_1xb32-1600iters_shapes-stream-64x64-slot.py'
FINE_TUNING = os.path.join(PROJECT, 'configs', 'generator', 'detdiffusion_toy-base_1xb16-30e_shapes-64x64.py')
RECIPE = ((STAGE3, 3), (STAGE2, 2), (STAGE1, 1))  # (project-relative config, seed), last stage first


@pytest.mark.slow
def test_make_toy_base_trains_its_stages_from_scratch_and_records_the_recipe(tmp_path):
    out, work = tmp_path / 'base', tmp_path / 'work'
    command = [sys.executable, 'projects/toy_shapes/tools/make_toy_base.py', '--work-dir', str(work), '--out', str(out),
               '--commit', 'abc123', '--cfg-options', 'train_cfg.max_iters=2', 'train_dataloader.batch_size=2',
               'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
               'custom_hooks.1.num_samples=2', 'custom_hooks.1.num_inference_steps=2']
    proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not os.path.exists(str(out) + '.tmp')
    info = json.loads((out / 'base.json').read_text())
    stages, stage, stage_dir = [], info, work
    for config, seed in RECIPE:
        assert stage['config'] == config and stage['seed'] == seed and stage['commit'] == 'abc123'
        assert stage['iterations'] == stage['max_iters'] == 2 and stage['batch_size'] == 2
        assert stage['classes'] == list(described_classes()) and stage['location_bins'] == 64
        # 64x64 location tokens + 4 attribute-slot tokens + BOS/EOS + "an image with" + the shape and contrast words
        assert stage['kept_token_rows'] == 4096 + 4 + 2 + 3 + 3 + 2
        if stages:  # an earlier stage: in its own folder under the next one's
            stage_dir = stage_dir / os.path.splitext(os.path.basename(config))[0]
            assert json.loads((stage_dir / 'base' / 'base.json').read_text()) == stage
        stages.append(stage)
        stage = stage['previous_stage']
    assert stage is None, 'the first stage starts from scratch'

    again = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert 'previous stage already written' in again.stdout, 'a rerun resumes: the first stage is not trained again'

    cfg = Config.fromfile(FINE_TUNING)
    cfg.model.unet.from_pretrained = str(out / 'unet')
    cfg.model.text_encoder.from_pretrained = str(out / 'text_encoder')
    model = build(cfg.model)  # fresh BPE tokenizer + layout-trained text encoder
    table = model.text_encoder.get_input_embeddings().weight
    kept = table.abs().sum(dim=1) > 0
    assert int(kept.sum()) == info['kept_token_rows'], 'the layout rows are the base\'s, not re-initialised'
    ids = model.tokenizer(['An image with faint circle <l3> <l200> <hard>']).input_ids[0]
    assert kept[torch.tensor(ids)].all()


def test_bundled_toy_base_matches_its_recipe_and_loads_into_the_demo_fine_tuning():
    info = json.loads(open(os.path.join(BASE, 'base.json')).read())
    stages = [info, info['previous_stage'], info['previous_stage']['previous_stage']]
    assert [stage['config'] for stage in stages] == [config for config, _ in RECIPE]
    assert stages[-1]['previous_stage'] is None
    for stage in stages:
        recipe = Config.fromfile(os.path.join(PROJECT, stage['config']))
        assert stage['seed'] == recipe.seed and stage['max_iters'] == recipe.train_cfg.max_iters
        assert stage['iterations'] == stage['max_iters'], 'the bundled base finished every stage of its recipe'
        assert stage['batch_size'] == recipe.train_dataloader.batch_size
        assert set(stage['cfg_options']) <= {'train_dataloader.num_workers'}, 'only options that keep the recipe'
        assert re.fullmatch(r'[0-9a-f]{40}', stage['commit']), 'made from a commit, not a dirty tree'
        assert stage['classes'] == list(described_classes())

    cfg = Config.fromfile(FINE_TUNING)
    model = build(cfg.model).eval()
    assert type(model.unet).__name__ == 'CoordUNet2DConditionModel' and model.grid.bins == info['location_bins']
    from safetensors.torch import load_file
    saved = load_file(os.path.join(BASE, 'unet', 'diffusion_pytorch_model.safetensors'))
    assert saved.keys() == model.unet.state_dict().keys()
    assert all(torch.equal(value, saved[name]) for name, value in model.unet.state_dict().items())
    prompt = 'An image with circle <l0> <l4095> <hard>'
    with torch.no_grad():
        out = model.unet(torch.zeros(1, 3, 64, 64), torch.tensor([500]), **model.text_condition([prompt])).sample
    assert out.shape == (1, 3, 64, 64) and torch.isfinite(out).all()
