"""The toy loop reuses an earlier run's data and synthetic sets only when they were made with this run's
settings (a report must describe the data it was made from)."""
import json
import os

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from mmdet_detdiffusion.attributes.labeler import AttributeLabeler, labeling_record
from mmdet_detdiffusion.layout.attributes import RECORD_KEY
from mmdet_detdiffusion.synthetic.manifest import ANNOTATION_FILE
from projects.toy_shapes.toy_shapes.shapes import DEMO_SHAPES, write_shapes_dataset
from projects.toy_shapes.toy_shapes.toy_loop import first_images, generate_set, label_boxes, make_shapes_data


def test_shapes_data_is_reused_only_with_the_demo_recipe(tmp_path):
    root = str(tmp_path / 'demo') + '/'
    make_shapes_data(root, 1, 1, seed=0, colours='by_class')
    info = json.load(open(os.path.join(root, 'annotations', 'val.json')))['info']
    assert {key: info[key] for key in DEMO_SHAPES} == DEMO_SHAPES
    make_shapes_data(root, 1, 1, seed=0, colours='by_class')  # the same recipe: reused
    with pytest.raises(ValueError, match=r'seed 0 \(now 1\).*new --work-dir'):
        make_shapes_data(root, 1, 1, seed=1, colours='by_class')
    old = str(tmp_path / 'old') + '/'
    write_shapes_dataset(old, 1, 1, seed=0, colours='by_class', min_contrast=0.15)  # an earlier recipe
    with pytest.raises(ValueError, match=r'val\.json was made by an earlier run.*min_contrast 0\.15 \(now 0\.05\)'):
        make_shapes_data(old, 1, 1, seed=0, colours='by_class')


def test_a_synthetic_set_made_with_other_sampler_settings_is_not_reused(tmp_path):
    folder = str(tmp_path / 'val_hard_s0') + '/'
    os.makedirs(folder)
    record = dict(attr_mode='hard', seed=0, num_inference_steps=10, guidance_scale=4.0)
    json.dump({'images': [], 'annotations': [], 'categories': [], RECORD_KEY: record},
              open(os.path.join(folder, ANNOTATION_FILE), 'w'))
    assert generate_set(None, 'id', 'layouts.json', 'hard', 0, folder, 10, 4.0) == folder  # reused, no pipeline
    with pytest.raises(ValueError, match=r'guidance_scale 4\.0 \(now 7\.5\)'):
        generate_set(None, 'id', 'layouts.json', 'hard', 0, folder, 10, 7.5)


def test_label_boxes_writes_the_labeling_record_once(trained_retinanet, shapes_root, tmp_path):
    config, checkpoint = trained_retinanet
    cfg = Config.fromfile(config)
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.load_checkpoint(checkpoint)
    attr_file = str(tmp_path / 'attrs.json')
    record = label_boxes(runner, shapes_root + 'annotations/val.json', shapes_root + 'images', attr_file)[RECORD_KEY]
    # the fields of labeling_record, the tool's and the hook's, and the run's bookkeeping
    fields = labeling_record(AttributeLabeler(runner.model, []), None, '').keys()
    assert record.keys() == fields | {'date', 'unreadable_images', 'skipped_boxes', 'counts'}
    assert record['weights'] == 'toy detector after 0 epochs' and record['checkpoint'] is None
    assert record['detector_config'] == config
    # a rerun reuses the file rather than label again
    assert label_boxes(runner, shapes_root + 'annotations/val.json', 'missing/', attr_file)[RECORD_KEY] == record
    # ... made with the same rule, the same detector and as many images
    with pytest.raises(ValueError, match=r'attrs.json was made by an earlier run with other settings: score_thr '
                                         r'0.3 \(now 0.5\)'):
        label_boxes(runner, shapes_root + 'annotations/val.json', 'missing/', attr_file, score_thr=0.5)
    fewer = first_images(shapes_root + 'annotations/val.json', 3, str(tmp_path / 'first3.json'))
    with pytest.raises(ValueError, match=r'images \d+ \(now 3\)'):
        label_boxes(runner, fewer, 'missing/', attr_file)
    # ... and of the same images, not only as many
    with open(shapes_root + 'annotations/val.json') as f:
        other = json.load(f)
    old_id, new_id = other['images'][0]['id'], max(image['id'] for image in other['images']) + 1
    other['images'][0]['id'] = new_id
    for ann in other['annotations']:
        ann['image_id'] = new_id if ann['image_id'] == old_id else ann['image_id']
    other_file = str(tmp_path / 'other.json')
    with open(other_file, 'w') as f:
        json.dump(other, f)
    with pytest.raises(ValueError, match=r'attrs.json labels other images than .*other.json: 1 of its image ids'):
        label_boxes(runner, other_file, 'missing/', attr_file)
