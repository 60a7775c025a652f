"""COCO validation (bad input names file and field), the attribute-file writer and its provenance record."""
import json
import os

import pytest
import torch

from mmdet_detdiffusion.attributes.labeler import AttributeLabeler, LabelingResult, labeling_record, write_labeling
from mmdet_detdiffusion.layout.attribute_file import (CocoFormatError, apply_attributes, clip_box,
                                                      format_attribute_table, load_coco, write_attribute_file)
from mmdet_detdiffusion.layout.attributes import ATTR_KEY, RECORD_KEY


def make_coco():
    return dict(
        images=[dict(id=1, file_name='a.png', width=100, height=80)],
        annotations=[dict(id=10, image_id=1, category_id=3, bbox=[1, 2, 10, 20], iscrowd=0),
                     dict(id=11, image_id=1, category_id=5, bbox=[5, 5, 30, 30], iscrowd=1)],
        categories=[dict(id=3, name='cat'), dict(id=5, name='traffic light')])


def write(tmp_path, obj, name='ann.json'):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


def test_valid_file_loads(tmp_path):
    assert load_coco(write(tmp_path, make_coco()))['annotations'][1]['id'] == 11


@pytest.mark.parametrize('mutate, match', [
    (lambda c: c.pop('annotations'), r'"annotations": expected a list'),
    (lambda c: c['annotations'][0].update(category_id=99), r'annotations\[0\] \(id=10\) "category_id"=99'),
    (lambda c: c['annotations'][1].update(image_id=7), r'annotations\[1\] \(id=11\) "image_id"=7'),
    (lambda c: c['annotations'][0].update(bbox=[1, 2, 3]), r'"bbox"=\[1, 2, 3\]: expected \[x, y, width'),
    (lambda c: c['images'][0].update(width=0), r'images\[0\] \(id=1\) "width": expected a positive'),
    (lambda c: c['categories'][0].pop('id'), r'categories\[0\]'),
])
def test_bad_coco_names_file_and_field(tmp_path, mutate, match):
    coco = make_coco()
    mutate(coco)
    path = write(tmp_path, coco)
    with pytest.raises(CocoFormatError, match=match) as err:
        load_coco(path)
    assert str(err.value).startswith(path)


@pytest.mark.parametrize('content, match', [('[1, 2]', 'top level'), ('{"images": ', 'not valid JSON'),
                                            ('{"a": 1}', '"images": expected a list')])
def test_not_coco_at_all(tmp_path, content, match):
    with pytest.raises(CocoFormatError, match=match):
        load_coco(write(tmp_path, content))


def test_missing_file(tmp_path):
    with pytest.raises(CocoFormatError, match='file not found'):
        load_coco(str(tmp_path / 'nope.json'))


def test_clip_box():
    assert clip_box([-5, 10, 50, 200], 40, 100) == ([0.0, 10, 40, 100], True)
    assert clip_box([50, 10, 60, 20], 40, 100)[1] is False  # entirely right of the image
    assert clip_box([5, 5, 5, 20], 40, 100)[1] is False  # zero width


def test_apply_attributes_requires_every_annotation_and_valid_values():
    coco = make_coco()
    with pytest.raises(KeyError, match='id=11'):
        apply_attributes(coco, {10: 'easy'})
    with pytest.raises(ValueError, match="'medium'"):
        apply_attributes(coco, {10: 'easy', 11: 'medium'})
    labelled = apply_attributes(coco, {10: 'easy', 11: 'hard'})
    assert [a[ATTR_KEY] for a in labelled['annotations']] == ['easy', 'hard']
    assert ATTR_KEY not in coco['annotations'][0]  # input untouched


def test_write_attribute_file_is_atomic_and_complete(tmp_path):
    out = tmp_path / 'sub' / 'attrs.json'
    write_attribute_file(make_coco(), {10: 'easy', 11: 'hard'}, str(out), record=dict(score_thr=0.3))
    written = json.loads(out.read_text())
    assert written[RECORD_KEY] == dict(score_thr=0.3, counts=dict(easy=1, hard=1))
    assert [a[ATTR_KEY] for a in written['annotations']] == ['easy', 'hard']
    assert written['annotations'][1]['iscrowd'] == 1  # crowd kept
    assert os.listdir(out.parent) == ['attrs.json']  # no temp file left


def test_labeling_record_has_the_same_fields_for_a_model_in_memory_and_a_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths are recorded absolute
    here = os.getcwd()
    labeler = AttributeLabeler(torch.nn.Identity(), [], score_thr=0.2, iou_thr=0.6, match_class=True)
    in_memory = labeling_record(labeler, 'det.py', 'train.json', weights='model in training after 1 epochs')
    assert in_memory == dict(detector_config=os.path.join(here, 'det.py'), checkpoint=None, checkpoint_sha256=None,
                             weights='model in training after 1 epochs', score_thr=0.2, iou_thr=0.6,
                             match_class=True, ann_file=os.path.join(here, 'train.json'))
    from_file = labeling_record(labeler, None, 'train.json', checkpoint='epoch_1.pth', checkpoint_sha256='ab12')
    assert from_file.keys() == in_memory.keys()
    assert (from_file['detector_config'], from_file['weights']) == (None, None)  # a config built in memory
    assert (from_file['checkpoint'], from_file['checkpoint_sha256']) == (os.path.join(here, 'epoch_1.pth'), 'ab12')
    # write_labeling keeps the record and adds the bookkeeping of the run
    result = LabelingResult(attributes={10: 'easy', 11: 'hard'}, skipped={11: 'unreadable image'},
                            unreadable_images=['a.png: file not found'])
    write_labeling(make_coco(), result, 'attrs.json', in_memory)
    record = json.loads((tmp_path / 'attrs.json').read_text())[RECORD_KEY]
    assert record == {**in_memory, 'date': record['date'], 'unreadable_images': ['a.png: file not found'],
                      'skipped_boxes': 1, 'counts': dict(easy=1, hard=1)}


def test_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / 'attrs.json'
    with pytest.raises(KeyError):
        write_attribute_file(make_coco(), {10: 'easy'}, str(out))
    assert not out.exists() and os.listdir(tmp_path) == []


def test_table_counts_per_class_and_crowd():
    table = format_attribute_table(apply_attributes(make_coco(), {10: 'easy', 11: 'hard'}))
    lines = table.splitlines()
    assert lines[0].split() == ['class', 'easy', 'hard', 'hard', '%']
    assert lines[2].split() == ['cat', '1', '0', '0.0']
    assert lines[-2].split() == ['traffic', 'light', '(crowd)', '0', '1', '100.0']
    assert lines[-1].split() == ['all', '1', '1', '50.0']
