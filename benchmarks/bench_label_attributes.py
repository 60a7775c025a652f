"""Attribute labeling throughput vs mmdet's plain inference loop on the same data, model and batch size.

Baseline: what mmengine's TestLoop does per batch (a DataLoader over mmdet's CocoDataset in test mode,
``model.test_step``), without evaluation. Ours: ``AttributeLabeler.label`` (inference + IoU matching +
bookkeeping). Target (DESIGN.md): ours within 10% (ratio <= 1.10). Also prints the Python heap peak of
labeling N and 2N images (memory flat in dataset size: ratio ~1).

    python benchmarks/bench_label_attributes.py [--num-images 200] [--repeats 3]
"""
import argparse
import json
import os
import statistics
import tempfile
import time
import tracemalloc

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from torch.utils.data import DataLoader

import mmdet_detdiffusion  # noqa: F401
from mmdet_detdiffusion.attributes.labeler import AttributeLabeler
from mmdet_detdiffusion.layout.attribute_file import load_coco
from mmdet_detdiffusion.utils.config import set_data_root
from projects.toy_shapes.toy_shapes.shapes import write_shapes_dataset

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, 'projects', 'toy_shapes', 'configs', 'detector', 'retinanet_r18-w16_fpn_1xb8-12e_shapes.py')


def plain_inference(model, cfg: Config, batch_size: int) -> float:
    from mmdet.registry import DATASETS
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=pseudo_collate, num_workers=0)
    start = time.perf_counter()
    with torch.no_grad():
        for data in loader:
            model.test_step(data)
    return time.perf_counter() - start


def labeling(model, cfg: Config, coco: dict, img_prefix: str, batch_size: int) -> float:
    labeler = AttributeLabeler(model, cfg.test_dataloader.dataset.pipeline, batch_size=batch_size)
    start = time.perf_counter()
    labeler.label(coco, img_prefix, progress=False)
    return time.perf_counter() - start


def heap_peak(model, cfg: Config, coco: dict, img_prefix: str, copies: int) -> int:
    """Python heap peak (bytes) while labeling ``copies`` copies of the dataset's images."""
    images = [{**img, 'id': (k, img['id'])} for k in range(copies) for img in coco['images']]
    annotations = [{**ann, 'id': (k, ann['id']), 'image_id': (k, ann['image_id'])}
                   for k in range(copies) for ann in coco['annotations']]
    big = {**coco, 'images': images, 'annotations': annotations}
    labeler = AttributeLabeler(model, cfg.test_dataloader.dataset.pipeline, batch_size=8)
    tracemalloc.start()
    labeler.label(big, img_prefix, progress=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--num-images', type=int, default=200)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as root:
        root += '/'
        write_shapes_dataset(root, num_train=args.num_images, num_val=1, seed=0)
        cfg = set_data_root(Config.fromfile(CONFIG), root)
        cfg.test_dataloader.dataset.ann_file = 'annotations/train.json'
        init_default_scope('mmdet')
        from mmdet.registry import MODELS
        model = MODELS.build(cfg.model).eval()
        model.dataset_meta = dict(classes=cfg.metainfo['classes'])
        coco = load_coco(root + 'annotations/train.json')
        plain, ours = [], []
        labeling(model, cfg, coco, root + 'images', args.batch_size)  # warm-up
        for _ in range(args.repeats):  # interleaved so drifts in machine load hit both
            plain.append(plain_inference(model, cfg, args.batch_size))
            ours.append(labeling(model, cfg, coco, root + 'images', args.batch_size))
        peak_n = heap_peak(model, cfg, coco, root + 'images', 1)
        peak_2n = heap_peak(model, cfg, coco, root + 'images', 2)
    result = dict(images=args.num_images, plain_s=statistics.median(plain), labeling_s=statistics.median(ours))
    result['plain_img_per_s'] = args.num_images / result['plain_s']
    result['labeling_img_per_s'] = args.num_images / result['labeling_s']
    result['time_ratio'] = result['labeling_s'] / result['plain_s']
    result['heap_peak_ratio_2n_vs_n'] = peak_2n / peak_n
    print(f"attribute labeling: {result['labeling_img_per_s']:.1f} img/s vs mmdet plain inference "
          f"{result['plain_img_per_s']:.1f} img/s -> time ratio {result['time_ratio']:.3f} (target <= 1.10)")
    print(f"python heap peak labeling 2N vs N images: {result['heap_peak_ratio_2n_vs_n']:.2f}x "
          f"({peak_n / 2**20:.1f} MiB vs {peak_2n / 2**20:.1f} MiB)")
    print(json.dumps(result))
    return result


if __name__ == '__main__':
    main()
