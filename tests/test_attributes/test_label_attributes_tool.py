"""tools/label_attributes.py on the shapes set with a tiny detector trained in the test session."""
import json
import os

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from helpers import run_label_tool, toy_detector_cfg, train_detector
from mmdet_detdiffusion.hooks import PerceptionAttributeHook
from mmdet_detdiffusion.layout.attribute_file import xywh_to_xyxy
from mmdet_detdiffusion.layout.attributes import ATTR_KEY, RECORD_KEY
from mmdet_detdiffusion.layout.matching import label_attributes
from mmdet_detdiffusion.utils.fileio import file_sha256


def expected_attributes(config, checkpoint, coco, img_prefix, score_thr, iou_thr):
    """Attributes recomputed independently with mmdet's own ``inference_detector``."""
    from mmdet.apis import inference_detector, init_detector
    model = init_detector(config, checkpoint, device='cpu')
    label_of = {cat['id']: model.dataset_meta['classes'].index(cat['name']) for cat in coco['categories']}
    expected = {}
    for img in coco['images']:
        anns = [a for a in coco['annotations'] if a['image_id'] == img['id']]
        pred = inference_detector(model, os.path.join(img_prefix, img['file_name'])).pred_instances
        attrs = label_attributes(np.array([xywh_to_xyxy(a['bbox']) for a in anns]),
                                 [label_of[a['category_id']] for a in anns], pred.bboxes.numpy(),
                                 pred.scores.numpy(), pred.labels.numpy(), score_thr, iou_thr)
        expected.update({a['id']: attr for a, attr in zip(anns, attrs)})
    return expected


@pytest.mark.slow
def test_tool_labels_every_box_as_mmdet_inference_would(trained_retinanet, shapes_root, tmp_path):
    config, checkpoint = trained_retinanet
    ann_file = shapes_root + 'annotations/train.json'
    out = str(tmp_path / 'train_attrs.json')
    proc = run_label_tool(config, checkpoint, ann_file, shapes_root + 'images', out,
                          '--score-thr', '0.2', '--iou-thr', '0.5', '--batch-size', '3')
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = json.load(open(out))
    coco = json.load(open(ann_file))
    assert len(written['annotations']) == len(coco['annotations'])
    got = {a['id']: a[ATTR_KEY] for a in written['annotations']}
    assert got == expected_attributes(config, checkpoint, coco, shapes_root + 'images', 0.2, 0.5)
    assert set(got.values()) == {'easy', 'hard'}, 'the trained toy detector should find some shapes'
    record = written[RECORD_KEY]
    assert record['checkpoint_sha256'] == file_sha256(checkpoint)
    assert (record['score_thr'], record['iou_thr']) == (0.2, 0.5)
    assert record['counts']['easy'] == list(got.values()).count('easy')
    assert record['unreadable_images'] == [] and record['skipped_boxes'] == 0
    assert 'hard %' in proc.stdout + proc.stderr  # the summary table is printed
    # everything else of the input is kept as it was
    assert written['images'] == coco['images'] and written['categories'] == coco['categories']
    for before, after in zip(coco['annotations'], written['annotations']):
        assert {k: v for k, v in after.items() if k != ATTR_KEY} == before


@pytest.mark.slow
def test_tool_and_hook_write_the_same_record(trained_retinanet, shapes_root, tmp_path):
    """One builder (labeling_record): the tool's and the hook's records have the same fields, and with the
    same weights the two give the same labels."""
    config, checkpoint = trained_retinanet
    ann_file, img_prefix = shapes_root + 'annotations/val.json', shapes_root + 'images'
    proc = run_label_tool(config, checkpoint, ann_file, img_prefix, str(tmp_path / 'tool.json'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = Config.fromfile(config)
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.load_checkpoint(checkpoint)
    PerceptionAttributeHook(ann_file=ann_file, img_prefix=img_prefix).label(runner, 'hook.json', 12)
    tool, hook = (json.load(open(tmp_path / name)) for name in ('tool.json', 'hook.json'))
    assert tool[RECORD_KEY].keys() == hook[RECORD_KEY].keys()
    shared = ('detector_config', 'score_thr', 'iou_thr', 'match_class', 'ann_file', 'counts')
    assert {key: tool[RECORD_KEY][key] for key in shared} == {key: hook[RECORD_KEY][key] for key in shared}
    assert tool[RECORD_KEY]['checkpoint'] == checkpoint and hook[RECORD_KEY]['checkpoint'] is None
    assert tool[RECORD_KEY]['weights'] is None and hook[RECORD_KEY]['weights'].startswith('model in training')
    assert tool['annotations'] == hook['annotations']


@pytest.mark.slow
def test_stricter_thresholds_never_make_more_boxes_easy(trained_retinanet, shapes_root, tmp_path):
    config, checkpoint = trained_retinanet
    counts = []
    for score_thr in ('0.05', '0.9'):
        out = str(tmp_path / f'attrs_{score_thr}.json')
        proc = run_label_tool(config, checkpoint, shapes_root + 'annotations/train.json', shapes_root + 'images',
                              out, '--score-thr', score_thr)
        assert proc.returncode == 0, proc.stderr[-3000:]
        counts.append(json.load(open(out))[RECORD_KEY]['counts']['easy'])
    assert counts[0] > counts[1]
    out = str(tmp_path / 'attrs_class_aware.json')
    proc = run_label_tool(config, checkpoint, shapes_root + 'annotations/train.json', shapes_root + 'images', out,
                          '--score-thr', '0.05', '--match-class')
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.load(open(out))[RECORD_KEY]
    assert record['match_class'] is True and record['counts']['easy'] <= counts[0], 'the class is one more condition'
    assert json.load(open(str(tmp_path / 'attrs_0.05.json')))[RECORD_KEY]['match_class'] is False


@pytest.mark.slow
@pytest.mark.parametrize('config_name', ['faster-rcnn_r18-w16_fpn_1xb8-12e_shapes.py'])
def test_two_stage_detector_works_too(config_name, shapes_root, tmp_path):
    cfg = toy_detector_cfg(config_name, shapes_root, str(tmp_path), max_epochs=1)
    config, checkpoint = train_detector(cfg, str(tmp_path))
    out = str(tmp_path / 'attrs.json')
    proc = run_label_tool(config, checkpoint, shapes_root + 'annotations/val.json', shapes_root + 'images', out,
                          '--score-thr', '0.0')
    assert proc.returncode == 0, proc.stderr[-3000:]
    coco = json.load(open(shapes_root + 'annotations/val.json'))
    got = {a['id']: a[ATTR_KEY] for a in json.load(open(out))['annotations']}
    assert got == expected_attributes(config, checkpoint, coco, shapes_root + 'images', 0.0, 0.5)
