"""The objects a generation shows, online (DetDiffusionGenerate) and offline (SyntheticDatasetWriter): only the
boxes drawn (kept in the prompt, passing the export's data filters) are labels; the others are ignored online and
left out offline; both paths give the same pixels and labels for the same layout and seed."""
import json
import os
import shutil

import cv2
import numpy as np
import pytest

from mmdet_detdiffusion.transforms import DetDiffusionGenerate
from mmdet_detdiffusion.transforms.online_generation import key_seed

SIZE = 128  # pixels, the layouts' image size
SETTINGS = dict(prob=1.0, attr_mode='hard', num_inference_steps=2, guidance_scale=2.0)
# a big box, a tiny one (36 px, 0.2% of the image) and a medium one
BOXES = [[10, 10, 70, 70], [100, 100, 106, 106], [80, 20, 120, 60]]
LABELS = [0, 1, 2]


@pytest.fixture(scope='module')
def filtered_export(tiny_generator_export, tmp_path_factory):
    """A copy of the tiny export whose training data dropped boxes under 1% of the image (as GeoDiffusion does)."""
    export = str(tmp_path_factory.mktemp('filtered') / 'export')
    shutil.copytree(tiny_generator_export, export)
    config_path = os.path.join(export, 'model_index.json')
    config = json.load(open(config_path))
    config['data_filters'] = dict(min_box_area_ratio=0.01, min_object_area_ratio=0.02)
    with open(config_path, 'w') as f:
        json.dump(config, f)
    return export


def layout_results(boxes, labels, ignored=None) -> dict:
    """The results of LoadAnnotations for a ``SIZE`` x ``SIZE`` image with these pixel xyxy boxes."""
    return dict(img_path='real/image.png', height=SIZE, width=SIZE, gt_bboxes=np.array(boxes, dtype=np.float32),
                gt_bboxes_labels=np.array(labels, dtype=np.int64),
                gt_ignore_flags=np.zeros(len(boxes), bool) if ignored is None else np.array(ignored))


def many_boxes(count: int):
    """``count`` boxes of distinct sizes on a grid (8 columns of 16 px cells), labels cycling over the classes."""
    boxes = [[16 * (i % 8), 16 * (i // 8), 16 * (i % 8) + 4 + i % 12, 16 * (i // 8) + 4 + i // 4] for i in range(count)]
    return boxes, [i % 3 for i in range(count)]


def cached_key(cache_dir) -> str:
    """The key of the only generation in ``cache_dir``."""
    (name,) = [f for _, _, files in os.walk(cache_dir) for f in files if f.endswith('.png')]
    return name[:-len('.png')]


def test_only_the_boxes_written_in_the_prompt_stay_labels(tiny_generator_export, tmp_path):
    boxes, labels = many_boxes(41)
    ignored = np.zeros(41, bool)
    ignored[0] = True  # ignored already: not part of the layout, and stays ignored
    transform = DetDiffusionGenerate(tiny_generator_export, str(tmp_path), **SETTINGS)
    results = transform(layout_results(boxes, labels, ignored))
    assert results['detdiffusion_generated'] and len(results['gt_bboxes']) == 41
    layout = dict(boxes=boxes[1:], labels=labels[1:], image_size=(SIZE, SIZE))
    _, _, (kept,) = transform.pipeline().layout_prompts([layout], 'hard')
    assert 0 < len(kept) < 40  # CLIP's 77 tokens cut the layout of 40 objects
    active = np.flatnonzero(~results['gt_ignore_flags'])
    assert len(active) == len(kept) and active.tolist() == [k + 1 for k in kept]

    again = DetDiffusionGenerate(tiny_generator_export, str(tmp_path), **SETTINGS)
    cached = again(layout_results(boxes, labels, ignored))
    assert again._pipe is None, 'the drawn boxes of a cached generation are read back without the generator'
    assert np.array_equal(cached['gt_ignore_flags'], results['gt_ignore_flags'])
    assert cached['img_path'] == results['img_path']


def test_a_box_the_data_filters_drop_is_ignored_online_and_absent_offline(filtered_export, tmp_path):
    from mmdet_detdiffusion.synthetic.writer import SyntheticDatasetWriter
    transform = DetDiffusionGenerate(filtered_export, str(tmp_path / 'cache'), **SETTINGS)
    results = transform(layout_results(BOXES, LABELS))
    assert results['detdiffusion_generated']
    assert results['gt_ignore_flags'].tolist() == [False, True, False]

    pipe = transform.pipeline()
    coco = dict(images=[dict(id=1, file_name='image.png', width=SIZE, height=SIZE)],
                annotations=[dict(id=i + 1, image_id=1, bbox=[x1, y1, x2 - x1, y2 - y1], category_id=label,
                                  area=(x2 - x1) * (y2 - y1), iscrowd=0)
                             for i, ((x1, y1, x2, y2), label) in enumerate(zip(BOXES, LABELS))],
                categories=[dict(id=i, name=name) for i, name in enumerate(pipe.classes)])
    writer = SyntheticDatasetWriter(pipe, str(tmp_path / 'offline'), 'hard', num_inference_steps=2, guidance_scale=2.0)
    path = writer.run(coco, 'layouts.json', filters=pipe.config.data_filters, progress=False)  # as tools/generate.py
    written = json.load(open(path))['annotations']
    assert [a['category_id'] for a in written] == [0, 2]


@pytest.mark.parametrize('attribute_guidance_scale, box_source', [(0.0, 'layout'), (1.5, 'layout'), (0.0, 'head')])
def test_online_and_offline_generations_agree(filtered_export, tmp_path, attribute_guidance_scale, box_source):
    from mmdet_detdiffusion.synthetic.plan import WorkItem
    from mmdet_detdiffusion.synthetic.writer import SyntheticDatasetWriter
    head_options = dict(box_source=box_source,
                        box_repair=dict(min_confidence=0.0) if box_source == 'head' else None)
    transform = DetDiffusionGenerate(filtered_export, str(tmp_path / 'cache'), **SETTINGS,
                                     attribute_guidance_scale=attribute_guidance_scale, **head_options)
    online = transform(layout_results(BOXES, LABELS))
    pipe = transform.pipeline()
    writer = SyntheticDatasetWriter(pipe, str(tmp_path / 'offline'), 'hard', num_inference_steps=2, guidance_scale=2.0,
                                    attribute_guidance_scale=attribute_guidance_scale, **head_options)
    source = dict(id=1, file_name='image.png', width=SIZE, height=SIZE)
    item = WorkItem(index=0, file_name='image_hard_0.png', source=source,
                    boxes=tuple(tuple(float(v) for v in box) for box in BOXES), category_ids=tuple(LABELS),
                    attrs=(None,) * len(BOXES), variant=0, seed=key_seed(cached_key(tmp_path / 'cache')))
    # the whole layout, tiny box included: the writer's own filtering drops it, as the transform's does
    (record,) = writer.generate_batch([item], dict(enumerate(pipe.classes)), filters=pipe.config.data_filters)
    offline = cv2.imread(str(tmp_path / 'offline' / 'images' / item.file_name))
    assert np.ptp(offline) > 10, 'a generated image, not a blank one'
    assert np.array_equal(cv2.imread(online['img_path']), offline)
    active = ~online['gt_ignore_flags']
    objects = [a for a in record['annotations'] if not a.get('iscrowd')]  # offline, an ignore region is a crowd
    boxes = [[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in objects)]
    np.testing.assert_allclose(online['gt_bboxes'][active], np.array(boxes, np.float32).reshape(-1, 4))
    assert [a['category_id'] for a in objects] == online['gt_bboxes_labels'][active].tolist()
    if box_source == 'head':
        assert len(objects) == 2, 'both drawn boxes have a mask box'
        assert not np.allclose(online['gt_bboxes'][active], np.array(BOXES, np.float32)[[0, 2]]), 'repaired boxes'
    again = DetDiffusionGenerate(filtered_export, str(tmp_path / 'cache'), **SETTINGS,
                                 attribute_guidance_scale=attribute_guidance_scale, **head_options)
    cached = again(layout_results(BOXES, LABELS))  # from the cache: the same labels, no pipeline loaded
    assert again._pipe is None and np.array_equal(cached['gt_bboxes'], online['gt_bboxes'])
    assert np.array_equal(cached['gt_ignore_flags'], online['gt_ignore_flags'])


def test_a_drawn_box_without_a_sure_mask_is_ignored_online(filtered_export, tmp_path):
    transform = DetDiffusionGenerate(filtered_export, str(tmp_path), **SETTINGS, box_source='head',
                                     box_repair=dict(min_confidence=1.0))  # the untrained head is never that sure
    results = transform(layout_results(BOXES, LABELS))
    assert results['detdiffusion_generated'] and results['gt_ignore_flags'].all()
    np.testing.assert_array_equal(results['gt_bboxes'], np.array(BOXES, np.float32))  # their layout boxes


def test_head_boxes_land_on_the_rows_of_the_drawn_boxes(filtered_export, tmp_path):
    """An ignored input box and a filtered one shift the drawn boxes' rows: only those rows get mask boxes."""
    transform = DetDiffusionGenerate(filtered_export, str(tmp_path), **SETTINGS, box_source='head',
                                     box_repair=dict(min_confidence=0.0))
    results = transform(layout_results(BOXES, LABELS, ignored=[True, False, False]))
    # box 0 was ignored, box 1 is under the export's filter: box 2 alone is drawn and relabelled
    assert results['gt_ignore_flags'].tolist() == [True, True, False]
    np.testing.assert_array_equal(results['gt_bboxes'][:2], np.array(BOXES[:2], np.float32))
    assert not np.allclose(results['gt_bboxes'][2], BOXES[2]), 'its mask box'


def test_head_boxes_replace_rows_of_mmdets_box_type():
    from mmdet.structures.bbox import HorizontalBoxes

    from mmdet_detdiffusion.transforms.online_generation import with_boxes
    boxes = HorizontalBoxes(np.array(BOXES, np.float32))
    replaced = with_boxes(boxes, np.array([0, 2]), np.array([[11, 12, 60, 65], [81, 22, 118, 58]], np.float32))
    assert isinstance(replaced, HorizontalBoxes)
    assert replaced.tensor.tolist() == [[11, 12, 60, 65], BOXES[1], [81, 22, 118, 58]]
    assert boxes.tensor.tolist() == BOXES, 'the input is left as it was'


def test_a_layout_the_data_filters_drop_keeps_the_real_image(tiny_generator_export, tmp_path):
    small = [[0, 0, 10, 10]]  # 0.6% of the image: the export's training data dropped images this empty
    transform = DetDiffusionGenerate(tiny_generator_export, str(tmp_path), **SETTINGS)
    results = transform(layout_results(small, [0]))
    assert 'detdiffusion_generated' not in results and results['img_path'] == 'real/image.png'
    assert results['gt_ignore_flags'].tolist() == [False]
    entries = [f for _, _, files in os.walk(tmp_path) for f in files]
    assert len(entries) == 1 and entries[0].endswith('.json'), 'the decision is cached, no image is'
    again = DetDiffusionGenerate(tiny_generator_export, str(tmp_path), **SETTINGS)
    assert 'detdiffusion_generated' not in again(layout_results(small, [0])) and again._pipe is None
