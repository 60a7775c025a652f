"""The perception-aware attribute vocabulary (DetDiffusion's P.A. Attr), in one place (pure python).

A ground-truth box is *easy* or *hard* for a detector (the rule: :mod:`~mmdet_detdiffusion.layout.matching`),
or has no attribute. The attribute is written as

- a name in COCO json: ``"pa_attr": "easy" | "hard"`` on an annotation (:data:`ATTR_KEY`); a box
  without an attribute has no key (``None`` in python);
- an integer code in arrays and tensors (``gt_pa_attrs``, ``gt_instances.pa_attrs``): :data:`ATTR_CODES`,
  :data:`NO_ATTR_CODE` for a box without one;
- a token in layout prompts, after the box's location tokens (the attribute slot): :data:`ATTRIBUTE_TOKENS`,
  parsed by :func:`attribute_token_pattern`; a box without an attribute gets no token.

The slot holds easy and hard, and projects may add values of their own with :func:`register_slot_values`
(e.g. ``projects/toy_shapes``' appearance words): each gets the next integer code and a token. Detectors'
labels, attribute files and generation modes know only easy and hard; the attribute-loading transform, prompts
and user layouts take every registered value (:func:`slot_values`).

A generation mode sets the attributes of a layout's boxes: ``'hard'`` / ``'easy'`` for every box,
``'original'`` as the layout gives them (:data:`GENERATION_MODES`, what a user picks), or ``'none'``, no
attribute tokens at all, which the pipeline uses for a generator trained without attributes.

The package's provenance records (attribute file, synthetic datasets and their images) sit under
:data:`RECORD_KEY` in COCO json.
"""
import re
from typing import Dict, Optional, Pattern, Tuple

EASY = 'easy'
HARD = 'hard'
ATTRIBUTES = (EASY, HARD)  # the perception-aware attributes
OPPOSITE_ATTRIBUTES = {EASY: HARD, HARD: EASY}

NO_ATTR_CODE = -1
# Filled by register_slot_values, in place, so that every importer sees the values registered later.
ATTR_CODES: Dict[Optional[str], int] = {None: NO_ATTR_CODE}
ATTR_NAMES: Dict[int, Optional[str]] = {NO_ATTR_CODE: None}
ATTRIBUTE_TOKENS: Dict[str, str] = {}


def register_slot_values(*names: str) -> None:
    """Add values to the attribute slot, in order: each gets the next integer code and the token ``<name>``
    (a value already registered keeps its code)."""
    for name in names:
        if not re.fullmatch(r'[a-z_]+', name):
            raise ValueError(f'attribute-slot value {name!r}: expected lower-case letters and underscores')
        if name not in ATTRIBUTE_TOKENS:
            ATTR_CODES[name] = len(ATTRIBUTE_TOKENS)
            ATTR_NAMES[len(ATTRIBUTE_TOKENS)] = name
            ATTRIBUTE_TOKENS[name] = f'<{name}>'


def slot_values() -> Tuple[str, ...]:
    """The registered attribute-slot values; position = integer code."""
    return tuple(ATTRIBUTE_TOKENS)


def attribute_token_pattern() -> Pattern[str]:
    """Regex of one attribute-slot token; group 1 is its value's name."""
    return re.compile('<(' + '|'.join(map(re.escape, ATTRIBUTE_TOKENS)) + ')>')


register_slot_values(*ATTRIBUTES)


def opposite_attribute(attr: Optional[str]) -> Optional[str]:
    """Hard for easy and easy for hard; any other slot value (or ``None``) as it is."""
    return OPPOSITE_ATTRIBUTES.get(attr, attr)


MODE_ORIGINAL = 'original'
MODE_NONE = 'none'
GENERATION_MODES = (HARD, EASY, MODE_ORIGINAL)
ATTR_MODES = (*GENERATION_MODES, MODE_NONE)

ATTR_KEY = 'pa_attr'  # annotation key of the attribute name
SKIP_KEY = 'pa_skipped'  # annotation key of the reason a box was not judged (it is labelled hard)
RECORD_KEY = 'detdiffusion'  # key of a provenance record: top level of a COCO json, or one of its images
