"""Perception head: instance masks from multi-scale U-Net decoder features (DetDiffusion's P.A. loss).

The head fuses several decoder feature maps (1x1 lateral convs, upsampled to the finest map, summed)
and predicts one mask per ground-truth instance. An instance is told apart by a box channel (1 inside
its box, 0 outside) concatenated to the fused features of its image, so any number of instances is
handled in one batched pass of a small conv stack.

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
        num_convs: 3x3 conv + GroupNorm + SiLU layers before the 1-channel mask logits.
    """

    @register_to_config
    def __init__(self, in_channels: Sequence[int], feature_blocks: Sequence[int], channels: int = 64,
                 num_convs: int = 2):
        super().__init__()
        if len(in_channels) != len(feature_blocks):
            raise ValueError(f'PerceptionHead: {len(in_channels)} in_channels for {len(feature_blocks)} feature_blocks')
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
        fused = self.fuse(features)
        per_instance = fused[batch_index]
        box_channel = box_maps(boxes.to(fused.dtype), fused.shape[-2:])
        return self.mask_convs(torch.cat([per_instance, box_channel], dim=1))[:, 0]
