"""Training-step cost of DetDiffusion vs a plain diffusers Stable Diffusion fine-tuning step: time and peak memory.

Both steps use the same U-Net, VAE, text encoder (with the layout tokens), batch of images and one AdamW optimizer
over the U-Net, the text encoder and the perception head, whose head state only DetDiffusion's steps create: so
neither step's peak holds optimizer state the other made. Plain: caption tokens, noise, U-Net, MSE, backward, step
(the diffusers text-to-image fine-tuning example's step). DetDiffusion: layout prompts with location + attribute
tokens, the same diffusion loss, plus the perception head and its alpha-bar_t-weighted instance-mask loss.
Targets (issue 25): step time <= 1.05x plain, peak memory <= 1.10x plain.

The head is the shipped SD v1.5 config's (``configs/generator/_base_/detdiffusion_sd15_coco.py``: 128 channels, two
convs, decoder blocks 1 to 3), its width scaled with the preset's U-Net (``head_channels``): the head's per-instance
convs then weigh against the U-Net's as they do in the shipped model, whose conv FLOPs both grow with width squared.

Peak memory is the most memory live tensors hold during one step after two warm-up steps: on CUDA the allocator's
``max_memory_allocated``; on CPU the profiler's memory timeline (``torch.profiler`` with ``profile_memory``), which
also names what holds it at the peak (parameters, optimizer state, activations, gradients...).

    python benchmarks/bench_train_step.py                   # small SD-shaped model, CPU friendly
    python benchmarks/bench_train_step.py --preset medium   # SD-shaped at 256 px, a few minutes on 2 CPU cores
    python benchmarks/bench_train_step.py --preset sd15     # Stable Diffusion v1.5 architecture (random init)
    python benchmarks/bench_train_step.py --preset sd15 --batch 32 --amp fp16   # GPU: the paper's batch
"""
import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData
from torch.profiler import ProfilerActivity, profile
from torch.profiler._memory_profiler import _CATEGORY_TO_INDEX, MemoryProfileTimeline

import mmdet_detdiffusion  # noqa: F401
from mmdet_detdiffusion.generator.model import DetDiffusionGenerator
from mmdet_detdiffusion.layout.attributes import ATTRIBUTES

SD15_CONFIG = Path(__file__).resolve().parents[1] / 'configs' / 'generator' / '_base_' / 'detdiffusion_sd15_coco.py'
SD15_WIDTH = 320  # block_out_channels[0] of SD v1.5's U-Net

PRESETS = {
    # U-Net / VAE / text encoder shaped like SD v1.5, scaled down for a CPU
    'small': dict(unet=dict(block_out_channels=(32, 64, 128, 128), layers_per_block=1, cross_attention_dim=128,
                            attention_head_dim=8, norm_num_groups=32),
                  vae=dict(block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=32),
                  text=dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4),
                  resolution=128, batch=4, bins=256),
    # SD v1.5's block layout at a quarter of its widths, at 256 px (latents 32x32, as SD's at 256 px)
    'medium': dict(unet=dict(block_out_channels=(80, 160, 320, 320), layers_per_block=2, cross_attention_dim=256,
                             attention_head_dim=8, norm_num_groups=16),
                   vae=dict(block_out_channels=(32, 64, 128, 128), layers_per_block=1, norm_num_groups=32),
                   text=dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=6, num_attention_heads=4),
                   resolution=256, batch=4, bins=256),
    'sd15': dict(unet=dict(block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=768,
                           attention_head_dim=8, norm_num_groups=32),
                 vae=dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, norm_num_groups=32),
                 text=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12),
                 resolution=256, batch=2, bins=256),
}
CLASSES = ('person', 'traffic light', 'dog', 'car')


def shipped_head() -> dict:
    """The perception head and feature blocks of the shipped SD v1.5 generator config."""
    model = Config.fromfile(str(SD15_CONFIG)).model
    return dict(head=dict(model.perception_head), feature_blocks=tuple(model.feature_blocks))


def head_channels(preset: dict) -> int:
    """The shipped head's width scaled as the preset's U-Net is scaled from SD v1.5's (a multiple of 8, for the
    head's GroupNorm)."""
    scaled = shipped_head()['head']['channels'] * preset['unet']['block_out_channels'][0] / SD15_WIDTH
    return max(8, 8 * round(scaled / 8))


def build(preset: dict, device: str, channels: Optional[int] = None) -> DetDiffusionGenerator:
    """The preset's generator, its head ``channels`` wide (default: :func:`head_channels`)."""
    unet = dict(type='UNet2DConditionModel', config=dict(
        sample_size=preset['resolution'] // 2 ** (len(preset['vae']['block_out_channels']) - 1),
        in_channels=4, out_channels=4, down_block_types=('CrossAttnDownBlock2D',) * 3 + ('DownBlock2D',),
        up_block_types=('UpBlock2D',) + ('CrossAttnUpBlock2D',) * 3, **preset['unet']))
    vae = dict(type='AutoencoderKL', config=dict(
        in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=('DownEncoderBlock2D',) * len(preset['vae']['block_out_channels']),
        up_block_types=('UpDecoderBlock2D',) * len(preset['vae']['block_out_channels']), **preset['vae']))
    text = dict(type='CLIPTextModel', config=dict(vocab_size=49408, max_position_embeddings=77, **preset['text']))
    shipped = shipped_head()
    head = {**shipped['head'], 'channels': channels or head_channels(preset)}
    return DetDiffusionGenerator(
        unet=unet, vae=vae, text_encoder=text, tokenizer=dict(type='CLIPTokenizer'), classes=CLASSES,
        scheduler=dict(type='DDPMScheduler', config=dict(num_train_timesteps=1000, beta_schedule='scaled_linear',
                                                         beta_start=0.00085, beta_end=0.012)),
        location_bins=preset['bins'], null_prompt_prob=0.1, perception_head=head,
        feature_blocks=shipped['feature_blocks']).to(device)


def make_batch(batch: int, size: int, objects: int, device: str):
    torch.manual_seed(0)
    images = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    samples = []
    for _ in range(batch):
        xy = torch.rand(objects, 2) * size * 0.6
        wh = torch.rand(objects, 2) * size * 0.35 + 4
        boxes = torch.cat([xy, xy + wh], 1)
        masks = torch.zeros(objects, size, size, dtype=torch.uint8)
        for i, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):
            masks[i, y1:y2, x1:x2] = 1
        sample = DetDataSample(metainfo=dict(img_shape=(size, size)))
        sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.randint(0, len(CLASSES), (objects,)),
                                           pa_attrs=torch.randint(0, len(ATTRIBUTES), (objects,)), masks=BitmapMasks(
                                               masks.numpy(), size, size))
        samples.append(sample)
    return images, samples


class Precision:
    """Mixed precision as mmengine's AmpOptimWrapper does it: autocast forward, loss scaling (fp16)."""

    def __init__(self, amp: str, device: str):
        self.dtype = dict(fp16=torch.float16, bf16=torch.bfloat16).get(amp)
        self.device_type = device.split(':')[0]
        self.scaler = torch.amp.GradScaler(self.device_type, enabled=amp == 'fp16')

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def step(self, loss: torch.Tensor, optimizer) -> None:
        optimizer.zero_grad()
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()


def plain_step(model: DetDiffusionGenerator, images, captions, optimizer, precision: Precision) -> None:
    """The diffusers text-to-image fine-tuning step on the same components."""
    with precision.autocast():
        with torch.no_grad():
            latents = model.vae.encode(images).latent_dist.sample() * model.vae.config.scaling_factor
        noise = torch.randn_like(latents)
        timesteps = torch.randint(0, 1000, (len(latents),), device=latents.device)
        noisy = model.scheduler.add_noise(latents, noise, timesteps)
        ids = model.tokenizer(captions, padding='max_length', max_length=77, truncation=True,
                              return_tensors='pt').input_ids.to(latents.device)
        prediction = model.unet(noisy, timesteps, encoder_hidden_states=model.text_encoder(ids)[0]).sample
        loss = F.mse_loss(prediction.float(), noise.float())
    precision.step(loss, optimizer)


def detdiffusion_step(model: DetDiffusionGenerator, images, samples, optimizer, precision: Precision) -> None:
    with precision.autocast():
        loss = sum(model.loss(images, samples).values())
    precision.step(loss, optimizer)


def cpu_peak_memory(step: Callable[[], None]) -> Tuple[int, Dict[str, int]]:
    """``(bytes, {category: bytes})``: the most memory live CPU tensors hold during ``step``, and what holds it then,
    from the profiler's memory timeline (tensors made before the step count from its start)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        step()
    # the timeline's API is torch's own (export_memory_timeline writes the same figures to a file)
    _, sizes = MemoryProfileTimeline(prof._memory_profile())._coalesce_timeline('cpu')
    peak = max(sizes, key=sum)
    names = ['unknown'] + [getattr(category, 'name', 'unknown').lower() for category in _CATEGORY_TO_INDEX]
    by_category: Dict[str, int] = {}
    for name, size in zip(names, peak):
        by_category[name] = by_category.get(name, 0) + size
    return sum(peak), by_category


def peak_memory(step: Callable[[], None], cuda: bool) -> Tuple[int, Dict[str, int]]:
    """``(bytes, {category: bytes})`` of one ``step`` (module docstring); no categories on CUDA."""
    if not cuda:
        return cpu_peak_memory(step)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated(), {}


def timed(fn, sync) -> float:
    """Seconds of one call of ``fn``."""
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def paired_times(plain: Callable[[], None], ours: Callable[[], None], pairs: int, sync) -> Tuple[list, list]:
    """``(plain seconds, ours seconds)`` of ``pairs`` back-to-back pairs of steps, in ABBA order, so that drifts in
    machine load and which step runs first hit both alike."""
    plain_s, ours_s = [], []
    for i in range(pairs):
        order = ((plain_s, plain), (ours_s, ours)) if i % 2 == 0 else ((ours_s, ours), (plain_s, plain))
        for times, step in order:
            times.append(timed(step, sync))
    return plain_s, ours_s


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--preset', choices=sorted(PRESETS), default='small')
    parser.add_argument('--objects', type=int, default=8, help='objects per image')
    parser.add_argument('--repeats', type=int, default=9, help='pairs of timed steps')
    parser.add_argument('--batch', type=int, help='images per step (default: the preset\'s)')
    parser.add_argument('--amp', choices=['none', 'fp16', 'bf16'], default='none', help='mixed precision')
    parser.add_argument('--head-channels', type=int,
                        help='perception head width (default: the shipped config\'s, scaled with the preset)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    cuda = args.device.startswith('cuda')
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    channels = args.head_channels or head_channels(preset)
    model = build(preset, args.device, channels).train()
    images, samples = make_batch(args.batch or preset['batch'], preset['resolution'], args.objects, args.device)
    precision = Precision(args.amp, args.device)
    captions = ['a photo of ' + ', '.join(CLASSES)] * len(images)
    optimizer = torch.optim.AdamW([*model.unet.parameters(), *model.text_encoder.parameters(),
                                   *model.perception_head.parameters()], lr=1e-5)
    plain = lambda: plain_step(model, images, captions, optimizer, precision)  # noqa: E731
    ours = lambda: detdiffusion_step(model, images, samples, optimizer, precision)  # noqa: E731
    peaks: Dict[str, Tuple[int, Dict[str, int]]] = {}
    for name, step in (('plain', plain), ('detdiffusion', ours)):
        step()  # warm-up: allocations, optimizer state
        step()
        peaks[name] = peak_memory(step, cuda)
    peak_gib = {name: peak / 2 ** 30 for name, (peak, _) in peaks.items()}
    plain_s, ours_s = paired_times(plain, ours, args.repeats, sync)
    ratios = sorted(o / p for p, o in zip(plain_s, ours_s))
    result = dict(preset=args.preset, device=args.device,
                  device_name=torch.cuda.get_device_name() if cuda else 'cpu', amp=args.amp, batch=len(images),
                  resolution=preset['resolution'], objects_per_image=args.objects, head_channels=channels,
                  plain_step_s=statistics.median(plain_s), detdiffusion_step_s=statistics.median(ours_s),
                  plain_peak_gib=peak_gib['plain'], detdiffusion_peak_gib=peak_gib['detdiffusion'],
                  peak_mib_by_category={name: {category: round(size / 2 ** 20, 1) for category, size in split.items()}
                                        for name, (_, split) in peaks.items()})
    # the median of the pairs' ratios: robust to a slow stretch of the machine, which a ratio of medians is not
    result['ratio'] = statistics.median(ratios)
    result['ratio_quartiles'] = [float(q) for q in statistics.quantiles(ratios, n=4)[::2]] if len(ratios) > 1 else []
    result['memory_ratio'] = peak_gib['detdiffusion'] / peak_gib['plain']
    setting = (f"{args.preset}, {result['device_name']}, batch {len(images)} x {preset['resolution']}px, "
               f"amp {args.amp}, {args.objects} objects/image, head {channels} ch")
    print(f"train step ({setting}): DetDiffusion {result['detdiffusion_step_s']:.3f} s vs plain diffusers "
          f"{result['plain_step_s']:.3f} s (medians) -> ratio {result['ratio']:.3f}, the median of {len(ratios)} "
          f"paired ratios (quartiles {' to '.join(f'{q:.3f}' for q in result['ratio_quartiles'])}; target <= 1.05)")
    print(f"train step peak memory ({setting}): DetDiffusion {peak_gib['detdiffusion']:.3f} GiB vs plain "
          f"{peak_gib['plain']:.3f} GiB -> ratio {result['memory_ratio']:.3f} (target <= 1.10)")
    print(json.dumps(result))
    return result


if __name__ == '__main__':
    main()
