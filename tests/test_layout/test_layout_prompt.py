"""Layout prompts: location tokens, attribute tokens, truncation to CLIP's window, and the inverse."""
import random

import pytest

from mmdet_detdiffusion.generator.text import word_token_counter
from mmdet_detdiffusion.layout.prompt import (PROMPT_PREFIX, LayoutObject, LocationGrid, build_prompt, object_text,
                                              object_token_spans, order_objects, parse_prompt)

NAMES = ['person', 'traffic light', 'fire hydrant', 'cat', 'hair drier', 'teddy bear']


def random_layout(count, seed=0):
    rng = random.Random(seed)
    objects = []
    for i in range(count):
        x1, y1 = rng.uniform(0, 0.8), rng.uniform(0, 0.8)
        w, h = rng.uniform(0.02, 1 - x1), rng.uniform(0.02, 1 - y1)
        objects.append(LayoutObject(NAMES[i % len(NAMES)], (x1, y1, x1 + w, y1 + h), rng.choice(['easy', 'hard'])))
    return objects


@pytest.fixture(scope='module')
def count(clip_tokenizer):
    return word_token_counter(clip_tokenizer)


def test_grid_tokens_follow_geodiffusion():
    grid = LocationGrid(256)
    assert len(grid.tokens) == 65536 and grid.tokens[257] == '<l257>'
    # GeoDiffusion: X = round(x * 255), Y = round(y * 255), token Y * 256 + X
    assert grid.point_token(0.0, 0.0) == '<l0>'
    assert grid.point_token(0.5, 0.5) == f'<l{128 * 256 + 128}>'  # 127.5 rounds to 128
    assert grid.point_token(1.0, 1.0) == '<l65535>'
    assert grid.point_token(0.3, 0.7) == f'<l{round(0.7 * 255) * 256 + round(0.3 * 255)}>'
    assert grid.point_token(1.5 / 255, 2.5 / 255) == f'<l{2 * 256 + 2}>'  # Python's round: ties to even
    assert grid.token_point(128 * 256 + 128) == (128 / 255, 128 / 255)
    with pytest.raises(ValueError, match='outside a 256x256 grid'):
        grid.token_point(65536)


@pytest.mark.parametrize('count_objects', [0, 1, 60])
def test_round_trip_and_window(count_objects, count, clip_tokenizer):
    grid = LocationGrid(64)
    layout = random_layout(count_objects)
    prompt, kept = build_prompt(layout, grid, count, order='largest')
    assert prompt.startswith(PROMPT_PREFIX)
    ids = clip_tokenizer(prompt).input_ids
    assert len(ids) <= 77, 'the prompt must fit the text encoder without truncation'
    parsed = parse_prompt(prompt, grid)
    assert [(o.name, o.attr) for o in parsed] == [(o.name, o.attr) for o in kept]
    for got, want in zip(parsed, kept):
        assert all(abs(g - w) <= 0.5 / 63 + 1e-9 for g, w in zip(got.box, want.box))
    if count_objects == 60:
        assert 0 < len(kept) < 60
        # nothing else would fit: one more object's tokens overflow the window
        nxt = order_objects(layout, 'largest')[len(kept)]
        assert len(ids) + count(nxt.name) + 3 > 77
    else:
        assert len(kept) == count_objects


def test_largest_first_keeps_the_largest(count):
    layout = random_layout(60)
    _, kept = build_prompt(layout, LocationGrid(64), count, order='largest')
    smallest_kept = min(o.area for o in kept)
    dropped = [o for o in layout if o not in kept]
    assert all(o.area <= smallest_kept for o in dropped)


def test_random_order_is_seeded_and_keeps_a_prefix(count):
    layout = random_layout(60)
    a = build_prompt(layout, LocationGrid(64), count, order='random', rng=random.Random(3))
    b = build_prompt(layout, LocationGrid(64), count, order='random', rng=random.Random(3))
    c = build_prompt(layout, LocationGrid(64), count, order='random', rng=random.Random(4))
    assert a == b and a[0] != c[0]
    assert a[1] == order_objects(layout, 'random', random.Random(3))[:len(a[1])]


def test_multi_word_names_and_missing_attributes(count, clip_tokenizer):
    layout = [LayoutObject('traffic light', (0.1, 0.1, 0.3, 0.9)), LayoutObject('hair drier', (0.5, 0.5, 1, 1), 'hard')]
    prompt, _ = build_prompt(layout, LocationGrid(16), count, order='largest')
    # GeoDiffusion's round(x * 15) in floating point: 0.5 -> 8, 1 -> 15, 0.1 -> 2, 0.3 -> 4, 0.9 -> 14
    assert prompt == 'An image with hair drier <l136> <l255> <hard> traffic light <l34> <l228>'
    assert [o.name for o in parse_prompt(prompt, LocationGrid(16))] == ['hair drier', 'traffic light']
    tokens = clip_tokenizer.convert_ids_to_tokens(clip_tokenizer(prompt).input_ids)
    assert tokens[4:9] == ['hair</w>', 'drier</w>', '<l136>', '<l255>', '<hard>']
    assert tokens[9:13] == ['traffic</w>', 'light</w>', '<l34>', '<l228>']


def test_class_names_are_written_with_spaces_for_dashes(count):
    prompt, _ = build_prompt([LayoutObject('wall-brick', (0, 0, 1, 1), 'easy')], LocationGrid(16), count)
    assert prompt == 'An image with wall brick <l0> <l255> <easy>'
    assert parse_prompt(prompt, LocationGrid(16))[0].name == 'wall brick'


def test_max_objects_caps_the_prompt(count):
    layout = random_layout(10)
    _, kept = build_prompt(layout, LocationGrid(64), count, order='largest', max_objects=3)
    assert kept == order_objects(layout, 'largest')[:3]


def test_bad_attribute_and_unparsable_prompt(count):
    with pytest.raises(ValueError, match="'medium'"):
        build_prompt([LayoutObject('cat', (0, 0, 1, 1), 'medium')], LocationGrid(8), count)
    with pytest.raises(ValueError, match='does not start with'):
        parse_prompt('A photo of a cat', LocationGrid(8))
    with pytest.raises(ValueError, match='cannot parse'):
        parse_prompt('An image with cat <l3>', LocationGrid(8))


@pytest.mark.parametrize('count_objects', [0, 1, 60])
def test_object_token_spans_point_at_each_objects_tokens(clip_tokenizer, count, count_objects):
    grid = LocationGrid(64)
    layout = random_layout(count_objects, seed=3)
    layout[:3] = [LayoutObject(o.name, o.box, None) for o in layout[:3]]  # some without attribute token
    prompt, kept = build_prompt(layout, grid, count, rng=random.Random(1))
    ids = clip_tokenizer(prompt).input_ids
    spans = object_token_spans(kept, count)
    assert len(spans) == len(kept)
    for (start, end), obj in zip(spans, kept):
        assert ids[start:end] == clip_tokenizer(object_text(obj, grid), add_special_tokens=False).input_ids
    assert (spans[-1][1] if spans else 1 + count(PROMPT_PREFIX)) == len(ids) - 1  # EOS follows the last object
