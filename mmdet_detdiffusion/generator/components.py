"""Build diffusers / transformers components from config dicts.

Each component config names its class in ``type`` and says where it comes from::

    dict(type='UNet2DConditionModel', from_pretrained='runwayml/stable-diffusion-v1-5', subfolder='unet')
    dict(type='UNet2DConditionModel', config=dict(sample_size=32, ...))     # fresh, randomly initialised
    dict(type='CLIPTextModel', config=dict(hidden_size=32, ...))            # transformers config kwargs
    dict(type='CLIPTokenizer', bpe_file=None)   # CLIP's BPE vocabulary (default: open-clip-torch's file)

``from_pretrained`` is a local folder or a hub id (hub downloads are up to the environment).
"""
import copy
from typing import Any, Optional

import diffusers
import transformers

from mmdet_detdiffusion.generator.text import clip_tokenizer_from_bpe, find_open_clip_bpe


def _component_class(name: str) -> type:
    for module in (diffusers, transformers):
        cls = getattr(module, name, None)
        if cls is not None:
            return cls
    raise ValueError(f'unknown component type {name!r}: expected a diffusers or transformers class name')


def build_component(cfg: Optional[dict]) -> Any:
    """Instantiate one component config (see module docstring); ``None`` stays ``None``."""
    if cfg is None:
        return None
    cfg = copy.deepcopy(dict(cfg))
    name = cfg.pop('type')
    cls = _component_class(name)
    if 'from_pretrained' in cfg:
        return cls.from_pretrained(cfg.pop('from_pretrained'), **cfg)
    if name == 'CLIPTokenizer':
        return clip_tokenizer_from_bpe(cfg.pop('bpe_file', None) or find_open_clip_bpe(), **cfg)
    if 'config' not in cfg:
        raise ValueError(f'{name}: give either from_pretrained=PATH_OR_ID or config=dict(...)')
    config = dict(cfg.pop('config'))
    if hasattr(cls, 'config_class') and issubclass(cls, transformers.PreTrainedModel):
        return cls(cls.config_class(**config))
    if hasattr(cls, 'from_config'):
        return cls.from_config(config)
    return cls(**config)


def latent_scale(vae) -> int:
    """Pixels per latent cell of an AutoencoderKL (8 for SD's VAE); 1 without one (pixel space)."""
    return 1 if vae is None else 2 ** (len(vae.config.block_out_channels) - 1)
