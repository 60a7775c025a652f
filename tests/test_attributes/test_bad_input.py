"""Bad input to attribute labeling: clear errors or logged skips, never a crash inside mmdet."""
import json
import os
import shutil

import pytest

from helpers import run_label_tool
from mmdet_detdiffusion.layout.attributes import ATTR_KEY, ATTRIBUTES, HARD, RECORD_KEY, SKIP_KEY


@pytest.fixture()
def broken_copy(shapes_root, tmp_path):
    """A copy of the val split with a missing image, a corrupt image and two unusable boxes."""
    root = tmp_path / 'data'
    shutil.copytree(shapes_root + 'images/val', root / 'images' / 'val')
    coco = json.load(open(shapes_root + 'annotations/val.json'))
    os.remove(root / 'images' / coco['images'][0]['file_name'])
    (root / 'images' / coco['images'][1]['file_name']).write_bytes(b'\x89PNG not really an image')
    third = [a for a in coco['annotations'] if a['image_id'] == coco['images'][2]['id']]
    third[0]['bbox'] = [10, 10, 0, 5]  # zero width
    if len(third) > 1:
        third[1]['bbox'] = [500, 500, 20, 20]  # outside the 128x128 image
    ann_file = tmp_path / 'val.json'
    ann_file.write_text(json.dumps(coco))
    return str(ann_file), str(root / 'images'), coco


@pytest.mark.slow
def test_unreadable_images_and_boxes_are_logged_kept_and_marked(trained_retinanet, broken_copy, tmp_path):
    ann_file, img_prefix, coco = broken_copy
    out = str(tmp_path / 'out.json')
    proc = run_label_tool(*trained_retinanet, ann_file, img_prefix, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'file not found' in log and 'cannot be read as an image' in log
    assert 'has no area inside the' in log
    written = json.load(open(out))
    assert len(written['annotations']) == len(coco['annotations'])  # nothing dropped
    assert all(a[ATTR_KEY] in ATTRIBUTES for a in written['annotations'])
    first_two = {coco['images'][0]['id'], coco['images'][1]['id']}
    for ann in written['annotations']:
        if ann['image_id'] in first_two:
            assert (ann[ATTR_KEY], ann[SKIP_KEY]) == (HARD, 'unreadable image')
    third = [a for a in written['annotations'] if a['image_id'] == coco['images'][2]['id']]
    assert third[0][SKIP_KEY] == 'box has no area inside the image' and third[0][ATTR_KEY] == HARD
    record = written[RECORD_KEY]
    assert len(record['unreadable_images']) == 2
    assert record['unreadable_images'][0].startswith(os.path.join(img_prefix, coco['images'][0]['file_name']))
    assert record['skipped_boxes'] == sum(1 for a in written['annotations'] if SKIP_KEY in a)


@pytest.mark.parametrize('mutate, message', [
    (lambda c: c['annotations'][0].update(category_id=42), '"category_id"=42: expected one of the category ids'),
    (lambda c: c.pop('images'), '"images": expected a list'),
    (lambda c: c['categories'][0].update(name='hexagon'), "categories ['hexagon'] are not classes of the detector"),
])
@pytest.mark.slow
def test_bad_annotation_file_gives_a_clear_error(trained_retinanet, shapes_root, tmp_path, mutate, message):
    coco = json.load(open(shapes_root + 'annotations/val.json'))
    mutate(coco)
    ann_file = tmp_path / 'bad.json'
    ann_file.write_text(json.dumps(coco))
    out = tmp_path / 'out.json'
    proc = run_label_tool(*trained_retinanet, str(ann_file), shapes_root + 'images', str(out))
    assert proc.returncode != 0
    assert message in proc.stderr and str(ann_file) in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not out.exists()


@pytest.mark.slow
def test_missing_checkpoint_is_named(shapes_root, tmp_path, trained_retinanet):
    proc = run_label_tool(trained_retinanet[0], str(tmp_path / 'nope.pth'), shapes_root + 'annotations/val.json',
                          shapes_root + 'images', str(tmp_path / 'out.json'))
    assert proc.returncode != 0 and 'checkpoint' in proc.stderr and 'nope.pth does not exist' in proc.stderr
