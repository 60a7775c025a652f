"""DetDiffusionPipeline: layouts -> images with a trained DetDiffusion generator (a diffusers pipeline).

    pipe = DetDiffusionPipeline.from_pretrained('work_dirs/gen/export', dtype=torch.float16).to('cuda')
    out = pipe([dict(boxes=[[48, 240, 195, 371]], labels=['dog'], image_size=(480, 640))],
               attr_mode='hard', num_inference_steps=25, guidance_scale=5.0,
               generator=[torch.Generator('cuda').manual_seed(0)])
    out.images[0], out.boxes[0]        # PIL image, (N, 4) xyxy boxes in its pixels

A generator export is this pipeline's ``save_pretrained`` folder: ``model_index.json`` lists the
components (``unet/ vae/ text_encoder/ tokenizer/ scheduler/ perception_head/``) and holds the layout
settings (classes, location bins, object cap, attribute use, the training data filters). A U-Net, VAE and
text encoder of diffusers' and transformers' own classes load in plain diffusers too (e.g.
``StableDiffusionPipeline.from_pretrained``); this package's ``PerceptionHead`` (and a project's
own classes, e.g. ``projects/toy_shapes``' U-Net) load where their module is imported.

``pipe.scheduler`` is the sampler, as in diffusers: an export saves trailing DPM-Solver++ over the training
noise schedule (:mod:`.sampling`), and another one is set the diffusers way::

    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)   # or pipe.make_scheduler('ddim')

Per batch the prompts (and the null prompt of classifier-free guidance, and with attribute guidance the prompts
with each box's attribute flipped) are encoded once and every guidance branch's U-Net pass runs in one batch; one
generator per image makes each image's noise independent of the batch it is in. diffusers' attention uses PyTorch
SDPA.
"""
import inspect
import os
import re
import sys
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DiffusionPipeline, SchedulerMixin, UNet2DConditionModel
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils import BaseOutput, is_accelerate_available
from diffusers.utils.torch_utils import randn_tensor
from transformers import CLIPTextModel, CLIPTokenizer

from mmdet_detdiffusion.generator.components import latent_scale, sample_channels
from mmdet_detdiffusion.generator.geodiffusion import GENERATION_CONFIG, layout_settings, read_generation_config
from mmdet_detdiffusion.generator.perception_head import PerceptionHead
from mmdet_detdiffusion.generator.recorder import UP_BLOCK_RECORD, recorded_outputs
from mmdet_detdiffusion.generator.sampling import DEFAULT_SAMPLER, SAMPLERS, is_training_scheduler, make_sampler
from mmdet_detdiffusion.generator.text import encode_text, word_token_counter
from mmdet_detdiffusion.layout.attributes import MODE_NONE, MODE_ORIGINAL, opposite_attribute
from mmdet_detdiffusion.layout.inputs import (MissingAttributesWarning, UserLayout, count_unlabelled, to_layout_objects,
                                              with_attr_mode)
from mmdet_detdiffusion.layout.prompt import LayoutObject, LocationGrid, build_prompt

__all__ = ['SAMPLERS', 'DetDiffusionPipeline', 'DetDiffusionPipelineOutput', 'read_export_config', 'uint8_images']
OUTPUT_TYPES = ('pil', 'np', 'pt', 'latent')
GUIDANCE_BRANCHES = ('null', 'prompt', 'flipped')  # the U-Net batch's order of the branches that run


EXPORT_HINT = 'tools/train_generator.py writes a generator export to WORK_DIR/export when training ends'
# what the Hugging Face Hub takes as a repo id ("name" or "org/name"); other paths can only be local
LOADABLE_LIBRARIES = ('diffusers', 'transformers')  # the component libraries diffusers imports itself
HUB_ID = re.compile(r'[\w-][\w.-]*(/[\w-][\w.-]*)?')
NO_ATTRIBUTES_MESSAGE = (
    "attr_mode='original', but no box of the layouts carries a P.A. attribute: the prompts are written "
    "without attribute tokens. Give each layout attrs=['easy' | 'hard' | None, ...] (the pa_attr of an "
    "attribute file from tools/label_attributes.py), or set every box with attr_mode='hard' or 'easy'.")


def export_problem(folder: str) -> Optional[str]:
    """Why the local ``folder`` is not a pipeline folder (no ``model_index.json``), naming the step that
    writes one; ``None`` when it has one."""
    if os.path.isfile(os.path.join(folder, 'model_index.json')):
        return None
    export = os.path.join(folder, 'export')
    if os.path.isfile(os.path.join(export, 'model_index.json')):
        return f'{folder} is a training work dir, not a generator export: pass its export folder {export}'
    found = 'has no model_index.json' if os.path.isdir(folder) else 'does not exist'
    return f'generator export folder {folder} {found}: {EXPORT_HINT}'


def read_export_config(folder: str) -> dict:
    """The settings of a generator export: its ``model_index.json`` (components, ``classes``,
    ``location_bins``, ``max_objects``, ``use_attributes``, ``mask_text_padding``, ``data_filters``,
    ``train_settings``)."""
    problem = export_problem(folder)
    if problem:
        raise FileNotFoundError(problem)
    try:
        config = DetDiffusionPipeline.load_config(folder)
    except OSError as err:
        raise FileNotFoundError(f'{folder} is not a DetDiffusion generator export: {err}') from None
    if config.get('_class_name') != DetDiffusionPipeline.__name__:
        raise FileNotFoundError(f'{folder} is not a DetDiffusion generator export: its model_index.json '
                                f'describes a {config.get("_class_name")}')
    return config


def uint8_images(images: np.ndarray) -> np.ndarray:
    """uint8 ``(B, H, W, 3)`` RGB of ``output_type='np'`` images (float in [0, 1]), rounded as diffusers rounds
    its PIL images."""
    return (images * 255).round().astype(np.uint8)


@dataclass
class DetDiffusionPipelineOutput(BaseOutput):
    """B images, ``num_images_per_prompt`` per layout (those of layout 0 first), and per image its layout's:

    images: PIL images, float32 ``(B, H, W, 3)`` RGB in [0, 1] (``output_type='np'``), float ``(B, 3, H, W)``
    in [0, 1] (``'pt'``) or the final latents (``'latent'``);
    boxes: per image ``(N, 4)`` float32 xyxy in output pixels of the objects written in its prompt;
    labels: per image ``(N,)`` int64 class indices; attrs: per image the attribute of each box;
    kept: per image the indices of those objects in the input layout (CLIP's 77 tokens may drop some);
    prompts: per image its layout prompt;
    masks: with ``predict_masks``, per image ``(N, H, W)`` float32 probabilities in [0, 1] of each of its N objects'
    mask, from the perception head at the last denoising step (:meth:`DetDiffusionPipeline.instance_masks`)."""

    images: Union[List, np.ndarray, torch.Tensor]
    boxes: List[np.ndarray]
    labels: List[np.ndarray]
    attrs: List[List[Optional[str]]]
    kept: List[List[int]]
    prompts: List[str]
    masks: Optional[List[np.ndarray]] = None


class DetDiffusionPipeline(DiffusionPipeline):
    """Layout-to-image generation with a DetDiffusion generator.

    Args:
        unet / vae / text_encoder / tokenizer / scheduler: diffusers and transformers components;
            ``vae=None`` for a pixel-space generator. ``scheduler`` is the sampler, over the training noise
            schedule (:func:`~.sampling.make_sampler`).
        perception_head: the P.A. loss's head (saved with the generator); with ``predict_masks`` it predicts each
            object's mask in the generated image.
        classes: class names, index = label.
        location_bins: location grid size per axis used in training.
        max_objects: at most this many objects per prompt (GeoDiffusion's ``max_num_bbox``); ``None``: no cap.
        use_attributes: the generator was trained with easy/hard tokens.
        mask_text_padding: the U-Net was trained ignoring the prompts' padding tokens.
        data_filters: ``min_box_area_ratio`` / ``min_object_area_ratio`` of the training data
            (``tools/generate.py`` filters layouts the same way).
        train_settings: the training model's settings that generation does not use (object order, P.A.
            loss weights), so that :func:`~.export.load_exported_generator` rebuilds it.
    """

    model_cpu_offload_seq = 'text_encoder->unet->vae'
    _optional_components = ['vae', 'perception_head']
    # prompt_embeds: the U-Net's text states of every guidance branch (GUIDANCE_BRANCHES' order): the null prompts'
    # first under guidance (as in StableDiffusionPipeline), the flipped prompts' last under attribute guidance
    _callback_tensor_inputs = ['latents', 'prompt_embeds']

    def __init__(self, unet: UNet2DConditionModel, vae: Optional[AutoencoderKL], text_encoder: CLIPTextModel,
                 tokenizer: CLIPTokenizer, scheduler: SchedulerMixin, perception_head: Optional[PerceptionHead] = None,
                 classes: Optional[List[str]] = None, location_bins: int = 256, max_objects: Optional[int] = None,
                 use_attributes: bool = True, mask_text_padding: bool = False, data_filters: Optional[dict] = None,
                 train_settings: Optional[dict] = None):
        super().__init__()
        self.register_modules(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler,
                              perception_head=perception_head)
        self.register_to_config(classes=list(classes or ()), location_bins=location_bins, max_objects=max_objects,
                                use_attributes=use_attributes, mask_text_padding=mask_text_padding,
                                data_filters=dict(data_filters or {}), train_settings=dict(train_settings or {}))
        self.image_processor = VaeImageProcessor(vae_scale_factor=latent_scale(vae))
        self.count_tokens = word_token_counter(tokenizer)
        self._null_embedding = None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str, **kwargs) -> 'DetDiffusionPipeline':
        """Load a generator export (``save_pretrained``'s folder), or a GeoDiffusion checkpoint (a
        ``StableDiffusionPipeline`` folder with ``generation_config.json``; give its ``classes``): it generates
        without attribute tokens, as GeoDiffusion does. Keyword arguments override the saved settings.

        Both sample with their saved scheduler, as diffusers does (a GeoDiffusion checkpoint: the one its
        authors saved), with one exception: exports of earlier versions saved the training scheduler (a
        DDPMScheduler with leading steps, :func:`~.sampling.is_training_scheduler`) and sampled with the
        default sampler, so they get that one here.
        """
        folder = pretrained_model_name_or_path
        if os.path.isdir(folder) or not HUB_ID.fullmatch(folder):  # a local folder: say what it lacks
            problem = export_problem(folder)
            if problem:
                raise FileNotFoundError(problem)
        # without accelerate, diffusers would warn that it cannot load with low memory use, then load anyway
        kwargs.setdefault('low_cpu_mem_usage', is_accelerate_available())
        saved = cls.load_config(folder)
        saved_class = saved.get('_class_name')
        for name, entry in saved.items():  # diffusers loads a class of another module only once it is imported
            if isinstance(entry, list) and len(entry) == 2 and entry[0] is not None \
                    and entry[0] not in LOADABLE_LIBRARIES + tuple(sys.modules):
                raise ImportError(f'{folder}: its {name} is a {entry[1]} of the module {entry[0]}, which is not '
                                  f'imported: import it first (tools/generate.py: --custom-imports {entry[0]}; '
                                  'an mmdet config: custom_imports)')
        if saved_class == cls.__name__ and 'classes' not in saved and not kwargs.get('classes'):
            raise ValueError(f'{folder}/model_index.json has no classes: an export of an earlier version, which kept '
                             f'its settings in detdiffusion.json. Resume its training with this version to export it '
                             f'again ({EXPORT_HINT})')
        if saved_class != cls.__name__:
            geodiffusion = read_generation_config(folder)
            if geodiffusion is None:
                raise ValueError(f'{folder} holds a {saved_class}: neither a DetDiffusion generator export nor a '
                                 f'GeoDiffusion checkpoint ({GENERATION_CONFIG})')
            if not kwargs.get('classes'):
                raise ValueError(f'{folder} is a GeoDiffusion checkpoint: give its class names, '
                                 'DetDiffusionPipeline.from_pretrained(folder, classes=[...])')
            geo = layout_settings(geodiffusion, os.path.join(folder, GENERATION_CONFIG))
            kwargs = {'location_bins': geo['location_bins'], 'max_objects': geo['max_objects'],
                      'use_attributes': False, **kwargs}
        pipe = super().from_pretrained(folder, **kwargs)
        if saved_class == cls.__name__ and 'scheduler' not in kwargs and is_training_scheduler(pipe.scheduler):
            pipe.scheduler = make_sampler(DEFAULT_SAMPLER, pipe.scheduler.config)
        return pipe

    # the layout settings: read from the config (model_index.json), the one place they are kept
    @property
    def classes(self) -> Tuple[str, ...]:
        return tuple(self.config.classes)

    @property
    def grid(self) -> LocationGrid:
        return LocationGrid(self.config.location_bins)

    @property
    def max_objects(self) -> Optional[int]:
        return self.config.max_objects

    @property
    def use_attributes(self) -> bool:
        return self.config.use_attributes

    @property
    def mask_text_padding(self) -> bool:
        return self.config.mask_text_padding

    @property
    def latent_scale(self) -> int:
        """Pixels per latent cell (8 for SD's VAE, 1 in pixel space)."""
        return latent_scale(self.vae)

    @property
    def default_size(self) -> int:
        """The training resolution (pixels, square)."""
        return self.unet.config.sample_size * self.latent_scale

    def make_scheduler(self, sampler: str) -> SchedulerMixin:
        """A fresh scheduler of kind ``sampler`` over ``self.scheduler``'s noise schedule
        (:func:`~.sampling.make_sampler`); ``pipe.scheduler = pipe.make_scheduler('ddim')`` samples with it."""
        return make_sampler(sampler, self.scheduler.config)

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

    def layout_prompts(self, layouts: Sequence[UserLayout], attr_mode: str = MODE_ORIGINAL):
        """``(prompts, objects, kept)``: prompts keep the largest objects first (deterministic);
        ``objects[i]`` are those written in prompt ``i`` and ``kept[i]`` their indices in layout ``i``."""
        prompts, objects, kept = [], [], []
        for layout in layouts:
            layout_objects = with_attr_mode(to_layout_objects(layout, self.classes),
                                            attr_mode if self.use_attributes else MODE_NONE)
            prompt, written = build_prompt(layout_objects, self.grid, self.count_tokens, 'largest',
                                           max_objects=self.max_objects)
            written_ids = {id(o) for o in written}
            indices = [i for i, o in enumerate(layout_objects) if id(o) in written_ids]
            prompts.append(prompt)
            objects.append([layout_objects[i] for i in indices])
            kept.append(indices)
        return prompts, objects, kept

    def flipped_prompts(self, objects: Sequence[Sequence[LayoutObject]]) -> List[str]:
        """The prompts of ``objects`` (those written in each prompt, :meth:`layout_prompts`) with every easy box made
        hard and every hard one easy: attribute guidance's negative term. A flipped token counts as many tokens, so
        each prompt writes the same objects."""
        return [build_prompt([LayoutObject(o.name, o.box, opposite_attribute(o.attr)) for o in written], self.grid,
                             self.count_tokens, 'largest', max_objects=self.max_objects)[0] for written in objects]

    def latent_shape(self, batch_size: int, height: int, width: int) -> Tuple[int, int, int, int]:
        """Shape of the initial noise of ``batch_size`` images of ``height x width`` pixels."""
        return batch_size, sample_channels(self.unet), height // self.latent_scale, width // self.latent_scale

    def check_inputs(self, num_layouts: int, num_images_per_prompt: int, height: int, width: int, output_type: str,
                     generator: Union[torch.Generator, List[torch.Generator], None], latents: Optional[torch.Tensor],
                     callback_on_step_end_tensor_inputs: Sequence[str]) -> None:
        """Refuse arguments that do not fit together, naming them (before any model runs)."""
        if height % self.latent_scale or width % self.latent_scale:
            raise ValueError(f'height and width must be multiples of {self.latent_scale}, got {height}x{width}')
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f'output_type must be one of {OUTPUT_TYPES}, got {output_type!r}')
        if not isinstance(num_images_per_prompt, int) or num_images_per_prompt < 1:
            raise ValueError(f'num_images_per_prompt must be a positive integer, got {num_images_per_prompt!r}')
        batch_size = num_layouts * num_images_per_prompt
        per_prompt = f' x num_images_per_prompt={num_images_per_prompt}' if num_images_per_prompt > 1 else ''
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(f'{len(generator)} generators for {num_layouts} layouts{per_prompt}: give one per '
                             f'image ({batch_size}), or one')
        shape = self.latent_shape(batch_size, height, width)
        if latents is not None and tuple(latents.shape) != shape:
            raise ValueError(f'latents must have shape {shape} for {num_layouts} layouts{per_prompt} of '
                             f'{height}x{width}, got {tuple(latents.shape)}')
        unknown = [name for name in callback_on_step_end_tensor_inputs if name not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(f'callback_on_step_end_tensor_inputs {unknown} are not among '
                             f'{self._callback_tensor_inputs}')

    @torch.no_grad()
    def __call__(self, layouts: Union[UserLayout, Sequence[UserLayout]], height: Optional[int] = None,
                 width: Optional[int] = None, attr_mode: str = MODE_ORIGINAL, num_inference_steps: int = 25,
                 guidance_scale: float = 5.0, attribute_guidance_scale: float = 0.0, num_images_per_prompt: int = 1,
                 sampler: Optional[str] = None,
                 generator: Union[torch.Generator, List[torch.Generator], None] = None,
                 latents: Optional[torch.Tensor] = None, output_type: str = 'pil', predict_masks: bool = False,
                 return_dict: bool = True,
                 callback_on_step_end: Optional[Callable[..., Dict[str, torch.Tensor]]] = None,
                 callback_on_step_end_tensor_inputs: Sequence[str] = ('latents',)
                 ) -> Union[DetDiffusionPipelineOutput, tuple]:
        """Generate ``num_images_per_prompt`` images per layout with ``self.scheduler``.

        Args:
            layouts: one layout or a list (see :mod:`mmdet_detdiffusion.layout.inputs`).
            height / width: output size in pixels (default: the training resolution); multiples of the
                latent scale (8 with SD's VAE).
            attr_mode: ``'hard'`` / ``'easy'`` for every box, ``'original'`` as the layout gives them
                (when no box has one, no attribute token is written: a
                :class:`~mmdet_detdiffusion.layout.inputs.MissingAttributesWarning` says so).
            guidance_scale: classifier-free guidance weight (1 disables the unconditional pass).
            attribute_guidance_scale: weight of attribute guidance (0, the paper's sampler, disables it): each step
                also predicts the noise under the prompts with every easy box made hard and every hard one easy
                (:meth:`flipped_prompts`), and steers away from that prediction, as composable diffusion (Liu et al.,
                2022) steers away from a negated prompt: ``eps = eps_null + guidance_scale * (eps_prompt - eps_null)
                + attribute_guidance_scale * (eps_prompt - eps_flipped)``. Both prompts share the layout, so the
                extra term moves only what the attributes change; it costs one more U-Net pass per image (none
                when no box of the batch has an attribute).
            num_images_per_prompt: images per layout, all of layout 0 first (diffusers' order).
            sampler: one of ``SAMPLERS``: this call samples with a fresh scheduler of that kind over
                ``self.scheduler``'s noise schedule (:meth:`make_scheduler`), leaving ``self.scheduler`` as it
                is; ``None``: ``self.scheduler``.
            generator: one per image (their noise is then independent of the batch) or one for all.
            latents: the initial noise ``(B, C, h, w)`` (:meth:`latent_shape`, B = layouts x
                ``num_images_per_prompt``) instead of drawing it from ``generator``, unscaled (the scheduler's
                ``init_noise_sigma`` is applied here).
            output_type: ``'pil'``, ``'np'``, ``'pt'`` (diffusers' ``VaeImageProcessor``) or ``'latent'``.
            predict_masks: also return each object's mask as the perception head sees it in the image
                (``masks`` of the output; :meth:`instance_masks`).
            return_dict: a :class:`DetDiffusionPipelineOutput`, else its fields as a tuple (``masks`` last, with
                ``predict_masks`` only: diffusers' ``to_tuple`` leaves out fields that are ``None``).
            callback_on_step_end: called after each step as ``callback(pipe, step, t, tensors)`` with the
                tensors named in ``callback_on_step_end_tensor_inputs`` (of ``_callback_tensor_inputs``);
                the tensors of the dict it returns replace them.
        """
        if isinstance(layouts, Mapping) or (layouts and isinstance(next(iter(layouts)), LayoutObject)):
            layouts = [layouts]
        height, width = height or self.default_size, width or self.default_size
        if attribute_guidance_scale and not self.use_attributes:
            raise ValueError('attribute_guidance_scale needs a generator trained with attribute tokens; this one has '
                             'none (use_attributes=False: a GeoDiffusion checkpoint or a generator trained without)')
        if predict_masks and self.perception_head is None:
            raise ValueError('predict_masks=True, but this pipeline has no perception_head (an export of a generator '
                             'trained without the P.A. loss, or a GeoDiffusion checkpoint)')
        self.check_inputs(len(layouts), num_images_per_prompt, height, width, output_type, generator, latents,
                          callback_on_step_end_tensor_inputs)
        scheduler = self.scheduler if sampler is None else self.make_scheduler(sampler)
        prompts, objects, kept = self.layout_prompts(layouts, attr_mode)
        if attr_mode == MODE_ORIGINAL and self.use_attributes:
            unlabelled, total = count_unlabelled([o.attr for o in objs] for objs in objects)
            if total and unlabelled == total:  # stacklevel 3: past torch.no_grad's wrapper, at the caller
                warnings.warn(NO_ATTRIBUTES_MESSAGE, MissingAttributesWarning, stacklevel=3)
        device = self._execution_device
        batch_size = len(prompts) * num_images_per_prompt
        texts = {'prompt': self.encode_prompt(prompts)}  # each prompt encoded once, then repeated per image
        if guidance_scale != 1.0:
            texts['null'] = self.null_embedding(len(prompts))
        flipped = self.flipped_prompts(objects) if attribute_guidance_scale else prompts
        if flipped != prompts:  # with no attribute token anywhere the term is zero: no pass for it
            texts['flipped'] = self.encode_prompt(flipped)
        branches = [name for name in GUIDANCE_BRANCHES if name in texts]  # one U-Net batch, null prompts first
        prompt_embeds = torch.cat([texts[name][0] for name in branches]).repeat_interleave(num_images_per_prompt, 0)
        text_mask = None if texts['prompt'][1] is None else torch.cat(
            [texts[name][1] for name in branches]).repeat_interleave(num_images_per_prompt, 0)
        prompt_embeds = prompt_embeds.to(self.unet.dtype)
        prompts_at = branches.index('prompt') * batch_size  # where the prompts' pass sits in the U-Net batch
        scheduler.set_timesteps(num_inference_steps, device=device)
        if latents is None:
            latents = randn_tensor(self.latent_shape(batch_size, height, width), generator=generator, device=device,
                                   dtype=self.unet.dtype)
        latents = latents.to(device, self.unet.dtype) * scheduler.init_noise_sigma
        step_kwargs = {'generator': generator} if 'generator' in inspect.signature(scheduler.step).parameters else {}
        per_image = [i for i in range(len(layouts)) for _ in range(num_images_per_prompt)]  # image -> its layout
        masks = None
        with self.progress_bar(total=len(scheduler.timesteps)) as progress_bar:
            for i, t in enumerate(scheduler.timesteps):
                model_input = scheduler.scale_model_input(torch.cat([latents] * len(branches)), t)
                recorded = self.feature_modules() if predict_masks and i == len(scheduler.timesteps) - 1 else {}
                with recorded_outputs(recorded) as recorder:
                    prediction = self.unet(model_input, t, encoder_hidden_states=prompt_embeds,
                                           encoder_attention_mask=text_mask, return_dict=False)[0]
                if recorded:  # the prompts' pass
                    features = [recorder.pop(name)[0][prompts_at:prompts_at + batch_size] for name in recorded]
                    masks = self.instance_masks(features, [objects[j] for j in per_image], height, width)
                noise = dict(zip(branches, prediction.chunk(len(branches))))
                prediction = noise['prompt']
                if 'null' in noise:
                    prediction = noise['null'] + guidance_scale * (noise['prompt'] - noise['null'])
                if 'flipped' in noise:
                    prediction = prediction + attribute_guidance_scale * (noise['prompt'] - noise['flipped'])
                latents = scheduler.step(prediction, t, latents, **step_kwargs, return_dict=False)[0]
                if callback_on_step_end is not None:
                    tensors = dict(latents=latents, prompt_embeds=prompt_embeds)
                    returned = callback_on_step_end(self, i, t,
                                                    {k: tensors[k] for k in callback_on_step_end_tensor_inputs})
                    latents = returned.pop('latents', latents)
                    prompt_embeds = returned.pop('prompt_embeds', prompt_embeds)
                progress_bar.update()
        images = latents
        if output_type != 'latent':
            if self.vae is not None:
                images = self.vae.decode(latents.to(self.vae.dtype) / self.vae.config.scaling_factor,
                                         return_dict=False)[0]
            images = self.image_processor.postprocess(images, output_type=output_type)
        self.maybe_free_model_hooks()
        scale = np.array([width, height, width, height], dtype=np.float32)
        output = DetDiffusionPipelineOutput(
            images=images,
            boxes=[np.array([o.box for o in objects[i]], dtype=np.float32).reshape(-1, 4) * scale for i in per_image],
            labels=[np.array([self.classes.index(o.name) for o in objects[i]], dtype=np.int64) for i in per_image],
            attrs=[[o.attr for o in objects[i]] for i in per_image], kept=[list(kept[i]) for i in per_image],
            prompts=[prompts[i] for i in per_image], masks=masks)
        return output if return_dict else output.to_tuple()

    def feature_modules(self) -> Dict[str, torch.nn.Module]:
        """The U-Net blocks whose outputs the perception head reads, by name."""
        return {UP_BLOCK_RECORD.format(i): self.unet.up_blocks[i] for i in self.perception_head.config.feature_blocks}

    def instance_masks(self, features: Sequence[torch.Tensor], objects: Sequence[Sequence[LayoutObject]],
                       height: int, width: int) -> List[np.ndarray]:
        """Per image ``(N, height, width)`` float32 mask probabilities of its N ``objects``, from the perception head
        on ``features``, the decoder outputs ``(B, C, h, w)`` of the U-Net pass over B images (the head's logits,
        bilinearly resized to the image, through a sigmoid)."""
        device = features[0].device
        boxes = torch.tensor([o.box for image in objects for o in image], dtype=torch.float32, device=device)
        if not len(boxes):
            return [np.zeros((0, height, width), np.float32) for _ in objects]
        batch_index = torch.tensor([b for b, image in enumerate(objects) for _ in image], device=device)
        head_dtype = next(self.perception_head.parameters()).dtype
        logits = self.perception_head([f.to(head_dtype) for f in features], boxes.reshape(-1, 4).to(head_dtype),
                                      batch_index)
        probs = F.interpolate(logits[:, None].float(), size=(height, width), mode='bilinear', align_corners=False)
        probs = probs[:, 0].sigmoid().cpu().numpy()
        return np.split(probs, np.cumsum([len(image) for image in objects])[:-1])
