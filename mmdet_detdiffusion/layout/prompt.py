"""Layout prompts (GeoDiffusion's encoding plus DetDiffusion's attribute tokens), pure python.

A layout is a list of :class:`LayoutObject`; boxes are **normalised** xyxy in [0, 1]. Each box is two
corner tokens on a ``bins x bins`` grid of points (GeoDiffusion: 256 bins, 65,536 tokens): a corner
``(x, y)`` is ``<l{Y * bins + X}>`` with ``X = round(x * (bins - 1))`` and ``Y = round(y * (bins - 1))``,
GeoDiffusion's rule, so token ``<l0>`` is the point (0, 0) and ``<l{bins * bins - 1}>`` the point (1, 1).
An object's text is its class name with ``-`` written as a space (GeoDiffusion's COCO-Stuff text), its
corners and its attribute token: ``"traffic light <l1234> <l5678> <hard>"``; a prompt is
``"An image with traffic light <l1234> <l5678> <hard> cat <l...> <l...> <easy>"``.

CLIP reads 77 tokens. Objects are taken in an order (``'random'``: GeoDiffusion's shuffle, the default
for training; ``'largest'``: by decreasing area, deterministic, for generation) and the longest prefix
of that order that fits (and has at most ``max_objects`` objects, GeoDiffusion's ``max_num_bbox``) is kept.
"""
import random
import re
from dataclasses import dataclass
from typing import Callable, List, Optional, Pattern, Sequence, Tuple

from mmdet_detdiffusion.layout.attributes import ATTRIBUTE_TOKENS, attribute_token_pattern

PROMPT_PREFIX = 'An image with'
CLIP_MAX_TOKENS = 77
ORDERS = ('random', 'largest')

Box = Tuple[float, float, float, float]


@dataclass(frozen=True)
class LayoutObject:
    """One object of a layout: class name (may be several words), normalised xyxy box, attribute."""
    name: str
    box: Box
    attr: Optional[str] = None  # 'easy' | 'hard' | a value a project registers | None (no attribute token)

    @property
    def area(self) -> float:
        return max(self.box[2] - self.box[0], 0.0) * max(self.box[3] - self.box[1], 0.0)


class LocationGrid:
    """``bins x bins`` grid points spanning [0, 1] on each axis (spacing ``1 / (bins - 1)``); one token
    per point."""

    def __init__(self, bins: int = 256):
        if bins < 2:
            raise ValueError(f'LocationGrid: bins must be >= 2, got {bins}')
        self.bins = bins

    @property
    def tokens(self) -> List[str]:
        """All location tokens, index order (token ``i`` is grid point ``(x, y) = (i % bins, i // bins)``)."""
        return [f'<l{i}>' for i in range(self.bins * self.bins)]

    def bin_of(self, value: float) -> int:
        """Index of the grid point nearest to a normalised coordinate (clipped to [0, 1]):
        ``round(value * (bins - 1))`` with Python's ``round`` (ties to even), as GeoDiffusion writes it."""
        return int(round(min(max(value, 0.0), 1.0) * (self.bins - 1)))

    def point_token(self, x: float, y: float) -> str:
        return f'<l{self.bin_of(y) * self.bins + self.bin_of(x)}>'

    def box_tokens(self, box: Box) -> Tuple[str, str]:
        """Tokens of the top-left and bottom-right corners of a normalised xyxy box."""
        x1, y1, x2, y2 = box
        return self.point_token(x1, y1), self.point_token(x2, y2)

    def token_point(self, index: int) -> Tuple[float, float]:
        """Grid point ``(x, y)`` (normalised) of location token index ``index``."""
        if not 0 <= index < self.bins * self.bins:
            raise ValueError(f'location token <l{index}> is outside a {self.bins}x{self.bins} grid')
        y, x = divmod(index, self.bins)
        return x / (self.bins - 1), y / (self.bins - 1)


def class_text(name: str) -> str:
    """The words a class name is written with in a prompt: ``-`` as a space (``'wall-brick'`` -> ``'wall brick'``)."""
    return name.replace('-', ' ')


def object_text(obj: LayoutObject, grid: LocationGrid) -> str:
    """``"{class words} <l..> <l..> [<attr>]"``."""
    parts = [class_text(obj.name), *grid.box_tokens(obj.box)]
    if obj.attr is not None:
        if obj.attr not in ATTRIBUTE_TOKENS:
            raise ValueError(f'object {obj.name!r}: attribute {obj.attr!r} is not one of {list(ATTRIBUTE_TOKENS)}')
        parts.append(ATTRIBUTE_TOKENS[obj.attr])
    return ' '.join(parts)


def order_objects(objects: Sequence[LayoutObject], order: str, rng: Optional[random.Random] = None
                  ) -> List[LayoutObject]:
    """Objects in prompt order: ``'random'`` (shuffled with ``rng``) or ``'largest'`` (area, stable)."""
    if order == 'largest':
        return sorted(objects, key=lambda obj: -obj.area)
    if order == 'random':
        shuffled = list(objects)
        (rng or random.Random(0)).shuffle(shuffled)
        return shuffled
    raise ValueError(f'order must be one of {ORDERS}, got {order!r}')


def build_prompt(objects: Sequence[LayoutObject], grid: LocationGrid, count_word_tokens: Callable[[str], int],
                 order: str = 'random', rng: Optional[random.Random] = None,
                 max_tokens: int = CLIP_MAX_TOKENS, max_objects: Optional[int] = None
                 ) -> Tuple[str, List[LayoutObject]]:
    """Prompt of a layout and the objects it kept.

    Args:
        objects: the layout.
        grid: location grid.
        count_word_tokens: number of tokenizer tokens of a piece of plain text (no BOS/EOS), e.g. a
            class name; location and attribute tokens count one each.
        order: ``'random'`` or ``'largest'`` (see module docstring).
        rng: source of the shuffle for ``'random'``.
        max_tokens: the text encoder's window, BOS and EOS included.
        max_objects: at most this many objects (GeoDiffusion's ``max_num_bbox``); ``None``: no cap.

    Returns:
        ``(prompt, kept)``: ``kept`` is the prefix of the ordered objects that fits, in prompt order.
    """
    budget = max_tokens - 2 - count_word_tokens(PROMPT_PREFIX)
    texts, kept = [PROMPT_PREFIX], []
    for obj in order_objects(objects, order, rng):
        cost = count_word_tokens(class_text(obj.name)) + 2 + (obj.attr is not None)
        if cost > budget or (max_objects is not None and len(kept) >= max_objects):
            break
        budget -= cost
        texts.append(object_text(obj, grid))
        kept.append(obj)
    return ' '.join(texts), kept


def object_token_spans(kept: Sequence[LayoutObject], count_word_tokens: Callable[[str], int]
                       ) -> List[Tuple[int, int]]:
    """``[start, end)`` positions of each kept object's tokens (class words, corners, attribute) in the
    tokenized prompt of :func:`build_prompt`, BOS at position 0."""
    position = 1 + count_word_tokens(PROMPT_PREFIX)
    spans = []
    for obj in kept:
        end = position + count_word_tokens(class_text(obj.name)) + 2 + (obj.attr is not None)
        spans.append((position, end))
        position = end
    return spans


def _object_pattern() -> Pattern[str]:
    """One object of a prompt: class words (group 1), two location indices (2, 3), the attribute value (4)."""
    return re.compile(rf'\s*(.+?)\s*<l(\d+)>\s*<l(\d+)>\s*(?:{attribute_token_pattern().pattern})?')


def parse_prompt(prompt: str, grid: LocationGrid) -> List[LayoutObject]:
    """Inverse of :func:`build_prompt`: objects with boxes at grid points (error <= 0.5 / (bins - 1)) and
    their class words as names (a ``-`` in a class name comes back as a space)."""
    if not prompt.startswith(PROMPT_PREFIX):
        raise ValueError(f'prompt does not start with {PROMPT_PREFIX!r}: {prompt[:60]!r}')
    rest, objects, position, pattern = prompt[len(PROMPT_PREFIX):], [], 0, _object_pattern()
    while rest[position:].strip():
        match = pattern.match(rest, position)
        if match is None:
            raise ValueError(f'cannot parse the layout prompt after {rest[:position]!r}: {rest[position:][:60]!r}')
        x1, y1 = grid.token_point(int(match.group(2)))
        x2, y2 = grid.token_point(int(match.group(3)))
        objects.append(LayoutObject(match.group(1), (x1, y1, x2, y2), match.group(4)))
        position = match.end()
    return objects
