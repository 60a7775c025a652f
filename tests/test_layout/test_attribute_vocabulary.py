"""The attribute vocabulary: names, codes, prompt tokens, generation modes and json keys (pure python)."""
import pytest

from mmdet_detdiffusion.layout import attributes
from mmdet_detdiffusion.layout.attributes import (ATTR_CODES, ATTR_KEY, ATTR_MODES, ATTR_NAMES, ATTRIBUTE_TOKENS,
                                                  ATTRIBUTES, EASY, GENERATION_MODES, HARD, MODE_NONE, MODE_ORIGINAL,
                                                  NO_ATTR_CODE, RECORD_KEY, SKIP_KEY, attribute_token_pattern,
                                                  register_slot_values, slot_values)
from mmdet_detdiffusion.layout.inputs import with_attr_mode
from mmdet_detdiffusion.layout.prompt import LayoutObject, LocationGrid, build_prompt, parse_prompt


def test_file_format_values():
    # Written into json files and prompts of trained generators: changing one breaks existing data.
    assert (EASY, HARD, ATTR_KEY, SKIP_KEY, RECORD_KEY) == ('easy', 'hard', 'pa_attr', 'pa_skipped', 'detdiffusion')
    assert ATTRIBUTE_TOKENS == {EASY: '<easy>', HARD: '<hard>'}, 'the library alone: no project\'s values'
    assert ATTRIBUTES == (EASY, HARD), 'what detectors label and generation modes set'


def test_codes_round_trip():
    assert ATTR_CODES == {None: -1, EASY: 0, HARD: 1} and NO_ATTR_CODE == -1
    assert slot_values() == (EASY, HARD)
    for name in (None, *slot_values()):
        assert ATTR_NAMES[ATTR_CODES[name]] == name


def test_tokens_parse():
    for name, token in ATTRIBUTE_TOKENS.items():
        assert attribute_token_pattern().fullmatch(token).group(1) == name
    for text in ('<medium>', '<l12>', 'easy', '<easy', '<faint>'):
        assert attribute_token_pattern().fullmatch(text) is None


@pytest.fixture()
def restored_vocabulary():
    """The vocabulary's dicts as they were before the test, whatever it registered."""
    saved = {name: dict(getattr(attributes, name)) for name in ('ATTRIBUTE_TOKENS', 'ATTR_CODES', 'ATTR_NAMES')}
    yield
    for name, value in saved.items():
        table = getattr(attributes, name)
        table.clear()
        table.update(value)


def test_registered_values_join_the_slot_after_easy_and_hard(restored_vocabulary):
    register_slot_values('medium', 'easy', 'very_hard')  # 'easy' is there already: it keeps its code
    register_slot_values('medium')
    # filled in place: names imported before the registration see the new values
    assert ATTRIBUTE_TOKENS == {EASY: '<easy>', HARD: '<hard>', 'medium': '<medium>', 'very_hard': '<very_hard>'}
    assert ATTR_CODES == {None: -1, EASY: 0, HARD: 1, 'medium': 2, 'very_hard': 3}
    assert slot_values() == (EASY, HARD, 'medium', 'very_hard')
    for name in (None, *slot_values()):
        assert ATTR_NAMES[ATTR_CODES[name]] == name
    assert attribute_token_pattern().fullmatch('<medium>').group(1) == 'medium'
    assert attribute_token_pattern().fullmatch('<very_hard>').group(1) == 'very_hard'
    assert ATTRIBUTES == (EASY, HARD) and GENERATION_MODES == (HARD, EASY, MODE_ORIGINAL), \
        'detectors\' labels and generation modes keep easy and hard alone'
    grid = LocationGrid(16)
    layout = [LayoutObject('cat', (0.0, 0.0, 0.5, 0.5), 'medium'), LayoutObject('dog', (0.5, 0.5, 1.0, 1.0), HARD)]
    prompt, kept = build_prompt(layout, grid, lambda text: len(text.split()), order='largest')
    assert '<medium>' in prompt and [obj.attr for obj in parse_prompt(prompt, grid)] == [obj.attr for obj in kept]


@pytest.mark.parametrize('name', ['Medium', 'very-hard', '<medium>', 'l12', ''])  # l12: a location token's shape
def test_slot_values_are_lower_case_words(restored_vocabulary, name):
    with pytest.raises(ValueError, match='lower-case letters and underscores'):
        register_slot_values(name)
    assert slot_values() == (EASY, HARD)


def test_prompt_round_trip_keeps_attributes():
    grid = LocationGrid(16)
    layout = [LayoutObject('cat', (0.0, 0.0, 0.5, 0.5), HARD), LayoutObject('dog', (0.5, 0.5, 1.0, 1.0)),
              LayoutObject('traffic light', (0.0, 0.5, 1.0, 1.0), EASY)]
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
