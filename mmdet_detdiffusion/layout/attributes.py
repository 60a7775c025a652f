"""The perception-aware attribute vocabulary (DetDiffusion's P.A. Attr), in one place (pure python).

A ground-truth box is *easy* or *hard* for a detector (the rule: :mod:`~mmdet_detdiffusion.layout.matching`),
or has no attribute. The attribute is written as

- a name in COCO json: ``"pa_attr": "easy" | "hard"`` on an annotation (:data:`ATTR_KEY`); a box
  without an attribute has no key (``None`` in python);
- an integer code in arrays and tensors (``gt_pa_attrs``, ``gt_instances.pa_attrs``): :data:`ATTR_CODES`,
  :data:`NO_ATTR_CODE` for a box without one;
- a token in layout prompts, after the box's location tokens: :data:`ATTRIBUTE_TOKENS`, parsed by
  :data:`ATTRIBUTE_TOKEN_PATTERN`; a box without an attribute gets no token.

A generation mode sets the attributes of a layout's boxes: ``'hard'`` / ``'easy'`` for every box,
``'original'`` as the layout gives them (:data:`GENERATION_MODES`, what a user picks), or ``'none'``, no
attribute tokens at all, which the pipeline uses for a generator trained without attributes.

The package's provenance records (attribute file, synthetic datasets and their images) sit under
:data:`RECORD_KEY` in COCO json.
"""
import re
from typing import Dict, Optional

EASY = 'easy'
HARD = 'hard'
ATTRIBUTES = (EASY, HARD)  # position = integer code

NO_ATTR_CODE = -1
ATTR_CODES: Dict[Optional[str], int] = {None: NO_ATTR_CODE, **{name: code for code, name in enumerate(ATTRIBUTES)}}
ATTR_NAMES: Dict[int, Optional[str]] = {code: name for name, code in ATTR_CODES.items()}

ATTRIBUTE_TOKENS: Dict[str, str] = {name: f'<{name}>' for name in ATTRIBUTES}
# One attribute token; group 1 is the attribute's name.
ATTRIBUTE_TOKEN_PATTERN = re.compile('<(' + '|'.join(map(re.escape, ATTRIBUTES)) + ')>')

MODE_ORIGINAL = 'original'
MODE_NONE = 'none'
GENERATION_MODES = (HARD, EASY, MODE_ORIGINAL)
ATTR_MODES = (*GENERATION_MODES, MODE_NONE)

ATTR_KEY = 'pa_attr'  # annotation key of the attribute name
SKIP_KEY = 'pa_skipped'  # annotation key of the reason a box was not judged (it is labelled hard)
RECORD_KEY = 'detdiffusion'  # key of a provenance record: top level of a COCO json, or one of its images
