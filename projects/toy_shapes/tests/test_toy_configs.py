"""The toy's configs: mmdet-style names, generator configs that share their classes with their datasets and the
library's train pipeline and build from the file alone, seeded detectors, the toy loop's schedule, and the online
detector config, which imports the toy package for its generator's U-Net."""
import glob
import os

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from helpers import DETECTOR_CONFIGS, MMDET_CONFIG_NAME, PROJECT, library_train_pipeline, tool_config
from mmdet_detdiffusion.utils.config import check_generator_classes

GENERATOR_CONFIGS = sorted(glob.glob(os.path.join(PROJECT, 'configs', 'generator', '*.py')))
TOY_DETECTOR_CONFIGS = sorted(glob.glob(os.path.join(DETECTOR_CONFIGS, '*.py')))
ONLINE = os.path.join(DETECTOR_CONFIGS, 'retinanet_r18-w16_fpn_1xb8-12e_shapes-detdiffusion-online.py')
# models that build from the repository alone
SELF_CONTAINED = ('detdiffusion_toy-coordunet_1xb16-100e_shapes-64x64.py',
                  'detdiffusion_toy-base_1xb16-30e_shapes-64x64.py',
                  'layout-pretrain_toy-coordunet_1xb32-3600iters_shapes-stream-64x64.py')


def generator_config(name: str) -> Config:
    return Config.fromfile(os.path.join(PROJECT, 'configs', 'generator', name))


def test_config_names_follow_mmdet():
    names = [os.path.basename(path) for path in GENERATOR_CONFIGS + TOY_DETECTOR_CONFIGS]
    assert len(names) == 10 and not [name for name in names if not MMDET_CONFIG_NAME.fullmatch(name)]


@pytest.mark.parametrize('path', GENERATOR_CONFIGS, ids=os.path.basename)
def test_generator_config_shares_its_classes_with_its_dataset(path):
    cfg = Config.fromfile(path)
    check_generator_classes(cfg)
    assert cfg.model.type == 'ToyDetDiffusionGenerator'
    assert 'projects.toy_shapes.toy_shapes' in cfg.custom_imports.imports


@pytest.mark.parametrize('name', SELF_CONTAINED)
def test_generator_model_builds_from_the_config_file_alone(name):
    from mmdet.registry import MODELS
    cfg = generator_config(name)
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    assert model.classes == tuple(cfg.metainfo.classes)
    assert type(model.unet).__name__ == 'CoordUNet2DConditionModel'


def test_class_mismatch_names_both_lists():
    cfg = generator_config(SELF_CONTAINED[0])
    cfg.model.classes = ('circle', 'square')
    with pytest.raises(ValueError, match=r"\('circle', 'square'\).*\('circle', 'square', 'triangle'\)"):
        check_generator_classes(cfg)
    stream = generator_config(SELF_CONTAINED[2])
    stream.model.classes = ('circle', 'square', 'triangle')  # the stream's default classes say otherwise
    with pytest.raises(ValueError, match='ShapesStreamDataset'):
        check_generator_classes(stream)


def test_generator_configs_share_the_librarys_train_pipeline():
    for path in GENERATOR_CONFIGS:
        cfg = Config.fromfile(path)
        expected = library_train_pipeline(cfg.resolution)
        if 'shapes-stream' in path:  # rendered in memory, not flipped
            expected = [t for t in expected if t['type'] not in ('LoadImageFromFile', 'RandomFlip')]
        assert cfg.train_dataloader.dataset.pipeline == expected, path
        assert 'auto_scale_lr' not in cfg, 'nothing reads it'


def test_toy_loop_fine_tunes_as_long_as_its_generator_config_says():
    from projects.toy_shapes.toy_shapes.toy_loop import GENERATOR_CONFIG, toy_loop_parser
    epochs = Config.fromfile(GENERATOR_CONFIG).train_cfg.max_epochs
    assert toy_loop_parser('', '').get_default('generator_epochs') == epochs
    assert f'-{epochs}e_' in os.path.basename(GENERATOR_CONFIG)


def test_detector_configs_are_seeded():
    for path in TOY_DETECTOR_CONFIGS:
        assert Config.fromfile(path).randomness.seed == 0, path


def test_online_config_imports_the_toy():
    cfg = Config.fromfile(ONLINE)
    assert cfg.custom_imports.imports == ['mmdet_detdiffusion', 'projects.toy_shapes.toy_shapes']
    assert cfg.train_dataloader.dataset.pipeline == cfg.train_pipeline
    assert cfg.train_pipeline[1].type == 'DetDiffusionGenerate' and cfg.train_pipeline[1].generator == cfg.generator


def test_cfg_options_generator_reaches_the_online_transform(shapes_root, tmp_path):
    from mmdet.registry import DATASETS
    export = tmp_path / 'export'
    export.mkdir()  # the transform wants a folder; it loads the generator on first use only
    cfg = tool_config(ONLINE, '--work-dir', str(tmp_path), '--data-root', shapes_root,
                      '--cfg-options', f'generator={export}')
    assert cfg.train_pipeline[1].generator == str(export)
    init_default_scope('mmdet')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert dataset.pipeline.transforms[1].generator == str(export)
    with pytest.raises(ValueError, match='generator=PATH'):
        tool_config(ONLINE, '--cfg-options', 'train_dataloader.dataset.pipeline.1.generator=elsewhere')
