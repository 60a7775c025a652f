"""Save a trained generator as a diffusers folder, and load it back.

Folder layout (each subfolder loads with plain diffusers / transformers ``from_pretrained``)::

    model_index.json           diffusers pipeline index (_class_name DetDiffusionPipeline)
    unet/ vae/ text_encoder/ tokenizer/ scheduler/
    perception_head/           config.json + model.safetensors (PerceptionHead)
    detdiffusion.json          classes, location bins, attribute use, object order, feature blocks

The folder is written under a temporary name and renamed when complete.
"""
import json
import os
import shutil
from typing import Optional

import diffusers
import torch
from safetensors.torch import load_file, save_file

from mmdet_detdiffusion.generator.components import library_class, own_component_class
from mmdet_detdiffusion.generator.model import DetDiffusionGenerator
from mmdet_detdiffusion.generator.pipeline import LAYOUT_FILE, read_layout_settings

HEAD_FOLDER = 'perception_head'


def export_generator(model: DetDiffusionGenerator, out_dir: str, data_filters: Optional[dict] = None) -> str:
    """Write ``model`` (unwrapped, e.g. the EMA copy) to ``out_dir``; return ``out_dir``.

    ``data_filters`` (``min_box_area_ratio``, ``min_object_area_ratio`` of the training data) are recorded
    so that ``tools/generate.py`` filters layouts the way training did.
    """
    out_dir = os.path.abspath(out_dir)
    tmp_dir = out_dir + '.tmp'
    shutil.rmtree(tmp_dir, ignore_errors=True)
    components = dict(unet=model.unet, vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer,
                      scheduler=model.scheduler)
    index = {'_class_name': 'DetDiffusionPipeline', '_diffusers_version': diffusers.__version__}
    for name, component in components.items():
        if component is None:
            index[name] = [None, None]
            continue
        component.save_pretrained(os.path.join(tmp_dir, name))
        index[name] = list(library_class(component))
    with open(os.path.join(tmp_dir, 'model_index.json'), 'w') as f:
        json.dump(index, f, indent=2)
    if model.perception_head is not None:
        os.makedirs(os.path.join(tmp_dir, HEAD_FOLDER))
        save_file({k: v.contiguous() for k, v in model.perception_head.state_dict().items()},
                  os.path.join(tmp_dir, HEAD_FOLDER, 'model.safetensors'))
    with open(os.path.join(tmp_dir, LAYOUT_FILE), 'w') as f:
        json.dump(dict(classes=list(model.classes), location_bins=model.grid.bins, max_objects=model.max_objects,
                       use_attributes=model.use_attributes, mask_text_padding=model.mask_text_padding,
                       object_order=model.object_order,
                       feature_blocks=list(model.feature_blocks), perception_head=model.head_cfg,
                       pa_loss_weight=model.pa_loss_weight, pa_weight_power=model.pa_weight_power,
                       data_filters=data_filters or {}), f, indent=2)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.replace(tmp_dir, out_dir)
    return out_dir


def load_exported_generator(folder: str, device: Optional[str] = None, **overrides) -> DetDiffusionGenerator:
    """Rebuild a :class:`DetDiffusionGenerator` from an export (``overrides`` replace its settings)."""
    settings = {k: v for k, v in read_layout_settings(folder).items() if k != 'data_filters'}
    with open(os.path.join(folder, 'model_index.json')) as f:
        index = json.load(f)
    parts = {}
    for name in ('unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler'):
        cls = index[name][1]
        if cls is not None:
            own_class = own_component_class(os.path.join(folder, name))
            cls = own_class.__name__ if own_class else cls
        parts[name] = None if cls is None else dict(type=cls, from_pretrained=os.path.join(folder, name))
    model = DetDiffusionGenerator(**parts, **{**settings, **overrides})
    if model.perception_head is not None:
        model.perception_head.load_state_dict(load_file(os.path.join(folder, HEAD_FOLDER, 'model.safetensors')))
    return model.to(device or ('cuda' if torch.cuda.is_available() else 'cpu')).eval()
