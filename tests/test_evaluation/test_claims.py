"""Every verdict of the demo's and the study's reports, on hand-made figures either side of its target."""
import math

import pytest

from mmdet_detdiffusion.evaluation import claims
from mmdet_detdiffusion.evaluation.paired_recall import PairedRecall
from mmdet_detdiffusion.evaluation.report import gain_cell, gain_rule, protocol_rows, verdict_cell


def recall(gap: float, p_value: float = 1e-5, pairs: int = 257, recall_easy: float = 0.68) -> PairedRecall:
    """Hard (A) vs easy (B) recall of ``pairs`` boxes, easy ahead by ``gap``."""
    return PairedRecall(pairs=pairs, recall_a=recall_easy - gap, recall_b=recall_easy, only_a=5, only_b=30,
                        p_value=p_value)


def gain(low: float, high: float) -> dict:
    """A :func:`~mmdet_detdiffusion.evaluation.trainability.paired_gain` result with interval ``[low, high]``."""
    return dict(mean=(low + high) / 2, low=low, high=high, half_width=(high - low) / 2, confidence=0.95)


def test_ratio_to_a_zero_reference_meets_no_target():
    assert claims.ratio(0.3, 0.6) == pytest.approx(0.5)
    assert math.isnan(claims.ratio(0.3, 0.0))
    assert not claims.fidelity(claims.ratio(0.3, 0.0), 0.9).met
    assert not claims.contrast(claims.ratio(0.05, 0.0)).met


@pytest.mark.parametrize('map_ratio, ap50_ratio, met', [
    (0.61, 0.81, True),
    (0.59, 0.81, False),  # mAP under its 0.6x target
    (0.61, 0.79, False),  # AP50 under its 0.8x target
    (0.76, 0.94, True),   # stop 17's figures
])
def test_fidelity_needs_both_ratios(map_ratio, ap50_ratio, met):
    verdict = claims.fidelity(map_ratio, ap50_ratio)
    assert verdict == claims.Verdict(met, 'met' if met else 'missed', claims.FIDELITY_TARGET)


@pytest.mark.parametrize('ap75_ratio, median_iou, met', [
    (0.81, 0.86, True),
    (0.79, 0.86, False),  # AP75 under its 0.8x target
    (0.81, 0.84, False),  # the labels further from the drawn boxes than 0.85 IoU
])
def test_box_repair_needs_both_ap75_and_iou(ap75_ratio, median_iou, met):
    assert claims.box_repair(ap75_ratio, median_iou).met is met


def test_hard_generations_must_score_below_easy_ones():
    assert claims.hard_map_lower(0.217, 0.249).met
    assert not claims.hard_map_lower(0.249, 0.249).met
    assert not claims.hard_map_lower(0.26, 0.249).met


@pytest.mark.parametrize('figures, met', [
    (recall(0.11), True),
    (recall(0.09), False),                 # under the 10-point gap
    (recall(0.11, p_value=0.0009), True),
    (recall(0.11, p_value=0.0011), False),  # not beyond chance at p < 0.001
    (recall(0.11, pairs=251), True),
    (recall(0.11, pairs=249), False),       # fewer than 250 boxes
    (recall(-0.11), False),                 # easy found less often than hard
])
def test_recall_gap_needs_gap_p_value_and_boxes(figures, met):
    verdict = claims.recall_gap(figures)
    assert verdict.met is met and verdict.text == ('met' if met else 'missed')
    assert verdict.target == claims.RECALL_TARGET


@pytest.mark.parametrize('figures, met, text', [
    (recall(0.04, p_value=0.04), True, 'lower, as intended'),
    (recall(0.04, p_value=0.06), False, 'lower, but within chance (sign test p >= 0.05)'),
    (recall(0.0, p_value=1.0), False, 'not lower'),
    (recall(-0.04, p_value=0.001), False, 'not lower'),
])
def test_recall_lower_reads_the_direction_beyond_chance(figures, met, text):
    assert claims.recall_lower(figures) == claims.Verdict(met, text, claims.RECALL_LOWER_TARGET)


@pytest.mark.parametrize('share, met', [(0.51, True), (0.49, False), (1.12, True), (-0.2, False)])
def test_contrast_needs_half_the_real_gap(share, met):
    assert claims.contrast(share) == claims.Verdict(met, 'met' if met else 'missed', claims.CONTRAST_TARGET)


@pytest.mark.parametrize('low, high, met, text', [
    (-0.01, 0.03, False, 'within seed noise'),
    (0.01, 0.03, True, 'a gain beyond seed noise'),
    (-0.03, -0.01, False, 'a loss beyond seed noise'),
    (-0.03, 0.01, False, 'within seed noise'),
])
def test_a_gain_counts_only_when_its_interval_excludes_zero(low, high, met, text):
    assert claims.gain(low, high) == claims.Verdict(met, text, claims.GAIN_TARGET)


def test_targets_are_worded_from_the_thresholds_they_are_judged_with():
    assert f'{claims.FIDELITY_MAP_RATIO:g}x' in claims.FIDELITY_TARGET
    assert f'{claims.FIDELITY_AP50_RATIO:g}x' in claims.FIDELITY_TARGET
    assert f'{claims.RECALL_GAP * 100:.0f} points' in claims.RECALL_TARGET
    assert f'p < {claims.RECALL_P_VALUE:g}' in claims.RECALL_TARGET
    assert f'{claims.RECALL_MIN_PAIRS} boxes' in claims.RECALL_TARGET
    assert f'p < {claims.RECALL_ALPHA:g}' in claims.RECALL_LOWER_TARGET
    assert f'{claims.CONTRAST_SHARE:.0%}' in claims.CONTRAST_TARGET
    assert f'{claims.BOX_REPAIR_AP75_RATIO:g}x' in claims.BOX_REPAIR_TARGET
    assert f'>= {claims.BOX_REPAIR_IOU:g}' in claims.BOX_REPAIR_TARGET


def test_reports_bold_a_missed_target_and_word_each_gain():
    assert verdict_cell(claims.contrast(0.6)) == 'met'
    assert verdict_cell(claims.contrast(0.4)) == '**missed**'
    assert gain_cell(gain(0.01, 0.03)) == '+0.020 [+0.010, +0.030]: a gain beyond seed noise'
    assert gain_cell(gain(-0.03, -0.01)) == '-0.020 [-0.030, -0.010]: a loss beyond seed noise'
    assert gain_rule(gain(0.01, 0.03)) == 'with its 95% t interval; beyond seed noise only when the interval excludes 0'


def test_protocol_rows_add_one_gain_column_per_baseline():
    report = {'real only': dict(mean=0.5, std=0.01, seeds=[0.49, 0.51], iters=300),
              'real + hard': dict(mean=0.52, std=0.02, seeds=[0.50, 0.54], iters=300, gain=gain(-0.01, 0.05)),
              'real + easy': dict(mean=0.45, std=0.01, seeds=[0.44, 0.46], iters=300, gain=gain(-0.07, -0.03))}
    rows = {row[0]: row for row in protocol_rows(report, {'real + easy': gain(-0.09, -0.05)})}
    assert rows['real only'] == ['real only', '300', '0.500 ± 0.010', '0.490, 0.510', '-', '-']
    assert rows['real + hard'][4:] == ['+0.020 [-0.010, +0.050]: within seed noise', '-']
    assert rows['real + easy'][4:] == ['-0.050 [-0.070, -0.030]: a loss beyond seed noise',
                                       '-0.070 [-0.090, -0.050]: a loss beyond seed noise']
    assert [row[:5] for row in protocol_rows(report)] == [row[:5] for row in rows.values()]
