"""A conditional U-Net that also knows where each pixel is, for generators trained from scratch.

Stable Diffusion learns absolute position from its pretraining, which is what lets a layout written as
location tokens find its place in the image. A tiny U-Net trained from scratch has no such prior: its
convolutions are translation-equivariant, so cross-attention queries carry almost no position until
zero padding has been exploited, which takes thousands of steps. Two inputs give it position from the
first step:

- CoordConv maps (Liu et al., "An intriguing failing of convolutional neural networks and the CoordConv
  solution", 2018): x and y (each -1..1 across the image) and, optionally, their sin/cos at frequencies
  pi, 2 pi, 4 pi, ... appended to the sample as input channels;
- cross-attention queries made of position alone: each cross-attention layer's query input is a learned
  linear map of the 2-D sin-cos encoding of the query's cell (:mod:`~mmdet_detdiffusion.generator.position_encoding`,
  ``cross_attention_dim`` channels over a ``sample_size`` grid), not of the image features. Cross-
  attention becomes a layout lookup ("which object is here?") that works as well at t = 999 as at
  t = 0. It is the encoding the location tokens start from (toy configs: one location bin per pixel), so
  matching a query to a box starts out as a linear problem. With the position *added* to the features
  (before or after the block's LayerNorm), the noise in the features drowned it at high noise levels,
  where the layout decides the image: the objects' attention from inside their boxes fell from 70-85%
  at t = 300 to 10-20% at t = 900.
"""
import functools
import inspect
import math

import torch
import torch.nn.functional as F
# ModelMixin: diffusers loads a custom component of a pipeline by looking its base classes up in its module
from diffusers import ModelMixin, UNet2DConditionModel  # noqa: F401
from diffusers.models.attention_processor import Attention
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

from mmdet_detdiffusion.generator.components import GENERATOR_COMPONENTS
from mmdet_detdiffusion.generator.position_encoding import grid_centres, sincos_2d_features

RAMP_CHANNELS = 2  # x and y


def coordinate_maps(batch: int, height: int, width: int, like: torch.Tensor, frequencies: int = 0) -> torch.Tensor:
    """``(batch, 2 + 4 * frequencies, height, width)`` position maps: x and y of the pixel centres, each from
    -1 to 1 across the image, then ``sin(f x), cos(f x), sin(f y), cos(f y)`` for ``f = pi * 2**k``,
    ``k < frequencies``."""
    ys = torch.linspace(-1.0, 1.0, height, device=like.device, dtype=like.dtype)
    xs = torch.linspace(-1.0, 1.0, width, device=like.device, dtype=like.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
    maps = [grid_x, grid_y]
    for k in range(frequencies):
        scale = math.pi * 2 ** k
        maps += [(scale * grid_x).sin(), (scale * grid_x).cos(), (scale * grid_y).sin(), (scale * grid_y).cos()]
    return torch.stack(maps)[None].expand(batch, -1, -1, -1)


def share_grid_size(transformer: Transformer2DModel, args: tuple, kwargs: dict) -> None:
    """Forward pre-hook of a transformer (attention) block: tell its cross-attention layers the ``(h, w)``
    of the grid their queries come from (the block's input is ``(B, C, h, w)``, theirs ``(B, h * w, C)``)."""
    hidden = args[0] if args else kwargs['hidden_states']
    for block in transformer.transformer_blocks:
        block.attn2.query_grid = tuple(hidden.shape[-2:])


@functools.lru_cache(maxsize=16)
def grid_features(height: int, width: int, dim: int, cells: int) -> torch.Tensor:
    """``(height * width, dim)`` sin-cos encodings of a grid's cell centres (CPU, cached: every cross-attention
    layer of a grid size asks for the same ones at every step)."""
    return sincos_2d_features(*grid_centres(height, width), dim=dim, cells=cells)


def position_queries(attention: Attention, args: tuple, kwargs: dict, cells: int):
    """Forward pre-hook of a cross-attention layer: replace its query input ``(B, h * w, C)`` by
    ``attention.query_position`` of the sin-cos encoding of each query's cell."""
    hidden = args[0] if args else kwargs['hidden_states']
    features = grid_features(*attention.query_grid, attention.query_position.in_features, cells).to(hidden)
    hidden = attention.query_position(features).expand(len(hidden), -1, -1)
    return ((hidden, *args[1:]), kwargs) if args else (args, {**kwargs, 'hidden_states': hidden})


def _with_patch_size(signature: inspect.Signature) -> inspect.Signature:
    """``signature`` plus a keyword-only ``patch_size=1`` (diffusers reads config keys from it)."""
    patch = inspect.Parameter('patch_size', inspect.Parameter.KEYWORD_ONLY, default=1, annotation=int)
    return signature.replace(parameters=[*signature.parameters.values(), patch])


@GENERATOR_COMPONENTS.register_module()
class CoordUNet2DConditionModel(UNet2DConditionModel):
    """``UNet2DConditionModel`` whose input is the sample plus position maps (:func:`coordinate_maps`) and
    whose cross-attention queries are a position embedding (module docstring).

    Configure it as the diffusers class plus ``patch_size`` (``p``, default 1): the sample is cut into
    ``p x p`` patches stacked as channels (pixel unshuffle), so the U-Net's grid is ``p`` times coarser and
    every convolution ``p * p`` times cheaper, and its output is put back the same way, as simple diffusion
    (Hoogeboom et al., 2023) does in pixel space. Then ``out_channels`` = the sample's channels ``* p * p``
    (12 for RGB at ``p = 2``), ``in_channels`` = ``out_channels + 2 + 4 * frequencies``, ``sample_size`` =
    the sample's side (before patching) and ``cross_attention_dim`` divisible by 4. ``forward`` takes the
    sample alone, ``(B, C, H, W)`` with ``H`` and ``W`` divisible by ``p``, and returns ``(B, C, H, W)``.
    """

    def __init__(self, *args, patch_size: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_to_config(patch_size=patch_size)
        if patch_size < 1 or self.config.out_channels % patch_size ** 2:
            raise ValueError(f'{type(self).__name__}: out_channels ({self.config.out_channels}) must be the sample '
                             f'channels times patch_size ** 2 ({patch_size} ** 2)')
        add_position = functools.partial(position_queries, cells=self.config.sample_size)
        for transformer in [m for m in self.modules() if isinstance(m, Transformer2DModel)]:
            transformer.register_forward_pre_hook(share_grid_size, with_kwargs=True)
            for block in transformer.transformer_blocks:
                block.norm2 = torch.nn.Identity()  # normalised the features for the queries, which no longer use them
                block.attn2.query_position = torch.nn.Linear(self.config.cross_attention_dim, block.attn2.query_dim)
                block.attn2.register_forward_pre_hook(add_position, with_kwargs=True)

    __init__.__signature__ = _with_patch_size(inspect.signature(UNet2DConditionModel.__init__))

    @property
    def sample_channels(self) -> int:
        """Channels of the samples (noisy latents or pixels) this U-Net denoises."""
        return self.config.out_channels // self.config.patch_size ** 2

    @property
    def coordinate_frequencies(self) -> int:
        """Number of Fourier frequencies in the position maps, from the configured input channels."""
        extra = self.config.in_channels - self.config.out_channels - RAMP_CHANNELS
        if extra < 0 or extra % 4:
            raise ValueError(f'{type(self).__name__}: in_channels ({self.config.in_channels}) must be out_channels '
                             f'({self.config.out_channels}) + 2 + 4 * frequencies')
        return extra // 4

    def forward(self, sample: torch.Tensor, timestep, encoder_hidden_states: torch.Tensor, *args,
                return_dict: bool = True, **kwargs):
        patch = self.config.patch_size
        if sample.shape[1] != self.sample_channels or sample.shape[2] % patch or sample.shape[3] % patch:
            raise ValueError(f'{type(self).__name__} takes samples of {self.sample_channels} channels (out_channels / '
                             f'patch_size ** 2; the other inputs are position maps) and sides divisible by {patch}, '
                             f'got {tuple(sample.shape[1:])}')
        patches = F.pixel_unshuffle(sample, patch)
        coords = coordinate_maps(len(patches), patches.shape[2], patches.shape[3], patches, self.coordinate_frequencies)
        output = super().forward(torch.cat([patches, coords], dim=1), timestep, encoder_hidden_states, *args,
                                 **kwargs).sample
        output = F.pixel_shuffle(output, patch)
        return UNet2DConditionOutput(sample=output) if return_dict else (output,)
