"""User layouts, attribute modes and the object-size filters (pure python)."""
import pytest

from mmdet_detdiffusion.layout.inputs import keep_objects, to_layout_objects, with_attr_mode
from mmdet_detdiffusion.layout.prompt import LayoutObject

CLASSES = ('circle', 'square', 'traffic light')


def test_pixel_boxes_are_normalised_by_the_image_size_and_clipped():
    objects = to_layout_objects(dict(boxes=[[10, 20, 50, 60], [-5, 0, 300, 100]], labels=['square', 2],
                                     attrs=['hard', None], image_size=(100, 200)), CLASSES)
    assert objects[0] == LayoutObject('square', (0.05, 0.2, 0.25, 0.6), 'hard')
    assert objects[1] == LayoutObject('traffic light', (0.0, 0.0, 1.0, 1.0), None)


def test_normalised_boxes_and_layout_objects_pass_through():
    objects = to_layout_objects(dict(boxes=[[0.1, 0.2, 0.3, 0.4]], labels=[0]), CLASSES)
    assert objects == [LayoutObject('circle', (0.1, 0.2, 0.3, 0.4), None)]
    assert to_layout_objects(objects, CLASSES) == objects


@pytest.mark.parametrize('layout, message', [
    (dict(boxes=[[0, 0, 1, 1]], labels=['dog']), "'dog' is not among"),
    (dict(boxes=[[0, 0, 1, 1]], labels=[3]), 'index below 3'),
    (dict(boxes=[[0, 0, 1]], labels=[0]), 'expected [x1, y1, x2, y2]'),
    (dict(boxes=[[0, 0, 1, 1]], labels=[0, 1]), '1 boxes, 2 labels'),
    (dict(boxes=[[0, 0, 1, 1]], labels=[0], attrs=['medium']), "attr 'medium'"),
])
def test_bad_layouts_name_the_problem(layout, message):
    with pytest.raises(ValueError, match=message.replace('[', r'\[').replace(']', r'\]')):
        to_layout_objects(layout, CLASSES)


def test_attr_modes():
    objects = [LayoutObject('circle', (0, 0, 1, 1), 'easy'), LayoutObject('square', (0, 0, 1, 1), None)]
    assert [o.attr for o in with_attr_mode(objects, 'hard')] == ['hard', 'hard']
    assert [o.attr for o in with_attr_mode(objects, 'easy')] == ['easy', 'easy']
    assert [o.attr for o in with_attr_mode(objects, 'original')] == ['easy', None]
    assert [o.attr for o in with_attr_mode(objects, 'none')] == [None, None]
    with pytest.raises(ValueError, match='attr mode'):
        with_attr_mode(objects, 'random')


def test_keep_objects_drops_tiny_boxes_and_images_with_little_object_area():
    boxes = [[0, 0, 10, 10], [0, 0, 1, 1]]  # 1% and 0.01% of a 100x100 image
    assert keep_objects(boxes, 100, 100) == [0, 1]
    assert keep_objects(boxes, 100, 100, min_box_area_ratio=0.002) == [0]
    assert keep_objects(boxes, 100, 100, min_object_area_ratio=0.02) is None  # covers 1.01% < 2%
    assert keep_objects(boxes + [[50, 50, 60, 70]], 100, 100, min_object_area_ratio=0.02) == [0, 1, 2]
    assert keep_objects([], 100, 100) is None
