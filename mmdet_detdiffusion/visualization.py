"""Pictures a person can look at: images with their layout boxes drawn, tiled into a grid; bar and line charts."""
import io
import itertools
import math
from typing import TYPE_CHECKING, Mapping, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

from mmdet_detdiffusion.layout.attribute_file import xywh_to_xyxy
from mmdet_detdiffusion.layout.attributes import ATTR_KEY, EASY, HARD
from mmdet_detdiffusion.utils.fileio import atomic_write_bytes

if TYPE_CHECKING:  # matplotlib is imported where a chart is drawn, with its Agg backend
    from matplotlib.figure import Figure

# BGR colours: easy green, hard red, no attribute yellow; a project that registers slot values adds theirs.
ATTR_COLOURS = {EASY: (60, 200, 60), HARD: (40, 40, 230), None: (0, 220, 255)}


def draw_boxes(image_bgr: np.ndarray, boxes_xyxy: Sequence[Sequence[float]], names: Sequence[str],
               attrs: Optional[Sequence[Optional[str]]] = None, scale: int = 2) -> np.ndarray:
    """A copy of ``image_bgr`` (H, W, 3 uint8) upscaled by ``scale`` with boxes (pixels, xyxy) and names.

    Box colour follows ``attrs`` (:data:`ATTR_COLOURS`: ``'easy'`` green, ``'hard'`` red, none yellow).
    """
    canvas = cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    attrs = attrs if attrs is not None else [None] * len(boxes_xyxy)
    for box, name, attr in zip(boxes_xyxy, names, attrs):
        x1, y1, x2, y2 = (int(round(v * scale)) for v in box)
        colour = ATTR_COLOURS[attr]
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 1)
        text = name if attr is None else f'{name} {attr}'
        (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.35, 1)
        y_text = max(y1 - 3, text_h + 2)
        cv2.rectangle(canvas, (x1, y_text - text_h - 2), (x1 + text_w + 2, y_text + baseline - 1), (0, 0, 0), -1)
        cv2.putText(canvas, text, (x1 + 1, y_text), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1, cv2.LINE_AA)
    return canvas


def draw_annotated(image_path: str, annotations: Sequence[dict], names: Mapping[int, str],
                   size: Optional[int] = None) -> np.ndarray:
    """An image file with its COCO annotations drawn (``bbox`` xywh pixels, ``category_id`` named by
    ``names``, optional ``pa_attr`` colours); resized to ``size x size`` first when given."""
    image = cv2.imread(image_path)
    if image is None:
        raise ValueError(f'cannot read image {image_path}')
    boxes = [xywh_to_xyxy(ann['bbox']) for ann in annotations]
    if size:
        sx, sy = size / image.shape[1], size / image.shape[0]
        image = cv2.resize(image, (size, size))
        boxes = [[x1 * sx, y1 * sy, x2 * sx, y2 * sy] for x1, y1, x2, y2 in boxes]
    return draw_boxes(image, boxes, [names[ann['category_id']] for ann in annotations],
                      [ann.get(ATTR_KEY) for ann in annotations])


def tile_grid(images: Sequence[np.ndarray], columns: int = 4, pad: int = 4) -> np.ndarray:
    """Tile equally sized (H, W, 3) images row by row on a white background."""
    if not images:
        raise ValueError('tile_grid: no images')
    height, width = images[0].shape[:2]
    rows = math.ceil(len(images) / columns)
    grid = np.full((rows * (height + pad) + pad, columns * (width + pad) + pad, 3), 255, np.uint8)
    for i, image in enumerate(images):
        row, col = divmod(i, columns)
        y, x = pad + row * (height + pad), pad + col * (width + pad)
        grid[y:y + height, x:x + width] = image
    return grid


def save_image(path: str, image_bgr: np.ndarray) -> None:
    """Write an image atomically (format from the extension)."""
    ok, encoded = cv2.imencode(path[path.rfind('.'):], image_bgr)
    if not ok:
        raise ValueError(f'cannot encode an image for {path}')
    atomic_write_bytes(encoded.tobytes(), path)


def save_bar_chart(path: str, names: Sequence[str], means: Sequence[float], stds: Sequence[float],
                   seeds: Sequence[Sequence[float]], ylabel: str, title: str) -> None:
    """A bar per arm (its mean, an error bar of one std) with its per-seed values as dots, as a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(1.6 * len(names) + 1.5, 3.6))
    positions = np.arange(len(names))
    axis.bar(positions, means, yerr=stds, capsize=5, color='#8fb3d9', edgecolor='#35618f')
    for position, values in zip(positions, seeds):
        axis.scatter(np.full(len(values), position), values, s=14, color='black', zorder=3)
    axis.set_xticks(positions, names, rotation=15, ha='right')
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    low = min(min(v) for v in seeds)
    axis.set_ylim(max(0.0, low - 0.1), None)
    save_figure(figure, path)


class LineSeries(NamedTuple):
    """One line of :func:`save_line_chart`: its points, and optionally a band ``low..high`` at each x (an interval,
    or one std) and thin per-seed lines ``runs`` (each a ``(xs, ys)``)."""
    xs: Sequence[float]
    ys: Sequence[float]
    low: Optional[Sequence[float]] = None
    high: Optional[Sequence[float]] = None
    runs: Sequence[Tuple[Sequence[float], Sequence[float]]] = ()


def save_line_chart(path: str, lines: Mapping[str, LineSeries], xlabel: str, ylabel: str, title: str,
                    log_x: bool = False, zero_line: bool = False) -> None:
    """Lines (one colour each, with their bands and per-seed lines) as a PNG; ``zero_line``: a dashed y = 0."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(6.4, 4.0))
    for (name, line), colour in zip(lines.items(), itertools.cycle(plt.rcParams['axes.prop_cycle'].by_key()['color'])):
        axis.plot(line.xs, line.ys, marker='o', markersize=3, color=colour, label=name)
        if line.low is not None and line.high is not None:
            axis.fill_between(line.xs, line.low, line.high, color=colour, alpha=0.15, linewidth=0)
        for xs, ys in line.runs:
            axis.plot(xs, ys, color=colour, alpha=0.3, linewidth=0.8)
    if zero_line:
        axis.axhline(0.0, color='black', linestyle='--', linewidth=0.8)
    if log_x:
        axis.set_xscale('log')
        xs = sorted({x for line in lines.values() for x in line.xs})
        axis.set_xticks(xs, [f'{x:g}' for x in xs])
        axis.minorticks_off()  # a log axis would label minor ticks too (3x10^1, ...)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend(fontsize=8)
    save_figure(figure, path)


def save_figure(figure: 'Figure', path: str) -> None:
    """Write a matplotlib figure to ``path`` as a PNG (atomically) and close it."""
    import matplotlib.pyplot as plt
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png', dpi=110)
    plt.close(figure)
    atomic_write_bytes(buffer.getvalue(), path)
