"""Box drawing: every attribute-slot value has its colour."""
import numpy as np

from mmdet_detdiffusion.layout.attributes import EASY, HARD, slot_values
from mmdet_detdiffusion.visualization import ATTR_COLOURS, draw_boxes


def test_every_slot_value_is_drawn_in_its_own_colour():
    assert slot_values() == (EASY, HARD)  # the library alone
    assert set(ATTR_COLOURS) == {None, *slot_values()} and len(set(ATTR_COLOURS.values())) == len(ATTR_COLOURS)
    image = np.zeros((32, 32, 3), np.uint8)
    for attr in (None, *slot_values()):
        canvas = draw_boxes(image, [(4, 8, 20, 28)], ['circle'], [attr], scale=2)
        assert canvas.shape == (64, 64, 3)
        assert tuple(canvas[40, 8]) == ATTR_COLOURS[attr], 'the box\'s left edge, below its label'
