"""Perception head: instance masks from multi-scale U-Net decoder features (DetDiffusion's P.A. loss).

The head fuses several decoder feature maps (1x1 lateral convs, upsampled to the finest map, summed)
and predicts one mask per ground-truth instance. An instance is told apart by a box channel (1 inside
its box, 0 outside) concatenated to the fused features of its image, so any number of instances is
handled in one batched pass of a small conv stack.

Cost: the first conv, linear in its input, is split: its feature part runs once per image and only the 1-channel
box part per instance. The per-instance activations (instances x channels x the finest map) are what the head adds
to a step's memory; where they weigh (many instances per image on a large latent map) ``checkpoint_chunk`` passes
the instances through the rest of the stack in chunks under activation checkpointing, keeping one chunk's
activations at a time (recomputed in the backward pass) for the same loss. On SD-shaped models at 256 px they are a
few percent of the step's peak, and checkpointing moves the peak later into the backward pass, where it is higher:
it is off by default (docs/performance.md).

The head is a diffusers model (``ModelMixin`` + ``ConfigMixin``): it saves and loads with the other
components of a generator export (``perception_head/``), and is registered in mmdet's ``MODELS``.
"""
from typing import List, Sequence

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from mmdet.registry import MODELS
from torch import nn
from torch.utils.checkpoint import checkpoint


def box_maps(boxes: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``(N, 1, H, W)`` float maps, 1 inside each normalised xyxy box of ``boxes`` ``(N, 4)``.

    A pixel is inside when its centre is; every box covers at least the pixel holding its centre.
    """
    height, width = size
    ys = (torch.arange(height, device=boxes.device, dtype=boxes.dtype) + 0.5) / height
    xs = (torch.arange(width, device=boxes.device, dtype=boxes.dtype) + 0.5) / width
    x1, y1, x2, y2 = boxes[:, 0, None], boxes[:, 1, None], boxes[:, 2, None], boxes[:, 3, None]
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    inside_x = ((xs >= x1) & (xs <= x2)) | ((xs - cx).abs() <= 0.5 / width)
    inside_y = ((ys >= y1) & (ys <= y2)) | ((ys - cy).abs() <= 0.5 / height)
    return (inside_y[:, :, None] & inside_x[:, None, :]).to(boxes.dtype)[:, None]


@MODELS.register_module()
class PerceptionHead(ModelMixin, ConfigMixin):
    """Box-conditioned instance-mask head over U-Net decoder features.

    Args:
        in_channels: channels of each decoder feature map it receives (coarse to fine).
        feature_blocks: indices of the U-Net's ``up_blocks`` whose outputs those maps are.
        channels: width of the fused features and of the mask convs.
        num_convs: 3x3 conv + GroupNorm + SiLU layers (at least 1) before the 1-channel mask logits.
        checkpoint_chunk: instances per activation-checkpointed chunk when gradients are on (module docstring);
            0: no checkpointing.
    """

    @register_to_config
    def __init__(self, in_channels: Sequence[int], feature_blocks: Sequence[int], channels: int = 64,
                 num_convs: int = 2, checkpoint_chunk: int = 0):
        super().__init__()
        if len(in_channels) != len(feature_blocks):
            raise ValueError(f'PerceptionHead: {len(in_channels)} in_channels for {len(feature_blocks)} feature_blocks')
        if num_convs < 1:
            raise ValueError(f'PerceptionHead: num_convs={num_convs}; at least 1 conv reads the box channel')
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        layers: List[nn.Module] = []
        for i in range(num_convs):
            layers += [nn.Conv2d(channels + 1 if i == 0 else channels, channels, 3, padding=1),
                       nn.GroupNorm(min(8, channels), channels), nn.SiLU()]
        layers.append(nn.Conv2d(channels, 1, 1))
        self.mask_convs = nn.Sequential(*layers)

    def fuse(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """``(B, channels, H, W)`` at the resolution of the largest feature map."""
        if len(features) != len(self.lateral):
            raise ValueError(f'PerceptionHead expects {len(self.lateral)} feature maps, got {len(features)}')
        size = max((f.shape[-2:] for f in features), key=lambda s: s[0] * s[1])
        fused = 0
        for lateral, feature in zip(self.lateral, features):
            mapped = lateral(feature)
            if mapped.shape[-2:] != size:
                mapped = F.interpolate(mapped, size=size, mode='bilinear', align_corners=False)
            fused = fused + mapped
        return fused

    def forward(self, features: Sequence[torch.Tensor], boxes: torch.Tensor, batch_index: torch.Tensor
                ) -> torch.Tensor:
        """Mask logits ``(N, H, W)`` for N instances.

        Args:
            features: decoder feature maps, each ``(B, C_i, H_i, W_i)``.
            boxes: ``(N, 4)`` normalised xyxy boxes of the instances.
            batch_index: ``(N,)`` image index in the batch of each instance.
        """
        first = self.mask_convs[0]
        # the first conv's feature part, once per image: the conv of the concatenation is the sum of the two parts'
        shared = F.conv2d(self.fuse(features), first.weight[:, :-1], first.bias, padding=first.padding)
        chunk = self.config.checkpoint_chunk
        if not (chunk and torch.is_grad_enabled()):
            return self.instance_logits(shared, boxes, batch_index)
        return torch.cat([checkpoint(self.instance_logits, shared, boxes[start:start + chunk],
                                     batch_index[start:start + chunk], use_reentrant=False)
                          for start in range(0, len(boxes), chunk)])

    def instance_logits(self, shared: torch.Tensor, boxes: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
        """Mask logits ``(N, H, W)`` of N instances from ``shared`` ``(B, channels, H, W)``, the first conv's feature
        part of each image: its box part added per instance, then the rest of the stack."""
        first = self.mask_convs[0]
        box_channel = box_maps(boxes.to(shared.dtype), shared.shape[-2:])
        hidden = shared[batch_index] + F.conv2d(box_channel, first.weight[:, -1:], padding=first.padding)
        return self.mask_convs[1:](hidden)[:, 0]
