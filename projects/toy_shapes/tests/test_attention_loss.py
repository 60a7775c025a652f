"""Layout attention loss: recorded cross-attention maps and the loss on hand-made maps."""
import copy

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor2_0

from mmdet_detdiffusion.generator.components import build_component
from mmdet_detdiffusion.generator.recorder import UNetRecorder
from projects.toy_shapes.toy_shapes.attention_loss import CROSS_ATTENTION, layout_attention_loss, record_cross_attention

UNET_CONFIG = dict(sample_size=16, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
                   norm_num_groups=4, attention_head_dim=4, cross_attention_dim=8,
                   down_block_types=('DownBlock2D', 'CrossAttnDownBlock2D'),
                   up_block_types=('CrossAttnUpBlock2D', 'UpBlock2D'))
BOX = torch.tensor([[0.0, 0.0, 0.5, 0.5]])  # the top-left quadrant of a 4x4 map: queries 0, 1, 4, 5
SPAN = torch.tensor([[1, 3]])  # the object's tokens are 1 and 2 of 4


def attention_map(inside_tokens, outside_tokens) -> torch.Tensor:
    """``(1, 16, 4)`` attention: queries in the box attend ``inside_tokens``, the others ``outside_tokens``."""
    probs = torch.zeros(1, 16, 4)
    for query in range(16):
        tokens = inside_tokens if query in (0, 1, 4, 5) else outside_tokens
        probs[0, query, tokens] = 1.0 / len(tokens)
    return probs


@pytest.mark.parametrize('inside, outside, expected', [
    ([1, 2], [0, 3], 0.0),         # each of the object's tokens gets 1/2 in its box, the rest from outside
    ([1], [0], 2.7049),            # token 2 is ignored: 4 box queries * (log(1/2) - log(2e-10)) / 2 / 16
    ([1, 2, 0, 3], [0, 3], 0.1733),  # its 4 box queries give it 1/2: 4 * log(2) / 16
    ([1, 2], [1, 2, 0, 3], 0.5199),  # the 12 outside queries give it 1/2: 12 * log(2) / 16
    ([0, 3], [1, 2], 22.8526),     # all wrong: (4 * -log(2e-10) + 12 * -log(1e-10)) / 16, at the floor
])
def test_loss_on_hand_made_maps(inside, outside, expected):
    loss = layout_attention_loss([attention_map(inside, outside)], (64, 64), BOX, SPAN, torch.tensor([0]))
    torch.testing.assert_close(loss, torch.tensor(expected), atol=1e-4, rtol=0)


def test_samples_without_objects_do_not_count_and_gradients_reach_the_map():
    logits = torch.zeros(2, 16, 4, requires_grad=True)
    loss = layout_attention_loss([logits.softmax(-1)], (64, 64), BOX, SPAN, torch.tensor([0]))
    torch.testing.assert_close(loss, torch.log(torch.tensor(2.0)))  # every query gives the object 1/2
    loss.backward()
    assert torch.all(logits.grad[1] == 0)  # sample 1 has no objects (a dropped prompt)
    inside_object, outside_object = logits.grad[0, 0, 1], logits.grad[0, 15, 1]
    assert inside_object < 0 < outside_object  # descent raises the object's attention in its box only


def tiny_unet():
    torch.manual_seed(0)
    return build_component(dict(type='UNet2DConditionModel', config=UNET_CONFIG)).eval()


def test_recorded_processors_keep_the_unet_output_and_record_while_active():
    unet = tiny_unet()
    sample, t, text = torch.randn(2, 3, 16, 16), torch.tensor([10, 500]), torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    with torch.no_grad():
        unet.set_attn_processor(AttnProcessor2_0())
        reference = unet(sample, t, encoder_hidden_states=text, encoder_attention_mask=mask).sample
        recorder = UNetRecorder()
        record_cross_attention(unet, recorder)
        out = unet(sample, t, encoder_hidden_states=text, encoder_attention_mask=mask).sample
        assert recorder.records == {}  # not recording: nothing kept
        with recorder.recording():
            unet(sample, t, encoder_hidden_states=text, encoder_attention_mask=mask)
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-4)
    maps = recorder.pop(CROSS_ATTENTION)
    # cross-attention at 8x8: in the last down block, the mid block, and twice in the first up block
    assert [m.shape[1] for m in maps] == [64, 64, 64, 64]
    for probs in maps:
        assert probs.shape[::2] == (2, 5)
        torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:2]))
        assert probs[0, :, 3:].abs().max() < 1e-6  # masked padding gets no attention
    ema = copy.deepcopy(unet)  # an EMA copy records into its own recorder
    ema_recorder = ema.down_blocks[1].attentions[0].transformer_blocks[0].attn2.processor.recorder
    assert ema_recorder is not recorder
    assert ema.mid_block.attentions[0].transformer_blocks[0].attn2.processor.recorder is ema_recorder


def test_unet_without_cross_attention_is_refused():
    unet = build_component(dict(type='UNet2DModel', config=dict(
        sample_size=8, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8,),
        norm_num_groups=4, down_block_types=('DownBlock2D',), up_block_types=('UpBlock2D',))))
    with pytest.raises(ValueError, match='no cross-attention'):
        record_cross_attention(unet, UNetRecorder())
