"""The toy base's two extra attribute-slot values, ``'faint'`` and ``'bright'`` (an object's contrast with its
background), registered in the core vocabulary (:func:`~mmdet_detdiffusion.layout.attributes.register_slot_values`).

Only the toy base's pretraining writes them (:class:`~.shapes_stream.ShapesStreamDataset`). Stable Diffusion reads
every prompt token through image-dependent queries; the toy U-Net's queries are position alone, and its pixels take
the slot token's own state, which a base trained on random easy/hard tokens learns to make the same for both. A slot
that carries appearance in pretraining is one whose token the base has learnt to tell apart, as SD tells its words
apart, so that fine-tuning can give easy and hard their meaning.
"""
from mmdet_detdiffusion.layout.attributes import ATTR_CODES, register_slot_values
from mmdet_detdiffusion.visualization import ATTR_COLOURS

FAINT = 'faint'
BRIGHT = 'bright'
APPEARANCES = (FAINT, BRIGHT)

register_slot_values(*APPEARANCES)
# The bundled base's tokenizer holds the slot tokens in code order: <easy> <hard> <faint> <bright>.
if (ATTR_CODES[FAINT], ATTR_CODES[BRIGHT]) != (2, 3):
    raise RuntimeError(f'the toy needs attribute codes faint=2, bright=3 (its base model\'s token order); another '
                       f'project registered slot values first: {ATTR_CODES}')
ATTR_COLOURS.update({FAINT: (150, 150, 150), BRIGHT: (255, 255, 255)})  # BGR: grey and white boxes
