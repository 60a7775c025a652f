"""A conditional U-Net that also sees where each pixel is (CoordConv inputs), for generators trained
from scratch.

Stable Diffusion learns absolute position from its pretraining, which is what lets a layout written as
location tokens find its place in the image. A tiny U-Net trained from scratch has no such prior: its
convolutions are translation-equivariant, so cross-attention queries carry almost no position until
zero padding has been exploited, which takes thousands of steps. Appending the pixel's position as input
channels (Liu et al., "An intriguing failing of convolutional neural networks and the CoordConv
solution", 2018) gives every query its position from the first step; it costs one wider first conv.

The position channels are x and y (each -1..1 across the image) and, optionally, their sin/cos at
frequencies pi, 2 pi, 4 pi, ... (Fourier features): the location tokens start as a sin-cos encoding of
their grid point, and "is this pixel inside the box between two corners" is close to linear in
Fourier features of both, while it is not in the raw coordinates.
"""
import math

import torch
from diffusers import UNet2DConditionModel

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


class CoordUNet2DConditionModel(UNet2DConditionModel):
    """``UNet2DConditionModel`` whose input is the sample plus position maps (:func:`coordinate_maps`).

    Configure it as the diffusers class with ``out_channels`` = the sample's channels (e.g. 3 for RGB in
    pixel space) and ``in_channels`` = ``out_channels + 2 + 4 * frequencies``. ``forward`` takes the sample
    alone, ``(B, out_channels, H, W)``, and returns ``(B, out_channels, H, W)`` like the parent class.
    """

    @property
    def sample_channels(self) -> int:
        """Channels of the samples (noisy latents or pixels) this U-Net denoises."""
        return self.config.out_channels

    @property
    def coordinate_frequencies(self) -> int:
        """Number of Fourier frequencies in the position maps, from the configured input channels."""
        extra = self.config.in_channels - self.sample_channels - RAMP_CHANNELS
        if extra < 0 or extra % 4:
            raise ValueError(f'{type(self).__name__}: in_channels ({self.config.in_channels}) must be out_channels '
                             f'({self.sample_channels}) + 2 + 4 * frequencies')
        return extra // 4

    def forward(self, sample: torch.Tensor, timestep, encoder_hidden_states: torch.Tensor, *args, **kwargs):
        if sample.shape[1] != self.sample_channels:
            raise ValueError(f'{type(self).__name__} takes samples of {self.sample_channels} channels (out_channels; '
                             f'the other {self.config.in_channels - self.sample_channels} inputs are position maps), '
                             f'got {sample.shape[1]}')
        coords = coordinate_maps(sample.shape[0], sample.shape[2], sample.shape[3], sample, self.coordinate_frequencies)
        return super().forward(torch.cat([sample, coords], dim=1), timestep, encoder_hidden_states, *args, **kwargs)
