"""The trainability arms' data as mmdet builds it on the shapes set: an added arm's batches hold the config's real
images plus k synthetic ones, and the paste arms' dataset configs build and paste."""
import itertools

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from helpers import synthetic_cfg, toy_detector_cfg
from mmdet_detdiffusion.evaluation.trainability import Arm, arm_config
from mmdet_detdiffusion.utils.config import with_copy_paste, with_transform_after_loading


def detector_cfg(shapes_root: str, work_dir: str) -> Config:
    return toy_detector_cfg('retinanet_r18-w16_fpn_1xb8-12e_shapes.py', shapes_root, work_dir)


def test_an_added_arms_batches_hold_the_real_batch_plus_the_synthetic_images(shapes_root, synthetic_root, tmp_path):
    arm = Arm('real + easy, added', (synthetic_cfg(synthetic_root),), max_iters=4, iters_per_epoch=4,
              synthetic_per_batch=2)
    cfg = arm_config(detector_cfg(shapes_root, str(tmp_path)), arm, seed=0, work_dir=str(tmp_path))
    init_default_scope('mmdet')
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    for batch in itertools.islice(loader, 3):
        flags = [sample.metainfo['synthetic'] for sample in batch['data_samples']]
        assert len(flags) == 10 and sum(flags) == 2, flags


def test_the_copy_paste_control_pastes_real_objects_by_their_masks(shapes_root):
    cfg = detector_cfg(shapes_root, 'unused')
    real = cfg.train_dataloader.dataset
    pasted = with_copy_paste(real)
    assert [step['type'] for step in pasted['pipeline']] == ['CopyPaste', 'Resize', 'RandomFlip', 'PackDetInputs']
    assert pasted['dataset']['pipeline'][1] == dict(type='LoadAnnotations', with_bbox=True, with_mask=True)
    assert real.pipeline[1] == dict(type='LoadAnnotations', with_bbox=True), 'the input config is left as it was'
    init_default_scope('mmdet')
    from mmdet.registry import DATASETS
    dataset = DATASETS.build(dict(pasted, pipeline=pasted['pipeline'][:1]))  # pasting, then nothing else
    np.random.seed(0)
    counts = [(len(dataset.dataset.get_data_info(i)['instances']), len(dataset[i]['gt_bboxes'])) for i in range(8)]
    assert any(after > before for before, after in counts), counts  # some image got another image's objects


def test_a_transform_after_loading_goes_right_after_load_annotations(shapes_root):
    real = detector_cfg(shapes_root, 'unused').train_dataloader.dataset
    paste = dict(type='SyntheticInstancePaste', ann_file='a.json', img_prefix='images/', classes=['circle'])
    types = [step['type'] for step in with_transform_after_loading(real, paste)['pipeline']]
    assert types == ['LoadImageFromFile', 'LoadAnnotations', 'SyntheticInstancePaste', 'Resize', 'RandomFlip',
                     'PackDetInputs']
    with pytest.raises(ValueError, match=r'no LoadAnnotations step in its pipeline \[\'LoadImageFromFile\'\]'):
        with_transform_after_loading(dict(real, pipeline=[dict(type='LoadImageFromFile')]), paste)
