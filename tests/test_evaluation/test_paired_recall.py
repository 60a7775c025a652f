"""Paired recall of two synthetic sets made from the same layouts: pairing, counts, sign test."""
import math

import pytest

from mmdet_detdiffusion.evaluation.paired_recall import box_keys, paired_recall, sign_test


def synthetic_set(mode: str, boxes_per_image: int = 5, images: int = 4) -> dict:
    """A synthetic-set COCO dict whose images name their source image; ids differ between modes."""
    offset = {'hard': 1000, 'easy': 2000}[mode]
    coco = dict(images=[], annotations=[], categories=[dict(id=1, name='circle')])
    for source in range(images):
        image_id = offset + source
        coco['images'].append(dict(id=image_id, file_name=f'{source}_{mode}.png', width=64, height=64,
                                   detdiffusion=dict(source_image_id=source, attr_mode=mode)))
        for j in range(boxes_per_image):
            coco['annotations'].append(dict(id=offset * 10 + source * 100 + j, image_id=image_id, category_id=1,
                                            bbox=[10.0 * j, 3.0, 8.0, 8.0 + source], pa_attr=mode))
    return coco


def test_sign_test_matches_the_binomial_tails():
    assert sign_test(0, 0) == 1.0
    assert sign_test(5, 5) == 1.0
    assert sign_test(0, 5) == pytest.approx(2 / 32)
    assert sign_test(9, 1) == pytest.approx(2 * (1 + 10) / 1024)
    assert sign_test(1, 9) == sign_test(9, 1)
    assert sign_test(2, 18) < 0.001 < sign_test(6, 14) < 0.2


def test_boxes_pair_across_sets_by_source_image_category_and_box():
    hard, easy = synthetic_set('hard'), synthetic_set('easy')
    keys_hard, keys_easy = box_keys(hard), box_keys(easy)
    assert len(set(keys_hard.values())) == 20
    assert set(keys_hard.values()) == set(keys_easy.values())
    assert set(keys_hard) != set(keys_easy)  # annotation ids differ, the keys do not


def test_repaired_boxes_pair_by_their_layout_box():
    hard, easy = synthetic_set('hard'), synthetic_set('easy')
    for coco, shift in ((hard, 0.7), (easy, -0.4)):  # each set's head drew its own tight boxes
        for ann in coco['annotations']:
            ann['layout_bbox'] = list(ann['bbox'])
            ann['bbox'] = [ann['bbox'][0] + shift, ann['bbox'][1] + shift, 6.0, 6.0]
    assert set(box_keys(hard).values()) == set(box_keys(synthetic_set('hard')).values())
    result = paired_recall(hard, {a['id']: 'easy' for a in hard['annotations']}, easy,
                           {a['id']: 'hard' for a in easy['annotations']})
    assert (result.pairs, result.only_a, result.only_b) == (20, 20, 0)


def test_paired_counts_and_recalls():
    hard, easy = synthetic_set('hard'), synthetic_set('easy')
    # easy set: every box found; hard set: the first two boxes of every image missed
    found_easy = {ann['id']: 'easy' for ann in easy['annotations']}
    found_hard = {ann['id']: 'hard' if ann['id'] % 100 < 2 else 'easy' for ann in hard['annotations']}
    result = paired_recall(hard, found_hard, easy, found_easy)
    assert result.pairs == 20 and result.only_a == 0 and result.only_b == 8
    assert result.recall_a == pytest.approx(12 / 20) and result.recall_b == 1.0
    assert result.p_value == pytest.approx(2 / 2 ** 8)
    swapped = paired_recall(easy, found_easy, hard, found_hard)
    assert (swapped.only_a, swapped.only_b, swapped.p_value) == (8, 0, result.p_value)


def test_equal_sets_have_no_discordant_pairs():
    hard, easy = synthetic_set('hard'), synthetic_set('easy')
    alternating = lambda coco: {ann['id']: ('easy', 'hard')[ann['id'] % 2] for ann in coco['annotations']}  # noqa
    result = paired_recall(hard, alternating(hard), easy, alternating(easy))
    assert (result.only_a, result.only_b, result.p_value) == (0, 0, 1.0)
    assert math.isclose(result.recall_a, result.recall_b)


def test_sets_from_different_layouts_are_refused():
    hard, easy = synthetic_set('hard'), synthetic_set('easy')
    for ann in easy['annotations']:
        ann['bbox'][0] += 0.5
    with pytest.raises(ValueError, match='share no layout box'):
        paired_recall(hard, {a['id']: 'easy' for a in hard['annotations']}, easy,
                      {a['id']: 'easy' for a in easy['annotations']})
