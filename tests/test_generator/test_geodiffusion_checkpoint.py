"""Starting from a GeoDiffusion checkpoint: a tiny folder in its exact layout (a StableDiffusionPipeline
whose tokenizer holds the location tokens, plus generation_config.json) loads with its location
embeddings unchanged, adds only the attribute-slot tokens, trains a step and generates, with and without attributes."""
import json
import os

import pytest
import torch
from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from transformers import CLIPTextConfig, CLIPTextModel

import mmdet_detdiffusion  # noqa: F401
from helpers import REPO, label_with_alternating_attributes, tiny_generator_cfg
from mmdet_detdiffusion.generator.model import resolve_layout_settings
from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline
from mmdet_detdiffusion.generator.text import clip_tokenizer_from_bpe, find_open_clip_bpe
from mmdet_detdiffusion.layout.prompt import LocationGrid

BINS = 16  # GeoDiffusion's checkpoints: 256; a 16x16 grid keeps the test small
CLASSES = ('circle', 'square', 'triangle')
CONFIG = 'detdiffusion_geodiffusion-coco-stuff-256_8xb32-10e_coco-256x256.py'


@pytest.fixture(scope='module')
def geodiffusion_folder(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('geodiffusion'))
    torch.manual_seed(0)
    tokenizer = clip_tokenizer_from_bpe(find_open_clip_bpe())
    tokenizer.add_tokens(LocationGrid(BINS).tokens)
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                                num_hidden_layers=1, num_attention_heads=2))
    unet = UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(16, 32, 32, 32), norm_num_groups=8, cross_attention_dim=32,
                                attention_head_dim=8)
    vae = AutoencoderKL(block_out_channels=(8, 16), down_block_types=('DownEncoderBlock2D',) * 2,
                        up_block_types=('UpDecoderBlock2D',) * 2, latent_channels=4, norm_num_groups=8,
                        layers_per_block=1)
    scheduler = DDPMScheduler(beta_schedule='scaled_linear', beta_start=0.00085, beta_end=0.012)
    StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                            safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(root)
    with open(os.path.join(root, 'generation_config.json'), 'w') as f:
        json.dump(dict(dataset='coco_stuff', prompt_template='An image with {bbox}', num_bucket_per_side=[BINS, BINS],
                       max_num_bbox=5, width=32, height=32, cfg_scale=4.0, num_inference_steps=2), f)
    return root


def location_rows(text_encoder, tokenizer) -> torch.Tensor:
    ids = tokenizer.convert_tokens_to_ids(LocationGrid(BINS).tokens)
    return text_encoder.get_input_embeddings().weight[ids].detach().clone()


def test_config_starts_from_the_checkpoint_and_keeps_its_location_embeddings(geodiffusion_folder, shapes_root,
                                                                             tmp_path):
    from mmdet.registry import DATASETS, MODELS
    cfg = Config.fromfile(os.path.join(REPO, 'configs', 'generator', CONFIG))
    assert cfg.model.generation_config == cfg.pretrained and cfg.model.location_bins is None
    for part in ('unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler'):
        assert cfg.model[part].from_pretrained == cfg.pretrained
        cfg.model[part].from_pretrained = geodiffusion_folder
    cfg.model.generation_config = geodiffusion_folder
    cfg.model.classes = CLASSES
    cfg.model.perception_head = dict(channels=8, num_convs=1)
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    assert model.grid.bins == BINS and model.max_objects == 5  # from generation_config.json

    saved = StableDiffusionPipeline.from_pretrained(geodiffusion_folder)
    torch.testing.assert_close(location_rows(model.text_encoder, model.tokenizer),
                               location_rows(saved.text_encoder, saved.tokenizer), rtol=0, atol=0)
    assert len(model.tokenizer) == len(saved.tokenizer) + 2  # only the slot tokens <easy> and <hard> are new
    easy_id, hard_id = model.tokenizer.convert_tokens_to_ids(['<easy>', '<hard>'])
    assert easy_id == len(saved.tokenizer) and hard_id == len(saved.tokenizer) + 1

    label_with_alternating_attributes(shapes_root + 'annotations/train.json',
                                      shapes_root + 'annotations/train_pa_attr.json')
    dataset = DATASETS.build(tiny_generator_cfg(shapes_root, str(tmp_path)).train_dataloader.dataset)
    data = model.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), training=True)
    losses = model.loss(**data)
    assert set(losses) == {'loss_ldm', 'loss_pa'} and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.text_encoder.get_input_embeddings().weight.grad is not None
    images = model.eval().sample([model.layout_of(data['data_samples'][0])], 32, 32, num_inference_steps=2)
    assert images.shape == (1, 32, 32, 3)


def test_pipeline_generates_from_the_checkpoint_without_attributes(geodiffusion_folder):
    pipe = DetDiffusionPipeline.from_pretrained(geodiffusion_folder, classes=list(CLASSES))
    assert not pipe.use_attributes and pipe.grid.bins == BINS and pipe.max_objects == 5
    layout = dict(boxes=[[0, 0, 16, 16], [8, 8, 32, 24]], labels=['circle', 'triangle'], attrs=['hard', 'easy'],
                  image_size=(32, 32))
    out = pipe(layout, height=32, width=32, num_inference_steps=2, output_type='np',
               generator=torch.Generator().manual_seed(0))
    assert out.images.shape == (1, 32, 32, 3)
    assert out.prompts == ['An image with triangle <l68> <l191> circle <l0> <l136>']  # no attribute tokens
    with pytest.raises(ValueError, match='GeoDiffusion checkpoint: give its class names'):
        DetDiffusionPipeline.from_pretrained(geodiffusion_folder)


def test_settings_come_from_generation_config_and_contradictions_are_refused(geodiffusion_folder):
    assert resolve_layout_settings(None, None, geodiffusion_folder) == dict(location_bins=BINS, max_objects=5)
    assert resolve_layout_settings(None, None, None) == dict(location_bins=256, max_objects=None)
    with pytest.raises(ValueError, match=r'location_bins=64 contradicts .*generation_config.json, which gives 16'):
        resolve_layout_settings(64, None, geodiffusion_folder)
