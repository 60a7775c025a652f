"""DetDiffusionGenerator: Stable Diffusion fine-tuned on layout prompts with the perception-aware loss.

    loss = L_LDM + pa_loss_weight * L_PA
    L_LDM: MSE between the U-Net's prediction and its target (noise, v or x0) on noised latents, optionally
           re-weighted on foreground boxes (GeoDiffusion);
    L_PA:  mean over instances of sqrt(alpha-bar_t) * (BCE + dice) of the perception head's instance masks,
           predicted from U-Net decoder features (DetDiffusion).

All randomness of a training step (noise, timesteps, object order, null prompts, VAE sampling) comes
from generators seeded by ``(seed, rank, step)``, the step counter being a buffer saved in
checkpoints, so a resumed run repeats the steps an uninterrupted run would take.
"""
import random
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine import dist
from mmengine.model import BaseModel

from mmdet_detdiffusion.generator.components import build_component, latent_scale
from mmdet_detdiffusion.generator.geodiffusion import GENERATION_CONFIG, layout_settings, read_generation_config
from mmdet_detdiffusion.generator.losses import foreground_weight_map, instance_mask_loss, noise_level_weight
from mmdet_detdiffusion.generator.perception_head import PerceptionHead
from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline, uint8_images
from mmdet_detdiffusion.generator.recorder import UP_BLOCK_RECORD, UNetRecorder
from mmdet_detdiffusion.generator.sampling import DEFAULT_SAMPLER, make_sampler
from mmdet_detdiffusion.generator.text import SlotTokenEmbeddings, add_layout_tokens, encode_text, word_token_counter
from mmdet_detdiffusion.layout.attributes import ATTR_NAMES, NO_ATTR_CODE
from mmdet_detdiffusion.layout.prompt import LayoutObject, LocationGrid, build_prompt

TRAINABLE_PARTS = ('unet', 'text_encoder', 'perception_head')
# the attribute-slot rows alone (``separate_slot_embeddings``); they also train with the text encoder
SLOT_PART = 'slot_embeddings'
DEFAULT_LOCATION_BINS = 256  # GeoDiffusion's
# uint8 BGR images (3, H, W) -> a float RGB batch (B, 3, H, W) in [-1, 1]
DEFAULT_DATA_PREPROCESSOR = dict(type='ImgDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3, bgr_to_rgb=True)


def resolve_layout_settings(location_bins: Optional[int], max_objects: Optional[int],
                            generation_config: Optional[str]) -> dict:
    """``location_bins`` and ``max_objects``: the given values, else a GeoDiffusion checkpoint's
    ``generation_config.json``, else 256 bins and no cap; a given value that contradicts the checkpoint
    is refused (its location tokens were trained on its grid)."""
    settings = dict(location_bins=location_bins, max_objects=max_objects)
    config = read_generation_config(generation_config) if generation_config else None
    if config is not None:
        theirs = layout_settings(config, f'{generation_config}/{GENERATION_CONFIG}')
        for key, value in settings.items():
            if value is not None and theirs[key] is not None and value != theirs[key]:
                raise ValueError(f'{key}={value} contradicts {generation_config}/{GENERATION_CONFIG}, '
                                 f'which gives {theirs[key]}')
            settings[key] = theirs[key] if value is None else value
    if settings['location_bins'] is None:
        settings['location_bins'] = DEFAULT_LOCATION_BINS
    return settings


@MODELS.register_module()
class DetDiffusionGenerator(BaseModel):
    """Layout-to-image latent diffusion model with perception-aware attributes and loss.

    Args:
        unet / text_encoder / tokenizer / scheduler: component configs
            (:func:`~mmdet_detdiffusion.generator.components.build_component`) or built components.
        vae: AutoencoderKL config (or model), always frozen; ``None`` diffuses in pixel space (tiny models).
        classes: class names, index = dataset label.
        location_bins: location grid size per axis (GeoDiffusion: 256); ``None``: ``generation_config``'s,
            else 256.
        max_objects: at most this many objects per prompt (GeoDiffusion's ``max_num_bbox``); ``None``:
            ``generation_config``'s, else only CLIP's 77 tokens limit them.
        generation_config: a GeoDiffusion checkpoint (folder or hub id) whose ``generation_config.json``
            gives the location grid and object cap (:mod:`.geodiffusion`); ``None`` for other bases.
        use_attributes: write the easy/hard token of each box (False: a GeoDiffusion baseline).
        object_order: ``'random'`` (GeoDiffusion's shuffle) or ``'largest'``; decides who is kept when a
            layout is longer than CLIP's 77 tokens.
        null_prompt_prob: share of training prompts replaced by the empty prompt (classifier-free guidance).
        mask_text_padding: the U-Net's cross-attention ignores the prompt's padding tokens (off for Stable
            Diffusion, which was trained attending to them; on helps a text encoder trained from scratch).
        perception_head: config of the P.A. loss's head, built by mmdet's ``MODELS`` (``type`` defaults to
            :class:`~.perception_head.PerceptionHead`; ``in_channels`` and ``feature_blocks`` are filled in),
            or a built head; ``None`` disables the P.A. loss.
        feature_blocks: indices of ``unet.up_blocks`` whose outputs feed a perception head built from a
            config (a built head brings its own).
        pa_loss_weight: lambda of the P.A. loss.
        pa_weight_power: the P.A. loss of a sample is weighted by ``alpha-bar_t ** pa_weight_power``
            (the paper: 0.5, ``sqrt(alpha-bar_t)``).
        foreground_weight: ``dict(weight=2.0, power=0.2)`` for GeoDiffusion's foreground re-weighting.
        noise_offset: std of a per-sample, per-channel constant added to the training noise (the offset
            noise of diffusers' training examples): lets samplers move an image's mean level, e.g. a
            background from near-black to near-white; 0 is plain noise.
        separate_slot_embeddings: train the attribute-slot tokens' rows as a parameter of their own,
            ``slot_embeddings.weight`` (:class:`~.text.SlotTokenEmbeddings`), so that ``paramwise_cfg`` can give
            them their own learning rate; they train with the text encoder.
        trainable: which of ``('unet', 'text_encoder', 'perception_head')`` receive gradients, and
            ``'slot_embeddings'`` for the attribute-slot rows without the rest of the text encoder (with
            ``separate_slot_embeddings``: textual inversion's setting when the U-Net and encoder are left out).
        seed: base seed of the per-step randomness.
    """

    def __init__(self, unet: Union[dict, Any], text_encoder: Union[dict, Any], tokenizer: Union[dict, Any],
                 scheduler: Union[dict, Any], classes: Sequence[str], vae: Union[dict, Any, None] = None,
                 location_bins: Optional[int] = None, max_objects: Optional[int] = None,
                 generation_config: Optional[str] = None,
                 use_attributes: bool = True, object_order: str = 'random', null_prompt_prob: float = 0.1,
                 mask_text_padding: bool = False,
                 perception_head: Union[dict, PerceptionHead, None] = dict(channels=64, num_convs=2),
                 feature_blocks: Sequence[int] = (1, 2, 3), pa_loss_weight: float = 0.01,
                 pa_weight_power: float = 0.5,
                 foreground_weight: Optional[dict] = None, noise_offset: float = 0.0,
                 separate_slot_embeddings: bool = False, trainable: Sequence[str] = TRAINABLE_PARTS,
                 seed: int = 0, data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor or DEFAULT_DATA_PREPROCESSOR, init_cfg=init_cfg)
        if not classes:
            raise ValueError('DetDiffusionGenerator: classes (the dataset class names) are required')
        unknown = set(trainable) - {*TRAINABLE_PARTS, SLOT_PART}
        if unknown:
            raise ValueError(f'trainable parts {sorted(unknown)} are not among {(*TRAINABLE_PARTS, SLOT_PART)}')
        if SLOT_PART in trainable and not separate_slot_embeddings:
            raise ValueError(f'trainable part {SLOT_PART!r} needs separate_slot_embeddings=True')
        self.unet = build_component(unet)
        self.vae = build_component(vae)
        self.text_encoder = build_component(text_encoder)
        self.tokenizer = build_component(tokenizer)
        self.scheduler = build_component(scheduler)
        self.classes = tuple(classes)
        layout = resolve_layout_settings(location_bins, max_objects, generation_config)
        self.grid = LocationGrid(layout['location_bins'])
        self.max_objects = layout['max_objects']
        self.seed = seed
        self.init_layout_tokens()
        self.slot_embeddings = None
        if separate_slot_embeddings:
            self.slot_embeddings = SlotTokenEmbeddings(self.tokenizer, self.text_encoder)
            # a checkpoint saved without them (resume, load_from) gives them its table's rows
            self.register_load_state_dict_pre_hook(self._slot_rows_from_table)
        self.count_tokens = word_token_counter(self.tokenizer)
        self.use_attributes = use_attributes
        self.object_order = object_order
        self.null_prompt_prob = null_prompt_prob
        self.mask_text_padding = mask_text_padding
        self.pa_loss_weight = pa_loss_weight
        self.pa_weight_power = pa_weight_power
        self.foreground_weight = foreground_weight
        self.noise_offset = noise_offset
        self.recorder = UNetRecorder()  # what the losses read from inside the U-Net's training pass
        if isinstance(perception_head, dict):
            in_channels = [self.unet.up_blocks[i].resnets[-1].out_channels for i in feature_blocks]
            perception_head = MODELS.build(perception_head, default_args=dict(
                type='PerceptionHead', in_channels=in_channels, feature_blocks=list(feature_blocks)))
        self.perception_head = perception_head
        self.feature_blocks = () if perception_head is None else tuple(perception_head.config.feature_blocks)
        for i in self.feature_blocks:
            self.unet.up_blocks[i].register_forward_hook(self.recorder.output_hook(UP_BLOCK_RECORD.format(i)))
        self.register_buffer('num_train_steps', torch.zeros((), dtype=torch.long))
        self._set_trainable(trainable)

    # ---------------------------------------------------------------- setup
    def init_layout_tokens(self) -> None:
        """Add the layout tokens to the tokenizer and text encoder (:func:`~.text.add_layout_tokens`); a subclass
        that initialises more rows extends it (it runs before the slot rows are held apart)."""
        add_layout_tokens(self.tokenizer, self.text_encoder, self.grid)

    def _set_trainable(self, trainable: Sequence[str]) -> None:
        self.requires_grad_(False)
        for part in trainable:
            module = getattr(self, part)
            if module is not None:
                module.requires_grad_(True)
        if self.slot_embeddings is not None and 'text_encoder' in trainable:  # the encoder's rows, held apart
            self.slot_embeddings.requires_grad_(True)
        self.trainable = tuple(trainable)

    def _slot_rows_from_table(self, module: torch.nn.Module, state_dict: dict, prefix: str, *args) -> None:
        """Load-state-dict pre-hook: a state without ``slot_embeddings.weight`` gets its table's slot rows."""
        table = self.text_encoder.get_input_embeddings().weight
        table_key = prefix + 'text_encoder.' + next(name for name, p in self.text_encoder.named_parameters()
                                                    if p is table)
        if prefix + 'slot_embeddings.weight' not in state_dict and table_key in state_dict:
            state_dict[prefix + 'slot_embeddings.weight'] = self.slot_embeddings.state_from_table(state_dict[table_key])

    def train(self, mode: bool = True) -> 'DetDiffusionGenerator':
        super().train(mode)
        if self.vae is not None:
            self.vae.eval()  # frozen: no dropout, no statistics updates
        return self

    @property
    def latent_scale(self) -> int:
        """Pixels per latent cell (8 for SD's VAE, 1 in pixel space)."""
        return latent_scale(self.vae)

    # ---------------------------------------------------------------- layouts and text
    def layout_of(self, data_sample) -> List[LayoutObject]:
        """The layout of a packed sample: boxes normalised by its ``img_shape``, attributes if used."""
        height, width = data_sample.metainfo['img_shape'][:2]
        instances = data_sample.gt_instances
        boxes = getattr(instances.bboxes, 'tensor', instances.bboxes).detach().float().cpu()
        boxes = (boxes / boxes.new_tensor([width, height, width, height])).clamp(0, 1).tolist()
        labels = instances.labels.tolist()
        use_attrs = self.use_attributes and 'pa_attrs' in instances
        attrs = instances.pa_attrs.tolist() if use_attrs else [NO_ATTR_CODE] * len(labels)
        return [LayoutObject(self.classes[label], tuple(box), ATTR_NAMES[attr])
                for box, label, attr in zip(boxes, labels, attrs)]

    def prompt(self, layout: Sequence[LayoutObject], order: Optional[str] = None,
               rng: Optional[random.Random] = None) -> str:
        """Layout prompt (truncated to CLIP's window by ``order``, default the training order)."""
        return build_prompt(layout, self.grid, self.count_tokens, order or self.object_order, rng,
                            max_objects=self.max_objects)[0]

    def text_condition(self, prompts: Sequence[str]) -> dict:
        """The U-Net's text inputs for ``prompts``: ``encoder_hidden_states`` ``(B, 77, D)`` and
        ``encoder_attention_mask`` (``(B, 77)`` or ``None``)."""
        states, mask = encode_text(self.tokenizer, self.text_encoder, prompts, self.mask_text_padding)
        return dict(encoder_hidden_states=states, encoder_attention_mask=mask)

    # ---------------------------------------------------------------- images and latents
    def encode_images(self, images: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Images ``(B, 3, H, W)`` in [-1, 1] -> latents (the images themselves in pixel space)."""
        if self.vae is None:
            return images
        with torch.no_grad():
            posterior = self.vae.encode(images.to(self.vae.dtype)).latent_dist
            return posterior.sample(generator) * self.vae.config.scaling_factor

    # ---------------------------------------------------------------- training
    def _step_randomness(self, device: torch.device) -> Tuple[torch.Generator, random.Random]:
        """Generators of this training step, a pure function of (seed, rank, step); advances the step."""
        step = int(self.num_train_steps)
        self.num_train_steps += 1
        seed = (self.seed * 1_000_003 + dist.get_rank() * 104_729 + step) % (2 ** 63)
        return torch.Generator(device=device).manual_seed(seed), random.Random(seed)

    def loss(self, inputs: torch.Tensor, data_samples: list, timesteps: Optional[torch.Tensor] = None
             ) -> Dict[str, torch.Tensor]:
        """Training losses of a batch (``timesteps`` fixes t instead of drawing it, for analysis)."""
        generator, rng = self._step_randomness(inputs.device)
        layouts = [self.layout_of(sample) for sample in data_samples]
        prompts, kept = [], []
        for layout in layouts:
            prompt, objects = ('', []) if rng.random() < self.null_prompt_prob else \
                build_prompt(layout, self.grid, self.count_tokens, self.object_order, rng,
                             max_objects=self.max_objects)
            prompts.append(prompt)
            kept.append(objects)
        latents = self.encode_images(inputs, generator)
        noise = torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
        if self.noise_offset:
            offset = torch.randn(latents.shape[:2], generator=generator, device=latents.device, dtype=latents.dtype)
            noise = noise + self.noise_offset * offset[..., None, None]
        if timesteps is None:
            timesteps = torch.randint(0, self.scheduler.config.num_train_timesteps, (len(latents),),
                                      generator=generator, device=latents.device)
        noisy = self.scheduler.add_noise(latents, noise, timesteps)
        text = self.text_condition(prompts)
        with self.recorder.recording():
            prediction = self.unet(noisy, timesteps, **text).sample
        target = self.prediction_target(latents, noise, timesteps)
        error = F.mse_loss(prediction.float(), target.float(), reduction='none')
        if self.foreground_weight is not None:
            boxes = [torch.tensor([o.box for o in layout], device=error.device).reshape(-1, 4) for layout in layouts]
            error = error * foreground_weight_map(boxes, error.shape[-2:], **self.foreground_weight)
        losses = dict(loss_ldm=error.mean(), **self.extra_losses(kept, latents))
        if self.perception_head is not None:
            losses['loss_pa'] = self.pa_loss_weight * self.perception_loss(layouts, data_samples, timesteps)
        return losses

    def prediction_target(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """What the U-Net learns to predict, by the scheduler's ``prediction_type``: the noise (SD v1.5),
        v (SD 2.x, and the toy configs) or the clean sample (x0)."""
        kind = self.scheduler.config.prediction_type
        if kind == 'epsilon':
            return noise
        if kind == 'v_prediction':
            return self.scheduler.get_velocity(latents, noise, timesteps)
        if kind == 'sample':
            return latents
        raise ValueError(f'scheduler prediction_type {kind!r} is not one of epsilon, v_prediction, sample')

    def extra_losses(self, kept: List[List[LayoutObject]], latents: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Losses a subclass adds, read after the U-Net's training pass (``self.recorder``), given the objects
        written in each prompt and the clean latents ``(B, C, h, w)``; none here."""
        return {}

    def perception_loss(self, layouts: List[List[LayoutObject]], data_samples: list, timesteps: torch.Tensor
                        ) -> torch.Tensor:
        """``alpha-bar_t ** pa_weight_power``-weighted instance-mask loss of the last U-Net forward pass
        (unscaled by lambda)."""
        features = [self.recorder.pop(UP_BLOCK_RECORD.format(i))[0] for i in self.feature_blocks]
        device = features[0].device
        boxes = torch.tensor([o.box for layout in layouts for o in layout], device=device).reshape(-1, 4)
        batch_index = torch.tensor([b for b, layout in enumerate(layouts) for _ in layout], device=device,
                                   dtype=torch.long)
        if len(boxes) == 0:  # keep the head in the graph so distributed gradient sync stays in step
            return sum(p.sum() for p in self.perception_head.parameters()) * 0.0
        logits = self.perception_head(features, boxes, batch_index).float()
        targets = torch.cat([self._mask_targets(sample, logits.shape[-2:], device) for sample in data_samples])
        per_instance = instance_mask_loss(logits, targets)
        weights = noise_level_weight(self.scheduler.alphas_cumprod, timesteps, self.pa_weight_power)[batch_index]
        return (weights * per_instance).mean()

    @staticmethod
    def _mask_targets(data_sample, size: Sequence[int], device: torch.device) -> torch.Tensor:
        """Instance masks of a sample as soft targets ``(N, *size)`` (area-resized)."""
        masks = data_sample.gt_instances.masks
        if len(masks) == 0:
            return torch.zeros((0, *size), device=device)
        dense = masks.to_tensor(dtype=torch.float32, device=device)[:, None]
        return F.interpolate(dense, size=tuple(size), mode='area')[:, 0]

    # ---------------------------------------------------------------- sampling
    def as_pipeline(self, data_filters: Optional[dict] = None) -> DetDiffusionPipeline:
        """A :class:`DetDiffusionPipeline` sharing this model's components (no copies) but the scheduler: it
        samples with a fresh default sampler (trailing DPM-Solver++) over the training noise schedule, so the
        training scheduler stays as it is. ``data_filters`` of the training data are recorded in it (see
        :func:`~.export.export_generator`)."""
        if self.slot_embeddings is not None:
            self.slot_embeddings.write_back()  # the pipeline is saved, or used, with the table's rows
        return DetDiffusionPipeline(
            unet=self.unet, vae=self.vae, text_encoder=self.text_encoder, tokenizer=self.tokenizer,
            scheduler=make_sampler(DEFAULT_SAMPLER, self.scheduler.config), perception_head=self.perception_head,
            classes=list(self.classes), location_bins=self.grid.bins, max_objects=self.max_objects,
            use_attributes=self.use_attributes, mask_text_padding=self.mask_text_padding, data_filters=data_filters,
            train_settings=dict(object_order=self.object_order, pa_loss_weight=self.pa_loss_weight,
                                pa_weight_power=self.pa_weight_power))

    @torch.no_grad()
    def sample(self, layouts: Sequence[Sequence[LayoutObject]], height: int, width: int,
               num_inference_steps: int = 25, guidance_scale: float = 5.0, seed: int = 0) -> torch.Tensor:
        """Generate one image per layout with DDIM: uint8 RGB ``(B, height, width, 3)`` on the CPU
        (image ``i`` from seed ``seed + i``)."""
        device = self.unet.device
        generators = [torch.Generator(device=device).manual_seed(seed + i) for i in range(len(layouts))]
        output = self.as_pipeline()(layouts, height, width, num_inference_steps=num_inference_steps,
                                    guidance_scale=guidance_scale, sampler='ddim', generator=generators,
                                    output_type='np')
        return torch.from_numpy(uint8_images(output.images))

    def forward(self, inputs: torch.Tensor, data_samples: Optional[list] = None, mode: str = 'tensor'
                ) -> Union[Dict[str, torch.Tensor], torch.Tensor]:
        """``'loss'``: training losses; ``'predict'``: images generated from the samples' layouts at the
        input size; ``'tensor'``: the U-Net's prediction for the clean latents at t = 0 with their prompts."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            layouts = [self.layout_of(sample) for sample in data_samples]
            return self.sample(layouts, inputs.shape[-2], inputs.shape[-1])
        if mode == 'tensor':
            prompts = [self.prompt(self.layout_of(s), order='largest') for s in data_samples]
            latents = self.encode_images(inputs)
            timesteps = torch.zeros(len(latents), dtype=torch.long, device=latents.device)
            return self.unet(latents, timesteps, **self.text_condition(prompts)).sample
        raise ValueError(f'unknown mode {mode!r}: expected loss, predict or tensor')
