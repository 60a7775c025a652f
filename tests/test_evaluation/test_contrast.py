"""Object contrast on hand-made images: a flat object on a flat background, other boxes left out."""
import math

import numpy as np

from mmdet_detdiffusion.evaluation.contrast import MAX_DISTANCE, object_contrast


def test_contrast_of_a_flat_square_on_a_flat_background():
    image = np.full((64, 64, 3), 100, dtype=np.uint8)
    image[20:40, 20:40] = (100, 160, 180)  # +60 green, +80 blue
    assert math.isclose(object_contrast(image, (20, 20, 40, 40)), 100 / MAX_DISTANCE, rel_tol=1e-9)
    image[20:40, 20:40] = 100
    assert object_contrast(image, (20, 20, 40, 40)) == 0.0


def test_other_boxes_are_left_out_of_the_ring_and_the_core_lies_inside_a_triangle():
    image = np.full((64, 64, 3), 50, dtype=np.uint8)
    image[10:50, 41:60] = 250  # a bright neighbour right next to the object
    xs = np.arange(64)
    for y in range(10, 40):  # a triangle: apex (25, 10), base y = 39 from x = 11 to 39
        half = (y - 10) / 29 * 14
        image[y, (xs >= 25 - half) & (xs <= 25 + half)] = (50, 50, 200)
    with_neighbour = object_contrast(image, (10, 10, 40, 40))
    left_out = object_contrast(image, (10, 10, 40, 40), other_boxes=[(41, 10, 60, 50)])
    assert math.isclose(left_out, 150 / MAX_DISTANCE, rel_tol=1e-9)
    assert not math.isclose(with_neighbour, left_out)
