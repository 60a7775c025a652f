"""The sin-cos position encoding shared by location tokens and the CoordUNet's attention blocks."""
import copy

import pytest
import torch

from mmdet_detdiffusion.generator.attention_loss import CROSS_ATTENTION, record_cross_attention
from mmdet_detdiffusion.generator.components import build_component
from mmdet_detdiffusion.generator.position_encoding import axis_frequencies, grid_centres, sincos_2d, sincos_2d_features
from mmdet_detdiffusion.generator.recorder import UNetRecorder
from tests.test_coord_unet import UNET_CONFIG


def test_frequencies_run_from_half_a_period_per_image_to_a_period_per_two_cells():
    omega = axis_frequencies(4, 64)
    torch.testing.assert_close(omega[[0, -1]], torch.tensor([torch.pi, torch.pi * 32], dtype=torch.float64))
    assert torch.all(omega[1:] > omega[:-1])
    assert axis_frequencies(1, 8).tolist() == [torch.pi]
    with pytest.raises(ValueError, match='cells >= 2'):
        axis_frequencies(4, 1)


def test_token_rows_encode_their_grid_point_x_first_then_y():
    table = sincos_2d(4, 8)
    assert table.shape == (16, 8)
    x, y = grid_centres(4, 4)
    assert (x[6].item(), y[6].item()) == (2.5 / 4, 1.5 / 4)  # pixel cells, row-major: index 6 is cell (x=2, y=1)
    # location token 6 of a 4x4 grid is the point (2/3, 1/3) (GeoDiffusion's points span [0, 1])
    torch.testing.assert_close(table[6], sincos_2d_features(torch.tensor([2 / 3]), torch.tensor([1 / 3]), 8, 4)[0])
    lowest = torch.pi * torch.tensor([2 / 3, 2 / 3, 1 / 3, 1 / 3])  # x sin, x cos, y sin, y cos at pi
    torch.testing.assert_close(table[6, [0, 2, 4, 6]], torch.stack([lowest[0].sin(), lowest[1].cos(),
                                                                    lowest[2].sin(), lowest[3].cos()]))
    with pytest.raises(ValueError, match='divisible by 4'):
        sincos_2d(4, 6)


def test_a_token_matches_its_own_cell_best():
    """Dot products of a location token's encoding with every cell's peak at its own cell."""
    bins, dim = 16, 32
    table = sincos_2d(bins, dim)
    similarity = table @ table.T  # (tokens, cells)
    assert torch.equal(similarity.argmax(dim=1), torch.arange(bins * bins))


def test_coord_unet_cross_attention_queries_are_a_learned_position_embedding(tmp_path):
    torch.manual_seed(0)
    unet = build_component(dict(type='CoordUNet2DConditionModel', config=UNET_CONFIG)).eval()
    projections = [name for name, _ in unet.named_modules() if name.endswith('query_position')]
    assert projections == [f'{block}.transformer_blocks.0.attn2.query_position' for block in (
        'down_blocks.1.attentions.0', 'up_blocks.0.attentions.0', 'up_blocks.0.attentions.1', 'mid_block.attentions.0')]
    inputs = (torch.randn(1, 3, 16, 16), torch.tensor([5]))
    text = dict(encoder_hidden_states=torch.randn(1, 4, 8))
    with torch.no_grad():
        out = unet(*inputs, **text).sample
        trained = copy.deepcopy(unet)  # e.g. an EMA copy: runs its own projections
        torch.testing.assert_close(trained(*inputs, **text).sample, out)
        layer = trained.mid_block.attentions[0].transformer_blocks[0].attn2
        layer.query_position.weight.normal_()
        assert not torch.allclose(trained(*inputs, **text).sample, out, atol=1e-5)
        assert layer.query_grid == (8, 8)  # the mid block's grid on 16 x 16 samples
        torch.testing.assert_close(unet(*inputs, **text).sample, out)
        out = trained(*inputs, **text).sample
    trained.save_pretrained(tmp_path / 'unet')
    reloaded = build_component(dict(type='CoordUNet2DConditionModel', from_pretrained=str(tmp_path / 'unet'))).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(*inputs, **text).sample, out, rtol=1e-4, atol=1e-5)


def test_cross_attention_maps_do_not_depend_on_the_image():
    """Position-only queries: the layout lookup is the same at every noise level and for every image."""
    torch.manual_seed(0)
    unet = build_component(dict(type='CoordUNet2DConditionModel', config=UNET_CONFIG)).eval()
    recorder = UNetRecorder()
    record_cross_attention(unet, recorder)
    text = torch.randn(1, 4, 8).expand(2, -1, -1)
    with torch.no_grad(), recorder.recording():
        unet(torch.randn(2, 3, 16, 16), torch.tensor([10, 990]), encoder_hidden_states=text)
    maps = recorder.pop(CROSS_ATTENTION)
    assert len(maps) == 4
    for probs in maps:  # (2, queries, 4): the two samples differ in image and timestep only
        torch.testing.assert_close(probs[0], probs[1])
        assert probs[0].std(dim=0).max() > 1e-3  # but the queries differ by position
