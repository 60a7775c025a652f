"""Loss terms of the generator: the perception-aware (P.A.) mask loss and its noise-level weight, and
GeoDiffusion's optional foreground re-weighting of the diffusion loss."""
from typing import Sequence

import torch
import torch.nn.functional as F

from mmdet_detdiffusion.generator.perception_head import box_maps


def noise_level_weight(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor, power: float = 0.5) -> torch.Tensor:
    """P.A. loss weight per sample ``(B,)``: ``alpha-bar_t ** power``; the paper's is ``sqrt(alpha-bar_t)``
    (``power=0.5``), the scale of the signal in ``x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps``.

    Near 1 at low noise (features still show the image, masks are learnable) and near 0 at high noise.
    """
    return alphas_cumprod.to(timesteps.device)[timesteps].float() ** power


def instance_mask_loss(logits: torch.Tensor, targets: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Per-instance binary cross-entropy + dice loss, ``(N,)``.

    Args:
        logits: ``(N, H, W)`` mask logits.
        targets: ``(N, H, W)`` soft targets in [0, 1] (instance masks resized to the logits' size).
    """
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction='none').flatten(1).mean(1)
    probs = logits.sigmoid().flatten(1)
    flat = targets.flatten(1)
    dice = 1 - (2 * (probs * flat).sum(1) + eps) / (probs.sum(1) + flat.sum(1) + eps)
    return bce + dice


def foreground_weight_map(boxes_per_image: Sequence[torch.Tensor], size: Sequence[int], weight: float = 2.0,
                          power: float = 0.2) -> torch.Tensor:
    """GeoDiffusion's diffusion-loss weights ``(B, 1, H, W)``: 1 on background, ``weight / area ** power``
    inside each box (normalised area; the larger value where boxes overlap), then divided by the
    map's mean so the loss keeps its scale. ``boxes_per_image``: per image ``(N_i, 4)`` normalised xyxy.
    """
    maps = []
    for boxes in boxes_per_image:
        canvas = torch.ones(1, *size, device=boxes.device)
        if len(boxes):
            areas = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).clamp(min=1e-6)
            inside = box_maps(boxes.float(), size)[:, 0]  # (N, H, W)
            values = (weight / areas ** power)[:, None, None] * inside
            canvas = torch.maximum(canvas, values.max(dim=0, keepdim=True).values)
        maps.append(canvas / canvas.mean())
    return torch.stack(maps)
