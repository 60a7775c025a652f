"""Turn a toy generator export into the repository's toy base model, the stand-in for a pretrained
layout-to-image model that the demo fine-tunes (as DetDiffusion fine-tunes Stable Diffusion).

    python tools/train_generator.py configs/generator/toy_shapes_base.py --data-root data/shapes_base
    python tools/make_toy_base.py work_dirs/toy_shapes_base/export assets/toy_shapes_base

Writes ``unet/`` and ``text_encoder/`` (diffusers / transformers folders) and ``base.json`` (where they came
from). The embedding rows of CLIP words that shapes prompts never use are set to zero, so that the text
encoder file compresses well in git; the prompts' own words and every layout token keep their rows.
"""
import argparse
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmdet_detdiffusion.generator.export import load_exported_generator  # noqa: E402
from mmdet_detdiffusion.generator.text import layout_tokens  # noqa: E402
from mmdet_detdiffusion.layout.prompt import PROMPT_PREFIX  # noqa: E402


def prompt_token_ids(tokenizer, classes, grid) -> torch.Tensor:
    """Ids of every token a layout prompt over ``classes`` can contain (special tokens included)."""
    words = tokenizer(' '.join([PROMPT_PREFIX, *classes])).input_ids  # with BOS and EOS (also the padding)
    return torch.tensor(sorted(set(words) | set(tokenizer.convert_tokens_to_ids(layout_tokens(grid)))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('export', help='generator export folder (tools/train_generator.py writes WORK_DIR/export)')
    parser.add_argument('out_dir', help='base model folder to write, e.g. assets/toy_shapes_base')
    args = parser.parse_args()
    model = load_exported_generator(args.export, device='cpu')
    table = model.text_encoder.get_input_embeddings().weight
    keep = torch.zeros(len(table), dtype=torch.bool)
    keep[prompt_token_ids(model.tokenizer, model.classes, model.grid)] = True
    with torch.no_grad():
        table[~keep] = 0.0
    tmp_dir = os.path.abspath(args.out_dir) + '.tmp'
    shutil.rmtree(tmp_dir, ignore_errors=True)
    model.unet.save_pretrained(os.path.join(tmp_dir, 'unet'))
    model.text_encoder.save_pretrained(os.path.join(tmp_dir, 'text_encoder'))
    with open(os.path.join(args.export, 'detdiffusion.json')) as f:
        settings = json.load(f)
    with open(os.path.join(tmp_dir, 'base.json'), 'w') as f:
        json.dump(dict(source=os.path.abspath(args.export), classes=list(model.classes), location_bins=model.grid.bins,
                       kept_token_rows=int(keep.sum()), data_filters=settings.get('data_filters', {})), f, indent=2)
    shutil.rmtree(args.out_dir, ignore_errors=True)
    os.replace(tmp_dir, args.out_dir)
    print(f'toy base model written to {args.out_dir} ({int(keep.sum())} of {len(table)} token rows kept)')


if __name__ == '__main__':
    main()
