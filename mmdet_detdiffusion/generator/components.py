"""Build diffusers / transformers components from config dicts.

Each component config names its class in ``type`` and says where it comes from::

    dict(type='UNet2DConditionModel', from_pretrained='runwayml/stable-diffusion-v1-5', subfolder='unet')
    dict(type='UNet2DConditionModel', config=dict(sample_size=32, ...))     # fresh, randomly initialised
    dict(type='CLIPTextModel', config=dict(hidden_size=32, ...))            # transformers config kwargs
    dict(type='CLIPTokenizer', bpe_file=None)   # CLIP's BPE vocabulary (default: open-clip-torch's file)

``from_pretrained`` is a local folder or a hub id (hub downloads are up to the environment).
"""
import copy
import json
import os
from typing import Any, Optional, Tuple

import diffusers
import transformers

from mmdet_detdiffusion.generator.coord_unet import CoordUNet2DConditionModel
from mmdet_detdiffusion.generator.text import clip_tokenizer_from_bpe, find_open_clip_bpe

OWN_COMPONENTS = {cls.__name__: cls for cls in (CoordUNet2DConditionModel,)}


def _component_class(name: str) -> type:
    if name in OWN_COMPONENTS:
        return OWN_COMPONENTS[name]
    for module in (diffusers, transformers):
        cls = getattr(module, name, None)
        if cls is not None:
            return cls
    raise ValueError(f'unknown component type {name!r}: expected a diffusers or transformers class name, '
                     f'or one of {sorted(OWN_COMPONENTS)}')


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


def sample_channels(unet) -> int:
    """Channels of the samples (latents or pixels) a U-Net denoises: its ``out_channels``, or what a
    :class:`CoordUNet2DConditionModel` with patches says."""
    return getattr(unet, 'sample_channels', unet.config.out_channels)


def latent_scale(vae) -> int:
    """Pixels per latent cell of an AutoencoderKL (8 for SD's VAE); 1 without one (pixel space)."""
    return 1 if vae is None else 2 ** (len(vae.config.block_out_channels) - 1)


def own_component_class(folder: str) -> Optional[type]:
    """This package's class of the saved component in ``folder`` (its config's ``_class_name``), or ``None``.

    Exports list such components in ``model_index.json`` under their diffusers base class, the only
    (library, class) pairs diffusers resolves, so plain diffusers still loads them (as the base class).
    """
    config = os.path.join(folder, 'config.json')
    if not os.path.isfile(config):
        return None
    with open(config) as f:
        return OWN_COMPONENTS.get(json.load(f).get('_class_name'))


def library_class(component: Any) -> Tuple[str, str]:
    """``(library, class name)`` of a component for ``model_index.json``: its first diffusers or
    transformers class (this package's subclasses are listed as their base)."""
    for cls in type(component).__mro__:
        library = cls.__module__.split('.')[0]
        if library in ('diffusers', 'transformers'):
            return library, cls.__name__
    raise TypeError(f'{type(component).__name__} is not a diffusers or transformers component')
