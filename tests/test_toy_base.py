"""The toy base model: tools/make_toy_base.py, and fine-tuning configs that load a base's U-Net and text
encoder."""
import json
import os
import subprocess
import sys

import torch
from mmengine.registry import init_default_scope

import mmdet_detdiffusion  # noqa: F401
from helpers import REPO, tiny_generator_cfg
from mmdet_detdiffusion.generator.export import load_exported_generator


def build(model_cfg):
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    return MODELS.build(model_cfg)


def test_base_from_an_export_fine_tunes_with_its_trained_rows(tiny_generator_export, shapes_root, tmp_path):
    out = tmp_path / 'base'
    proc = subprocess.run([sys.executable, 'tools/make_toy_base.py', tiny_generator_export, str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not os.path.exists(str(out) + '.tmp')
    source = load_exported_generator(tiny_generator_export, device='cpu')
    info = json.loads((out / 'base.json').read_text())
    # 16x16 location tokens + 2 attribute tokens + BOS/EOS + "an image with" + the 3 class words
    assert info['kept_token_rows'] == 256 + 2 + 2 + 3 + 3 and info['location_bins'] == 16

    cfg = tiny_generator_cfg(shapes_root, str(tmp_path / 'work'))
    cfg.model.unet = dict(type='CoordUNet2DConditionModel', from_pretrained=str(out / 'unet'))
    cfg.model.text_encoder = dict(type='CLIPTextModel', from_pretrained=str(out / 'text_encoder'))
    model = build(cfg.model)  # fresh BPE tokenizer + layout-trained text encoder
    for name, value in source.unet.state_dict().items():
        assert torch.equal(value, model.unet.state_dict()[name])
    old, new = source.text_encoder.get_input_embeddings().weight, model.text_encoder.get_input_embeddings().weight
    kept = new.abs().sum(dim=1) > 0
    assert int(kept.sum()) == info['kept_token_rows']
    assert torch.equal(new[kept], old[kept]), 'the layout rows are the base\'s, not re-initialised'
    prompt = 'An image with circle <l3> <l200> <hard>'
    ids = model.tokenizer([prompt]).input_ids
    assert ids == source.tokenizer([prompt]).input_ids
    assert kept[torch.tensor(ids[0])].all()
