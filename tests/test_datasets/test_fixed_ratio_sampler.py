"""Fixed real:synthetic counts per batch: mmdet's grouped multi-source sampler behind a guard, and the config
that trains with a fixed ratio."""
import os

import pytest

from mmdet_detdiffusion.datasets import CheckedGroupMultiSourceSampler


class Images:
    """A stand-in dataset: images of the given (width, height)."""

    def __init__(self, sizes):
        self.sizes = sizes

    def __len__(self):
        return len(self.sizes)

    def get_data_info(self, index):
        width, height = self.sizes[index]
        return dict(width=width, height=height)


class Concat:
    """What the samplers read of mmengine's ConcatDataset (and of DetDiffusionDataset)."""

    def __init__(self, *datasets):
        self.datasets = datasets
        self.cumulative_sizes = [sum(len(d) for d in datasets[:i + 1]) for i in range(len(datasets))]

    def __len__(self):
        return self.cumulative_sizes[-1]


def batches(sampler, batch_size, count):
    indices = iter(sampler)
    return [[next(indices) for _ in range(batch_size)] for _ in range(count)]


def test_every_batch_has_the_ratio_and_one_group():
    real = Images([(64, 48)] * 10 + [(48, 64)] * 6)  # landscape and portrait
    synthetic = Images([(64, 48)] * 8 + [(40, 64)] * 4)
    dataset = Concat(real, synthetic)
    sampler = CheckedGroupMultiSourceSampler(dataset, batch_size=4, source_ratio=[3, 1], seed=0)
    for batch in batches(sampler, 4, 30):
        assert sum(i < 16 for i in batch) == 3 and sum(i >= 16 for i in batch) == 1
        sizes = [(real if i < 16 else synthetic).sizes[i if i < 16 else i - 16] for i in batch]
        assert len({width < height for width, height in sizes}) == 1  # one aspect-ratio group per batch


def test_single_group_synthetic_set_is_refused_clearly():
    real = Images([(64, 48)] * 10 + [(48, 64)] * 6)
    square_synthetic = Images([(64, 64)] * 8)  # every image in the landscape-or-square group
    with pytest.raises(ValueError, match=r'source 1 \(8 images\) has no image in aspect-ratio group 0.*'
                                         r'MultiSourceSampler'):
        CheckedGroupMultiSourceSampler(Concat(real, square_synthetic), batch_size=4, source_ratio=[3, 1])
    # all-square real and synthetic sets share the one group: nothing to wait for
    CheckedGroupMultiSourceSampler(Concat(Images([(64, 64)] * 4), square_synthetic), batch_size=4,
                                   source_ratio=[1, 1])
    with pytest.raises(ValueError, match='exactly 2 sources'):
        CheckedGroupMultiSourceSampler(Concat(real, square_synthetic, square_synthetic), batch_size=4,
                                       source_ratio=[2, 1, 1])


def test_fixed_ratio_config_trains_with_the_ratio_in_every_batch(shapes_root, tmp_path):
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    from helpers import DETECTOR_CONFIGS
    from mmdet_detdiffusion.utils.config import set_data_root
    cfg = set_data_root(Config.fromfile(os.path.join(
        DETECTOR_CONFIGS, 'retinanet_r18-w16_fpn_1xb8-600iters_shapes-detdiffusion-fixed-ratio.py')), shapes_root)
    # the val images stand in for the synthetic set: their paths tell the two sources apart
    cfg.train_dataloader.dataset.synthetic[0].update(data_root=shapes_root, ann_file='annotations/val.json')
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_iters = 4
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint.interval = 4
    batches = []

    class RecordBatches(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            batches.append([sample.img_path for sample in data_batch['data_samples']])

    runner = Runner.from_cfg(cfg)
    runner.register_hook(RecordBatches())
    runner.train()
    assert len(batches) == 4
    assert all(len(paths) == 8 and sum('/val/' in p for p in paths) == 2 for paths in batches)  # 6 real + 2 synthetic
