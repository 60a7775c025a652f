"""Generation throughput of DetDiffusionPipeline vs diffusers' StableDiffusionPipeline and vs a naive
per-image loop, same model, sampler (DDIM, trailing steps), steps and guidance.

Ours: ``DetDiffusionPipeline`` on batches of ``--batch-size`` layouts (layout prompts built and encoded
once per batch, the null prompt once, both guidance branches in one U-Net batch; fp16 and SDPA attention
on GPU). Row 1, diffusers: ``StableDiffusionPipeline`` over the same modules, at the same batch size, given
the same prompts as text (their building is not timed); target ratio diffusers_time / ours_time >= 1.0.
Row 2, naive: the textbook per-image classifier-free-guidance loop written from the same parts: per image,
encode its prompt and the null prompt, then per step run the U-Net on the conditional and the
unconditional input separately, in fp32; target (DESIGN.md) naive_time / ours_time >= 2. Batching pays
where the device is not already saturated by one image (GPUs; small models on CPUs).
Overhead: the share of our wall time spent outside the U-Net's forward passes (prompts, text encoder,
scheduler, VAE decoding, post-processing), measured in a separate run with timing hooks on the U-Net;
target <= 5%.

    python benchmarks/bench_generation.py                 # small SD-shaped latent model (128 px)
    python benchmarks/bench_generation.py --preset sd15   # Stable Diffusion v1.5 architecture (random init)
    python benchmarks/bench_generation.py --preset toy    # the demo's toy generator (64 px, pixel space;
                                                          # no VAE, so no StableDiffusionPipeline row)
"""
import argparse
import json
import os
import random
import sys
import time
from typing import Callable, List

import torch
from diffusers import StableDiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train_step import CLASSES, PRESETS, build  # noqa: E402

from mmdet_detdiffusion.generator.components import sample_channels  # noqa: E402
from mmdet_detdiffusion.generator.pipeline import DetDiffusionPipeline  # noqa: E402
from mmdet_detdiffusion.layout.attributes import ATTRIBUTES  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_pipeline(preset: str, device: str) -> DetDiffusionPipeline:
    if preset == 'toy':
        from mmdet.registry import MODELS
        from mmengine.config import Config
        cfg = Config.fromfile(os.path.join(REPO, 'projects', 'toy_shapes', 'configs', 'generator',
                                           'detdiffusion_toy-coordunet_1xb16-100e_shapes-64x64.py'))
        cfg.model.classes = CLASSES
        torch.manual_seed(0)
        model = MODELS.build(cfg.model).to(device)
    else:
        model = build(PRESETS[preset], device)
    pipe = model.eval().as_pipeline()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def random_layouts(count: int, objects: int, seed: int = 0):
    rng = random.Random(seed)
    layouts = []
    for _ in range(count):
        boxes = []
        for _ in range(rng.randint(1, objects)):
            x, y = rng.uniform(0, 0.6), rng.uniform(0, 0.6)
            boxes.append([x, y, x + rng.uniform(0.1, 0.4), y + rng.uniform(0.1, 0.4)])
        layouts.append(dict(boxes=boxes, labels=[rng.choice(CLASSES) for _ in boxes],
                            attrs=[rng.choice(ATTRIBUTES) for _ in boxes]))
    return layouts


def stable_diffusion_twin(pipe: DetDiffusionPipeline) -> StableDiffusionPipeline:
    """diffusers' StableDiffusionPipeline over ``pipe``'s modules, with the same DDIM sampler."""
    sd = StableDiffusionPipeline(vae=pipe.vae, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer,
                                 unet=pipe.unet, scheduler=pipe.make_scheduler('ddim'), safety_checker=None,
                                 feature_extractor=None, requires_safety_checker=False)
    sd.set_progress_bar_config(disable=True)
    return sd


def outside_unet_share(run: Callable[[], None], unet: torch.nn.Module, sync: Callable[[], None]) -> float:
    """Share of ``run()``'s wall time spent outside ``unet``'s forward passes (timing hooks on the U-Net)."""
    inside, started = [0.0], [0.0]

    def before(module, args):
        sync()
        started[0] = time.perf_counter()

    def after(module, args, output):
        sync()
        inside[0] += time.perf_counter() - started[0]

    handles = [unet.register_forward_pre_hook(before), unet.register_forward_hook(after)]
    try:
        sync()
        start = time.perf_counter()
        run()
        sync()
        total = time.perf_counter() - start
    finally:
        for handle in handles:
            handle.remove()
    return 1 - inside[0] / total


@torch.no_grad()
def naive_loop(pipe, layouts, steps: int, guidance_scale: float, device: str) -> None:
    """One image at a time, prompts re-encoded and the two guidance branches run separately."""
    size = pipe.default_size // pipe.latent_scale
    for i, layout in enumerate(layouts):
        prompts, _, _ = pipe.layout_prompts([layout])
        (cond, cond_mask), (uncond, uncond_mask) = pipe.encode_prompt(prompts), pipe.encode_prompt([''])
        scheduler = pipe.make_scheduler('ddim')
        scheduler.set_timesteps(steps, device=device)
        latents = randn_tensor((1, sample_channels(pipe.unet), size, size),
                               generator=torch.Generator(device).manual_seed(i), device=torch.device(device))
        for t in scheduler.timesteps:
            eps_cond = pipe.unet(latents, t, encoder_hidden_states=cond, encoder_attention_mask=cond_mask).sample
            eps_uncond = pipe.unet(latents, t, encoder_hidden_states=uncond, encoder_attention_mask=uncond_mask).sample
            eps = eps_uncond + guidance_scale * (eps_cond - eps_uncond)
            latents = scheduler.step(eps, t, latents).prev_sample
        if pipe.vae is not None:
            pipe.vae.decode(latents / pipe.vae.config.scaling_factor)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--preset', choices=['toy', *sorted(PRESETS)], default='small')
    parser.add_argument('--num-images', type=int, default=32)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args()
    pipe = build_pipeline(args.preset, args.device)
    layouts = random_layouts(args.num_images, 8)
    guidance = 5.0
    sync = torch.cuda.synchronize if args.device.startswith('cuda') else (lambda: None)
    chunks = [(start, layouts[start:start + args.batch_size]) for start in range(0, len(layouts), args.batch_size)]

    def generators(start: int, count: int) -> List[torch.Generator]:
        return [torch.Generator(args.device).manual_seed(start + i) for i in range(count)]

    def timed(fn) -> float:
        sync()
        start = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - start

    naive_loop(pipe, layouts[:1], 2, guidance, args.device)  # warm-up
    naive_s = timed(lambda: naive_loop(pipe, layouts, args.steps, guidance, args.device))
    dtype = torch.float16 if args.device.startswith('cuda') else torch.float32
    if pipe.unet.dtype != dtype:
        pipe.to(dtype=dtype)

    def ours():
        for start, chunk in chunks:
            pipe(chunk, num_inference_steps=args.steps, guidance_scale=guidance, sampler='ddim', output_type='np',
                 generator=generators(start, len(chunk)))

    pipe(layouts[:2], num_inference_steps=2, output_type='np')  # warm-up
    ours_s = timed(ours)
    outside_share = outside_unet_share(ours, pipe.unet, sync)
    device_name = torch.cuda.get_device_name() if args.device.startswith('cuda') else 'cpu'
    result = dict(preset=args.preset, device=args.device, device_name=device_name, dtype=str(dtype),
                  images=len(layouts), batch_size=args.batch_size, steps=args.steps, resolution=pipe.default_size,
                  pipeline_img_per_s=len(layouts) / ours_s, naive_img_per_s=len(layouts) / naive_s,
                  naive_ratio=naive_s / ours_s, outside_unet_share=outside_share)
    setting = (f"{args.preset}, {device_name}, {pipe.default_size}px, batch {args.batch_size}, {args.steps} DDIM "
               f"steps, guidance {guidance}")
    if pipe.vae is not None:
        sd = stable_diffusion_twin(pipe)
        prompts = [pipe.layout_prompts(chunk)[0] for _, chunk in chunks]

        def diffusers_sd():
            for (start, chunk), chunk_prompts in zip(chunks, prompts):
                sd(chunk_prompts, num_inference_steps=args.steps, guidance_scale=guidance, output_type='np',
                   generator=generators(start, len(chunk)))

        sd(prompts[0][:2], num_inference_steps=2, output_type='np')  # warm-up
        sd_s = timed(diffusers_sd)
        result.update(diffusers_img_per_s=len(layouts) / sd_s, diffusers_ratio=sd_s / ours_s)
        print(f"generation ({setting}): pipeline {result['pipeline_img_per_s']:.3g} img/s vs diffusers "
              f"StableDiffusionPipeline {result['diffusers_img_per_s']:.3g} img/s -> ratio "
              f"{result['diffusers_ratio']:.2f} (target >= 1.0)")
    else:
        print(f'generation ({setting}): no StableDiffusionPipeline row without a VAE (use --preset small or sd15)')
    print(f"generation ({setting}): pipeline {result['pipeline_img_per_s']:.3g} img/s vs naive per-image loop "
          f"{result['naive_img_per_s']:.3g} img/s -> ratio {result['naive_ratio']:.2f} (target >= 2)")
    print(f"generation ({setting}): time outside the U-Net forward passes -> {100 * outside_share:.1f}% "
          f"of the pipeline's (target <= 5%)")
    print(json.dumps(result))
    return result


if __name__ == '__main__':
    main()
