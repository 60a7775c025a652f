"""The paper configs load every component with from_pretrained: checked on a tiny SD-format folder
(unet/ vae/ text_encoder/ tokenizer/ scheduler/) that the test builds and saves; the export of such a
generator loads in plain diffusers."""
import os

import pytest
import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from transformers import CLIPTextConfig, CLIPTextModel

import mmdet_detdiffusion  # noqa: F401
from helpers import REPO, label_with_alternating_attributes, tiny_generator_cfg
from mmdet_detdiffusion.generator.text import clip_tokenizer_from_bpe, find_open_clip_bpe
from mmdet_detdiffusion.layout.prompt import LayoutObject


@pytest.fixture(scope='module')
def tiny_sd(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny-sd')
    torch.manual_seed(0)
    UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
                         block_out_channels=(16, 32, 32, 32), norm_num_groups=8, cross_attention_dim=32,
                         attention_head_dim=8).save_pretrained(root / 'unet')
    AutoencoderKL(block_out_channels=(8, 16), down_block_types=('DownEncoderBlock2D',) * 2,
                  up_block_types=('UpDecoderBlock2D',) * 2, latent_channels=4, norm_num_groups=8,
                  layers_per_block=1).save_pretrained(root / 'vae')
    CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2)).save_pretrained(root / 'text_encoder')
    clip_tokenizer_from_bpe(find_open_clip_bpe()).save_pretrained(root / 'tokenizer')
    DDPMScheduler(beta_schedule='scaled_linear', beta_start=0.00085, beta_end=0.012).save_pretrained(root / 'scheduler')
    return str(root)


def paper_model(config: str, tiny_sd: str):
    """The paper config's generator with every component from the tiny SD folder."""
    from mmdet.registry import MODELS
    cfg = Config.fromfile(os.path.join(REPO, 'configs', 'generator', config))
    for part in ('unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler'):
        assert cfg.model[part].from_pretrained == 'runwayml/stable-diffusion-v1-5'
        cfg.model[part].from_pretrained = tiny_sd
    cfg.model.classes = ('circle', 'square', 'triangle')
    cfg.model.location_bins = 16
    cfg.model.perception_head = dict(channels=8, num_convs=1)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('config', ['detdiffusion_sd15_8xb32-60e_coco-256x256.py',
                                    'detdiffusion_sd15_8xb8-accu4-60e_coco-512x512.py'])
def test_paper_config_trains_a_step_in_latent_space(config, tiny_sd, shapes_root, tmp_path):
    from mmdet.registry import DATASETS
    model = paper_model(config, tiny_sd)
    assert model.latent_scale == 2 and not any(p.requires_grad for p in model.vae.parameters())
    assert all(p.requires_grad for p in model.unet.parameters())
    label_with_alternating_attributes(shapes_root + 'annotations/train.json',
                                      shapes_root + 'annotations/train_pa_attr.json')
    data_cfg = tiny_generator_cfg(shapes_root, str(tmp_path)).train_dataloader.dataset
    dataset = DATASETS.build(data_cfg)
    data = model.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), training=True)
    losses = model.loss(**data)
    assert set(losses) == {'loss_ldm', 'loss_pa'} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.vae.encoder.conv_in.weight.grad is None
    assert model.unet.conv_in.weight.grad is not None and model.perception_head.lateral[0].weight.grad is not None
    images = model.eval().sample([model.layout_of(data['data_samples'][0])], 32, 32, num_inference_steps=2)
    assert images.shape == (1, 32, 32, 3)


def test_sd_export_loads_in_plain_diffusers_with_identical_unet_outputs(tiny_sd, tmp_path):
    from diffusers import StableDiffusionPipeline

    from mmdet_detdiffusion.generator.export import export_generator
    from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline
    model = paper_model('detdiffusion_sd15_8xb32-60e_coco-256x256.py', tiny_sd).eval()
    folder = export_generator(model, str(tmp_path / 'export'))
    sd = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, low_cpu_mem_usage=False)
    unet = UNet2DConditionModel.from_pretrained(folder, subfolder='unet', low_cpu_mem_usage=False)
    ours = DetDiffusionPipeline.from_pretrained(folder)
    assert type(sd.unet) is type(unet) is type(ours.unet) is UNet2DConditionModel
    assert type(sd.vae) is AutoencoderKL and len(sd.tokenizer) == len(model.tokenizer)
    prompt = model.prompt([LayoutObject('square', (0.1, 0.2, 0.5, 0.9), 'hard')], order='largest')
    tokens = sd.tokenizer([prompt], padding='max_length', max_length=77, return_tensors='pt').input_ids
    assert (tokens == model.tokenizer([prompt], padding='max_length', max_length=77, return_tensors='pt').input_ids
            ).all() and sd.tokenizer.convert_tokens_to_ids('<hard>') in tokens[0].tolist()
    torch.manual_seed(1)
    latents, t = torch.randn(2, 4, 16, 16), torch.tensor([10, 700])
    with torch.no_grad():
        states = sd.text_encoder(tokens.repeat(2, 1))[0]
        assert torch.equal(states, model.text_encoder(tokens.repeat(2, 1))[0])
        expected = model.unet(latents, t, encoder_hidden_states=states).sample
        for loaded in (sd.unet, unet, ours.unet):
            assert torch.equal(loaded(latents, t, encoder_hidden_states=states).sample, expected)
    sd.set_progress_bar_config(disable=True)
    image = sd(prompt, height=32, width=32, num_inference_steps=2, output_type='np').images
    assert image.shape == (1, 32, 32, 3)
