"""A cached epoch with the DetDiffusionGenerate transform vs the plain mmdet training pipeline.

Same shapes dataset, same transforms after loading; the transform (prob 1, every image already in
its disk cache) points each sample at its generation, so the epoch reads one image per sample either
way. The cache is filled through the transform by an untrained toy generator, whose noise images make
PNGs ten times larger and slower to decode than the shapes images: a matter of image content, not of
the transform. So that both epochs decode the same pixels, each cached file is then overwritten by its
source image, encoded the same way. Target (DESIGN.md): time ratio <= 1.10.

The transform's own cost is a fixed ~40 us per sample (cache key, one stat), so the ratio depends on
how much else a sample costs: the default 512 px images are COCO-like; ``--image-size 128`` is the toy
set's size, the worst case.

    python benchmarks/bench_online_transform.py [--num-images 200] [--repeats 5] [--image-size 512]
"""
import argparse
import json
import os
import statistics
import tempfile
import time

import cv2
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmdet_detdiffusion  # noqa: F401
from mmdet_detdiffusion.generator.export import export_generator
from projects.toy_shapes.toy_shapes.shapes import write_shapes_dataset

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AFTER_LOADING = [dict(type='Resize', scale=(512, 512), keep_ratio=True), dict(type='RandomFlip', prob=0.5),
                 dict(type='PackDetInputs')]


def untrained_toy_generator(out_dir: str) -> str:
    from mmdet.registry import MODELS
    cfg = Config.fromfile(os.path.join(REPO, 'projects', 'toy_shapes', 'configs', 'generator',
                                       'detdiffusion_toy-coordunet_1xb16-100e_shapes-64x64.py'))
    torch.manual_seed(0)
    return export_generator(MODELS.build(cfg.model), out_dir)


def fill_cache(dataset, transform: dict) -> float:
    """Generate every image into the cache; then give each cached file its source image's pixels."""
    from mmcv.transforms import Compose
    start = time.perf_counter()
    redirect = Compose([dict(type='LoadAnnotations', with_bbox=True), transform])
    pairs = [(r['ori_img_path'], r['img_path'])
             for r in (redirect(dataset.get_data_info(i)) for i in range(len(dataset)))]
    seconds = time.perf_counter() - start
    for source, cached in pairs:
        cv2.imwrite(cached, cv2.imread(source))
    return seconds


def epoch_seconds(dataset) -> float:
    start = time.perf_counter()
    for i in range(len(dataset)):
        dataset[i]
    return time.perf_counter() - start


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--num-images', type=int, default=200)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--image-size', type=int, default=512, help='side of the square shapes images (px)')
    args = parser.parse_args()
    init_default_scope('mmdet')
    from mmdet.datasets import CocoDataset
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, 'shapes') + '/'
        write_shapes_dataset(root, num_train=args.num_images, num_val=1, size=args.image_size, seed=0)
        generator = untrained_toy_generator(os.path.join(tmp, 'generator'))
        transform = dict(type='DetDiffusionGenerate', generator=generator, cache_dir=os.path.join(tmp, 'cache'),
                         prob=1.0, num_inference_steps=2)
        pipelines = dict(
            plain=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True), *AFTER_LOADING],
            cached=[dict(type='LoadAnnotations', with_bbox=True), transform, dict(type='LoadImageFromFile'),
                    *AFTER_LOADING])
        datasets = {name: CocoDataset(data_root=root, ann_file='annotations/train.json',
                                      data_prefix=dict(img='images/'),
                                      metainfo=dict(classes=('circle', 'square', 'triangle')), pipeline=pipeline)
                    for name, pipeline in pipelines.items()}
        fill_s = fill_cache(datasets['cached'], transform)
        times = {name: [] for name in datasets}
        for _ in range(args.repeats):  # interleaved so that drifts in machine load hit both
            for name, dataset in datasets.items():
                times[name].append(epoch_seconds(dataset))
    result = dict(images=args.num_images, image_size=args.image_size, fill_epoch_s=fill_s,
                  **{f'{k}_epoch_s': statistics.median(v) for k, v in times.items()})
    result['ratio'] = result['cached_epoch_s'] / result['plain_epoch_s']
    print(f"online transform, cached epoch of {args.num_images} images of {args.image_size} px: "
          f"{result['cached_epoch_s']:.3f} s vs plain "
          f"pipeline {result['plain_epoch_s']:.3f} s -> ratio {result['ratio']:.3f} (target <= 1.10); "
          f"filling the cache took {fill_s:.1f} s")
    print(json.dumps(result))
    return result


if __name__ == '__main__':
    main()
