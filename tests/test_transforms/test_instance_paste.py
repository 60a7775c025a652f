"""SyntheticInstancePaste: a generated object cut by its mask lands on a real image with its mask's box; the rest of
the image and its boxes are kept; bad sets and mask pipelines are refused by name; it runs in an mmdet pipeline on a
set the writer made with the perception head's boxes."""
import json

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest
from mmcv.transforms import Compose
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.registry import init_default_scope

from helpers import CLASSES, head_labelled_set
from mmdet_detdiffusion.synthetic.box_repair import mask_rle
from mmdet_detdiffusion.transforms import SyntheticInstancePaste


@pytest.fixture()
def disc_set(tmp_path):
    """A one-object synthetic set: a red disc of radius 6 on a blue 40x40 image, its mask as COCO RLE (13 pixels
    across)."""
    image = np.zeros((40, 40, 3), np.uint8)
    image[:] = (200, 60, 20)  # BGR blue
    mask = np.zeros((40, 40), np.uint8)
    cv2.circle(mask, (20, 16), 6, 1, -1)
    image[mask.astype(bool)] = (30, 30, 220)  # BGR red
    cv2.imwrite(str(tmp_path / 'disc.png'), image)
    coco = dict(images=[dict(id=1, file_name='disc.png', width=40, height=40)],
                categories=[dict(id=1, name='circle'), dict(id=2, name='square'), dict(id=3, name='triangle')],
                annotations=[dict(id=1, image_id=1, category_id=1, bbox=[14, 10, 13, 13], iscrowd=0,
                                  segmentation=mask_rle(mask.astype(bool))),
                             dict(id=2, image_id=1, category_id=2, bbox=[0, 0, 5, 5], iscrowd=1)])
    json.dump(coco, open(tmp_path / 'annotations.json', 'w'))
    return str(tmp_path / 'annotations.json'), str(tmp_path), mask.astype(bool)


def real_results():
    image = np.full((64, 64, 3), 128, np.uint8)
    return dict(img=image, gt_bboxes=HorizontalBoxes(np.array([[0, 0, 20, 20]], np.float32)),
                gt_bboxes_labels=np.array([2]), gt_ignore_flags=np.array([False]))


def test_a_pasted_object_gets_its_masks_box_and_the_rest_is_kept(disc_set):
    ann_file, folder, mask = disc_set
    paste = SyntheticInstancePaste(ann_file, folder, CLASSES, prob=1.0, max_instances=1)
    assert len(paste.instances) == 1  # the crowd box is not pasted
    np.random.seed(3)
    before = real_results()
    original = before['img'].copy()
    out = paste(dict(before, img=before['img'].copy()))
    boxes = out['gt_bboxes'].tensor.numpy()
    assert boxes.shape == (2, 4) and out['gt_bboxes_labels'].tolist() == [2, 0]
    assert out['gt_ignore_flags'].tolist() == [False, False]
    np.testing.assert_array_equal(boxes[0], [0, 0, 20, 20])  # the real box kept
    x1, y1, x2, y2 = boxes[1].astype(int)
    assert (x2 - x1, y2 - y1) == (13, 13)  # the disc's mask box, wherever it landed
    assert x1 >= 20 or y1 >= 20  # not on the real object
    changed = np.any(out['img'] != original, axis=2)
    ys, xs = np.nonzero(changed)
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x1, y1, x2, y2)  # only pixels under the mask changed
    assert changed.sum() == mask.sum()
    np.testing.assert_array_equal(out['img'][changed], np.tile([30, 30, 220], (mask.sum(), 1)))


def test_no_paste_without_luck_and_bad_inputs_are_named(disc_set, tmp_path):
    ann_file, folder, _ = disc_set
    results = real_results()
    out = SyntheticInstancePaste(ann_file, folder, CLASSES, prob=0.0)(dict(results, img=results['img'].copy()))
    np.testing.assert_array_equal(out['img'], results['img'])
    assert len(out['gt_bboxes']) == 1
    with pytest.raises(ValueError, match="'square'"):
        SyntheticInstancePaste(ann_file, folder, ('circle', 'triangle'))
    coco = json.load(open(ann_file))
    for ann in coco['annotations']:
        ann.pop('segmentation', None)
    json.dump(coco, open(tmp_path / 'no_masks.json', 'w'))
    with pytest.raises(ValueError, match='--box-source head'):
        SyntheticInstancePaste(str(tmp_path / 'no_masks.json'), folder, CLASSES)
    with pytest.raises(ValueError, match='gt_masks'):
        SyntheticInstancePaste(ann_file, folder, CLASSES, prob=1.0)(dict(results, gt_masks=object()))
    with pytest.raises(ValueError, match='prob'):
        SyntheticInstancePaste(ann_file, folder, CLASSES, prob=1.5)


def test_pastes_from_a_head_labelled_set_in_an_mmdet_pipeline(pipe, shapes_root, tmp_path):
    coco, written = head_labelled_set(pipe, shapes_root, str(tmp_path / 'set'), 4, min_confidence=0.0)
    labelled = [a for a in written['annotations'] if not a['iscrowd']]
    assert labelled and all(list(mask_utils.toBbox(a['segmentation'])) == pytest.approx(a['bbox']) for a in labelled)
    init_default_scope('mmdet')
    pipeline = Compose([dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                        dict(type='SyntheticInstancePaste', ann_file=str(tmp_path / 'set' / 'annotations.json'),
                             img_prefix=str(tmp_path / 'set' / 'images'), classes=CLASSES, prob=1.0,
                             max_instances=2)])
    np.random.seed(0)
    # an image without boxes: the untrained head's masks may cover most of an image, which fits only where nothing is
    out = pipeline(dict(img_path=shapes_root + 'images/' + coco['images'][0]['file_name'], instances=[]))
    assert 1 <= len(out['gt_bboxes']) <= 2 and len(out['gt_bboxes_labels']) == len(out['gt_bboxes'])
    assert not out['gt_ignore_flags'].any()
