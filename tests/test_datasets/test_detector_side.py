"""Detector side: DetDiffusionDataset (real + synthetic) and its ratio sampler, the online
DetDiffusionGenerate transform, detectors training on both, mmdet's own tools/train.py, and the COCO configs."""
import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import ConcatDataset
from mmengine.registry import init_default_scope

from helpers import (CLASSES, ONLINE_DETECTOR_CONFIG, REPO, real_cfg, synthetic_cfg, synthetic_detector_cfg,
                     toy_detector_cfg)
from mmdet_detdiffusion.datasets import (DetDiffusionDataset, SyntheticRatioSampler, base_dataset, iter_datasets,
                                         samplers)
from mmdet_detdiffusion.transforms import DetDiffusionGenerate


def wrapper(shapes_root, synthetic_root, **kwargs):
    init_default_scope('mmdet')
    return DetDiffusionDataset(real_cfg(shapes_root), synthetic_cfg(synthetic_root), **kwargs)


def test_wrapper_concatenates_real_then_synthetic(shapes_root, synthetic_root):
    concat = wrapper(shapes_root, synthetic_root)
    num_real, num_synthetic = len(concat.real), len(concat.synthetic[0])
    assert isinstance(concat, ConcatDataset) and len(concat) == num_real + num_synthetic and num_synthetic > 0
    assert concat.metainfo['classes'] == CLASSES
    assert concat[num_real]['img_path'].startswith(synthetic_root)  # synthetic samples follow the real ones
    assert concat.get_data_info(0)['width'] == 128
    lazy = wrapper(shapes_root, synthetic_root, lazy_init=True)
    assert not lazy.real._fully_initialized and not lazy.synthetic[0]._fully_initialized
    assert len(lazy) == len(concat)


def epoch_indices(sampler, epoch):
    sampler.set_epoch(epoch)
    return list(sampler)


def test_ratio_sampler_draws_other_synthetic_samples_each_epoch(shapes_root, synthetic_root, monkeypatch):
    dataset = wrapper(shapes_root, synthetic_root)
    num_real, num_pool = len(dataset.real), len(dataset.synthetic[0])
    wanted = round(num_real * 0.25 / 0.75)
    assert 2 * wanted <= num_pool
    sampler = SyntheticRatioSampler(dataset, synthetic_ratio=0.25, seed=1)
    epochs = [epoch_indices(sampler, epoch) for epoch in range(-(-num_pool // wanted))]
    synthetic = [[i for i in indices if i >= num_real] for indices in epochs]
    for indices, drawn in zip(epochs, synthetic):
        assert len(indices) == len(sampler) == num_real + wanted and len(drawn) == wanted  # the same ratio
        assert sorted(i for i in indices if i < num_real) == list(range(num_real))  # every real sample once
    assert not set(synthetic[0]) & set(synthetic[1])  # two epochs, different synthetic samples
    draws = []
    for epoch in range(len(epochs)):
        sampler.set_epoch(epoch)
        draws += sampler.synthetic_indices()
    assert sorted(draws[:num_pool]) == list(range(num_real, len(dataset)))  # all seen before any repeats
    resumed = SyntheticRatioSampler(dataset, synthetic_ratio=0.25, seed=1)
    assert epoch_indices(resumed, 1) == epochs[1]  # the draw depends on (seed, epoch) only
    many = Counter(i for i in epoch_indices(SyntheticRatioSampler(dataset, synthetic_ratio=0.75), 0) if i >= num_real)
    assert sum(many.values()) == 3 * num_real and len(many) == num_pool  # repeats once the pool is used up...
    assert max(many.values()) - min(many.values()) <= 1  # ...evenly
    shards = []
    for rank in range(2):
        monkeypatch.setattr(samplers, 'get_dist_info', lambda rank=rank: (rank, 2))
        shards.append(epoch_indices(SyntheticRatioSampler(dataset, synthetic_ratio=0.25, seed=1), 1))
    assert len(shards[0]) == len(shards[1]) == -(-(num_real + wanted) // 2)
    assert set(shards[0]) | set(shards[1]) == set(epochs[1])


def test_wrapper_and_sampler_reject_bad_input(shapes_root, synthetic_root, tmp_path):
    init_default_scope('mmdet')
    with pytest.raises(ValueError, match='annotations.json has classes'):
        DetDiffusionDataset(real_cfg(shapes_root),
                            synthetic_cfg(synthetic_root, metainfo=dict(classes=('a', 'b', 'c'))))
    coco = json.load(open(synthetic_root + 'annotations.json'))
    coco['categories'][0]['name'] = 'disc'
    (tmp_path / 'annotations.json').write_text(json.dumps(coco))
    with pytest.raises(ValueError, match='must use the real category names'):
        DetDiffusionDataset(real_cfg(shapes_root), synthetic_cfg(str(tmp_path) + '/'))
    dataset = wrapper(shapes_root, synthetic_root)
    with pytest.raises(ValueError, match='synthetic_ratio'):
        SyntheticRatioSampler(dataset, synthetic_ratio=1.0)
    with pytest.raises(TypeError, match='DetDiffusionDataset'):
        SyntheticRatioSampler(dataset.real, synthetic_ratio=0.5)


def test_unwrapping_reaches_the_real_set_of_configs_and_datasets(shapes_root, synthetic_root):
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    cfg = dict(type='RepeatDataset', times=2, dataset=dict(
        type='DetDiffusionDataset', real=dict(type='RepeatDataset', times=2, dataset=real_cfg(shapes_root)),
        synthetic=[synthetic_cfg(synthetic_root)]))
    assert [d['type'] for d in iter_datasets(cfg)] == ['RepeatDataset', 'DetDiffusionDataset', 'RepeatDataset',
                                                       'CocoDataset']  # not into the synthetic sets
    dataset = DATASETS.build(cfg)
    assert base_dataset(dataset) is dataset.dataset.real.dataset
    assert dataset.dataset.synthetic[0].metainfo['classes'] == CLASSES  # inherited through the real wrapper


def test_detector_trains_on_the_wrapper(shapes_root, synthetic_root, tmp_path):
    from mmengine.runner import Runner
    cfg = synthetic_detector_cfg(shapes_root, synthetic_root, str(tmp_path))
    runner = Runner.from_cfg(cfg)
    runner.train()
    dataset = runner.train_dataloader.dataset
    assert isinstance(dataset, DetDiffusionDataset) and dataset.real.data_root == shapes_root
    assert runner.iter == -(-len(dataset) // cfg.train_dataloader.batch_size)
    assert os.path.isfile(tmp_path / 'epoch_1.pth')


def test_detector_trains_with_the_ratio_sampler(shapes_root, synthetic_root, tmp_path):
    from mmengine.runner import Runner
    cfg = synthetic_detector_cfg(shapes_root, synthetic_root, str(tmp_path))
    cfg.train_cfg.max_epochs = 2
    cfg.train_dataloader.sampler = dict(type='SyntheticRatioSampler', synthetic_ratio=0.25)
    runner = Runner.from_cfg(cfg)
    runner.train()
    sampler = runner.train_dataloader.sampler
    assert isinstance(sampler, SyntheticRatioSampler) and sampler.epoch == 1  # the loop set the epoch
    num_real = len(runner.train_dataloader.dataset.real)
    assert runner.iter == 2 * -(-(num_real + round(num_real / 3)) // cfg.train_dataloader.batch_size)


@pytest.mark.slow
def test_mmdet_own_train_tool_runs_the_wrapper(shapes_root, synthetic_root, tmp_path):
    import mmdet
    train_tool = os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
    assert os.path.isfile(train_tool)
    cfg = synthetic_detector_cfg(shapes_root, synthetic_root, str(tmp_path))
    cfg.train_dataloader.batch_size = 32  # a few iterations are enough
    cfg.dump(str(tmp_path / 'cfg.py'))
    result = subprocess.run([sys.executable, train_tool, str(tmp_path / 'cfg.py'), '--work-dir', str(tmp_path)],
                            cwd=str(tmp_path), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.isfile(tmp_path / 'epoch_1.pth')


def test_coco_configs_wrap_the_stock_mmdet_datasets():
    for name, model_type in (('faster-rcnn_r50_fpn_8xb2-1x_coco-detdiffusion.py', 'FasterRCNN'),
                             ('retinanet_r50_fpn_8xb2-1x_coco-detdiffusion.py', 'RetinaNet')):
        cfg = Config.fromfile(os.path.join(REPO, 'configs', 'detector', name))
        dataset = cfg.train_dataloader.dataset
        assert cfg.model.type == model_type and dataset.type == 'DetDiffusionDataset'
        assert dataset.real.type == 'CocoDataset' and dataset.real.ann_file == 'annotations/instances_train2017.json'
        assert dataset.synthetic[0].data_root == 'data/coco_synthetic_hard/'
        assert cfg.custom_imports.imports == ['mmdet_detdiffusion']


# ---------------------------------------------------------------- online generation
def annotated(shapes_root, index=0):
    """The data info of a shapes training image after LoadAnnotations."""
    from mmdet.datasets import CocoDataset
    init_default_scope('mmdet')
    dataset = CocoDataset(**{k: v for k, v in real_cfg(shapes_root).items() if k != 'type'})
    return Compose([dict(type='LoadAnnotations', with_bbox=True)])(dataset.get_data_info(index))


def test_transform_generates_once_then_reads_the_cache(tiny_generator_export, shapes_root, tmp_path):
    transform_cfg = dict(type='DetDiffusionGenerate', generator=tiny_generator_export, cache_dir=str(tmp_path),
                         prob=1.0, attr_mode='hard', num_inference_steps=3, classes=CLASSES)
    first = Compose([transform_cfg, dict(type='LoadImageFromFile')])
    results = first(annotated(shapes_root))
    assert results['img_path'].startswith(str(tmp_path)) and results['ori_img_path'].endswith('.png')
    assert results['img'].shape == (128, 128, 3) and results['detdiffusion_generated']
    assert np.ptp(results['img']) > 10, 'uint8 levels, not [0, 1] floats cast'
    assert first.transforms[0]._pipe is not None
    cached = Compose([transform_cfg, dict(type='LoadImageFromFile')])
    again = cached(annotated(shapes_root))
    assert cached.transforms[0]._pipe is None  # served from the cache: the generator was never loaded
    assert np.array_equal(again['img'], results['img'])
    after_loading = Compose([dict(type='LoadImageFromFile'), transform_cfg])(annotated(shapes_root))
    assert np.array_equal(after_loading['img'], results['img'])  # same key with the image already loaded
    untouched = Compose([{**transform_cfg, 'prob': 0.0}, dict(type='LoadImageFromFile')])(annotated(shapes_root))
    assert 'detdiffusion_generated' not in untouched and untouched['img_path'].startswith(shapes_root)


def test_transform_rejects_a_generator_with_other_classes(tiny_generator_export, shapes_root, tmp_path):
    transform = DetDiffusionGenerate(tiny_generator_export, str(tmp_path), prob=1.0, classes=('a', 'b', 'c'))
    with pytest.raises(ValueError, match='has classes'):
        transform(annotated(shapes_root))


def online_detector_cfg(shapes_root, generator, cache_dir, work_dir, num_workers):
    # the toy's ...-detdiffusion-online.py importing the library alone (the toy's imports the toy package)
    cfg = toy_detector_cfg(ONLINE_DETECTOR_CONFIG, shapes_root, work_dir, max_epochs=1)
    transform = cfg.train_dataloader.dataset.pipeline[1]
    transform.update(generator=generator, cache_dir=cache_dir, prob=1.0, num_inference_steps=2)
    cfg.train_dataloader.update(num_workers=num_workers, persistent_workers=False)
    return cfg


def generated_count(shapes_root, export):
    """Training images of ``shapes_root`` whose layouts pass the export's data filters (and are generated)."""
    from mmdet_detdiffusion.generator.pipeline import read_export_config
    from mmdet_detdiffusion.layout.attribute_file import annotations_by_image, xywh_to_xyxy
    from mmdet_detdiffusion.layout.inputs import keep_objects
    coco = json.load(open(shapes_root + 'annotations/train.json'))
    by_image, filters = annotations_by_image(coco), read_export_config(export)['data_filters']
    count = sum(keep_objects([xywh_to_xyxy(a['bbox']) for a in by_image[image['id']]], image['width'],
                             image['height'], **filters) is not None for image in coco['images'])
    assert 0 < count < len(coco['images']), 'the shapes set has images whose objects cover under 2%'
    return count


@pytest.mark.parametrize('num_workers', [0, 2])
def test_detector_trains_with_online_generation(tiny_generator_export, shapes_root, tmp_path, num_workers):
    from mmengine.runner import Runner
    cache_dir = str(tmp_path / 'cache')
    cfg = online_detector_cfg(shapes_root, tiny_generator_export, cache_dir, str(tmp_path / 'train'), num_workers)
    Runner.from_cfg(cfg).train()
    cached = Counter(os.path.splitext(f)[1] for _, _, files in os.walk(cache_dir) for f in files)
    # every training image decided once (prob=1), by whichever process; those that the export's data filters
    # drop stay real (a record, no image)
    assert cached == {'.json': 32, '.png': generated_count(shapes_root, tiny_generator_export)}
    assert os.path.isfile(tmp_path / 'train' / 'epoch_1.pth')
