"""Layout attention loss: supervises the U-Net's cross-attention so that each object's prompt tokens are
attended from inside its box.

A stand-in for pretraining, used by the toy base model only (``configs/generator/toy_shapes_base.py``):
Stable Diffusion arrives with cross-attention that already ties words to image regions, so GeoDiffusion
and DetDiffusion fine-tune it with the diffusion loss alone. A tiny U-Net and text encoder trained from
scratch must first discover which location tokens belong to which pixels; with the diffusion loss alone
that takes thousands of steps (the image shows blobs wherever the noise puts them). This loss gives the
query-key match a direct signal, the energy of layout guidance (Chen et al., "Training-free layout
control with cross-attention guidance", 2023) used as a training loss:

    per object i and cross-attention map A (queries x tokens, heads averaged):
    a_i(p) = sum of A[p, s] over the object's tokens s (class words, corners, attribute)
    L_i = 1 - sum_{p in box} a_i(p) / sum_p a_i(p)        the object's attention lies in its box

(A second term asking queries in the box to attend to the object only was tried and dropped: it is met
at once by every query attending to the object tokens, which saturates the softmax and stalls L_i.)
"""
from typing import Dict, List, Sequence, Tuple

import torch
from diffusers.models.attention_processor import Attention

from mmdet_detdiffusion.generator.perception_head import box_maps


class RecordingCrossAttnProcessor:
    """Cross-attention with explicit probabilities, kept in ``state['maps']`` as ``(B, queries, tokens)``
    (heads averaged) while ``state['active']``; one state is shared by all processors of a U-Net (and by
    their deep copies, e.g. an EMA model's, which record into their own copied state)."""

    def __init__(self, state: dict):
        self.state = state

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor = None,
                 attention_mask: torch.Tensor = None, **kwargs) -> torch.Tensor:
        batch = hidden_states.shape[0]
        mask = attn.prepare_attention_mask(attention_mask, encoder_hidden_states.shape[1], batch)
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        key = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        value = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
        probs = attn.get_attention_scores(query, key, mask)
        if self.state['active']:
            self.state['maps'].append(probs.unflatten(0, (batch, attn.heads)).mean(1))
        out = attn.batch_to_head_dim(torch.bmm(probs, value))
        return attn.to_out[1](attn.to_out[0](out))


def record_cross_attention(unet: torch.nn.Module) -> dict:
    """Give every cross-attention layer of ``unet`` a :class:`RecordingCrossAttnProcessor`; return their
    shared state ``{'active': False, 'maps': []}``."""
    state = dict(active=False, maps=[])
    layers = [m for m in unet.modules() if isinstance(m, Attention) and m.is_cross_attention]
    if not layers:
        raise ValueError('record_cross_attention: the U-Net has no cross-attention layers')
    for layer in layers:
        if layer.norm_cross is not None or layer.group_norm is not None or layer.residual_connection \
                or layer.rescale_output_factor != 1.0:
            raise ValueError('record_cross_attention supports plain transformer-block cross-attention only')
        layer.set_processor(RecordingCrossAttnProcessor(state))
    return state


def layout_attention_loss(maps: Sequence[torch.Tensor], image_size: Tuple[int, int], boxes: torch.Tensor,
                          spans: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
    """Mean over objects and maps of the loss in the module docstring.

    Args:
        maps: cross-attention probabilities, each ``(B, h * w, tokens)`` on an ``h x w`` grid with the
            aspect of ``image_size`` (height, width) of the U-Net input.
        boxes: ``(N, 4)`` normalised xyxy boxes of all objects in the batch.
        spans: ``(N, 2)`` ``[start, end)`` token positions of each object in its prompt.
        batch_index: ``(N,)`` the sample each object belongs to.
    """
    positions = torch.arange(maps[0].shape[2], device=maps[0].device)
    tokens = ((positions >= spans[:, :1]) & (positions < spans[:, 1:])).to(maps[0])  # (N, tokens), all maps
    inside_by_queries: Dict[int, torch.Tensor] = {}  # box masks per grid size, (N, queries)
    losses: List[torch.Tensor] = []
    for probs in maps:
        queries = probs.shape[1]
        if queries not in inside_by_queries:
            height = round((queries * image_size[0] / image_size[1]) ** 0.5)
            inside_by_queries[queries] = box_maps(boxes.to(probs), (height, queries // height)).flatten(1)
        inside = inside_by_queries[queries]
        per_object = torch.einsum('nqk,nk->nq', probs[batch_index], tokens)  # attention paid to object i
        losses.append(1 - (per_object * inside).sum(1) / per_object.sum(1).clamp(min=1e-6))
    return torch.stack(losses).mean()
