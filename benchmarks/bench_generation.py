"""Generation throughput of DetDiffusionPipeline vs a naive per-image loop, same model, sampler and steps.

Naive: the textbook per-image classifier-free-guidance loop written from the same diffusers parts:
per image, encode its prompt and the null prompt, then per step run the U-Net on the conditional and
the unconditional input separately, in fp32. Ours: ``DetDiffusionPipeline`` on batches of
``--batch-size`` layouts (prompts encoded once per batch, the null prompt once, both guidance branches
in one U-Net batch; fp16 and SDPA attention on GPU). Both use DDIM with the same steps and guidance.
Target (DESIGN.md): ratio naive_time / ours_time >= 2. Batching pays where the device is not already
saturated by one image (GPUs; small models on CPUs): compare presets and devices.

    python benchmarks/bench_generation.py                 # the demo's toy generator (64 px, pixel space)
    python benchmarks/bench_generation.py --preset small  # small SD-shaped latent model (128 px)
    python benchmarks/bench_generation.py --preset sd15   # Stable Diffusion v1.5 architecture (random init)
"""
import argparse
import json
import os
import random
import sys
import time

import torch
from diffusers.utils.torch_utils import randn_tensor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train_step import CLASSES, PRESETS, build  # noqa: E402

from mmdet_detdiffusion.generator.components import sample_channels  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_pipeline(preset: str, device: str):
    if preset == 'toy':
        from mmengine.config import Config
        from mmdet.registry import MODELS
        cfg = Config.fromfile(os.path.join(REPO, 'configs', 'generator', 'toy_shapes_pixel64.py'))
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
                            attrs=[rng.choice(['easy', 'hard']) for _ in boxes]))
    return layouts


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
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--preset', choices=['toy', *sorted(PRESETS)], default='toy')
    parser.add_argument('--num-images', type=int, default=32)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args()
    pipe = build_pipeline(args.preset, args.device)
    layouts = random_layouts(args.num_images, 8)
    guidance = 5.0
    sync = torch.cuda.synchronize if args.device.startswith('cuda') else (lambda: None)

    def timed(fn) -> float:
        sync()
        start = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - start

    naive_loop(pipe, layouts[:1], 2, guidance, args.device)  # warm-up
    naive_s = timed(lambda: naive_loop(pipe, layouts, args.steps, guidance, args.device))
    dtype = torch.float16 if args.device.startswith('cuda') else torch.float32
    pipe.to(args.device, dtype)

    def batched():
        for start in range(0, len(layouts), args.batch_size):
            chunk = layouts[start:start + args.batch_size]
            pipe(chunk, num_inference_steps=args.steps, guidance_scale=guidance, sampler='ddim', output_type='np',
                 generator=[torch.Generator(args.device).manual_seed(start + i) for i in range(len(chunk))])

    pipe(layouts[:2], num_inference_steps=2, output_type='np')  # warm-up
    ours_s = timed(batched)
    device_name = torch.cuda.get_device_name() if args.device.startswith('cuda') else 'cpu'
    result = dict(preset=args.preset, device=args.device, device_name=device_name, dtype=str(dtype), images=len(layouts),
                  batch_size=args.batch_size, steps=args.steps, resolution=pipe.default_size,
                  naive_img_per_s=len(layouts) / naive_s, pipeline_img_per_s=len(layouts) / ours_s,
                  ratio=naive_s / ours_s)
    print(f"generation ({args.preset}, {device_name}, {pipe.default_size}px, {args.steps} DDIM steps, "
          f"guidance {guidance}): pipeline {result['pipeline_img_per_s']:.2f} img/s vs naive per-image loop "
          f"{result['naive_img_per_s']:.2f} img/s -> ratio {result['ratio']:.2f} (target >= 2)")
    print(json.dumps(result))
    return result


if __name__ == '__main__':
    main()
