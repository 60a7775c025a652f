"""The attribute vocabulary: names, codes, prompt tokens, generation modes and json keys (pure python)."""
import pytest

from mmdet_detdiffusion.layout.attributes import (ATTR_CODES, ATTR_KEY, ATTR_MODES, ATTR_NAMES, ATTRIBUTE_TOKEN_PATTERN,
                                                  ATTRIBUTE_TOKENS, ATTRIBUTES, BRIGHT, EASY, FAINT, GENERATION_MODES,
                                                  HARD, MODE_NONE, MODE_ORIGINAL, NO_ATTR_CODE, RECORD_KEY, SKIP_KEY,
                                                  SLOT_VALUES)
from mmdet_detdiffusion.layout.inputs import with_attr_mode
from mmdet_detdiffusion.layout.prompt import LayoutObject, LocationGrid, build_prompt, parse_prompt


def test_file_format_values():
    # Written into json files and prompts of trained generators: changing one breaks existing data.
    assert (EASY, HARD, ATTR_KEY, SKIP_KEY, RECORD_KEY) == ('easy', 'hard', 'pa_attr', 'pa_skipped', 'detdiffusion')
    assert ATTRIBUTE_TOKENS == {EASY: '<easy>', HARD: '<hard>', FAINT: '<faint>', BRIGHT: '<bright>'}
    assert ATTRIBUTES == (EASY, HARD), 'what detectors label and generation modes set'


def test_codes_round_trip():
    # the toy base's appearance values come after easy and hard: models trained before them keep their codes
    assert ATTR_CODES == {None: -1, EASY: 0, HARD: 1, FAINT: 2, BRIGHT: 3} and NO_ATTR_CODE == -1
    for name in (None, *SLOT_VALUES):
        assert ATTR_NAMES[ATTR_CODES[name]] == name


def test_tokens_parse():
    for name, token in ATTRIBUTE_TOKENS.items():
        assert ATTRIBUTE_TOKEN_PATTERN.fullmatch(token).group(1) == name
    for text in ('<medium>', '<l12>', 'easy', '<easy', 'faint'):
        assert ATTRIBUTE_TOKEN_PATTERN.fullmatch(text) is None


def test_prompt_round_trip_keeps_attributes():
    grid = LocationGrid(16)
    layout = [LayoutObject('cat', (0.0, 0.0, 0.5, 0.5), HARD), LayoutObject('dog', (0.5, 0.5, 1.0, 1.0)),
              LayoutObject('traffic light', (0.0, 0.5, 1.0, 1.0), EASY),
              LayoutObject('faint circle', (0.25, 0.5, 0.75, 1.0), FAINT)]
    prompt, kept = build_prompt(layout, grid, lambda text: len(text.split()), order='largest')
    assert [obj.attr for obj in parse_prompt(prompt, grid)] == [obj.attr for obj in kept]


@pytest.mark.parametrize('mode', GENERATION_MODES)
def test_generation_modes(mode):
    objects = [LayoutObject('cat', (0, 0, 1, 1), EASY), LayoutObject('dog', (0, 0, 1, 1))]
    expected = [EASY, None] if mode == MODE_ORIGINAL else [mode, mode]
    assert [obj.attr for obj in with_attr_mode(objects, mode)] == expected


def test_mode_sets():
    assert GENERATION_MODES == (HARD, EASY, MODE_ORIGINAL)
    assert ATTR_MODES == (*GENERATION_MODES, MODE_NONE) and MODE_NONE not in GENERATION_MODES
    assert set(ATTRIBUTES) <= set(GENERATION_MODES)  # an attribute's name is the mode giving every box that attribute
