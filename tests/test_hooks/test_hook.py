"""PerceptionAttributeHook inside a real mmengine Runner."""
import json
import os

import pytest
from mmengine.runner import Runner

from helpers import toy_detector_cfg
from mmdet_detdiffusion.attributes.labeler import AttributeLabeler
from mmdet_detdiffusion.hooks import PerceptionAttributeHook
from mmdet_detdiffusion.layout.attribute_file import load_coco
from mmdet_detdiffusion.layout.attributes import ATTR_KEY, RECORD_KEY


def test_hook_labels_during_and_after_training(shapes_root, tmp_path, monkeypatch):
    labelings = []
    label = AttributeLabeler.label

    def counted_label(self, *args, **kwargs):
        labelings.append(args)
        return label(self, *args, **kwargs)

    monkeypatch.setattr(AttributeLabeler, 'label', counted_label)
    cfg = toy_detector_cfg('retinanet_r18-w16_fpn_1xb8-12e_shapes.py', shapes_root, str(tmp_path), max_epochs=2,
                           custom_hooks=[dict(type='PerceptionAttributeHook', interval=1, score_thr=0.05,
                                              batch_size=5)])
    runner = Runner.from_cfg(cfg)
    runner.train()
    for name in ('attributes_epoch_1.json', 'attributes_epoch_2.json', 'attributes.json'):
        assert os.path.isfile(tmp_path / name), name
    final = json.load(open(tmp_path / 'attributes.json'))
    assert len(labelings) == 2  # the last epoch is labeled once: attributes.json is its file
    assert final == json.load(open(tmp_path / 'attributes_epoch_2.json'))
    train = load_coco(shapes_root + 'annotations/train.json')  # default: the training set
    assert len(final['annotations']) == len(train['annotations'])
    assert final[RECORD_KEY]['weights'] == 'model in training after 2 epochs, 8 iterations'
    assert final[RECORD_KEY]['match_class'] is False  # the paper's class-agnostic rule by default
    assert final[RECORD_KEY]['detector_config'] == os.path.abspath(cfg.filename)
    assert final[RECORD_KEY]['checkpoint'] is None  # the model in memory has no weights file
    # the file is what the labeling core gives for the final model
    runner.model.eval()
    expected = AttributeLabeler(runner.model, cfg.test_dataloader.dataset.pipeline, score_thr=0.05).label(
        train, shapes_root + 'images/', progress=False).attributes
    assert {a['id']: a[ATTR_KEY] for a in final['annotations']} == expected
    # the per-epoch file was written by the epoch-1 model, a different detector than the final one
    epoch1 = json.load(open(tmp_path / 'attributes_epoch_1.json'))
    assert epoch1[RECORD_KEY]['weights'] == 'model in training after 1 epochs, 4 iterations'
    # labeling gives the model back in the mode it found it in
    hook = next(h for h in runner.hooks if isinstance(h, PerceptionAttributeHook))
    for training in (True, False):
        runner.model.train(training)
        hook.label(runner, 'again.json', 2)
        assert runner.model.training is training


def test_hook_with_explicit_dataset_and_no_interval(shapes_root, tmp_path):
    out_dir = tmp_path / 'attrs'
    cfg = toy_detector_cfg('retinanet_r18-w16_fpn_1xb8-12e_shapes.py', shapes_root, str(tmp_path / 'work'),
                           max_epochs=1,
                           custom_hooks=[dict(type='PerceptionAttributeHook', out_dir=str(out_dir),
                                              ann_file=shapes_root + 'annotations/val.json',
                                              img_prefix=shapes_root + 'images')])
    Runner.from_cfg(cfg).train()
    assert os.listdir(out_dir) == ['attributes.json']
    written = json.load(open(out_dir / 'attributes.json'))
    assert len(written['annotations']) == len(load_coco(shapes_root + 'annotations/val.json')['annotations'])


def test_hook_rejects_negative_interval():
    with pytest.raises(ValueError, match='interval'):
        PerceptionAttributeHook(interval=-1)
