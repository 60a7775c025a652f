"""CoordUNet2DConditionModel (U-Net with coordinate input maps) and the diffusion targets."""
import json

import pytest
import torch
from diffusers import DDPMScheduler

from mmdet_detdiffusion.generator.components import build_component
from projects.toy_shapes.toy_shapes.coord_unet import CoordUNet2DConditionModel, coordinate_maps

UNET_CONFIG = dict(sample_size=16, in_channels=5, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
                   norm_num_groups=4, attention_head_dim=4, cross_attention_dim=8,
                   down_block_types=('DownBlock2D', 'CrossAttnDownBlock2D'),
                   up_block_types=('CrossAttnUpBlock2D', 'UpBlock2D'))


def tiny_coord_unet() -> CoordUNet2DConditionModel:
    torch.manual_seed(0)
    return build_component(dict(type='CoordUNet2DConditionModel', config=UNET_CONFIG))


def test_coordinate_maps_span_minus_one_to_one_along_each_axis():
    maps = coordinate_maps(2, 3, 5, torch.zeros(1))
    assert maps.shape == (2, 2, 3, 5)
    assert maps[0, 0, 0].tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]  # x grows along the width
    assert maps[0, 1, :, 0].tolist() == [-1.0, 0.0, 1.0]  # y grows down the height
    assert torch.equal(maps[1], maps[0])


def test_fourier_maps_follow_the_ramps_and_the_config_gives_their_number():
    maps = coordinate_maps(1, 4, 8, torch.zeros(1), frequencies=2)
    assert maps.shape == (1, 10, 4, 8)
    x, y = maps[0, 0], maps[0, 1]
    torch.testing.assert_close(maps[0, 2], torch.sin(torch.pi * x))
    torch.testing.assert_close(maps[0, 5], torch.cos(torch.pi * y))
    torch.testing.assert_close(maps[0, 6], torch.sin(2 * torch.pi * x))
    unet = build_component(dict(type='CoordUNet2DConditionModel', config={**UNET_CONFIG, 'in_channels': 3 + 2 + 8}))
    assert unet.coordinate_frequencies == 2
    with torch.no_grad():
        assert unet(torch.zeros(1, 3, 16, 16), torch.tensor([1]), encoder_hidden_states=torch.zeros(1, 4, 8)
                    ).sample.shape == (1, 3, 16, 16)
    odd = build_component(dict(type='CoordUNet2DConditionModel', config={**UNET_CONFIG, 'in_channels': 3 + 2 + 3}))
    with pytest.raises(ValueError, match=r'out_channels \(3\) \+ 2 \+ 4 \* frequencies'):
        odd(torch.zeros(1, 3, 16, 16), torch.tensor([1]), encoder_hidden_states=torch.zeros(1, 4, 8))


def test_forward_takes_the_sample_alone_and_sees_position():
    unet = tiny_coord_unet().eval()
    assert unet.sample_channels == 3
    sample, text = torch.zeros(1, 3, 16, 16), torch.zeros(1, 4, 8)
    with torch.no_grad():
        out = unet(sample, torch.tensor([10]), encoder_hidden_states=text).sample
    assert out.shape == (1, 3, 16, 16)
    # a constant input gives a position-dependent output: left and right halves differ, unlike mirror images
    assert not torch.allclose(out[..., :8], out[..., 8:].flip(-1), atol=1e-4)
    with pytest.raises(ValueError, match='samples of 3 channels'):
        unet(torch.zeros(1, 5, 16, 16), torch.tensor([10]), encoder_hidden_states=text)


def test_saved_coord_unet_reloads_as_itself(tmp_path):
    unet = tiny_coord_unet()
    unet.save_pretrained(tmp_path / 'unet')
    assert json.loads((tmp_path / 'unet' / 'config.json').read_text())['_class_name'] == 'CoordUNet2DConditionModel'
    reloaded = build_component(dict(type='CoordUNet2DConditionModel', from_pretrained=str(tmp_path / 'unet')))
    assert type(reloaded) is CoordUNet2DConditionModel
    for name, value in unet.state_dict().items():
        assert torch.equal(value, reloaded.state_dict()[name])


@pytest.mark.parametrize('prediction_type', ['epsilon', 'v_prediction', 'sample'])
def test_prediction_target_follows_the_scheduler(prediction_type):
    from mmdet_detdiffusion.generator.model import DetDiffusionGenerator
    scheduler = DDPMScheduler(num_train_timesteps=100, prediction_type=prediction_type)
    holder = type('Holder', (), {'scheduler': scheduler})()
    latents, noise, timesteps = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4), torch.tensor([5, 90])
    target = DetDiffusionGenerator.prediction_target(holder, latents, noise, timesteps)
    expected = {'epsilon': noise, 'sample': latents,
                'v_prediction': scheduler.get_velocity(latents, noise, timesteps)}[prediction_type]
    assert torch.equal(target, expected)


def test_patch_size_runs_the_unet_on_a_coarser_grid_and_reloads(tmp_path):
    config = {**UNET_CONFIG, 'patch_size': 2, 'in_channels': 12 + 2, 'out_channels': 12}
    unet = build_component(dict(type='CoordUNet2DConditionModel', config=config)).eval()
    assert unet.sample_channels == 3
    seen = []
    unet.conv_in.register_forward_hook(lambda module, args, out: seen.append(args[0].shape))
    sample, text = torch.randn(2, 3, 16, 16), dict(encoder_hidden_states=torch.randn(2, 4, 8))
    with torch.no_grad():
        out = unet(sample, torch.tensor([3, 7]), **text).sample
        assert unet(sample, torch.tensor([3, 7]), return_dict=False, **text)[0].shape == out.shape
    assert out.shape == (2, 3, 16, 16) and seen[0] == (2, 14, 8, 8)  # 2x2 patches of RGB + x, y maps
    with pytest.raises(ValueError, match='sides divisible by 2'):
        unet(torch.zeros(1, 3, 15, 16), torch.tensor([1]), encoder_hidden_states=torch.zeros(1, 4, 8))
    unet.save_pretrained(tmp_path / 'unet')
    assert json.loads((tmp_path / 'unet' / 'config.json').read_text())['patch_size'] == 2
    reloaded = build_component(dict(type='CoordUNet2DConditionModel', from_pretrained=str(tmp_path / 'unet'))).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(sample, torch.tensor([3, 7]), **text).sample, out)
    with pytest.raises(ValueError, match=r'sample channels times patch_size \*\* 2'):
        build_component(dict(type='CoordUNet2DConditionModel', config={**config, 'out_channels': 6}))
