"""Text-encoder rows for the toy's from-scratch text encoder: orthogonal word rows, and slot tokens started
from other slot tokens' rows (the fine-tuning's initialiser tokens)."""
from typing import Dict, List, Sequence

import torch

from mmdet_detdiffusion.generator.text import slot_token_ids
from mmdet_detdiffusion.layout.attributes import ATTRIBUTE_TOKENS


def copy_slot_rows(tokenizer, text_encoder: torch.nn.Module, sources: Dict[str, str]) -> None:
    """Start slot tokens from other slot tokens' embedding rows, ``sources`` = ``{value: source value}`` (names of
    :data:`ATTRIBUTE_TOKENS`), as textual inversion starts a new token from an initializer token: e.g.
    ``dict(hard='faint', easy='bright')`` on the toy base, whose pretraining bound ``<faint>``/``<bright>``."""
    unknown = sorted((set(sources) | set(sources.values())) - set(ATTRIBUTE_TOKENS))
    if unknown:
        raise ValueError(f'copy_slot_rows: {unknown} are not attribute-slot values {sorted(ATTRIBUTE_TOKENS)}')
    names = sorted({*sources, *sources.values()})
    ids = dict(zip(names, slot_token_ids(tokenizer, names)))
    table = text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        rows = {name: table[ids[source]].clone() for name, source in sources.items()}  # all read before any write
        for name, row in rows.items():
            table[ids[name]] = row


def init_word_embeddings(tokenizer, text_encoder: torch.nn.Module, words: Sequence[str], norm: float,
                         seed: int = 0) -> List[int]:
    """Give the tokens of ``words`` orthogonal embedding rows of length ``norm`` (a text encoder trained from
    scratch; returns their ids).

    CLIP arrives knowing its words apart; a from-scratch encoder starts with rows of norm ~0.16 that its
    position embeddings and layers blur (the toy base's states for 'circle' and 'square' ended 2% apart,
    and it drew every class alike). Distinct rows give the U-Net class words to read from the first step.
    """
    ids = sorted({i for word in words for i in tokenizer(word, add_special_tokens=False).input_ids})
    table = text_encoder.get_input_embeddings().weight
    if len(ids) > table.shape[1]:
        raise ValueError(f'init_word_embeddings: {len(ids)} word tokens need at most {table.shape[1]} '
                         '(the embedding width) for orthogonal rows')
    generator = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(table.shape[1], len(ids), generator=generator))
    with torch.no_grad():
        table[ids] = (basis.T * norm).to(table)
    return ids
