"""The perception-aware attribute vocabulary (DetDiffusion's P.A. Attr), in one place (pure python).

A ground-truth box is *easy* or *hard* for a detector (the rule: :mod:`~mmdet_detdiffusion.layout.matching`),
or has no attribute. The attribute is written as

- a name in COCO json: ``"pa_attr": "easy" | "hard"`` on an annotation (:data:`ATTR_KEY`); a box
  without an attribute has no key (``None`` in python);
- an integer code in arrays and tensors (``gt_pa_attrs``, ``gt_instances.pa_attrs``): :data:`ATTR_CODES`,
  :data:`NO_ATTR_CODE` for a box without one;
- a token in layout prompts, after the box's location tokens (the attribute slot): :data:`ATTRIBUTE_TOKENS`,
  parsed by :data:`ATTRIBUTE_TOKEN_PATTERN`; a box without an attribute gets no token.

The slot has two more values, :data:`APPEARANCES` (``'faint'``, ``'bright'``: the object's contrast with its
background), which only the toy base's pretraining writes (:class:`~mmdet_detdiffusion.datasets.shapes_stream.
ShapesStreamDataset`). Stable Diffusion reads every prompt token through image-dependent queries; the toy U-Net's
queries are position alone, and its pixels take the slot token's own state, which a base trained on random
easy/hard tokens learns to make the same for both. A slot that carries appearance in pretraining is one whose
token the base has learnt to tell apart, as SD tells its words apart, so that fine-tuning can give easy and hard
their meaning. Detectors' labels, attribute files and generation modes know only easy and hard; the
attribute-loading transform and user layouts take every slot value.

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
ATTRIBUTES = (EASY, HARD)  # the perception-aware attributes
FAINT = 'faint'
BRIGHT = 'bright'
APPEARANCES = (FAINT, BRIGHT)  # the toy base's pretraining only
SLOT_VALUES = (*ATTRIBUTES, *APPEARANCES)  # position = integer code

NO_ATTR_CODE = -1
ATTR_CODES: Dict[Optional[str], int] = {None: NO_ATTR_CODE, **{name: code for code, name in enumerate(SLOT_VALUES)}}
ATTR_NAMES: Dict[int, Optional[str]] = {code: name for name, code in ATTR_CODES.items()}

ATTRIBUTE_TOKENS: Dict[str, str] = {name: f'<{name}>' for name in SLOT_VALUES}
# One attribute-slot token; group 1 is its value's name.
ATTRIBUTE_TOKEN_PATTERN = re.compile('<(' + '|'.join(map(re.escape, SLOT_VALUES)) + ')>')

MODE_ORIGINAL = 'original'
MODE_NONE = 'none'
GENERATION_MODES = (HARD, EASY, MODE_ORIGINAL)
ATTR_MODES = (*GENERATION_MODES, MODE_NONE)

ATTR_KEY = 'pa_attr'  # annotation key of the attribute name
SKIP_KEY = 'pa_skipped'  # annotation key of the reason a box was not judged (it is labelled hard)
RECORD_KEY = 'detdiffusion'  # key of a provenance record: top level of a COCO json, or one of its images
