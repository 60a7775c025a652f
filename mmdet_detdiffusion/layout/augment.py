"""New layouts from training ones: GeoDiffusion's layout edits for trainability data (pure numpy).

Re-drawing the training layouts as they are adds images that look like the real ones. GeoDiffusion edits
the layouts before generating: it drops the boxes under 0.2% of the image (our plan's
``min_box_area_ratio`` filter), flips the layout horizontally with p = 0.5 and shifts it. An edit moves the
whole layout rigidly, so objects keep their sizes, classes and relative positions; the shift is drawn
within ``max_shift`` of the image side and clipped so that every box stays inside the image.

Boxes are xyxy in pixels of a ``width x height`` image.
"""
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

Box = Tuple[float, float, float, float]


@dataclass(frozen=True)
class LayoutEdit:
    """A rigid edit of one layout: an optional horizontal flip, then a shift of ``(dx, dy)`` pixels."""
    flip: bool = False
    shift: Tuple[float, float] = (0.0, 0.0)

    def apply(self, boxes_xyxy: Sequence[Sequence[float]], width: float) -> List[Box]:
        """The edited boxes (xyxy pixels, same order) of a layout ``width`` pixels wide."""
        dx, dy = self.shift
        edited = []
        for x1, y1, x2, y2 in boxes_xyxy:
            if self.flip:
                x1, x2 = width - x2, width - x1
            edited.append((x1 + dx, y1 + dy, x2 + dx, y2 + dy))
        return edited

    def as_record(self) -> dict:
        """JSON-ready form, for the synthetic image's ``detdiffusion`` record."""
        return dict(flip=self.flip, shift=[round(self.shift[0], 3), round(self.shift[1], 3)])


def draw_layout_edit(boxes_xyxy: Sequence[Sequence[float]], width: float, height: float,
                     rng: np.random.Generator, flip_prob: float = 0.5, max_shift: float = 0.1) -> LayoutEdit:
    """A random :class:`LayoutEdit` of a layout that keeps every box inside the image.

    Args:
        boxes_xyxy: the layout's boxes, inside the ``width x height`` image.
        rng: the source of randomness (one per layout, for a plan that is a function of its seed).
        flip_prob: probability of a horizontal flip.
        max_shift: largest shift, as a share of the image side, along each axis.
    """
    if not 0 <= flip_prob <= 1 or max_shift < 0:
        raise ValueError(f'layout edit: need flip_prob in [0, 1] and max_shift >= 0, got {flip_prob}, {max_shift}')
    flip = bool(rng.random() < flip_prob)
    flipped = np.asarray(LayoutEdit(flip=flip).apply(boxes_xyxy, width), dtype=np.float64).reshape(-1, 4)
    shift = []
    for axis, side in ((0, width), (1, height)):
        if not len(flipped):
            shift.append(0.0)
            continue
        low = max(-max_shift * side, -flipped[:, axis].min())
        high = min(max_shift * side, side - flipped[:, axis + 2].max())
        shift.append(float(rng.uniform(low, high)) if high > low else 0.0)
    return LayoutEdit(flip=flip, shift=(shift[0], shift[1]))
