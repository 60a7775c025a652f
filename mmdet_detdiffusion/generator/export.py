"""Save a trained generator as a diffusers folder (``DetDiffusionPipeline.save_pretrained``), load it back
as a training model, and identify it.

The folder is the pipeline's (see :mod:`.pipeline`): ``model_index.json`` with the layout settings, and
``unet/ vae/ text_encoder/ tokenizer/ scheduler/ perception_head/``; ``scheduler/`` is the sampler (the
default one, trailing DPM-Solver++), over the training noise schedule. It is written under a temporary name
and renamed when complete.
"""
import hashlib
import os
import shutil
from typing import Optional

import torch

from mmdet_detdiffusion.generator.model import DetDiffusionGenerator
from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline
from mmdet_detdiffusion.generator.sampling import training_scheduler
from mmdet_detdiffusion.utils.fileio import update_digest

WEIGHT_FILES = ('.safetensors', '.bin')


def export_generator(model: DetDiffusionGenerator, out_dir: str, data_filters: Optional[dict] = None) -> str:
    """Write ``model`` (unwrapped, e.g. the EMA copy) to ``out_dir``; return ``out_dir``.

    ``data_filters`` (``min_box_area_ratio``, ``min_object_area_ratio`` of the training data) are recorded
    so that ``tools/generate.py`` filters layouts the way training did.
    """
    out_dir = os.path.abspath(out_dir)
    tmp_dir = out_dir + '.tmp'
    shutil.rmtree(tmp_dir, ignore_errors=True)
    model.as_pipeline(data_filters).save_pretrained(tmp_dir)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.replace(tmp_dir, out_dir)
    return out_dir


def load_exported_generator(folder: str, device: Optional[str] = None, **overrides) -> DetDiffusionGenerator:
    """Rebuild a :class:`DetDiffusionGenerator` from an export (``overrides`` replace its settings); its
    training scheduler is a DDPMScheduler over the export's noise schedule (:func:`~.sampling.training_scheduler`)."""
    pipe = DetDiffusionPipeline.from_pretrained(folder)
    config = pipe.config
    settings = dict(classes=config.classes, location_bins=config.location_bins, max_objects=config.max_objects,
                    use_attributes=config.use_attributes, mask_text_padding=config.mask_text_padding,
                    **config.train_settings)
    model = DetDiffusionGenerator(unet=pipe.unet, vae=pipe.vae, text_encoder=pipe.text_encoder,
                                  tokenizer=pipe.tokenizer, scheduler=training_scheduler(pipe.scheduler.config),
                                  perception_head=pipe.perception_head, **{**settings, **overrides})
    return model.to(device or ('cuda' if torch.cuda.is_available() else 'cpu')).eval()


def generator_identity(folder: str, read_contents: bool = True) -> str:
    """sha256 identity of a generator export: names and contents of its weight files, or (fast,
    ``read_contents=False``) names, sizes and modification times of all its files."""
    digest = hashlib.sha256()
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, folder).encode())
            if not read_contents:
                stat = os.stat(path)
                digest.update(f'{stat.st_size}:{stat.st_mtime_ns}'.encode())
            elif name.endswith(WEIGHT_FILES):
                update_digest(digest, path)
    return digest.hexdigest()
