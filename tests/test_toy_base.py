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


def test_bundled_toy_base_loads_into_the_demo_fine_tuning_config():
    from mmengine.config import Config
    cfg = Config.fromfile(os.path.join(REPO, 'configs', 'generator', 'toy_shapes_pixel64_finetune.py'))
    info = json.loads(open(os.path.join(REPO, 'assets', 'toy_shapes_base', 'base.json')).read())
    model = build(cfg.model).eval()
    assert type(model.unet).__name__ == 'CoordUNet2DConditionModel' and model.unet.config.patch_size == 2
    assert info['classes'] == list(model.classes) and info['location_bins'] == model.grid.bins == 64
    from safetensors.torch import load_file
    saved = load_file(os.path.join(REPO, 'assets', 'toy_shapes_base', 'unet', 'diffusion_pytorch_model.safetensors'))
    assert saved.keys() == model.unet.state_dict().keys()
    assert all(torch.equal(value, saved[name]) for name, value in model.unet.state_dict().items())
    prompt = 'An image with circle <l0> <l4095> <hard>'
    with torch.no_grad():
        out = model.unet(torch.zeros(1, 3, 64, 64), torch.tensor([500]), **model.text_condition([prompt])).sample
    assert out.shape == (1, 3, 64, 64) and torch.isfinite(out).all()
