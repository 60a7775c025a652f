"""DetDiffusionGenerator on a tiny pixel-space model: losses, P.A. weighting, determinism, sampling, export."""
import copy

import pytest
import torch

import mmdet_detdiffusion  # noqa: F401
from helpers import (build_generator, ema_copy_with_one_recorded_pass, label_with_alternating_attributes,
                     tiny_generator_cfg)
from mmdet_detdiffusion.generator import losses as generator_losses
from mmdet_detdiffusion.generator.export import export_generator, load_exported_generator
from mmdet_detdiffusion.generator.losses import foreground_weight_map, noise_level_weight
from mmdet_detdiffusion.generator.perception_head import box_maps
from mmdet_detdiffusion.layout.attributes import ATTR_NAMES
from mmdet_detdiffusion.layout.prompt import LayoutObject


@pytest.fixture(scope='module')
def gen_cfg(shapes_root, tmp_path_factory):
    label_with_alternating_attributes(shapes_root + 'annotations/train.json',
                                      shapes_root + 'annotations/train_pa_attr.json')
    return tiny_generator_cfg(shapes_root, str(tmp_path_factory.mktemp('gen')))


def test_preprocessed_batch_is_rgb_in_minus_one_one(gen_cfg, batch):
    model = build_generator(gen_cfg)
    data = model.data_preprocessor(batch, training=True)
    assert data['inputs'].shape == (4, 3, 32, 32) and data['inputs'].dtype == torch.float32
    assert -1.0 <= data['inputs'].min() < 0 < data['inputs'].max() <= 1.0
    raw = batch['inputs'][0].float()
    torch.testing.assert_close(data['inputs'][0, 0], raw[2] / 127.5 - 1)  # BGR -> RGB


def test_data_preprocessor_is_mmengines_and_equals_the_former_one(gen_cfg):
    """mmengine's ImgDataPreprocessor(mean=127.5, std=127.5, bgr_to_rgb) replaced GeneratorDataPreprocessor,
    whose output was ``bgr[:, [2, 1, 0]] / 127.5 - 1``: equal up to float32 rounding (1 ulp) on every value."""
    model = build_generator(gen_cfg)
    assert type(model.data_preprocessor).__name__ == 'ImgDataPreprocessor'
    values = torch.arange(256, dtype=torch.uint8)
    bgr = torch.stack([values, values.flip(0), values.roll(7)]).reshape(3, 16, 16)
    out = model.data_preprocessor(dict(inputs=[bgr, bgr.flip(-1)], data_samples=None))['inputs']
    former = torch.stack([bgr, bgr.flip(-1)]).float()[:, [2, 1, 0]] / 127.5 - 1.0
    assert out.shape == (2, 3, 16, 16) and out.dtype == torch.float32
    torch.testing.assert_close(out, former, rtol=0, atol=6e-8)
    assert out.min() == -1 and out.max() == 1


def test_prompts_hold_boxes_and_attributes(gen_cfg, batch):
    model = build_generator(gen_cfg)
    sample = batch['data_samples'][0]
    layout = model.layout_of(sample)
    assert [o.attr for o in layout] == [ATTR_NAMES[a] for a in sample.gt_instances.pa_attrs.tolist()]
    assert all(0 <= v <= 1 for o in layout for v in o.box)
    prompt = model.prompt(layout, order='largest')
    assert prompt.startswith('An image with ') and ('<easy>' in prompt or '<hard>' in prompt)
    no_attr = build_generator(gen_cfg, use_attributes=False)
    assert '<easy>' not in no_attr.prompt(no_attr.layout_of(sample)) and '<hard>' not in no_attr.prompt(
        no_attr.layout_of(sample))


def test_loss_decreases_over_a_few_steps(gen_cfg, batch):
    model = build_generator(gen_cfg, null_prompt_prob=0.0, noise_offset=0.0)  # offset noise is slower to fit
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    data = model.data_preprocessor(batch, training=True)
    history = []
    for _ in range(40):
        losses = model.loss(**data)
        total = sum(losses.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append((losses['loss_ldm'].item(), losses['loss_pa'].item()))
    first, last = history[:8], history[-8:]
    mean = lambda rows, k: sum(r[k] for r in rows) / len(rows)  # noqa: E731
    assert mean(last, 0) < 0.8 * mean(first, 0), 'diffusion loss should fall'
    assert mean(last, 1) < mean(first, 1), 'perception loss should fall'


def test_noise_offset_shifts_each_channel_of_the_training_noise(gen_cfg, batch):
    """Offset noise: a per-sample, per-channel constant of std noise_offset on top of the pixel noise."""
    means = {}
    for offset in (0.0, 10.0):
        model = build_generator(gen_cfg, null_prompt_prob=0.0, noise_offset=offset)
        seen = []
        model.unet.register_forward_pre_hook(lambda module, args, kwargs: seen.append(args[0]), with_kwargs=True)
        data = model.data_preprocessor(batch, training=True)
        model.loss(**data, timesteps=torch.full((len(data['inputs']),), 999))  # the input is nearly all noise
        means[offset] = seen[0].mean(dim=(2, 3))  # (B, C) channel means of the noisy input
    assert means[0.0].abs().max() < 0.5, 'plain noise: channel means near 0'
    assert means[10.0].std() > 3, 'offset noise: channel means spread by about noise_offset'


def test_losses_of_a_fixed_batch_keep_their_values(gen_cfg):
    """The losses and the head's gradient of one fixed batch (no random flip), as the head computed them before its
    memory work (issue 25): a faster or leaner head must compute the same loss."""
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate
    dataset_cfg = copy.deepcopy(gen_cfg.train_dataloader.dataset)
    dataset_cfg.pipeline = [t for t in dataset_cfg.pipeline if t.type != 'RandomFlip']
    model = build_generator(gen_cfg)  # (in mmdet's default scope, which the dataset's transforms need)
    dataset = DATASETS.build(dataset_cfg)
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(4)]), training=True)
    losses = model.loss(**data, timesteps=torch.tensor([10, 300, 600, 900]))
    assert float(losses['loss_ldm']) == pytest.approx(0.796021, rel=1e-3)
    assert float(losses['loss_pa']) == pytest.approx(0.0102402, rel=1e-3)
    sum(losses.values()).backward()
    head_gradient = sum(float(p.grad.abs().sum()) for p in model.perception_head.parameters())
    assert head_gradient == pytest.approx(0.325190, rel=1e-3)


def test_pa_loss_is_sqrt_alpha_bar_weighted(gen_cfg, batch, monkeypatch):
    model = build_generator(gen_cfg, null_prompt_prob=0.0, pa_loss_weight=0.5)
    data = model.data_preprocessor(batch, training=True)
    # make every instance's mask loss 1: what remains is the weighting
    monkeypatch.setattr('mmdet_detdiffusion.generator.model.instance_mask_loss',
                        lambda logits, targets: torch.ones(len(logits)))
    timesteps = torch.tensor([0, 250, 500, 999])
    losses = model.loss(**data, timesteps=timesteps)
    counts = torch.tensor([len(s.gt_instances) for s in data['data_samples']])
    alpha_bar = model.scheduler.alphas_cumprod[timesteps]
    expected = 0.5 * (alpha_bar.sqrt() * counts).sum() / counts.sum()
    torch.testing.assert_close(losses['loss_pa'], expected.float())


def test_noise_level_weight_is_sqrt_alpha_bar_and_falls_with_noise():
    alphas_cumprod = torch.linspace(0.999, 0.01, 1000)
    # the paper's formula by hand at three timesteps: sqrt(alpha-bar_t)
    weights = noise_level_weight(alphas_cumprod, torch.tensor([0, 500, 999]))
    expected = torch.tensor([0.999 ** 0.5, float(alphas_cumprod[500]) ** 0.5, 0.01 ** 0.5])
    torch.testing.assert_close(weights, expected)
    assert (weights[1:] < weights[:-1]).all()
    linear = noise_level_weight(alphas_cumprod, torch.tensor([0, 500, 999]), power=1.0)
    torch.testing.assert_close(linear, alphas_cumprod[[0, 500, 999]])


def test_mask_loss_prefers_the_right_mask():
    target = torch.zeros(1, 8, 8)
    target[:, 2:6, 2:6] = 1
    good = generator_losses.instance_mask_loss(target * 20 - 10, target)
    bad = generator_losses.instance_mask_loss(10 - target * 20, target)
    assert good < 0.01 < 1.0 < bad


def test_step_randomness_is_reproducible_and_advances(gen_cfg, batch):
    a, b = build_generator(gen_cfg), build_generator(gen_cfg)
    data = a.data_preprocessor(batch, training=True)
    first_a, first_b = a.loss(**data), b.loss(**data)
    torch.testing.assert_close(first_a['loss_ldm'], first_b['loss_ldm'])
    assert int(a.num_train_steps) == 1 and 'num_train_steps' in a.state_dict()
    assert a.loss(**data)['loss_ldm'] != first_a['loss_ldm']  # the next step draws other noise
    c = build_generator(gen_cfg, seed=1)
    assert c.loss(**data)['loss_ldm'] != first_a['loss_ldm']


def test_trainable_parts(gen_cfg):
    model = build_generator(gen_cfg, trainable=('unet',))
    assert all(p.requires_grad for p in model.unet.parameters())
    assert not any(p.requires_grad for p in model.text_encoder.parameters())
    assert not any(p.requires_grad for p in model.perception_head.parameters())
    with pytest.raises(ValueError, match="'vae'"):
        build_generator(gen_cfg, trainable=('unet', 'vae'))


def test_sampling_shape_and_seed(gen_cfg):
    model = build_generator(gen_cfg).eval()
    layouts = [[LayoutObject('circle', (0.1, 0.1, 0.5, 0.5), 'hard')], []]
    images = model.sample(layouts, 32, 32, num_inference_steps=3, guidance_scale=2.0, seed=7)
    assert images.shape == (2, 32, 32, 3) and images.dtype == torch.uint8
    assert torch.equal(images, model.sample(layouts, 32, 32, num_inference_steps=3, guidance_scale=2.0, seed=7))
    assert not torch.equal(images, model.sample(layouts, 32, 32, num_inference_steps=3, guidance_scale=2.0, seed=8))


def test_export_reloads_with_equal_outputs(gen_cfg, batch, tmp_path):
    model = build_generator(gen_cfg).eval()
    folder = export_generator(model, str(tmp_path / 'export'))
    assert not (tmp_path / 'export.tmp').exists()
    reloaded = load_exported_generator(folder, device='cpu')
    assert reloaded.classes == model.classes and reloaded.grid.bins == model.grid.bins
    assert reloaded.feature_blocks == model.feature_blocks == (1, 2) and reloaded.object_order == model.object_order
    assert reloaded.perception_head.config.in_channels == model.perception_head.config.in_channels == [32, 16]
    assert len(reloaded.tokenizer) == len(model.tokenizer)
    data = model.data_preprocessor(batch)
    torch.testing.assert_close(reloaded(**data, mode='tensor'), model(**data, mode='tensor'))
    for name, value in model.perception_head.state_dict().items():
        assert torch.equal(value, reloaded.perception_head.state_dict()[name])
    layouts = [[LayoutObject('square', (0.2, 0.2, 0.7, 0.9), 'easy')]]
    assert torch.equal(model.sample(layouts, 32, 32, 2), reloaded.sample(layouts, 32, 32, 2))
    # plain transformers loads the text parts, the slot tokens last
    from transformers import CLIPTokenizer
    tokenizer = CLIPTokenizer.from_pretrained(folder + '/tokenizer')
    last = len(model.tokenizer) - 1
    assert tokenizer.convert_tokens_to_ids(['<easy>', '<hard>']) == [last - 1, last]


def test_box_maps_and_foreground_weights():
    maps = box_maps(torch.tensor([[0.0, 0.0, 0.5, 1.0], [0.40, 0.40, 0.41, 0.41]]), (4, 4))
    assert maps[0, 0].tolist() == [[1, 1, 0, 0]] * 4
    assert maps[1, 0].sum() == 1  # a tiny box still marks the pixel at its centre
    weights = foreground_weight_map([torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.75, 0.75, 1.0, 1.0]])], (8, 8))
    assert weights.shape == (1, 1, 8, 8)
    torch.testing.assert_close(weights.mean(), torch.tensor(1.0))
    assert weights[0, 0, 7, 7] > weights[0, 0, 0, 0] > weights[0, 0, 0, 7]  # small box > large box > background


def test_masked_padding_is_ignored_by_the_unet(gen_cfg):
    model = build_generator(gen_cfg).eval()
    assert model.mask_text_padding  # the tiny config's setting
    text = model.text_condition(['An image with circle <l3> <l200> <hard>', ''])
    mask = text['encoder_attention_mask']
    assert mask.dtype == torch.bool and mask.sum(dim=1).tolist() == [9, 2]  # BOS ... EOS; BOS EOS
    noisy, t = torch.randn(2, 3, 32, 32), torch.tensor([500, 500])
    other = text['encoder_hidden_states'].clone()
    other[~mask] = torch.randn_like(other[~mask])  # change only the padding states
    with torch.no_grad():
        out = model.unet(noisy, t, **text).sample
        torch.testing.assert_close(
            model.unet(noisy, t, encoder_hidden_states=other, encoder_attention_mask=mask).sample, out)
        assert not torch.allclose(model.unet(noisy, t, encoder_hidden_states=other).sample, out, atol=1e-4)


def test_one_recorder_serves_the_perception_head_and_a_deep_copy_records_into_its_own(gen_cfg, batch):
    model = build_generator(gen_cfg)
    ema, (noisy, t, text) = ema_copy_with_one_recorded_pass(model)
    data = model.data_preprocessor(batch, training=True)
    assert model.recorder.records == {}
    assert sorted(ema.recorder.records) == ['up_blocks.1', 'up_blocks.2']
    assert [f.shape[1] for f in (ema.recorder.pop('up_blocks.1')[0], ema.recorder.pop('up_blocks.2')[0])] == [32, 16]
    with torch.no_grad():
        ema.unet(noisy, t, **text)  # outside recording(): nothing kept
    assert ema.recorder.records == {}
    assert 'loss_pa' in model.loss(**data)
    assert not model.recorder.active and model.recorder.records == {}  # consumed by the P.A. loss


def test_the_core_model_adds_no_extra_loss(gen_cfg, batch):
    model = build_generator(gen_cfg, null_prompt_prob=0.0)
    data = model.data_preprocessor(batch, training=True)
    assert model.extra_losses([[]], data['inputs']) == {}
    assert sorted(model.loss(**data)) == ['loss_ldm', 'loss_pa']


def test_components_and_the_perception_head_come_from_registries(gen_cfg):
    from mmdet.registry import MODELS

    from mmdet_detdiffusion.generator.components import GENERATOR_COMPONENTS, build_component
    from mmdet_detdiffusion.generator.perception_head import PerceptionHead
    assert {'UNet2DConditionModel', 'AutoencoderKL', 'CLIPTextModel', 'CLIPTokenizer',
            'DDPMScheduler'} <= set(GENERATOR_COMPONENTS.module_dict)
    with pytest.raises(KeyError, match="unknown component type 'UNet3DConditionModel'"):
        build_component(dict(type='UNet3DConditionModel', config={}))
    assert MODELS.get('PerceptionHead') is PerceptionHead
    model = build_generator(gen_cfg, perception_head=dict(type='PerceptionHead', channels=8, num_convs=1),
                            feature_blocks=(2,))
    assert model.perception_head.config.in_channels == [16] and model.feature_blocks == (2,)


def test_separate_slot_embeddings_get_their_own_rate_export_and_load_from_a_table(gen_cfg, batch, tmp_path):
    from mmengine.optim import build_optim_wrapper
    model = build_generator(gen_cfg, separate_slot_embeddings=True)
    slots = model.slot_embeddings.weight
    wrapper = build_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-2),
        paramwise_cfg=dict(custom_keys={'slot_embeddings': dict(lr_mult=30.0, decay_mult=0.0)})))
    group = next(g for g in wrapper.optimizer.param_groups if any(p is slots for p in g['params']))
    assert group['lr'] == pytest.approx(0.03) and group['weight_decay'] == 0 and len(group['params']) == 1
    before = slots.detach().clone()
    model.train_step(batch, wrapper)
    assert not torch.equal(slots[:2], before[:2]), 'the prompts\' easy/hard tokens train them'

    with torch.no_grad():
        slots[1] = 3.0  # <hard>
    table = model.text_encoder.get_input_embeddings().weight
    hard = model.tokenizer.convert_tokens_to_ids('<hard>')
    folder = export_generator(model, str(tmp_path / 'export'))
    assert torch.equal(table[hard], slots[1]), 'written back into the table before the pipeline is saved'
    assert torch.equal(load_exported_generator(folder).text_encoder.get_input_embeddings().weight[hard], slots[1])

    state = {key: value for key, value in model.state_dict().items() if key != 'slot_embeddings.weight'}
    again = build_generator(gen_cfg, separate_slot_embeddings=True)
    again.load_state_dict(state)  # a checkpoint saved without them: the table's rows
    assert torch.equal(again.slot_embeddings.weight[1], slots[1])


def test_slot_embeddings_train_alone_as_in_textual_inversion(gen_cfg, batch):
    from mmengine.optim import build_optim_wrapper
    model = build_generator(gen_cfg, separate_slot_embeddings=True, trainable=('slot_embeddings', 'perception_head'))
    slots = model.slot_embeddings.weight
    assert slots.shape == (2, 32), 'easy and hard'
    frozen = {name: p.detach().clone() for name, p in model.named_parameters() if name.startswith(('unet', 'text'))}
    assert not any(p.requires_grad for name, p in model.named_parameters() if name in frozen)
    before = slots.detach().clone()
    wrapper = build_optim_wrapper(model, dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)))
    model.train_step(batch, wrapper)
    assert not torch.equal(slots[:2], before[:2])
    assert all(torch.equal(p, frozen[name]) for name, p in model.named_parameters() if name in frozen)
    with pytest.raises(ValueError, match='separate_slot_embeddings'):
        build_generator(gen_cfg, trainable=('slot_embeddings',))
