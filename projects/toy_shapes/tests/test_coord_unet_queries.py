"""The CoordUNet's cross-attention queries: a learned embedding of the query's position alone (the sin-cos features
of :mod:`mmdet_detdiffusion.generator.position_encoding`), the same for every image and noise level."""
import copy

import torch

from mmdet_detdiffusion.generator.components import build_component
from mmdet_detdiffusion.generator.recorder import UNetRecorder
from projects.toy_shapes.toy_shapes.attention_loss import CROSS_ATTENTION, record_cross_attention

UNET_CONFIG = dict(sample_size=16, in_channels=5, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
                   norm_num_groups=4, attention_head_dim=4, cross_attention_dim=8,
                   down_block_types=('DownBlock2D', 'CrossAttnDownBlock2D'),
                   up_block_types=('CrossAttnUpBlock2D', 'UpBlock2D'))  # test_coord_unet.py's


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
