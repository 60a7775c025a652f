"""The P.A. attribute rule on hand-made cases."""
import numpy as np
import pytest

from mmdet_detdiffusion.layout.attributes import EASY, HARD
from mmdet_detdiffusion.layout.matching import box_iou, found_scores, label_attributes

GT = np.array([[0, 0, 10, 10], [20, 20, 40, 40]], dtype=float)


def test_box_iou_known_values():
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [10, 10, 20, 20],
                                                       [3, 3, 3, 3]]))
    np.testing.assert_allclose(iou, [[1.0, 50 / 150, 0.0, 0.0]])


def test_box_iou_empty_inputs_have_right_shape():
    assert box_iou(np.zeros((0, 4)), GT).shape == (0, 2)
    assert box_iou(GT, np.zeros((0, 4))).shape == (2, 0)


def test_confident_overlapping_same_class_prediction_makes_easy():
    attrs = label_attributes(GT, [0, 1], pred_boxes=[[0, 0, 10, 10]], pred_scores=[0.9], pred_labels=[0],
                             score_thr=0.3, iou_thr=0.5)
    assert attrs == [EASY, HARD]


def test_score_must_be_strictly_above_gamma():
    kwargs = dict(pred_boxes=[[0, 0, 10, 10]], pred_labels=[0], score_thr=0.3, iou_thr=0.5)
    assert label_attributes(GT[:1], [0], pred_scores=[0.3], **kwargs) == [HARD]
    assert label_attributes(GT[:1], [0], pred_scores=[0.31], **kwargs) == [EASY]


def test_iou_must_be_strictly_above_beta():
    # [0,0,10,10] vs [0,0,10,20]: IoU exactly 0.5.
    kwargs = dict(pred_scores=[0.9], pred_labels=[0], score_thr=0.3)
    assert label_attributes(GT[:1], [0], pred_boxes=[[0, 0, 10, 20]], iou_thr=0.5, **kwargs) == [HARD]
    assert label_attributes(GT[:1], [0], pred_boxes=[[0, 0, 10, 20]], iou_thr=0.49, **kwargs) == [EASY]


def test_class_agnostic_by_default_class_aware_on_request():
    # each box is covered by a confident prediction of the *other* class: the paper's class-agnostic rule
    # calls both easy, the class-aware option calls both hard
    kwargs = dict(pred_boxes=[[0, 0, 10, 10], [20, 20, 40, 40]], pred_scores=[0.9, 0.9], pred_labels=[1, 0])
    assert label_attributes(GT, [0, 1], **kwargs) == [EASY, EASY]
    assert label_attributes(GT, [0, 1], match_class=True, **kwargs) == [HARD, HARD]
    same = dict(kwargs, pred_labels=[0, 1])
    assert label_attributes(GT, [0, 1], match_class=True, **same) == [EASY, EASY]


def test_low_score_prediction_is_ignored_even_if_it_overlaps_perfectly():
    attrs = label_attributes(GT, [0, 1], pred_boxes=GT, pred_scores=[0.05, 0.95], pred_labels=[0, 1])
    assert attrs == [HARD, EASY]


def test_one_prediction_can_make_several_overlapping_boxes_easy():
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 11]], dtype=float)
    attrs = label_attributes(gt, [2, 2], pred_boxes=[[0, 0, 10, 10]], pred_scores=[0.8], pred_labels=[2])
    assert attrs == [EASY, EASY]


def test_no_predictions_and_no_gt():
    assert label_attributes(GT, [0, 1], np.zeros((0, 4)), [], []) == [HARD, HARD]
    assert label_attributes(np.zeros((0, 4)), [], GT, [0.9, 0.9], [0, 1]) == []


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match='gt_labels'):
        label_attributes(GT, [0], GT, [0.9, 0.9], [0, 1])
    with pytest.raises(ValueError, match='predictions disagree'):
        label_attributes(GT, [0, 1], GT, [0.9], [0, 1])


def test_found_score_is_the_best_matching_prediction():
    preds = dict(pred_boxes=[[0, 0, 10, 10], [1, 0, 10, 10], [20, 20, 40, 41], [0, 0, 30, 30]],
                 pred_scores=[0.4, 0.8, 0.6, 0.95], pred_labels=[0, 1, 1, 0])
    np.testing.assert_allclose(found_scores(GT, [0, 1], **preds, iou_thr=0.5), [0.8, 0.6])  # any class
    np.testing.assert_allclose(found_scores(GT, [0, 1], **preds, iou_thr=0.5, match_class=True), [0.4, 0.6])
    np.testing.assert_allclose(found_scores(GT, [0, 1], np.zeros((0, 4)), [], []), [0.0, 0.0])
    assert label_attributes(GT, [0, 1], **preds, score_thr=0.5, match_class=True) == [HARD, EASY]
    with pytest.raises(ValueError, match='gamma'):
        label_attributes(GT, [0, 1], **preds, score_thr=-0.1)
