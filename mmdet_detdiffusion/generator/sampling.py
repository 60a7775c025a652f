"""The classifier-free-guided denoising loop shared by training-time samples and the pipeline."""
import inspect
from typing import Optional

import torch


@torch.no_grad()
def denoise(unet: torch.nn.Module, scheduler, latents: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor,
            guidance_scale: float, generator: Optional[torch.Generator] = None,
            cond_mask: Optional[torch.Tensor] = None, uncond_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Run ``scheduler.timesteps`` (already set) from ``latents`` to a clean sample.

    Args:
        unet: noise (or v) predictor ``unet(x, t, encoder_hidden_states).sample``.
        scheduler: a diffusers scheduler with ``set_timesteps`` already called.
        latents: ``(B, C, h, w)`` initial noise, already scaled by ``scheduler.init_noise_sigma``.
        cond / uncond: ``(B, L, D)`` prompt / null-prompt embeddings, computed once by the caller.
        guidance_scale: classifier-free guidance weight; 1 disables the unconditional pass.
        generator: for stochastic schedulers (DDPM, ancestral); passed only to those that take one.
        cond_mask / uncond_mask: ``(B, L)`` bool masks of the real prompt tokens, or ``None`` (attend to all).
    """
    guided = guidance_scale != 1.0
    step_kwargs = {'generator': generator} if 'generator' in inspect.signature(scheduler.step).parameters else {}
    context = torch.cat([uncond, cond]) if guided else cond
    context_mask = None if cond_mask is None else torch.cat([uncond_mask, cond_mask]) if guided else cond_mask
    for t in scheduler.timesteps:
        model_input = torch.cat([latents, latents]) if guided else latents
        model_input = scheduler.scale_model_input(model_input, t)
        prediction = unet(model_input, t, encoder_hidden_states=context, encoder_attention_mask=context_mask).sample
        if guided:
            pred_uncond, pred_cond = prediction.chunk(2)
            prediction = pred_uncond + guidance_scale * (pred_cond - pred_uncond)
        latents = scheduler.step(prediction, t, latents, **step_kwargs).prev_sample
    return latents
