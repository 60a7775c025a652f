"""CLIP tokenizer and text encoder extended with layout tokens.

New tokens: ``bins * bins`` location tokens ``<l{i}>`` and the attribute-slot tokens (``<easy>``, ``<hard>`` and
any value a project registers: :mod:`~mmdet_detdiffusion.layout.attributes`);
those a tokenizer already holds (a GeoDiffusion checkpoint's location tokens) keep their rows. New rows
are initialised as follows (the rest of the table is untouched):

- location token of grid point (x, y): the 2-D sin-cos encoding of the point (:mod:`.position_encoding`),
  rescaled to the mean norm of the pretrained token embeddings;
- slot token: the pretrained embedding of the word it stands for ("easy", "hard").
"""
import gzip
import importlib.util
import os
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from mmdet_detdiffusion.generator.position_encoding import sincos_2d
from mmdet_detdiffusion.layout.attributes import ATTRIBUTE_TOKENS
from mmdet_detdiffusion.layout.prompt import LocationGrid

OPEN_CLIP_BPE = 'bpe_simple_vocab_16e6.txt.gz'


def find_open_clip_bpe() -> str:
    """Path of the CLIP BPE merges file bundled with ``open-clip-torch`` (without importing it)."""
    spec = importlib.util.find_spec('open_clip')
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError('open-clip-torch is not installed: `pip install --no-deps open-clip-torch` '
                                f'provides {OPEN_CLIP_BPE}')
    path = os.path.join(list(spec.submodule_search_locations)[0], OPEN_CLIP_BPE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path} not found in the open-clip-torch package')
    return path


def _byte_alphabet() -> List[str]:
    """The 256 characters byte-level BPE uses for bytes (GPT-2/CLIP convention), in vocabulary order:
    the printable Latin-1 bytes as themselves, then the other bytes as code points 256, 257, ..."""
    printable = [*range(ord('!'), ord('~') + 1), *range(ord('¡'), ord('¬') + 1), *range(ord('®'), ord('ÿ') + 1)]
    others = [byte for byte in range(256) if byte not in set(printable)]
    return [chr(byte) for byte in printable] + [chr(256 + i) for i in range(len(others))]


def clip_tokenizer_from_bpe(bpe_path: str, model_max_length: int = 77):
    """A ``transformers.CLIPTokenizer`` built from an OpenAI-format CLIP merges file (``.txt`` or ``.gz``).

    The vocabulary is CLIP's: 256 byte symbols, the same with ``</w>``, 48,894 merges, then
    ``<|startoftext|>`` (49406) and ``<|endoftext|>`` (49407).
    """
    from transformers import CLIPTokenizer
    opener = gzip.open if bpe_path.endswith('.gz') else open
    with opener(bpe_path, 'rt', encoding='utf-8') as f:
        lines = f.read().split('\n')
    merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
    alphabet = _byte_alphabet()
    vocab = alphabet + [c + '</w>' for c in alphabet] + [''.join(m) for m in merges] + \
        ['<|startoftext|>', '<|endoftext|>']
    return CLIPTokenizer(vocab={token: i for i, token in enumerate(vocab)}, merges=merges,
                         model_max_length=model_max_length)


def layout_tokens(grid: LocationGrid) -> List[str]:
    return grid.tokens + list(ATTRIBUTE_TOKENS.values())


def _missing_tokens(tokenizer, tokens: Sequence[str]) -> List[str]:
    ids = tokenizer.convert_tokens_to_ids(list(tokens))
    return [token for token, i in zip(tokens, ids) if i is None or i == tokenizer.unk_token_id]


def add_layout_tokens(tokenizer, text_encoder: torch.nn.Module, grid: LocationGrid) -> Dict[str, int]:
    """Add the location + attribute-slot tokens the tokenizer lacks and grow ``text_encoder``'s embedding table.

    Three starting points, told apart by the tokenizer and the table's size:

    - a plain CLIP (SD v1.5): every token is added and its row initialised (module docstring);
    - a GeoDiffusion checkpoint (its tokenizer holds ``<l0>``.. already): the location tokens keep their
      trained rows, only the slot tokens (``<easy>``, ``<hard>``, ...) are added;
    - a model trained with these tokens but paired with a fresh tokenizer (its table already has rows past
      the tokenizer's, e.g. the toy base): the tokens are added to the tokenizer, the first ones keep those
      trained rows and the rest, slot tokens the model was trained without, are initialised.

    Idempotent. Returns ``{'first_location_id': ..., 'num_added': ...}`` (``num_added`` counts tokenizer entries).
    """
    missing = _missing_tokens(tokenizer, layout_tokens(grid))
    missing_locations = [token for token in missing if token.startswith('<l')]
    if missing_locations and len(missing_locations) != len(grid.tokens):
        raise ValueError(f'the tokenizer has {len(grid.tokens) - len(missing_locations)} of the '
                         f'{len(grid.tokens)} location tokens of a {grid.bins}x{grid.bins} grid: expected all '
                         f'or none (is location_bins={grid.bins} the checkpoint\'s grid?)')
    old_size = len(tokenizer)
    table_size = text_encoder.get_input_embeddings().num_embeddings
    trained = table_size - old_size  # the first `trained` missing tokens have rows already
    # rows past the tokenizer's are trained layout rows only when they hold every location token (a fresh tokenizer)
    if not (0 <= trained <= len(missing) and (trained == 0 or missing_locations and trained >= len(grid.tokens))):
        raise ValueError(f'the text encoder embeds {table_size} tokens: expected the tokenizer\'s {old_size}'
                         + (f', or up to {old_size + len(missing)} with the {len(missing)} layout tokens of a '
                            f'{grid.bins}x{grid.bins} grid that it lacks (locations first)' if missing else ''))
    new_words = {token: tokenizer(word, add_special_tokens=False).input_ids
                 for word, token in ATTRIBUTE_TOKENS.items() if token in missing[trained:]}
    tokenizer.add_tokens(missing)
    first_location_id = tokenizer.convert_tokens_to_ids(grid.tokens[0])
    if table_size == len(tokenizer):  # no new rows, or trained with these tokens: keep its rows
        return dict(first_location_id=first_location_id, num_added=len(missing))
    text_encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    table = text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        mean_norm = table[:old_size].norm(dim=1).mean()
        if missing_locations and trained == 0:
            loc = sincos_2d(grid.bins, table.shape[1]).to(table)
            table[old_size:old_size + len(grid.tokens)] = loc * (mean_norm / loc.norm(dim=1, keepdim=True))
        for token, word_ids in new_words.items():  # a slot token starts from its word
            table[tokenizer.convert_tokens_to_ids(token)] = table[word_ids].mean(dim=0)
    return dict(first_location_id=first_location_id, num_added=len(missing))


def slot_token_ids(tokenizer, values: Sequence[str]) -> List[int]:
    """Token ids of the attribute-slot ``values`` (names of :data:`ATTRIBUTE_TOKENS`), in their order; a clear
    error when the tokenizer lacks one (it would map it to its unknown token)."""
    tokens = [ATTRIBUTE_TOKENS[value] for value in values]
    ids = tokenizer.convert_tokens_to_ids(tokens)
    if tokenizer.unk_token_id in ids:
        raise ValueError(f'the tokenizer lacks some of the slot tokens {tokens} (add_layout_tokens adds them)')
    return ids


def word_token_counter(tokenizer):
    """A cached ``text -> number of tokens (no BOS/EOS)`` function for :func:`..layout.prompt.build_prompt`."""
    @lru_cache(maxsize=4096)
    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False).input_ids)
    return count


def encode_text(tokenizer, text_encoder: torch.nn.Module, prompts: Sequence[str], mask_padding: bool = False
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """``(states, mask)``: ``(B, 77, D)`` text-encoder states of ``prompts`` (padded to the tokenizer's
    window) and, with ``mask_padding``, the ``(B, 77)`` bool mask of their real tokens (BOS to EOS) for
    the U-Net's ``encoder_attention_mask``; else ``None`` (Stable Diffusion attends to the padding too)."""
    tokens = tokenizer(list(prompts), padding='max_length', max_length=tokenizer.model_max_length, truncation=True,
                       return_tensors='pt')
    states = text_encoder(tokens.input_ids.to(text_encoder.device))[0]
    return states, tokens.attention_mask.bool().to(states.device) if mask_padding else None


class SlotTokenEmbeddings(torch.nn.Module):
    """The attribute-slot tokens' embedding rows as a parameter of their own, ``weight``: ``(S, D)``, one row per
    value of ``ATTRIBUTE_TOKENS``, so that an optimiser can give the new tokens their own learning rate
    (``paramwise_cfg=dict(custom_keys={'slot_embeddings': dict(lr_mult=...)})``), as textual inversion trains new
    tokens, while the rest of the table keeps the model's.

    A forward hook on ``text_encoder``'s input embedding puts these rows in place of the table's; the table keeps
    its own rows, and :meth:`write_back` copies the trained ones into it (before a pipeline is saved or used
    without this module).
    """

    def __init__(self, tokenizer, text_encoder: torch.nn.Module):
        super().__init__()
        ids = slot_token_ids(tokenizer, list(ATTRIBUTE_TOKENS))
        table = text_encoder.get_input_embeddings()
        self.register_buffer('token_ids', torch.tensor(ids, dtype=torch.long), persistent=False)
        self.weight = torch.nn.Parameter(table.weight.detach()[ids].clone())
        self._tables = [table]  # a list: the table stays the text encoder's submodule, not this one's
        table.register_forward_hook(self.substitute)

    def substitute(self, table: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        """Forward hook: ``output`` ``(B, L, D)`` with the rows of slot tokens taken from ``weight`` (on
        ``output``'s device and dtype, wherever the pipeline moved the table)."""
        match = args[0][..., None] == self.token_ids.to(args[0].device)  # (B, L, S)
        # a one-hot product rather than indexing: indexing's backward sums the repeated rows' gradients in a
        # thread-dependent order on CPU, which would make a seeded fine-tune differ from run to run
        rows = match.to(output.dtype) @ self.weight.to(output)  # (B, L, D); zeros where no slot token is
        return torch.where(match.any(dim=-1, keepdim=True), rows, output)

    def state_from_table(self, table_weight: torch.Tensor) -> torch.Tensor:
        """``weight`` as read from a table ``(V, D)``: its slot tokens' rows."""
        return table_weight[self.token_ids.to(table_weight.device)]

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy ``weight`` into the text encoder's table."""
        table = self._tables[0].weight
        table[self.token_ids.to(table.device)] = self.weight.to(table)
