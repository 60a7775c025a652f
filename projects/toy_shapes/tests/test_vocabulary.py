"""The toy's attribute-slot values, faint and bright: registered after easy and hard with codes 2 and 3 (the bundled
base's token order), parsed from prompts, drawn in their own colours."""
import numpy as np

from mmdet_detdiffusion.layout.attributes import (ATTR_CODES, ATTR_NAMES, ATTRIBUTE_TOKENS, ATTRIBUTES, EASY,
                                                  GENERATION_MODES, HARD, NO_ATTR_CODE, attribute_token_pattern,
                                                  slot_values)
from mmdet_detdiffusion.layout.prompt import LayoutObject, LocationGrid, build_prompt, parse_prompt
from mmdet_detdiffusion.visualization import ATTR_COLOURS, draw_boxes
from projects.toy_shapes.toy_shapes.vocabulary import APPEARANCES, BRIGHT, FAINT


def test_the_toy_registers_faint_and_bright_after_easy_and_hard():
    assert (FAINT, BRIGHT) == APPEARANCES == ('faint', 'bright')
    assert ATTRIBUTE_TOKENS == {EASY: '<easy>', HARD: '<hard>', FAINT: '<faint>', BRIGHT: '<bright>'}
    assert slot_values() == (EASY, HARD, FAINT, BRIGHT)
    assert ATTRIBUTES == (EASY, HARD), 'what detectors label and generation modes set'
    assert FAINT not in GENERATION_MODES and BRIGHT not in GENERATION_MODES


def test_codes_round_trip():
    # the toy base's appearance values come after easy and hard: models trained before them keep their codes
    assert ATTR_CODES == {None: -1, EASY: 0, HARD: 1, FAINT: 2, BRIGHT: 3} and NO_ATTR_CODE == -1
    for name in (None, *slot_values()):
        assert ATTR_NAMES[ATTR_CODES[name]] == name


def test_tokens_parse():
    for name, token in ATTRIBUTE_TOKENS.items():
        assert attribute_token_pattern().fullmatch(token).group(1) == name
    for text in ('<medium>', '<l12>', 'faint', '<faint', 'bright'):
        assert attribute_token_pattern().fullmatch(text) is None


def test_prompt_round_trip_keeps_appearance_values():
    grid = LocationGrid(16)
    layout = [LayoutObject('cat', (0.0, 0.0, 0.5, 0.5), HARD), LayoutObject('dog', (0.5, 0.5, 1.0, 1.0)),
              LayoutObject('faint circle', (0.25, 0.5, 0.75, 1.0), FAINT),
              LayoutObject('square', (0.0, 0.5, 1.0, 1.0), BRIGHT)]
    prompt, kept = build_prompt(layout, grid, lambda text: len(text.split()), order='largest')
    assert '<faint>' in prompt and '<bright>' in prompt
    assert [obj.attr for obj in parse_prompt(prompt, grid)] == [obj.attr for obj in kept]


def test_every_slot_value_is_drawn_in_its_own_colour():
    assert set(ATTR_COLOURS) == {None, *slot_values()} and len(set(ATTR_COLOURS.values())) == len(ATTR_COLOURS)
    assert (ATTR_COLOURS[FAINT], ATTR_COLOURS[BRIGHT]) == ((150, 150, 150), (255, 255, 255))
    image = np.zeros((32, 32, 3), np.uint8)
    for attr in (None, *slot_values()):
        canvas = draw_boxes(image, [(4, 8, 20, 28)], ['circle'], [attr], scale=2)
        assert tuple(canvas[40, 8]) == ATTR_COLOURS[attr], 'the box\'s left edge, below its label'
