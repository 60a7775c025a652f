"""Probe: where do the pixels of a box look in the prompt?

The toy base's cross-attention queries are a function of position alone (:mod:`~projects.toy_shapes.toy_shapes.
coord_unet`), so which prompt tokens a pixel reads does not depend on the image or the timestep: one forward pass
shows it. This prints, for each cross-attention layer, the attention mass that the pixels inside one object's box
put on each part of that object's text (class words, the two corner tokens, the attribute token) and on the rest
of the prompt, averaged over heads and pixels. With the prompt read by a causal text encoder (CLIP's), the
corner tokens' states cannot see the attribute token written after them: the U-Net reads the attribute only if
the box's pixels attend to the attribute token itself.

    python projects/toy_shapes/docs/probes/slot_attention.py [BASE]

BASE: a base or an export folder (default projects/toy_shapes/assets/toy_shapes_base).
"""
import argparse
from typing import Dict, List

import torch
from diffusers.models.attention_processor import Attention

from mmdet_detdiffusion.layout.prompt import LayoutObject, object_token_spans
from projects.toy_shapes.toy_shapes.shapes import SHAPES_CLASSES
from projects.toy_shapes.toy_shapes.toy_loop import base_pipeline

LAYOUT = [LayoutObject('circle', (0.1, 0.1, 0.45, 0.45), 'hard'),
          LayoutObject('square', (0.55, 0.5, 0.9, 0.85), 'easy')]


def attention_of(attention: Attention, hidden: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """``(h * w, tokens)`` attention probabilities of a cross-attention layer, averaged over heads."""
    query = attention.head_to_batch_dim(attention.to_q(hidden))
    key = attention.head_to_batch_dim(attention.to_k(states))
    probs = attention.get_attention_scores(query, key)  # (B * heads, h * w, tokens)
    return probs.mean(dim=0)


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('base', nargs='?', default='projects/toy_shapes/assets/toy_shapes_base')
    args = parser.parse_args()
    pipe = base_pipeline(base_dir=args.base, classes=SHAPES_CLASSES)
    prompts, objects, _ = pipe.layout_prompts([LAYOUT])
    print('prompt:', prompts[0])
    states, _ = pipe.encode_prompt(prompts)
    spans = object_token_spans(objects[0], pipe.count_tokens)
    start, end = spans[0]
    parts = {'class words': list(range(start, end - 3)), 'corners': [end - 3, end - 2], 'attribute': [end - 1],
             'other object': list(range(*spans[1])), 'prefix, EOS, padding': None}
    records: List[Dict] = []

    def record(attention: Attention, inputs: tuple, kwargs: dict) -> None:
        hidden = inputs[0] if inputs else kwargs['hidden_states']  # already the position queries (hooked before)
        records.append(dict(grid=attention.query_grid, probs=attention_of(attention, hidden[:1], states)))

    layers = [m for m in pipe.unet.modules() if hasattr(m, 'query_position')]
    handles = [layer.register_forward_pre_hook(record, with_kwargs=True) for layer in layers]
    size = pipe.unet.config.sample_size
    pipe.unet(torch.zeros(1, pipe.unet.sample_channels, size, size), 500, states)
    for handle in handles:
        handle.remove()
    x1, y1, x2, y2 = LAYOUT[0].box
    print(f'attention mass of the pixels inside {LAYOUT[0].name} {LAYOUT[0].box} ({LAYOUT[0].attr}), per layer:')
    print(f'{"layer grid":>10} ' + ' '.join(f'{name:>22}' for name in parts))
    for rec in records:
        h, w = rec['grid']
        ys, xs = torch.meshgrid((torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w, indexing='ij')
        inside = ((xs >= x1) & (xs <= x2) & (ys >= y1) & (ys <= y2)).reshape(-1)
        mass = rec['probs'][inside].mean(dim=0)
        named = {name: float(mass[index].sum()) for name, index in parts.items() if index is not None}
        named['prefix, EOS, padding'] = 1.0 - sum(named.values())
        print(f'{h:>4}x{w:<5} ' + ' '.join(f'{value:>22.3f}' for value in named.values()))


if __name__ == '__main__':
    main()
