"""The drawn-box measure: on real shapes images it finds the annotated boxes; faint or absent objects are not
measured; a label is compared with the box drawn at its layout box."""
import json

import cv2
import numpy as np
import pytest

from mmdet_detdiffusion.layout.attribute_file import xywh_to_xyxy
from mmdet_detdiffusion.layout.matching import box_iou
from projects.toy_shapes.toy_shapes.drawn_boxes import MIN_EVIDENCE, drawn_box, label_ious
from projects.toy_shapes.toy_shapes.shapes import DEMO_SHAPES, write_shapes_dataset


@pytest.fixture(scope='module')
def demo_shapes(tmp_path_factory):
    """``(coco, image folder)`` of 20 training images of the demo's recipe."""
    root = tmp_path_factory.mktemp('drawn')
    paths = write_shapes_dataset(str(root), num_train=20, num_val=1, seed=5, **DEMO_SHAPES)
    return json.load(open(paths['train'])), str(root / 'images')


def test_the_measure_finds_the_annotated_boxes_of_real_images(demo_shapes):
    coco, images = demo_shapes
    ious = label_ious(coco, images)
    clear = [a['id'] for a in coco['annotations'] if a['contrast'] >= 0.3]
    assert len(clear) >= 20 and all(i in ious for i in clear)  # every clear object is measured
    assert np.median([ious[i] for i in clear]) > 0.9
    assert min(ious[i] for i in clear) > 0.7


def test_faint_or_absent_objects_are_not_measured():
    grey = np.full((64, 64, 3), 120, np.uint8)
    assert drawn_box(grey, [10, 10, 30, 30], 'circle') is None
    faint = grey.copy()
    colour = np.array([120, 120, 120]) + 0.05 * (np.array([220, 40, 40]) - 120)  # 5% of the way to red
    cv2.rectangle(faint, (10, 10), (29, 29), [int(v) for v in colour], -1)
    assert drawn_box(faint, [10, 10, 30, 30], 'circle') is None  # within noise's reach: below MIN_EVIDENCE
    strong = grey.copy()
    cv2.rectangle(strong, (12, 14), (31, 27), (220, 40, 40), -1)  # red, drawn shifted from the layout box
    np.testing.assert_array_equal(drawn_box(strong, [10, 10, 30, 30], 'circle'), [12, 14, 31, 27])
    assert drawn_box(strong, [10, 10, 30, 30], 'square') is None  # not the class's colour
    assert MIN_EVIDENCE > 0.05


def test_labels_are_compared_with_the_box_drawn_at_their_layout_box(tmp_path):
    image = np.full((64, 64, 3), 100, np.uint8)
    cv2.rectangle(image, (20, 20), (39, 39), (40, 180, 60), -1)  # a green square, pixels 20..39
    cv2.imwrite(str(tmp_path / 'a.png'), image[:, :, ::-1])
    drawn = [20, 20, 19, 19]
    coco = dict(images=[dict(id=1, file_name='a.png', width=64, height=64)], categories=[dict(id=2, name='square')],
                annotations=[dict(id=1, image_id=1, category_id=2, bbox=drawn, iscrowd=0),
                             dict(id=2, image_id=1, category_id=2, bbox=[24, 24, 19, 19], layout_bbox=[16, 16, 19, 19],
                                  iscrowd=0),
                             dict(id=3, image_id=1, category_id=2, bbox=[16, 16, 19, 19], iscrowd=1)])
    ious = label_ious(coco, str(tmp_path))
    assert set(ious) == {1, 2}  # the ignore region has no label to compare
    assert ious[1] == pytest.approx(1.0)
    expected = box_iou([xywh_to_xyxy([24, 24, 19, 19])], [xywh_to_xyxy(drawn)])[0, 0]
    assert ious[2] == pytest.approx(expected) and expected < 0.9
