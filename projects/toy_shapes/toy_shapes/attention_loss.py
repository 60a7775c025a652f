"""Layout attention loss: supervises the U-Net's cross-attention so that each object's prompt tokens are
attended from inside its box.

A stand-in for pretraining, used by the toy base model only
(``projects/toy_shapes/configs/generator/layout-pretrain_toy-coordunet_1xb32-3600iters_shapes-stream-64x64.py``):
Stable Diffusion arrives with cross-attention that already ties words to image regions, so GeoDiffusion
and DetDiffusion fine-tune it with the diffusion loss alone. A tiny U-Net and text encoder trained from
scratch must first discover which location tokens belong to which pixels; with the diffusion loss alone
that takes thousands of steps (the image shows blobs wherever the noise puts them). This loss gives the
query-key match a direct signal: each query is a pixel to classify, and its attention over the prompt
tokens is the prediction.

    per cross-attention map A (queries x tokens, heads averaged) and query p:
    inside a box: own(p) = the tokens of the objects whose box holds p (class words, corners, attribute),
                  L(p) = mean over s in own(p) of -log(A[p, s] * |own(p)|)
                  (cross-entropy to the uniform distribution over own(p), 0 when A[p] is that)
    outside every box: L(p) = -log(sum of A[p, s] over the tokens of no object: BOS, "An image with", EOS)
    L = mean over p of L(p)

Every token of an object is looked up from its box, not just enough of them: a token that is attended
nowhere can never be learned to matter, since the gradient through its attention weight vanishes with
the weight. (A base trained on random attribute tokens that only had to attend to "the object's tokens"
gave them ~1e-4 of the attention; fine-tuning could then not teach them what easy and hard mean.)
The background's share keeps the loss from being met by every query attending to every object. (The
energy of layout guidance, Chen et al., "Training-free layout control with cross-attention guidance",
2023, the share of each object's attention that lies in its box, was tried first: it is met by a model
that gives the objects almost no attention at all, as long as what little there is lies in the boxes,
and the generator then ignored its prompts.)
"""
from typing import Dict, List, Sequence, Tuple

import torch
from diffusers.models.attention_processor import Attention

from mmdet_detdiffusion.generator.perception_head import box_maps
from mmdet_detdiffusion.generator.recorder import UNetRecorder

PROB_FLOOR = 1e-10  # attention below it adds no gradient: low, so that nearly ignored tokens are still pulled up
CROSS_ATTENTION = 'cross_attention'  # the recorder's name for the maps


class RecordingCrossAttnProcessor:
    """Cross-attention with explicit probabilities, added to a
    :class:`~mmdet_detdiffusion.generator.recorder.UNetRecorder` under ``CROSS_ATTENTION`` as ``(B, queries, tokens)``
    (heads averaged)."""

    def __init__(self, recorder: UNetRecorder):
        self.recorder = recorder

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor = None,
                 attention_mask: torch.Tensor = None, **kwargs) -> torch.Tensor:
        batch = hidden_states.shape[0]
        mask = attn.prepare_attention_mask(attention_mask, encoder_hidden_states.shape[1], batch)
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        key = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        value = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
        probs = attn.get_attention_scores(query, key, mask)
        if self.recorder.active:  # the head average only when it is kept
            self.recorder.add(CROSS_ATTENTION, probs.unflatten(0, (batch, attn.heads)).mean(1))
        out = attn.batch_to_head_dim(torch.bmm(probs, value))
        return attn.to_out[1](attn.to_out[0](out))


def record_cross_attention(unet: torch.nn.Module, recorder: UNetRecorder) -> None:
    """Give every cross-attention layer of ``unet`` a :class:`RecordingCrossAttnProcessor` adding to
    ``recorder``."""
    layers = [m for m in unet.modules() if isinstance(m, Attention) and m.is_cross_attention]
    if not layers:
        raise ValueError('record_cross_attention: the U-Net has no cross-attention layers')
    for layer in layers:
        if layer.norm_cross is not None or layer.group_norm is not None or layer.residual_connection \
                or layer.rescale_output_factor != 1.0:
            raise ValueError('record_cross_attention supports plain transformer-block cross-attention only')
        layer.set_processor(RecordingCrossAttnProcessor(recorder))


def layout_attention_loss(maps: Sequence[torch.Tensor], image_size: Tuple[int, int], boxes: torch.Tensor,
                          spans: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
    """Mean over maps, and over the queries of the samples that have objects, of the loss in the module
    docstring.

    Args:
        maps: cross-attention probabilities, each ``(B, h * w, tokens)`` on an ``h x w`` grid with the
            aspect of ``image_size`` (height, width) of the U-Net input.
        boxes: ``(N, 4)`` normalised xyxy boxes of all objects in the batch (N >= 1).
        spans: ``(N, 2)`` ``[start, end)`` token positions of each object in its prompt.
        batch_index: ``(N,)`` the sample each object belongs to.
    """
    batch, _, num_tokens = maps[0].shape
    positions = torch.arange(num_tokens, device=maps[0].device)
    tokens = ((positions >= spans[:, :1]) & (positions < spans[:, 1:])).to(maps[0])  # (N, tokens), all maps
    has_objects = torch.zeros(batch, dtype=torch.bool, device=maps[0].device)
    has_objects[batch_index] = True
    object_tokens = tokens.new_zeros(batch, num_tokens).index_add(0, batch_index, tokens).clamp(max=1)  # (B, tokens)
    inside_by_queries: Dict[int, torch.Tensor] = {}  # box masks per grid size, (N, queries)
    losses: List[torch.Tensor] = []
    for probs in maps:
        queries = probs.shape[1]
        if queries not in inside_by_queries:
            height = round((queries * image_size[0] / image_size[1]) ** 0.5)
            inside_by_queries[queries] = box_maps(boxes.to(probs), (height, queries // height)).flatten(1)
        inside = inside_by_queries[queries]
        log_probs = probs.clamp(min=PROB_FLOOR).log()
        # own[b, p, s] = 1 where token s belongs to an object of sample b whose box holds query p
        own = probs.new_zeros(probs.shape).index_add(0, batch_index, torch.einsum('nq,nk->nqk', inside, tokens))
        own = own.clamp(max=1)
        count = own.sum(-1)  # (B, queries), 0 outside every box
        in_box = -(own * (log_probs + count.clamp(min=1).log()[..., None])).sum(-1) / count.clamp(min=1)
        on_no_object = 1 - torch.einsum('bqk,bk->bq', probs, object_tokens)
        outside = -on_no_object.clamp(min=PROB_FLOOR).log()
        losses.append(torch.where(count > 0, in_box, outside)[has_objects].mean())
    return torch.stack(losses).mean()
