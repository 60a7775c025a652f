"""The configs themselves: mmdet-style names, self-contained generator configs (model and dataset share one
class tuple; the model builds from the file alone), seeded detectors, one generator pipeline, schedules that
follow the epochs, and one top-level generator path for online generation.

The library's configs and the core tests' own (``tests/configs``), with the shapes detector configs of
``projects/toy_shapes`` that import the library alone; the toy's other configs: ``projects/toy_shapes/tests``."""
import glob
import os

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmdet_detdiffusion  # noqa: F401
from helpers import (DETECTOR_CONFIGS, MMDET_CONFIG_NAME, ONLINE_DETECTOR_CONFIG, REPO, TINY_GENERATOR_CONFIG,
                     library_train_pipeline, tool_config)
from mmdet_detdiffusion.utils import train_cli
from mmdet_detdiffusion.utils.config import (check_generator_classes, schedule_overruns, set_max_epochs,
                                             set_online_generator)

CONFIGS = os.path.join(REPO, 'configs')
LIBRARY_GENERATOR_CONFIGS = sorted(glob.glob(os.path.join(CONFIGS, 'generator', '*.py')))
LIBRARY_DETECTOR_CONFIGS = sorted(glob.glob(os.path.join(CONFIGS, 'detector', '*.py')))
# the toy's shapes detectors that import the library alone (the online one imports the toy;
# tests/configs/online_detector.py loads it with the library alone)
SHAPES_DETECTOR_CONFIGS = sorted(path for path in glob.glob(os.path.join(DETECTOR_CONFIGS, '*.py'))
                                 if not path.endswith('-online.py'))
GENERATOR_CONFIGS = LIBRARY_GENERATOR_CONFIGS + [TINY_GENERATOR_CONFIG]
# a model that builds from the repository alone (the library's configs load Stable Diffusion or GeoDiffusion weights)
SELF_CONTAINED = (TINY_GENERATOR_CONFIG,)


def test_config_names_follow_mmdet():
    names = [os.path.basename(path) for path in LIBRARY_GENERATOR_CONFIGS + LIBRARY_DETECTOR_CONFIGS]
    assert names and not [name for name in names if not MMDET_CONFIG_NAME.fullmatch(name)]


@pytest.mark.parametrize('path', GENERATOR_CONFIGS, ids=os.path.basename)
def test_generator_config_shares_its_classes_with_its_dataset(path):
    name = os.path.basename(path)
    cfg = Config.fromfile(path)
    check_generator_classes(cfg)
    if 'coco' in name:
        from mmdet.datasets import CocoDataset
        assert cfg.model.classes == cfg.train_dataloader.dataset.metainfo.classes == CocoDataset.METAINFO['classes']


@pytest.mark.parametrize('path', SELF_CONTAINED, ids=os.path.basename)
def test_generator_model_builds_from_the_config_file_alone(path):
    from mmdet.registry import MODELS
    cfg = Config.fromfile(path)
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    assert model.classes == tuple(cfg.metainfo.classes)
    assert type(model.unet).__name__ == 'UNet2DConditionModel', 'a plain diffusers U-Net'


def test_class_mismatch_names_both_lists():
    cfg = Config.fromfile(SELF_CONTAINED[0])
    cfg.model.classes = ('circle', 'square')
    with pytest.raises(ValueError, match=r"\('circle', 'square'\).*\('circle', 'square', 'triangle'\)"):
        check_generator_classes(cfg)


def test_generator_configs_share_one_train_pipeline():
    for path in GENERATOR_CONFIGS:
        cfg = Config.fromfile(path)
        expected = library_train_pipeline(cfg.resolution)
        assert cfg.train_dataloader.dataset.pipeline == expected, path
        assert 'auto_scale_lr' not in cfg, 'nothing reads it'


def test_detector_configs_are_seeded():
    for path in LIBRARY_DETECTOR_CONFIGS + SHAPES_DETECTOR_CONFIGS + [ONLINE_DETECTOR_CONFIG]:
        assert Config.fromfile(path).randomness.seed == 0, path


def assigners(train_cfg) -> list:
    """Every ``assigner`` dict in a detector's ``train_cfg`` (RetinaNet's one, Faster R-CNN's RPN and R-CNN ones)."""
    if isinstance(train_cfg, (list, tuple)):  # Cascade R-CNN's stages
        return [found for stage in train_cfg for found in assigners(stage)]
    found = []
    for key, value in train_cfg.items() if isinstance(train_cfg, dict) else ():
        found += [value] if key == 'assigner' else assigners(value)
    return found


def test_detector_configs_ignore_the_ignore_regions():
    """A repaired synthetic set's unconfirmed objects are ignore regions: no detector config makes them background."""
    for path in LIBRARY_DETECTOR_CONFIGS + SHAPES_DETECTOR_CONFIGS:
        found = assigners(Config.fromfile(path).model.train_cfg)
        assert found and all(assigner.ignore_iof_thr == 0.5 for assigner in found), path
    two_stage = Config.fromfile(os.path.join(CONFIGS, 'detector', 'faster-rcnn_r50_fpn_8xb2-6e_coco-detdiffusion.py'))
    assert len(assigners(two_stage.model.train_cfg)) == 2  # the RPN's and the R-CNN's


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


def test_train_cli_max_epochs_and_the_overrun_warning(monkeypatch, tmp_path):
    config = os.path.join(DETECTOR_CONFIGS, 'retinanet_r18-w16_fpn_1xb8-12e_shapes.py')
    warnings = []
    monkeypatch.setattr(train_cli, 'print_log', lambda message, **kwargs: warnings.append(message))
    cfg = tool_config(config, '--work-dir', str(tmp_path), '--max-epochs', '3')
    assert cfg.train_cfg.max_epochs == cfg.train_cfg.val_interval == cfg.param_scheduler[-1].T_max == 3
    assert not warnings
    tool_config(config, '--work-dir', str(tmp_path), '--cfg-options', 'train_cfg.max_epochs=3')
    assert len(warnings) == 1 and 'ends at epoch 12' in warnings[0] and '--max-epochs 3' in warnings[0]


def test_cfg_options_generator_reaches_every_online_transform(tiny_generator_export, shapes_root, tmp_path):
    from mmdet.registry import DATASETS
    cfg = tool_config(ONLINE_DETECTOR_CONFIG, '--work-dir', str(tmp_path), '--data-root', shapes_root,
                      '--cfg-options', f'generator={tiny_generator_export}')
    assert cfg.train_pipeline[1].generator == tiny_generator_export
    init_default_scope('mmdet')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert dataset.pipeline.transforms[1].generator == tiny_generator_export
    with pytest.raises(ValueError, match='generator=PATH'):
        tool_config(ONLINE_DETECTOR_CONFIG, '--cfg-options', 'train_dataloader.dataset.pipeline.1.generator=elsewhere')


def test_set_online_generator_reaches_wrapped_pipelines():
    transform = dict(type='DetDiffusionGenerate', generator='old')
    cfg = Config(dict(generator='new', train_dataloader=dict(dataset=dict(
        type='DetDiffusionDataset', real=dict(type='CocoDataset', pipeline=[dict(type='LoadAnnotations'), transform]),
        synthetic=[dict(type='CocoDataset', pipeline=[dict(transform)])]))))
    set_online_generator(cfg)
    dataset = cfg.train_dataloader.dataset
    assert dataset.real.pipeline[1].generator == dataset.synthetic[0].pipeline[0].generator == 'new'
