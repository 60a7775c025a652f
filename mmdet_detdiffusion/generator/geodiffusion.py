"""GeoDiffusion checkpoints as a starting point: the layout settings in their ``generation_config.json``.

GeoDiffusion's released checkpoints (COCO-Stuff 256x256 and 512x512) are ``StableDiffusionPipeline``
folders whose tokenizer already holds the location tokens ``<l0>``..``<l65535>``, plus a
``generation_config.json`` with ``prompt_template``, ``num_bucket_per_side``, ``max_num_bbox``, ``width``,
``height``, ``cfg_scale`` and ``num_inference_steps``. DetDiffusion fine-tunes such a checkpoint with the
same location grid and object cap, adding only the attribute tokens and the P.A. loss.
"""
import json
import os
from typing import Optional

from mmdet_detdiffusion.layout.prompt import PROMPT_PREFIX

GENERATION_CONFIG = 'generation_config.json'
BBOX_FIELD = '{bbox}'


def read_generation_config(path_or_id: str) -> Optional[dict]:
    """The ``generation_config.json`` of a GeoDiffusion checkpoint (local folder or hub id), or ``None``
    when it has none (e.g. plain Stable Diffusion)."""
    if os.path.isdir(path_or_id):
        path = os.path.join(path_or_id, GENERATION_CONFIG)
        if not os.path.isfile(path):
            return None
    else:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.utils import EntryNotFoundError
        try:
            path = hf_hub_download(path_or_id, GENERATION_CONFIG)
        except EntryNotFoundError:
            return None
    with open(path) as f:
        return json.load(f)


def layout_settings(config: dict, source: str = GENERATION_CONFIG) -> dict:
    """``location_bins``, ``max_objects``, ``height``, ``width``, ``guidance_scale`` and
    ``num_inference_steps`` from a GeoDiffusion generation config (``source`` names it in errors)."""
    template = config.get('prompt_template', f'{PROMPT_PREFIX} {BBOX_FIELD}')
    if template.strip() != f'{PROMPT_PREFIX} {BBOX_FIELD}':
        raise ValueError(f'{source}: prompt_template {template!r} is not supported: layout prompts here are '
                         f'{PROMPT_PREFIX!r} followed by the objects (COCO-Stuff checkpoints)')
    if 'num_bucket_per_side' not in config:
        raise ValueError(f'{source}: num_bucket_per_side (the location grid) is missing')
    buckets = config['num_bucket_per_side']
    buckets = [buckets, buckets] if isinstance(buckets, int) else list(buckets)
    if len(buckets) != 2 or buckets[0] != buckets[1]:
        raise ValueError(f'{source}: num_bucket_per_side {buckets} is not a square grid [N, N]')
    settings = dict(location_bins=int(buckets[0]), max_objects=config.get('max_num_bbox'))
    for ours, theirs in (('height', 'height'), ('width', 'width'), ('guidance_scale', 'cfg_scale'),
                         ('num_inference_steps', 'num_inference_steps')):
        if theirs in config:
            settings[ours] = config[theirs]
    return settings
