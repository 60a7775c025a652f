"""Build diffusers / transformers components from config dicts, through the ``GENERATOR_COMPONENTS`` registry.

Each component config names its registered class in ``type`` and says where it comes from::

    dict(type='UNet2DConditionModel', from_pretrained='runwayml/stable-diffusion-v1-5', subfolder='unet')
    dict(type='UNet2DConditionModel', config=dict(sample_size=32, ...))     # fresh, randomly initialised
    dict(type='CLIPTextModel', config=dict(hidden_size=32, ...))            # transformers config kwargs
    dict(type='CLIPTokenizer', bpe_file=None)   # CLIP's BPE vocabulary (default: open-clip-torch's file)

``from_pretrained`` is a local folder or a hub id (hub downloads are up to the environment). Other classes
join with ``GENERATOR_COMPONENTS.register_module(module=cls)``.
"""
import copy
from typing import Any, Optional, Union

import transformers
from diffusers import (AutoencoderKL, DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, ModelMixin,
                       PNDMScheduler, UNet2DConditionModel, UNet2DModel)
from diffusers.utils import is_accelerate_available
from mmengine.registry import Registry
from transformers import CLIPTextModel, CLIPTokenizer

from mmdet_detdiffusion.generator.text import clip_tokenizer_from_bpe, find_open_clip_bpe


def build_from_pretrained_or_config(cfg: dict, registry: Registry, default_args: Optional[dict] = None) -> Any:
    """Build function of ``GENERATOR_COMPONENTS``: instantiate one component config (module docstring)."""
    cfg = copy.deepcopy({**(default_args or {}), **cfg})
    name = cfg.pop('type')
    cls = registry.get(name)
    if cls is None:
        raise KeyError(f'unknown component type {name!r}: expected one of {sorted(registry.module_dict)}')
    if 'from_pretrained' in cfg:
        if issubclass(cls, ModelMixin):  # without accelerate, diffusers warns and loads the normal way anyway
            cfg.setdefault('low_cpu_mem_usage', is_accelerate_available())
        return cls.from_pretrained(cfg.pop('from_pretrained'), **cfg)
    if issubclass(cls, CLIPTokenizer):
        return clip_tokenizer_from_bpe(cfg.pop('bpe_file', None) or find_open_clip_bpe(), **cfg)
    if 'config' not in cfg:
        raise ValueError(f'{name}: give either from_pretrained=PATH_OR_ID or config=dict(...)')
    config = dict(cfg.pop('config'))
    if issubclass(cls, transformers.PreTrainedModel):
        return cls(cls.config_class(**config))
    return cls.from_config(config)


GENERATOR_COMPONENTS = Registry('generator component', build_func=build_from_pretrained_or_config,
                                scope='mmdet_detdiffusion')
for _cls in (UNet2DConditionModel, UNet2DModel, AutoencoderKL, CLIPTextModel, CLIPTokenizer,
             DDPMScheduler, DDIMScheduler, DPMSolverMultistepScheduler, PNDMScheduler):
    GENERATOR_COMPONENTS.register_module(module=_cls)


def build_component(cfg: Union[dict, Any, None]) -> Any:
    """A component from its config (module docstring); a built component is returned as it is, ``None`` too."""
    return GENERATOR_COMPONENTS.build(cfg) if isinstance(cfg, dict) else cfg


def sample_channels(unet) -> int:
    """Channels of the samples (latents or pixels) a U-Net denoises: its ``out_channels``, or what a
    U-Net that folds pixels into patches says (its ``sample_channels``, e.g. ``projects/toy_shapes``' U-Net)."""
    return getattr(unet, 'sample_channels', unet.config.out_channels)


def latent_scale(vae) -> int:
    """Pixels per latent cell of an AutoencoderKL (8 for SD's VAE); 1 without one (pixel space)."""
    return 1 if vae is None else 2 ** (len(vae.config.block_out_channels) - 1)
