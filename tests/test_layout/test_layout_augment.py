"""Layout edits (GeoDiffusion's flip and shift): boxes stay inside the image, classes and sizes are kept."""
import numpy as np
import pytest

from mmdet_detdiffusion.layout.augment import LayoutEdit, draw_layout_edit


def test_flip_and_shift_by_hand():
    edit = LayoutEdit(flip=True, shift=(5.0, -2.0))
    assert edit.apply([(10, 20, 30, 40)], width=100) == [(75.0, 18.0, 95.0, 38.0)]
    assert edit.as_record() == dict(flip=True, shift=[5.0, -2.0])


def test_edits_keep_boxes_inside_and_sizes():
    rng = np.random.default_rng(0)
    width, height = 128, 96
    boxes = [(2, 3, 40, 30), (60, 50, 126, 94), (30, 10, 50, 20)]
    flips = 0
    for _ in range(200):
        edit = draw_layout_edit(boxes, width, height, rng, flip_prob=0.5, max_shift=0.3)
        edited = np.asarray(edit.apply(boxes, width))
        flips += edit.flip
        assert (edited[:, :2] >= -1e-9).all() and (edited[:, 2] <= width + 1e-9).all()
        assert (edited[:, 3] <= height + 1e-9).all()
        sizes = np.asarray(boxes)[:, 2:] - np.asarray(boxes)[:, :2]
        np.testing.assert_allclose(edited[:, 2:] - edited[:, :2], sizes)
        assert abs(edit.shift[0]) <= 0.3 * width and abs(edit.shift[1]) <= 0.3 * height
    assert 70 < flips < 130  # p = 0.5


def test_a_layout_spanning_the_image_cannot_shift():
    edit = draw_layout_edit([(0, 0, 64, 64)], 64, 64, np.random.default_rng(1), flip_prob=0.0, max_shift=0.5)
    assert edit == LayoutEdit(flip=False, shift=(0.0, 0.0))


def test_same_rng_state_same_edit_and_bad_settings():
    boxes = [(10, 10, 20, 20)]
    a = draw_layout_edit(boxes, 64, 64, np.random.default_rng(7))
    b = draw_layout_edit(boxes, 64, 64, np.random.default_rng(7))
    assert a == b and a.shift != (0.0, 0.0)
    with pytest.raises(ValueError, match='flip_prob'):
        draw_layout_edit(boxes, 64, 64, np.random.default_rng(0), flip_prob=1.5)
