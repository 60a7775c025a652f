"""The configs themselves: mmdet-style names, self-contained generator configs (model and dataset share one
class tuple; the model builds from the file alone), seeded detectors, one generator pipeline, schedules that
follow the epochs, and one top-level generator path for online generation."""
import glob
import os
import re

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmdet_detdiffusion  # noqa: F401
from helpers import REPO
from mmdet_detdiffusion.utils import train_cli
from mmdet_detdiffusion.utils.config import (check_generator_classes, schedule_overruns, set_max_epochs,
                                             set_online_generator)

CONFIGS = os.path.join(REPO, 'configs')
GENERATOR_CONFIGS = sorted(glob.glob(os.path.join(CONFIGS, 'generator', '*.py')))
DETECTOR_CONFIGS = sorted(glob.glob(os.path.join(CONFIGS, 'detector', '*.py')))
ONLINE = os.path.join(CONFIGS, 'detector', 'retinanet_r18-w16_fpn_1xb8-12e_shapes-detdiffusion-online.py')
# models that build from the repository alone (the others load Stable Diffusion or GeoDiffusion weights)
SELF_CONTAINED = ('detdiffusion_toy-coordunet_1xb16-100e_shapes-64x64.py',
                  'detdiffusion_toy-base_1xb16-30e_shapes-64x64.py',
                  'layout-pretrain_toy-coordunet_1xb32-3600iters_shapes-stream-64x64.py')


def test_config_names_follow_mmdet():
    # {algorithm}_{model components}_{gpus}xb{batch}[-...]-{schedule}_{data}: e.g. retinanet_r50_fpn_8xb2-1x_coco
    pattern = re.compile(r'[a-z0-9-]+(_[a-z0-9-]+)+_\d+xb\d+(-[a-z0-9]+)*-(\d+x|\d+e|\d+iters)_[a-z0-9-]+\.py')
    names = [os.path.basename(path) for path in GENERATOR_CONFIGS + DETECTOR_CONFIGS]
    assert names and not [name for name in names if not pattern.fullmatch(name)]


@pytest.mark.parametrize('name', [os.path.basename(path) for path in GENERATOR_CONFIGS])
def test_generator_config_shares_its_classes_with_its_dataset(name):
    cfg = Config.fromfile(os.path.join(CONFIGS, 'generator', name))
    check_generator_classes(cfg)
    if 'coco' in name:
        from mmdet.datasets import CocoDataset
        assert cfg.model.classes == cfg.train_dataloader.dataset.metainfo.classes == CocoDataset.METAINFO['classes']


@pytest.mark.parametrize('name', SELF_CONTAINED)
def test_generator_model_builds_from_the_config_file_alone(name):
    from mmdet.registry import MODELS
    cfg = Config.fromfile(os.path.join(CONFIGS, 'generator', name))
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    assert model.classes == tuple(cfg.metainfo.classes)


def test_class_mismatch_names_both_lists():
    cfg = Config.fromfile(os.path.join(CONFIGS, 'generator', SELF_CONTAINED[0]))
    cfg.model.classes = ('circle', 'square')
    with pytest.raises(ValueError, match=r"\('circle', 'square'\).*\('circle', 'square', 'triangle'\)"):
        check_generator_classes(cfg)
    stream = Config.fromfile(os.path.join(CONFIGS, 'generator', SELF_CONTAINED[2]))
    stream.model.classes = ('circle', 'square', 'triangle')  # the stream's default classes say otherwise
    with pytest.raises(ValueError, match='ShapesStreamDataset'):
        check_generator_classes(stream)


def test_generator_configs_share_one_train_pipeline():
    base = Config.fromfile(os.path.join(CONFIGS, 'generator', '_base_', 'generator_pipeline.py')).train_pipeline
    for path in GENERATOR_CONFIGS:
        cfg = Config.fromfile(path)
        size = (cfg.resolution, cfg.resolution)
        expected = [dict(t, scale=size) if t.type == 'Resize' else t for t in base]
        if 'shapes-stream' in path:  # rendered in memory, not flipped
            expected = [t for t in expected if t['type'] not in ('LoadImageFromFile', 'RandomFlip')]
        assert cfg.train_dataloader.dataset.pipeline == expected, path
        assert 'auto_scale_lr' not in cfg, 'nothing reads it'


def test_toy_loop_fine_tunes_as_long_as_its_generator_config_says():
    from mmdet_detdiffusion.toy_loop import GENERATOR_CONFIG, toy_loop_parser
    epochs = Config.fromfile(GENERATOR_CONFIG).train_cfg.max_epochs
    assert toy_loop_parser('', '').get_default('generator_epochs') == epochs
    assert f'-{epochs}e_' in os.path.basename(GENERATOR_CONFIG)


def test_detector_configs_are_seeded():
    for path in DETECTOR_CONFIGS:
        assert Config.fromfile(path).randomness.seed == 0, path


def epoch_config(max_epochs=12, val_interval=12, checkpoint_interval=1) -> Config:
    return Config(dict(
        max_epochs=max_epochs,
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=val_interval),
        param_scheduler=[dict(type='LinearLR', by_epoch=False, begin=0, end=500),
                         dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[8, 11]),
                         dict(type='CosineAnnealingLR', begin=0, end=max_epochs, T_max=max_epochs)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=checkpoint_interval))))


def test_set_max_epochs_rescales_the_schedule_and_intervals():
    cfg = set_max_epochs(epoch_config(), 6)
    warmup, steps, cosine = cfg.param_scheduler
    assert warmup.end == 500, 'iteration-based: unchanged'
    assert steps.end == 6 and steps.milestones == [4, 5]  # as the 6e config has them
    assert cosine.end == cosine.T_max == 6 and cosine.begin == 0
    assert cfg.train_cfg.max_epochs == cfg.max_epochs == 6
    assert cfg.train_cfg.val_interval == 6 and cfg.default_hooks.checkpoint.interval == 1
    longer = set_max_epochs(epoch_config(), 24)
    assert longer.train_cfg.val_interval == 24, 'validated at the end, as before'
    assert longer.param_scheduler[2].T_max == 24 and longer.param_scheduler[1].milestones == [16, 22]
    capped = set_max_epochs(epoch_config(max_epochs=100, val_interval=10, checkpoint_interval=10), 4)
    assert capped.train_cfg.val_interval == capped.default_hooks.checkpoint.interval == 4
    with pytest.raises(ValueError, match='max_epochs'):
        set_max_epochs(Config(dict(train_cfg=dict(type='IterBasedTrainLoop', max_iters=10))), 2)


def test_schedule_overruns_name_the_schedulers_past_the_end():
    cfg = epoch_config()
    cfg.train_cfg.max_epochs = 3
    messages = schedule_overruns(cfg)
    assert len(messages) == 2 and 'MultiStepLR' in messages[0] and 'CosineAnnealingLR' in messages[1]
    assert not schedule_overruns(set_max_epochs(epoch_config(), 3))


def tool_config(*argv: str) -> Config:
    return train_cli.build_train_config(train_cli.train_arg_parser('test').parse_args(list(argv)))


def test_train_cli_max_epochs_and_the_overrun_warning(monkeypatch, tmp_path):
    config = os.path.join(CONFIGS, 'detector', 'retinanet_r18-w16_fpn_1xb8-12e_shapes.py')
    warnings = []
    monkeypatch.setattr(train_cli, 'print_log', lambda message, **kwargs: warnings.append(message))
    cfg = tool_config(config, '--work-dir', str(tmp_path), '--max-epochs', '3')
    assert cfg.train_cfg.max_epochs == cfg.train_cfg.val_interval == cfg.param_scheduler[-1].T_max == 3
    assert not warnings
    tool_config(config, '--work-dir', str(tmp_path), '--cfg-options', 'train_cfg.max_epochs=3')
    assert len(warnings) == 1 and 'ends at epoch 12' in warnings[0] and '--max-epochs 3' in warnings[0]


def test_cfg_options_generator_reaches_every_online_transform(tiny_generator_export, shapes_root, tmp_path):
    from mmdet.registry import DATASETS
    cfg = tool_config(ONLINE, '--work-dir', str(tmp_path), '--data-root', shapes_root,
                      '--cfg-options', f'generator={tiny_generator_export}')
    assert cfg.train_pipeline[1].generator == tiny_generator_export
    init_default_scope('mmdet')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert dataset.pipeline.transforms[1].generator == tiny_generator_export
    with pytest.raises(ValueError, match='generator=PATH'):
        tool_config(ONLINE, '--cfg-options', 'train_dataloader.dataset.pipeline.1.generator=elsewhere')


def test_set_online_generator_reaches_wrapped_pipelines():
    transform = dict(type='DetDiffusionGenerate', generator='old')
    cfg = Config(dict(generator='new', train_dataloader=dict(dataset=dict(
        type='DetDiffusionDataset', real=dict(type='CocoDataset', pipeline=[dict(type='LoadAnnotations'), transform]),
        synthetic=[dict(type='CocoDataset', pipeline=[dict(transform)])]))))
    set_online_generator(cfg)
    dataset = cfg.train_dataloader.dataset
    assert dataset.real.pipeline[1].generator == dataset.synthetic[0].pipeline[0].generator == 'new'
