"""The toy generator: DetDiffusion's generator with what a U-Net and text encoder trained from scratch need."""
from typing import Dict, List, Optional

import torch
from mmdet.registry import MODELS

from mmdet_detdiffusion.generator.model import DetDiffusionGenerator
from mmdet_detdiffusion.layout.attributes import slot_values
from mmdet_detdiffusion.layout.prompt import PROMPT_PREFIX, LayoutObject, object_token_spans
from projects.toy_shapes.toy_shapes.attention_loss import CROSS_ATTENTION, layout_attention_loss, record_cross_attention
from projects.toy_shapes.toy_shapes.text_init import copy_slot_rows, init_word_embeddings


@MODELS.register_module()
class ToyDetDiffusionGenerator(DetDiffusionGenerator):
    """:class:`~mmdet_detdiffusion.generator.DetDiffusionGenerator` with three settings of the toy base.

    Args:
        attention_loss_weight: weight of the layout attention loss (:mod:`.attention_loss`), a stand-in for
            pretraining when the U-Net is trained from scratch; 0 (off) when fine-tuning, as in the paper.
        word_embedding_norm: a text encoder trained from scratch: give the prompt's words (prefix, class
            names, attribute-slot words) orthogonal embedding rows of this norm
            (:func:`~.text_init.init_word_embeddings`); ``None`` keeps the rows.
        slot_token_init: ``{value: source value}``: these attribute-slot tokens start from the rows of other slot
            tokens of the base (:func:`~.text_init.copy_slot_rows`); ``None`` keeps the rows ``add_layout_tokens``
            gives. A checkpoint loaded afterwards (resume, ``load_from``) overrides them.
        kwargs: :class:`~mmdet_detdiffusion.generator.DetDiffusionGenerator`'s.
    """

    def __init__(self, *args, attention_loss_weight: float = 0.0, word_embedding_norm: Optional[float] = None,
                 slot_token_init: Optional[Dict[str, str]] = None, **kwargs):
        # read by init_layout_tokens, which the base class's __init__ calls
        self.word_embedding_norm = word_embedding_norm
        self.slot_token_init = slot_token_init
        super().__init__(*args, **kwargs)
        self.attention_loss_weight = attention_loss_weight
        if attention_loss_weight:
            record_cross_attention(self.unet, self.recorder)

    def init_layout_tokens(self) -> None:
        if self.word_embedding_norm is not None:  # before the layout tokens: slot tokens start from their words
            init_word_embeddings(self.tokenizer, self.text_encoder, [PROMPT_PREFIX, *self.classes, *slot_values()],
                                 self.word_embedding_norm, self.seed)
        super().init_layout_tokens()
        if self.slot_token_init:
            copy_slot_rows(self.tokenizer, self.text_encoder, self.slot_token_init)

    def extra_losses(self, kept: List[List[LayoutObject]], latents: torch.Tensor) -> Dict[str, torch.Tensor]:
        if not self.attention_loss_weight:
            return {}
        return dict(loss_attn=self.attention_loss_weight * self.attention_loss(kept, latents.shape[-2:]))

    def attention_loss(self, kept: List[List[LayoutObject]], size: torch.Size) -> torch.Tensor:
        """Layout attention loss of the last U-Net forward pass over the objects in the prompts (unscaled)."""
        maps = self.recorder.pop(CROSS_ATTENTION)
        device = maps[0].device
        boxes = torch.tensor([o.box for objects in kept for o in objects], device=device).reshape(-1, 4)
        if len(boxes) == 0:
            return sum(m.sum() for m in maps) * 0.0
        spans = torch.tensor([s for objects in kept for s in object_token_spans(objects, self.count_tokens)],
                             device=device)
        batch_index = torch.tensor([b for b, objects in enumerate(kept) for _ in objects], device=device)
        return layout_attention_loss(maps, tuple(size), boxes, spans, batch_index)
