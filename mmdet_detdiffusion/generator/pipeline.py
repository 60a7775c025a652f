"""DetDiffusionPipeline: layouts -> images with a trained DetDiffusion generator (a diffusers pipeline).

    pipe = DetDiffusionPipeline.from_pretrained('work_dirs/gen/export', dtype=torch.float16).to('cuda')
    out = pipe([dict(boxes=[[48, 240, 195, 371]], labels=['dog'], image_size=(480, 640))],
               attr_mode='hard', num_inference_steps=25, guidance_scale=5.0,
               generator=[torch.Generator('cuda').manual_seed(0)])
    out.images[0], out.boxes[0]        # PIL image, (N, 4) xyxy boxes in its pixels

Per batch the prompts (and the null prompt of classifier-free guidance) are encoded once and the
conditional and unconditional U-Net passes run as one batch; one generator per image makes each
image's noise independent of the batch it is in. diffusers' attention uses PyTorch SDPA.
"""
import hashlib
import json
import os
from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image
from diffusers import (AutoencoderKL, DDIMScheduler, DDPMScheduler, DiffusionPipeline, DPMSolverMultistepScheduler,
                       PNDMScheduler, SchedulerMixin, UNet2DConditionModel)
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from transformers import CLIPTextModel, CLIPTokenizer

from mmdet_detdiffusion.generator.sampling import denoise
from mmdet_detdiffusion.generator.components import latent_scale, own_component_class, sample_channels
from mmdet_detdiffusion.generator.geodiffusion import GENERATION_CONFIG, layout_settings, read_generation_config
from mmdet_detdiffusion.generator.text import encode_text, word_token_counter
from mmdet_detdiffusion.layout.inputs import UserLayout, to_layout_objects, with_attr_mode
from mmdet_detdiffusion.layout.prompt import LayoutObject, LocationGrid, build_prompt

LAYOUT_FILE = 'detdiffusion.json'  # layout-encoding settings saved beside the diffusers components

# Samplers by name: (scheduler class, options over the training noise schedule).
# 'plms' is Stable Diffusion v1.5's default sampler (PNDM without Runge-Kutta warm-up steps).
SAMPLERS = {
    'ddim': (DDIMScheduler, {}),
    'dpmsolver++': (DPMSolverMultistepScheduler, dict(algorithm_type='dpmsolver++')),
    'plms': (PNDMScheduler, dict(skip_prk_steps=True)),
    'ddpm': (DDPMScheduler, {}),
}


def read_layout_settings(folder: str) -> dict:
    """The ``detdiffusion.json`` of a generator export."""
    path = os.path.join(folder, LAYOUT_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{folder} is not a DetDiffusion generator export: {LAYOUT_FILE} is missing '
                                '(write one with tools/train_generator.py or export_generator)')
    with open(path) as f:
        return json.load(f)


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
            elif name.endswith(('.safetensors', '.bin')):
                with open(path, 'rb') as f:
                    for chunk in iter(lambda: f.read(1 << 20), b''):
                        digest.update(chunk)
    return digest.hexdigest()


def own_components(folder: str, torch_dtype: Optional[torch.dtype] = None) -> dict:
    """The components of an export that are this package's classes (e.g. a CoordUNet2DConditionModel),
    loaded as such; ``model_index.json`` lists them under their diffusers base class."""
    components = {}
    for name in os.listdir(folder):
        cls = own_component_class(os.path.join(folder, name))
        if cls is not None:
            components[name] = cls.from_pretrained(os.path.join(folder, name), torch_dtype=torch_dtype)
    return components


@dataclass
class DetDiffusionPipelineOutput(BaseOutput):
    """images: PIL images, or uint8 ``(B, H, W, 3)`` RGB for ``output_type='np'``;
    boxes: per image ``(N, 4)`` float32 xyxy in output pixels of the objects written in its prompt;
    labels: per image ``(N,)`` int64 class indices; attrs: per image the attribute of each box;
    kept: per image the indices of those objects in the input layout (CLIP's 77 tokens may drop some);
    prompts: the layout prompts."""

    images: Union[List, np.ndarray]
    boxes: List[np.ndarray]
    labels: List[np.ndarray]
    attrs: List[List[Optional[str]]]
    kept: List[List[int]]
    prompts: List[str]


class DetDiffusionPipeline(DiffusionPipeline):
    """Layout-to-image generation with a DetDiffusion generator.

    Args:
        unet / vae / text_encoder / tokenizer / scheduler: diffusers and transformers components;
            ``vae=None`` for a pixel-space generator. ``scheduler`` carries the training noise schedule.
        classes: class names, index = label.
        location_bins: location grid size per axis used in training.
        max_objects: at most this many objects per prompt (GeoDiffusion's ``max_num_bbox``); ``None``: no cap.
        use_attributes: the generator was trained with easy/hard tokens.
        mask_text_padding: the U-Net was trained ignoring the prompts' padding tokens.
    """

    model_cpu_offload_seq = 'text_encoder->unet->vae'
    _optional_components = ['vae']

    def __init__(self, unet: UNet2DConditionModel, vae: Optional[AutoencoderKL], text_encoder: CLIPTextModel,
                 tokenizer: CLIPTokenizer, scheduler: SchedulerMixin, classes: List[str] = None,
                 location_bins: int = 256, max_objects: Optional[int] = None, use_attributes: bool = True,
                 mask_text_padding: bool = False):
        super().__init__()
        self.register_modules(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)
        self.classes = tuple(classes or ())
        self.grid = LocationGrid(location_bins)
        self.max_objects = max_objects
        self.use_attributes = use_attributes
        self.mask_text_padding = mask_text_padding
        self.count_tokens = word_token_counter(tokenizer)
        self._null_embedding = None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str, **kwargs) -> 'DetDiffusionPipeline':
        """Load a generator export (a local folder written by ``export_generator``), or a GeoDiffusion
        checkpoint (a folder with ``generation_config.json``; give its ``classes``): it generates
        without attribute tokens, as GeoDiffusion does. Keyword arguments override the saved settings."""
        folder = pretrained_model_name_or_path
        geodiffusion = None if os.path.isfile(os.path.join(folder, LAYOUT_FILE)) else read_generation_config(folder)
        if geodiffusion is not None:
            geo = layout_settings(geodiffusion, os.path.join(folder, GENERATION_CONFIG))
            if not kwargs.get('classes'):
                raise ValueError(f'{folder} is a GeoDiffusion checkpoint: give its class names, '
                                 'DetDiffusionPipeline.from_pretrained(folder, classes=[...])')
            settings = dict(location_bins=geo['location_bins'], max_objects=geo['max_objects'], use_attributes=False)
        else:
            settings = {key: value for key, value in read_layout_settings(folder).items()
                        if key in ('classes', 'location_bins', 'max_objects', 'use_attributes', 'mask_text_padding')}
        kwargs = {**settings, **own_components(folder, kwargs.get('torch_dtype')), **kwargs}
        return super().from_pretrained(folder, **kwargs)

    def save_pretrained(self, save_directory: str, **kwargs) -> None:
        super().save_pretrained(save_directory, **kwargs)
        path = os.path.join(save_directory, LAYOUT_FILE)
        settings = read_layout_settings(save_directory) if os.path.isfile(path) else {}
        settings.update(classes=list(self.classes), location_bins=self.grid.bins, max_objects=self.max_objects,
                        use_attributes=self.use_attributes, mask_text_padding=self.mask_text_padding)
        with open(path, 'w') as f:
            json.dump(settings, f, indent=2)

    @property
    def latent_scale(self) -> int:
        """Pixels per latent cell (8 for SD's VAE, 1 in pixel space)."""
        return latent_scale(self.vae)

    @property
    def default_size(self) -> int:
        """The training resolution (pixels, square)."""
        return self.unet.config.sample_size * self.latent_scale

    def make_scheduler(self, sampler: str):
        """A fresh scheduler of kind ``sampler`` (see ``SAMPLERS``) over the training noise schedule.

        Its steps are ``'trailing'``: the first one is the last training timestep, where the initial noise
        really is pure noise (Lin et al., "Common Diffusion Noise Schedules and Sample Steps are Flawed").
        With the training scheduler's ``'leading'`` spacing, 10 steps start at t = 900, where the model
        expects some signal left, and every image comes out with a mid-grey mean.
        """
        if sampler not in SAMPLERS:
            raise ValueError(f'sampler must be one of {sorted(SAMPLERS)}, got {sampler!r}')
        scheduler_cls, options = SAMPLERS[sampler]
        return scheduler_cls.from_config(self.scheduler.config, **{'timestep_spacing': 'trailing', **options})

    def encode_prompt(self, prompts: Sequence[str]) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(states, mask)`` of ``prompts``: ``(B, 77, D)`` and ``(B, 77)`` bool, or ``None`` when the
        generator attends to the padding (see :func:`~mmdet_detdiffusion.generator.text.encode_text`)."""
        return encode_text(self.tokenizer, self.text_encoder, prompts, self.mask_text_padding)

    def null_embedding(self, batch_size: int) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The empty prompt's ``(states, mask)``, encoded once per pipeline and repeated to batch size."""
        if self._null_embedding is None or self._null_embedding[0].device != self.text_encoder.device:
            self._null_embedding = self.encode_prompt([''])
        states, mask = self._null_embedding
        return states.expand(batch_size, -1, -1), None if mask is None else mask.expand(batch_size, -1)

    def layout_prompts(self, layouts: Sequence[UserLayout], attr_mode: str = 'original'):
        """``(prompts, objects, kept)``: prompts keep the largest objects first (deterministic);
        ``objects[i]`` are those written in prompt ``i`` and ``kept[i]`` their indices in layout ``i``."""
        prompts, objects, kept = [], [], []
        for layout in layouts:
            layout_objects = with_attr_mode(to_layout_objects(layout, self.classes),
                                            attr_mode if self.use_attributes else 'none')
            prompt, written = build_prompt(layout_objects, self.grid, self.count_tokens, 'largest',
                                           max_objects=self.max_objects)
            written_ids = {id(o) for o in written}
            indices = [i for i, o in enumerate(layout_objects) if id(o) in written_ids]
            prompts.append(prompt)
            objects.append([layout_objects[i] for i in indices])
            kept.append(indices)
        return prompts, objects, kept

    @torch.no_grad()
    def __call__(self, layouts: Union[UserLayout, Sequence[UserLayout]], height: Optional[int] = None,
                 width: Optional[int] = None, attr_mode: str = 'original', num_inference_steps: int = 25,
                 guidance_scale: float = 5.0, sampler: str = 'dpmsolver++',
                 generator: Union[torch.Generator, List[torch.Generator], None] = None,
                 output_type: str = 'pil') -> DetDiffusionPipelineOutput:
        """Generate one image per layout.

        Args:
            layouts: one layout or a list (see :mod:`mmdet_detdiffusion.layout.inputs`).
            height / width: output size in pixels (default: the training resolution); multiples of the
                latent scale (8 with SD's VAE).
            attr_mode: ``'hard'`` / ``'easy'`` for every box, ``'original'`` as the layout gives them.
            guidance_scale: classifier-free guidance weight (1 disables the unconditional pass).
            sampler: one of ``SAMPLERS``.
            generator: one per image (their noise is then independent of the batch) or one for all.
            output_type: ``'pil'`` or ``'np'``.
        """
        if isinstance(layouts, Mapping) or (layouts and isinstance(next(iter(layouts)), LayoutObject)):
            layouts = [layouts]
        height, width = height or self.default_size, width or self.default_size
        if height % self.latent_scale or width % self.latent_scale:
            raise ValueError(f'height and width must be multiples of {self.latent_scale}, got {height}x{width}')
        prompts, objects, kept = self.layout_prompts(layouts, attr_mode)
        device = self._execution_device
        cond, cond_mask = self.encode_prompt(prompts)
        uncond, uncond_mask = self.null_embedding(len(prompts))
        scheduler = self.make_scheduler(sampler)
        scheduler.set_timesteps(num_inference_steps, device=device)
        shape = (len(prompts), sample_channels(self.unet), height // self.latent_scale, width // self.latent_scale)
        latents = randn_tensor(shape, generator=generator, device=device, dtype=self.unet.dtype)
        latents = denoise(self.unet, scheduler, latents * scheduler.init_noise_sigma, cond.to(self.unet.dtype),
                          uncond.to(self.unet.dtype), guidance_scale, generator, cond_mask, uncond_mask)
        if self.vae is not None:
            latents = self.vae.decode(latents.to(self.vae.dtype) / self.vae.config.scaling_factor).sample
        images = ((latents.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        if output_type == 'pil':
            images = [Image.fromarray(image) for image in images]
        elif output_type != 'np':
            raise ValueError(f'output_type must be "pil" or "np", got {output_type!r}')
        scale = np.array([width, height, width, height], dtype=np.float32)
        return DetDiffusionPipelineOutput(
            images=images,
            boxes=[np.array([o.box for o in objs], dtype=np.float32).reshape(-1, 4) * scale for objs in objects],
            labels=[np.array([self.classes.index(o.name) for o in objs], dtype=np.int64) for objs in objects],
            attrs=[[o.attr for o in objs] for objs in objects], kept=kept, prompts=prompts)
