"""Generator data: attributes kept per box, filters, box masks, alignment under resize and flip."""
import json
import logging

import numpy as np
import pytest
from mmengine.registry import init_default_scope

import mmdet_detdiffusion  # noqa: F401
from helpers import label_with_alternating_attributes
from mmdet_detdiffusion.datasets import DetDiffusionCocoDataset
from mmdet_detdiffusion.layout.attributes import ATTR_CODES, ATTR_KEY


@pytest.fixture(scope='module')
def attr_file(shapes_root, tmp_path_factory):
    path = str(tmp_path_factory.mktemp('attrs') / 'train_pa_attr.json')
    label_with_alternating_attributes(shapes_root + 'annotations/train.json', path)
    return path


def pipeline(flip_prob, size=(64, 48)):
    return [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='LoadPerceptionAttributes'), dict(type='Resize', scale=size, keep_ratio=False),
            dict(type='RandomFlip', prob=flip_prob), dict(type='PackGeneratorInputs')]


def build(shapes_root, ann_file, **kwargs):
    init_default_scope('mmdet')
    kwargs.setdefault('pipeline', pipeline(0.0))
    return DetDiffusionCocoDataset(data_root=shapes_root, ann_file=ann_file, data_prefix=dict(img='images/'),
                                   metainfo=dict(classes=('circle', 'square', 'triangle')), **kwargs)


def test_instances_carry_their_annotations_attribute(shapes_root, attr_file):
    coco = json.load(open(attr_file))
    by_box = {tuple(round(v, 3) for v in a['bbox']): a['pa_attr'] for a in coco['annotations']}
    dataset = build(shapes_root, attr_file)
    seen = 0
    for i in range(len(dataset)):
        for inst in dataset.get_data_info(i)['instances']:
            x1, y1, x2, y2 = inst['bbox']
            assert inst['pa_attr'] == by_box[tuple(round(v, 3) for v in (x1, y1, x2 - x1, y2 - y1))]
            seen += 1
    assert seen == len(coco['annotations'])


def test_annotations_without_segmentation_get_box_masks(shapes_root, attr_file, tmp_path):
    coco = json.load(open(attr_file))
    for ann in coco['annotations']:
        ann.pop('segmentation')
    path = tmp_path / 'no_masks.json'
    path.write_text(json.dumps(coco))
    sample = build(shapes_root, str(path), pipeline=pipeline(0.0, size=(128, 128)))[0]['data_samples']
    masks = sample.gt_instances.masks.to_ndarray()
    for mask, (x1, y1, x2, y2) in zip(masks, sample.gt_instances.bboxes.tensor.round().int().tolist()):
        assert mask[y1:y2, x1:x2].mean() > 0.95 and mask.sum() <= (x2 - x1 + 1) * (y2 - y1 + 1)


def test_area_filters(shapes_root, attr_file):
    everything = build(shapes_root, attr_file)
    boxes = lambda ds: sum(len(ds.get_data_info(i)['instances']) for i in range(len(ds)))  # noqa: E731
    no_small_boxes = build(shapes_root, attr_file, min_box_area_ratio=0.02)
    assert boxes(no_small_boxes) < boxes(everything)
    for i in range(len(no_small_boxes)):
        for inst in no_small_boxes.get_data_info(i)['instances']:
            x1, y1, x2, y2 = inst['bbox']
            assert (x2 - x1) * (y2 - y1) >= 0.02 * 128 * 128
    dense_only = build(shapes_root, attr_file, min_object_area_ratio=0.15)
    assert 0 < len(dense_only) < len(everything)
    for i in range(len(dense_only)):
        info = dense_only.get_data_info(i)
        assert sum((b[2] - b[0]) * (b[3] - b[1]) for b in (x['bbox'] for x in info['instances'])) >= 0.15 * 128 ** 2


def test_boxes_masks_and_attributes_stay_aligned_under_resize_and_flip(shapes_root, attr_file):
    plain = build(shapes_root, attr_file, pipeline=pipeline(0.0))
    flipped = build(shapes_root, attr_file, pipeline=pipeline(1.0))
    for i in range(4):
        a, b = plain[i]['data_samples'], flipped[i]['data_samples']
        assert a.metainfo['img_shape'] == (48, 64) and b.metainfo['flip']
        assert a.gt_instances.pa_attrs.tolist() == b.gt_instances.pa_attrs.tolist()
        info = plain.get_data_info(i)
        assert a.gt_instances.pa_attrs.tolist() == [ATTR_CODES[x[ATTR_KEY]] for x in info['instances']]
        boxes_a, boxes_b = a.gt_instances.bboxes.tensor, b.gt_instances.bboxes.tensor
        np.testing.assert_allclose(boxes_b[:, [0, 2]].numpy(), 64 - boxes_a[:, [2, 0]].numpy(), atol=1e-4)
        for sample, boxes in ((a, boxes_a), (b, boxes_b)):
            masks = sample.gt_instances.masks.to_ndarray()
            for mask, (x1, y1, x2, y2) in zip(masks, boxes.tolist()):
                ys, xs = np.nonzero(mask)
                # each mask lies in its own box (so masks, boxes and attributes are in the same order)
                assert xs.min() >= x1 - 1.5 and xs.max() <= x2 + 0.5 and ys.min() >= y1 - 1.5 and ys.max() <= y2 + 0.5


def test_unknown_attribute_value_is_named(shapes_root, attr_file, tmp_path):
    coco = json.load(open(attr_file))
    coco['annotations'][0]['pa_attr'] = 'medium'
    path = tmp_path / 'bad.json'
    path.write_text(json.dumps(coco))
    dataset = build(shapes_root, str(path))
    with pytest.raises(ValueError, match=r"pa_attr values \['medium'\] are not easy/hard"):
        dataset[0]


def test_random_attributes_give_every_box_easy_or_hard(shapes_root):
    def attrs(hard_prob):
        steps = pipeline(0.0)
        steps[2] = dict(type='RandomPerceptionAttributes', hard_prob=hard_prob)
        dataset = build(shapes_root, 'annotations/train.json', pipeline=steps, require_pa_attr=False)
        samples = [dataset[i]['data_samples'] for i in range(len(dataset))]
        for sample in samples:
            assert len(sample.gt_instances.pa_attrs) == len(sample.gt_instances.bboxes)
        return np.concatenate([s.gt_instances.pa_attrs.numpy() for s in samples])

    np.random.seed(0)
    mixed = attrs(0.5)
    assert set(mixed.tolist()) == {0, 1} and 0.25 < mixed.mean() < 0.75
    assert attrs(1.0).tolist() == [1] * len(mixed) and attrs(0.0).tolist() == [0] * len(mixed)
    with pytest.raises(ValueError, match=r'hard_prob=1.5 is not a probability'):
        attrs(1.5)


def test_an_unlabelled_file_is_refused_with_the_labeling_step_named(shapes_root):
    with pytest.raises(ValueError, match=r'train\.json: no box has a "pa_attr".*tools/label_attributes\.py'):
        build(shapes_root, 'annotations/train.json')


def test_a_partly_labelled_file_trains_and_logs_the_count(shapes_root, attr_file, tmp_path):
    coco = json.load(open(attr_file))
    for ann in coco['annotations'][:3]:
        del ann['pa_attr']
    path = tmp_path / 'partly.json'
    path.write_text(json.dumps(coco))
    from mmengine.logging import MMLogger
    logged = []
    logger = MMLogger.get_current_instance()
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())
    logger.addHandler(handler)
    try:
        dataset = build(shapes_root, str(path))
    finally:
        logger.removeHandler(handler)
    total = sum(len(dataset.get_data_info(i)['instances']) for i in range(len(dataset)))
    assert any(f'3 of {total} boxes have no "pa_attr"' in line and 'without an attribute token' in line
               for line in logged)
    codes = np.concatenate([dataset[i]['data_samples'].gt_instances.pa_attrs.numpy() for i in range(len(dataset))])
    assert (codes == -1).sum() == 3
