"""How far an object stands out from its surroundings, measured the same way on real and generated
images, so that "hard" generations can be compared with hard real objects (pure numpy).

An object's contrast is the distance between the mean colour of its core (a central window of its box
that lies inside a circle, a square and a triangle alike) and the mean colour of a ring just outside its
box (pixels of other boxes excluded), as a share of the largest possible RGB distance.
"""
from typing import Sequence

import numpy as np

# core window of a box, as fractions of its width (x) and height (y): inside every toy shape
CORE = (0.35, 0.45, 0.65, 0.75)
MAX_DISTANCE = 255.0 * 3 ** 0.5


def object_contrast(image: np.ndarray, box_xyxy: Sequence[float], other_boxes: Sequence[Sequence[float]] = (),
                    ring: float = 0.25) -> float:
    """Contrast (0..1) of the object in ``box_xyxy`` (pixels) of an ``(H, W, 3)`` image.

    ``ring``: the outer ring's width as a share of the box's longer side (at least 2 pixels);
    ``other_boxes`` are left out of the ring. NaN when the core or the ring has no pixel.
    """
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    w, h = x2 - x1, y2 - y1
    cx1, cy1 = int(np.floor(x1 + CORE[0] * w)), int(np.floor(y1 + CORE[1] * h))
    cx2, cy2 = int(np.ceil(x1 + CORE[2] * w)), int(np.ceil(y1 + CORE[3] * h))
    core = image[max(cy1, 0):min(cy2, height), max(cx1, 0):min(cx2, width)].reshape(-1, 3)
    margin = max(2.0, ring * max(w, h))
    outer = np.zeros((height, width), dtype=bool)
    outer[max(int(y1 - margin), 0):min(int(np.ceil(y2 + margin)), height),
          max(int(x1 - margin), 0):min(int(np.ceil(x2 + margin)), width)] = True
    for bx1, by1, bx2, by2 in [box_xyxy, *other_boxes]:
        outer[max(int(by1), 0):min(int(np.ceil(by2)), height), max(int(bx1), 0):min(int(np.ceil(bx2)), width)] = False
    surround = image[outer].reshape(-1, 3)
    if not len(core) or not len(surround):
        return float('nan')
    return float(np.linalg.norm(core.astype(np.float64).mean(0) - surround.astype(np.float64).mean(0)) / MAX_DISTANCE)
